"""What every step-size method shares: method-specific checks, dtypes, granularity, schedules.

Conventions (see docs/methods.md#notation-and-conventions):

* A method is an ``optax.GradientTransformationExtraArgs``. ``update(grads, state, params=None,
    **extra_args)`` takes the gradient ``g`` of the loss and returns the update ``-α g`` (optax adds
    updates to parameters).
* Side signals arrive as extra keyword arguments, never packed into the gradient:
    ``curvature`` (a pytree like the parameters: the diagonal curvature ``c``; ``x²`` for a linear
    unit) and ``curvature_vector_product`` (``v -> C v`` over such pytrees, used by SMD; a
    :class:`~metastep.methods.CurvatureVectorProduct` keeps it jit- and mask-friendly). Both are
    cast to the gradients' dtype, and restricted to the gradients' leaves inside ``optax.masked``
    or ``optax.multi_transform`` (see :mod:`metastep.methods._signals`).
* Every method's state is a NamedTuple with a field ``step_sizes``: a pytree like the parameters
    holding the per-weight step size that the last update used (before any update, the one the
    first update will use). :func:`~metastep.methods.step_sizes` finds it in any nest of states
    (optax chains and wrappers, learner states). The fixed base step size of ``sgd``,
    ``rmsprop`` and ``adam`` is the hyperparameter ``learning_rate`` (optax's name), so that a
    hyperparameter and a state field never share a name: under ``optax.inject_hyperparams``,
    ``optax.tree.get(state, "learning_rate")`` finds the hyperparameter alone.
* Hyperparameters are read when ``update`` runs, so ``optax.inject_hyperparams`` can change them
    between updates. Initial step sizes are the exception: they only set the state at ``init``.
    Hyperparameters may be traced JAX values (a sweep ``vmap``s over them), so checks of their
    values run only on concrete numbers.
* The state keeps its dtypes: each new state leaf is cast to the dtype of the leaf it replaces, so
    ``lax.cond``, ``optax.apply_if_finite`` and ``optax.MultiSteps`` can select between old and new
    states, and float16/bfloat16 parameters keep float16/bfloat16 states.
* Every state field is a buffer of its own (no two fields share one array), so ``jax.jit(update,
    donate_argnums=1)`` can donate the state returned by an eager ``init``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metastep._checks import check_non_negative, check_positive, is_concrete

GRANULARITIES = ("weight", "tensor", "scalar")


EPS_REASON = (
    "ε = 0 divides 0 by 0 for a weight whose gradients have all been 0 (a feature that is always "
    "0), and the update is NaN"
)


def check_eps(eps: Any) -> None:
    """``ε`` inside a square root that may otherwise be 0."""
    check_positive("eps", eps, EPS_REASON)


def is_schedule(value: Any) -> bool:
    """A schedule, ``count -> value`` (optax's ``ScalarOrSchedule``), as opposed to a number."""
    return callable(value)


def check_step_size_schedule(name: str, value: Any) -> None:
    """A base step size ≥ 0: a number, or a schedule (its values are not checked)."""
    if not is_schedule(value):
        check_non_negative(name, value)


def value_at(value: Any, count: jax.Array) -> Any:
    """A number, or a schedule's value for the number of updates made so far (optax's convention:
    the first update uses ``schedule(0)``)."""
    return value(count) if is_schedule(value) else value


def increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the largest int32 instead of wrapping to negative."""
    return optax.safe_increment(count)


def new_count() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def check_granularity(granularity: str) -> None:
    if granularity not in GRANULARITIES:
        raise ValueError(f"`granularity` must be one of {GRANULARITIES}, got {granularity!r}")


def require_extra_arg(method: str, name: str, extra_args: dict, hint: str) -> Any:
    """Fetch a side signal the rule needs, or say clearly how to provide it."""
    if name not in extra_args or extra_args[name] is None:
        raise ValueError(
                f"{method} needs the extra argument `{name}` in update(...): {hint}"
        )
    return extra_args[name]


CURVATURE_HINT = (
        "pass curvature=<pytree like params>, the diagonal curvature of the loss "
        "(x**2 for a linear unit; ms.deep.extra_args computes it for networks)"
)


def check_same_structure(name: str, tree: Any, reference: Any) -> None:
    if jax.tree.structure(tree) != jax.tree.structure(reference):
        raise ValueError(
                f"`{name}` must have the structure of the gradients: got "
                f"{jax.tree.structure(tree)}, "
                f"expected {jax.tree.structure(reference)}"
        )


# ---------------------------------------------------------------------------------------------
# Leaves: arrays or Python numbers (optax accepts both), each state field a fresh buffer.


def dtype_of(leaf: Any) -> Any:
    """The dtype of a parameter or gradient leaf (a Python float: JAX's default float)."""
    return jnp.result_type(leaf)


def zeros_like(tree: Any) -> Any:
    """Zeros like every leaf, in new buffers (one call per state field: see the conventions)."""
    return jax.tree.map(lambda p: jnp.zeros(jnp.shape(p), dtype_of(p)), tree)


def full_like(tree: Any, value: Any) -> Any:
    """``value`` in the shape and dtype of every leaf, in new buffers."""
    return jax.tree.map(lambda p: jnp.full(jnp.shape(p), value, dtype_of(p)), tree)


def cast_like(tree: Any, reference: Any) -> Any:
    """Each leaf of ``tree`` in the dtype of the matching leaf of ``reference``."""
    return jax.tree.map(lambda t, r: jnp.asarray(t, dtype_of(r)), tree, reference)


# ---------------------------------------------------------------------------------------------
# Granularity: a learned step size per weight, per parameter array ("tensor"), or one in all.
# The meta-gradient of a step size shared by a block of weights is the sum of the per-weight
# meta-gradients over that block, so a block rule reduces its per-weight signal by summation.


def _scalar_dtype(tree: Any) -> Any:
    leaves = jax.tree.leaves(tree)
    return jnp.result_type(*leaves) if leaves else jnp.result_type(float)


def init_blocks(params: Any, value: Any, granularity: str) -> Any:
    """A block-shaped state filled with ``value`` (dtype of the parameters)."""
    check_granularity(granularity)
    if granularity == "weight":
        return full_like(params, value)
    if granularity == "tensor":
        return jax.tree.map(lambda p: jnp.asarray(value, dtype=dtype_of(p)), params)
    return jnp.asarray(value, dtype=_scalar_dtype(params))


def is_scalar(value: Any) -> bool:
    """A single number (Python, NumPy or a 0-d JAX array), as opposed to a per-weight pytree."""
    leaves = jax.tree.leaves(value)
    return len(leaves) == 1 and leaves[0] is value and jnp.ndim(value) == 0


def check_positive_step_sizes(name: str, value: Any) -> None:
    """A positive step size: one number, or a pytree of per-weight values (checked if concrete)."""
    if is_scalar(value):
        check_positive(name, value)
        return
    for leaf in jax.tree.leaves(value):
        if is_concrete(leaf):
            array = np.asarray(leaf, dtype=float)
            if not (np.all(np.isfinite(array)) and np.all(array > 0)):
                raise ValueError(f"`{name}` must hold finite values > 0")


def initial_blocks(name: str, value: Any, params: Any, granularity: str) -> Any:
    """Block-shaped initial values from one number, or per weight from a pytree like ``params``
    (each leaf broadcast to its parameter's shape; only with ``granularity="weight"``)."""
    if is_scalar(value):
        return init_blocks(params, value, granularity)
    if granularity != "weight":
        raise ValueError(f"a per-weight `{name}` needs granularity='weight', got {granularity!r}")
    if jax.tree.structure(value) != jax.tree.structure(params):
        raise ValueError(f"a per-weight `{name}` must have the structure of the parameters: "
                         f"got {jax.tree.structure(value)}, expected {jax.tree.structure(params)}")

    def broadcast(leaf, param):
        try:
            # A copy: the state must not share a buffer with the caller's array (donation).
            return jnp.array(jnp.broadcast_to(jnp.asarray(leaf, dtype_of(param)), jnp.shape(param)))
        except ValueError as error:
            raise ValueError(
                f"`{name}` of shape {jnp.shape(leaf)} does not broadcast to a parameter of shape "
                f"{jnp.shape(param)}"
            ) from error

    return jax.tree.map(broadcast, value, params)


def sum_to_blocks(tree: Any, granularity: str) -> Any:
    """Sum a per-weight pytree to the blocks of ``granularity`` (a float 0 for no leaves)."""
    if granularity == "weight":
        return tree
    if granularity == "tensor":
        return jax.tree.map(jnp.sum, tree)
    return sum((jnp.sum(leaf) for leaf in jax.tree.leaves(tree)),
               start=jnp.zeros((), _scalar_dtype(tree)))


def broadcast_blocks(blocks: Any, like: Any, granularity: str) -> Any:
    """Per-weight pytree (structure, shapes and dtypes of ``like``) from block values, in new
    buffers."""
    def broadcast(block, p):
        return jnp.array(jnp.broadcast_to(block, jnp.shape(p)), dtype_of(p))

    if granularity == "scalar":
        return jax.tree.map(lambda p: broadcast(blocks, p), like)
    return jax.tree.map(broadcast, blocks, like)
