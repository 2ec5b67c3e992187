"""MetaOptimize, Hessian-free (Sharifnassab, Salehkaleybar, Sutton 2025).

Reference: A. Sharifnassab, S. Salehkaleybar and R. S. Sutton, "MetaOptimize: a framework for
optimizing step sizes and other meta-parameters", ICML 2025. Rule as written in
docs/methods.md#metaoptimize. A base optimizer runs with learning rate
``α = exp(β)`` (one ``β`` for all weights, per parameter array, or per weight); with trace ``h``
(init 0), discount ``γ``, weight decay ``κ`` and meta step size ``η``, per step::

    z = Σ_{block} h · g          # the OLD h, the current gradient
    β ← meta_update(β, z)        # SGD: β ← β − η z; or Adam / Lion on z
    Δw = −α (d + κ w)            # d: the base direction at learning rate 1
    w ← w + Δw
    h ← γ (1 − κ α) h + Δw

Why this is the derivative. The base optimizers here are linear in their learning rate: optax's
``adam(lr)`` is ``scale_by_adam()`` followed by ``scale(−lr)``, so their update is ``Δw = −α (d +
κ w)`` with a direction ``d`` that does not depend on ``α``. Then ``∂Δw/∂β = Δw``, and with
``h ≈ ∂w/∂β``, ``∂w_{t+1}/∂β = (1 − κ α) h + Δw + (terms through d's dependence on past w)``. The
Hessian-free variant drops the last terms (those would need the Hessian, the approximation of
the paper's Hessian-free MetaOptimize) and ``γ`` discounts old contributions. ``z = g · h`` is
then the derivative of the loss in ``β``.

Special cases: ``γ = 0`` leaves ``h = Δw_{t−1}``, so ``z = g_t · Δw_{t−1}``: hypergradient
descent (Baydin et al. 2018) on ``ln α``. SGD base, SGD meta and ``γ = 1, κ = 0`` is IDBD with the
curvature term dropped (``ms.idbd`` with zero ``curvature``). A meta step size of 0 is the base
optimizer with the fixed learning rate ``α₀``.

Base optimizers (the direction ``d``, from optax; options through ``base_options``):

* ``"sgd"``: ``d = g``;
* ``"sgd_momentum"``: ``optax.trace(decay=0.9)``, ``d = m ← 0.9 m + g`` (``optax.sgd(lr, 0.9)``);
* ``"rmsprop"``: ``optax.scale_by_rms(decay=0.9, eps=1e-8)`` (``optax.rmsprop``);
* ``"adam"``: ``optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=1e-30)`` (``optax.adam``,
  whose ε sits outside the square root, unlike :func:`metastep.methods.adam.adam`; see
  ``eps_root`` below);
* ``"adamw"``: the same direction with weight decay ``κ`` (default 1e-4, ``optax.adamw``'s);
* ``"lion"``: ``optax.scale_by_lion(b1=0.9, b2=0.99)`` (``optax.lion``);
* or any optax ``GradientTransformation`` returning the descent direction at learning rate 1.

Meta optimizers: ``"sgd"`` (``optax.sgd(η)``), ``"adam"`` (``optax.adam(η, eps_root=1e-30)``, the
default), ``"lion"`` (``optax.lion(η)``), or any optax ``GradientTransformation`` (its learning
rate is its own; ``meta_step_size`` is then unused). ``η`` may be a schedule, as optax allows.

``eps_root``: Adam divides by ``sqrt(v̂)``, and ``v̂`` is 0 exactly at the first update of ``β``
(``h`` starts at 0, so ``z = 0``) and wherever a base gradient has been 0 so far. The derivative
of ``sqrt`` at 0 is infinite, so ``jax.grad`` through the optimizer (differentiating a run with
respect to the data, the initial parameters or a hyperparameter) would be NaN. A tiny ``eps_root``
inside the square root keeps the derivative finite and leaves the values unchanged wherever
``v̂`` is above about 1e-23 (float16 rounds 1e-30 to 0: there the derivative stays NaN).

Hyperparameters: ``initial_step_size`` only sets ``β`` at ``init`` (changing it later, e.g.
through ``optax.inject_hyperparams``, does nothing); the others are read at each update.

The reported ``step_size`` is ``α`` per weight, the learning rate given to the base optimizer (an
Adam base then divides it further by its normalizer, per weight).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metastep import _checks
from metastep._structure import recorded
from metastep.methods import _common
from metastep.methods._step_sizes import method_state

# Inside Adam's square root: a finite derivative at v̂ = 0 (module docstring).
EPS_ROOT = 1e-30
BASES = ("sgd", "sgd_momentum", "rmsprop", "adam", "adamw", "lion")
METAS = ("sgd", "adam", "lion")
_BASE_FACTORIES = {
    "sgd": (optax.identity, {}),
    "sgd_momentum": (optax.trace, {"decay": 0.9}),
    "rmsprop": (optax.scale_by_rms, {"decay": 0.9, "eps": 1e-8}),
    "adam": (optax.scale_by_adam, {"b1": 0.9, "b2": 0.999, "eps": 1e-8, "eps_root": EPS_ROOT}),
    "adamw": (optax.scale_by_adam, {"b1": 0.9, "b2": 0.999, "eps": 1e-8, "eps_root": EPS_ROOT}),
    "lion": (optax.scale_by_lion, {"b1": 0.9, "b2": 0.99}),
}
_META_FACTORIES = {
    "sgd": optax.sgd,
    "adam": lambda learning_rate: optax.adam(learning_rate, eps_root=EPS_ROOT),
    "lion": optax.lion,
}
ADAMW_WEIGHT_DECAY = 1e-4


@method_state
class MetaOptimizeState(NamedTuple):
    log_step_size: Any  # β, block-shaped (see granularity)
    meta_trace: Any  # h, like the parameters
    base_state: Any  # the base optimizer's state
    meta_state: Any  # the meta optimizer's state (over β)
    step_sizes: Any  # α = exp(β) used by the last update, per weight


def _is_transformation(value: Any) -> bool:
    return hasattr(value, "init") and hasattr(value, "update")


def _base_transformation(base: Any, base_options: dict | None) -> optax.GradientTransformation:
    if _is_transformation(base):
        if base_options:
            raise ValueError("`base_options` applies to a named base, not to a transformation")
        return base
    if base not in _BASE_FACTORIES:
        raise ValueError(
            f"`base` must be one of {BASES} or an optax GradientTransformation, got {base!r}"
        )
    factory, defaults = _BASE_FACTORIES[base]
    return factory(**{**defaults, **(base_options or {})})


def _meta_transformation(meta: Any, meta_step_size: Any) -> optax.GradientTransformation:
    if _is_transformation(meta):
        return meta
    if meta not in _META_FACTORIES:
        raise ValueError(
            f"`meta` must be one of {METAS} or an optax GradientTransformation, got {meta!r}"
        )
    return _META_FACTORIES[meta](meta_step_size)


@recorded
def metaoptimize(
    base: str | optax.GradientTransformation = "adam",
    meta: str | optax.GradientTransformation = "adam",
    meta_step_size: float = 1e-3,
    initial_step_size: float = 1e-3,
    *,
    granularity: str = "scalar",
    discount: float = 1.0,
    weight_decay: float | None = None,
    base_options: dict[str, Any] | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Hessian-free MetaOptimize: the base optimizer's learning rate ``α = exp(β)`` learned online.

    Args:
      base: the base optimizer, ``"sgd"``, ``"sgd_momentum"``, ``"rmsprop"``, ``"adam"``,
        ``"adamw"``, ``"lion"``, or an optax transformation giving the direction ``d`` at learning
        rate 1 (e.g. ``optax.scale_by_adam()``).
      meta: the update of ``β`` from ``z``: ``"adam"``, ``"lion"``, ``"sgd"`` or an optax
        transformation.
      meta_step_size: ``η`` ≥ 0, the meta optimizer's learning rate, or a schedule of the number
        of updates made (optax's ``ScalarOrSchedule``).
      initial_step_size: ``α₀`` > 0, the base learning rate at the start (used at ``init``
        only).
      granularity: ``"scalar"`` (one ``α`` for all weights), ``"tensor"`` (one per parameter
        array) or ``"weight"``; ``z`` sums ``h · g`` over each block.
      discount: ``γ`` in [0, 1], the trace's discount (≈ 1; 0 gives hypergradient descent).
      weight_decay: ``κ`` ≥ 0, decoupled weight decay ``−α κ w`` (default: 1e-4 for ``"adamw"``,
        0 otherwise). Non-zero, it needs ``params`` in ``update``.
      base_options: keyword arguments of the named base's optax factory (module docstring), e.g.
        ``{"b1": 0.95}`` for ``"adam"`` or ``{"decay": 0.99}`` for ``"sgd_momentum"``.

    Extra arguments of ``update`` (``curvature``, ...) are accepted and ignored.
    """
    _common.check_step_size_schedule("meta_step_size", meta_step_size)
    _checks.check_positive("initial_step_size", initial_step_size)
    _common.check_granularity(granularity)
    _checks.check_unit_interval("discount", discount)
    if weight_decay is None:
        weight_decay = ADAMW_WEIGHT_DECAY if base == "adamw" else 0.0
    _checks.check_non_negative("weight_decay", weight_decay)
    base_transformation = _base_transformation(base, base_options)
    meta_transformation = _meta_transformation(meta, meta_step_size)
    # A concrete κ = 0 skips the decay (and the need for params); a traced κ always applies it.
    decays = not (_checks.is_concrete(weight_decay) and float(weight_decay) == 0.0)

    def init_fn(params):
        log_step_size = jax.tree.map(
            lambda b: b + jnp.log(jnp.asarray(initial_step_size, b.dtype)),
            _common.init_blocks(params, 0.0, granularity),
        )
        step_size = _common.broadcast_blocks(
            jax.tree.map(jnp.exp, log_step_size), params, granularity
        )
        return MetaOptimizeState(
            log_step_size,
            _common.zeros_like(params),
            base_transformation.init(params),
            meta_transformation.init(log_step_size),
            step_size,
        )

    def update_fn(grads, state, params=None, **extra_args):
        del extra_args
        if decays and params is None:
            raise ValueError("metaoptimize with weight decay needs `params` in update(...)")
        meta_gradient = _common.sum_to_blocks(
            jax.tree.map(jnp.multiply, state.meta_trace, grads), granularity
        )
        meta_updates, meta_state = meta_transformation.update(
            meta_gradient, state.meta_state, state.log_step_size
        )
        log_step_size = jax.tree.map(
            lambda b, u: (b + u).astype(b.dtype), state.log_step_size, meta_updates
        )
        step_size = _common.broadcast_blocks(
            jax.tree.map(jnp.exp, log_step_size), grads, granularity
        )
        direction, base_state = base_transformation.update(grads, state.base_state, params)
        if decays:
            direction = jax.tree.map(lambda d, w: d + weight_decay * w, direction, params)
        updates = jax.tree.map(
            lambda a, d, g: (-a * d).astype(_common.dtype_of(g)), step_size, direction, grads
        )
        meta_trace = state.meta_trace
        if decays:
            meta_trace = jax.tree.map(
                lambda h, a: (1.0 - weight_decay * a) * h, meta_trace, step_size
            )
        meta_trace = jax.tree.map(lambda h, u: discount * h + u, meta_trace, updates)
        new_state = MetaOptimizeState(log_step_size, meta_trace, base_state, meta_state, step_size)
        return updates, _common.cast_like(new_state, state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["BASES", "METAS", "MetaOptimizeState", "metaoptimize"]
