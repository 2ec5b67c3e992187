"""AutoTIDBD: TIDBD with Autostep's normalizer and overshoot bound (Kearney et al. 2019).

Reference: A. Kearney, V. Veeriah, J. Travnik, P. M. Pilarski, R. S. Sutton, "Learning feature
relevance through step size adaptation in temporal-difference learning", arXiv:1903.03252
(2019), AutoTIDBD(λ); Autostep: Mahmood, Sutton, Degris & Pilarski, ICASSP 2012. Notation as in
:mod:`metastep.td.tidbd`: ``d = ∂δ/∂w`` (``γφ' − φ`` for the full gradient, the paper's form;
``−φ`` for the semi-gradient one), normalizer ``v`` (init 0), time constant ``τ``. In this order::

    g = δ d h                                           # the meta-gradient, OLD h
    v ← max(|g|, v − (1/τ) α d z (|g| − v))             # OLD α
    β ← β − θ g / v            where v ≠ 0
    M = max(−Σ_i exp(β_i) d_i z_i, 1)
    β ← β − ln M
    α = exp(β)
    w ← w + α δ z
    h ← h [1 + α z d]⁺ + α δ z

``−α d z`` takes the place of Autostep's ``α x²`` (for a linear unit ``∂(−δ)/∂w = x`` and the
trace is ``x``): the rate at which the normalizer forgets and the effective step size that ``M``
keeps at most 1 (so one update does not overshoot its TD target). Here both terms of the normalizer
use the same ``d`` and ``M`` is one number (Autostep's sum over the features); two public
implementations of the paper's AutoTIDBD use the semi-gradient ``|δ φ h|`` in the decay term of
``v`` and a per-feature ``M_i = max(−α_i Σ_j d_j z_j, 1)`` (docs/td.md#autotidbd).
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


@recorded
def autotidbd(
    meta_step_size: float = 0.01,
    initial_step_size: float = 0.05,
    tau: float = 1e4,
    form: str = "full_gradient",
) -> optax.GradientTransformationExtraArgs:
    """AutoTIDBD (Kearney et al. 2019): TIDBD with a normalized meta-step and a bound on the
    effective step size.

    Args:
      meta_step_size: ``θ`` ≥ 0, dimensionless (Autostep's default 1e-2).
      initial_step_size: ``α₀`` > 0 (sets ``β`` at ``init``).
      tau: ``τ`` > 0, the time constant of the normalizer's decay.
      form: ``"full_gradient"`` (the paper's) or ``"semi_gradient"``.

    Extra arguments of ``update``: as for :func:`metastep.td.tidbd`.
    """
    _checks.check_non_negative("meta_step_size", meta_step_size)
    _checks.check_positive("initial_step_size", initial_step_size)
    _checks.check_positive("tau", tau)
    check_form(form)

    def init_fn(params):
        log_step_size = jnp.log(_common.full_like(params, initial_step_size))
        return AutoTIDBDState(log_step_size, _common.zeros_like(params),
                              _common.zeros_like(params), jnp.exp(log_step_size))

    def update_fn(grads, state, params=None, **extra_args):
        del params
        td_error, trace, features, next_features, discount = td_signals("autotidbd", extra_args)
        derivative = td_error_derivative(form, features, next_features, discount)
        meta_gradient = td_error * derivative * state.meta_trace
        size = jnp.abs(meta_gradient)
        normalizer = jnp.maximum(
            size, state.normalizer - state.step_sizes * derivative * trace
            * (size - state.normalizer) / tau)
        # Double where: v = 0 only where g = 0, and 0/0 must reach neither values nor gradients.
        nonzero = normalizer != 0
        ratio = jnp.where(nonzero, meta_gradient / jnp.where(nonzero, normalizer, 1.0), 0.0)
        log_step_size = state.log_step_size - meta_step_size * ratio
        effective = -jnp.sum(jnp.exp(log_step_size) * derivative * trace)
        log_step_size = log_step_size - jnp.log(jnp.maximum(effective, 1.0))
        step_size = jnp.exp(log_step_size)
        updates = -step_size * grads
        meta_trace = meta_trace_update(state.meta_trace, step_size, trace, derivative, td_error)
        new_state = AutoTIDBDState(log_step_size, meta_trace, normalizer, step_size)
        return updates, _common.cast_like(new_state, state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["AutoTIDBDState", "autotidbd"]
