"""What every optimizer of :mod:`metastep.torch` shares: the ``torch.optim.Optimizer`` contract,
the side signals of ``step``, step sizes shared by a block of weights, argument checks.

Conventions (the JAX methods' of docs/methods.md#notation-and-conventions, in PyTorch's shape):

* Hyperparameters live in the param groups (``optimizer.param_groups[i]["meta_step_size"]``), are
  checked when a group is added and again at the next step after one is replaced (they may be
  changed between steps), and are read at every step; initial step sizes only set the state of a
  parameter at its first step.
* ``step(closure=None, *, curvature=None, curvature_vector_product=None)``. ``curvature`` is a
  sequence of tensors, one per parameter of ``param_groups`` in order (all of them, those without
  a gradient too; ``None`` is allowed there), each the shape of its parameter: the diagonal
  curvature ``c``. ``curvature_vector_product`` maps such a list ``v`` to ``C v``. A closure may
  return the loss or, as :class:`metastep.torch.Curvature` does, ``(loss, curvature)``.
* A step updates the parameters that have a gradient; the state of a parameter is made at its
  first step. ``granularity="tensor"`` shares one step size per parameter tensor,
  ``"scalar"`` one per param group (the JAX methods' one for all weights, when there is one
  group). A shared value is a one-element tensor, in the state of the parameter (for
  ``"scalar"``: the group's first one), and a group with ``"scalar"`` granularity steps all its
  parameters or none.
* The state keeps the dtype and device of its parameter; step counts are int64 tensors under the
  key ``"step"``, which ``load_state_dict`` leaves as they are.
* Updates are multi-tensor: each elementwise operation runs on the lists of a group's stepped
  parameters and states at once (``torch._foreach_*``, as ``foreach=True`` in ``torch.optim``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from metastep.methods import _common

Check = Callable[[str, Any], None]


def check_granularity(name: str, value: Any) -> None:
    del name
    _common.check_granularity(value)


def check_optional(check: Check) -> Check:
    """``check``, or nothing for ``None``."""

    def optional(name: str, value: Any) -> None:
        if value is not None:
            check(name, value)

    return optional


class MetaStepOptimizer(torch.optim.Optimizer):
    """Base class: subclasses set ``checks`` (hyperparameter name → check), ``needs_curvature``,
    and implement ``_update_group`` and ``_step_sizes_of``."""

    checks: dict[str, Check] = {}
    needs_curvature = False

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        self._check_group(group)
        for index, p in enumerate(group["params"]):
            if not p.is_floating_point():
                raise ValueError(f"{type(self).__name__}: parameter {index} of a group must be a "
                                 f"real floating-point tensor, got {p.dtype}")

    def _check_group(self, group: dict[str, Any]) -> None:
        for name, check in self.checks.items():
            check(name, group[name])

    def _check_replaced_hyperparameters(self) -> None:
        """Each group's hyperparameters checked again, unless every value is the very object
        checked last time (a check is a function of the value alone: nothing to redo)."""
        checked = self.__dict__.setdefault("_checked_hyperparameters", {})
        for group in self.param_groups:
            values = [group[name] for name in self.checks]
            previous = checked.get(id(group))
            if previous is None or any(old is not new for old, new in zip(previous, values)):
                self._check_group(group)
                checked[id(group)] = values

    def _parameters(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None, *,
             curvature: Sequence[torch.Tensor | None] | None = None,
             curvature_vector_product: Callable | None = None) -> Any:
        """One update of every parameter that has a gradient.

        Args:
          closure: re-evaluates the model and returns the loss, or ``(loss, curvature)`` (e.g.
            ``lambda: curv(x, y)`` after ``zero_grad``); run with gradients enabled.
          curvature: the diagonal curvature, one tensor per parameter (module docstring).
          curvature_vector_product: ``v -> C v`` over such lists (SMD).

        Returns:
          The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
            if isinstance(loss, tuple):
                loss, closure_curvature = loss
                curvature = closure_curvature if curvature is None else curvature
        for index, p in enumerate(self._parameters()):
            if p.grad is not None and p.grad.is_sparse:
                raise ValueError(f"{type(self).__name__} does not support sparse gradients "
                                 f"(parameter {index}); use a dense gradient")
        self._check_replaced_hyperparameters()
        if self.needs_curvature and curvature is None:
            raise ValueError(
                f"{type(self).__name__} needs `curvature` in step(curvature=...): a list of "
                "tensors, one per parameter in param_groups order, the diagonal curvature of the "
                "loss (x**2 for a linear unit; mst.Curvature computes it for networks)"
            )
        per_group = None if curvature is None else self._per_group("curvature", curvature)
        self._update(per_group, curvature_vector_product)
        return loss

    def _per_group(self, name: str, values: Sequence[torch.Tensor | None]) -> list[list[Any]]:
        """One value per parameter, checked against it and cast to its dtype, split by group."""
        params = self._parameters()
        values = list(values)
        if len(values) != len(params):
            raise ValueError(f"`{name}` must hold one tensor per parameter ({len(params)}, in "
                             f"param_groups order), got {len(values)}")
        checked = []
        for index, (value, p) in enumerate(zip(values, params)):
            if value is None:
                if p.grad is not None:
                    raise ValueError(f"`{name}[{index}]` is None for a parameter with a gradient")
                checked.append(None)
                continue
            if not isinstance(value, torch.Tensor) or value.shape != p.shape:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value)
                raise ValueError(f"`{name}[{index}]` must be a tensor of the parameter's shape "
                                 f"{tuple(p.shape)}, got {shape}")
            checked.append(value.to(dtype=p.dtype, device=p.device))
        split, start = [], 0
        for group in self.param_groups:
            split.append(checked[start:start + len(group["params"])])
            start += len(group["params"])
        return split

    def _update(self, curvature: list[list[Any]] | None, curvature_vector_product: Any) -> None:
        del curvature_vector_product
        for index, group in enumerate(self.param_groups):
            stepped = self._stepped(group)
            if not stepped:
                continue
            group_curvature = None
            if curvature is not None:
                by_param = dict(zip(map(id, group["params"]), curvature[index]))
                group_curvature = [by_param[id(p)] for p in stepped]
            self._update_group(group, stepped, group_curvature)

    def _stepped(self, group: dict[str, Any]) -> list[torch.Tensor]:
        """The group's parameters with a gradient (all or none for a shared scalar)."""
        stepped = [p for p in group["params"] if p.grad is not None]
        if group.get("granularity") == "scalar" and 0 < len(stepped) < len(group["params"]):
            raise ValueError(
                f"{type(self).__name__}: granularity='scalar' shares one step size over a "
                "param group, and this group has parameters with and without a gradient: put "
                "the parameters that do not learn in a group of their own"
            )
        return stepped

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      curvature: list[torch.Tensor] | None) -> None:
        raise NotImplementedError

    def _step_sizes_of(self, group: dict[str, Any], p: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # Blocks: a step size per weight, per parameter tensor, or one per group.

    def _block_owner(self, group: dict[str, Any], p: torch.Tensor) -> torch.Tensor:
        """The parameter whose state holds the block values of ``p``."""
        return group["params"][0] if group.get("granularity") == "scalar" else p

    def _block_state(self, group: dict[str, Any], p: torch.Tensor) -> dict[str, Any]:
        """The state that holds the block values of ``p`` (empty before its first step; reading
        it makes no state)."""
        owner = self._block_owner(group, p)
        return self.state[owner] if owner in self.state else {}

    def _init_block(self, group: dict[str, Any], p: torch.Tensor, key: str, value: float,
                    transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """``transform(value)`` in the block shape of ``p`` (its dtype, computed in it), unless
        the block already has it."""
        block_state = self.state[self._block_owner(group, p)]
        if key in block_state:
            return
        if group.get("granularity", "weight") == "weight":
            block = torch.full_like(p, value)
        else:
            # One element, not 0-d: torch.compile (2.13) drops in-place updates of 0-d tensors.
            block = torch.full((1,), value, dtype=p.dtype, device=p.device)
        block_state[key] = block if transform is None else transform(block)

    def _block_value(self, group: dict[str, Any], p: torch.Tensor, key: str) -> Any:
        """The block tensor of ``p`` under ``key``, shaped to broadcast with ``p`` (a 0-d view of
        a shared value), or None before the block's first step."""
        block = self._block_state(group, p).get(key)
        if block is None or group.get("granularity", "weight") == "weight":
            return block
        return block.view(())

    def _block_states(self, group: dict[str, Any],
                      params: list[torch.Tensor]) -> list[dict[str, Any]]:
        """The states that hold the blocks of ``params``, once per block, in parameter order."""
        if group.get("granularity", "weight") == "scalar":
            return [self.state[self._block_owner(group, params[0])]]
        return [self.state[p] for p in params]

    def _block_products(self, group: dict[str, Any], first: list[torch.Tensor],
                        second: list[torch.Tensor]) -> list[torch.Tensor]:
        """``first ⊙ second`` summed over each block (in the order of ``_block_states``): new
        tensors per weight; inner products per tensor or group (one pass, and no new tensor of a
        parameter's size)."""
        granularity = group.get("granularity", "weight")
        if granularity == "weight":
            return torch._foreach_mul(first, second)
        dots = [torch.dot(a.reshape(-1), b.reshape(-1)) for a, b in zip(first, second)]
        return dots if granularity == "tensor" else [torch.stack(dots).sum()]

    def _block_sums(self, group: dict[str, Any],
                    per_weight: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per-weight meta-gradients summed over each block (in the order of
        ``_block_states``)."""
        granularity = group.get("granularity", "weight")
        if granularity == "weight":
            return per_weight
        sums = [value.sum() for value in per_weight]
        if granularity == "tensor":
            return sums
        return [torch.stack(sums).sum()]


# Dtypes in which ``x ** -0.5`` rounds as ``rsqrt(x)`` does (checked bit for bit; in bfloat16
# and float16 the two round differently).
_POW_RSQRT_DTYPES = (torch.float32, torch.float64)


def foreach_rsqrt_(tensors: list[torch.Tensor]) -> None:
    """``x ← 1 / sqrt(x)`` in place over a list: ``torch.rsqrt``'s values, computed as
    ``x ** -0.5`` where the two are bit for bit the same, which a CPU computes twice as fast
    (torch 2.13, 282,160 float32 weights: 35 against 66 us)."""
    if all(tensor.dtype in _POW_RSQRT_DTYPES for tensor in tensors):
        torch._foreach_pow_(tensors, -0.5)
    else:
        torch._foreach_rsqrt_(tensors)


def step_sizes(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The per-weight step sizes of the last step, one tensor per parameter of
    ``optimizer.param_groups`` in order (before any step, those the first step will use).

    Raises:
      ValueError: ``optimizer`` is not a :mod:`metastep.torch` optimizer.
    """
    if not isinstance(optimizer, MetaStepOptimizer):
        raise ValueError(f"`optimizer` must be a metastep.torch optimizer (IDBD, Autostep, ...), "
                         f"got {type(optimizer).__name__}")
    with torch.no_grad():
        return [optimizer._step_sizes_of(group, p).expand_as(p).clone()
                for group in optimizer.param_groups for p in group["params"]]
