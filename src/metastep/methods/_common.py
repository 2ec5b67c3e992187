"""What every step-size method shares: argument checks, the step-size protocol, granularity.

Conventions (see ../shared/spec/methods.md, "Notation"):

* A method is an ``optax.GradientTransformationExtraArgs``. ``update(grads, state, params=None,
    **extra_args)`` takes the gradient ``g`` of the loss and returns the update ``-α g`` (optax adds
    updates to parameters).
* Side signals arrive as extra keyword arguments, never packed into the gradient:
    ``curvature`` (a pytree like the parameters: the diagonal curvature ``c``; ``x²`` for a linear
    unit)
    and ``curvature_vector_product`` (a function ``v -> C v`` over such pytrees, used by SMD).
* Every method's state is a NamedTuple with a field ``step_size``: a pytree like the parameters
    holding the per-weight step size that the last update used (before any update, the initial one).
    :func:`step_sizes` finds it in any nest of states (optax chains, learner states).
* Hyperparameters may be traced JAX values (a sweep ``vmap``s over them), so checks of their values
    run only on concrete numbers.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

GRANULARITIES = ("weight", "tensor", "scalar")


def _is_concrete(value: Any) -> bool:
    return not isinstance(value, jax.core.Tracer)


def _as_float(name: str, value: Any) -> float | None:
    """The value as a Python float, or None when it is traced or not a scalar."""
    if not _is_concrete(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`{name}` must be a real number, got {value!r}") from error


def check_finite(name: str, value: Any) -> None:
    v = _as_float(name, value)
    if v is not None and not math.isfinite(v):
        raise ValueError(f"`{name}` must be finite, got {v}")


def check_non_negative(name: str, value: Any) -> None:
    check_finite(name, value)
    v = _as_float(name, value)
    if v is not None and v < 0:
        raise ValueError(f"`{name}` must be >= 0, got {v}")


def check_positive(name: str, value: Any) -> None:
    check_finite(name, value)
    v = _as_float(name, value)
    if v is not None and v <= 0:
        raise ValueError(f"`{name}` must be > 0, got {v}")


def check_unit_interval(name: str, value: Any) -> None:
    """Rates and decays: a number in [0, 1]."""
    check_finite(name, value)
    v = _as_float(name, value)
    if v is not None and not 0.0 <= v <= 1.0:
        raise ValueError(f"`{name}` must be in [0, 1], got {v}")


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
# Granularity: a learned step size per weight, per parameter array ("tensor"), or one in all.
# The meta-gradient of a step size shared by a block of weights is the sum of the per-weight
# meta-gradients over that block, so a block rule reduces its per-weight signal by summation.


def init_blocks(params: Any, value: Any, granularity: str) -> Any:
    """A block-shaped state filled with ``value`` (dtype of the parameters)."""
    check_granularity(granularity)
    leaves = jax.tree.leaves(params)
    if granularity == "weight":
        return jax.tree.map(lambda p: jnp.full_like(p, value), params)
    if granularity == "tensor":
        return jax.tree.map(lambda p: jnp.asarray(value, dtype=p.dtype), params)
    dtype = jnp.result_type(*leaves) if leaves else jnp.result_type(float)
    return jnp.asarray(value, dtype=dtype)


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
        if _is_concrete(leaf):
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
            return jnp.broadcast_to(jnp.asarray(leaf, param.dtype), param.shape)
        except ValueError as error:
            raise ValueError(
                f"`{name}` of shape {jnp.shape(leaf)} does not broadcast to a parameter of shape "
                f"{param.shape}"
            ) from error

    return jax.tree.map(broadcast, value, params)


def sum_to_blocks(tree: Any, granularity: str) -> Any:
    """Sum a per-weight pytree to the blocks of ``granularity``."""
    if granularity == "weight":
        return tree
    if granularity == "tensor":
        return jax.tree.map(jnp.sum, tree)
    return sum(jnp.sum(leaf) for leaf in jax.tree.leaves(tree))


def broadcast_blocks(blocks: Any, like: Any, granularity: str) -> Any:
    """Per-weight pytree (structure and shapes of ``like``) from block values."""
    if granularity == "weight":
        return blocks
    if granularity == "tensor":
        return jax.tree.map(lambda b, p: jnp.broadcast_to(b, p.shape).astype(p.dtype), blocks, like)
    return jax.tree.map(lambda p: jnp.broadcast_to(blocks, p.shape).astype(p.dtype), like)


# ---------------------------------------------------------------------------------------------
# The step-size protocol.


def _find_step_sizes(state: Any) -> Any:
    fields = getattr(state, "_fields", None)
    if fields is not None and "step_size" in fields:
        return state.step_size
    if isinstance(state, dict):
        children = list(state.values())
    elif isinstance(state, (tuple, list)):
        children = list(state)
    else:
        children = [getattr(state, f) for f in fields] if fields else []
    for child in children:
        found = _find_step_sizes(child)
        if found is not None:
            return found
    return None


def step_sizes(state: Any) -> Any:
    """The per-weight step sizes that the last update used.

    Works on the state of any metastep method, on optax chains that contain one (the first found,
    depth first), and on learner states that hold an optimizer state. The result has the structure
    of the parameters.

    Raises:
        ValueError: when ``state`` holds no metastep method state.
    """
    found = _find_step_sizes(state)
    if found is None:
        raise ValueError(
                "`state` holds no metastep step sizes: pass the state of a metastep method "
                "(ms.idbd, ms.autostep, ...), a chain containing one, or a learner state"
        )
    return found
