"""The deep learner: a network trained online by a step-size method, run by the engine.

Contract (the learner protocol :class:`metastep.Learner`, which ``ms.run`` and ``ms.sweep`` use)::

    learner = ms.deep.DeepLearner(model, method, loss="squared", curvature="gauss_newton")
    state = learner.init(key)                      # DeepLearnerState
    state, output = learner.step(state, x, y)      # predict with the old params, then update
    record = learner.record(state)                 # per-parameter-array step-size statistics

Inputs. ``x`` is one example, shaped ``model.input_shape`` (the engine's ``[n]``), or a batch
``[B, *input_shape]``; ``y`` is its target: a number (one regression output), ``[K]`` (``K``
regression outputs) or an integer class label (``loss="cross_entropy"``, logits ``[K]``), with a
leading ``B`` for a batch. The loss of a batch is the mean over its examples. Inputs and targets
must be real numbers, class labels integers in ``[0, K)``: anything else raises ``ValueError``
(at trace time for dtypes; before the run for the labels of :func:`metastep.run_arrays`, and for
a problem whose ``params["num_classes"]`` exceeds ``K``).

Each step computes the loss, the gradient and the method's extra arguments (``curvature``,
``curvature_vector_product``) with :func:`metastep.deep.extra_args` from the learner's
``curvature`` source, then calls ``method.update(grads, opt_state, params, **extra)``. Random
estimates draw from a key carried in the state, split once per step when the source needs random
signs (Hutchinson's; Gauss-Newton's unless a step has one squared-loss output). ``init(key)``
gives ``key`` to ``model.init``, or a split of it when the state needs its own key.

``StepOutput`` of a step (all measured before that step's update):

* ``prediction``: the model's output for ``x`` (a number for one regression output; ``[K]``
  values or logits otherwise; with a leading ``B`` for a batch).
* ``error``: a scalar with ``error² = 2 × loss``, so the engine's ``squared_error`` is twice the
  loss. One regression output and one example: the signed residual ``y − ŷ`` (the linear learner's
  ``δ``). Otherwise ``sqrt(2 × loss)``: the root of the summed squared residual (averaged over the
  batch) for squared loss, ``sqrt(2 × cross-entropy)`` for classification.
* ``step_sizes``: the per-weight step sizes of the update (a pytree like the params; NaN for
  plain optax optimizers, which report none).
* ``metrics``: ``{"loss": loss}``, and for classification also ``"accuracy"``, the fraction of the
  batch whose arg-max logit is the label (online accuracy: before the update). The engine averages
  them per record bin.

``record(state)`` returns fixed-size arrays over the ``L`` parameter arrays, in the order of
``learner.layer_names`` (names from the tree paths, e.g. ``"layer_0/kernel"``):

* ``"log10_step_size_mean"`` ``[L]``: mean over the array of ``log₁₀ α``;
* ``"log10_step_size_quantiles"`` ``[L, 3]``: its 10%, 50% and 90% quantiles
  (``learner.quantile_levels``); a step size ``≤ 0`` (hypergradient descent can cross zero)
  counts as the smallest positive normal number;
* ``"effective_step_size"`` ``[L]``: the fraction of the error that the array's update removes, to
  first order, ``−g_ℓ·Δw_ℓ / error²`` (``g_ℓ`` the array's gradient, ``Δw_ℓ`` its update), as a
  ratio of exponential averages over steps with rate ``average_rate``. For a linear unit whose
  update is ``Δw = −α ⊙ g`` it is Autostep's ``Σ α x²`` (above 1: an overshoot); it is defined for
  any optimizer and needs no curvature.

The engine stacks them over record bins: ``[R, L]`` and ``[R, L, 3]`` for a run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metastep._checks import check_real, check_unit_interval
from metastep._learner_protocol import StepOutput, as_method, log10_step_sizes, step_sizes_or_nan
from metastep._structure import recorded
from metastep.deep.curvature import check_curvature, check_loss, extra_args
from metastep.deep.models import Model, as_model, leaf_names
from metastep.methods.normalized_idbd import normalized_idbd

QUANTILE_LEVELS = (0.1, 0.5, 0.9)


class DeepLearnerState(NamedTuple):
    params: Any
    opt_state: Any
    key: jax.Array  # for the random curvature estimates
    progress_average: jax.Array  # [L] average of −g_ℓ·Δw_ℓ per parameter array
    squared_error_average: jax.Array  # [] average of error²


def _quantiles_per_array(arrays: list[jax.Array], levels: Sequence[float]) -> jax.Array:
    """``[L, len(levels)]`` quantiles of each 1-D array (linear interpolation, as ``jnp.quantile``).

    One sort of all arrays together, keyed by array index, instead of one sort each: a sort costs
    a compilation of its own, seconds for a network.
    """
    sizes = [a.size for a in arrays]
    ids = jnp.concatenate([jnp.full((n,), i, jnp.int32) for i, n in enumerate(sizes)])
    _, ordered = jax.lax.sort((ids, jnp.concatenate(arrays)), num_keys=2)
    offsets = np.cumsum([0, *sizes[:-1]])
    positions = np.array([[q * (n - 1) for q in levels] for n in sizes])
    lower = np.floor(positions).astype(int)
    upper = np.minimum(lower + 1, np.array(sizes)[:, None] - 1)
    fraction = jnp.asarray(positions - lower, ordered.dtype)
    below = ordered[offsets[:, None] + lower]
    return below + fraction * (ordered[offsets[:, None] + upper] - below)


@recorded
class DeepLearner:
    """A network trained online by ``method``; see the module docstring for the contract.

    Args:
      model: a :class:`metastep.deep.Model` (e.g. ``ms.deep.mlp((784, 300, 150, 10))``), or a Flax
        linen/NNX or Equinox module (adapted by :func:`metastep.deep.as_model`, which needs
        ``input_shape``).
      method: a metastep method or any optax transformation (extra arguments are passed only to
        transformations that accept them). None (the default): ``ms.normalized_idbd()`` at its
        defaults, the library's recommended default for networks (docs/methods.md#normalized_idbd;
        the ``one-default`` experiment measures it against tuned Adam).
      loss: ``"squared"`` or ``"cross_entropy"``.
      curvature: the source of the curvature signals, ``"gauss_newton"``, ``"hutchinson"``,
        ``"hvp"`` or ``"none"`` (see :mod:`metastep.deep.curvature`). Use ``"none"`` for methods
        that ignore curvature (Adam, hypergradient descent, MetaOptimize): it costs only the
        gradient.
      input_shape: the shape of one example, for Flax and Equinox models.
      average_rate: the rate of the exponential averages behind ``effective_step_size``.

    Attributes:
      layer_names: the names of the parameter arrays, in the order of the records.
      num_features: the length of one example when it is a vector (the engine checks it against
        the problem's), else None.
      num_classes: ``K``, the number of logits, for ``loss="cross_entropy"``; else None.
    """

    quantile_levels = QUANTILE_LEVELS

    def __init__(
        self,
        model: Model | Any,
        method: optax.GradientTransformation | None = None,
        *,
        loss: str = "squared",
        curvature: str = "gauss_newton",
        input_shape: Sequence[int] | None = None,
        average_rate: float = 0.01,
    ):
        self.method = as_method(normalized_idbd() if method is None else method)
        check_loss(loss)
        check_curvature(curvature)
        check_unit_interval("average_rate", average_rate)
        self.model = as_model(model, input_shape)
        self.loss = loss
        self.curvature = curvature
        self.average_rate = average_rate
        self.input_shape = self.model.input_shape
        self.num_features = self.input_shape[0] if len(self.input_shape) == 1 else None
        param_shapes = jax.eval_shape(self.model.init, jax.random.PRNGKey(0))
        self.layer_names = leaf_names(param_shapes)
        for name, leaf in zip(self.layer_names, jax.tree.leaves(param_shapes)):
            if not jnp.issubdtype(leaf.dtype, jnp.floating):
                raise ValueError(f"`model` parameters must be real floating point, got "
                                 f"{leaf.dtype} for {name!r}")
        output_shape = jax.eval_shape(
            self.model.apply, param_shapes, jax.ShapeDtypeStruct((1, *self.input_shape), float)
        ).shape
        # The number of classes a classifier's logits cover.
        self.num_classes = output_shape[-1] if loss == "cross_entropy" else None
        # Random signs are drawn only where an estimate needs them (a key split costs compile
        # time): Hutchinson's, and Gauss-Newton's unless a step has one squared-loss output.
        single_output = loss == "squared" and math.prod(output_shape) == 1
        self._draws_keys = curvature in ("hutchinson", "hvp") or (
            curvature == "gauss_newton" and not single_output
        )

    def init(self, key: jax.Array | None = None) -> DeepLearnerState:
        """Params from ``model.init``, the method's state, zero averages."""
        key = jax.random.PRNGKey(0) if key is None else key
        if self._draws_keys:
            params_key, key = jax.random.split(key)
        else:
            params_key = key
        params = self.model.init(params_key)
        dtype = jnp.result_type(*jax.tree.leaves(params))
        return DeepLearnerState(
            params,
            self.method.init(params),
            key,
            jnp.zeros((len(self.layer_names),), dtype),
            jnp.zeros((), dtype),
        )

    def step(self, state: DeepLearnerState, x: jax.Array, y: jax.Array):
        """Predict, then update. Returns ``(new_state, StepOutput)``."""
        check_real("x", x)
        self._check_target_dtype("y", y)
        params = state.params
        dtype = jnp.result_type(*jax.tree.leaves(params))
        single = jnp.ndim(x) == len(self.input_shape)
        inputs = jnp.asarray(x, dtype)
        targets = jnp.asarray(y)
        if single:
            inputs, targets = inputs[None], targets[None]
        key, curvature_key = state.key, None
        if self._draws_keys:
            key, curvature_key = jax.random.split(state.key)
        loss, outputs, grads, extra = extra_args(
            self.model.apply, params, (inputs, targets),
            loss=self.loss, curvature=self.curvature, key=curvature_key,
        )
        updates, opt_state = self.method.update(grads, state.opt_state, params, **extra)
        new_params = optax.apply_updates(params, updates)

        squared_error = 2.0 * loss
        if self.loss == "squared" and outputs.size == 1:
            prediction = outputs.reshape(())
            error = targets.astype(dtype).reshape(()) - prediction
        else:
            prediction = outputs[0] if single else outputs
            error = jnp.sqrt(squared_error)
        metrics = {"loss": loss}
        if self.loss == "cross_entropy":
            labels = targets.reshape(-1).astype(jnp.int32)
            metrics["accuracy"] = jnp.mean(jnp.argmax(outputs, axis=-1) == labels).astype(dtype)

        progress = jnp.stack(
            [-jnp.sum(g * u) for g, u in zip(jax.tree.leaves(grads), jax.tree.leaves(updates))]
        ).astype(dtype)
        rate = self.average_rate
        new_state = DeepLearnerState(
            new_params,
            opt_state,
            key,
            state.progress_average + rate * (progress - state.progress_average),
            state.squared_error_average + rate * (squared_error - state.squared_error_average),
        )
        return new_state, StepOutput(prediction, error, self.step_sizes(new_state), metrics)

    def check_targets(self, ys: Any, name: str = "y") -> None:
        """Concrete targets: class labels must be integers in ``[0, K)`` for a classifier."""
        self._check_target_dtype(name, ys)
        if self.loss != "cross_entropy":
            return
        labels = np.asarray(ys)
        outside = (labels < 0) | (labels >= self.num_classes)
        if outside.any():
            raise ValueError(f"`{name}` holds labels outside [0, {self.num_classes}), the "
                             f"model's {self.num_classes} logits: {labels[outside][0]} first")

    def _check_target_dtype(self, name: str, y: Any) -> None:
        """Real targets, integer labels for a classifier (the dtype only: at trace time too)."""
        check_real(name, y)
        dtype = jnp.result_type(y)
        if self.loss == "cross_entropy" and not jnp.issubdtype(dtype, jnp.integer):
            raise ValueError(f"`{name}` must hold integer class labels for "
                             f"loss='cross_entropy', got {dtype}")

    def check_problem(self, problem: Any) -> None:
        """A classifier's logits must cover the problem's classes."""
        num_classes = getattr(problem, "params", {}).get("num_classes")
        if self.loss == "cross_entropy" and num_classes is not None and (
            num_classes > self.num_classes
        ):
            raise ValueError(f"`problem` {problem.name!r} has {num_classes} classes but the "
                             f"model gives {self.num_classes} logits")

    def step_sizes(self, state: DeepLearnerState) -> Any:
        """Per-weight step sizes used by the last update (NaN for plain optax optimizers)."""
        return step_sizes_or_nan(state.opt_state, state.params)

    def record(self, state: DeepLearnerState) -> dict[str, jax.Array]:
        """Step-size statistics per parameter array (see the module docstring)."""
        logs = log10_step_sizes(self.step_sizes(state))
        means = jnp.stack([jnp.mean(values) for values in logs])
        quantiles = _quantiles_per_array(logs, self.quantile_levels)
        denominator = state.squared_error_average
        effective = jnp.where(
            denominator > 0,
            state.progress_average / jnp.where(denominator > 0, denominator, 1.0),
            0.0,
        )
        return {
            "log10_step_size_mean": means,
            "log10_step_size_quantiles": quantiles.astype(means.dtype),
            "effective_step_size": effective,
        }


__all__ = ["DeepLearner", "DeepLearnerState", "QUANTILE_LEVELS"]
