"""RMSprop (Degris et al. 2024 form) against a NumPy transcription of docs/methods.md#rmsprop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metastep.methods as ms
from metastep.learner import LinearLearner
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
    ("seed", "step_size", "normalizer_rate", "eps"),
    [(0, 0.01, 0.01, 1e-8), (1, 0.003, 0.1, 1e-8), (2, 0.01, 0.001, 1e-2)],
)
def test_matches_numpy_transcription(
    x64, nonstationary_data, seed, step_size, normalizer_rate, eps
):
    xs, ys = nonstationary_data(seed, steps=1500, num_features=5)
    method = ms.rmsprop(step_size, normalizer_rate, eps)
    predictions, step_sizes = run_learner(method, xs, ys)
    expected = rmsprop_reference(xs, ys, step_size, normalizer_rate, eps)
    # The check means something only if the step sizes moved.
    assert np.ptp(np.log(expected[1])) > 0.5
    assert_close(predictions, expected[0])
    assert_close(step_sizes, expected[1])


def test_initial_step_size_is_the_rule_at_zero_normalizer(x64):
    state = ms.rmsprop(0.01, eps=1e-4).init(jnp.zeros(3))
    np.testing.assert_allclose(ms.step_sizes(state), 0.01 / np.sqrt(1e-4), rtol=1e-12)


def test_nested_pytree_under_jit():
    params = {"layer": {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}, "scale": jnp.asarray(1.0)}
    grads = {"layer": {"w": jnp.full((2, 3), 2.0), "b": jnp.ones(3)}, "scale": jnp.asarray(-4.0)}
    method = ms.rmsprop(0.01, 0.5, 1e-8)
    updates, state = jax.jit(method.update)(grads, method.init(params), params, curvature=grads)
    assert jax.tree.structure(updates) == jax.tree.structure(params)
    # v = 0.5 g², so α = 0.01 / sqrt(0.5 g² + ε).
    expected = jax.tree.map(lambda g: 0.01 / jnp.sqrt(0.5 * g * g + 1e-8), grads)
    jax.tree.map(
        lambda a, e: np.testing.assert_allclose(a, jnp.broadcast_to(e, a.shape), rtol=1e-6),
        ms.step_sizes(state), expected,
    )
    jax.tree.map(
        lambda u, a, g: np.testing.assert_allclose(u, -a * g, rtol=1e-6),
        updates, ms.step_sizes(state), grads,
    )


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"step_size": -0.1}, "`step_size`"),
        ({"step_size": float("nan")}, "`step_size`"),
        ({"normalizer_rate": 1.5}, "`normalizer_rate`"),
        ({"normalizer_rate": -0.1}, "`normalizer_rate`"),
        ({"eps": -1e-8}, "`eps`"),
    ],
)
def test_invalid_hyperparameters_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ms.rmsprop(**kwargs)


def test_hyperparameters_can_be_traced(nonstationary_data):
    """Sweeps vmap over hyperparameters: no Python control flow may depend on their values."""
    xs, ys = nonstationary_data(4, steps=200, num_features=5)

    def final_step_sizes(step_size, normalizer_rate, eps):
        learner = LinearLearner(ms.rmsprop(step_size, normalizer_rate, eps), 5)
        state, _ = jax.lax.scan(
            lambda s, xy: learner.step(s, *xy), learner.init(), (jnp.asarray(xs), jnp.asarray(ys))
        )
        return learner.step_sizes(state)

    swept = jax.jit(jax.vmap(final_step_sizes))(
        jnp.array([0.01, 0.003]), jnp.array([0.01, 0.1]), jnp.array([1e-8, 1e-4])
    )
    np.testing.assert_allclose(swept[0], final_step_sizes(0.01, 0.01, 1e-8), rtol=1e-5)
    np.testing.assert_allclose(swept[1], final_step_sizes(0.003, 0.1, 1e-4), rtol=1e-5)
