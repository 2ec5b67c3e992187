"""Objects as a hashable structure and numeric leaves, so that compiled programs can be reused.

Learners, methods and problems are Python objects holding closures: JAX cannot see their
hyperparameters, so a program compiled for one of them bakes their values in. The factories and
classes marked with :func:`recorded` remember how each object was built (the factory and the
arguments of the call); :func:`split` turns such an object into

- a *structure*: hashable, equal for two objects built by the same factories from arguments
  that differ only in their float values (the factories, the ints, bools, strings and shapes,
  and by identity every other object: a user's loss function, a schedule, an optax
  transformation built without a recorded factory), and
- *leaves*: the float values (Python floats, NumPy and JAX float arrays), in a fixed order,

and :func:`rebuild` calls the factories again with new leaves (e.g. traced values inside a
compiled program). An object that was not built by a recorded factory, or whose class is a
subclass of the recorded one, is described by its identity: the same object is the same
structure, a new one is a new structure. With ``trace_floats=False`` the float values belong to
the structure (compared by value) and there are no leaves.

A recorded object is taken to be immutable once built: changing its attributes afterwards is not
seen by its structure.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

_RECIPE = "_metastep_recipe"
# Integer and boolean arrays up to this size are compared by value, larger ones by identity.
_MAX_VALUE_ARRAY = 1_024


class Recipe(NamedTuple):
    """How a recorded object was built: ``factory(*args, **kwargs)``."""

    factory: Callable[..., Any]
    args: tuple
    kwargs: dict[str, Any]


class Identity:
    """A reference compared and hashed by identity (it keeps the object alive while cached)."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other.value is self.value

    def __hash__(self) -> int:
        return id(self.value)

    def __repr__(self) -> str:
        return f"Identity({type(self.value).__name__} at {id(self.value):#x})"


@functools.cache
def _with_recipe_slot(cls: type) -> type:
    # A NamedTuple has no instance dict: a subclass of the same name gets one (optax's
    # transformations are NamedTuples; isinstance checks and pytree flattening still hold).
    return type(cls.__name__, (cls,), {"__module__": cls.__module__,
                                       "__qualname__": cls.__qualname__})


def _attach(built: Any, recipe: Recipe) -> Any:
    if isinstance(built, tuple) and hasattr(built, "_fields"):
        built = _with_recipe_slot(type(built))(*built)
    try:
        object.__setattr__(built, _RECIPE, (type(built), recipe))
    except (AttributeError, TypeError):
        pass  # no room for a recipe: the object is described by its identity
    return built


def recorded(factory):
    """Mark a factory function or a class: the objects it builds remember their recipe."""
    if isinstance(factory, type):
        original_init = factory.__init__

        @functools.wraps(original_init)
        def __init__(self, *args, **kwargs):
            original_init(self, *args, **kwargs)
            object.__setattr__(self, _RECIPE, (factory, Recipe(factory, args, kwargs)))

        factory.__init__ = __init__
        return factory

    @functools.wraps(factory)
    def build(*args, **kwargs):
        return _attach(factory(*args, **kwargs), Recipe(build, args, kwargs))

    build.__signature__ = inspect.signature(factory)
    return build


def recipe_of(obj: Any) -> Recipe | None:
    """The recipe of ``obj``, or None when it was not built by a recorded factory (or is an
    instance of a subclass of the recorded class, which the recipe would not rebuild)."""
    entry = getattr(obj, "__dict__", {}).get(_RECIPE)
    if entry is None or type(obj) is not entry[0]:
        return None
    return entry[1]


def _describe(value: Any, leaves: list, trace_floats: bool):
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return ("value", type(value), value)
    if isinstance(value, float):
        if trace_floats:
            leaves.append(value)
            return ("float",)
        return ("value", float, value.hex())
    if isinstance(value, (tuple, list)) and type(value) in (tuple, list):
        return (type(value), tuple(_describe(item, leaves, trace_floats) for item in value))
    if type(value) is dict and all(isinstance(key, str) for key in value):
        return (dict, tuple((key, _describe(item, leaves, trace_floats))
                            for key, item in value.items()))
    if isinstance(value, (np.ndarray, np.generic)) or type(value).__module__.startswith("jax"):
        described = _describe_array(value, leaves, trace_floats)
        if described is not None:
            return described
    recipe = recipe_of(value)
    if recipe is not None:
        return ("built", Identity(recipe.factory),
                _describe(recipe.args, leaves, trace_floats),
                _describe(recipe.kwargs, leaves, trace_floats))
    return ("object", Identity(value))


def _describe_array(value: Any, leaves: list, trace_floats: bool):
    """A concrete array: a leaf if float, else by value when small; None for anything else
    (e.g. a tracer, a large integer array), which is then described by identity."""
    if isinstance(value, jax.core.Tracer):
        return None
    dtype, shape = np.dtype(value.dtype), tuple(value.shape)
    if dtype.kind == "f" and trace_floats:
        leaves.append(value)
        return ("array", type(value), shape, dtype)
    if dtype.kind not in "biuf" or np.prod(shape) > _MAX_VALUE_ARRAY:
        return None
    return ("array-value", type(value), shape, dtype, np.asarray(value).tobytes())


def split(obj: Any, trace_floats: bool = True) -> tuple[Any, list]:
    """``(structure, leaves)`` of ``obj``: see the module docstring."""
    leaves: list = []
    return _describe(obj, leaves, trace_floats), leaves


def rebuild(structure: Any, leaves) -> Any:
    """The object that ``structure`` describes, with ``leaves`` (e.g. traced values) in place of
    its float values, in the order :func:`split` gave them."""
    remaining = iter(leaves)
    built = _rebuild(structure, remaining)
    if next(remaining, None) is not None:
        raise ValueError("more leaves than the structure holds")
    return built


def _rebuild(node, leaves):
    kind = node[0]
    if kind == "value":
        return float.fromhex(node[2]) if node[1] is float else node[2]
    if kind in ("float", "array"):
        return next(leaves)
    if kind == "array-value":
        _, array_type, shape, dtype, data = node
        array = np.frombuffer(data, dtype).reshape(shape)
        if array_type is np.ndarray:
            return array.copy()
        return array_type(array) if issubclass(array_type, np.generic) else jnp.asarray(array)
    if kind in (tuple, list):
        return kind(_rebuild(item, leaves) for item in node[1])
    if kind is dict:
        return {key: _rebuild(item, leaves) for key, item in node[1]}
    if kind == "built":
        args = _rebuild(node[2], leaves)
        kwargs = _rebuild(node[3], leaves)
        return node[1].value(*args, **kwargs)
    if kind == "object":
        return node[1].value
    raise ValueError(f"not a structure node: {node!r}")


