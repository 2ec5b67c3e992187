"""LMS / SGD: a fixed step size, the baseline every learned step size is measured against.

Reference: B. Widrow and M. E. Hoff, "Adaptive switching circuits", IRE WESCON Convention Record,
1960 (the LMS rule). Rule as written in ../shared/spec/methods.md (LMS / SGD). With gradient ``g``
and a fixed step size ``α`` (one number, or one per weight)::

    w ← w − α g              # = w + α δ x for a linear unit
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metastep.methods import _common


class SGDState(NamedTuple):
    step_size: Any  # α, per weight (constant)


def _is_scalar(value: Any) -> bool:
    return jax.tree_util.treedef_is_leaf(jax.tree.structure(value)) and np.ndim(value) == 0


def _check_step_size_leaves(step_size: Any) -> None:
    """Every concrete leaf of a per-weight step-size pytree is finite and ≥ 0."""
    for leaf in jax.tree.leaves(step_size):
        if isinstance(leaf, jax.core.Tracer):
            continue
        try:
            values = np.asarray(leaf, dtype=float)
        except (TypeError, ValueError) as error:
            raise ValueError(f"`step_size` must hold real numbers, got {leaf!r}") from error
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(f"`step_size` must be finite and >= 0 everywhere, got {leaf!r}")


def sgd(step_size: Any = 0.01) -> optax.GradientTransformationExtraArgs:
    """LMS / SGD with a fixed step size: ``w ← w − α g``.

    Args:
      step_size: ``α`` ≥ 0: a number shared by all weights, or a pytree with the structure of the
        parameters whose leaves broadcast to the parameter arrays (one α per weight or per array).

    Extra arguments of ``update`` (``curvature``, ...) are accepted and ignored.
    """
    scalar = _is_scalar(step_size)
    if scalar:
        _common.check_non_negative("step_size", step_size)
    else:
        _check_step_size_leaves(step_size)

    def init_fn(params):
        if scalar:
            return SGDState(jax.tree.map(lambda p: jnp.full(p.shape, step_size, p.dtype), params))
        _common.check_same_structure("step_size", step_size, params)

        def per_weight(alpha, p):
            alpha = jnp.asarray(alpha, p.dtype)
            try:
                return jnp.broadcast_to(alpha, p.shape)
            except ValueError as error:
                raise ValueError(
                    f"`step_size` leaf of shape {alpha.shape} does not broadcast to the parameter "
                    f"shape {p.shape}"
                ) from error

        return SGDState(jax.tree.map(per_weight, step_size, params))

    def update_fn(grads, state, params=None, **extra_args):
        del params, extra_args
        updates = jax.tree.map(lambda a, g: -a * g, state.step_size, grads)
        return updates, state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["SGDState", "sgd"]
