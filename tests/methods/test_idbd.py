"""IDBD against a NumPy transcription of the rule in docs/methods.md#idbd, and its behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metastep
import metastep.methods as ms
from metastep.learner import LinearLearner
from helpers import run_learner

META_STEP_SIZE = 0.01
INITIAL_STEP_SIZE = 0.05


def idbd_reference(xs, ys, theta, alpha0, min_beta=-np.inf, max_change=np.inf):
    """Sutton (1992), in the paper's δ form, with the optional safeguards."""
    w = np.zeros(xs.shape[1])
    beta = np.full(xs.shape[1], np.log(alpha0))
    h = np.zeros(xs.shape[1])
    predictions, step_sizes = [], []
    for x, y in zip(xs, ys):
        prediction = w @ x
        delta = y - prediction
        beta = np.maximum(beta + np.clip(theta * delta * x * h, -max_change, max_change), min_beta)
        alpha = np.exp(beta)
        w = w + alpha * delta * x
        h = h * np.maximum(1.0 - alpha * x * x, 0.0) + alpha * delta * x
        predictions.append(prediction)
        step_sizes.append(alpha)
    return np.array(predictions), np.array(step_sizes)


def lms_reference(xs, ys, alpha):
    w = np.zeros(xs.shape[1])
    predictions = []
    for x, y in zip(xs, ys):
        predictions.append(w @ x)
        w = w + alpha * (y - w @ x) * x
    return np.array(predictions)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_numpy_transcription(x64, nonstationary_data, seed):
    xs, ys = nonstationary_data(seed, steps=1500, num_features=5)
    predictions, step_sizes = run_learner(ms.idbd(META_STEP_SIZE, INITIAL_STEP_SIZE), xs, ys)
    expected_predictions, expected_step_sizes = idbd_reference(
        xs, ys, META_STEP_SIZE, INITIAL_STEP_SIZE
    )
    # The check means something only if the step sizes moved.
    assert np.ptp(np.log(expected_step_sizes)) > 0.5
    np.testing.assert_allclose(predictions, expected_predictions, rtol=1e-9)
    np.testing.assert_allclose(step_sizes, expected_step_sizes, rtol=1e-9)


def test_zero_meta_step_size_is_lms(x64, nonstationary_data):
    xs, ys = nonstationary_data(2, steps=1500, num_features=5)
    predictions, step_sizes = run_learner(ms.idbd(0.0, INITIAL_STEP_SIZE), xs, ys)
    np.testing.assert_allclose(predictions, lms_reference(xs, ys, INITIAL_STEP_SIZE), rtol=1e-9)
    np.testing.assert_allclose(step_sizes, INITIAL_STEP_SIZE, rtol=1e-12)


def test_step_sizes_ignore_the_sign_of_the_target(x64, nonstationary_data):
    xs, ys = nonstationary_data(3, steps=1500, num_features=5)
    method = ms.idbd(META_STEP_SIZE, INITIAL_STEP_SIZE)
    predictions, step_sizes = run_learner(method, xs, ys)
    flipped_predictions, flipped_step_sizes = run_learner(method, xs, -ys)
    np.testing.assert_allclose(flipped_predictions, -predictions, rtol=1e-12)
    np.testing.assert_allclose(flipped_step_sizes, step_sizes, rtol=1e-12)


def test_tensor_granularity_on_one_array_equals_scalar(x64, nonstationary_data):
    xs, ys = nonstationary_data(4, steps=1000, num_features=5)
    tensor = run_learner(ms.idbd(META_STEP_SIZE, INITIAL_STEP_SIZE, granularity="tensor"), xs, ys)
    scalar = run_learner(ms.idbd(META_STEP_SIZE, INITIAL_STEP_SIZE, granularity="scalar"), xs, ys)
    np.testing.assert_allclose(tensor[0], scalar[0], rtol=1e-12)
    np.testing.assert_allclose(tensor[1], scalar[1], rtol=1e-12)
    # One step size shared by all weights, and it moved.
    assert np.all(tensor[1] == tensor[1][:, :1])
    assert np.ptp(tensor[1]) > 0.0


def test_tensor_granularity_shares_one_step_size_per_leaf(x64, nonstationary_data):
    """A linear unit whose weights are split in two arrays; β_b ← β_b + θ Σ_{i∈b} δ x_i h_i."""
    xs, ys = nonstationary_data(5, steps=1000, num_features=5)
    blocks = [slice(0, 2), slice(2, 5)]
    # A smaller θ than elsewhere: with θ = 0.01 the shared step size of the large-scale block
    # collapses below the smallest float64 (IDBD's meta-step is not normalized).
    meta_step_size = 0.001
    method = ms.idbd(meta_step_size, INITIAL_STEP_SIZE, granularity="tensor")

    def step(carry, data):
        params, opt_state = carry
        x, y = data
        inputs = {"a": x[blocks[0]], "b": x[blocks[1]]}
        prediction = sum(jnp.dot(params[k], inputs[k]) for k in params)
        grads = jax.tree.map(lambda xi: -(y - prediction) * xi, inputs)
        curvature = jax.tree.map(jnp.square, inputs)
        updates, opt_state = method.update(grads, opt_state, params, curvature=curvature)
        params = jax.tree.map(jnp.add, params, updates)
        step_sizes = jnp.concatenate([opt_state.step_sizes["a"], opt_state.step_sizes["b"]])
        return (params, opt_state), (prediction, step_sizes)

    params = {"a": jnp.zeros(2), "b": jnp.zeros(3)}
    run = jax.jit(lambda carry, xs, ys: jax.lax.scan(step, carry, (xs, ys)))
    _, (predictions, step_sizes) = run((params, method.init(params)), jnp.asarray(xs), ys)

    w = np.zeros(5)
    beta = np.full(len(blocks), np.log(INITIAL_STEP_SIZE))
    h = np.zeros(5)
    expected_predictions, expected_step_sizes = [], []
    for x, y in zip(xs, ys):
        prediction = w @ x
        delta = y - prediction
        beta = beta + meta_step_size * np.array([np.sum(delta * x[b] * h[b]) for b in blocks])
        alpha = np.concatenate(
            [np.full(b.stop - b.start, np.exp(beta[k])) for k, b in enumerate(blocks)]
        )
        w = w + alpha * delta * x
        h = h * np.maximum(1.0 - alpha * x * x, 0.0) + alpha * delta * x
        expected_predictions.append(prediction)
        expected_step_sizes.append(alpha)

    expected_step_sizes = np.array(expected_step_sizes)
    assert np.ptp(np.log(expected_step_sizes), axis=0).min() > 0.1
    np.testing.assert_allclose(predictions, expected_predictions, rtol=1e-9)
    np.testing.assert_allclose(step_sizes, expected_step_sizes, rtol=1e-9)


def test_min_log_step_size_is_a_floor(x64, nonstationary_data):
    xs, ys = nonstationary_data(6, steps=1000, num_features=5)
    floor = np.log(INITIAL_STEP_SIZE) - 0.3
    method = ms.idbd(0.1, INITIAL_STEP_SIZE, min_log_step_size=floor)
    predictions, step_sizes = run_learner(method, xs, ys)
    log_step_sizes = np.log(step_sizes)
    assert log_step_sizes.min() >= floor - 1e-12
    assert np.sum(np.isclose(log_step_sizes, floor, rtol=0, atol=1e-12)) > 10  # it binds
    expected = idbd_reference(xs, ys, 0.1, INITIAL_STEP_SIZE, min_beta=floor)
    np.testing.assert_allclose(predictions, expected[0], rtol=1e-9)
    np.testing.assert_allclose(step_sizes, expected[1], rtol=1e-9)


def test_max_log_step_size_change_bounds_each_step(x64, nonstationary_data):
    xs, ys = nonstationary_data(7, steps=1000, num_features=5)
    bound = 0.02
    method = ms.idbd(0.1, INITIAL_STEP_SIZE, max_log_step_size_change=bound)
    predictions, step_sizes = run_learner(method, xs, ys)
    changes = np.abs(
        np.diff(np.log(np.vstack([np.full(5, INITIAL_STEP_SIZE), step_sizes])), axis=0)
    )
    assert changes.max() <= bound + 1e-12
    assert np.sum(np.isclose(changes, bound, rtol=0, atol=1e-12)) > 10  # it binds
    expected = idbd_reference(xs, ys, 0.1, INITIAL_STEP_SIZE, max_change=bound)
    np.testing.assert_allclose(predictions, expected[0], rtol=1e-9)
    np.testing.assert_allclose(step_sizes, expected[1], rtol=1e-9)


def test_per_weight_initial_step_sizes(x64, nonstationary_data):
    """A per-weight α₀ starts each weight at its own step size; θ = 0 keeps them (LMS)."""
    xs, ys = nonstationary_data(seed=3, steps=300, num_features=5)
    initial = np.array([0.01, 0.02, 0.03, 0.04, 0.05])
    learner = LinearLearner(ms.idbd(0.0, jnp.asarray(initial)), 5)
    trace = metastep.run_arrays(learner, xs, ys)
    np.testing.assert_allclose(trace.step_sizes, np.broadcast_to(initial, (300, 5)), rtol=1e-12)
    weights = np.zeros(5)
    for x, y, prediction in zip(xs, ys, trace.predictions):
        np.testing.assert_allclose(prediction, weights @ x, rtol=1e-9, atol=1e-12)
        weights = weights + initial * (y - weights @ x) * x
    with pytest.raises(ValueError, match="initial_step_size"):
        ms.idbd(0.01, np.array([0.1, -0.1]))
    with pytest.raises(ValueError, match="initial_step_size"):
        LinearLearner(ms.idbd(0.01, jnp.ones(3)), 5).init()
    with pytest.raises(ValueError, match="granularity"):
        LinearLearner(ms.idbd(0.01, jnp.ones(5), granularity="scalar"), 5).init()
