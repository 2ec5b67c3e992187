"""LMS / SGD against a NumPy transcription of the rule in docs/methods.md#sgd; its behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metastep.methods as ms
from helpers import assert_close, run_learner


def lms_reference(xs, ys, alpha):
    """``w ← w − α g`` with ``g = −δ x``; ``α`` a number or one per weight."""
    alpha = np.broadcast_to(alpha, xs.shape[1])
    w = np.zeros(xs.shape[1])
    predictions, step_sizes = [], []
    for x, y in zip(xs, ys):
        prediction = w @ x
        g = -(y - prediction) * x
        w = w - alpha * g
        predictions.append(prediction)
        step_sizes.append(alpha)
    return np.array(predictions), np.array(step_sizes)


@pytest.mark.parametrize("learning_rate", [0.02, np.array([0.001, 0.005, 0.01, 0.02, 0.03])])
def test_matches_numpy_transcription(x64, nonstationary_data, learning_rate):
    xs, ys = nonstationary_data(0, steps=1500, num_features=5)
    predictions, step_sizes = run_learner(ms.sgd(learning_rate), xs, ys)
    expected_predictions, expected_step_sizes = lms_reference(xs, ys, learning_rate)
    assert_close(predictions, expected_predictions)
    assert_close(step_sizes, expected_step_sizes)


def test_per_weight_step_sizes_on_a_nested_pytree_under_jit():
    params = {"layer": {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}, "scale": jnp.asarray(1.0)}
    grads = {"layer": {"w": jnp.full((2, 3), 2.0), "b": jnp.ones(3)}, "scale": jnp.asarray(-4.0)}
    # One α per row of w (broadcast), one for all of b, and the scalar's own.
    learning_rate = {"layer": {"w": jnp.array([[0.1], [0.2]]), "b": 0.5}, "scale": 0.25}
    method = ms.sgd(learning_rate)
    state = method.init(params)
    updates, state = jax.jit(method.update)(grads, state, params, curvature=grads)
    assert jax.tree.structure(updates) == jax.tree.structure(params)
    np.testing.assert_allclose(updates["layer"]["w"], [[-0.2] * 3, [-0.4] * 3])
    np.testing.assert_allclose(updates["layer"]["b"], -0.5)
    np.testing.assert_allclose(updates["scale"], 1.0)
    np.testing.assert_allclose(ms.step_sizes(state)["layer"]["w"], [[0.1] * 3, [0.2] * 3])
    assert ms.step_sizes(state)["layer"]["b"].shape == (3,)


def test_step_size_pytree_is_checked_at_init():
    params = {"w": jnp.ones(3), "b": jnp.zeros(())}
    with pytest.raises(ValueError, match="`learning_rate`"):
        ms.sgd({"w": jnp.full(3, 0.1)}).init(params)  # missing leaf
    with pytest.raises(ValueError, match="`learning_rate`"):
        ms.sgd({"w": jnp.full(2, 0.1), "b": 0.1}).init(params)  # shape does not broadcast


def test_float64_follows_the_parameters(x64):
    state = ms.sgd(np.float32(0.01)).init({"w": jnp.zeros(3, jnp.float64)})
    assert state.step_sizes["w"].dtype == jnp.float64
