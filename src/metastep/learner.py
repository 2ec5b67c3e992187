"""The linear learner: one linear unit trained online by a step-size method.

A step (docs/methods.md#notation-and-conventions): predict ``y = w·x``, take the error
``δ = y* − y`` (recorded before the update), then hand the method the gradient ``g = −δ x`` of
``½δ²``, the diagonal curvature ``c = x²`` and the curvature-vector product ``C v = x (x·v)``.

The learner follows the protocol :class:`metastep.Learner` (``init``, ``step``, ``record``), as the
deep learners of :mod:`metastep.deep` do; the protocol's module also holds the glue they share.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metastep._checks import check_count, check_float_dtype, check_real
from metastep._learner_protocol import StepOutput, as_method, step_sizes_or_nan
from metastep._structure import recorded


class LinearLearnerState(NamedTuple):
    weights: jax.Array  # [num_features]
    opt_state: Any


@recorded
class LinearLearner:
    """A linear unit ``y = w·x`` (weights start at 0) trained by ``method``.

    Args:
      method: an optax transformation from :mod:`metastep.methods`, or any optax
        ``GradientTransformation`` (plain optax optimizers have no step sizes to report: their
        ``step_sizes`` output is NaN).
      num_features: the length ``n`` of each input ``x``.
    """

    def __init__(self, method: optax.GradientTransformation, num_features: int):
        self.method = as_method(method)
        check_count("num_features", num_features)
        self.num_features = num_features

    def init(self, key: jax.Array | None = None, dtype: Any = None) -> LinearLearnerState:
        """Zero weights; ``key`` is unused (the protocol passes one). dtype: float32, or float64
        under ``jax_enable_x64``."""
        del key
        dtype = dtype or jnp.result_type(float)
        check_float_dtype("dtype", dtype)
        weights = jnp.zeros((self.num_features,), dtype)
        return LinearLearnerState(weights, self.method.init(weights))

    def step(self, state: LinearLearnerState, x: jax.Array, y: jax.Array):
        """Predict, then update. Returns ``(new_state, StepOutput)``."""
        check_real("x", x)
        check_real("y", y)
        weights = state.weights
        x = x.astype(weights.dtype)
        # A fused multiply-sum, not jnp.dot: vmapped in a sweep, a dot becomes a batched matmul.
        prediction = jnp.sum(weights * x)
        error = y.astype(weights.dtype) - prediction
        grad = -error * x
        updates, opt_state = self.method.update(
            grad,
            state.opt_state,
            weights,
            curvature=x * x,
            curvature_vector_product=lambda v: x * jnp.sum(x * v),
        )
        new_state = LinearLearnerState(optax.apply_updates(weights, updates), opt_state)
        return new_state, StepOutput(prediction, error, self.step_sizes(new_state))

    def step_sizes(self, state: LinearLearnerState) -> jax.Array:
        """Per-weight step sizes used by the last update (NaN for plain optax optimizers)."""
        return step_sizes_or_nan(state.opt_state, state.weights)

    def record(self, state: LinearLearnerState) -> dict[str, jax.Array]:
        """What the engine stores at each record: step sizes and weights."""
        return {"step_sizes": self.step_sizes(state), "weights": state.weights}
