"""LMS / SGD: a fixed step size, the baseline every learned step size is measured against.

Reference: B. Widrow and M. E. Hoff, "Adaptive switching circuits", IRE WESCON Convention Record,
1960 (the LMS rule). Rule as written in docs/methods.md#sgd. With gradient ``g``
and a step size ``α`` (one number, one per weight, or a schedule of the update count ``t``)::

    w ← w − α_t g            # = w + α δ x for a linear unit

``α`` is read at every update, so ``optax.inject_hyperparams(ms.sgd)`` can change it between
updates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metastep import _checks
from metastep._structure import recorded
from metastep.methods import _common
from metastep.methods._step_sizes import method_state


@method_state
class SGDState(NamedTuple):
    count: jax.Array  # t, the number of updates made (int32), for a schedule
    step_sizes: Any  # α used by the last update (before any, the first update's), per weight


def _is_scalar(value: Any) -> bool:
    return jax.tree_util.treedef_is_leaf(jax.tree.structure(value)) and np.ndim(value) == 0


def _check_learning_rate_leaves(learning_rate: Any) -> None:
    """Every concrete leaf of a per-weight step-size pytree is finite and ≥ 0."""
    for leaf in jax.tree.leaves(learning_rate):
        if isinstance(leaf, jax.core.Tracer):
            continue
        try:
            values = np.asarray(leaf, dtype=float)
        except (TypeError, ValueError) as error:
            raise ValueError(f"`learning_rate` must hold real numbers, got {leaf!r}") from error
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(f"`learning_rate` must be finite and >= 0 everywhere, got {leaf!r}")


@recorded
def sgd(learning_rate: Any = 0.01) -> optax.GradientTransformationExtraArgs:
    """LMS / SGD with a given step size: ``w ← w − α g``.

    Args:
      learning_rate: ``α`` ≥ 0: a number shared by all weights; a pytree with the structure of the
        parameters whose leaves broadcast to the parameter arrays (one α per weight or per array);
        or a schedule, a function of the number of updates made (optax's ``ScalarOrSchedule``:
        the first update uses ``learning_rate(0)``) returning one number.

    Extra arguments of ``update`` (``curvature``, ...) are accepted and ignored.
    """
    scalar = not _common.is_schedule(learning_rate) and _is_scalar(learning_rate)
    if scalar:
        _checks.check_non_negative("learning_rate", learning_rate)
    elif not _common.is_schedule(learning_rate):
        _check_learning_rate_leaves(learning_rate)

    def per_weight(alpha, p):
        shape, dtype = jnp.shape(p), _common.dtype_of(p)
        try:
            # A copy: the state must not share a buffer with the caller's array (donation).
            return jnp.array(jnp.broadcast_to(jnp.asarray(alpha, dtype), shape))
        except ValueError as error:
            raise ValueError(
                f"`learning_rate` leaf of shape {jnp.shape(alpha)} does not broadcast to the "
                f"parameter shape {shape}"
            ) from error

    def step_sizes_at(count, like):
        alpha = _common.value_at(learning_rate, count)
        if _common.is_schedule(learning_rate) or scalar:
            return jax.tree.map(lambda p: per_weight(alpha, p), like)
        _common.check_same_structure("learning_rate", alpha, like)
        return jax.tree.map(per_weight, alpha, like)

    def init_fn(params):
        count = _common.new_count()
        return SGDState(count, step_sizes_at(count, params))

    def update_fn(grads, state, params=None, **extra_args):
        del params, extra_args
        alpha = _common.cast_like(step_sizes_at(state.count, grads), state.step_sizes)
        updates = jax.tree.map(lambda a, g: -a * g, alpha, grads)
        return updates, SGDState(_common.increment(state.count), alpha)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["SGDState", "sgd"]
