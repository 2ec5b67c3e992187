"""Adam in the form of Degris et al. (2024): momentum and a normalized per-weight step size.

References: D. P. Kingma and J. Ba, "Adam: a method for stochastic optimization", ICLR 2015; written
as in T. Degris, K. Javed, A. Sharifnassab, Y. Liu and R. S. Sutton, "Step-size optimization for
continual learning", arXiv:2401.17401, 2024. Rule as written in docs/methods.md#adam.
With gradient ``g``, base step size ``η``, rates ``γ_m``, ``γ_g`` (``γ = 1 − decay``),
``ε`` inside the square root, ``m`` and ``v`` starting at 0 and ``t`` counting updates from 1::

    m ← m + γ_m (g − m);         v ← v + γ_g (g² − v)
    m̂ = m / (1 − (1 − γ_m)^t);   v̂ = v / (1 − (1 − γ_g)^t)
    α = η / sqrt(v̂ + ε)          # the per-weight step size this method reports
    w ← w − α m̂

A rate of 0 leaves its average at 0 for good; its bias correction (0/0) is then skipped. Before any
update the reported step size is the one the rule gives for ``v̂ = 0``, ``η / sqrt(ε)``.

``η`` is read at every update (``optax.inject_hyperparams`` can change it) and may be a schedule
of the number of updates made (the update ``t`` uses ``η(t − 1)``, optax's convention). ``ε`` must
be > 0: with ``ε = 0`` a weight whose gradients have all been 0 would get ``0 / 0``.
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


@method_state
class AdamState(NamedTuple):
    count: jax.Array  # t, the number of updates made (int32)
    momentum: Any  # m, like the parameters
    normalizer: Any  # v, the average of g², like the parameters
    step_sizes: Any  # α = η / sqrt(v̂ + ε) used by the last update, per weight


def _bias_correction(rate: Any, count: jax.Array, dtype: Any) -> jax.Array:
    """``1 − (1 − γ)^t``, as ``−expm1(t log1p(−γ))``: ``1 − γ`` would round off a small γ."""
    rate = jnp.asarray(rate, dtype)
    correction = -jnp.expm1(count.astype(dtype) * jnp.log1p(-rate))
    # γ = 0 (or t = 0) gives 0: divide by 1 instead of making 0/0.
    return jnp.where(correction > 0, correction, jnp.ones_like(correction))


def _adam_moments(grads, momentum, normalizer, count, momentum_rate, normalizer_rate, eps):
    """Adam's averages after one more gradient (``count`` is the new ``t``).

    Returns ``(m, v, m̂, sqrt(v̂ + ε))``, each like the parameters. Shared with Adam-HD.
    """
    momentum = jax.tree.map(
        lambda m, g: (m + momentum_rate * (g - m)).astype(_common.dtype_of(g)), momentum, grads
    )
    normalizer = jax.tree.map(
        lambda v, g: (v + normalizer_rate * (g * g - v)).astype(_common.dtype_of(g)),
        normalizer, grads,
    )
    corrected_momentum = jax.tree.map(
        lambda m: m / _bias_correction(momentum_rate, count, m.dtype), momentum
    )

    def root(v):
        corrected = v / _bias_correction(normalizer_rate, count, v.dtype)
        return jnp.sqrt(corrected + eps).astype(v.dtype)

    return momentum, normalizer, corrected_momentum, jax.tree.map(root, normalizer)


@recorded
def adam(
    learning_rate: optax.ScalarOrSchedule = 1e-3,
    momentum_rate: float = 0.1,
    normalizer_rate: float = 0.001,
    eps: float = 1e-8,
) -> optax.GradientTransformationExtraArgs:
    """Adam (Degris et al. 2024 form): ``α = η / sqrt(v̂ + ε)``, ``w ← w − α m̂``.

    Defaults are Kingma and Ba's: ``η = 1e-3``, decays 0.9 and 0.999 (``γ_m = 0.1``,
    ``γ_g = 0.001``) and ``ε = 1e-8`` (theirs sits outside the square root).

    Args:
      learning_rate: ``η`` ≥ 0, the base step size: a number, or a schedule, a function of the
        number of updates made (the first update uses ``learning_rate(0)``).
      momentum_rate: ``γ_m`` in [0, 1], the rate of the average of ``g``.
      normalizer_rate: ``γ_g`` in [0, 1], the rate of the average of ``g²``.
      eps: ``ε`` > 0, added to ``v̂`` inside the square root.

    Extra arguments of ``update`` (``curvature``, ...) are accepted and ignored.
    """
    _common.check_step_size_schedule("learning_rate", learning_rate)
    _checks.check_unit_interval("momentum_rate", momentum_rate)
    _checks.check_unit_interval("normalizer_rate", normalizer_rate)
    _common.check_eps(eps)

    def init_fn(params):
        count = _common.new_count()
        eta = _common.value_at(learning_rate, count)
        initial = jax.tree.map(
            lambda v: (eta / jnp.sqrt(v + eps)).astype(v.dtype), _common.zeros_like(params)
        )
        return AdamState(count, _common.zeros_like(params), _common.zeros_like(params), initial)

    def update_fn(grads, state, params=None, **extra_args):
        del params, extra_args
        eta = _common.value_at(learning_rate, state.count)
        count = _common.increment(state.count)
        momentum, normalizer, corrected_momentum, scale = _adam_moments(
            grads, state.momentum, state.normalizer, count, momentum_rate, normalizer_rate, eps
        )
        step_size_used = jax.tree.map(lambda s: (eta / s).astype(s.dtype), scale)
        updates = jax.tree.map(lambda a, m: -a * m, step_size_used, corrected_momentum)
        new_state = AdamState(count, momentum, normalizer, step_size_used)
        return updates, _common.cast_like(new_state, state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["AdamState", "adam"]
