"""The ΔΔ rule against a NumPy transcription of docs/methods.md#delta_delta, and its behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metastep.methods as ms
from metastep.learner import LinearLearner
from helpers import assert_close, run_learner

INITIAL_STEP_SIZE = 0.01
MIN_STEP_SIZE = 1e-6


def delta_delta_reference(xs, ys, kappa, alpha0, floor):
    """``α ← max(α + κ Δ_{t−1} Δ_t, floor)``, ``w ← w − α g``, with ``Δ`` the weight changes."""
    w = np.zeros(xs.shape[1])
    alpha = np.full(xs.shape[1], alpha0)
    last_change = np.zeros(xs.shape[1])
    change_before = np.zeros(xs.shape[1])
    predictions, step_sizes = [], []
    for x, y in zip(xs, ys):
        prediction = w @ x
        g = -(y - prediction) * x
        alpha = np.maximum(alpha + kappa * change_before * last_change, floor)
        new_w = w - alpha * g
        change_before, last_change = last_change, new_w - w
        w = new_w
        predictions.append(prediction)
        step_sizes.append(alpha)
    return np.array(predictions), np.array(step_sizes)


def lms_predictions(xs, ys, alpha):
    w = np.zeros(xs.shape[1])
    predictions = []
    for x, y in zip(xs, ys):
        predictions.append(w @ x)
        w = w + alpha * (y - w @ x) * x
    return np.array(predictions)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_numpy_transcription(x64, nonstationary_data, seed):
    xs, ys = nonstationary_data(seed, steps=1500, num_features=5)
    predictions, step_sizes = run_learner(ms.delta_delta(0.1, INITIAL_STEP_SIZE), xs, ys)
    expected = delta_delta_reference(xs, ys, 0.1, INITIAL_STEP_SIZE, MIN_STEP_SIZE)
    # The check means something only if the step sizes moved.
    assert np.ptp(np.log(expected[1])) > 0.1
    assert_close(predictions, expected[0])
    assert_close(step_sizes, expected[1])


def test_floor_binds_and_matches(x64, nonstationary_data):
    xs, ys = nonstationary_data(2, steps=1500, num_features=5)
    floor = 3e-3
    predictions, step_sizes = run_learner(
        ms.delta_delta(0.2, INITIAL_STEP_SIZE, min_step_size=floor), xs, ys
    )
    expected = delta_delta_reference(xs, ys, 0.2, INITIAL_STEP_SIZE, floor)
    assert step_sizes.min() >= floor
    assert np.sum(step_sizes == floor) > 10  # it binds
    assert_close(predictions, expected[0])
    assert_close(step_sizes, expected[1])


def test_zero_meta_step_size_is_lms(x64, nonstationary_data):
    xs, ys = nonstationary_data(3, steps=1500, num_features=5)
    predictions, step_sizes = run_learner(ms.delta_delta(0.0, INITIAL_STEP_SIZE), xs, ys)
    sgd_predictions, _ = run_learner(ms.sgd(INITIAL_STEP_SIZE), xs, ys)
    assert_close(predictions, sgd_predictions)
    assert_close(predictions, lms_predictions(xs, ys, INITIAL_STEP_SIZE))
    np.testing.assert_array_equal(step_sizes, INITIAL_STEP_SIZE)


def test_nested_pytree_under_jit():
    params = {"layer": {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}, "scale": jnp.asarray(1.0)}
    grads = {"layer": {"w": jnp.full((2, 3), 2.0), "b": jnp.ones(3)}, "scale": jnp.asarray(-4.0)}
    method = ms.delta_delta(10.0, 0.1)
    update = jax.jit(method.update)
    state = method.init(params)
    for _ in range(3):  # the third update sees two same-sign changes
        updates, state = update(grads, state, params, curvature=grads)
    assert jax.tree.structure(updates) == jax.tree.structure(params)
    # Δ = −0.1 g twice, so α = 0.1 + 10 (0.1 g)².
    expected = jax.tree.map(lambda g: 0.1 + 10.0 * (0.1 * g) ** 2, grads)
    jax.tree.map(
        lambda a, e: np.testing.assert_allclose(a, jnp.broadcast_to(e, a.shape), rtol=1e-6),
        ms.step_sizes(state),
        expected,
    )
    jax.tree.map(
        lambda u, a, g: np.testing.assert_allclose(u, -a * g, rtol=1e-6),
        updates,
        state.step_sizes,
        grads,
    )


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"meta_step_size": -0.1}, "`meta_step_size`"),
        ({"initial_step_size": 0.0}, "`initial_step_size`"),
        ({"initial_step_size": float("nan")}, "`initial_step_size`"),
        ({"min_step_size": 0.0}, "`min_step_size`"),
        ({"min_step_size": -1e-6}, "`min_step_size`"),
    ],
)
def test_invalid_hyperparameters_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ms.delta_delta(**kwargs)


def test_hyperparameters_can_be_traced(nonstationary_data):
    """Sweeps vmap over hyperparameters: no Python control flow may depend on their values."""
    xs, ys = nonstationary_data(5, steps=200, num_features=5)

    def final_step_sizes(meta_step_size, initial_step_size):
        learner = LinearLearner(ms.delta_delta(meta_step_size, initial_step_size), 5)
        state, _ = jax.lax.scan(
            lambda s, xy: learner.step(s, *xy), learner.init(), (jnp.asarray(xs), jnp.asarray(ys))
        )
        return learner.step_sizes(state)

    swept = jax.jit(jax.vmap(final_step_sizes))(jnp.array([0.0, 0.1]), jnp.array([0.01, 0.02]))
    np.testing.assert_allclose(swept[0], 0.01, rtol=1e-6)
    np.testing.assert_allclose(swept[1], final_step_sizes(0.1, 0.02), rtol=1e-5)
