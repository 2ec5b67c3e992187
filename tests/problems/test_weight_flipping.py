"""Weight flipping (Sutton 1992): the flip schedule, weights and inputs, the stream protocol."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metastep.problems import weight_flipping

PROBLEM = weight_flipping()
STEPS = 3_000


@pytest.fixture(scope="module")
def stream(blocks):
    return blocks(PROBLEM, jax.random.key(0), [STEPS])[1]


def test_shapes_and_dtype(stream):
    assert stream.x.shape == (STEPS, 20)
    assert stream.y.shape == (STEPS,)
    assert stream.info["true_weights"].shape == (STEPS, 20)
    assert stream.x.dtype == stream.y.dtype == np.float32


def test_float64_under_x64(x64):
    state = PROBLEM.init(jax.random.key(0))
    samples = jax.eval_shape(lambda s: PROBLEM.generate(s, 10), state)[1]
    assert state.signs.dtype == jnp.float64
    assert samples.x.dtype == samples.y.dtype == samples.info["true_weights"].dtype == jnp.float64


def test_exactly_one_relevant_weight_flips_at_each_multiple_of_flip_every(stream):
    weights = stream.info["true_weights"]
    changed = weights[1:] != weights[:-1]  # changed[t − 1]: the weights of step t differ from t − 1
    steps = np.arange(1, STEPS)
    np.testing.assert_array_equal(changed.sum(axis=1), (steps % 20 == 0).astype(int))
    assert not changed[:, 5:].any()
    # A change is a sign flip, and example 20 is the first to see one.
    np.testing.assert_array_equal(weights[1:][changed], -weights[:-1][changed])
    assert (weights[:20] == weights[0]).all() and (weights[20] != weights[0]).any()


def test_flipped_weight_is_chosen_uniformly_and_initial_signs_at_random(blocks):
    counts, initial_signs = np.zeros(5, int), []
    for seed in range(10):
        weights = blocks(PROBLEM, jax.random.key(100 + seed), [STEPS])[1].info["true_weights"]
        flipped = np.argmax(weights[20::20] != weights[19:-1:20], axis=1)
        counts += np.bincount(flipped, minlength=5)
        initial_signs.append(np.sign(weights[0, :5]))
    # Binomial(1490, 1/5) each: mean 298, sd 15.4.
    assert counts.sum() == 1_490
    assert np.all(np.abs(counts - 298) < 62), counts
    # 50 fair signs: mean 0, sd 0.14; and not the same pattern in every seed.
    assert abs(np.mean(initial_signs)) < 0.5
    assert len({tuple(signs) for signs in initial_signs}) > 1


def test_irrelevant_weights_are_zero_and_relevant_magnitudes_scale_even_when_traced():
    scales = jnp.array([0.1, 1.0, 10.0])

    def stream(scale):
        return weight_flipping(scale=scale).sample(jax.random.key(5), 500)

    samples = jax.vmap(stream)(scales)
    weights = np.asarray(samples.info["true_weights"])
    magnitudes = np.broadcast_to(scales[:, None, None], (3, 500, 5))
    np.testing.assert_array_equal(np.abs(weights[:, :, :5]), magnitudes)
    np.testing.assert_array_equal(weights[:, :, 5:], 0.0)
    # Same key, same signs and inputs: the targets scale with `scale`.
    np.testing.assert_allclose(samples.y[0] * 10, samples.y[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(samples.y[2] / 10, samples.y[1], rtol=1e-5, atol=1e-6)


def test_inputs_are_standard_normal(stream):
    x = stream.x.astype(np.float64)
    # Per input, 3,000 draws: the mean has sd 0.018, the variance sd 0.026.
    assert np.all(np.abs(x.mean(axis=0)) < 0.08)
    assert np.all(np.abs(x.var(axis=0) - 1) < 0.12)
    assert abs(np.mean(x**4) / np.mean(x**2) ** 2 - 3) < 0.15  # Gaussian kurtosis
    assert np.max(np.abs(np.corrcoef(x.T) - np.eye(20))) < 0.08  # independent inputs
    assert abs(np.corrcoef(x[1:].ravel(), x[:-1].ravel())[0, 1]) < 0.02  # fresh each step


def test_target_is_the_true_weights_times_the_inputs(stream):
    expected = np.sum(stream.x.astype(np.float64) * stream.info["true_weights"], axis=1)
    np.testing.assert_allclose(stream.y, expected, rtol=1e-6, atol=1e-6)


def test_stream_does_not_depend_on_block_sizes(blocks, streams_equal, stream):
    state, parts = blocks(PROBLEM, jax.random.key(0), [1_000, 500, 1_500])
    streams_equal(stream, parts)
    streams_equal(blocks(PROBLEM, jax.random.key(0), [STEPS])[0], state)
    assert int(state.step) == STEPS


def test_same_key_same_stream_other_key_other_stream(blocks, streams_equal):
    first = blocks(PROBLEM, jax.random.key(7), [500])[1]
    streams_equal(first, blocks(PROBLEM, jax.random.key(7), [500])[1])
    assert not np.array_equal(first.x, blocks(PROBLEM, jax.random.key(8), [500])[1].x)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_inputs": 0}, "num_inputs"),
        ({"num_inputs": 20.0}, "num_inputs"),
        ({"num_relevant": 0}, "num_relevant"),
        ({"num_relevant": 21}, "num_relevant"),
        ({"flip_every": 0}, "flip_every"),
        ({"flip_every": True}, "flip_every"),
        ({"scale": 0.0}, "scale"),
        ({"scale": -1.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        weight_flipping(**kwargs)
