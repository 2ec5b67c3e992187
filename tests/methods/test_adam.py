"""Adam (Degris et al. 2024 form) against a NumPy transcription of docs/methods.md#adam."""

import jax.numpy as jnp
import numpy as np
import pytest

import metastep.methods as ms
from helpers import assert_close, run_learner


def adam_reference(xs, ys, eta, gamma_m, gamma_g, eps):
    """Bias-corrected averages ``m̂``, ``v̂``; ``α = η / sqrt(v̂ + ε)``; ``w ← w − α m̂``."""
    w = np.zeros(xs.shape[1])
    m = np.zeros(xs.shape[1])
    v = np.zeros(xs.shape[1])
    predictions, step_sizes = [], []
    for t, (x, y) in enumerate(zip(xs, ys), start=1):
        prediction = w @ x
        g = -(y - prediction) * x
        m = m + gamma_m * (g - m)
        v = v + gamma_g * (g * g - v)
        m_hat = m / (1 - (1 - gamma_m) ** t)
        v_hat = v / (1 - (1 - gamma_g) ** t)
        alpha = eta / np.sqrt(v_hat + eps)
        w = w - alpha * m_hat
        predictions.append(prediction)
        step_sizes.append(alpha)
    return np.array(predictions), np.array(step_sizes)


@pytest.mark.parametrize(
    ("seed", "learning_rate", "momentum_rate", "normalizer_rate", "eps"),
    [
        (0, 0.01, 0.1, 0.001, 1e-8),
        (1, 0.003, 0.5, 0.01, 1e-8),
        (2, 0.01, 1.0, 0.1, 1e-2),  # γ_m = 1: no momentum
    ],
)
def test_matches_numpy_transcription(
    x64, nonstationary_data, seed, learning_rate, momentum_rate, normalizer_rate, eps
):
    xs, ys = nonstationary_data(seed, steps=1500, num_features=5)
    method = ms.adam(learning_rate, momentum_rate, normalizer_rate, eps)
    predictions, step_sizes = run_learner(method, xs, ys)
    expected = adam_reference(xs, ys, learning_rate, momentum_rate, normalizer_rate, eps)
    # The check means something only if the step sizes moved.
    assert np.ptp(np.log(expected[1])) > 0.5
    assert_close(predictions, expected[0])
    assert_close(step_sizes, expected[1])


def test_first_update_is_a_signed_step(x64):
    """With bias correction, m̂ = g and v̂ = g² at t = 1: the first update is −η g / sqrt(g² + ε)."""
    grads = jnp.array([0.5, -3.0, 0.0])
    method = ms.adam(0.01)
    updates, state = method.update(grads, method.init(jnp.zeros(3)))
    np.testing.assert_allclose(updates, -0.01 * grads / np.sqrt(grads**2 + 1e-8), rtol=1e-12)
    assert int(state.count) == 1


def test_zero_rates_stay_finite():
    """A rate of 0 leaves its average at 0; the bias correction must not turn that into 0/0."""
    method = ms.adam(0.01, momentum_rate=0.0, normalizer_rate=0.0, eps=1e-4)
    params = jnp.zeros(2)
    updates, state = method.update(jnp.array([1.0, -1.0]), method.init(params), params)
    np.testing.assert_array_equal(updates, 0.0)
    np.testing.assert_allclose(ms.step_sizes(state), 0.01 / np.sqrt(1e-4), rtol=1e-6)
