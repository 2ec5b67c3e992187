"""The linear learner: one linear unit trained online by a step-size method.

A step (docs/methods.md#notation-and-conventions): predict ``y = w·x``, take the error
``δ = y* − y`` (recorded before the update), then hand the method the gradient ``g = −δ x`` of
``½δ²``, the diagonal curvature ``c = x²`` and the curvature-vector product ``C v = x (x·v)``.

Any object with the same three methods (``init``, ``step``, ``record``) can be run by the engine;
the deep learners of :mod:`metastep.deep` follow this protocol too. Two optional methods let a
learner reject data it cannot take before anything runs: ``check_targets(ys, name)`` (concrete
targets, from :func:`metastep.run_arrays`) and ``check_problem(problem)`` (from
:func:`metastep.run` and :func:`metastep.sweep`); both raise ``ValueError``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metastep._structure import recorded
from metastep.methods._step_sizes import NoStepSizesError, step_sizes


def check_real(name: str, value: Any) -> None:
    """Inputs and targets are real numbers (bool, integer or float): a complex value would lose
    its imaginary part in a cast, a string fail deep inside. A check of the dtype alone, so it
    runs at trace time."""
    dtype = value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype
    if np.dtype(dtype).kind not in "biuf":
        raise ValueError(f"`{name}` must hold real numbers (bool, integer or float), got {dtype}")


def check_float_dtype(name: str, dtype: Any) -> None:
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"`{name}` must be a real floating-point dtype, got {np.dtype(dtype)}")


class LinearLearnerState(NamedTuple):
    weights: jax.Array  # [num_features]
    opt_state: Any


class StepOutput(NamedTuple):
    prediction: jax.Array  # y, made before the update
    error: jax.Array  # δ = y* − y
    step_sizes: jax.Array  # per-weight α used by this step's update
    metrics: dict[str, jax.Array] = {}  # per-step scalars the engine averages per bin


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
        if not hasattr(method, "init") or not hasattr(method, "update"):
            raise ValueError(f"`method` must be an optax GradientTransformation, got {method!r}")
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"`num_features` must be a positive integer, got {num_features!r}")
        self.method = optax.with_extra_args_support(method)
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
        try:
            return step_sizes(state.opt_state)
        except NoStepSizesError:  # plain optax optimizers; ambiguity still raises
            return jnp.full_like(state.weights, jnp.nan)

    def record(self, state: LinearLearnerState) -> dict[str, jax.Array]:
        """What the engine stores at each record: step sizes and weights."""
        return {"step_sizes": self.step_sizes(state), "weights": state.weights}
