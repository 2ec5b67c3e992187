"""MetaOptimize, Hessian-free (Sharifnassab et al. 2025) as a ``torch.optim.Optimizer``: the rule
of :func:`metastep.metaoptimize`.

Reference: A. Sharifnassab, S. Salehkaleybar and R. S. Sutton, "MetaOptimize: a framework for
optimizing step sizes and other meta-parameters", ICML 2025 (docs/methods.md#metaoptimize). A base
optimizer runs with learning rate ``α = exp(β)``; with trace ``h`` (init 0), discount ``γ``,
weight decay ``κ`` and meta step size ``η``, per step::

    z = Σ_{block} h · g          # the OLD h
    β ← meta_update(β, z)        # SGD: β ← β − η z; or Adam / Lion on z
    Δw = −α (d + κ w)            # d: the base direction at learning rate 1
    w ← w + Δw
    h ← γ (1 − κ α) h + Δw

The base directions and meta updates are optax's (those :func:`metastep.metaoptimize` uses), written
out here: ``"sgd"`` ``d = g``; ``"sgd_momentum"`` ``m ← g + decay m``, ``d = m`` (Nesterov:
``d = g + decay m``); ``"rmsprop"`` ``ν ← (1 − decay) g² + decay ν``, ``d = g / sqrt(ν + eps)``;
``"adam"``/``"adamw"`` ``d = m̂ / (sqrt(v̂ + eps_root) + eps)``; ``"lion"``
``d = sign((1 − b1) g + b1 m)``, ``m ← (1 − b2) g + b2 m``. Meta ``"sgd"`` ``Δβ = −η z``;
``"adam"`` Adam on ``z`` (``eps_root = 1e-30``); ``"lion"`` Lion on ``z`` with optax's weight
decay 1e-3 on ``β``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from metastep import _checks
from metastep.methods.metaoptimize import ADAMW_WEIGHT_DECAY, BASES, EPS_ROOT, METAS
from metastep.torch._optimizer import (
    MetaStepOptimizer,
    check_granularity,
    check_optional,
    foreach_rsqrt_,
)

_ADAM_OPTIONS = {"b1": 0.9, "b2": 0.999, "eps": 1e-8, "eps_root": EPS_ROOT}
# The options of each named base, with their defaults (optax's, as metastep.metaoptimize).
BASE_OPTIONS = {
    "sgd": {},
    "sgd_momentum": {"decay": 0.9, "nesterov": False},
    "rmsprop": {"decay": 0.9, "eps": 1e-8, "initial_scale": 0.0},
    "adam": _ADAM_OPTIONS,
    "adamw": _ADAM_OPTIONS,
    "lion": {"b1": 0.9, "b2": 0.99},
}
LION_META_WEIGHT_DECAY = 1e-3  # optax.lion's default, applied to β


def _check_base(name: str, value: Any) -> None:
    if value not in BASES:
        raise ValueError(f"`{name}` must be one of {BASES}, got {value!r} (metastep.torch takes "
                         "named bases only)")


def _check_meta(name: str, value: Any) -> None:
    if value not in METAS:
        raise ValueError(f"`{name}` must be one of {METAS}, got {value!r} (metastep.torch takes "
                         "named meta optimizers only)")


def _base_options(group: dict[str, Any]) -> dict[str, Any]:
    """The named base's options, the group's over the defaults."""
    defaults = BASE_OPTIONS[group["base"]]
    given = group["base_options"] or {}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"`base_options` of base {group['base']!r} takes {sorted(defaults)}, "
                         f"got {unknown}")
    return {**defaults, **given}


def _weight_decay(group: dict[str, Any]) -> float:
    """``κ``: the group's, or 1e-4 for ``"adamw"`` and 0 otherwise."""
    if group["weight_decay"] is not None:
        return group["weight_decay"]
    return ADAMW_WEIGHT_DECAY if group["base"] == "adamw" else 0.0


def _bias_corrections(decays: tuple[float, ...], counts: list[torch.Tensor],
                      dtype: torch.dtype) -> list[list[torch.Tensor]]:
    """optax's ``1 − decay^t`` for each decay and count (computed in at least float32, as optax
    does), in ``dtype``. One computation for all."""
    precise = torch.promote_types(dtype, torch.float32)
    steps = torch.stack(counts).to(precise)
    decays = torch.tensor(decays, dtype=precise, device=steps.device)
    values = (1.0 - torch.pow(decays[:, None], steps)).to(dtype).view(-1).unbind()  # one call
    return [list(values[start:start + len(counts)]) for start in range(0, len(values),
                                                                       len(counts))]


def _adam_denominators(gradients, momenta, normalizers, normalizer_corrections, scales, b1, b2,
                       eps, eps_root):
    """optax's ``scale_by_adam`` over lists, as a quotient: the moments updated in place, and
    ``D = (sqrt(v / c₂ + eps_root) + eps) k`` returned (one new tensor per parameter; ``c₁``,
    ``c₂``: the bias corrections of ``m`` and ``v``). Then ``m / D = (c₁ / k) d`` for optax's
    direction ``d = m̂ / (sqrt(v̂ + eps_root) + eps)``: ``k = c₁`` gives ``d``, ``k = c₁ / α`` gives
    ``α d`` (the correction of ``m`` and ``α`` in one pass over the weights)."""
    torch._foreach_lerp_(momenta, gradients, 1.0 - b1)  # b1 m + (1 − b1) g in one pass
    torch._foreach_mul_(normalizers, b2)
    torch._foreach_addcmul_(normalizers, gradients, gradients, value=1.0 - b2)
    denominators = torch._foreach_div(normalizers, normalizer_corrections)
    torch._foreach_add_(denominators, eps_root)
    torch._foreach_sqrt_(denominators)
    torch._foreach_add_(denominators, eps)
    torch._foreach_mul_(denominators, scales)
    return denominators


def _lion_directions(gradients, momenta, b1, b2):
    """optax's ``scale_by_lion`` over lists: the momenta updated in place, the directions
    returned."""
    mixed = torch._foreach_mul(momenta, b1)  # in the momenta's shape (a block's 0-d z broadcasts)
    torch._foreach_add_(mixed, gradients, alpha=1.0 - b1)
    torch._foreach_sign_(mixed)
    torch._foreach_mul_(momenta, b2)
    torch._foreach_add_(momenta, gradients, alpha=1.0 - b2)
    return mixed


class MetaOptimize(MetaStepOptimizer):
    """Hessian-free MetaOptimize: the base optimizer's learning rate ``α = exp(β)`` learned online.

    Args:
      params: parameters or param groups (each group may set any hyperparameter below).
      base: ``"sgd"``, ``"sgd_momentum"``, ``"rmsprop"``, ``"adam"``, ``"adamw"`` or ``"lion"``.
      meta: the update of ``β`` from ``z``: ``"adam"``, ``"lion"`` or ``"sgd"``.
      meta_step_size: ``η`` ≥ 0, the meta optimizer's learning rate.
      initial_step_size: ``α₀`` > 0 (sets ``β`` at a parameter's first step).
      granularity: ``"scalar"`` (one ``α`` per param group), ``"tensor"`` or ``"weight"``.
      discount: ``γ`` in [0, 1], the trace's discount.
      weight_decay: ``κ`` ≥ 0, decoupled weight decay (default 1e-4 for ``"adamw"``, else 0).
      base_options: options of the base (module docstring), e.g. ``{"b1": 0.95}`` for ``"adam"``.

    ``base`` and ``meta`` set the state at a parameter's first step. ``step`` takes no
    curvature (one passed is ignored).
    """

    checks = {
        "base": _check_base,
        "meta": _check_meta,
        "meta_step_size": _checks.check_non_negative,
        "initial_step_size": _checks.check_positive,
        "granularity": check_granularity,
        "discount": _checks.check_unit_interval,
        "weight_decay": check_optional(_checks.check_non_negative),
        "base_options": lambda name, value: None,
    }

    def __init__(self, params: Iterable[Any], base: str = "adam", meta: str = "adam",
                 meta_step_size: float = 1e-3, initial_step_size: float = 1e-3, *,
                 granularity: str = "scalar", discount: float = 1.0,
                 weight_decay: float | None = None, base_options: dict[str, Any] | None = None):
        super().__init__(params, dict(
            base=base, meta=meta, meta_step_size=meta_step_size,
            initial_step_size=initial_step_size, granularity=granularity, discount=discount,
            weight_decay=weight_decay, base_options=base_options,
        ))

    def _check_group(self, group):
        super()._check_group(group)
        _base_options(group)

    def _update_group(self, group, params, curvature):
        del curvature
        for p in params:
            state = self.state[p]
            if "step" not in state:
                state["step"] = torch.zeros((), dtype=torch.int64, device=p.device)
                state["meta_trace"] = torch.zeros_like(p)
                self._init_base_state(group, p)
                self._init_block(group, p, "log_step_size", group["initial_step_size"],
                                 torch.log)
                self._init_meta_state(group, p)
        states = [self.state[p] for p in params]
        torch._foreach_add_([state["step"] for state in states], 1)
        base_corrections, meta_corrections = self._corrections(group, states)
        grads = [p.grad for p in params]
        traces = [state["meta_trace"] for state in states]
        self._meta_step(group, params, self._block_products(group, traces, grads),
                        meta_corrections)
        step_sizes = torch._foreach_exp(
            [self._block_value(group, p, "log_step_size") for p in params]
        )
        directions, denominators = self._base_directions(group, params, step_sizes,
                                                         base_corrections)
        weight_decay, discount = _weight_decay(group), group["discount"]
        if weight_decay != 0.0:
            # h ← γ (1 − κ α) h − κ α w, then w ← (1 − κ α) w: the terms of Δw in κ
            decays = torch._foreach_mul(step_sizes, -weight_decay)  # −κ α
            factors = torch._foreach_add(decays, 1.0)
            if discount != 1.0:
                torch._foreach_mul_(factors, discount)
            torch._foreach_mul_(traces, factors)
            torch._foreach_addcmul_(traces, params, decays)
            torch._foreach_addcmul_(params, params, decays)
        elif discount != 1.0:  # a product by 1 changes nothing
            torch._foreach_mul_(traces, discount)
        # w ← w − α d;  h ← h − α d (the rest of Δw, not stored: one pass less)
        if denominators is None:
            negated = torch._foreach_neg(step_sizes)  # −α (a shared α: one element)
            torch._foreach_addcmul_(params, directions, negated)
            torch._foreach_addcmul_(traces, directions, negated)
        else:  # α d = m / D (Adam)
            torch._foreach_addcdiv_(params, directions, denominators, value=-1.0)
            torch._foreach_addcdiv_(traces, directions, denominators, value=-1.0)

    def _corrections(self, group: dict[str, Any], states: list[dict[str, Any]]) -> tuple[
            list[list[torch.Tensor]], list[list[torch.Tensor]]]:
        """The bias corrections of an Adam base (``c₁``, ``c₂`` per parameter) and of an Adam
        meta optimizer (per block), in one computation; empty lists for the others."""
        decays, base_rows = [], 0
        if group["base"] in ("adam", "adamw"):
            options = _base_options(group)
            decays, base_rows = [options["b1"], options["b2"]], 2
        if group["meta"] == "adam":
            decays += [_ADAM_OPTIONS["b1"], _ADAM_OPTIONS["b2"]]
        if not decays:
            return [], []
        rows = _bias_corrections(tuple(decays), [state["step"] for state in states],
                                 states[0]["meta_trace"].dtype)
        blocks = 1 if group["granularity"] == "scalar" else len(states)  # the owners' counts
        return rows[:base_rows], [row[:blocks] for row in rows[base_rows:]]

    def _base_directions(self, group: dict[str, Any], params: list[torch.Tensor],
                         step_sizes: list[torch.Tensor], corrections: list[list[torch.Tensor]]
                         ) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """``d`` at learning rate 1 for each parameter and None, the base's state updated in
        place; for an Adam base, ``m`` and ``D`` with ``m / D = α d``."""
        base, options, grads = group["base"], _base_options(group), [p.grad for p in params]
        if base == "sgd":
            return grads, None
        states = [self.state[p] for p in params]
        momenta = [state.get("base_momentum") for state in states]
        if base == "sgd_momentum":
            torch._foreach_mul_(momenta, options["decay"])
            torch._foreach_add_(momenta, grads)
            if options["nesterov"]:
                return torch._foreach_add(grads, momenta, alpha=options["decay"]), None
            return momenta, None
        if base == "lion":
            return _lion_directions(grads, momenta, options["b1"], options["b2"]), None
        normalizers = [state["base_normalizer"] for state in states]
        if base == "rmsprop":
            torch._foreach_mul_(normalizers, options["decay"])
            torch._foreach_addcmul_(normalizers, grads, grads, value=1.0 - options["decay"])
            directions = torch._foreach_add(normalizers, options["eps"])
            foreach_rsqrt_(directions)
            torch._foreach_mul_(directions, grads)
            return directions, None
        momentum_corrections, normalizer_corrections = corrections
        scales = torch._foreach_div(momentum_corrections, step_sizes)  # c₁ / α
        return momenta, _adam_denominators(grads, momenta, normalizers, normalizer_corrections,
                                           scales, options["b1"], options["b2"], options["eps"],
                                           options["eps_root"])

    def _meta_step(self, group: dict[str, Any], params: list[torch.Tensor],
                   meta_gradients: list[torch.Tensor],
                   corrections: list[list[torch.Tensor]]) -> None:
        """``β ← β + meta update of z``, for every block."""
        block_states = self._block_states(group, params)
        log_step_sizes = [state["log_step_size"] for state in block_states]
        meta, rate = group["meta"], group["meta_step_size"]
        if meta == "sgd":
            torch._foreach_add_(log_step_sizes, meta_gradients, alpha=-rate)
        elif meta == "lion":
            directions = _lion_directions(
                meta_gradients, [state["meta_momentum"] for state in block_states], 0.9, 0.99
            )
            torch._foreach_add_(directions, log_step_sizes, alpha=LION_META_WEIGHT_DECAY)
            torch._foreach_add_(log_step_sizes, directions, alpha=-rate)
        else:
            momenta = [state["meta_momentum"] for state in block_states]
            momentum_corrections, normalizer_corrections = corrections
            denominators = _adam_denominators(
                meta_gradients, momenta, [state["meta_normalizer"] for state in block_states],
                normalizer_corrections, momentum_corrections, **_ADAM_OPTIONS,
            )
            torch._foreach_addcdiv_(log_step_sizes, momenta, denominators, value=-rate)

    def _init_base_state(self, group: dict[str, Any], p: torch.Tensor) -> None:
        state, base = self.state[p], group["base"]
        if base in ("sgd_momentum", "adam", "adamw", "lion"):
            state["base_momentum"] = torch.zeros_like(p)
        if base == "rmsprop":
            state["base_normalizer"] = torch.full_like(
                p, _base_options(group)["initial_scale"]
            )
        if base in ("adam", "adamw"):
            state["base_normalizer"] = torch.zeros_like(p)

    def _init_meta_state(self, group: dict[str, Any], p: torch.Tensor) -> None:
        block_state = self._block_state(group, p)
        if group["meta"] in ("adam", "lion") and "meta_momentum" not in block_state:
            block_state["meta_momentum"] = torch.zeros_like(block_state["log_step_size"])
        if group["meta"] == "adam" and "meta_normalizer" not in block_state:
            block_state["meta_normalizer"] = torch.zeros_like(block_state["log_step_size"])

    def _step_sizes_of(self, group, p):
        log_step_size = self._block_value(group, p, "log_step_size")
        if log_step_size is None:
            return torch.full_like(p, group["initial_step_size"]).log_().exp_()
        return log_step_size.exp()


__all__ = ["BASE_OPTIONS", "MetaOptimize"]
