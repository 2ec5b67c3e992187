"""MetaOptimize (Hessian-free) against a NumPy transcription, its special cases and optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import metastep.methods as ms
from helpers import run_learner


def metaoptimize_reference(xs, ys, eta, alpha0, gamma, kappa, per_weight):
    """Sharifnassab et al. (2025), Hessian-free, SGD base and SGD meta, on a linear unit."""
    n = xs.shape[1]
    w = np.zeros(n)
    beta = np.full(n, np.log(alpha0)) if per_weight else np.log(alpha0)
    h = np.zeros(n)
    predictions, step_sizes = [], []
    for x, y in zip(xs, ys):
        prediction = w @ x
        g = -(y - prediction) * x
        z = h * g if per_weight else np.sum(h * g)  # the OLD h, before the update
        beta = beta - eta * z
        alpha = np.exp(beta)
        dw = -alpha * (g + kappa * w)
        w = w + dw
        h = gamma * (1.0 - kappa * alpha) * h + dw
        predictions.append(prediction)
        step_sizes.append(np.broadcast_to(alpha, (n,)))
    return np.array(predictions), np.array(step_sizes)


@pytest.mark.parametrize("granularity", ["weight", "scalar"])
@pytest.mark.parametrize("discount, weight_decay", [(1.0, 0.0), (0.9, 0.05)])
def test_sgd_base_and_meta_match_numpy_transcription(
    x64, nonstationary_data, granularity, discount, weight_decay
):
    xs, ys = nonstationary_data(0, steps=1000, num_features=5)
    eta, alpha0 = 0.002, 0.02
    method = ms.metaoptimize(
        "sgd", "sgd", eta, alpha0, granularity=granularity, discount=discount,
        weight_decay=weight_decay,
    )
    predictions, step_sizes = run_learner(method, xs, ys)
    expected_predictions, expected_step_sizes = metaoptimize_reference(
        xs, ys, eta, alpha0, discount, weight_decay, granularity == "weight"
    )
    assert np.ptp(np.log(expected_step_sizes)) > 0.1
    np.testing.assert_allclose(predictions, expected_predictions, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(step_sizes, expected_step_sizes, rtol=1e-9)


BASES = {
    "sgd": (optax.sgd, {}),
    "sgd_momentum": (lambda lr: optax.sgd(lr, momentum=0.9), {}),
    "rmsprop": (optax.rmsprop, {}),
    "adam": (optax.adam, {}),
    "adamw": (optax.adamw, {}),
    "lion": (lambda lr: optax.lion(lr, weight_decay=0.0), {}),
}


@pytest.mark.parametrize("meta", ["sgd", "adam", "lion"])
@pytest.mark.parametrize("base", list(BASES))
def test_zero_meta_step_size_is_the_base_optimizer(x64, nonstationary_data, base, meta):
    """η = 0: the base optimizer with the fixed learning rate α₀, as optax computes it."""
    xs, ys = nonstationary_data(1, steps=300, num_features=5)
    learning_rate = 0.003
    optax_factory, _ = BASES[base]
    expected, _ = run_learner(optax_factory(learning_rate), xs, ys)
    predictions, step_sizes = run_learner(
        ms.metaoptimize(base, meta, 0.0, learning_rate, granularity="weight"), xs, ys
    )
    assert np.ptp(expected) > 1.0
    np.testing.assert_allclose(predictions, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(step_sizes, learning_rate, rtol=1e-12)


def test_zero_discount_is_hypergradient_descent_on_the_log_step_size(x64, nonstationary_data):
    """γ = 0 leaves h = Δw_{t−1}: ``β_t − β_{t−1} = −η g_t · Δw_{t−1}`` (SGD meta), on a pytree."""
    xs, ys = nonstationary_data(2, steps=60, num_features=4)
    eta = 0.05
    method = ms.metaoptimize("adam", "sgd", eta, 0.01, discount=0.0)
    params = {"a": jnp.zeros(2), "b": jnp.zeros(2)}
    state = method.init(params)
    previous_update = jax.tree.map(jnp.zeros_like, params)
    for x, y in zip(xs, ys):
        w = jnp.concatenate([params["a"], params["b"]])
        g = -(y - w @ x) * x
        grads = {"a": g[:2], "b": g[2:]}
        updates, new_state = method.update(grads, state, params)
        z = sum(jnp.sum(u * g) for u, g in zip(jax.tree.leaves(previous_update),
                                                jax.tree.leaves(grads)))
        np.testing.assert_allclose(
            new_state.log_step_size - state.log_step_size, -eta * z, rtol=1e-10, atol=1e-15
        )
        np.testing.assert_allclose(jax.tree.leaves(new_state.meta_trace), jax.tree.leaves(updates))
        params = optax.apply_updates(params, updates)
        previous_update, state = updates, new_state
    assert abs(float(state.log_step_size) - np.log(0.01)) > 1e-3


@pytest.mark.parametrize("granularity", ["weight", "tensor", "scalar"])
def test_sgd_base_and_meta_is_idbd_without_curvature(x64, nonstationary_data, granularity):
    """SGD base, SGD meta, γ = 1, κ = 0: IDBD with its curvature term dropped (c = 0)."""
    xs, ys = nonstationary_data(3, steps=500, num_features=5)
    eta, alpha0 = 0.002, 0.02
    metaoptimize = ms.metaoptimize("sgd", "sgd", eta, alpha0, granularity=granularity)
    idbd = ms.idbd(eta, alpha0, granularity=granularity)

    def run(method):
        def step(carry, data):
            w, state = carry
            x, y = data
            g = -(y - w @ x) * x
            updates, state = method.update(g, state, w, curvature=jnp.zeros_like(w))
            return (w + updates, state), state.step_sizes

        w = jnp.zeros(5)
        return jax.lax.scan(step, (w, method.init(w)), (jnp.asarray(xs), jnp.asarray(ys)))[1]

    expected = run(idbd)
    assert np.ptp(np.log(expected)) > 0.05
    np.testing.assert_allclose(run(metaoptimize), expected, rtol=1e-10)


def test_tensor_granularity_on_one_array_equals_scalar(x64, nonstationary_data):
    xs, ys = nonstationary_data(4, steps=500, num_features=5)
    tensor = run_learner(ms.metaoptimize("adam", "adam", 0.01, 0.01, granularity="tensor"), xs, ys)
    scalar = run_learner(ms.metaoptimize("adam", "adam", 0.01, 0.01, granularity="scalar"), xs, ys)
    assert np.ptp(np.log(scalar[1])) > 0.05
    np.testing.assert_allclose(tensor[0], scalar[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(tensor[1], scalar[1], rtol=1e-12)


def test_transformations_as_base_and_meta(x64, nonstationary_data):
    """An optax transformation as the base direction and as the meta optimizer."""
    xs, ys = nonstationary_data(5, steps=300, num_features=5)
    named = run_learner(ms.metaoptimize("adam", "sgd", 0.01, 0.01), xs, ys)
    given = run_learner(
        ms.metaoptimize(optax.scale_by_adam(), optax.sgd(0.01), 0.0, 0.01), xs, ys
    )
    np.testing.assert_allclose(given[0], named[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(given[1], named[1], rtol=1e-12)


def test_weight_decay_needs_params():
    method = ms.metaoptimize("adamw")
    params = jnp.zeros(3)
    with pytest.raises(ValueError, match="params"):
        method.update(jnp.ones(3), method.init(params))
