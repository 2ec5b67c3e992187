"""Linear TD(λ) with accumulating traces, its step sizes from any metastep or optax method.

Streaming convention (that of the SwiftTD authors' code, ``step(features, reward) ->
prediction``): step ``t`` receives the features ``x_t`` and the reward ``r_t`` of the transition
into ``x_t``, with that transition's discount ``γ_t`` (0 when it ended an episode: ``x_t`` is then
the first state of the next one). The step predicts ``v(x_t) = w·x_t`` with the weights before its
update, then closes the previous step (Sutton & Barto 2018, §12.2)::

    δ_t = r_t + γ_t w·x_t − w·x_{t−1}       # the TD error of the transition x_{t−1} → x_t
    w  ← w + α δ_t z                        # z holds x_{t−1} and the decayed older features
    z  ← γ_t λ z + x_t                      # ready for the next step

The first step has no previous state (``x_{−1} = 0``, ``z = 0``): its δ updates nothing. A
terminal transition (``γ_t = 0``) credits its reward to ``x_{t−1}`` alone and empties the trace.

The method sees the update direction as the gradient ``g = −δ z`` (so ``ms.sgd``, ``ms.rmsprop``
and ``ms.adam`` are TD(λ) with their step-size rules) and the TD side signals as extra keyword
arguments of ``update`` (:data:`SIDE_SIGNALS`): ``td_error`` δ, ``trace`` z, ``features``
``x_{t−1}`` (φ), ``next_features`` ``x_t`` (φ') and ``discount`` ``γ_t``; plus ``curvature =
φ z``, so that a supervised method such as ``ms.idbd`` runs on the TD update as it would on a
linear unit (the TD-specific rules are :func:`metastep.td.tidbd` and
:func:`metastep.td.autotidbd`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metastep._checks import check_count, check_float_dtype, check_real, check_unit_interval
from metastep._learner_protocol import StepOutput, as_method, step_sizes_or_nan
from metastep._structure import recorded

# The extra arguments that TDLearner passes to its method's update, besides ``curvature``.
SIDE_SIGNALS = ("td_error", "trace", "features", "next_features", "discount")


class TDTarget(NamedTuple):
    """What a TD problem's stream gives per step as the target ``y`` of a TD learner."""

    reward: jax.Array  # r_t, of the transition into x_t
    discount: jax.Array  # γ_t of that transition: 0 when it ended an episode
    value: jax.Array  # the true value of x_t (the learner's predictions are measured against it)


class TDLearnerState(NamedTuple):
    weights: jax.Array  # w [num_features]
    trace: jax.Array  # z [num_features], holding x_{t−1}
    previous_features: jax.Array  # x_{t−1} [num_features]
    opt_state: Any


def check_features(x: jax.Array, num_features: int) -> None:
    check_real("x", x)
    if x.shape != (num_features,):
        raise ValueError(f"`x` must have shape [{num_features}] (num_features), got {x.shape}")


def reward_and_discount(y: Any, discount: Any):
    """``(r_t, γ_t, true value or None)`` from a :class:`TDTarget`, or from a plain reward with
    the learner's constant ``discount``."""
    if isinstance(y, TDTarget):
        return y.reward, y.discount, y.value
    check_real("y", y)
    if jnp.shape(y) != ():
        raise ValueError(f"`y` must be a scalar reward or a TDTarget, got shape {jnp.shape(y)}")
    return y, discount, None


def value_metrics(prediction: jax.Array, value: Any) -> dict[str, jax.Array]:
    """The squared error of the prediction against the true value, when the stream knows it
    (the engine records its root mean square per bin as ``value_error``)."""
    return {} if value is None else {"value_error": jnp.square(prediction - value)}


class LinearTDHooks:
    """What the linear TD learners share: their records, the root mean square of the value
    error per bin, and the check that a problem's discount is the learner's (``self.discount``).
    A subclass defines ``step_sizes(state)``; its state has ``weights``."""

    def record(self, state: Any) -> dict[str, jax.Array]:
        """What the engine stores at each record: step sizes and weights."""
        return {"step_sizes": self.step_sizes(state), "weights": state.weights}

    def bin_records(self, means: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """The bin's records from the per-step means: ``value_error`` as a root mean square."""
        if "value_error" in means:
            means = {**means, "value_error": jnp.sqrt(means["value_error"])}
        return means

    def check_problem(self, problem: Any) -> None:
        """Rejects a problem whose stream has a discount other than the learner's (its true
        values and per-step discounts use its own)."""
        stream_discount = problem.params.get("discount")
        if stream_discount is None or not all(
            isinstance(d, (int, float)) for d in (stream_discount, self.discount)
        ):
            return
        if float(stream_discount) != float(self.discount):
            raise ValueError(
                f"`discount` ({self.discount}) differs from the discount of problem "
                f"{problem.name!r} ({stream_discount}), whose true values and per-step "
                "discounts use its own"
            )


@recorded
class TDLearner(LinearTDHooks):
    """Linear TD(λ), accumulating traces, weights from 0, step sizes from ``method``.

    Args:
      method: a method of :mod:`metastep.td` (``tidbd``, ``autotidbd``), of :mod:`metastep`
        (``ms.sgd(α)`` is plain TD(λ); ``ms.rmsprop``, ``ms.adam``) or any optax
        transformation, given the gradient ``−δ z`` and the side signals of the module docstring.
      num_features: the length ``n`` of each feature vector.
      discount: ``γ`` in [0, 1] for streams of plain rewards (``ms.run_arrays(learner, xs,
        rewards)``); a problem's stream carries its own per-step discount, which must equal it.
      trace_decay: ``λ`` in [0, 1].
    """

    def __init__(self, method: optax.GradientTransformation, num_features: int,
                 discount: float, trace_decay: float):
        self.method = as_method(method)
        check_count("num_features", num_features)
        check_unit_interval("discount", discount)
        check_unit_interval("trace_decay", trace_decay)
        self.num_features = num_features
        self.discount = discount
        self.trace_decay = trace_decay

    def init(self, key: jax.Array | None = None, dtype: Any = None) -> TDLearnerState:
        """Zero weights, trace and previous features; ``key`` is unused. dtype: float32, or
        float64 under ``jax_enable_x64``."""
        del key
        dtype = dtype or jnp.result_type(float)
        check_float_dtype("dtype", dtype)
        weights = jnp.zeros((self.num_features,), dtype)
        return TDLearnerState(weights, jnp.zeros_like(weights), jnp.zeros_like(weights),
                              self.method.init(weights))

    def step(self, state: TDLearnerState, x: jax.Array, y: Any):
        """Predict ``v(x_t)``, then close the previous step (see the module docstring). ``y``: a
        :class:`TDTarget`, or the reward alone (the learner's ``discount`` applies)."""
        check_features(x, self.num_features)
        reward, discount, value = reward_and_discount(y, self.discount)
        weights, trace, previous = state.weights, state.trace, state.previous_features
        dtype = weights.dtype
        x = x.astype(dtype)
        discount = jnp.asarray(discount, dtype)
        prediction = jnp.sum(weights * x)
        td_error = jnp.asarray(reward, dtype) + discount * prediction - jnp.sum(weights * previous)
        updates, opt_state = self.method.update(
            -td_error * trace, state.opt_state, weights,
            td_error=td_error, trace=trace, features=previous, next_features=x,
            discount=discount, curvature=previous * trace,
        )
        new_trace = discount * self.trace_decay * trace + x
        new_state = TDLearnerState(optax.apply_updates(weights, updates), new_trace, x, opt_state)
        return new_state, StepOutput(prediction, td_error, self.step_sizes(new_state),
                                     value_metrics(prediction, value))

    def step_sizes(self, state: TDLearnerState) -> jax.Array:
        """Per-weight step sizes used by the last update (NaN for plain optax optimizers)."""
        return step_sizes_or_nan(state.opt_state, state.weights)

