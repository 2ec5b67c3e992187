"""Normalized IDBD as a ``torch.optim.Optimizer``: the rule of :func:`metastep.normalized_idbd`.

IDBD over RMSprop-normalized gradients, with a meta-gradient divided by its own running scale
(docs/methods.md#normalized_idbd). With gradient ``g``, diagonal curvature ``c``, log step sizes
``β`` (init ``ln α₀``), trace ``h``, the running averages ``v`` (of ``g²``) and ``n`` (of
``(g h)²``), both from 0 and bias-corrected, and ``t`` the update count, in this order::

    v ← v + γ (g² − v);         s = 1 / sqrt(v / (1 − (1 − γ)^t) + ε)   # s = 1 without it
    z = g h                                                              # the OLD h
    n ← n + ρ (z² − n);         β ← β − μ z / sqrt(n / (1 − (1 − ρ)^t))  # 0 where n = 0
    α = exp(β)
    w ← w − α s g
    h ← h [1 − α s c]⁺ − α s g

The step size of a weight (``mst.step_sizes``) is ``α s``, the factor of ``g``; before the first
step, ``α₀ / sqrt(ε)`` (``α₀`` without the normalizer).

``α₀ = unit_step_size / fan_in`` by default, the fan-in of the JAX method for the same layer in
PyTorch's layout: weights are stored ``[out, in, ...]`` (``nn.Linear``, ``nn.Conv2d``), so the
fan-in of a tensor of 2 or more dimensions is the product of every axis but the FIRST (JAX's
``[in, out]`` kernels: every axis but the last); a 1-D tensor (a bias, a linear unit's weights) is
one unit of its length, and a 0-d tensor one of 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import torch

from metastep import _checks
from metastep.methods import _common
from metastep.torch._optimizer import MetaStepOptimizer, check_optional, foreach_rsqrt_
from metastep.torch.hypergradient import _bias_corrections


def fan_in(shape: Sequence[int]) -> int:
    """The fan-in of a weight in a PyTorch tensor of ``shape`` (module docstring)."""
    return shape[0] if len(shape) == 1 else math.prod(shape[1:])


def _check_rate(name: str, value: Any) -> None:
    _checks.check_positive(name, value)
    if value > 1:
        raise ValueError(f"`{name}` must be in (0, 1], got {value}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be a bool, got {value!r}")


class NormalizedIDBD(MetaStepOptimizer):
    """Normalized IDBD: per-weight step sizes over RMSprop-normalized gradients.

    Args:
      params: parameters or param groups (each group may set any hyperparameter below).
      meta_step_size: ``μ`` ≥ 0, dimensionless: about the largest change of ``ln α`` per step.
      unit_step_size: ``κ`` > 0: ``α₀ = κ / fan_in`` for each weight (module docstring), unless
        ``initial_step_size`` is given.
      initial_step_size: ``α₀`` > 0 for every weight instead. ``κ`` and ``α₀`` only set ``β`` at a
        parameter's first step; every other hyperparameter is read at each step.
      gradient_normalizer_rate: ``γ`` in (0, 1], the rate of the average of ``g²`` (Adam's
        ``1 − β₂``).
      meta_normalizer_rate: ``ρ`` in (0, 1], the rate of the average of ``(g h)²``.
      eps: ``ε`` > 0, inside the square root of RMSprop's normalizer.
      normalize_gradients: False drops RMSprop's normalizer (``s = 1``, ``v`` stays 0): IDBD over
        plain gradients with the normalized meta-gradient.
      foreach: the multi-tensor implementation (``torch._foreach_*``) if True or None (the
        default, on every device), one tensor at a time if False; the two give the same numbers.

    ``step`` needs ``curvature``, the diagonal curvature (see :mod:`metastep.torch`).
    """

    checks = {
        "meta_step_size": _checks.check_non_negative,
        "unit_step_size": _checks.check_positive,
        "initial_step_size": check_optional(_checks.check_positive),
        "gradient_normalizer_rate": _check_rate,
        "meta_normalizer_rate": _check_rate,
        "eps": lambda name, value: _common.check_eps(value),
        "normalize_gradients": _check_bool,
        "foreach": check_optional(_check_bool),
    }
    needs_curvature = True

    def __init__(self, params: Iterable[Any], meta_step_size: float = 0.003,
                 unit_step_size: float = 0.1, *, initial_step_size: float | None = None,
                 gradient_normalizer_rate: float = 0.001, meta_normalizer_rate: float = 0.01,
                 eps: float = 1e-8, normalize_gradients: bool = True,
                 foreach: bool | None = None):
        super().__init__(params, dict(
            meta_step_size=meta_step_size, unit_step_size=unit_step_size,
            initial_step_size=initial_step_size,
            gradient_normalizer_rate=gradient_normalizer_rate,
            meta_normalizer_rate=meta_normalizer_rate, eps=eps,
            normalize_gradients=normalize_gradients, foreach=foreach,
        ))

    def _initial_step_size(self, group: dict[str, Any], p: torch.Tensor) -> float:
        if group["initial_step_size"] is not None:
            return group["initial_step_size"]
        # An empty tensor has no weight to set: any finite value does.
        return group["unit_step_size"] / max(fan_in(p.shape), 1)

    def _update_group(self, group, params, curvature):
        for p in params:
            state = self.state[p]
            if "step" not in state:
                state["step"] = torch.zeros((), dtype=torch.int64, device=p.device)
                state["meta_trace"] = torch.zeros_like(p)
                state["gradient_normalizer"] = torch.zeros_like(p)
                state["meta_normalizer"] = torch.zeros_like(p)
                self._init_block(group, p, "log_step_size", self._initial_step_size(group, p),
                                 torch.log)
        states = [self.state[p] for p in params]
        counts = [state["step"] for state in states]
        torch._foreach_add_(counts, 1)
        # On a CPU (not compiled), the counts read once as numbers make the bias corrections
        # numbers (no small tensor operations, no pass of their own); elsewhere they stay
        # tensors (no wait for the device).
        if params[0].device.type == "cpu" and not torch.compiler.is_compiling():
            counts = torch.stack(counts).tolist()
        update = _multi_tensor_update if group["foreach"] in (None, True) else _one_tensor_update
        update(group, params, curvature, states, _step_terms(group, counts, params[0].dtype))

    def _step_sizes_of(self, group, p):
        state = self.state.get(p, {})
        if "step" not in state:
            step_size = torch.full_like(p, self._initial_step_size(group, p))
            if group["normalize_gradients"]:
                step_size /= torch.full_like(p, group["eps"]).sqrt_()
            return step_size
        step_size = state["log_step_size"].exp()
        if group["normalize_gradients"]:
            ((correction,),) = _bias_corrections((group["gradient_normalizer_rate"],),
                                                 [state["step"]], p.dtype)
            step_size *= (state["gradient_normalizer"] / correction + group["eps"]).rsqrt_()
        return step_size


class _StepTerms(NamedTuple):
    """Per tensor, from the bias corrections ``b_v = 1 − (1 − γ)^t`` and ``b_n = 1 − (1 − ρ)^t``:
    numbers (from counts read as numbers) or one-element tensors."""

    gradient_corrections: list[Any]  # b_v
    meta_scales: list[Any]  # −μ sqrt(b_n): the step of β is −μ sqrt(b_n) z / sqrt(n)


def _step_terms(group: dict[str, Any], counts: list[Any], dtype: torch.dtype) -> _StepTerms:
    rates = (group["gradient_normalizer_rate"], group["meta_normalizer_rate"])
    if all(isinstance(count, int) for count in counts):
        # −expm1(t log1p(−γ)): 1 − γ would round off a small γ (1 where it is 0, as for tensors)
        corrections = [[-math.expm1(count * math.log1p(-rate)) or 1.0 for count in counts]
                       for rate in rates]
        return _StepTerms(corrections[0], [-group["meta_step_size"] * math.sqrt(correction)
                                           for correction in corrections[1]])
    gradient_corrections, meta_corrections = _bias_corrections(rates, counts, dtype)
    meta_scales = torch._foreach_sqrt(meta_corrections)
    torch._foreach_mul_(meta_scales, -group["meta_step_size"])
    return _StepTerms(gradient_corrections, meta_scales)


def _multi_tensor_update(group, params, curvature, states, terms: _StepTerms):
    """The rule on all of a group's stepped parameters at once. Two new tensors of each
    parameter's size, reused (``z`` for ``s`` and ``α s c``, the meta-gradient's divisor for
    ``α s``): new tensors cost page faults on a CPU (measured: with five, steps on the
    784-300-150-10 MLP took up to twice as long)."""
    grads = [p.grad for p in params]
    traces = [state["meta_trace"] for state in states]
    log_step_sizes = [state["log_step_size"] for state in states]
    meta_normalizers = [state["meta_normalizer"] for state in states]
    rate = group["meta_normalizer_rate"]
    # n ← (1 − ρ) n + ρ z²;  β ← β − μ z / sqrt(n̂) = β − μ sqrt(b_n) z / sqrt(n), n floored at
    # the smallest normal number: n = 0 only where z = 0, and there z / sqrt(floor) = ±0 keeps β
    # (no 0 / 0).
    meta_gradients = torch._foreach_mul(grads, traces)
    torch._foreach_mul_(meta_normalizers, 1.0 - rate)
    torch._foreach_addcmul_(meta_normalizers, meta_gradients, meta_gradients, value=rate)
    divisors = torch._foreach_clamp_min(meta_normalizers, torch.finfo(params[0].dtype).tiny)
    foreach_rsqrt_(divisors)
    if _numbers(terms.meta_scales):
        torch._foreach_addcmul_(log_step_sizes, meta_gradients, divisors, terms.meta_scales)
    else:
        torch._foreach_mul_(divisors, terms.meta_scales)
        torch._foreach_addcmul_(log_step_sizes, meta_gradients, divisors)
    step_sizes = divisors  # α s
    torch._foreach_copy_(step_sizes, log_step_sizes)
    torch._foreach_exp_(step_sizes)
    if group["normalize_gradients"]:
        normalizers = [state["gradient_normalizer"] for state in states]
        rate = group["gradient_normalizer_rate"]
        torch._foreach_mul_(normalizers, 1.0 - rate)
        torch._foreach_addcmul_(normalizers, grads, grads, value=rate)
        scales = meta_gradients
        torch._foreach_copy_(scales, normalizers)
        torch._foreach_div_(scales, terms.gradient_corrections)
        torch._foreach_add_(scales, group["eps"])
        foreach_rsqrt_(scales)
        torch._foreach_mul_(step_sizes, scales)
    torch._foreach_addcmul_(params, step_sizes, grads, value=-1.0)
    # h ← h [1 − α s c]⁺ − α s g, as h − h min(α s c, 1) − α s g (two passes fewer)
    rates = meta_gradients
    torch._foreach_copy_(rates, step_sizes)
    torch._foreach_mul_(rates, curvature)
    torch._foreach_clamp_max_(rates, 1.0)
    torch._foreach_addcmul_(traces, traces, rates, value=-1.0)
    torch._foreach_addcmul_(traces, step_sizes, grads, value=-1.0)


def _numbers(values: list[Any]) -> bool:
    return all(isinstance(value, float) for value in values)


def _one_tensor_update(group, params, curvature, states, terms: _StepTerms):
    """The rule one parameter at a time: the operations of ``_multi_tensor_update`` in the same
    order, so the same numbers."""
    tiny = torch.finfo(params[0].dtype).tiny
    meta_rate, rate = group["meta_normalizer_rate"], group["gradient_normalizer_rate"]
    numbers = _numbers(terms.meta_scales)
    for p, c, state, gradient_correction, meta_scale in zip(
            params, curvature, states, terms.gradient_corrections, terms.meta_scales):
        g, h = p.grad, state["meta_trace"]
        meta_gradient = g * h
        state["meta_normalizer"].mul_(1.0 - meta_rate).addcmul_(
            meta_gradient, meta_gradient, value=meta_rate)
        divisor = state["meta_normalizer"].clamp_min(tiny)
        foreach_rsqrt_([divisor])
        if numbers:
            state["log_step_size"].addcmul_(meta_gradient, divisor, value=meta_scale)
        else:
            state["log_step_size"].addcmul_(meta_gradient, divisor.mul_(meta_scale))
        step_size = divisor.copy_(state["log_step_size"]).exp_()
        if group["normalize_gradients"]:
            normalizer = state["gradient_normalizer"]
            normalizer.mul_(1.0 - rate).addcmul_(g, g, value=rate)
            scale = meta_gradient.copy_(normalizer).div_(gradient_correction)
            foreach_rsqrt_([scale.add_(group["eps"])])
            step_size.mul_(scale)
        p.addcmul_(step_size, g, value=-1.0)
        rates = meta_gradient.copy_(step_size).mul_(c).clamp_max_(1.0)
        h.addcmul_(h, rates, value=-1.0).addcmul_(step_size, g, value=-1.0)


__all__ = ["NormalizedIDBD", "fan_in"]
