"""Autostep: tuning-free step-size adaptation (Mahmood, Sutton, Degris, Pilarski 2012).

Reference: A. R. Mahmood, R. S. Sutton, T. Degris, P. M. Pilarski, "Tuning-free step-size
adaptation", ICASSP 2012. Rule as written in docs/methods.md#autostep. With gradient
``g``, diagonal curvature ``c`` (``x²`` for a linear unit), step sizes ``α`` (init ``α₀``), trace
``h`` (init 0), normalizer ``v`` (init 0), meta step size ``μ`` and time constant ``τ``, in this
order::

    v ← max(|g h|, v + (1/τ) α c (|g h| − v))   # the OLD α and the OLD h
    α ← α exp(μ (−g h) / v)    where v ≠ 0       # elsewhere α is kept
    M = max(Σ_{i ∈ unit} α_i c_i, 1)             # one M per linear unit
    α ← α / M                                    # kept in the state: the next step starts from it
    w ← w − α g
    h ← h (1 − α c) − α g

This is IDBD (``−g h = δ x h``) with two changes: dividing by ``v ≥ |g h|`` bounds each step's
factor on ``α`` to ``[e^{−μ}, e^{μ}]`` and makes ``μ`` free of the scale of the data, and ``M``
keeps a unit's effective step size ``Σ α c`` at most 1, so one update never overshoots the target.

Units in a network. The sum in ``M`` runs over the inputs of one linear unit, which for a pytree of
parameter arrays is a choice of axes per array (``unit_axes``):

* ``"auto"`` (default): a 1-D array is one unit (the linear learner's weight vector, as in the
  paper); an array of 2 or more dimensions is summed over every axis but the last, the fan-in of a
  kernel in the ``y = x @ W`` convention (``[in, out]`` dense, ``[h, w, in, out]`` convolution), so
  each output unit ``j`` gets its own ``M_j = max(Σ_i α_ij c_ij, 1)``; a 0-D array is its own unit.
  Under this default a network's 1-D bias vector counts as one unit: pass ``"fan_in"`` for networks.
* ``"fan_in"``: every axis but the last, for every array; a 1-D bias then gets one ``M`` per element
  (each bias is the single constant input of its unit).
* a callable ``shape -> axes`` (``()`` for one ``M`` per weight). Kernels stored ``[out, in]``
  (Equinox's ``Linear``, PyTorch's convention) need the fan-in axes spelled out, e.g.
  ``lambda shape: tuple(range(1, len(shape)))``.

With :func:`metastep.deep.extra_args`, ``c`` is the Gauss-Newton diagonal, so for a dense layer
``M_j`` bounds ``Σ_i α_ij c_ij``, the effective step size of output unit ``j`` over its fan-in (for
the first layer and squared loss, ``c_ij = x_i² (∂f/∂a_j)²`` with ``a_j`` the unit's activation).

A unit's kernel column and its bias live in different arrays and are normalized separately, so their
combined effective step size can reach 2 (the rule caps each part at 1).

Granularity: only ``"weight"``. Autostep's ``v`` is a running maximum of one weight's ``|g h|``
that decays at that weight's rate ``α c``, and ``M`` rescales α unit by unit; a step size shared by
a block of weights has neither a single decay rate nor a single ``M`` (a tensor holds many units),
so there is no one natural block version and ``"tensor"``/``"scalar"`` raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metastep import _checks
from metastep._structure import recorded
from metastep.methods import _common, _signals
from metastep.methods._step_sizes import method_state

UNIT_AXES = ("auto", "fan_in")


@method_state
class AutostepState(NamedTuple):
    step_sizes: Any  # α after the M normalization: the one used by the last update, per weight
    meta_trace: Any  # h, like the parameters
    normalizer: Any  # v, like the parameters


def _auto_unit_axes(shape: Sequence[int]) -> tuple[int, ...]:
    if len(shape) == 1:
        return (0,)
    return _fan_in_axes(shape)


def _fan_in_axes(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(range(len(shape) - 1))


def _unit_axes_function(unit_axes: str | Callable) -> Callable:
    if callable(unit_axes):
        return unit_axes
    if unit_axes == "auto":
        return _auto_unit_axes
    if unit_axes == "fan_in":
        return _fan_in_axes
    raise ValueError(
        f"`unit_axes` must be one of {UNIT_AXES} or a callable shape -> axes, got {unit_axes!r}"
    )


@recorded
def autostep(
    meta_step_size: float = 0.01,
    initial_step_size: float = 0.05,
    tau: float = 1e4,
    *,
    granularity: str = "weight",
    unit_axes: str | Callable[[tuple[int, ...]], Sequence[int]] = "auto",
) -> optax.GradientTransformationExtraArgs:
    """Autostep (Mahmood et al. 2012): IDBD with a normalized meta-step and an overshoot bound.

    Args:
      meta_step_size: ``μ`` ≥ 0, dimensionless (the paper's default 1e-2).
      initial_step_size: ``α₀`` > 0 (Autostep is meant to be insensitive to it; ``M`` cuts values
        that are too large for the data at the first step). It only sets the state at ``init``;
        ``μ`` and ``τ`` are read at each update.
      tau: ``τ`` > 0, the time constant of the decay of ``v`` (the paper's default 1e4).
      granularity: ``"weight"`` only (see the module docstring for why).
      unit_axes: which weights share one ``M``: ``"auto"``, ``"fan_in"`` or a callable mapping a
        parameter array's shape to the axes summed over (see the module docstring). Under
        ``optax.inject_hyperparams``, which takes every callable for a schedule, name a callable
        in ``static_args=("unit_axes",)``.

    Extra arguments of ``update``: ``curvature`` (required), the diagonal curvature ``c``.
    """
    _checks.check_non_negative("meta_step_size", meta_step_size)
    _checks.check_positive("initial_step_size", initial_step_size)
    _checks.check_positive("tau", tau)
    _common.check_granularity(granularity)
    if granularity != "weight":
        raise ValueError(
            f"autostep supports only `granularity`='weight', got {granularity!r}: its normalizer v "
            "and its bound M are defined per weight and per unit, not per block of weights"
        )
    axes_of = _unit_axes_function(unit_axes)

    def init_fn(params):
        return AutostepState(
            _common.full_like(params, initial_step_size),
            _common.zeros_like(params),
            _common.zeros_like(params),
        )

    def new_normalizer(v, a, g, h, c):
        abs_meta_gradient = jnp.abs(g * h)
        decayed = v + a * c * (abs_meta_gradient - v) / tau
        return jnp.maximum(abs_meta_gradient, decayed)

    def adapted_step_size(a, g, h, v):
        # Double where: v = 0 only where g h = 0, and 0/0 must not reach values or gradients.
        nonzero = v != 0
        ratio = jnp.where(nonzero, -g * h / jnp.where(nonzero, v, 1.0), 0.0)
        return a * jnp.exp(meta_step_size * ratio)

    def bounded_step_size(a, c):
        effective = jnp.sum(a * c, axis=tuple(axes_of(jnp.shape(a))), keepdims=True)
        return a / jnp.maximum(effective, 1.0)

    def update_fn(grads, state, params=None, **extra_args):
        del params
        curvature = _common.require_extra_arg(
            "autostep", "curvature", extra_args, _common.CURVATURE_HINT
        )
        curvature = _signals.side_signal_like("curvature", curvature, grads)

        normalizer = jax.tree.map(
            new_normalizer, state.normalizer, state.step_sizes, grads, state.meta_trace, curvature
        )
        step_size = jax.tree.map(
            adapted_step_size, state.step_sizes, grads, state.meta_trace, normalizer
        )
        step_size = jax.tree.map(bounded_step_size, step_size, curvature)
        updates = jax.tree.map(lambda a, g: -a * g, step_size, grads)
        meta_trace = jax.tree.map(
            lambda h, a, g, c: h * (1.0 - a * c) - a * g,
            state.meta_trace, step_size, grads, curvature,
        )
        return updates, _common.cast_like(AutostepState(step_size, meta_trace, normalizer), state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["AutostepState", "autostep"]
