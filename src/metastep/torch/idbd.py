"""IDBD (Sutton 1992) as a ``torch.optim.Optimizer``: the rule of :func:`metastep.idbd`.

Reference: R. S. Sutton, "Adapting bias by gradient descent: an incremental version of
delta-bar-delta", AAAI 1992 (docs/methods.md#idbd). With gradient ``g``, diagonal curvature ``c``
(``x²`` for a linear unit), log step sizes ``β`` (init ``ln α₀``), trace ``h`` (init 0) and meta
step size ``θ``, in this order::

    β ← β − θ g h            # the OLD h (summed over a block for "tensor"/"scalar")
    α = exp(β)
    w ← w − α g
    h ← h [1 − α c]⁺ − α g
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from metastep import _checks
from metastep.torch._optimizer import MetaStepOptimizer, check_granularity, check_optional


class IDBD(MetaStepOptimizer):
    """IDBD: per-weight step sizes ``α = exp(β)`` learned by meta-gradient descent.

    Args:
      params: parameters or param groups (each group may set any hyperparameter below).
      meta_step_size: ``θ`` ≥ 0, the step size of the update of ``β = ln α``.
      initial_step_size: ``α₀`` > 0 (sets ``β`` at a parameter's first step).
      granularity: ``"weight"`` (one α per weight), ``"tensor"`` (one per parameter tensor) or
        ``"scalar"`` (one per param group).
      min_log_step_size: optional floor on ``β``.
      max_log_step_size_change: optional bound on ``|Δβ|`` per step.

    ``step`` needs ``curvature``, the diagonal curvature (see :mod:`metastep.torch`).
    """

    checks = {
        "meta_step_size": _checks.check_non_negative,
        "initial_step_size": _checks.check_positive,
        "granularity": check_granularity,
        "min_log_step_size": check_optional(_checks.check_finite),
        "max_log_step_size_change": check_optional(_checks.check_positive),
    }
    needs_curvature = True

    def __init__(self, params: Iterable[Any], meta_step_size: float = 0.01,
                 initial_step_size: float = 0.05, *, granularity: str = "weight",
                 min_log_step_size: float | None = None,
                 max_log_step_size_change: float | None = None):
        super().__init__(params, dict(
            meta_step_size=meta_step_size, initial_step_size=initial_step_size,
            granularity=granularity, min_log_step_size=min_log_step_size,
            max_log_step_size_change=max_log_step_size_change,
        ))

    def _update_group(self, group, params, curvature):
        for p in params:
            if "meta_trace" not in self.state[p]:
                self.state[p]["meta_trace"] = torch.zeros_like(p)
            self._init_block(group, p, "log_step_size", group["initial_step_size"], torch.log)
        grads = [p.grad for p in params]
        traces = [self.state[p]["meta_trace"] for p in params]
        # New tensors of a parameter's size cost a CPU page faults: this step makes two (g h and
        # α), the first reused for α c.
        products = torch._foreach_mul(grads, traces)
        changes = self._block_sums(group, products)
        log_step_sizes = [state["log_step_size"] for state in self._block_states(group, params)]
        bound, floor = group["max_log_step_size_change"], group["min_log_step_size"]
        if bound is None:  # β ← β − θ Σ g h in one pass
            torch._foreach_add_(log_step_sizes, changes, alpha=-group["meta_step_size"])
        else:
            torch._foreach_mul_(changes, -group["meta_step_size"])
            torch._foreach_clamp_min_(changes, -bound)
            torch._foreach_clamp_max_(changes, bound)
            torch._foreach_add_(log_step_sizes, changes)
        if floor is not None:
            torch._foreach_clamp_min_(log_step_sizes, floor)
        step_sizes = torch._foreach_exp(
            [self._block_value(group, p, "log_step_size") for p in params]
        )
        torch._foreach_addcmul_(params, step_sizes, grads, value=-1.0)
        # h ← h [1 − α c]⁺ − α g, as h − h min(α c, 1) − α g (two passes fewer)
        rates = products
        torch._foreach_copy_(rates, step_sizes)
        torch._foreach_mul_(rates, curvature)
        torch._foreach_clamp_max_(rates, 1.0)
        torch._foreach_addcmul_(traces, traces, rates, value=-1.0)
        torch._foreach_addcmul_(traces, step_sizes, grads, value=-1.0)

    def _step_sizes_of(self, group, p):
        log_step_size = self._block_value(group, p, "log_step_size")
        if log_step_size is None:
            return torch.full_like(p, group["initial_step_size"]).log_().exp_()
        return log_step_size.exp()


__all__ = ["IDBD"]
