"""The loss, its gradient and the curvature side signals of a PyTorch model: the signals of
:func:`metastep.deep.extra_args`, for the optimizers of :mod:`metastep.torch`.

``Curvature(model, loss=..., source=...)(inputs, targets)`` evaluates the model on a batch, runs
the backward pass (``.grad`` of each parameter, accumulated as ``loss.backward()`` does) and
returns ``(loss, curvature)``: the loss, averaged over the batch, and the diagonal curvature, one
tensor per parameter of ``model.parameters()`` in order (``None`` for a parameter that does not
require a gradient). :meth:`Curvature.vector_product` then multiplies a list of such tensors by
the curvature matrix ``C`` at the parameters and batch of the last call (SMD's ``C v``). Sources:

``"gauss_newton"`` (default)
    ``G = (1/B) Σ_b J_bᵀ H_b J_b`` (``J_b`` the Jacobian of the outputs, ``H_b`` the Hessian of
    the loss in the outputs). The curvature is the unbiased estimate ``(Σ_b J_bᵀ u_b)²`` of its
    diagonal with ``u_b = L_b s_b / √B``, ``L_b L_bᵀ = H_b`` and Rademacher signs ``s`` over batch
    × outputs; exact (``(∂f/∂w)²``) when a step has one squared-loss output. The product is the
    exact ``G v``.
``"hutchinson"``
    The Hessian of the loss: curvature ``z ⊙ (∇²L z)`` with Rademacher ``z`` like the
    parameters, the product the exact Hessian-vector product.
``"hvp"``
    The exact Hessian-vector product only; the curvature is ``None``.
``"none"``
    No curvature term: zeros, and a product that returns zeros.

Losses: ``"squared"`` (``½ ||f(x) − y||²`` per example, targets shaped like the outputs) and
``"cross_entropy"`` (``logsumexp(f) − f_y`` per example, logits ``[B, K]``, integer labels
``[B]``). Signs are drawn from ``generator`` (PyTorch's default one if None), or given to the
call (``signs=``), e.g. to reproduce another implementation's draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

LOSSES = ("squared", "cross_entropy")
SOURCES = ("gauss_newton", "hutchinson", "hvp", "none")


def loss_value(outputs: torch.Tensor, targets: torch.Tensor, loss: str) -> torch.Tensor:
    """The loss averaged over the batch (the leading axis)."""
    batch_size = outputs.shape[0]
    if loss == "squared":
        if targets.numel() != outputs.numel():
            raise ValueError(f"squared loss: `targets` of shape {tuple(targets.shape)} do not "
                             f"match outputs of shape {tuple(outputs.shape)}")
        residual = outputs - targets.to(outputs.dtype).reshape(outputs.shape)
        return 0.5 * (residual * residual).sum() / batch_size
    if outputs.ndim != 2:
        raise ValueError(f"cross-entropy needs outputs [B, K] (logits), got shape "
                         f"{tuple(outputs.shape)}")
    if targets.is_floating_point() or targets.is_complex():
        raise ValueError(f"`targets` must hold integer class labels for loss='cross_entropy', "
                         f"got {targets.dtype}")
    return torch.nn.functional.cross_entropy(outputs, targets.reshape(batch_size).long())


def _output_hessian_product(outputs: torch.Tensor, tangent: torch.Tensor,
                            loss: str) -> torch.Tensor:
    """``H_b t_b / B`` per example (``H_b`` = ``I``, or ``diag p − p pᵀ`` for cross-entropy)."""
    batch_size = outputs.shape[0]
    if loss == "squared":
        return tangent / batch_size
    probabilities = torch.softmax(outputs, dim=1)
    projected = (probabilities * tangent).sum(dim=1, keepdim=True)
    return probabilities * (tangent - projected) / batch_size


def _gauss_newton_cotangent(outputs: torch.Tensor, signs: torch.Tensor,
                            loss: str) -> torch.Tensor:
    """``u_b = L_b s_b / √B``, so that ``E[(Jᵀu)²] = diag G``."""
    root_batch = torch.sqrt(torch.tensor(float(outputs.shape[0]), dtype=outputs.dtype,
                                         device=outputs.device))
    if loss == "squared":
        return signs / root_batch
    probabilities = torch.softmax(outputs, dim=1)
    roots = torch.sqrt(probabilities)
    # L s = √p ⊙ s − p (√p · s): L Lᵀ = diag p − p pᵀ.
    projection = (roots * signs).sum(dim=1, keepdim=True)
    return (roots * signs - probabilities * projection) / root_batch


def _vector_jacobian_product(outputs, inputs, cotangents) -> tuple[torch.Tensor, ...]:
    """``Jᵀ u``, zeros for inputs the outputs do not depend on."""
    return torch.autograd.grad(outputs, inputs, cotangents, retain_graph=True, allow_unused=True,
                               materialize_grads=True)


def _jacobian_vector_product(outputs: torch.Tensor, inputs: list[torch.Tensor],
                             tangents: list[torch.Tensor]) -> torch.Tensor:
    """``J v`` by reverse mode twice: ``Jᵀ u`` is linear in a dummy ``u``, and its
    vector-Jacobian product with ``v`` in ``u`` is ``J v``."""
    dummy = torch.zeros_like(outputs, requires_grad=True)
    pulled = torch.autograd.grad(outputs, inputs, dummy, create_graph=True, allow_unused=True,
                                 materialize_grads=True)
    (product,) = torch.autograd.grad(pulled, dummy, tangents, allow_unused=True,
                                     materialize_grads=True)
    return product


class Curvature:
    """The loss, the backward pass and the diagonal curvature of ``model`` on a batch.

    Args:
      model: a ``torch.nn.Module`` mapping inputs ``[B, ...]`` to outputs ``[B]`` or ``[B, K]``.
      loss: ``"squared"`` or ``"cross_entropy"``.
      source: ``"gauss_newton"``, ``"hutchinson"``, ``"hvp"`` or ``"none"`` (module docstring).
      generator: the ``torch.Generator`` of the random signs, on the model's device (PyTorch's
        default one if None).
      diagonal: False: no diagonal estimate (the call returns ``None``), for an optimizer that
        reads only :meth:`vector_product` (SMD); it saves a backward pass.

    Attributes:
      outputs: the model's outputs on the batch of the last call (detached).

    With ``"gauss_newton"`` and ``"hvp"`` a call keeps the graph of its forward pass until the
    next call, so that :meth:`vector_product` at unchanged parameters does not run the model again.
    """

    def __init__(self, model: torch.nn.Module, loss: str = "squared",
                 source: str = "gauss_newton", *, generator: torch.Generator | None = None,
                 diagonal: bool = True):
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
        if loss not in LOSSES:
            raise ValueError(f"`loss` must be one of {LOSSES}, got {loss!r}")
        if source not in SOURCES:
            raise ValueError(f"`source` must be one of {SOURCES}, got {source!r}")
        if not isinstance(diagonal, bool):
            raise ValueError(f"`diagonal` must be True or False, got {diagonal!r}")
        self.model, self.loss, self.source, self.generator = model, loss, source, generator
        self.diagonal = diagonal
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None
        # The last call's outputs, with their graph, and the parameters' versions then.
        self._graph: tuple[torch.Tensor, list[int]] | None = None
        self.outputs: torch.Tensor | None = None  # the model's outputs on the last batch

    def _learned(self) -> list[torch.Tensor]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def _all_parameters(self, learned: Sequence[torch.Tensor | None]) -> list[Any]:
        """Values for the learned parameters, spread over ``model.parameters()`` (None
        elsewhere)."""
        values = iter(learned)
        return [next(values) if p.requires_grad else None for p in self.model.parameters()]

    def _rademacher(self, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
        bits = torch.randint(0, 2, tuple(shape), generator=self.generator, device=like.device)
        return (2 * bits - 1).to(like.dtype)

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor, *,
                 signs: Any = None) -> tuple[torch.Tensor, list[torch.Tensor | None] | None]:
        """The loss (``.backward()`` done) and the diagonal curvature.

        Args:
          inputs: a batch ``[B, ...]``.
          targets: regression targets shaped like the outputs, or ``[B]`` integer labels.
          signs: optional Rademacher signs of the estimate, instead of a draw: ``[B, K]`` like
            the outputs for ``"gauss_newton"``, one tensor per learned parameter for
            ``"hutchinson"``.
        """
        self._batch, self._graph = (inputs, targets), None  # the last graph goes first
        learned = self._learned()
        keep = self.source in ("gauss_newton", "hvp")  # the graph, for vector_product
        with torch.enable_grad():
            outputs = self.model(inputs)
            self.outputs = outputs.detach()
            value = loss_value(outputs, targets, self.loss)
            if self.source == "hutchinson" and self.diagonal:
                curvature = self._hutchinson_diagonal(value, learned, signs)
            else:
                curvature = None
                if self.source == "gauss_newton" and self.diagonal:
                    curvature = self._gauss_newton_diagonal(outputs, learned, signs)
                elif self.source == "none" and self.diagonal:
                    curvature = [torch.zeros_like(p) for p in learned]
                value.backward(retain_graph=keep)
        if keep:
            self._graph = (outputs, [p._version for p in learned])
        curvature = None if curvature is None else self._all_parameters(curvature)
        return value.detach(), curvature

    def _gauss_newton_diagonal(self, outputs, learned, signs):
        if signs is None:
            if outputs.numel() == 1 and self.loss == "squared":
                signs = torch.ones_like(outputs)
            else:
                signs = self._rademacher(outputs.shape, outputs)
        elif tuple(signs.shape) != tuple(outputs.shape):
            raise ValueError(f"`signs` must have the outputs' shape {tuple(outputs.shape)}, got "
                             f"{tuple(signs.shape)}")
        cotangent = _gauss_newton_cotangent(outputs.detach(), signs.to(outputs.dtype), self.loss)
        projected = list(_vector_jacobian_product(outputs, learned, cotangent))
        torch._foreach_mul_(projected, projected)  # squared in place: no new tensors
        return projected

    def _hutchinson_diagonal(self, value, learned, signs):
        gradients = torch.autograd.grad(value, learned, create_graph=True, allow_unused=True,
                                        materialize_grads=True)
        if signs is None:
            signs = [self._rademacher(p.shape, p) for p in learned]
        elif [tuple(z.shape) for z in signs] != [tuple(p.shape) for p in learned]:
            raise ValueError("`signs` must hold one tensor per learned parameter, of its shape")
        products = _vector_jacobian_product(gradients, learned, list(signs))
        for p, gradient in zip(learned, gradients):
            p.grad = gradient.detach() if p.grad is None else p.grad + gradient.detach()
        products = list(products)
        torch._foreach_mul_(products, list(signs))  # in place: no new tensors
        return products

    def vector_product(self, vectors: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
        """``C v`` at the current parameters and the batch of the last call, ``vectors`` and the
        result one tensor per parameter of ``model.parameters()`` (None where no gradient)."""
        if self._batch is None:
            raise ValueError("vector_product needs a batch: call the Curvature object first")
        vectors = list(vectors)
        if len(vectors) != len(list(self.model.parameters())):
            raise ValueError("`vectors` must hold one tensor per parameter of the model")
        learned = self._learned()
        tangents = [v.to(p.dtype) for v, p in zip(vectors, self.model.parameters())
                    if p.requires_grad]
        if self.source == "none":
            return self._all_parameters([torch.zeros_like(v) for v in tangents])
        inputs, targets = self._batch
        with torch.enable_grad():
            outputs = self._kept_outputs(learned)
            if outputs is None:
                outputs = self.model(inputs)
            if self.source == "gauss_newton":
                output_tangent = _jacobian_vector_product(outputs, learned, tangents)
                cotangent = _output_hessian_product(outputs.detach(), output_tangent, self.loss)
                product = _vector_jacobian_product(outputs, learned, cotangent)
            else:
                gradients = torch.autograd.grad(loss_value(outputs, targets, self.loss), learned,
                                                create_graph=True, allow_unused=True,
                                                materialize_grads=True)
                product = _vector_jacobian_product(gradients, learned, tangents)
        return self._all_parameters([t.detach() for t in product])

    def _kept_outputs(self, learned: list[torch.Tensor]) -> torch.Tensor | None:
        """The last call's outputs with their graph, if no parameter has changed since."""
        if self._graph is None:
            return None
        outputs, versions = self._graph
        if [p._version for p in learned] != versions:
            return None
        return outputs


__all__ = ["Curvature", "LOSSES", "SOURCES", "loss_value"]
