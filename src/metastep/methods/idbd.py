"""IDBD: incremental delta-bar-delta (Sutton 1992).

Reference: R. S. Sutton, "Adapting bias by gradient descent: an incremental version of
delta-bar-delta", AAAI 1992. Rule as written in docs/methods.md#idbd. With gradient
``g``, diagonal curvature ``c`` (``x²`` for a linear unit), log step sizes ``β`` (init ``ln α₀``),
trace ``h`` (init 0) and meta step size ``θ``, in this order::

    β ← β − θ g h            # = β + θ δ x h, with the OLD h
    α = exp(β)               # the NEW α is used below
    w ← w − α g
    h ← h [1 − α c]⁺ − α g   # = h [1 − α x²]⁺ + α δ x

``h`` approximates ``∂w/∂β`` (the diagonal of it: the dependence of ``w_i`` on ``β_j``, j ≠ i, is
dropped, as is the second-order term that ``[·]⁺`` clips).

Granularity (an extension for networks): with ``"tensor"`` or ``"scalar"`` one ``β`` is shared by
each parameter array or by all weights, and its meta-gradient is the sum of the per-weight terms
``g h`` over the block, ``β_b ← β_b − θ Σ_{i∈b} g_i h_i``; ``h`` stays per weight.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metastep import _checks
from metastep._structure import recorded
from metastep.methods import _common, _signals
from metastep.methods._step_sizes import method_state


@method_state
class IDBDState(NamedTuple):
    log_step_size: Any  # β, block-shaped (see granularity)
    meta_trace: Any  # h, like the parameters
    step_sizes: Any  # α = exp(β) used by the last update, per weight


@recorded
def idbd(
    meta_step_size: float = 0.01,
    initial_step_size: float = 0.05,
    *,
    granularity: str = "weight",
    min_log_step_size: float | None = None,
    max_log_step_size_change: float | None = None,
) -> optax.GradientTransformationExtraArgs:
    """IDBD (Sutton 1992): per-weight step sizes learned by meta-gradient descent.

    Args:
      meta_step_size: ``θ`` ≥ 0, the step size of the update of ``β = ln α``. Its best value
        depends on the scale of the data (Degris et al. 2024, Fig. 4).
      initial_step_size: ``α₀`` > 0: one number, or per weight a pytree like the parameters
        (each leaf broadcast to its parameter's shape; with ``granularity="weight"``). It only
        sets ``β`` at ``init`` (changing it later, e.g. through ``optax.inject_hyperparams``,
        does nothing); every other hyperparameter is read at each update.
      granularity: ``"weight"`` (one α per weight, the paper), ``"tensor"`` (one per parameter
        array) or ``"scalar"`` (one for all weights).
      min_log_step_size: optional floor on ``β`` (the paper's safeguard used −10).
      max_log_step_size_change: optional bound on ``|Δβ|`` per step (the paper's used 2).

    Extra arguments of ``update``: ``curvature`` (required), the diagonal curvature ``c``.
    """
    _checks.check_non_negative("meta_step_size", meta_step_size)
    _common.check_positive_step_sizes("initial_step_size", initial_step_size)
    _common.check_granularity(granularity)
    if max_log_step_size_change is not None:
        _checks.check_positive("max_log_step_size_change", max_log_step_size_change)
    if min_log_step_size is not None:
        _checks.check_finite("min_log_step_size", min_log_step_size)

    def init_fn(params):
        log_step_size = jax.tree.map(jnp.log, _common.initial_blocks(
            "initial_step_size", initial_step_size, params, granularity
        ))
        step_size = _common.broadcast_blocks(
            jax.tree.map(jnp.exp, log_step_size), params, granularity
        )
        return IDBDState(log_step_size, _common.zeros_like(params), step_size)

    def update_fn(grads, state, params=None, **extra_args):
        del params
        curvature = _common.require_extra_arg(
            "idbd", "curvature", extra_args, _common.CURVATURE_HINT
        )
        curvature = _signals.side_signal_like("curvature", curvature, grads)

        meta_gradient = _common.sum_to_blocks(
            jax.tree.map(jnp.multiply, grads, state.meta_trace), granularity
        )

        def new_log_step_size(beta, z):
            change = -meta_step_size * z
            if max_log_step_size_change is not None:
                change = jnp.clip(change, -max_log_step_size_change, max_log_step_size_change)
            new_beta = beta + change
            if min_log_step_size is not None:
                new_beta = jnp.maximum(new_beta, min_log_step_size)
            return new_beta

        log_step_size = jax.tree.map(new_log_step_size, state.log_step_size, meta_gradient)
        step_size = _common.broadcast_blocks(
            jax.tree.map(jnp.exp, log_step_size), grads, granularity
        )
        updates = jax.tree.map(lambda a, g: -a * g, step_size, grads)
        meta_trace = jax.tree.map(
            lambda h, a, g, c: h * jnp.maximum(1.0 - a * c, 0.0) - a * g,
            state.meta_trace, step_size, grads, curvature,
        )
        return updates, _common.cast_like(IDBDState(log_step_size, meta_trace, step_size), state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["IDBDState", "idbd"]
