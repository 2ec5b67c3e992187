"""Hypergradient descent (Baydin et al. 2018): SGD-HD and Adam-HD.

Reference: A. G. Baydin, R. Cornish, D. Martínez Rubio, M. Schmidt and F. Wood, "Online learning
rate adaptation with hypergradient descent", ICLR 2018. Rule as written in
docs/methods.md#hypergradient and docs/methods.md#adam_hypergradient. The step size ``α`` moves
along the hypergradient ``∂f(w_t)/∂α = −g_t · u_{t−1}``, where ``u_{t−1}`` is the previous update
direction and ``β_hd`` the meta step size.

SGD-HD (``u = g``, ``g_{t−1}`` = 0 before the second update)::

    α ← α + β_hd (g_t · g_{t−1})
    w ← w − α g_t

Adam-HD (``u`` = the previous Adam direction ``d_{t−1} = m̂_{t−1} / sqrt(v̂_{t−1} + ε)``, 0 before
the second update; Adam in the form of Degris et al. 2024, as :func:`metastep.methods.adam.adam`)::

    α ← α + β_hd (g_t · d_{t−1})
    m, v, m̂, v̂ ← Adam's averages with g_t
    w ← w − α m̂ / sqrt(v̂ + ε)

Adam-HD reports the per-weight step size ``α / sqrt(v̂ + ε)`` (α times Adam's normalizer), the
factor that multiplies ``m̂`` in its update; the learned ``α`` itself is in ``learned_step_size``.

Granularity: the paper learns one α for all weights (``"scalar"``: the dot product sums over every
leaf); ``"tensor"`` learns one per parameter array (the sum runs over that array) and ``"weight"``
one per weight (the elementwise product, the paper's per-parameter variant).

Negative step sizes: as in the paper, α is not clipped, so with a large ``β_hd`` it can cross
zero and the update then climbs the loss (the hypergradient pushes α back up when it does). The
optional ``min_step_size`` puts a floor under α, a safeguard that is not in the paper.

Hyperparameters: ``initial_step_size`` only sets α at ``init`` (α is then learned; changing it
later, e.g. through ``optax.inject_hyperparams``, does nothing); the others are read at each
update. Adam-HD's ``ε`` must be > 0 (``ε = 0`` gives ``0 / 0`` for a weight whose gradients have
all been 0).
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
from metastep.methods.adam import _adam_moments


@method_state
class HypergradientState(NamedTuple):
    learned_step_size: Any  # α, block-shaped (see granularity)
    previous_gradient: Any  # g_{t−1}, like the parameters
    step_sizes: Any  # α used by the last update, per weight


@method_state
class AdamHypergradientState(NamedTuple):
    learned_step_size: Any  # α, block-shaped (see granularity)
    previous_direction: Any  # d_{t−1} = m̂ / sqrt(v̂ + ε), like the parameters
    count: jax.Array  # t, the number of updates made (int32)
    momentum: Any  # m, like the parameters
    normalizer: Any  # v, the average of g², like the parameters
    step_sizes: Any  # α / sqrt(v̂ + ε) used by the last update, per weight


def _check_common(meta_step_size, initial_step_size, granularity, min_step_size) -> None:
    _checks.check_non_negative("meta_step_size", meta_step_size)
    _checks.check_non_negative("initial_step_size", initial_step_size)
    _common.check_granularity(granularity)
    if min_step_size is not None:
        _checks.check_non_negative("min_step_size", min_step_size)


def _hypergradient_step(
    learned, grads, previous_direction, meta_step_size, granularity, min_step_size
):
    """``α ← α + β_hd Σ_block g_t · u_{t−1}``, floored at ``min_step_size`` when one is given."""
    product = jax.tree.map(jnp.multiply, grads, previous_direction)
    meta_gradient = _common.sum_to_blocks(product, granularity)

    def new_step_size(alpha, z):
        new_alpha = alpha + meta_step_size * z
        if min_step_size is not None:
            new_alpha = jnp.maximum(new_alpha, min_step_size)
        return new_alpha.astype(alpha.dtype)

    return jax.tree.map(new_step_size, learned, meta_gradient)


def _init_hypergradient(params, initial_step_size, granularity):
    """α₀ in blocks, and per weight (two buffers)."""
    learned = _common.init_blocks(params, initial_step_size, granularity)
    return learned, _common.broadcast_blocks(learned, params, granularity)


@recorded
def hypergradient(
    meta_step_size: float = 1e-3,
    initial_step_size: float = 1e-3,
    granularity: str = "scalar",
    *,
    min_step_size: float | None = None,
) -> optax.GradientTransformationExtraArgs:
    """SGD-HD (Baydin et al. 2018): ``α ← α + β_hd (g_t · g_{t−1})``, then ``w ← w − α g_t``.

    Defaults are the paper's: ``α₀ = 1e-3``, ``β_hd = 1e-3``, one α for all weights.

    Args:
      meta_step_size: ``β_hd`` ≥ 0. Not dimensionless: its best value moves with the scale of
        the gradients (and, for block granularities, with the number of weights summed).
      initial_step_size: ``α₀`` ≥ 0.
      granularity: ``"scalar"`` (the paper), ``"tensor"`` or ``"weight"``.
      min_step_size: optional floor on α (not in the paper; None keeps the paper's rule).

    Extra arguments of ``update`` (``curvature``, ...) are accepted and ignored.
    """
    _check_common(meta_step_size, initial_step_size, granularity, min_step_size)

    def init_fn(params):
        learned, step_size = _init_hypergradient(params, initial_step_size, granularity)
        return HypergradientState(learned, _common.zeros_like(params), step_size)

    def update_fn(grads, state, params=None, **extra_args):
        del params, extra_args
        learned = _hypergradient_step(
            state.learned_step_size, grads, state.previous_gradient, meta_step_size, granularity,
            min_step_size,
        )
        step_size = _common.broadcast_blocks(learned, grads, granularity)
        updates = jax.tree.map(lambda a, g: -a * g, step_size, grads)
        return updates, _common.cast_like(HypergradientState(learned, grads, step_size), state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@recorded
def adam_hypergradient(
    meta_step_size: float = 1e-7,
    initial_step_size: float = 1e-3,
    momentum_rate: float = 0.1,
    normalizer_rate: float = 0.001,
    eps: float = 1e-8,
    granularity: str = "scalar",
    *,
    min_step_size: float | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Adam-HD (Baydin et al. 2018): ``α ← α + β_hd (g_t · d_{t−1})``, ``w ← w − α d_t``.

    ``d = m̂ / sqrt(v̂ + ε)`` is the Adam direction (Degris et al. 2024 form). Defaults are the
    paper's: ``α₀ = 1e-3``, ``β_hd = 1e-7``, decays 0.9 and 0.999 (``γ_m = 0.1``,
    ``γ_g = 0.001``), ``ε = 1e-8`` (the paper's sits outside the square root).

    Args:
      meta_step_size: ``β_hd`` ≥ 0.
      initial_step_size: ``α₀`` ≥ 0, the base step size that Adam's normalizer divides.
      momentum_rate: ``γ_m`` in [0, 1], the rate of the average of ``g``.
      normalizer_rate: ``γ_g`` in [0, 1], the rate of the average of ``g²``.
      eps: ``ε`` > 0, added to ``v̂`` inside the square root.
      granularity: ``"scalar"`` (the paper), ``"tensor"`` or ``"weight"``.
      min_step_size: optional floor on α (not in the paper; None keeps the paper's rule).

    The reported ``step_size`` is ``α / sqrt(v̂ + ε)`` per weight. Extra arguments of ``update``
    (``curvature``, ...) are accepted and ignored.
    """
    _check_common(meta_step_size, initial_step_size, granularity, min_step_size)
    _checks.check_unit_interval("momentum_rate", momentum_rate)
    _checks.check_unit_interval("normalizer_rate", normalizer_rate)
    _common.check_eps(eps)

    def init_fn(params):
        learned, per_weight = _init_hypergradient(params, initial_step_size, granularity)
        # The rule's step size for v̂ = 0, as Adam reports before any update.
        step_size = jax.tree.map(lambda a: (a / jnp.sqrt(eps)).astype(a.dtype), per_weight)
        zeros = _common.zeros_like
        return AdamHypergradientState(
            learned, zeros(params), _common.new_count(), zeros(params), zeros(params), step_size
        )

    def update_fn(grads, state, params=None, **extra_args):
        del params, extra_args
        learned = _hypergradient_step(
            state.learned_step_size, grads, state.previous_direction, meta_step_size, granularity,
            min_step_size,
        )
        count = _common.increment(state.count)
        momentum, normalizer, corrected_momentum, scale = _adam_moments(
            grads, state.momentum, state.normalizer, count, momentum_rate, normalizer_rate, eps
        )
        direction = jax.tree.map(jnp.divide, corrected_momentum, scale)
        step_size = jax.tree.map(
            jnp.divide, _common.broadcast_blocks(learned, grads, granularity), scale
        )
        updates = jax.tree.map(lambda a, m: -a * m, step_size, corrected_momentum)
        new_state = AdamHypergradientState(
            learned, direction, count, momentum, normalizer, step_size
        )
        return updates, _common.cast_like(new_state, state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["AdamHypergradientState", "HypergradientState", "adam_hypergradient", "hypergradient"]
