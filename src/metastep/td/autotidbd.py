"""AutoTIDBD: TIDBD with Autostep's normalizer and overshoot bound (Kearney et al. 2019).

Reference: A. Kearney, V. Veeriah, J. Travnik, P. M. Pilarski, R. S. Sutton, "Learning feature
relevance through step size adaptation in temporal-difference learning", arXiv:1903.03252
(2019), Algorithm 6 ("AutoStep style normalized TIDBD(λ)"); Autostep: Mahmood, Sutton, Degris &
Pilarski, ICASSP 2012. Notation as in :mod:`metastep.td.tidbd`: ``d = ∂δ/∂w`` (``γφ' − φ`` for
the full gradient, the paper's form; ``−φ`` for the semi-gradient one), normalizer ``v`` (init
0), time constant ``τ``, and ``z`` the trace that holds ``φ`` (what :class:`metastep.td.TDLearner`
passes). ``variant="paper"`` follows the algorithm box line by line::

    g = δ d h                                              # the meta-gradient, OLD h
    v ← max(|g|, v − (1/τ) α d z₋ (|δ φ h| − v))           # line 6-7: OLD α, |δ φ h|
    β ← β − θ g / v            where v ≠ 0                  # line 9
    M = max(−Σ_i exp(β_i) d_i z₋_i, 1)                     # line 10
    β ← β − ln M;  α = exp(β)                               # lines 11-12
    w ← w + α δ z                                           # line 14 (z: line 13's trace)
    h ← h [1 + α z d]⁺ + α δ z                              # line 15

``z₋`` is the trace *before* the box's line 13 adds ``φ``: the trace of the previous update (0
at an episode's first transition, where the box starts a fresh trace). The decay term of line 7
takes ``|δ φ h|``, not the ``|g|`` of line 6, as the box prints it.

``variant="autostep"`` (this library's rule before it was checked against the box) carries
Autostep's linear-unit rule over with one derivative and the current trace throughout: ``|g|``
in both terms of the normalizer, ``z`` in place of ``z₋`` in lines 6-7 and 10. In Autostep
``α x²`` (for a linear unit ``∂(−δ)/∂w = x`` and the trace is ``x``) sets both the rate at
which ``v`` forgets and the effective step size that ``M`` keeps at most 1 (so one update does
not overshoot its target); ``−α d z`` takes its place in both variants.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from metastep import _checks
from metastep._structure import recorded
from metastep.methods import _common
from metastep.methods._step_sizes import method_state
from metastep.td.tidbd import check_form, meta_trace_update, td_error_derivative, td_signals


@method_state
class AutoTIDBDState(NamedTuple):
    log_step_size: Any  # β [n], after the M normalization
    meta_trace: Any  # h [n]
    normalizer: Any  # v [n]
    step_sizes: Any  # α = exp(β) used by the last update
    previous_trace: Any  # z₋ [n] of the next update: this one's z, 0 after an episode's end


VARIANTS = ("paper", "autostep")


@recorded
def autotidbd(
    meta_step_size: float = 0.01,
    initial_step_size: float = 0.05,
    tau: float = 1e4,
    form: str = "full_gradient",
    variant: str = "paper",
) -> optax.GradientTransformationExtraArgs:
    """AutoTIDBD (Kearney et al. 2019): TIDBD with a normalized meta-step and a bound on the
    effective step size.

    Args:
      meta_step_size: ``θ`` ≥ 0, dimensionless (Autostep's default 1e-2).
      initial_step_size: ``α₀`` > 0 (sets ``β`` at ``init``).
      tau: ``τ`` > 0, the time constant of the normalizer's decay.
      form: ``"full_gradient"`` (the paper's) or ``"semi_gradient"``.
      variant: ``"paper"`` (Algorithm 6 as printed) or ``"autostep"`` (one derivative and the
        current trace throughout); see the module docstring.

    Extra arguments of ``update``: as for :func:`metastep.td.tidbd`.
    """
    _checks.check_non_negative("meta_step_size", meta_step_size)
    _checks.check_positive("initial_step_size", initial_step_size)
    _checks.check_positive("tau", tau)
    check_form(form)
    if variant not in VARIANTS:
        raise ValueError(f"`variant` must be one of {VARIANTS}, got {variant!r}")

    def init_fn(params):
        log_step_size = jnp.log(_common.full_like(params, initial_step_size))
        return AutoTIDBDState(log_step_size, _common.zeros_like(params),
                              _common.zeros_like(params), jnp.exp(log_step_size),
                              _common.zeros_like(params))

    def update_fn(grads, state, params=None, **extra_args):
        del params
        td_error, trace, features, next_features, discount = td_signals("autotidbd", extra_args)
        derivative = td_error_derivative(form, features, next_features, discount)
        meta_gradient = td_error * derivative * state.meta_trace
        size = jnp.abs(meta_gradient)
        if variant == "paper":  # lines 6-7 and 10 run before line 13 adds φ to the trace
            bound_trace, decay_size = state.previous_trace, jnp.abs(
                td_error * features * state.meta_trace)
        else:
            bound_trace, decay_size = trace, size
        normalizer = jnp.maximum(
            size, state.normalizer - state.step_sizes * derivative * bound_trace
            * (decay_size - state.normalizer) / tau)
        # Double where: v = 0 only where g = 0, and 0/0 must reach neither values nor gradients.
        nonzero = normalizer != 0
        ratio = jnp.where(nonzero, meta_gradient / jnp.where(nonzero, normalizer, 1.0), 0.0)
        log_step_size = state.log_step_size - meta_step_size * ratio
        effective = -jnp.sum(jnp.exp(log_step_size) * derivative * bound_trace)
        log_step_size = log_step_size - jnp.log(jnp.maximum(effective, 1.0))
        step_size = jnp.exp(log_step_size)
        updates = -step_size * grads
        meta_trace = meta_trace_update(state.meta_trace, step_size, trace, derivative, td_error)
        # An episode's end (γ = 0): the box's next episode starts from a zero trace.
        previous_trace = jnp.where(discount == 0, 0.0, trace)
        new_state = AutoTIDBDState(log_step_size, meta_trace, normalizer, step_size,
                                   previous_trace)
        return updates, _common.cast_like(new_state, state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["VARIANTS", "AutoTIDBDState", "autotidbd"]
