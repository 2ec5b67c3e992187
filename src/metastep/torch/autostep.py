"""Autostep (Mahmood et al. 2012) as a ``torch.optim.Optimizer``: the rule of
:func:`metastep.autostep`.

Reference: A. R. Mahmood, R. S. Sutton, T. Degris, P. M. Pilarski, "Tuning-free step-size
adaptation", ICASSP 2012 (docs/methods.md#autostep). With gradient ``g``, diagonal curvature
``c``, step sizes ``α`` (init ``α₀``), trace ``h`` and normalizer ``v`` (both init 0), meta step
size ``μ`` and time constant ``τ``, in this order::

    v ← max(|g h|, v + (1/τ) α c (|g h| − v))
    α ← α exp(μ (−g h) / v)    where v ≠ 0
    α ← α / max(Σ_{i ∈ unit} α_i c_i, 1)
    w ← w − α g
    h ← h (1 − α c) − α g

Units follow PyTorch's layout, whose weights are stored ``[out, in, ...]`` (``nn.Linear``,
``nn.Conv2d``): the fan-in of a weight is every axis but the FIRST, where the JAX method's
``[in, out]`` kernels use every axis but the last. The same unit of a network therefore gets the
same ``M`` in both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from metastep import _checks
from metastep.torch._optimizer import MetaStepOptimizer

UNIT_AXES = ("auto", "fan_in")


def _fan_in_axes(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(range(1, len(shape)))


def _auto_unit_axes(shape: Sequence[int]) -> tuple[int, ...]:
    return (0,) if len(shape) == 1 else _fan_in_axes(shape)


def _unit_axes_function(unit_axes: Any) -> Callable[[Sequence[int]], Sequence[int]]:
    if callable(unit_axes):
        return unit_axes
    if unit_axes == "auto":
        return _auto_unit_axes
    if unit_axes == "fan_in":
        return _fan_in_axes
    raise ValueError(
        f"`unit_axes` must be one of {UNIT_AXES} or a callable shape -> axes, got {unit_axes!r}"
    )


def _check_unit_axes(name: str, value: Any) -> None:
    del name
    _unit_axes_function(value)


def _check_weight_granularity(name: str, value: Any) -> None:
    del name
    if value != "weight":
        raise ValueError(
            f"Autostep supports only `granularity`='weight', got {value!r}: its normalizer v and "
            "its bound M are defined per weight and per unit, not per block of weights"
        )


class Autostep(MetaStepOptimizer):
    """Autostep: IDBD with a normalized meta-step and a bound against overshooting.

    Args:
      params: parameters or param groups (each group may set any hyperparameter below).
      meta_step_size: ``μ`` ≥ 0, dimensionless.
      initial_step_size: ``α₀`` > 0 (sets ``α`` at a parameter's first step).
      tau: ``τ`` > 0, the time constant of the decay of ``v``.
      granularity: ``"weight"`` only (as :func:`metastep.autostep`).
      unit_axes: which weights share one ``M``: ``"auto"`` (a 1-D tensor is one unit, a weight
        of 2 or more dimensions is summed over every axis but the first), ``"fan_in"`` (every
        axis but the first, for every tensor: a 1-D bias gets one ``M`` per element), or a
        callable mapping a shape to the axes summed over.

    ``step`` needs ``curvature``, the diagonal curvature (see :mod:`metastep.torch`).
    """

    checks = {
        "meta_step_size": _checks.check_non_negative,
        "initial_step_size": _checks.check_positive,
        "tau": _checks.check_positive,
        "granularity": _check_weight_granularity,
        "unit_axes": _check_unit_axes,
    }
    needs_curvature = True

    def __init__(self, params: Iterable[Any], meta_step_size: float = 0.01,
                 initial_step_size: float = 0.05, tau: float = 1e4, *,
                 granularity: str = "weight", unit_axes: Any = "auto"):
        super().__init__(params, dict(
            meta_step_size=meta_step_size, initial_step_size=initial_step_size, tau=tau,
            granularity=granularity, unit_axes=unit_axes,
        ))

    def _update_group(self, group, params, curvature):
        axes_of = _unit_axes_function(group["unit_axes"])
        for p in params:
            state = self.state[p]
            if "step_size" not in state:
                state["step_size"] = torch.full_like(p, group["initial_step_size"])
                state["meta_trace"] = torch.zeros_like(p)
                state["normalizer"] = torch.zeros_like(p)
        states = [self.state[p] for p in params]
        grads = [p.grad for p in params]
        step_sizes = [state["step_size"] for state in states]
        traces = [state["meta_trace"] for state in states]
        normalizers = [state["normalizer"] for state in states]
        # v ← max(|g h|, v + (1/τ) α c (|g h| − v)) = max(|g h|, lerp(v, |g h|, α c / τ)), with the
        # old α and h. Three new tensors, reused: each costs a CPU page faults, more than a pass.
        meta_gradients = torch._foreach_mul(grads, traces)
        sizes = torch._foreach_abs(meta_gradients)
        weights = torch._foreach_mul(step_sizes, curvature)
        torch._foreach_div_(weights, group["tau"])
        torch._foreach_lerp_(normalizers, sizes, weights)
        torch._foreach_maximum_(normalizers, sizes)
        # α ← α exp(μ (−g h) / v) where v ≠ 0: v ≥ |g h|, so v = 0 only where g h = 0, and there
        # (g h) / max(v, tiny) = ±0 keeps α (no 0 / 0). A floor at the smallest normal number
        # costs a pass less than a mask of v = 0 (only a subnormal v, which a CPU flushing
        # subnormals, as XLA's, reads as 0, is divided by another number). −μ: negating before
        # the product is exact.
        divisors = sizes
        torch._foreach_copy_(divisors, normalizers)
        torch._foreach_clamp_min_(divisors, torch.finfo(params[0].dtype).tiny)
        factors = meta_gradients
        torch._foreach_div_(factors, divisors)
        torch._foreach_mul_(factors, -group["meta_step_size"])
        torch._foreach_exp_(factors)
        torch._foreach_mul_(step_sizes, factors)
        # α ← α / max(Σ_unit α c, 1)
        rates = weights
        torch._foreach_copy_(rates, step_sizes)
        torch._foreach_mul_(rates, curvature)
        effective = []
        for p, rate in zip(params, rates):
            axes = tuple(axes_of(tuple(p.shape)))
            effective.append(rate.sum(dim=axes, keepdim=True) if axes else rate.clone())
        torch._foreach_clamp_min_(effective, 1.0)
        torch._foreach_div_(step_sizes, effective)
        # w ← w − α g;  h ← h (1 − α c) − α g, as h − (α c) h − α g, with the new α c = rates / M
        torch._foreach_addcmul_(params, step_sizes, grads, value=-1.0)
        torch._foreach_div_(rates, effective)
        torch._foreach_addcmul_(traces, traces, rates, value=-1.0)
        torch._foreach_addcmul_(traces, step_sizes, grads, value=-1.0)

    def _step_sizes_of(self, group, p):
        state = self.state.get(p, {})
        if "step_size" not in state:
            return torch.full_like(p, group["initial_step_size"])
        return state["step_size"]


__all__ = ["Autostep", "UNIT_AXES"]
