"""RMSprop in the form of Degris et al. (2024): a step size normalized by the gradients' scale.

References: T. Tieleman and G. Hinton, "Lecture 6.5 — RMSprop", COURSERA: Neural Networks for
Machine Learning, 2012; written as in T. Degris, K. Javed, A. Sharifnassab, Y. Liu and R. S. Sutton,
"Step-size optimization for continual learning", arXiv:2401.17401, 2024. Rule as written in
../shared/spec/methods.md (RMSprop and Adam). With gradient ``g``, base step size ``η``, the rate
``γ_g`` of the average of ``g²`` (``γ = 1 − decay``), ``ε`` inside the square root and ``v``
starting at 0::

    v ← v + γ_g (g² − v)
    α = η / sqrt(v + ε)      # the per-weight step size this method reports
    w ← w − α g

There is no bias correction: the first updates divide by a ``v`` that is still small, so they are
large (``α ≈ η / sqrt(γ_g g² + ε)`` at the first step). Before any update the reported step size
is the one the rule gives for ``v = 0``, ``η / sqrt(ε)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metastep.methods import _common


class RMSpropState(NamedTuple):
    normalizer: Any  # v, the average of g², like the parameters
    step_size: Any  # α = η / sqrt(v + ε) used by the last update, per weight


def rmsprop(
    step_size: float = 1e-3,
    normalizer_rate: float = 0.01,
    eps: float = 1e-8,
) -> optax.GradientTransformationExtraArgs:
    """RMSprop (Degris et al. 2024 form): ``α = η / sqrt(v + ε)``, ``w ← w − α g``.

    Defaults: ``η = 1e-3`` is the usual default base step size of RMSprop (Keras, TensorFlow);
    ``γ_g = 0.01`` is a decay of 0.99, PyTorch's default (Hinton's lecture and optax use 0.9,
    which is ``γ_g = 0.1``); ``ε = 1e-8`` as in Adam, here inside the square root.

    Args:
      step_size: ``η`` ≥ 0, the base step size.
      normalizer_rate: ``γ_g`` in [0, 1], the rate of the average of ``g²``.
      eps: ``ε`` ≥ 0, added to ``v`` inside the square root.

    Extra arguments of ``update`` (``curvature``, ...) are accepted and ignored.
    """
    _common.check_non_negative("step_size", step_size)
    _common.check_unit_interval("normalizer_rate", normalizer_rate)
    _common.check_non_negative("eps", eps)

    def normalized_step_size(v):
        return (step_size / jnp.sqrt(v + eps)).astype(v.dtype)

    def init_fn(params):
        normalizer = jax.tree.map(jnp.zeros_like, params)
        return RMSpropState(normalizer, jax.tree.map(normalized_step_size, normalizer))

    def update_fn(grads, state, params=None, **extra_args):
        del params, extra_args
        normalizer = jax.tree.map(
            lambda v, g: (v + normalizer_rate * (g * g - v)).astype(g.dtype),
            state.normalizer, grads,
        )
        step_size_used = jax.tree.map(normalized_step_size, normalizer)
        updates = jax.tree.map(lambda a, g: -a * g, step_size_used, grads)
        return updates, RMSpropState(normalizer, step_size_used)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["RMSpropState", "rmsprop"]
