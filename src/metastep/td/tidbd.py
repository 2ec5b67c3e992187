"""TIDBD: IDBD carried into TD(λ) (Kearney, Veeriah, Travnik, Sutton & Pilarski 2018).

Reference: A. Kearney, V. Veeriah, J. B. Travnik, R. S. Sutton, P. M. Pilarski, "TIDBD: Adapting
temporal-difference step-sizes through stochastic meta-descent", arXiv:1804.03334 (2018), the
algorithm boxes of semi-gradient and full-gradient TIDBD(λ). Notation: features ``φ`` of the
state being updated (``x_{t−1}`` in :class:`metastep.td.TDLearner`'s stream), ``φ'`` of the next
one, discount ``γ``, TD error ``δ = r + γ w·φ' − w·φ``, trace ``z`` (already holding ``φ``),
log step sizes ``β`` (init ``ln α₀``), meta trace ``h`` (init 0), meta step size ``θ``.

Both forms descend ``½δ²`` in ``β``; they differ in the derivative of δ in ``w_i`` they take:
``d_i = −φ_i`` for the semi-gradient form (the target held fixed, as TD(λ) does for ``w``) and
``d_i = γφ'_i − φ_i`` for the full-gradient form. In this order::

    β ← β − θ δ d h          # semi-gradient: β + θ δ φ h; the OLD h
    α = exp(β)
    w ← w + α δ z
    h ← h [1 + α z d]⁺ + α δ z    # semi-gradient: h [1 − α φ z]⁺ + α δ z

With ``θ = 0`` this is TD(λ) with the fixed step size ``α₀``; with ``λ = 0`` (the trace is then
``φ``) it is TIDBD(0).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from metastep import _checks
from metastep._structure import recorded
from metastep.methods import _common
from metastep.methods._step_sizes import method_state

FORMS = ("semi_gradient", "full_gradient")
TD_HINT = "use it with ms.td.TDLearner, which passes the TD side signals"


def check_form(form: str) -> None:
    if form not in FORMS:
        raise ValueError(f"`form` must be one of {FORMS}, got {form!r}")


def td_signals(method: str, extra_args: dict) -> tuple[Any, ...]:
    """``(δ, z, φ, φ', γ)`` from the extra arguments of ``update``."""
    return tuple(_common.require_extra_arg(method, name, extra_args, TD_HINT)
                 for name in ("td_error", "trace", "features", "next_features", "discount"))


def td_error_derivative(form: str, features, next_features, discount):
    """``d = ∂δ/∂w``: ``−φ`` (semi-gradient) or ``γφ' − φ`` (full gradient)."""
    if form == "semi_gradient":
        return -features
    return discount * next_features - features


def meta_trace_update(meta_trace, step_size, trace, derivative, td_error):
    """``h [1 + α z d]⁺ + α δ z``."""
    return (meta_trace * jnp.maximum(1.0 + step_size * trace * derivative, 0.0)
            + step_size * td_error * trace)


@method_state
class TIDBDState(NamedTuple):
    log_step_size: Any  # β [n]
    meta_trace: Any  # h [n]
    step_sizes: Any  # α = exp(β) used by the last update


@recorded
def tidbd(
    meta_step_size: float = 0.01,
    initial_step_size: float = 0.05,
    form: str = "semi_gradient",
) -> optax.GradientTransformationExtraArgs:
    """TIDBD (Kearney et al. 2018): per-feature TD step sizes learned by meta-gradient descent.

    Args:
      meta_step_size: ``θ`` ≥ 0.
      initial_step_size: ``α₀`` > 0 (sets ``β`` at ``init``).
      form: ``"semi_gradient"`` or ``"full_gradient"`` (see the module docstring).

    Extra arguments of ``update`` (required; :class:`metastep.td.TDLearner` passes them):
    ``td_error``, ``trace``, ``features``, ``next_features``, ``discount``. The gradient is
    ``−δ z``; the update is ``α δ z``.
    """
    _checks.check_non_negative("meta_step_size", meta_step_size)
    _checks.check_positive("initial_step_size", initial_step_size)
    check_form(form)

    def init_fn(params):
        log_step_size = jnp.log(_common.full_like(params, initial_step_size))
        return TIDBDState(log_step_size, _common.zeros_like(params), jnp.exp(log_step_size))

    def update_fn(grads, state, params=None, **extra_args):
        del params
        td_error, trace, features, next_features, discount = td_signals("tidbd", extra_args)
        derivative = td_error_derivative(form, features, next_features, discount)
        log_step_size = state.log_step_size - meta_step_size * td_error * derivative * (
            state.meta_trace)
        step_size = jnp.exp(log_step_size)
        updates = -step_size * grads
        meta_trace = meta_trace_update(state.meta_trace, step_size, trace, derivative, td_error)
        return updates, _common.cast_like(TIDBDState(log_step_size, meta_trace, step_size), state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["FORMS", "TIDBDState", "tidbd"]
