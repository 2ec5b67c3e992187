"""RMSprop (Degris et al. 2024 form) against a NumPy transcription of docs/methods.md#rmsprop."""

import jax.numpy as jnp
import numpy as np
import pytest

import metastep.methods as ms
from helpers import assert_close, run_learner


def rmsprop_reference(xs, ys, eta, gamma_g, eps):
    """``v ← v + γ_g (g² − v)``, ``α = η / sqrt(v + ε)``, ``w ← w − α g``."""
    w = np.zeros(xs.shape[1])
    v = np.zeros(xs.shape[1])
    predictions, step_sizes = [], []
    for x, y in zip(xs, ys):
        prediction = w @ x
        g = -(y - prediction) * x
        v = v + gamma_g * (g * g - v)
        alpha = eta / np.sqrt(v + eps)
        w = w - alpha * g
        predictions.append(prediction)
        step_sizes.append(alpha)
    return np.array(predictions), np.array(step_sizes)


@pytest.mark.parametrize(
    ("seed", "learning_rate", "normalizer_rate", "eps"),
    [(0, 0.01, 0.01, 1e-8), (1, 0.003, 0.1, 1e-8), (2, 0.01, 0.001, 1e-2)],
)
def test_matches_numpy_transcription(
    x64, nonstationary_data, seed, learning_rate, normalizer_rate, eps
):
    xs, ys = nonstationary_data(seed, steps=1500, num_features=5)
    method = ms.rmsprop(learning_rate, normalizer_rate, eps)
    predictions, step_sizes = run_learner(method, xs, ys)
    expected = rmsprop_reference(xs, ys, learning_rate, normalizer_rate, eps)
    # The check means something only if the step sizes moved.
    assert np.ptp(np.log(expected[1])) > 0.5
    assert_close(predictions, expected[0])
    assert_close(step_sizes, expected[1])


def test_initial_step_size_is_the_rule_at_zero_normalizer(x64):
    state = ms.rmsprop(0.01, eps=1e-4).init(jnp.zeros(3))
    np.testing.assert_allclose(ms.step_sizes(state), 0.01 / np.sqrt(1e-4), rtol=1e-12)
