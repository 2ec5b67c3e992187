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

import math
from collections.abc import Iterable
from typing import Any, NamedTuple

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


class _AdamTerms(NamedTuple):
    """Per tensor, from optax's bias corrections ``c₁ = 1 − b1^t`` and ``c₂ = 1 − b2^t``: the
    terms of ``D = sqrt(v + eps_root c₂) + eps sqrt(c₂)``, which is ``(sqrt(v̂ + eps_root) + eps)
    sqrt(c₂)``, and the factor ``sqrt(c₂) / c₁`` that makes ``factor · m / D`` optax's direction
    ``m̂ / (sqrt(v̂ + eps_root) + eps)``. Python floats, or one-element tensors."""

    floors: list[Any]  # eps_root c₂
    eps_terms: list[Any]  # eps sqrt(c₂)
    factors: list[Any]  # sqrt(c₂) / c₁


def _adam_terms(b1: float, b2: float, eps: float, eps_root: float, counts: list[Any],
                dtype: torch.dtype) -> _AdamTerms:
    """The terms for step counts given as ints (computed in float64, as numbers), or as tensors
    (computed in at least float32, as optax does, in ``dtype``: one computation for all)."""
    if all(isinstance(count, int) for count in counts):
        momentum_corrections = [1.0 - b1 ** count for count in counts]
        normalizer_corrections = [1.0 - b2 ** count for count in counts]
        roots = [math.sqrt(c) for c in normalizer_corrections]
        return _AdamTerms([eps_root * c for c in normalizer_corrections],
                          [eps * root for root in roots],
                          [root / c for root, c in zip(roots, momentum_corrections)])
    precise = torch.promote_types(dtype, torch.float32)
    steps = torch.stack(counts).to(precise)
    decays = torch.tensor((b1, b2), dtype=precise, device=steps.device)
    momentum_corrections, normalizer_corrections = 1.0 - torch.pow(decays[:, None], steps)
    roots = normalizer_corrections.sqrt()
    terms = torch.stack([normalizer_corrections * eps_root, roots * eps,
                         roots / momentum_corrections]).to(dtype)
    values = terms.view(-1).unbind()  # one call
    return _AdamTerms(*(list(values[start:start + len(counts)])
                        for start in range(0, len(values), len(counts))))


def _adam_denominators(gradients, momenta, normalizers, terms: _AdamTerms, b1, b2):
    """optax's ``scale_by_adam`` over lists, as a quotient: the moments updated in place, and
    ``D`` of :class:`_AdamTerms` returned (one new tensor per parameter), so that
    ``d = factor · m / D``."""
    torch._foreach_lerp_(momenta, gradients, 1.0 - b1)  # b1 m + (1 − b1) g in one pass
    torch._foreach_mul_(normalizers, b2)
    torch._foreach_addcmul_(normalizers, gradients, gradients, value=1.0 - b2)
    denominators = torch._foreach_add(normalizers, terms.floors)
    torch._foreach_sqrt_(denominators)
    torch._foreach_add_(denominators, terms.eps_terms)
    return denominators


def _add_quotients(targets, numerators, denominators, scales) -> None:
    """``x ← x + s · m / D`` for each list ``x`` of ``targets``, with ``s`` per tensor: numbers
    (no pass of their own) or tensors (``D ← D / s`` first)."""
    if not all(isinstance(scale, float) for scale in scales):
        torch._foreach_div_(denominators, scales)
        scales = [1.0] * len(scales)
    for target in targets:
        torch._foreach_addcdiv_(target, numerators, denominators, scales)


def _negated_products(step_sizes, factors, shared: bool) -> list[Any]:
    """``−α · factor`` per tensor: numbers where the factors are numbers and ``α`` is shared
    (read once), tensors otherwise."""
    if not all(isinstance(factor, float) for factor in factors):
        products = torch._foreach_mul(step_sizes, factors)
        torch._foreach_neg_(products)
        return products
    if not shared:
        return torch._foreach_mul(step_sizes, [-factor for factor in factors])
    return [-alpha * factor for alpha, factor in zip(torch.stack(step_sizes).tolist(), factors)]


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
        counts = [state["step"] for state in states]
        torch._foreach_add_(counts, 1)
        # On a CPU (not compiled), numbers read from the state once save passes and small
        # operations; elsewhere everything stays in tensors (no wait for the device).
        on_host = params[0].device.type == "cpu" and not torch.compiler.is_compiling()
        if on_host:
            counts = torch.stack(counts).tolist()
        grads = [p.grad for p in params]
        traces = [state["meta_trace"] for state in states]
        block_states = self._block_states(group, params)
        self._meta_step(group, block_states, self._block_products(group, traces, grads),
                        counts[:len(block_states)])
        step_sizes = self._step_sizes(group, params, block_states)
        directions, quotient = self._base_directions(group, params, counts)
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
        if quotient is None:
            negated = torch._foreach_neg(step_sizes)  # −α (a shared α: one element)
            torch._foreach_addcmul_(params, directions, negated)
            torch._foreach_addcmul_(traces, directions, negated)
        else:  # α d = α factor m / D (Adam)
            denominators, factors = quotient
            scales = _negated_products(step_sizes, factors, group["granularity"] != "weight")
            _add_quotients((params, traces), directions, denominators, scales)

    def _step_sizes(self, group: dict[str, Any], params: list[torch.Tensor],
                    block_states: list[dict[str, Any]]) -> list[torch.Tensor]:
        """``α`` per parameter (a shared one as a 0-d view): one ``exp`` per block."""
        blocks = torch._foreach_exp([state["log_step_size"] for state in block_states])
        granularity = group["granularity"]
        if granularity == "weight":
            return blocks
        shared = [block.view(()) for block in blocks]
        return shared * len(params) if granularity == "scalar" else shared

    def _base_directions(self, group: dict[str, Any], params: list[torch.Tensor],
                         counts: list[Any]) -> tuple[Any, Any]:
        """``d`` at learning rate 1 for each parameter and None, the base's state updated in
        place; for an Adam base, ``m`` and ``(D, factor)`` of :class:`_AdamTerms`."""
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
        b1, b2 = options["b1"], options["b2"]
        terms = _adam_terms(b1, b2, options["eps"], options["eps_root"], counts,
                            params[0].dtype)
        return momenta, (_adam_denominators(grads, momenta, normalizers, terms, b1, b2),
                         terms.factors)

    def _meta_step(self, group: dict[str, Any], block_states: list[dict[str, Any]],
                   meta_gradients: list[torch.Tensor], counts: list[Any]) -> None:
        """``β ← β + meta update of z``, for every block."""
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
            options = _ADAM_OPTIONS
            terms = _adam_terms(options["b1"], options["b2"], options["eps"],
                                options["eps_root"], counts, log_step_sizes[0].dtype)
            denominators = _adam_denominators(
                meta_gradients, momenta, [state["meta_normalizer"] for state in block_states],
                terms, options["b1"], options["b2"],
            )
            if all(isinstance(factor, float) for factor in terms.factors):
                scales = [-rate * factor for factor in terms.factors]
            else:
                scales = torch._foreach_mul(terms.factors, -rate)
            _add_quotients((log_step_sizes,), momenta, denominators, scales)

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
