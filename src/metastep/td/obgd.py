"""ObGD and AdaptiveObGD: TD(λ) steps bounded against overshooting (Elsayed, Vasan & Mahmood
2024), for :class:`metastep.td.TDLearner`.

Reference: M. Elsayed, G. Vasan, A. R. Mahmood, "Streaming deep reinforcement learning finally
works", arXiv:2410.14606 (2024), the overshooting-bounded gradient descent of its stream TD(λ);
transcribed from the authors' code (``optim.py`` of ``mohmdelsayed/streaming-drl``: ``ObGD`` and
``AdaptiveObGD``). The trace ``z`` and the TD error ``δ`` come from the learner (the code keeps
the trace in the optimizer; its ``reset`` at an episode's end is the learner's discount 0). With
the base step size ``α``, the bound ``κ`` and ``‖·‖₁`` the sum of absolute values::

    ObGD:          δ̄ = max(|δ|, 1);  M = α κ δ̄ ‖z‖₁
                   w ← w + α / max(M, 1) · δ z

    AdaptiveObGD:  v ← β₂ v + (1 − β₂) (δ z)²;  v̂ = v / (1 − β₂ᵗ)      (t counts the updates)
                   u = z / sqrt(v̂ + ε);  M = α κ δ̄ ‖u‖₁
                   w ← w + α / max(M, 1) · δ u

(A step whose trace is zero, the stream's first, which has no previous state, changes neither ``t``
nor ``v``: the code makes no such step.)

Parameters may be any pytree (a network's): ``‖z‖₁`` sums over all its leaves, as the authors'
code sums over all the network's parameters, and one bound scales the whole step.

``M ≤ 1`` when the step cannot overshoot (for a linear learner the update changes the error of
the current state by ``α δ z·φ``, at most ``α |δ| ‖z‖₁`` for features in [−1, 1]), and the step is
scaled down otherwise. Step sizes: ``α / max(M, 1)`` per weight (divided by ``sqrt(v̂ + ε)`` for
AdaptiveObGD).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metastep import _checks
from metastep._structure import recorded
from metastep.methods import _common
from metastep.methods._step_sizes import method_state
from metastep.td.tidbd import TD_HINT


def l1_norm(tree: Any) -> jax.Array:
    """``‖·‖₁`` over the whole pytree: the absolute values of every leaf, summed (the authors'
    code sums its ``z_sum`` over every parameter of the network)."""
    return sum(jnp.sum(jnp.abs(leaf)) for leaf in jax.tree.leaves(tree))


def bounded_step_size(learning_rate, kappa, td_error, trace_norm):
    """``α / max(M, 1)`` with ``M = α κ max(|δ|, 1) ‖z‖₁``."""
    bound = learning_rate * kappa * jnp.maximum(jnp.abs(td_error), 1.0) * trace_norm
    return learning_rate / jnp.maximum(bound, 1.0)


@method_state
class ObGDState(NamedTuple):
    step_sizes: Any  # α / max(M, 1) used by the last update, per weight


@recorded
def obgd(learning_rate: float = 1.0, kappa: float = 2.0) -> optax.GradientTransformationExtraArgs:
    """ObGD (Elsayed et al. 2024): TD(λ) with its step bounded against overshooting.

    Args:
      learning_rate: ``α`` > 0, the base step size (the paper's 1.0).
      kappa: ``κ`` > 0, the bound's factor (the paper's 2.0 for values).

    Extra arguments of ``update`` (required; :class:`metastep.td.TDLearner` passes them):
    ``td_error`` and ``trace``.
    """
    _checks.check_positive("learning_rate", learning_rate)
    _checks.check_positive("kappa", kappa)

    def init_fn(params):
        return ObGDState(_common.full_like(params, learning_rate))

    def update_fn(grads, state, params=None, **extra_args):
        del params
        td_error, trace = (_common.require_extra_arg("obgd", name, extra_args, TD_HINT)
                           for name in ("td_error", "trace"))
        step_size = bounded_step_size(learning_rate, kappa, td_error, l1_norm(trace))
        step_sizes = jax.tree.map(lambda g: jnp.full_like(g, step_size), grads)
        updates = jax.tree.map(lambda a, g: -a * g, step_sizes, grads)
        return updates, _common.cast_like(ObGDState(step_sizes), state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@method_state
class AdaptiveObGDState(NamedTuple):
    count: jax.Array  # t, the updates made
    second_moment: Any  # v
    step_sizes: Any  # α / max(M, 1) / sqrt(v̂ + ε) used by the last update, per weight


@recorded
def adaptive_obgd(learning_rate: float = 1.0, kappa: float = 2.0, beta2: float = 0.999,
                  eps: float = 1e-8) -> optax.GradientTransformationExtraArgs:
    """AdaptiveObGD (Elsayed et al. 2024): ObGD on the update ``δ z`` normalized by a running
    second moment (as RMSprop, with Adam's bias correction).

    Args:
      learning_rate: ``α`` > 0 (the paper's 1.0).
      kappa: ``κ`` > 0 (the paper's 2.0 for values).
      beta2: ``β₂`` in [0, 1), the decay of the second moment.
      eps: ``ε`` > 0, added to ``v̂`` inside the square root.

    Extra arguments of ``update``: as for :func:`obgd`.
    """
    _checks.check_positive("learning_rate", learning_rate)
    _checks.check_positive("kappa", kappa)
    _checks.check_unit_interval("beta2", beta2)
    if _checks.is_concrete(beta2) and float(beta2) == 1.0:
        raise ValueError("`beta2` must be < 1: the bias correction divides by 1 − β₂ᵗ")
    _common.check_eps(eps)

    def init_fn(params):
        return AdaptiveObGDState(jnp.zeros([], jnp.int32), _common.zeros_like(params),
                                 _common.full_like(params, learning_rate))

    def update_fn(grads, state, params=None, **extra_args):
        del params
        td_error, trace = (_common.require_extra_arg("adaptive_obgd", name, extra_args, TD_HINT)
                           for name in ("td_error", "trace"))
        # A step with a zero trace (the stream's first, which has no previous state) updates
        # nothing: it leaves t and v as they are, as in the code, which has no such step.
        active = l1_norm(trace) != 0
        count = jnp.where(active, _common.increment(state.count), state.count)
        second_moment = jax.tree.map(
            lambda v, z: jnp.where(active, beta2 * v + (1 - beta2) * jnp.square(td_error * z), v),
            state.second_moment, trace)

        def scale_of(v):  # 1 / sqrt(v̂ + ε); v = 0 before any update
            correction = 1 - beta2 ** count.astype(v.dtype)
            return 1 / jnp.sqrt(v / jnp.where(count > 0, correction, 1) + eps)

        scale = jax.tree.map(scale_of, second_moment)
        step_size = bounded_step_size(learning_rate, kappa, td_error,
                                      l1_norm(jax.tree.map(jnp.multiply, trace, scale)))
        step_sizes = jax.tree.map(lambda s: step_size * s, scale)
        updates = jax.tree.map(lambda a, g: -a * g, step_sizes, grads)
        new_state = AdaptiveObGDState(count, second_moment, step_sizes)
        return updates, _common.cast_like(new_state, state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["AdaptiveObGDState", "ObGDState", "adaptive_obgd", "obgd"]
