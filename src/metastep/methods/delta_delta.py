"""The ΔΔ rule: a per-weight step size moved by the product of consecutive weight changes.

Source: the talk this project follows, as written in docs/methods.md#delta_delta; no
paper states it in this form (its batch ancestor is R. A. Jacobs, "Increased rates of convergence
through learning rate adaptation", Neural Networks 1988, delta-bar-delta). With gradient ``g``, the
last weight change ``Δ_t = w_t − w_{t−1}``, the one before ``Δ_{t−1}``, meta step size ``κ`` and a
floor ``α_min`` > 0::

    α ← max(α + κ Δ_{t−1} Δ_t, α_min)
    w ← w − α g

Consecutive changes of the same sign mean α is too small (it grows); alternating signs mean α is
too big (it shrinks). The additive rule can drive α to zero or below, where the weight would stop
learning or move uphill; the floor ``α_min`` (``min_step_size``) keeps it positive, and a weight
whose α sits on the floor still moves, so its α can grow again.

The weight changes are the updates this transformation returned (``−α g``), both 0 before the
first update: chained after other transformations, those are the changes it proposed, not the
changes applied to the weights.
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


@method_state
class DeltaDeltaState(NamedTuple):
    last_change: Any  # Δ_t, the last update, like the parameters
    change_before: Any  # Δ_{t−1}, the update before it
    step_sizes: Any  # α used by the last update, per weight


@recorded
def delta_delta(
    meta_step_size: float = 0.03,
    initial_step_size: float = 0.01,
    min_step_size: float = 1e-6,
) -> optax.GradientTransformationExtraArgs:
    """The ΔΔ rule: ``α ← max(α + κ Δ_{t−1} Δ_t, α_min)``, then ``w ← w − α g``.

    Defaults: no source gives values. ``κ = 0.03`` and ``α₀ = 0.01`` are modest values for a linear
    unit with inputs of scale 0.3 to 3; κ = 0.1 already makes α swing by an order of magnitude on
    some of those streams, and κ ≥ 0.5 can blow the weights up.

    Args:
      meta_step_size: ``κ`` ≥ 0. Not dimensionless: ``Δ_{t−1} Δ_t`` scales like ``α² g²``, so
        the best κ moves with the scale of the gradients and of α.
      initial_step_size: ``α₀`` > 0, per weight (it only sets the state at ``init``; ``κ`` and
        ``α_min`` are read at each update).
      min_step_size: the floor ``α_min`` > 0 on every α.

    Extra arguments of ``update`` (``curvature``, ...) are accepted and ignored.
    """
    _checks.check_non_negative("meta_step_size", meta_step_size)
    _checks.check_positive("initial_step_size", initial_step_size)
    _checks.check_positive("min_step_size", min_step_size)

    def init_fn(params):
        return DeltaDeltaState(
            _common.zeros_like(params), _common.zeros_like(params),
            _common.full_like(params, initial_step_size),
        )

    def update_fn(grads, state, params=None, **extra_args):
        del params, extra_args

        def new_step_size(alpha, before, last):
            return jnp.maximum(alpha + meta_step_size * before * last, min_step_size)

        step_size = _common.cast_like(jax.tree.map(
            new_step_size, state.step_sizes, state.change_before, state.last_change
        ), grads)
        updates = jax.tree.map(lambda a, g: -a * g, step_size, grads)
        new_state = DeltaDeltaState(updates, state.last_change, step_size)
        return updates, _common.cast_like(new_state, state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["DeltaDeltaState", "delta_delta"]
