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
from metastep.torch._optimizer import MetaStepOptimizer, check_granularity, check_optional

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


def _bias_correction(decay: float, count: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """optax's ``1 − decay^t`` (computed in at least float32, as optax does)."""
    precise = torch.promote_types(dtype, torch.float32)
    return (1.0 - torch.pow(torch.tensor(decay, dtype=precise, device=count.device),
                            count.to(precise))).to(dtype)


def _adam_direction(gradient, momentum, normalizer, count, b1, b2, eps, eps_root):
    """optax's ``scale_by_adam``: the moments updated in place, the direction returned."""
    momentum.mul_(b1).add_((1.0 - b1) * gradient)
    normalizer.mul_(b2).add_((1.0 - b2) * (gradient * gradient))
    corrected_momentum = momentum / _bias_correction(b1, count, gradient.dtype)
    corrected_normalizer = normalizer / _bias_correction(b2, count, gradient.dtype)
    return corrected_momentum / ((corrected_normalizer + eps_root).sqrt() + eps)


def _lion_direction(gradient, momentum, b1, b2):
    """optax's ``scale_by_lion``: the momentum updated in place, the direction returned."""
    direction = torch.sign((1.0 - b1) * gradient + b1 * momentum)
    momentum.mul_(b2).add_((1.0 - b2) * gradient)
    return direction


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
            self._init_block(group, p, "log_step_size", group["initial_step_size"], torch.log)
            self._init_meta_state(group, p)
            state["step"].add_(1)
        traces = [self.state[p]["meta_trace"] for p in params]
        for block_state, meta_gradient in self._blocks(
            group, params, [h * p.grad for p, h in zip(params, traces)]
        ):
            self._meta_step(group, block_state, meta_gradient)
        weight_decay, discount = _weight_decay(group), group["discount"]
        for p, h in zip(params, traces):
            direction = self._base_direction(group, p)
            if weight_decay != 0.0:
                direction = direction + weight_decay * p
            step_size = self._step_sizes_of(group, p)
            change = -step_size * direction
            if weight_decay != 0.0:
                h.mul_(1.0 - weight_decay * step_size)
            p.add_(change)
            h.mul_(discount).add_(change)

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

    def _base_direction(self, group: dict[str, Any], p: torch.Tensor) -> torch.Tensor:
        """``d`` at learning rate 1, the base's state updated in place."""
        state, base, options, g = self.state[p], group["base"], _base_options(group), p.grad
        if base == "sgd":
            return g
        if base == "sgd_momentum":
            momentum = state["base_momentum"].mul_(options["decay"]).add_(g)
            return g + options["decay"] * momentum if options["nesterov"] else momentum.clone()
        if base == "rmsprop":
            decay, normalizer = options["decay"], state["base_normalizer"]
            normalizer.mul_(decay).add_((1.0 - decay) * (g * g))
            return torch.rsqrt(normalizer + options["eps"]) * g
        if base == "lion":
            return _lion_direction(g, state["base_momentum"], options["b1"], options["b2"])
        return _adam_direction(g, state["base_momentum"], state["base_normalizer"], state["step"],
                               options["b1"], options["b2"], options["eps"], options["eps_root"])

    def _meta_step(self, group: dict[str, Any], block_state: dict[str, Any],
                   meta_gradient: torch.Tensor) -> None:
        """``β ← β + meta update of z``."""
        log_step_size, meta = block_state["log_step_size"], group["meta"]
        if meta == "sgd":
            direction = meta_gradient
        elif meta == "lion":
            direction = _lion_direction(meta_gradient, block_state["meta_momentum"], 0.9, 0.99)
            direction = direction + LION_META_WEIGHT_DECAY * log_step_size
        else:
            direction = _adam_direction(
                meta_gradient, block_state["meta_momentum"], block_state["meta_normalizer"],
                block_state["step"], **_ADAM_OPTIONS,
            )
        log_step_size.add_(-group["meta_step_size"] * direction)

    def _step_sizes_of(self, group, p):
        log_step_size = self._block_value(group, p, "log_step_size")
        if log_step_size is None:
            return torch.full_like(p, group["initial_step_size"]).log_().exp_()
        return log_step_size.exp()


__all__ = ["BASE_OPTIONS", "MetaOptimize"]
