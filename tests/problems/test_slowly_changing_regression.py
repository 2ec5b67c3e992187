"""Slowly-changing regression (Dohare et al. 2024): inputs, slow-bit schedules, the LTU target."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metastep.problems import ltu_network_output, slowly_changing_regression

# Few distinct block sizes: each compiles once per problem (about half a second).
STEPS, PERIOD, BLOCK = 19_950, 100, 6_650  # block edges at 6,650 (mid-task) and 13,300 (a boundary)
DEFAULT_STEPS = 30_000
PROBLEMS = {
    variant: slowly_changing_regression(variant, slow_period=PERIOD)
    for variant in ("redraw", "flip_one")
}
DEFAULT = slowly_changing_regression()


@pytest.fixture(scope="module")
def streams(blocks):
    return {
        variant: blocks(problem, jax.random.key(0), [STEPS])
        for variant, problem in PROBLEMS.items()
    }


@pytest.fixture(params=["redraw", "flip_one"])
def variant_and_stream(request, streams):
    return request.param, streams[request.param][1]


def slow_changes(x):
    """The number of slow bits (0..14) that change from each step to the next, and the steps."""
    return (x[1:, :15] != x[:-1, :15]).sum(axis=1), np.arange(1, len(x))


def test_shapes_dtypes_and_layout(variant_and_stream):
    _, stream = variant_and_stream
    assert DEFAULT.num_features == 21
    assert stream.x.shape == (STEPS, 21) and stream.y.shape == (STEPS,)
    assert stream.x.dtype == stream.y.dtype == np.float32
    assert stream.info["task"].dtype == np.int32
    assert set(np.unique(stream.x)) == {0.0, 1.0}
    np.testing.assert_array_equal(stream.x[:, 20], 1.0)  # the bias input is last
    np.testing.assert_array_equal(stream.info["task"], np.arange(STEPS) // PERIOD)


def test_float64_under_x64(x64):
    state = jax.eval_shape(DEFAULT.init, jax.random.key(0))
    samples = jax.eval_shape(lambda s: DEFAULT.generate(s, 10), state)[1]
    assert state.slow_bits.dtype == state.target.thresholds.dtype == jnp.float64
    assert samples.x.dtype == samples.y.dtype == jnp.float64


def test_slow_bits_change_only_at_period_boundaries(variant_and_stream):
    variant, stream = variant_and_stream
    changed, steps = slow_changes(stream.x)
    boundary = steps % PERIOD == 0
    assert not changed[~boundary].any()
    if variant == "flip_one":
        np.testing.assert_array_equal(changed[boundary], 1)
    else:
        # Every slow bit redrawn: Binomial(15, 1/2) changes, mean 7.5, sd 1.9, over 199 boundaries.
        assert abs(changed[boundary].mean() - 7.5) < 0.6
        assert changed[boundary].min() < 5 and changed[boundary].max() > 10


def test_defaults_are_the_papers(blocks):
    x = blocks(DEFAULT, jax.random.key(1), [DEFAULT_STEPS])[1].x
    changed, _ = slow_changes(x)
    np.testing.assert_array_equal(np.flatnonzero(changed) + 1, [10_000, 20_000])
    assert DEFAULT.params == {
        "variant": "redraw",
        "num_slow": 15,
        "num_fast": 5,
        "slow_period": 10_000,
        "num_target_units": 100,
        "beta": 0.7,
    }


def test_flipped_bit_is_uniform_and_redrawn_bits_are_fair(streams):
    x = streams["flip_one"][1].x
    flipped = np.argmax(x[PERIOD::PERIOD, :15] != x[PERIOD - 1 : -1 : PERIOD, :15], axis=1)
    # 199 choices among 15: each count Binomial(199, 1/15), mean 13.3, sd 3.5.
    counts = np.bincount(flipped, minlength=15)
    assert counts.sum() == 199 and counts.min() >= 2 and counts.max() <= 28, counts
    # Redrawn slow bits: 200 tasks × 15 bits, each 1 with probability 1/2 (sd of the mean 0.009).
    per_task = streams["redraw"][1].x[::PERIOD, :15]
    assert abs(per_task.mean() - 0.5) < 0.04
    assert np.all(np.abs(per_task.mean(axis=0) - 0.5) < 0.15)


def test_fast_bits_are_fair_and_fresh_each_step(variant_and_stream):
    _, stream = variant_and_stream
    fast = stream.x[:, 15:20].astype(np.float64)
    # About 20,000 fair bits per input: the mean has sd 0.0035.
    assert np.all(np.abs(fast.mean(axis=0) - 0.5) < 0.015)
    assert np.max(np.abs(np.corrcoef(fast.T) - np.eye(5))) < 0.04  # independent inputs
    assert abs(np.corrcoef(fast[1:].ravel(), fast[:-1].ravel())[0, 1]) < 0.02  # fresh each step


def test_target_network_weights_and_thresholds(streams):
    target = streams["redraw"][0].target
    weights = np.asarray(target.input_weights, np.float64)
    assert weights.shape == (100, 21) and target.output_weights.shape == (100,)
    for array in (weights, target.output_weights, target.output_bias):
        assert set(np.unique(array)) <= {-1.0, 1.0}
    assert 0.3 < (weights > 0).mean() < 0.7
    # θ_i = β (m + 1) − S_i, S_i = (m − Σ_{j<m} V_ij + b_i) / 2 (the authors' FixLTUNet).
    bias = weights[:, 20]
    expected = 0.7 * 21 - (20 - weights[:, :20].sum(axis=1) + bias) / 2
    np.testing.assert_allclose(target.thresholds, expected, rtol=1e-6)
    # Equivalently: a unit fires when at most 6 (bias +1) or 3 (bias −1) of the 20 bits differ
    # from the pattern its weights' signs select.
    x = np.asarray(streams["redraw"][1].x[:2_000], np.float64)
    mismatches = ((x[:, None, :20] > 0) != (weights[None, :, :20] > 0)).sum(axis=2)
    fires = mismatches <= np.where(bias > 0, 6, 3)
    np.testing.assert_array_equal(x @ weights.T > np.asarray(target.thresholds), fires)


def test_target_is_the_ltu_network_of_the_input(variant_and_stream, streams):
    variant, stream = variant_and_stream
    target = streams[variant][0].target
    x = stream.x.astype(np.float64)
    hidden = (x @ np.asarray(target.input_weights, np.float64).T) > np.asarray(target.thresholds)
    expected = hidden @ np.asarray(target.output_weights) + float(target.output_bias)
    np.testing.assert_array_equal(stream.y, expected)
    np.testing.assert_array_equal(ltu_network_output(target, stream.x[:50]), stream.y[:50])
    # Deterministic given x: equal inputs anywhere in the stream have equal targets.
    _, first, inverse = np.unique(stream.x, axis=0, return_index=True, return_inverse=True)
    np.testing.assert_array_equal(stream.y, stream.y[first][inverse.ravel()])
    assert len(first) < STEPS / 2 and np.std(stream.y) > 0.5


def test_stream_does_not_depend_on_block_sizes(blocks, streams_equal, variant_and_stream):
    variant, stream = variant_and_stream
    state, parts = blocks(PROBLEMS[variant], jax.random.key(0), [BLOCK] * 3)
    streams_equal(stream, parts)
    streams_equal(blocks(PROBLEMS[variant], jax.random.key(0), [STEPS])[0], state)
    assert int(state.step) == STEPS


def test_same_key_same_stream_other_key_other_stream(blocks, streams_equal):
    first = blocks(DEFAULT, jax.random.key(7), [DEFAULT_STEPS])
    streams_equal(first, blocks(DEFAULT, jax.random.key(7), [DEFAULT_STEPS]))
    other = blocks(DEFAULT, jax.random.key(8), [DEFAULT_STEPS])
    assert not np.array_equal(first[1].x, other[1].x)
    assert not np.array_equal(first[0].target.input_weights, other[0].target.input_weights)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"variant": "flip_all"}, "variant"),
        ({"num_slow": 0}, "num_slow"),
        ({"num_slow": 15.0}, "num_slow"),
        ({"num_fast": -1}, "num_fast"),
        ({"slow_period": 0}, "slow_period"),
        ({"slow_period": True}, "slow_period"),
        ({"num_target_units": 0}, "num_target_units"),
        ({"beta": float("nan")}, "beta"),
        ({"beta": "high"}, "beta"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        slowly_changing_regression(**kwargs)
