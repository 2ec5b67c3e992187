"""The gradient and the curvature side signals of a network's loss, in one pass where possible.

The step-size methods take the gradient ``g`` and, as extra arguments of ``update``, a diagonal
curvature ``c`` (``curvature``, a pytree like the parameters) and a curvature-vector product
``C v`` (``curvature_vector_product``, a function over such pytrees). Here the product is a
:class:`metastep.methods.CurvatureVectorProduct`: a pytree of arrays (the parameters and the batch)
with the multiplication as its static part, so ``jax.jit(method.update)(grads, state, params,
**extra)`` works, and inside ``optax.masked``/``optax.multi_transform`` SMD multiplies a group's
vector by the group's block of ``C``. It recomputes the forward pass it needs (under ``jit`` XLA
shares it with the gradient's where it can). For a linear unit with squared loss ``c = x²`` and
``C v = x (x·v)`` (docs/methods.md#notation-and-conventions); for a network :func:`extra_args`
offers four sources:

``"gauss_newton"`` (default)
    The Gauss-Newton matrix ``G = (1/B) Σ_b J_bᵀ H_b J_b``, with ``J_b = ∂f(x_b)/∂w`` the Jacobian
    of the outputs and ``H_b`` the Hessian of the loss in the outputs (``I`` for squared loss;
    ``diag(p) − p pᵀ`` with ``p = softmax(f)`` for cross-entropy). ``curvature`` is an unbiased
    one-sample estimate of its diagonal: with ``H_b = L_b L_bᵀ`` (``L = I``, or
    ``L = diag(√p) − p √pᵀ`` for cross-entropy) and Rademacher signs ``s`` over batch × outputs,
    ``u_b = L_b s_b / √B`` and ``c = (Σ_b J_bᵀ u_b)²``, whose expectation is ``diag G`` (the cross
    terms have zero mean). One vector-Jacobian product does it, batched with the gradient's over
    the same forward pass. With one output per step (batch 1, one regression output) the estimate
    is exact, ``c = (∂f/∂w)²``: the linear unit's ``x²``. ``curvature_vector_product`` is the exact
    ``G v = Jᵀ H (J v)`` (a Jacobian-vector product, then a vector-Jacobian product), SMD's choice
    (Schraudolph 2002) since ``G`` is positive semi-definite where the Hessian need not be.
``"hutchinson"``
    The Hessian ``∇²L`` of the loss. ``curvature = z ⊙ (∇²L z)`` with Rademacher ``z`` like the
    parameters (Hutchinson's estimator; unbiased for the Hessian diagonal, which can be negative:
    IDBD's ``[1 − α c]⁺`` then grows ``h``). Computed with the gradient by one forward-over-reverse
    linearization. ``curvature_vector_product`` is the exact Hessian-vector product.
``"hvp"``
    The exact Hessian-vector product ``∇²L v`` (jvp of the gradient) as
    ``curvature_vector_product``, for SMD's ``C v``; with a ``key`` also the Hutchinson diagonal as
    ``curvature`` (for methods that need ``c``; under ``jit`` it costs nothing if unused).
``"none"``
    Drop the curvature term: ``curvature`` is zeros and ``curvature_vector_product`` returns zeros.
    IDBD's trace becomes ``h ← h − α g`` (``h [1 − α·0]⁺ − α g``), the Hessian-free trace of
    MetaOptimize (Sharifnassab et al. 2025), and SMD's ``v ← λ v − p g``. Only a gradient pass.

Losses (the mean over the batch, as the gradient):
``"squared"``: ``½ ||f(x) − y||²`` per example (summed over outputs); targets shaped like outputs.
``"cross_entropy"``: ``logsumexp(f) − f_y`` per example; outputs ``[B, K]`` logits, targets ``[B]``
integer labels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from metastep.methods import CurvatureVectorProduct

LOSSES = ("squared", "cross_entropy")
CURVATURES = ("gauss_newton", "hutchinson", "hvp", "none")


def check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"`loss` must be one of {LOSSES}, got {loss!r}")


def check_curvature(curvature: str) -> None:
    if curvature not in CURVATURES:
        raise ValueError(f"`curvature` must be one of {CURVATURES}, got {curvature!r}")


def squared_targets(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Targets in the shape of the outputs (a ``[B]`` target for ``[B, 1]`` outputs is allowed)."""
    targets = jnp.asarray(targets, outputs.dtype)
    if targets.size != outputs.size:
        raise ValueError(
            f"squared loss: targets of shape {targets.shape} do not match outputs of shape "
            f"{outputs.shape}"
        )
    return targets.reshape(outputs.shape)


def loss_value(outputs: jax.Array, targets: jax.Array, loss: str) -> jax.Array:
    """The loss averaged over the batch (the leading axis)."""
    batch_size = outputs.shape[0]
    if loss == "squared":
        residual = outputs - squared_targets(outputs, targets)
        return 0.5 * jnp.sum(residual * residual) / batch_size
    if outputs.ndim != 2:
        raise ValueError(f"cross-entropy needs outputs [B, K] (logits), got shape {outputs.shape}")
    labels = jnp.asarray(targets).reshape(batch_size).astype(jnp.int32)
    label_logits = jnp.take_along_axis(outputs, labels[:, None], axis=1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(outputs, axis=1) - label_logits)


def _output_hessian_product(outputs: jax.Array, tangent: jax.Array, loss: str) -> jax.Array:
    """``H_b t_b / B`` per example, ``H_b`` the loss's Hessian in the outputs (``I`` or
    ``diag p − p pᵀ``)."""
    batch_size = outputs.shape[0]
    if loss == "squared":
        return tangent / batch_size
    probabilities = jax.nn.softmax(outputs, axis=1)
    projected = jnp.sum(probabilities * tangent, axis=1, keepdims=True)
    return probabilities * (tangent - projected) / batch_size


def _gauss_newton_cotangent(outputs: jax.Array, loss: str, key: jax.Array | None) -> jax.Array:
    """``u_b = L_b s_b / √B`` with ``L_b L_bᵀ = H_b`` and Rademacher signs ``s``, so that
    ``E[(Jᵀu)²] = diag G``."""
    batch_size = outputs.shape[0]
    if key is None:
        if outputs.size != 1 or loss != "squared":
            raise ValueError(
                "curvature='gauss_newton' estimates the Gauss-Newton diagonal with random signs "
                "when a step has more than one output value: pass `key`"
            )
        signs = jnp.ones_like(outputs)
    else:
        signs = jax.random.rademacher(key, outputs.shape, outputs.dtype)
    if loss == "squared":
        return signs / jnp.sqrt(batch_size).astype(outputs.dtype)
    probabilities = jax.nn.softmax(outputs, axis=1)
    roots = jnp.sqrt(probabilities)
    # L s = √p ⊙ s − p (√p · s): L Lᵀ = diag p − 2 p pᵀ + p pᵀ Σp = diag p − p pᵀ.
    projection = jnp.sum(roots * signs, axis=1, keepdims=True)
    factor_times_signs = roots * signs - probabilities * projection
    return factor_times_signs / jnp.sqrt(batch_size).astype(outputs.dtype)


def _rademacher_like(key: jax.Array, tree: Any) -> Any:
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    signs = [jax.random.rademacher(k, leaf.shape, leaf.dtype) for k, leaf in zip(keys, leaves)]
    return jax.tree.unflatten(treedef, signs)


def _zeros_product(static: Any, params: Any, operands: Any, vector: Any) -> Any:
    del static, params, operands
    return jax.tree.map(jnp.zeros_like, vector)


def _gauss_newton_product(static: Any, params: Any, operands: Any, vector: Any) -> Any:
    """``G v = Jᵀ H (J v)``: a Jacobian-vector product, then a vector-Jacobian product."""
    apply_fn, loss = static
    (inputs,) = operands

    def model(p):
        return apply_fn(p, inputs)

    outputs, model_vjp = jax.vjp(model, params)
    _, jacobian_vector = jax.jvp(model, (params,), (vector,))
    (product,) = model_vjp(_output_hessian_product(outputs, jacobian_vector, loss))
    return product


def _hessian_product(static: Any, params: Any, operands: Any, vector: Any) -> Any:
    """``∇²L v``: the Jacobian-vector product of the gradient."""
    apply_fn, loss = static
    inputs, targets = operands

    def gradient(p):
        return jax.grad(lambda q: loss_value(apply_fn(q, inputs), targets, loss))(p)

    return jax.jvp(gradient, (params,), (vector,))[1]


def extra_args(
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    batch: tuple[jax.Array, jax.Array],
    *,
    loss: str = "squared",
    curvature: str = "gauss_newton",
    key: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, Any, dict[str, Any]]:
    """The loss, the outputs, the gradient and the extra arguments of a method's ``update``.

    Args:
      apply_fn: ``(params, inputs) -> outputs``, outputs ``[B]`` or ``[B, K]``.
      params: the parameter pytree.
      batch: ``(inputs [B, ...], targets)``; see the module docstring for the targets of each loss.
      loss: ``"squared"`` or ``"cross_entropy"``.
      curvature: ``"gauss_newton"``, ``"hutchinson"``, ``"hvp"`` or ``"none"`` (module docstring).
      key: randomness of the estimates. Required by ``"hutchinson"``, and by ``"gauss_newton"``
        unless a step has a single output value; ``"hvp"`` adds ``curvature`` only with a key.

    Returns:
      ``(loss, outputs, grads, extra)`` with ``extra`` holding ``curvature`` and
      ``curvature_vector_product``, ready for ``method.update(grads, state, params, **extra)``.
    """
    check_loss(loss)
    check_curvature(curvature)
    inputs, targets = batch

    def model(p):
        return apply_fn(p, inputs)

    if curvature in ("none", "gauss_newton"):
        outputs, model_vjp = jax.vjp(model, params)
        value, output_gradient = jax.value_and_grad(loss_value)(outputs, targets, loss)
        if curvature == "none":
            (grads,) = model_vjp(output_gradient)
            zeros = jax.tree.map(jnp.zeros_like, grads)
            return value, outputs, grads, {
                "curvature": zeros,
                "curvature_vector_product": CurvatureVectorProduct(_zeros_product, params),
            }
        cotangents = jnp.stack([output_gradient, _gauss_newton_cotangent(outputs, loss, key)])
        # One batched backward pass: the gradient and the projected Jacobian Jᵀu together.
        (both,) = jax.vmap(model_vjp)(cotangents)
        grads = jax.tree.map(lambda a: a[0], both)
        diagonal = jax.tree.map(lambda a: jnp.square(a[1]), both)
        product = CurvatureVectorProduct(
            _gauss_newton_product, params, (inputs,), (apply_fn, loss)
        )
        return value, outputs, grads, {"curvature": diagonal, "curvature_vector_product": product}

    def loss_and_gradient(p):
        (value, outputs), grads = jax.value_and_grad(
            lambda q: (lambda o: (loss_value(o, targets, loss), o))(model(q)), has_aux=True
        )(p)
        return (value, grads), outputs

    (value, grads), linearized, outputs = jax.linearize(loss_and_gradient, params, has_aux=True)

    product = CurvatureVectorProduct(_hessian_product, params, (inputs, targets), (apply_fn, loss))
    extra: dict[str, Any] = {"curvature_vector_product": product}
    if key is None and curvature == "hutchinson":
        raise ValueError("curvature='hutchinson' draws random signs: pass `key`")
    if key is not None:
        signs = _rademacher_like(key, params)
        extra["curvature"] = jax.tree.map(jnp.multiply, signs, linearized(signs)[1])
    return value, outputs, grads, extra


__all__ = ["CURVATURES", "LOSSES", "extra_args", "loss_value"]
