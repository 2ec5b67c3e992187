"""Two-dimensional switching (the talk): w1* = 0, w2* = ±1 switching at boundaries, the protocol."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metastep.problems import switching_2d

PROBLEM = switching_2d()
STEPS = 3_000


@pytest.fixture(scope="module")
def stream(blocks):
    return blocks(PROBLEM, jax.random.key(0), [STEPS])[1]


def test_shapes_and_dtype(stream):
    assert stream.x.shape == (STEPS, 2) and stream.y.shape == (STEPS,)
    assert stream.info["true_weights"].shape == (STEPS, 2)
    assert stream.x.dtype == stream.y.dtype == np.float32


def test_float64_under_x64(x64):
    state = PROBLEM.init(jax.random.key(0))
    samples = jax.eval_shape(lambda s: PROBLEM.generate(s, 10), state)[1]
    assert state.sign.dtype == jnp.float64
    assert samples.x.dtype == samples.y.dtype == samples.info["true_weights"].dtype == jnp.float64


def test_first_weight_is_zero_and_second_starts_at_one_and_switches_only_at_boundaries(stream):
    weights = stream.info["true_weights"]
    np.testing.assert_array_equal(weights[:, 0], 0.0)
    np.testing.assert_array_equal(np.abs(weights[:, 1]), 1.0)
    np.testing.assert_array_equal(weights[:20, 1], 1.0)
    switched = np.flatnonzero(weights[1:, 1] != weights[:-1, 1]) + 1
    assert len(switched) > 0 and np.all(switched % 20 == 0)


def test_switch_rate_is_the_flip_probability_even_when_traced():
    # All rates in one compiled stream, vmapped over the probability: 999 boundaries each.
    probabilities = jnp.array([0.5, 0.2, 1.0, 0.0])

    def second_weight(p):
        stream = switching_2d(flip_probability=p).sample(jax.random.key(1), 20_000)
        return stream.info["true_weights"][:, 1]

    weights = np.asarray(jax.vmap(second_weight)(probabilities))
    for p, w in zip([0.5, 0.2], weights[:2], strict=True):
        rate = np.mean(w[20::20] != w[19:-1:20])
        assert abs(rate - p) < 4 * np.sqrt(p * (1 - p) / 999), (p, rate)
    # Probability 1 alternates deterministically; probability 0 never switches.
    np.testing.assert_array_equal(weights[2], (-1.0) ** (np.arange(20_000) // 20))
    np.testing.assert_array_equal(weights[3], 1.0)


def test_inputs_are_standard_normal_and_target_exact(stream):
    x = stream.x.astype(np.float64)
    assert np.all(np.abs(x.mean(axis=0)) < 0.08)  # sd 0.018
    assert np.all(np.abs(x.var(axis=0) - 1) < 0.12)  # sd 0.026
    assert abs(np.corrcoef(x.T)[0, 1]) < 0.08
    expected = np.sum(x * stream.info["true_weights"], axis=1)
    np.testing.assert_allclose(stream.y, expected, rtol=1e-6, atol=1e-6)


def test_stream_does_not_depend_on_block_sizes(blocks, streams_equal, stream):
    state, parts = blocks(PROBLEM, jax.random.key(0), [1_000, 500, 1_500])
    streams_equal(stream, parts)
    streams_equal(blocks(PROBLEM, jax.random.key(0), [STEPS])[0], state)


def test_same_key_same_stream_other_key_other_stream(blocks, streams_equal, stream):
    streams_equal(stream, blocks(PROBLEM, jax.random.key(0), [STEPS])[1])
    assert not np.array_equal(stream.x, blocks(PROBLEM, jax.random.key(2), [STEPS])[1].x)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"flip_every": 0}, "flip_every"),
        ({"flip_every": 2.5}, "flip_every"),
        ({"flip_probability": -0.1}, "flip_probability"),
        ({"flip_probability": 1.5}, "flip_probability"),
        ({"flip_probability": float("nan")}, "flip_probability"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        switching_2d(**kwargs)
