"""Side signals (``curvature``, ``curvature_vector_product``): dtypes, masks, jit.

Inside ``optax.masked`` and ``optax.multi_transform`` a method sees gradients that hold
``optax.MaskedNode`` where a parameter belongs to another group, while the side signals computed
for the whole network still hold every parameter (optax masks extra arguments only when asked to,
with ``mask_compatible_extra_args=True``). The methods therefore restrict a side signal to the
gradients' leaves themselves, so both ways work.

A curvature-vector product is a function, and a function cannot be an argument of a jitted
``update`` nor be restricted to a group. :class:`CurvatureVectorProduct` is the same product as
data: a pytree whose leaves are arrays (the parameters and the operands, e.g. the batch) and whose
static part is the function that multiplies. Given a vector restricted to a group (``MaskedNode``
elsewhere), it pads the vector with zeros to the whole parameters, multiplies, and restricts the
product back: the group's diagonal block of ``C`` times the group's vector.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from metastep.methods import _common


def _is_masked(node: Any) -> bool:
    return isinstance(node, optax.MaskedNode)


def has_masked_nodes(tree: Any) -> bool:
    return any(_is_masked(node) for node in jax.tree.leaves(tree, is_leaf=_is_masked))


def restrict(tree: Any, like: Any) -> Any:
    """``tree`` with ``MaskedNode`` where ``like`` has one (``like`` a prefix of ``tree``'s
    structure there)."""
    return jax.tree.map(lambda node, t: node if _is_masked(node) else t, like, tree,
                        is_leaf=_is_masked)


def side_signal_like(name: str, signal: Any, grads: Any) -> Any:
    """A per-weight side signal in the structure and dtypes of ``grads``: restricted to the
    gradients' leaves inside ``optax.masked``, each leaf cast to its gradient's dtype (so that a
    float32 curvature does not turn a float16 state into float32)."""
    if jax.tree.structure(signal) != jax.tree.structure(grads) and has_masked_nodes(grads):
        try:
            signal = restrict(signal, grads)
        except ValueError:
            pass  # not the whole parameters either: the check below says what was expected
    _common.check_same_structure(name, signal, grads)
    return _common.cast_like(signal, grads)


def _pad(vector: Any, params: Any) -> Any:
    """``vector`` over the whole ``params``: zeros where it holds ``MaskedNode``."""
    return jax.tree.map(
        lambda v, p: jax.tree.map(jnp.zeros_like, p) if _is_masked(v) else v,
        vector, params, is_leaf=_is_masked,
    )


@jax.tree_util.register_pytree_node_class
class CurvatureVectorProduct:
    """``v -> C v`` as a pytree: usable as an argument of a jitted ``update`` and inside
    ``optax.masked``/``optax.multi_transform`` (see the module docstring).

    Args:
      multiply: ``(static, params, operands, vector) -> C vector`` over pytrees like ``params``;
        a module-level function (it is the static part, compared when a jitted function is
        looked up in its cache).
      params: the whole parameters (the point where ``C`` is taken; their shapes pad a
        restricted vector).
      operands: a pytree of arrays ``multiply`` needs (e.g. the batch).
      static: hashable non-array arguments of ``multiply`` (e.g. the model's apply function).
    """

    def __init__(self, multiply: Callable, params: Any, operands: Any = (), static: Any = ()):
        self.multiply = multiply
        self.params = params
        self.operands = operands
        self.static = static

    def tree_flatten(self):
        return (self.params, self.operands), (self.multiply, self.static)

    @classmethod
    def tree_unflatten(cls, aux, children):
        multiply, static = aux
        params, operands = children
        return cls(multiply, params, operands, static)

    def __call__(self, vector: Any) -> Any:
        if not has_masked_nodes(vector):
            return self.multiply(self.static, self.params, self.operands, vector)
        product = self.multiply(self.static, self.params, self.operands, _pad(vector, self.params))
        return restrict(product, vector)


def curvature_vector_product(trace: Any, grads: Any, product: Any) -> Any:
    """``C v`` for SMD, from a :class:`CurvatureVectorProduct` or a plain function."""
    if has_masked_nodes(trace) and not isinstance(product, CurvatureVectorProduct):
        raise ValueError(
            "inside optax.masked or optax.multi_transform, the extra argument "
            "`curvature_vector_product` must be an ms.methods.CurvatureVectorProduct (as "
            "ms.deep.extra_args returns), which can pad and restrict a group's vector; a plain "
            "function sees only the group's part of v"
        )
    return side_signal_like("curvature_vector_product(v)", product(trace), grads)


__all__ = ["CurvatureVectorProduct", "curvature_vector_product", "side_signal_like"]
