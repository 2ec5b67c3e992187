"""SMD (Schraudolph 1999) as a ``torch.optim.Optimizer``: the rule of :func:`metastep.smd`.

Reference: N. N. Schraudolph, "Local gain adaptation in stochastic gradient descent", ICANN 1999
(docs/methods.md#smd). With gradient ``g``, gains ``p`` (init ``α₀``), trace ``v`` (init 0), meta
step size ``μ``, decay ``λ`` and gain floor factor ``ϱ``, in this order::

    p ← p · max(ϱ, 1 − μ g v)     # the OLD v (summed over a block for "tensor"/"scalar")
    w ← w − p g
    v ← λ v − p (g + λ C v)       # C v with the OLD v

``C v`` comes from ``step(curvature_vector_product=...)``, a function from a list ``v`` (one
tensor per parameter of ``param_groups``, in order) to ``C v`` in the same form, e.g.
:meth:`metastep.torch.Curvature.vector_product`. It multiplies the traces of every group at once
(the whole ``C``). Without it, the diagonal ``c ⊙ v`` from ``curvature`` (IDBD's approximation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from metastep import _checks
from metastep.torch._optimizer import MetaStepOptimizer, check_granularity


def _check_min_gain_factor(name: str, value: Any) -> None:
    _checks.check_unit_interval(name, value)
    _checks.check_positive(name, value)


class SMD(MetaStepOptimizer):
    """SMD: per-weight gains learned through a curvature-vector product.

    Args:
      params: parameters or param groups (each group may set any hyperparameter below).
      meta_step_size: ``μ`` ≥ 0.
      initial_step_size: ``α₀`` > 0, the initial gains (set at a parameter's first step).
      decay: ``λ`` in [0, 1], how far back ``v`` remembers the effect of past gains.
      min_gain_factor: ``ϱ`` in (0, 1], the most a gain can shrink in one step.
      granularity: ``"weight"`` (one gain per weight), ``"tensor"`` (one per parameter tensor)
        or ``"scalar"`` (one per param group).

    ``step`` needs ``curvature_vector_product`` (``v -> C v``) or, for the diagonal
    approximation, ``curvature``.
    """

    checks = {
        "meta_step_size": _checks.check_non_negative,
        "initial_step_size": _checks.check_positive,
        "decay": _checks.check_unit_interval,
        "min_gain_factor": _check_min_gain_factor,
        "granularity": check_granularity,
    }

    def __init__(self, params: Iterable[Any], meta_step_size: float = 0.01,
                 initial_step_size: float = 0.05, decay: float = 1.0,
                 min_gain_factor: float = 0.5, *, granularity: str = "weight"):
        super().__init__(params, dict(
            meta_step_size=meta_step_size, initial_step_size=initial_step_size, decay=decay,
            min_gain_factor=min_gain_factor, granularity=granularity,
        ))

    def _update(self, curvature: list[list[Any]] | None,
                curvature_vector_product: Callable | None) -> None:
        stepped = [self._stepped(group) for group in self.param_groups]
        for group, params in zip(self.param_groups, stepped):
            for p in params:
                if "meta_trace" not in self.state[p]:
                    self.state[p]["meta_trace"] = torch.zeros_like(
                        p
                    )
                self._init_block(group, p, "gain", group["initial_step_size"])
        products = self._curvature_times_traces(curvature, curvature_vector_product)
        for group, params, group_products in zip(self.param_groups, stepped, products):
            if params:
                by_param = dict(zip(map(id, group["params"]), group_products))
                self._update_group(group, params, [by_param[id(p)] for p in params])

    def _curvature_times_traces(self, curvature: list[list[Any]] | None,
                                curvature_vector_product: Callable | None) -> list[list[Any]]:
        """``C v`` per group and parameter: exact through the product, else ``c ⊙ v``."""
        traces = [
            self.state[p]["meta_trace"] if p in self.state else torch.zeros_like(p)
            for p in self._parameters()
        ]
        if curvature_vector_product is not None:
            return self._per_group("curvature_vector_product(v)", curvature_vector_product(traces))
        if curvature is not None:
            trace_groups = self._per_group("meta_trace", traces)
            return [[None if c is None else c * v for c, v in zip(cs, vs)]
                    for cs, vs in zip(curvature, trace_groups)]
        raise ValueError(
            "SMD needs `curvature_vector_product` in step(...), a function v -> C v over lists "
            "of tensors, one per parameter in param_groups order (mst.Curvature's "
            "vector_product), or, for the diagonal approximation C v ≈ c * v, `curvature`"
        )

    def _update_group(self, group, params, curvature_times_traces):
        grads = [p.grad for p in params]
        traces = [self.state[p]["meta_trace"] for p in params]
        # p ← p · max(ϱ, 1 − μ g v)  (in place on new tensors: each costs a CPU an allocation)
        factors = self._block_products(group, grads, traces)
        torch._foreach_mul_(factors, -group["meta_step_size"])
        torch._foreach_add_(factors, 1.0)
        torch._foreach_clamp_min_(factors, group["min_gain_factor"])
        torch._foreach_mul_([state["gain"] for state in self._block_states(group, params)],
                            factors)
        gains = [self._block_value(group, p, "gain") for p in params]
        torch._foreach_addcmul_(params, gains, grads, value=-1.0)
        # v ← λ v − p (g + λ C v)  (a product by λ = 1 changes nothing: skipped)
        decay = group["decay"]
        if decay == 1.0:
            inner = torch._foreach_add(curvature_times_traces, grads)
        else:
            inner = torch._foreach_mul(curvature_times_traces, decay)
            torch._foreach_add_(inner, grads)
            torch._foreach_mul_(traces, decay)
        torch._foreach_addcmul_(traces, gains, inner, value=-1.0)

    def _step_sizes_of(self, group, p):
        gain = self._block_value(group, p, "gain")
        if gain is None:
            return torch.full_like(p, group["initial_step_size"])
        return gain


__all__ = ["SMD"]
