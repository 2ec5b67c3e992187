"""SGD-HD and Adam-HD against NumPy transcriptions of
docs/methods.md#hypergradient and docs/methods.md#adam_hypergradient; their behaviour."""

import jax.numpy as jnp
import numpy as np
import pytest

import metastep.methods as ms
from helpers import assert_close, run_learner

INITIAL_STEP_SIZE = 0.01
# SGD-HD's meta step size is not normalized: 1e-4 already blows up some of these streams.
META_STEP_SIZE = 3e-5


def hypergradient_reference(xs, ys, beta, alpha0, per_weight, floor=-np.inf):
    """Baydin et al. (2018), SGD-HD: ``α ← α + β g_t·g_{t−1}``, ``w ← w − α g_t``."""
    n = xs.shape[1]
    w = np.zeros(n)
    alpha = np.full(n, alpha0) if per_weight else alpha0
    previous_g = np.zeros(n)
    predictions, step_sizes = [], []
    for x, y in zip(xs, ys):
        prediction = w @ x
        g = -(y - prediction) * x
        alpha = np.maximum(alpha + beta * (g * previous_g if per_weight else g @ previous_g), floor)
        w = w - alpha * g
        previous_g = g
        predictions.append(prediction)
        step_sizes.append(np.broadcast_to(alpha, n))
    return np.array(predictions), np.array(step_sizes)


def adam_hypergradient_reference(xs, ys, beta, alpha0, gamma_m, gamma_g, eps, per_weight):
    """Adam-HD: ``α ← α + β g_t·d_{t−1}``, Adam (Degris form), ``w ← w − α d_t``.

    Returns predictions, reported step sizes ``α / sqrt(v̂ + ε)`` and the learned ``α``s.
    """
    n = xs.shape[1]
    w = np.zeros(n)
    alpha = np.full(n, alpha0) if per_weight else alpha0
    previous_direction = np.zeros(n)
    m = np.zeros(n)
    v = np.zeros(n)
    predictions, step_sizes, learned = [], [], []
    for t, (x, y) in enumerate(zip(xs, ys), start=1):
        prediction = w @ x
        g = -(y - prediction) * x
        alpha = alpha + beta * (
            g * previous_direction if per_weight else g @ previous_direction
        )
        m = m + gamma_m * (g - m)
        v = v + gamma_g * (g * g - v)
        m_hat = m / (1 - (1 - gamma_m) ** t)
        v_hat = v / (1 - (1 - gamma_g) ** t)
        previous_direction = m_hat / np.sqrt(v_hat + eps)
        w = w - alpha * previous_direction
        predictions.append(prediction)
        step_sizes.append(alpha / np.sqrt(v_hat + eps))
        learned.append(alpha)
    return np.array(predictions), np.array(step_sizes), np.array(learned)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("granularity", ["scalar", "weight"])
def test_sgd_hd_matches_numpy_transcription(x64, nonstationary_data, seed, granularity):
    xs, ys = nonstationary_data(seed, steps=1500, num_features=5)
    method = ms.hypergradient(META_STEP_SIZE, INITIAL_STEP_SIZE, granularity)
    predictions, step_sizes = run_learner(method, xs, ys)
    expected = hypergradient_reference(
        xs, ys, META_STEP_SIZE, INITIAL_STEP_SIZE, per_weight=granularity == "weight"
    )
    # The check means something only if the step sizes moved.
    assert np.ptp(expected[1]) > 0.5 * INITIAL_STEP_SIZE
    assert_close(predictions, expected[0])
    assert_close(step_sizes, expected[1])


def test_sgd_hd_tensor_granularity_on_one_array_equals_scalar(x64, nonstationary_data):
    xs, ys = nonstationary_data(3, steps=1500, num_features=5)
    tensor = run_learner(ms.hypergradient(META_STEP_SIZE, INITIAL_STEP_SIZE, "tensor"), xs, ys)
    scalar = run_learner(ms.hypergradient(META_STEP_SIZE, INITIAL_STEP_SIZE, "scalar"), xs, ys)
    assert_close(tensor[0], scalar[0])
    assert_close(tensor[1], scalar[1])
    assert np.all(tensor[1] == tensor[1][:, :1])
    assert np.ptp(tensor[1]) > 0.0


def test_zero_meta_step_size_is_lms(x64, nonstationary_data):
    xs, ys = nonstationary_data(2, steps=1500, num_features=5)
    sgd_predictions, _ = run_learner(ms.sgd(INITIAL_STEP_SIZE), xs, ys)
    for granularity in ("scalar", "tensor", "weight"):
        method = ms.hypergradient(0.0, INITIAL_STEP_SIZE, granularity)
        predictions, step_sizes = run_learner(method, xs, ys)
        assert_close(predictions, sgd_predictions)
        np.testing.assert_array_equal(step_sizes, INITIAL_STEP_SIZE)


def test_step_size_can_go_negative_unless_floored():
    """The paper does not clip α; ``min_step_size`` is an opt-in floor."""
    params = jnp.zeros(2)
    grads = [jnp.array([1.0, 2.0]), jnp.array([-1.0, -2.0])]  # g_t·g_{t−1} = −5
    for floor, expected_alpha in [(None, 0.1 - 5.0), (0.0, 0.0)]:
        method = ms.hypergradient(1.0, 0.1, min_step_size=floor)
        state = method.init(params)
        for g in grads:
            updates, state = method.update(g, state, params)
        np.testing.assert_allclose(state.learned_step_size, expected_alpha, rtol=1e-6)
        np.testing.assert_allclose(updates, -expected_alpha * grads[1], rtol=1e-6)


def test_sgd_hd_floor_matches_numpy_transcription(x64, nonstationary_data):
    xs, ys = nonstationary_data(4, steps=1500, num_features=5)
    floor = 0.005
    method = ms.hypergradient(3e-4, INITIAL_STEP_SIZE, "weight", min_step_size=floor)
    predictions, step_sizes = run_learner(method, xs, ys)
    expected = hypergradient_reference(xs, ys, 3e-4, INITIAL_STEP_SIZE, True, floor=floor)
    assert np.sum(step_sizes == floor) > 10  # it binds
    assert_close(predictions, expected[0])
    assert_close(step_sizes, expected[1])


@pytest.mark.parametrize("granularity", ["scalar", "weight"])
def test_adam_hd_matches_numpy_transcription(x64, nonstationary_data, granularity):
    xs, ys = nonstationary_data(5, steps=1500, num_features=5)
    beta, gamma_m, gamma_g, eps = 1e-4, 0.1, 0.001, 1e-8
    method = ms.adam_hypergradient(
        beta, INITIAL_STEP_SIZE, gamma_m, gamma_g, eps, granularity=granularity
    )
    predictions, step_sizes = run_learner(method, xs, ys)
    expected = adam_hypergradient_reference(
        xs, ys, beta, INITIAL_STEP_SIZE, gamma_m, gamma_g, eps, granularity == "weight"
    )
    # The check means something only if the learned α moved.
    assert np.ptp(expected[2]) > 0.5 * INITIAL_STEP_SIZE
    assert_close(predictions, expected[0])
    assert_close(step_sizes, expected[1])


def test_adam_hd_zero_meta_step_size_is_adam(x64, nonstationary_data):
    xs, ys = nonstationary_data(6, steps=1500, num_features=5)
    adam = run_learner(ms.adam(INITIAL_STEP_SIZE), xs, ys)
    adam_hd = run_learner(ms.adam_hypergradient(0.0, INITIAL_STEP_SIZE), xs, ys)
    assert_close(adam_hd[0], adam[0])
    assert_close(adam_hd[1], adam[1])
