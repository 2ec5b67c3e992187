"""SwiftTD: true online TD(λ) with per-feature step sizes, a bound on the rate of learning and
step-size decay (Javed, Sharifnassab & Sutton 2024), dense features.

Reference: K. Javed, A. Sharifnassab, R. S. Sutton, "SwiftTD: A fast and robust algorithm for
temporal difference learning", Reinforcement Learning Journal 2 (RLC 2024), pp. 840–863; the
authors' code, ``SwiftTDNonSparse::Step`` in ``src/cpp/SwiftTD.cpp`` of ``swifttd`` 0.1.8 (PyPI).
Streaming convention of :class:`metastep.td.TDLearner`: step ``t`` takes ``x_t`` and the reward
``r_t`` of the transition into it (discount ``γ_t``) and returns ``v_t = w·x_t`` before the update.
Per feature ``i``: weights ``w``, trace ``z``, its last increment ``z_δ``, meta traces ``h``,
``h_temp``, ``z̄``, ``p``, log step size ``β`` (init ``ln α₀``); scalars ``v_old`` (the previous
prediction) and ``v_δ``; ``h_old`` lives within a step. Hyperparameters: ``λ``, meta step size
``θ``, bound ``η`` on the rate of learning, ``decay``, floor ``α_min``. In this order::

    δ = r_t + γ_t v_t − v_old
    Δw = δ z − z_δ v_δ;  w ← w + Δw
    β ← β + (θ / e^β) (δ − v_δ) p;  β ← min(β, ln η);  β ← max(β, ln α_min)
    h_old ← h;  h ← h_temp + δ z̄ − z_δ v_δ;  h_temp ← h
    z, p, z̄ ← γ_t λ (z, p, z̄)
    v_δ = Δw·x_t;  τ = Σ e^β x_t²;  b = z·x_t;  m = min(1, η / τ)
    z_δ = m e^β x_t
    z ← z + z_δ (1 − b);  p ← p + h_old x_t;  z̄ ← z̄ + z_δ (1 − b − z̄ x_t)
    h_temp ← h − h_old x_t (z − z_δ) − h z_δ x_t
    if τ > η:  h, h_temp, z̄ ← 0;  β ← β + ln(decay) x_t²
    v_old ← v_t

(True online TD(λ) with step sizes ``α_i = m e^{β_i}``, its ``z_δ`` and ``v_δ`` terms the dutch
trace's correction; ``p``, ``h`` and ``z̄`` carry the meta-gradient of the step sizes.)
Computed here from ``w·x_t``, ``z·x_t`` and ``z_δ·x_t`` of the step's start, in one product:
``b = γ_t λ (z·x_t)`` and ``v_δ = δ (z·x_t) − v_δ (z_δ·x_t)``, the same values as the code's sums
up to rounding.

Where the code departs from its stated rule: its floor (``SwiftTD.cpp``,
``SwiftTDNonSparse::Step``, the test ``if(exp(this->beta[i]) < log(this->eta_min))``) compares
``α`` with ``ln α_min``, a negative number for any ``α_min < 1``, so it never acts, whereas
``α_min`` is documented (the authors' README) as the minimum value of the step size. The default
keeps ``α ≥ α_min``; ``floor="code"`` reproduces the code. The code's discount is one constant; here
it is the stream's per-step ``γ_t`` (0 at the end of an episode), which is the code's whenever the
stream's discount is constant.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metastep import _checks
from metastep._learner_protocol import StepOutput
from metastep._structure import recorded
from metastep.td.learner import (
    LinearTDHooks,
    check_features,
    reward_and_discount,
    value_metrics,
)

FLOORS = ("applied", "code")


class SwiftTDState(NamedTuple):
    weights: jax.Array  # w
    trace: jax.Array  # z
    trace_increment: jax.Array  # z_δ
    meta_trace: jax.Array  # h
    next_meta_trace: jax.Array  # h_temp
    step_size_trace: jax.Array  # z̄
    meta_gradient_trace: jax.Array  # p
    log_step_size: jax.Array  # β
    previous_prediction: jax.Array  # v_old
    prediction_change: jax.Array  # v_δ


@recorded
class SwiftTD(LinearTDHooks):
    """SwiftTD (Javed, Sharifnassab & Sutton 2024), dense features: a learner on its own (its
    step sizes are part of the algorithm, not a separate method).

    Args:
      num_features: the length of each feature vector.
      discount: ``γ`` in [0, 1] for streams of plain rewards; a problem's stream carries its own.
      trace_decay: ``λ`` in [0, 1].
      initial_step_size: ``α₀`` > 0.
      meta_step_size: ``θ`` ≥ 0.
      step_size_bound: ``η`` > 0, the bound on the rate of learning ``Σ α_i x_i²`` (and on each
        ``α_i``).
      step_size_decay: ``decay`` in (0, 1]: the factor on ``α_i`` (per unit of ``x_i²``) at each
        step where the rate of learning exceeds ``η``.
      min_step_size: ``α_min`` > 0, the floor on each step size.
      floor: ``"applied"`` (``α ≥ α_min``) or ``"code"`` (the authors' code, where the floor never
        acts; see the module docstring).
    """

    def __init__(self, num_features: int, discount: float, trace_decay: float,
                 initial_step_size: float = 1e-2, meta_step_size: float = 1e-3,
                 step_size_bound: float = 0.1, step_size_decay: float = 0.999,
                 min_step_size: float = 1e-10, floor: str = "applied"):
        _checks.check_count("num_features", num_features)
        _checks.check_unit_interval("discount", discount)
        _checks.check_unit_interval("trace_decay", trace_decay)
        _checks.check_positive("initial_step_size", initial_step_size)
        _checks.check_non_negative("meta_step_size", meta_step_size)
        _checks.check_positive("step_size_bound", step_size_bound)
        _checks.check_positive("step_size_decay", step_size_decay)
        _checks.check_unit_interval("step_size_decay", step_size_decay)
        _checks.check_positive("min_step_size", min_step_size)
        if floor not in FLOORS:
            raise ValueError(f"`floor` must be one of {FLOORS}, got {floor!r}")
        self.num_features = num_features
        self.discount = discount
        self.trace_decay = trace_decay
        self.initial_step_size = initial_step_size
        self.meta_step_size = meta_step_size
        self.step_size_bound = step_size_bound
        self.step_size_decay = step_size_decay
        self.min_step_size = min_step_size
        self.floor = floor

    def init(self, key: jax.Array | None = None, dtype: Any = None) -> SwiftTDState:
        """Zeros, and ``β = ln α₀``; ``key`` is unused."""
        del key
        dtype = dtype or jnp.result_type(float)
        _checks.check_float_dtype("dtype", dtype)
        n = self.num_features
        vectors = [jnp.zeros((n,), dtype) for _ in range(7)]
        log_step_size = jnp.full((n,), jnp.log(jnp.asarray(self.initial_step_size, dtype)))
        return SwiftTDState(*vectors, log_step_size, jnp.zeros((), dtype), jnp.zeros((), dtype))

    def _bounded(self, log_step_size):
        """``min(β, ln η)``, then the floor (see the module docstring): compared in ``β``, which
        saves two exponentials per feature and step over the code's ``e^β > η``."""
        dtype = log_step_size.dtype
        log_bound = jnp.log(jnp.asarray(self.step_size_bound, dtype))
        log_floor = jnp.log(jnp.asarray(self.min_step_size, dtype))
        log_step_size = jnp.minimum(log_step_size, log_bound)
        if self.floor == "applied":
            return jnp.maximum(log_step_size, log_floor)
        return jnp.where(jnp.exp(log_step_size) < log_floor, log_floor, log_step_size)

    def step(self, state: SwiftTDState, x: jax.Array, y: Any):
        """Predict ``v(x_t)``, then learn (see the module docstring). ``y``: a
        :class:`~metastep.td.TDTarget`, or the reward alone (the learner's ``discount``)."""
        check_features(x, self.num_features)
        reward, discount, value = reward_and_discount(y, self.discount)
        s = state
        dtype = s.weights.dtype
        x = x.astype(dtype)
        discount = jnp.asarray(discount, dtype)
        # w·x, z·x and z_δ·x in one product: the step's other inner products follow from them
        # (fewer, larger kernels: a single lane's time is mostly the count of its kernels).
        prediction, old_trace_dot_x, increment_dot_x = jnp.stack(
            [s.weights, s.trace, s.trace_increment]) @ x
        td_error = jnp.asarray(reward, dtype) + discount * prediction - s.previous_prediction
        weight_change = td_error * s.trace - s.trace_increment * s.prediction_change
        prediction_change = td_error * old_trace_dot_x - s.prediction_change * increment_dot_x
        log_step_size = self._bounded(
            s.log_step_size + self.meta_step_size * jnp.exp(-s.log_step_size)
            * (td_error - s.prediction_change) * s.meta_gradient_trace)
        meta_trace = s.next_meta_trace + td_error * s.step_size_trace - (
            s.trace_increment * s.prediction_change)
        decay = discount * self.trace_decay
        trace_dot_x = decay * old_trace_dot_x  # b = (γλz)·x
        step_size = jnp.exp(log_step_size)
        rate = jnp.sum(step_size * x * x)
        overshoot = rate > self.step_size_bound
        multiplier = jnp.where(overshoot, self.step_size_bound / jnp.where(overshoot, rate, 1), 1)
        increment = multiplier * step_size * x
        # the decayed traces γλ(z, p, z̄) written into their updates
        trace = decay * s.trace + increment * (1 - trace_dot_x)
        gradient_trace = decay * s.meta_gradient_trace + s.meta_trace * x
        step_size_trace = decay * s.step_size_trace + increment * (
            1 - trace_dot_x - decay * s.step_size_trace * x)
        next_meta_trace = (meta_trace - s.meta_trace * x * (trace - increment)
                           - meta_trace * increment * x)
        zero = jnp.zeros_like(meta_trace)
        new_state = SwiftTDState(
            weights=s.weights + weight_change,
            trace=trace,
            trace_increment=increment,
            meta_trace=jnp.where(overshoot, zero, meta_trace),
            next_meta_trace=jnp.where(overshoot, zero, next_meta_trace),
            step_size_trace=jnp.where(overshoot, zero, step_size_trace),
            meta_gradient_trace=gradient_trace,
            log_step_size=jnp.where(overshoot, log_step_size + jnp.log(
                jnp.asarray(self.step_size_decay, dtype)) * x * x, log_step_size),
            previous_prediction=prediction,
            prediction_change=prediction_change,
        )
        return new_state, StepOutput(prediction, td_error, self.step_sizes(new_state),
                                     value_metrics(prediction, value))

    def step_sizes(self, state: SwiftTDState) -> jax.Array:
        """``α = e^β`` per feature (before the bound ``m`` of the next step)."""
        return jnp.exp(state.log_step_size)

