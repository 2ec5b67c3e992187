"""RMSprop in the form of Degris et al. (2024): a step size normalized by the gradients' scale.

References: T. Tieleman and G. Hinton, "Lecture 6.5 — RMSprop", COURSERA: Neural Networks for
Machine Learning, 2012; written as in T. Degris, K. Javed, A. Sharifnassab, Y. Liu and R. S. Sutton,
"Step-size optimization for continual learning", arXiv:2401.17401, 2024. Rule as written in
docs/methods.md#rmsprop. With gradient ``g``, base step size ``η``, the rate
``γ_g`` of the average of ``g²`` (``γ = 1 − decay``), ``ε`` inside the square root and ``v``
starting at 0::

    v ← v + γ_g (g² − v)
    α = η / sqrt(v + ε)      # the per-weight step size this method reports
    w ← w − α g

There is no bias correction: the first updates divide by a ``v`` that is still small, so they are
large (``α ≈ η / sqrt(γ_g g² + ε)`` at the first step). Before any update the reported step size
is the one the rule gives for ``v = 0``, ``η / sqrt(ε)``.

``η`` is read at every update (``optax.inject_hyperparams`` can change it) and may be a schedule
of the number of updates made. ``ε`` must be > 0: with ``ε = 0`` a weight whose gradients have all
been 0 would get ``0 / 0``.
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
class RMSpropState(NamedTuple):
    count: jax.Array  # t, the number of updates made (int32), for a schedule of η
    normalizer: Any  # v, the average of g², like the parameters
    step_sizes: Any  # α = η / sqrt(v + ε) used by the last update, per weight


@recorded
def rmsprop(
    learning_rate: optax.ScalarOrSchedule = 1e-3,
    normalizer_rate: float = 0.01,
    eps: float = 1e-8,
) -> optax.GradientTransformationExtraArgs:
    """RMSprop (Degris et al. 2024 form): ``α = η / sqrt(v + ε)``, ``w ← w − α g``.

    Defaults: ``η = 1e-3`` is the usual default base step size of RMSprop (Keras, TensorFlow);
    ``γ_g = 0.01`` is a decay of 0.99, PyTorch's default (Hinton's lecture and optax use 0.9,
    which is ``γ_g = 0.1``); ``ε = 1e-8`` as in Adam, here inside the square root.

    Args:
      learning_rate: ``η`` ≥ 0, the base step size: a number, or a schedule, a function of the
        number of updates made (the first update uses ``learning_rate(0)``).
      normalizer_rate: ``γ_g`` in [0, 1], the rate of the average of ``g²``.
      eps: ``ε`` > 0, added to ``v`` inside the square root.

    Extra arguments of ``update`` (``curvature``, ...) are accepted and ignored.
    """
    _common.check_step_size_schedule("learning_rate", learning_rate)
    _checks.check_unit_interval("normalizer_rate", normalizer_rate)
    _common.check_eps(eps)

    def normalized_step_sizes(count, normalizer):
        eta = _common.value_at(learning_rate, count)
        return jax.tree.map(lambda v: (eta / jnp.sqrt(v + eps)).astype(v.dtype), normalizer)

    def init_fn(params):
        count = _common.new_count()
        return RMSpropState(
            count, _common.zeros_like(params),
            normalized_step_sizes(count, _common.zeros_like(params)),
        )

    def update_fn(grads, state, params=None, **extra_args):
        del params, extra_args
        normalizer = jax.tree.map(
            lambda v, g: (v + normalizer_rate * (g * g - v)).astype(_common.dtype_of(g)),
            state.normalizer, grads,
        )
        step_size_used = normalized_step_sizes(state.count, normalizer)
        updates = jax.tree.map(lambda a, g: -a * g, step_size_used, grads)
        new_state = RMSpropState(_common.increment(state.count), normalizer, step_size_used)
        return updates, _common.cast_like(new_state, state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["RMSpropState", "rmsprop"]
