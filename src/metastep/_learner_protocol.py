"""The learner protocol: what the engine asks of a learner, and the glue learners share.

A learner is any object with three methods (:class:`Learner`); ``ms.LinearLearner`` and
``ms.deep.DeepLearner`` are two, and :func:`metastep.run`, :func:`metastep.run_arrays` and
:func:`metastep.sweep` run any other the same way:

* ``init(key) -> state``: the initial state (a pytree), from a PRNG key;
* ``step(state, x, y) -> (state, StepOutput)``: predict the target of ``x`` with the current
  state, then update on the target ``y``; :class:`StepOutput` holds what was measured before the
  update;
* ``record(state) -> dict[str, Array]``: fixed-size arrays the engine stores at the end of each
  record bin (e.g. the step sizes).

Optional, used when present:

* ``num_features``: the length of one input, checked against the problem's and ``xs``;
* ``check_targets(ys, name)``: rejects concrete targets it cannot take (from
  :func:`metastep.run_arrays`) with a ``ValueError``;
* ``check_problem(problem)``: rejects a problem before anything runs (from :func:`metastep.run`
  and :func:`metastep.sweep`) with a ``ValueError``;
* ``step_sizes(state)``: the per-weight step sizes of the last update;
* ``bin_records(means) -> dict``: the bin's records from the per-step means of the squared error
  and the step metrics (e.g. a TD learner's root mean square value error), the keys kept.

The glue that learners driven by an optax method share: :func:`as_method` (accept an optax
transformation, pass extra arguments only to those that take them), :func:`step_sizes_or_nan`
(NaN for optimizers that report no step sizes), :func:`log10_step_sizes` (the logarithms behind
step-size statistics) and :func:`diverges` (the engine's divergence test).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import optax

from metastep.methods._step_sizes import NoStepSizesError, step_sizes

# Squared errors above this count as a divergence (the default of the engine's threshold).
DEFAULT_DIVERGENCE_THRESHOLD = 1e20


class StepOutput(NamedTuple):
    prediction: jax.Array  # y, made before the update
    error: jax.Array  # δ = y* − y
    step_sizes: Any  # per-weight α used by this step's update
    metrics: dict[str, jax.Array] = {}  # per-step scalars the engine averages per bin


@runtime_checkable
class Learner(Protocol):
    """What :func:`metastep.run`, :func:`metastep.run_arrays` and :func:`metastep.sweep` call; see
    the module docstring for the optional hooks. ``isinstance(obj, ms.Learner)`` checks that the
    three methods exist (not their signatures)."""

    def init(self, key: jax.Array) -> Any:
        """The initial state, from a PRNG key."""

    def step(self, state: Any, x: jax.Array, y: jax.Array) -> tuple[Any, StepOutput]:
        """Predict the target of ``x``, then update on ``y``: ``(new_state, StepOutput)``."""

    def record(self, state: Any) -> dict[str, jax.Array]:
        """Fixed-size arrays stored at the end of each record bin."""


def as_method(method: Any) -> optax.GradientTransformationExtraArgs:
    """``method`` (an optax ``GradientTransformation``) ready to take the extra arguments of
    ``update`` (``curvature``, ...): passed on to transformations that accept them, dropped for
    the others."""
    if not hasattr(method, "init") or not hasattr(method, "update"):
        raise ValueError(f"`method` must be an optax GradientTransformation, got {method!r}")
    return optax.with_extra_args_support(method)


def step_sizes_or_nan(opt_state: Any, params: Any) -> Any:
    """The per-weight step sizes that the last update used (:func:`metastep.step_sizes`), or NaN
    shaped like ``params`` for optimizers that report none (plain optax optimizers).

    Raises:
      ValueError: when several metastep states cover the same weights (ambiguous).
    """
    try:
        return step_sizes(opt_state)
    except NoStepSizesError:  # plain optax optimizers; ambiguity still raises
        return jax.tree.map(lambda p: jnp.full_like(p, jnp.nan), params)


def log10_step_sizes(step_sizes_tree: Any) -> list[jax.Array]:
    """``log₁₀ α`` of each array of a step-size pytree, flattened, in leaf order.

    A step size ``≤ 0`` (hypergradient descent can cross zero) counts as the smallest positive
    normal number of its dtype; NaN stays NaN.
    """
    return [
        jnp.log10(jnp.maximum(alpha, jnp.finfo(alpha.dtype).tiny)).reshape(-1)
        for alpha in jax.tree.leaves(step_sizes_tree)
    ]


def diverges(squared_error: jax.Array, threshold: float = DEFAULT_DIVERGENCE_THRESHOLD):
    """The divergence test: a squared error that is not finite or exceeds ``threshold``."""
    return jnp.logical_not(jnp.isfinite(squared_error)) | (squared_error > threshold)


__all__ = [
    "DEFAULT_DIVERGENCE_THRESHOLD",
    "Learner",
    "StepOutput",
    "as_method",
    "diverges",
    "log10_step_sizes",
    "step_sizes_or_nan",
]
