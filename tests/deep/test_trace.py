"""IDBD's trace h against the exact derivative ∂w/∂β, by autodiff through unrolled updates.

With the meta step size θ = 0 the log step sizes β stay fixed and IDBD's weights follow
``w_{t+1} = w_t − α ⊙ g_t(w_t)``, ``α = exp(β)``, a differentiable function of β. Its exact
derivative ``D_t = ∂w_t/∂β`` obeys (differentiate the update; ``H_t`` the loss Hessian at ``w_t``)::

    D_{t+1} = (I − diag(α) H_t) D_t − diag(α ⊙ g_t)

IDBD keeps one number per weight, ``h_i ≈ ∂w_i/∂β_i``, and updates it with a diagonal curvature
``c``: ``h ← h [1 − α c]⁺ − α g``. Against the diagonal of the exact recursion, it drops

* the cross terms ``∂w_k/∂β_i`` (k ≠ i), which enter ``(H D)_ii = Σ_k H_ik D_ki`` through the
  off-diagonal Hessian entries ``H_ik``;
* the difference between ``H_ii`` and the curvature given (none with the exact Hessian
  diagonal; the second-order model term for the Gauss-Newton diagonal);
* the ``[·]⁺`` clip (inactive while ``α c < 1``, which the tests check).

So the gap ``δ = diag(D) − h`` follows exactly ``δ_{t+1} = δ_t (1 − α c_t) − α ⊙ r_t`` with
``r_t = diag(H_t D_t) − c_t ⊙ diag(D_t)``, the dropped terms. The tests compute ``D_t`` and ``H_t``
by autodiff, run IDBD, and check this identity (and that ``r`` is not negligible in a network);
where the Hessian is diagonal (a linear unit with one-hot inputs) ``r = 0`` and ``h`` is exact.
With one β for all weights (``"scalar"``) there are no cross terms: ``D`` is the vector ``∂w/∂β``,
``r_t = H_t D_t − c_t ⊙ D_t`` holds only the off-diagonal Hessian terms.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import metastep as ms

STEPS = 6


def tiny_network():
    """A 2-3-1 tanh network over a flat parameter vector, and data for ``STEPS`` updates."""
    model = ms.deep.mlp((2, 3, 1), activation="tanh")
    params = model.init(jax.random.PRNGKey(0))
    flat, unravel = ravel_pytree(params)

    def apply(w, inputs):
        return model.apply(unravel(w), inputs)[:, 0]

    xs = jax.random.normal(jax.random.PRNGKey(1), (STEPS, 1, 2))
    ys = jax.random.normal(jax.random.PRNGKey(2), (STEPS, 1))
    return apply, flat, xs, ys


def one_hot_linear_unit():
    """A linear unit whose inputs are one-hot: its Hessian ``x xᵀ`` is diagonal."""
    num_features = 4
    indices = jnp.array([0, 2, 1, 0, 3, 2])
    xs = jax.nn.one_hot(indices, num_features)[:, None, :] * 1.5
    ys = jnp.linspace(-1.0, 2.0, STEPS)[:, None]
    return (lambda w, inputs: inputs @ w), jnp.full((num_features,), 0.1), xs, ys


def loss_at(apply, w, x, y):
    return ms.deep.loss_value(apply(w, x), y, "squared")


def exact_derivatives(apply, w0, log_step_size, xs, ys, granularity):
    """``D_t = ∂w_t/∂β`` for t = 0..STEPS (autodiff through the unrolled updates)."""

    def trajectory(beta):
        alpha = jnp.exp(beta) if granularity == "weight" else jnp.full_like(w0, jnp.exp(beta))

        def update(w, data):
            x, y = data
            w = w - alpha * jax.grad(loss_at, argnums=1)(apply, w, x, y)
            return w, w

        _, ws = jax.lax.scan(update, w0, (xs, ys))
        return jnp.concatenate([w0[None], ws])

    return jax.jacfwd(trajectory)(log_step_size)


def run_idbd(apply, w0, log_step_size, xs, ys, granularity, curvature_source):
    """IDBD with θ = 0 from β = ``log_step_size``: weights, traces h and curvatures c per step."""
    method = ms.idbd(0.0, 1.0, granularity=granularity)
    state = method.init(w0)._replace(log_step_size=log_step_size)

    def step(carry, data):
        w, state = carry
        x, y = data
        grads = jax.grad(loss_at, argnums=1)(apply, w, x, y)
        if curvature_source == "hessian_diagonal":
            curvature = jnp.diag(jax.hessian(loss_at, argnums=1)(apply, w, x, y))
        else:
            _, _, _, extra = ms.deep.extra_args(apply, w, (x, y))
            curvature = extra["curvature"]
        updates, state = method.update(grads, state, w, curvature=curvature)
        return (w + updates, state), (w + updates, state.meta_trace, curvature)

    _, (ws, traces, curvatures) = jax.lax.scan(step, (w0, state), (xs, ys))
    return ws, traces, curvatures


def dropped_terms_gap(apply, ws, derivatives, curvatures, alpha, xs, ys, granularity):
    """``δ_T`` from ``δ_{t+1} = δ_t (1 − α c_t) − α ⊙ r_t``, δ_0 = 0 (module docstring)."""
    gap = jnp.zeros_like(ws[0])
    for t in range(STEPS):
        hessian = jax.hessian(loss_at, argnums=1)(apply, ws[t], xs[t], ys[t])
        coupled = hessian @ derivatives[t]
        if granularity == "weight":
            coupled, own = jnp.diag(coupled), jnp.diag(derivatives[t])
        else:
            own = derivatives[t]
        dropped = coupled - curvatures[t] * own
        gap = gap * (1.0 - alpha * curvatures[t]) - alpha * dropped
    return gap


def check_trace(problem, granularity, curvature_source):
    """Run both sides; return (h_T, diagonal of D_T, the gap predicted from the dropped terms)."""
    apply, w0, xs, ys = problem()
    num_weights = w0.size
    if granularity == "weight":
        log_step_size = jnp.log(jnp.linspace(0.05, 0.2, num_weights))
    else:
        log_step_size = jnp.log(jnp.asarray(0.1))
    alpha = jnp.broadcast_to(jnp.exp(log_step_size), (num_weights,))

    @jax.jit
    def both_sides():
        derivatives = exact_derivatives(apply, w0, log_step_size, xs, ys, granularity)
        ws, traces, curvatures = run_idbd(
            apply, w0, log_step_size, xs, ys, granularity, curvature_source
        )
        path = jnp.concatenate([w0[None], ws])
        gap = dropped_terms_gap(apply, path, derivatives, curvatures, alpha, xs, ys, granularity)
        final = derivatives[-1]
        own = jnp.diag(final) if granularity == "weight" else final
        # The weights of IDBD with θ = 0 are the differentiated trajectory's.
        trajectory_error = jnp.max(jnp.abs(path[-1] - ws[-1]))
        return traces[-1], own, gap, final, jnp.max(alpha * curvatures), trajectory_error

    trace, own, gap, final, max_alpha_c, trajectory_error = both_sides()
    assert max_alpha_c < 1.0  # the [·]⁺ clip never acts
    assert trajectory_error == 0.0
    return np.asarray(trace), np.asarray(own), np.asarray(gap), np.asarray(final)


@pytest.mark.parametrize("granularity", ["weight", "scalar"])
def test_trace_is_exact_when_the_hessian_is_diagonal(x64, granularity):
    """One-hot inputs: no cross terms, no off-diagonal Hessian: h = ∂w/∂β exactly."""
    trace, own, gap, final = check_trace(one_hot_linear_unit, granularity, "hessian_diagonal")
    np.testing.assert_allclose(gap, 0.0, atol=1e-15)
    np.testing.assert_allclose(trace, own, rtol=1e-12, atol=1e-15)
    assert np.max(np.abs(trace)) > 0.05
    if granularity == "weight":
        np.testing.assert_allclose(final - np.diag(np.diag(final)), 0.0, atol=1e-15)


# One combination in the fast tests; the other three (the same check) are slow.
@pytest.mark.parametrize(("granularity", "curvature_source"), [
    ("weight", "gauss_newton"),
    pytest.param("weight", "hessian_diagonal", marks=pytest.mark.slow),
    pytest.param("scalar", "gauss_newton", marks=pytest.mark.slow),
    pytest.param("scalar", "hessian_diagonal", marks=pytest.mark.slow),
])
def test_trace_misses_exactly_the_dropped_terms_in_a_network(x64, granularity, curvature_source):
    """In a tanh network h differs from ∂w/∂β by exactly the propagated dropped terms, which are
    not negligible there."""
    trace, own, gap, _ = check_trace(tiny_network, granularity, curvature_source)
    np.testing.assert_allclose(trace + gap, own, rtol=1e-9, atol=1e-13)
    assert np.linalg.norm(gap) > 1e-3 * np.linalg.norm(own)
