"""Autostep against a NumPy transcription of the rule in docs/methods.md#autostep; its behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metastep.methods as ms
from metastep.learner import LinearLearner
from helpers import run_dense_kernel, run_learner

INITIAL_STEP_SIZE = 0.05


def autostep_reference(xs, ys, mu, tau, alpha0):
    """Mahmood et al. (2012), in the δ form, for a linear unit (targets ``ys`` [steps]) or a dense
    layer ``y = x @ W`` (targets [steps, outputs], one M per output column).

    Returns predictions, step sizes and the M of every step.
    """
    shape = xs.shape[1:] + ys.shape[1:]
    w = np.zeros(shape)
    alpha = np.full(shape, alpha0)
    h = np.zeros(shape)
    v = np.zeros(shape)
    predictions, step_sizes, bounds = [], [], []
    for x, y in zip(xs, ys):
        prediction = x @ w
        delta = y - prediction
        # δ x h with x along the inputs and δ along the outputs (if any); c = x².
        x_in = x.reshape(x.shape + (1,) * (w.ndim - 1))
        c = x_in * x_in
        delta_x_h = delta * x_in * h
        v = np.maximum(np.abs(delta_x_h), v + alpha * c * (np.abs(delta_x_h) - v) / tau)
        nonzero = v != 0
        alpha = np.where(nonzero, alpha * np.exp(mu * delta_x_h / np.where(nonzero, v, 1.0)), alpha)
        bound = np.maximum(np.sum(alpha * c, axis=0), 1.0)
        alpha = alpha / bound
        w = w + alpha * delta * x_in
        h = h * (1.0 - alpha * c) + alpha * delta * x_in
        predictions.append(prediction)
        step_sizes.append(alpha)
        bounds.append(bound)
    return np.array(predictions), np.array(step_sizes), np.array(bounds)


def lms_reference(xs, ys, alpha0, bounded):
    """Fixed-step LMS; with ``bounded``, α ← α / max(Σ α x², 1) before each update (Autostep's
    M)."""
    w = np.zeros(xs.shape[1])
    alpha = np.full(xs.shape[1], alpha0)
    predictions, step_sizes = [], []
    for x, y in zip(xs, ys):
        if bounded:
            alpha = alpha / max(np.sum(alpha * x * x), 1.0)
        predictions.append(w @ x)
        w = w + alpha * (y - w @ x) * x
        step_sizes.append(alpha)
    return np.array(predictions), np.array(step_sizes)


@pytest.mark.parametrize(("meta_step_size", "tau"), [(1e-2, 1e4), (0.1, 100.0)])
def test_matches_numpy_transcription(x64, nonstationary_data, meta_step_size, tau):
    xs, ys = nonstationary_data(0, steps=1500, num_features=5)
    method = ms.autostep(meta_step_size, INITIAL_STEP_SIZE, tau)
    predictions, step_sizes = run_learner(method, xs, ys)
    expected_predictions, expected_step_sizes, bounds = autostep_reference(
        xs, ys, meta_step_size, tau, INITIAL_STEP_SIZE
    )
    # The check covers both branches of M and step sizes that moved.
    assert np.any(bounds > 1.0)
    assert np.any(bounds == 1.0)
    assert np.ptp(np.log(expected_step_sizes)) > 0.5
    np.testing.assert_allclose(predictions, expected_predictions, rtol=1e-9)
    np.testing.assert_allclose(step_sizes, expected_step_sizes, rtol=1e-9)


def test_dense_kernel_has_one_bound_per_output_unit(x64, nonstationary_data):
    """A [in, out] kernel, ``y = x @ W``: the default sums α c over the fan-in (axis 0)."""
    xs, _ = nonstationary_data(1, steps=1000, num_features=5)
    rng = np.random.default_rng(1)
    ys = xs @ rng.normal(size=(5, 3)) + 0.1 * rng.normal(size=(len(xs), 3))
    # Output scales differ, so the columns' step sizes, and their M, differ.
    ys = ys * np.array([0.1, 1.0, 10.0])
    meta_step_size, tau = 0.1, 100.0
    method = ms.autostep(meta_step_size, 0.1, tau)
    predictions, step_sizes = run_dense_kernel(method, xs, ys)

    expected_predictions, expected_step_sizes, bounds = autostep_reference(
        xs, ys, meta_step_size, tau, 0.1
    )
    # Some steps bound one column and not another: one M for the whole kernel would differ.
    assert np.any(np.any(bounds > 1.0, axis=1) & np.any(bounds == 1.0, axis=1))
    np.testing.assert_allclose(predictions, expected_predictions, rtol=1e-9)
    np.testing.assert_allclose(step_sizes, expected_step_sizes, rtol=1e-9)


def test_unit_axes_options():
    kernel = jnp.ones((2, 3))
    params = {"kernel": kernel, "bias": jnp.ones(3)}
    grads = jax.tree.map(jnp.ones_like, params)
    # c = 1 everywhere, α₀ = 0.4: a column of the kernel sums to 0.8 (M = 1), all three biases
    # together to 1.2 (M = 1.2), one bias to 0.4 (M = 1).
    curvature = grads

    def first_step_sizes(**kwargs):
        method = ms.autostep(0.0, 0.4, **kwargs)
        _, state = method.update(grads, method.init(params), params, curvature=curvature)
        return state.step_sizes

    auto = first_step_sizes()
    np.testing.assert_allclose(auto["kernel"], 0.4)
    np.testing.assert_allclose(auto["bias"], 0.4 / 1.2)
    fan_in = first_step_sizes(unit_axes="fan_in")
    np.testing.assert_allclose(fan_in["kernel"], 0.4)
    np.testing.assert_allclose(fan_in["bias"], 0.4)
    # A callable: the whole of each array is one unit (the kernel sums to 2.4).
    whole = first_step_sizes(unit_axes=lambda shape: range(len(shape)))
    np.testing.assert_allclose(whole["kernel"], 0.4 / 2.4)
    np.testing.assert_allclose(whole["bias"], 0.4 / 1.2)


def test_zero_meta_step_size_without_bound_is_lms(x64, nonstationary_data):
    """μ = 0 and α₀ Σ x² < 1 on every step: M = 1 always, and Autostep is fixed-step LMS."""
    xs, ys = nonstationary_data(2, steps=1500, num_features=5)
    alpha0 = 0.005
    assert np.max(alpha0 * np.sum(xs * xs, axis=1)) < 1.0
    predictions, step_sizes = run_learner(ms.autostep(0.0, alpha0), xs, ys)
    expected_predictions, _ = lms_reference(xs, ys, alpha0, bounded=False)
    np.testing.assert_allclose(predictions, expected_predictions, rtol=1e-9)
    np.testing.assert_allclose(step_sizes, alpha0, rtol=1e-12)


def test_zero_meta_step_size_still_bounds(x64, nonstationary_data):
    """μ = 0 with a large α₀: M still cuts α (for good), so this is LMS with the M rule only."""
    xs, ys = nonstationary_data(2, steps=1500, num_features=5)
    alpha0 = 0.2
    predictions, step_sizes = run_learner(ms.autostep(0.0, alpha0), xs, ys)
    expected_predictions, expected_step_sizes = lms_reference(xs, ys, alpha0, bounded=True)
    assert expected_step_sizes[-1, 0] < alpha0 / 2
    np.testing.assert_allclose(predictions, expected_predictions, rtol=1e-9)
    np.testing.assert_allclose(step_sizes, expected_step_sizes, rtol=1e-9)


def test_step_sizes_ignore_the_sign_of_the_target(x64, nonstationary_data):
    xs, ys = nonstationary_data(3, steps=1500, num_features=5)
    method = ms.autostep(0.1, INITIAL_STEP_SIZE, 100.0)
    predictions, step_sizes = run_learner(method, xs, ys)
    flipped_predictions, flipped_step_sizes = run_learner(method, xs, -ys)
    assert np.ptp(np.log(step_sizes)) > 0.5
    np.testing.assert_allclose(flipped_predictions, -predictions, rtol=1e-12)
    np.testing.assert_allclose(flipped_step_sizes, step_sizes, rtol=1e-12)


def test_zero_normalizer_leaks_no_nan_into_gradients(x64, nonstationary_data):
    """At the first steps h = 0, so v = 0 and the rule skips the 0/0: so must its derivative."""
    xs, ys = nonstationary_data(4, steps=3, num_features=5)

    def total_step_size(meta_step_size):
        learner = LinearLearner(ms.autostep(meta_step_size, INITIAL_STEP_SIZE), 5)
        state, _ = jax.lax.scan(
            lambda s, xy: learner.step(s, *xy), learner.init(), (jnp.asarray(xs), jnp.asarray(ys))
        )
        return jnp.sum(learner.step_sizes(state))

    gradient = jax.grad(total_step_size)(0.01)
    assert np.isfinite(gradient)
