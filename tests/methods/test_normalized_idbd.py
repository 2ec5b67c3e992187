"""Normalized IDBD against a NumPy transcription of the rule in docs/methods.md#normalized_idbd;
its reductions and invariances."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import metastep.methods as ms
from helpers import assert_close, run_dense_kernel, run_learner
from metastep.methods.normalized_idbd import fan_in


def normalized_idbd_reference(xs, ys, mu, alpha0, gamma, rho, eps, normalize=True):
    """The rule for a linear unit (targets ``ys`` [steps]) or a dense layer ``y = x @ W`` (targets
    [steps, outputs]), squared loss ½δ², so g = −δ x and c = x². Returns predictions and the
    step sizes α s of every step."""
    shape = xs.shape[1:] + ys.shape[1:]
    w, h, v, n = (np.zeros(shape) for _ in range(4))
    beta = np.log(np.broadcast_to(alpha0, shape))
    predictions, step_sizes = [], []
    for t, (x, y) in enumerate(zip(xs, ys), start=1):
        prediction = x @ w
        x_in = x.reshape(x.shape + (1,) * (w.ndim - 1))
        g = -(y - prediction) * x_in
        c = np.broadcast_to(x_in * x_in, shape)
        v = v + gamma * (g * g - v)
        s = 1.0 / np.sqrt(v / (1.0 - (1.0 - gamma) ** t) + eps) if normalize else 1.0
        z = g * h
        n = n + rho * (z * z - n)
        n_hat = n / (1.0 - (1.0 - rho) ** t)
        beta = beta - mu * np.where(n_hat > 0, z / np.sqrt(np.where(n_hat > 0, n_hat, 1.0)), 0.0)
        step = np.exp(beta) * s
        w = w - step * g
        h = h * np.maximum(1.0 - step * c, 0.0) - step * g
        predictions.append(prediction)
        step_sizes.append(step)
    return np.array(predictions), np.array(step_sizes)


@pytest.mark.parametrize(("mu", "gamma", "rho"), [(0.003, 0.001, 0.01), (0.05, 0.1, 0.3)])
def test_matches_numpy_transcription(x64, nonstationary_data, mu, gamma, rho):
    xs, ys = nonstationary_data(0, steps=1500, num_features=5)
    method = ms.normalized_idbd(mu, 1.0, gradient_normalizer_rate=gamma,
                                meta_normalizer_rate=rho)
    predictions, step_sizes = run_learner(method, xs, ys)
    expected_predictions, expected_step_sizes = normalized_idbd_reference(
        xs, ys, mu, 1.0 / 5, gamma, rho, 1e-8)
    # The step sizes moved, and the trace's clipping [·]⁺ was reached.
    assert np.ptp(np.log(expected_step_sizes[100:])) > 0.5
    assert_close(predictions, expected_predictions)
    assert_close(step_sizes, expected_step_sizes)


@pytest.mark.parametrize("mu", [0.003, 0.03])
def test_without_gradient_normalization_matches_numpy_transcription(x64, nonstationary_data, mu):
    xs, ys = nonstationary_data(4, steps=1200, num_features=5)
    method = ms.normalized_idbd(mu, 1.0, normalize_gradients=False)
    predictions, step_sizes = run_learner(method, xs, ys)
    expected_predictions, expected_step_sizes = normalized_idbd_reference(
        xs, ys, mu, 1.0 / 5, 0.001, 0.01, 1e-8, normalize=False)
    assert np.ptp(np.log(expected_step_sizes[100:])) > 0.5
    assert_close(predictions, expected_predictions)
    assert_close(step_sizes, expected_step_sizes)


def test_without_gradient_normalization_the_targets_scale_drops_out(x64, nonstationary_data):
    """Targets × k: every prediction × k, every step size the same (exactly, up to rounding)."""
    xs, ys = nonstationary_data(5, steps=800, num_features=5)
    method = ms.normalized_idbd(0.01, 1.0, normalize_gradients=False)
    predictions, step_sizes = run_learner(method, xs, ys)
    scaled_predictions, scaled_step_sizes = run_learner(method, xs, 100.0 * ys)
    np.testing.assert_allclose(scaled_predictions, 100.0 * predictions, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(scaled_step_sizes, step_sizes, rtol=1e-9)


def test_dense_kernel_starts_from_its_fan_in_and_matches_the_rule(x64, nonstationary_data):
    """A [in, out] kernel, ``y = x @ W``: ``α₀ = κ / in`` for every weight."""
    xs, _ = nonstationary_data(1, steps=1000, num_features=5)
    rng = np.random.default_rng(1)
    ys = (xs @ rng.normal(size=(5, 3)) + 0.1 * rng.normal(size=(len(xs), 3))) * [0.1, 1.0, 10.0]
    method = ms.normalized_idbd(0.01, 0.5)
    np.testing.assert_allclose(np.exp(method.init(jnp.zeros((5, 3))).log_step_size), 0.5 / 5)
    predictions, step_sizes = run_dense_kernel(method, xs, ys)
    expected_predictions, expected_step_sizes = normalized_idbd_reference(
        xs, ys, 0.01, 0.5 / 5, 0.001, 0.01, 1e-8)
    assert_close(predictions, expected_predictions)
    assert_close(step_sizes, expected_step_sizes)


@pytest.mark.parametrize(("shape", "expected"), [((7,), 7), ((4, 3), 4), ((2, 2, 5, 8), 20),
                                                 ((), 1)])
def test_fan_in_is_the_unit_of_autosteps_auto_axes(shape, expected):
    assert fan_in(shape) == expected


def test_zero_meta_step_size_is_rmsprop_with_bias_correction(x64, nonstationary_data):
    """μ = 0: optax's Adam without momentum (b1 = 0), ε inside the square root, at α₀."""
    xs, ys = nonstationary_data(2, steps=600, num_features=4)
    ours = ms.normalized_idbd(0.0, initial_step_size=0.02)
    theirs = optax.adam(0.02, b1=0.0, b2=0.999, eps=0.0, eps_root=1e-8)

    def weights(method, **extra_of):
        def step(carry, data):
            w, state = carry
            x, y = data
            extra = {name: of(x) for name, of in extra_of.items()}
            update, state = method.update(-(y - x @ w) * x, state, **extra)
            return (w + update, state), None

        w = jnp.zeros(4)
        return jax.jit(lambda c: jax.lax.scan(step, c, (jnp.asarray(xs), jnp.asarray(ys))))(
            (w, method.init(w)))[0][0]

    w_ours = weights(ours, curvature=lambda x: x * x)
    np.testing.assert_allclose(w_ours, weights(theirs), rtol=1e-9)
    assert np.ptp(np.asarray(w_ours)) > 0.1  # it learned


def test_updates_do_not_depend_on_the_scale_of_the_loss(x64):
    """Gradients and curvature × k (the loss × k): every update is the same, up to ε."""
    rng = np.random.default_rng(3)
    grads = jnp.asarray(rng.normal(size=(300, 6)))
    curvature = jnp.asarray(rng.uniform(0.0, 2.0, size=(300, 6)))
    method = ms.normalized_idbd(0.05, 1.0, eps=1e-300)

    def updates(k):
        def step(state, data):
            g, c = data
            update, state = method.update(k * g, state, curvature=k * c)
            return state, update
        return jax.lax.scan(step, method.init(jnp.zeros(6)), (grads, curvature))[1]

    np.testing.assert_allclose(updates(1e3), updates(1.0), rtol=1e-9)
    np.testing.assert_allclose(updates(1e-3), updates(1.0), rtol=1e-9)


def test_step_sizes_before_an_update_and_bad_arguments():
    state = ms.normalized_idbd(initial_step_size=0.01).init(jnp.zeros(3))
    np.testing.assert_allclose(ms.step_sizes(state), 0.01 / np.sqrt(1e-8), rtol=1e-6)
    for kwargs, name in [({"meta_step_size": -1.0}, "meta_step_size"),
                         ({"unit_step_size": 0.0}, "unit_step_size"),
                         ({"initial_step_size": -0.1}, "initial_step_size"),
                         ({"gradient_normalizer_rate": 1.5}, "gradient_normalizer_rate"),
                         ({"meta_normalizer_rate": 0.0}, "meta_normalizer_rate"),
                         ({"eps": 0.0}, "eps")]:
        with pytest.raises(ValueError, match=name):
            ms.normalized_idbd(**kwargs)
    with pytest.raises(TypeError, match="normalize_gradients"):
        ms.normalized_idbd(normalize_gradients="yes")
    with pytest.raises(ValueError, match="curvature"):
        method = ms.normalized_idbd()
        method.update(jnp.ones(3), method.init(jnp.zeros(3)))
