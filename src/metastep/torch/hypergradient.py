"""Hypergradient descent (Baydin et al. 2018) as ``torch.optim.Optimizer``s: SGD-HD and Adam-HD,
the rules of :func:`metastep.hypergradient` and :func:`metastep.adam_hypergradient`.

Reference: A. G. Baydin, R. Cornish, D. Martínez Rubio, M. Schmidt and F. Wood, "Online learning
rate adaptation with hypergradient descent", ICLR 2018 (docs/methods.md#hypergradient). The step
size ``α`` moves along ``−g_t · u_{t−1}`` (summed over a block), ``u`` the previous direction::

    SGD-HD:  α ← α + β_hd (g_t · g_{t−1});   w ← w − α g_t
    Adam-HD: α ← α + β_hd (g_t · d_{t−1});   m, v, m̂, v̂ ← Adam's averages;
             d_t = m̂ / sqrt(v̂ + ε);         w ← w − α d_t

Adam is in the form of Degris et al. 2024 (:func:`metastep.adam`): rates ``γ_m = 1 − β₁`` and
``γ_g = 1 − β₂``, ``ε`` inside the square root. Adam-HD reports the per-weight step size
``α / sqrt(v̂ + ε)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from metastep import _checks
from metastep.methods import _common
from metastep.torch._optimizer import MetaStepOptimizer, check_granularity, check_optional

_CHECKS = {
    "meta_step_size": _checks.check_non_negative,
    "initial_step_size": _checks.check_non_negative,
    "granularity": check_granularity,
    "min_step_size": check_optional(_checks.check_non_negative),
}


class _Hypergradient(MetaStepOptimizer):
    """The learned step size shared by SGD-HD and Adam-HD; ``direction_key`` names ``u``."""

    direction_key = ""

    def _step_learned(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        """``α ← max(α + β_hd Σ_block g · u, α_min)``, each parameter's state made if new."""
        for p in params:
            if self.direction_key not in self.state[p]:
                self.state[p][self.direction_key] = torch.zeros_like(
                    p
                )
            self._init_block(group, p, "learned_step_size", group["initial_step_size"])
        hypergradients = self._block_products(
            group, [p.grad for p in params], [self.state[p][self.direction_key] for p in params]
        )
        learned = [state["learned_step_size"] for state in self._block_states(group, params)]
        torch._foreach_add_(learned, hypergradients, alpha=group["meta_step_size"])
        if group["min_step_size"] is not None:
            torch._foreach_clamp_min_(learned, group["min_step_size"])

    def _learned(self, group: dict[str, Any], p: torch.Tensor) -> torch.Tensor:
        learned = self._block_value(group, p, "learned_step_size")
        if learned is None:
            return torch.full_like(p, group["initial_step_size"])
        return learned


class SGDHD(_Hypergradient):
    """SGD-HD: ``α ← α + β_hd (g_t · g_{t−1})``, then ``w ← w − α g_t``.

    Args:
      params: parameters or param groups (each group may set any hyperparameter below).
      meta_step_size: ``β_hd`` ≥ 0.
      initial_step_size: ``α₀`` ≥ 0 (sets ``α`` at a parameter's first step).
      granularity: ``"scalar"`` (one α per param group, the paper), ``"tensor"`` or
        ``"weight"``.
      min_step_size: optional floor on α (not in the paper).

    ``step`` takes no curvature (one passed is ignored).
    """

    checks = _CHECKS
    direction_key = "previous_gradient"

    def __init__(self, params: Iterable[Any], meta_step_size: float = 1e-3,
                 initial_step_size: float = 1e-3, granularity: str = "scalar", *,
                 min_step_size: float | None = None):
        super().__init__(params, dict(
            meta_step_size=meta_step_size, initial_step_size=initial_step_size,
            granularity=granularity, min_step_size=min_step_size,
        ))

    def _update_group(self, group, params, curvature):
        del curvature
        self._step_learned(group, params)
        grads = [p.grad for p in params]
        torch._foreach_sub_(params, torch._foreach_mul([self._learned(group, p) for p in params],
                                                       grads))
        torch._foreach_copy_([self.state[p]["previous_gradient"] for p in params], grads)

    def _step_sizes_of(self, group, p):
        return self._learned(group, p)


def _bias_corrections(rates: tuple[float, ...], counts: list[torch.Tensor],
                      dtype: torch.dtype) -> list[list[torch.Tensor]]:
    """``1 − (1 − γ)^t`` for each rate ``γ`` and count ``t``, as ``−expm1(t log1p(−γ))``
    (``1 − γ`` would round off a small γ), in ``dtype``; 1 where it is 0 (γ = 0 or t = 0). One
    computation for all (a few small operations per step, not a few per rate)."""
    steps = torch.stack(counts).to(dtype)
    logs = torch.tensor([math.log1p(-rate) for rate in rates], dtype=dtype, device=steps.device)
    correction = -torch.expm1(logs[:, None] * steps)
    correction = torch.where(correction > 0, correction, torch.ones_like(correction))
    return [list(row.unbind()) for row in correction]


class AdamHD(_Hypergradient):
    """Adam-HD: ``α ← α + β_hd (g_t · d_{t−1})``, then ``w ← w − α d_t``.

    Args:
      params: parameters or param groups (each group may set any hyperparameter below).
      meta_step_size: ``β_hd`` ≥ 0.
      initial_step_size: ``α₀`` ≥ 0, the base step size Adam's normalizer divides.
      momentum_rate: ``γ_m`` in [0, 1], the rate of the average of ``g`` (``1 − β₁``).
      normalizer_rate: ``γ_g`` in [0, 1], the rate of the average of ``g²`` (``1 − β₂``).
      eps: ``ε`` > 0, added to ``v̂`` inside the square root.
      granularity: ``"scalar"`` (one α per param group, the paper), ``"tensor"`` or
        ``"weight"``.
      min_step_size: optional floor on α (not in the paper).

    ``step`` takes no curvature (one passed is ignored).
    """

    checks = {
        **_CHECKS,
        "momentum_rate": _checks.check_unit_interval,
        "normalizer_rate": _checks.check_unit_interval,
        "eps": lambda name, value: _common.check_eps(value),
    }
    direction_key = "previous_direction"

    def __init__(self, params: Iterable[Any], meta_step_size: float = 1e-7,
                 initial_step_size: float = 1e-3, momentum_rate: float = 0.1,
                 normalizer_rate: float = 0.001, eps: float = 1e-8,
                 granularity: str = "scalar", *, min_step_size: float | None = None):
        super().__init__(params, dict(
            meta_step_size=meta_step_size, initial_step_size=initial_step_size,
            momentum_rate=momentum_rate, normalizer_rate=normalizer_rate, eps=eps,
            granularity=granularity, min_step_size=min_step_size,
        ))

    def _update_group(self, group, params, curvature):
        del curvature
        self._step_learned(group, params)
        states = [self.state[p] for p in params]
        for p, state in zip(params, states):
            if "step" not in state:
                state["step"] = torch.zeros((), dtype=torch.int64, device=p.device)
                state["momentum"] = torch.zeros_like(p)
                state["normalizer"] = torch.zeros_like(p)
            state["step"].add_(1)
        grads = [p.grad for p in params]
        momenta = [state["momentum"] for state in states]
        normalizers = [state["normalizer"] for state in states]
        # m ← m + γ_m (g − m);  v ← v + γ_g (g² − v) = (1 − γ_g) v + γ_g g²  (in place)
        torch._foreach_lerp_(momenta, grads, group["momentum_rate"])
        torch._foreach_mul_(normalizers, 1.0 - group["normalizer_rate"])
        torch._foreach_addcmul_(normalizers, grads, grads, value=group["normalizer_rate"])
        momentum_corrections, normalizer_corrections = _bias_corrections(
            (group["momentum_rate"], group["normalizer_rate"]),
            [state["step"] for state in states], params[0].dtype,
        )
        directions = torch._foreach_div(momenta, momentum_corrections)
        scales = torch._foreach_div(normalizers, normalizer_corrections)  # sqrt(v̂ + ε)
        torch._foreach_add_(scales, group["eps"])
        torch._foreach_sqrt_(scales)
        torch._foreach_div_(directions, scales)
        # w ← w − α d_t, and d_t is the next step's d_{t−1} (the new tensors, not a copy)
        torch._foreach_addcmul_(params, directions, [self._learned(group, p) for p in params],
                                value=-1.0)
        for state, direction in zip(states, directions):
            state["previous_direction"] = direction

    def _scale(self, group: dict[str, Any], p: torch.Tensor) -> torch.Tensor:
        """``sqrt(v̂ + ε)`` (``sqrt(ε)`` before the first step)."""
        state = self.state.get(p, {})
        if "step" not in state:
            return torch.full_like(p, group["eps"]).sqrt_()
        ((correction,),) = _bias_corrections((group["normalizer_rate"],), [state["step"]],
                                             p.dtype)
        return (state["normalizer"] / correction + group["eps"]).sqrt()

    def _step_sizes_of(self, group, p):
        return self._learned(group, p) / self._scale(group, p)


__all__ = ["AdamHD", "SGDHD"]
