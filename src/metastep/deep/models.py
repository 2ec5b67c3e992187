"""Models for the deep learners: a plain-JAX MLP, and adapters for Flax and Equinox models.

A :class:`Model` is two pure functions and the shape of one input:

* ``init(key) -> params``, any pytree of arrays;
* ``apply(params, inputs) -> outputs`` on a batch: ``inputs`` ``[B, *input_shape]``, outputs
  ``[B]`` or ``[B, K]`` (regression values, or classification logits).

:func:`as_model` turns a Flax linen module, a Flax NNX module or an Equinox module into one, so the
step-size methods see only a pytree of parameter arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metastep._structure import recorded

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "identity": lambda a: a,
}


class Model(NamedTuple):
    init: Callable[[jax.Array], Any]  # key -> params
    apply: Callable[[Any, jax.Array], jax.Array]  # (params, [B, *input_shape]) -> [B] or [B, K]
    input_shape: tuple[int, ...]  # the shape of one example


@recorded
def mlp(sizes: Sequence[int] = (784, 300, 150, 10), activation: str = "relu") -> Model:
    """A fully connected network in plain JAX: ``sizes[0]`` inputs, ``sizes[-1]`` linear outputs.

    Params are a list with one ``{"kernel": [fan_in, fan_out], "bias": [fan_out]}`` per layer
    (``y = x @ kernel + bias``). Kernels start from a normal with variance ``2 / fan_in`` for
    ReLU (He et al. 2015) and ``1 / fan_in`` otherwise (LeCun et al. 1998); biases start at 0.
    Arrays take JAX's default float dtype (float64 under ``jax_enable_x64``).
    """
    sizes = tuple(sizes)
    if len(sizes) < 2 or any(
        isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes
    ):
        raise ValueError(f"`sizes` must be two or more positive integers, got {sizes!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
    act = ACTIVATIONS[activation]
    gain = 2.0 if activation == "relu" else 1.0

    def init(key):
        keys = jax.random.split(key, len(sizes) - 1)
        return [
            {
                "kernel": jax.random.normal(k, (fan_in, fan_out)) * math.sqrt(gain / fan_in),
                "bias": jnp.zeros((fan_out,)),
            }
            for k, fan_in, fan_out in zip(keys, sizes[:-1], sizes[1:])
        ]

    def apply(params, inputs):
        hidden = inputs
        for layer in params[:-1]:
            hidden = act(hidden @ layer["kernel"] + layer["bias"])
        return hidden @ params[-1]["kernel"] + params[-1]["bias"]

    return Model(init, apply, (sizes[0],))


def _is_flax_linen(model: Any) -> bool:
    try:
        from flax import linen
    except ImportError:  # pragma: no cover - depends on the environment
        return False
    return isinstance(model, linen.Module)


def _is_flax_nnx(model: Any) -> bool:
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover - depends on the environment
        return False
    return isinstance(model, nnx.Module)


def _is_equinox(model: Any) -> bool:
    try:
        import equinox
    except ImportError:  # pragma: no cover - depends on the environment
        return False
    return isinstance(model, equinox.Module)


def as_model(model: Any, input_shape: Sequence[int] | None = None) -> Model:
    """A :class:`Model` from a Model, a Flax linen or NNX module, or an Equinox module.

    * Flax linen: ``init(key)`` is ``module.init(key, zeros([1, *input_shape]))`` and the params are
      its whole variables dict (``{"params": ...}``); modules with mutable collections (batch
      statistics) are not supported.
    * Flax NNX: the module is already initialized; ``init`` ignores the key and returns its
      ``nnx.Param`` state; ``apply`` merges the state back into the module and calls it on the
      batch.
    * Equinox: the inexact arrays of the module are the params (``eqx.partition``); the module acts
      on one example, so ``apply`` vmaps it over the batch; ``init`` ignores the key.

    Args:
      model: the model.
      input_shape: the shape of one example; required for Flax and Equinox models.
    """
    if isinstance(model, Model):
        return model
    if input_shape is None:
        raise ValueError("`input_shape` (the shape of one example) is needed to adapt a "
                         f"{type(model).__name__} model")
    input_shape = tuple(int(d) for d in input_shape)
    if _is_flax_linen(model):
        return Model(
            lambda key: model.init(key, jnp.zeros((1, *input_shape))), model.apply, input_shape
        )
    if _is_flax_nnx(model):
        from flax import nnx

        graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        def apply_nnx(params, inputs):
            return nnx.merge(graphdef, params, rest)(inputs)

        return Model(lambda key: params, apply_nnx, input_shape)
    if _is_equinox(model):
        import equinox

        params, static = equinox.partition(model, equinox.is_inexact_array)

        def apply_equinox(params, inputs):
            return jax.vmap(equinox.combine(params, static))(inputs)

        return Model(lambda key: params, apply_equinox, input_shape)
    raise ValueError(
        "`model` must be a metastep.deep.Model (e.g. ms.deep.mlp(...)), a Flax linen or NNX "
        f"module or an Equinox module, got {type(model).__name__}"
    )


def _key_name(key: Any) -> str:
    if isinstance(key, jax.tree_util.SequenceKey):
        return f"layer_{key.idx}"
    if isinstance(key, jax.tree_util.DictKey):
        return str(key.key)
    if isinstance(key, jax.tree_util.GetAttrKey):
        return key.name
    if isinstance(key, jax.tree_util.FlattenedIndexKey):
        return str(key.key)
    return str(key)


def leaf_names(params: Any) -> list[str]:
    """A name per parameter array, from its path: ``"layer_0/kernel"``, ``"Dense_0/bias"``.

    List indices read ``layer_<i>``; a leading ``params`` key that all leaves share (Flax) and
    NNX's ``value`` suffix are dropped.
    """
    paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    names = [[_key_name(k) for k in path] for path in paths]
    if names and all(len(n) > 1 and n[0] == "params" for n in names):
        names = [n[1:] for n in names]
    names = [n[:-1] if len(n) > 1 and n[-1] == "value" else n for n in names]
    return ["/".join(n) if n else "params" for n in names]


__all__ = ["ACTIVATIONS", "Model", "as_model", "leaf_names", "mlp"]
