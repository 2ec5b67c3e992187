"""The ΔΔ rule as a ``torch.optim.Optimizer``: the rule of :func:`metastep.delta_delta`.

Source: docs/methods.md#delta_delta (the batch ancestor is R. A. Jacobs, "Increased rates of
convergence through learning rate adaptation", Neural Networks 1988). With gradient ``g``, the last
weight change ``Δ_t``, the one before ``Δ_{t−1}`` (both 0 before the first step), meta step size
``κ`` and a floor ``α_min`` > 0::

    α ← max(α + κ Δ_{t−1} Δ_t, α_min)
    w ← w − α g

The weight changes are the ones this optimizer made (``−α g``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from metastep import _checks
from metastep.torch._optimizer import MetaStepOptimizer


class DeltaDelta(MetaStepOptimizer):
    """The ΔΔ rule: ``α ← max(α + κ Δ_{t−1} Δ_t, α_min)``, then ``w ← w − α g``.

    Args:
      params: parameters or param groups (each group may set any hyperparameter below).
      meta_step_size: ``κ`` ≥ 0 (not dimensionless: ``Δ_{t−1} Δ_t`` scales like ``α² g²``).
      initial_step_size: ``α₀`` > 0, per weight (sets ``α`` at a parameter's first step).
      min_step_size: the floor ``α_min`` > 0 on every α.

    ``step`` takes no curvature (one passed is ignored).
    """

    checks = {
        "meta_step_size": _checks.check_non_negative,
        "initial_step_size": _checks.check_positive,
        "min_step_size": _checks.check_positive,
    }

    def __init__(self, params: Iterable[Any], meta_step_size: float = 0.03,
                 initial_step_size: float = 0.01, min_step_size: float = 1e-6):
        super().__init__(params, dict(
            meta_step_size=meta_step_size, initial_step_size=initial_step_size,
            min_step_size=min_step_size,
        ))

    def _update_group(self, group, params, curvature):
        del curvature
        for p in params:
            state = self.state[p]
            if "step_size" not in state:
                state["step_size"] = torch.full_like(p, group["initial_step_size"])
                state["last_change"] = torch.zeros_like(p)
                state["change_before"] = torch.zeros_like(p)
        states = [self.state[p] for p in params]
        step_sizes = [state["step_size"] for state in states]
        lasts = [state["last_change"] for state in states]
        befores = [state["change_before"] for state in states]
        # α ← max(α + κ Δ_{t−1} Δ_t, α_min), the product in the buffer of Δ_{t−1} (which then
        # takes Δ_t): no new tensor, each of which costs a CPU page faults
        increments = befores
        torch._foreach_mul_(increments, group["meta_step_size"])
        torch._foreach_mul_(increments, lasts)
        torch._foreach_add_(step_sizes, increments)
        torch._foreach_clamp_min_(step_sizes, group["min_step_size"])
        torch._foreach_copy_(befores, lasts)
        changes = lasts  # this step's change, −α g
        torch._foreach_copy_(changes, step_sizes)
        torch._foreach_mul_(changes, [p.grad for p in params])
        torch._foreach_neg_(changes)
        torch._foreach_add_(params, changes)

    def _step_sizes_of(self, group, p):
        state = self.state.get(p, {})
        if "step_size" not in state:
            return torch.full_like(p, group["initial_step_size"])
        return state["step_size"]


__all__ = ["DeltaDelta"]
