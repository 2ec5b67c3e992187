"""The step-size protocol: find the per-weight step sizes in any nest of states, unambiguously.

Every method's state class is registered with :func:`method_state`; :func:`step_sizes` walks a
nest of states (optax chains and wrappers, dicts, learner states), collects the registered states
it meets (without looking inside them) and returns their ``step_sizes`` field. Two methods that
each cover part of the parameters (the groups of ``optax.multi_transform``, or ``optax.masked``
parts, whose step sizes hold ``optax.MaskedNode`` where the other group is) are merged into one
tree; two methods that cover the same weights (``optax.chain(ms.idbd(), ms.sgd())``) make the
question ambiguous, and :func:`step_sizes` says where they are so that the caller can pass one.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

_METHOD_STATES: list[type] = []


def method_state(cls: type) -> type:
    """Class decorator: a NamedTuple whose field ``step_sizes`` holds per-weight step sizes."""
    if "step_sizes" not in getattr(cls, "_fields", ()):
        raise TypeError(f"{cls.__name__} needs a field `step_sizes`")
    _METHOD_STATES.append(cls)
    return cls


class NoStepSizesError(ValueError):
    """``step_sizes`` found no metastep method state (plain optax optimizers have none)."""


def _children(state: Any) -> list[tuple[str, Any]]:
    """``(accessor, child)`` for the containers optax and the learners build states from."""
    fields = getattr(state, "_fields", None)
    if fields is not None:
        return [(f".{name}", getattr(state, name)) for name in fields]
    if isinstance(state, dict):
        return [(f"[{key!r}]", value) for key, value in state.items()]
    if isinstance(state, (tuple, list)):
        return [(f"[{index}]", value) for index, value in enumerate(state)]
    return []


def _find(state: Any, path: str, found: list[tuple[str, Any]]) -> None:
    if isinstance(state, tuple(_METHOD_STATES)):
        found.append((path, state.step_sizes))
        return
    for accessor, child in _children(state):
        _find(child, path + accessor, found)


def _is_masked(tree: Any) -> bool:
    return isinstance(tree, optax.MaskedNode)


def _merge(trees: list[Any]) -> Any:
    """One tree from trees that each hold values where the others hold ``MaskedNode``; None
    when two trees hold values at the same place."""
    present = [tree for tree in trees if not _is_masked(tree)]
    if len(present) <= 1:
        return present[0] if present else trees[0]
    flat = [jax.tree.flatten(tree, is_leaf=lambda node, root=tree: node is not root)
            for tree in present]
    treedef = flat[0][1]
    if jax.tree_util.treedef_is_leaf(treedef) or any(d != treedef for _, d in flat):
        return None
    merged = [_merge(list(children)) for children in zip(*(leaves for leaves, _ in flat))]
    if any(child is None for child in merged):
        return None
    return jax.tree.unflatten(treedef, merged)


def step_sizes(state: Any) -> Any:
    """The per-weight step sizes that the last update used.

    Works on the state of any metastep method, on optax chains and wrappers that contain one
    (``inject_hyperparams``, ``MultiSteps``, ``apply_if_finite``, ``masked``), on
    ``optax.multi_transform`` states whose groups use different metastep methods (merged into one
    tree), and on learner states that hold an optimizer state. The result has the structure of
    the parameters (with ``optax.MaskedNode`` where no metastep method applies).

    Raises:
        NoStepSizesError: (a ``ValueError``) when ``state`` holds no metastep method state.
        ValueError: when it holds several that cover the same weights (e.g. two chained
            methods); pass the sub-state of the one you want, as the message says.
    """
    found: list[tuple[str, Any]] = []
    _find(state, "state", found)
    if not found:
        raise NoStepSizesError(
            "`state` holds no metastep step sizes: pass the state of a metastep method "
            "(ms.idbd, ms.autostep, ...), a chain containing one, or a learner state"
        )
    if len(found) == 1:
        return found[0][1]
    merged = _merge([tree for _, tree in found])
    if merged is None:
        paths = ", ".join(path for path, _ in found)
        raise ValueError(
            f"`state` holds {len(found)} metastep method states that cover the same weights, at "
            f"{paths}: which step sizes are meant is ambiguous. Pass the sub-state of the one you "
            f"want, e.g. ms.step_sizes({found[0][0]})"
        )
    return merged


__all__ = ["NoStepSizesError", "method_state", "step_sizes"]
