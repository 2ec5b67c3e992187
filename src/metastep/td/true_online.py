"""True online TD(λ) with dutch traces and a fixed step size (van Seijen, Mahmood, Pilarski,
Machado & Sutton 2016; Sutton & Barto 2018, §12.5).

Reference: H. van Seijen, A. R. Mahmood, P. M. Pilarski, M. C. Machado, R. S. Sutton, "True online
temporal-difference learning", JMLR 17(145), 2016; the algorithm box of Sutton & Barto (2018),
§12.5. In the streaming convention of :class:`metastep.td.TDLearner` (step ``t`` takes ``x_t`` and
the reward ``r_t`` of the transition into it, discount ``γ_t``; ``φ = x_{t−1}``, its discount
``γ_{t−1}``), in this order::

    V = w·φ;  V' = w·x_t                            # V' is the step's prediction
    δ = r_t + γ_t V' − V
    z ← γ_{t−1} λ z + (1 − α γ_{t−1} λ z·φ) φ        # the dutch trace
    w ← w + α (δ + V − V_old) z − α (V − V_old) φ
    V_old ← V'

At the start of an episode (``γ_{t−1} = 0``) the trace is ``φ`` and the ``V_old`` terms cancel, so
carrying ``V_old`` across the episode's end is the book's reset of ``V_old`` to 0.
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


class TrueOnlineTDState(NamedTuple):
    weights: jax.Array  # w
    trace: jax.Array  # z, before it takes φ in
    previous_features: jax.Array  # φ = x_{t−1}
    previous_discount: jax.Array  # γ_{t−1}, the discount of the transition into φ
    previous_prediction: jax.Array  # V_old


@recorded
class TrueOnlineTD(LinearTDHooks):
    """True online TD(λ), a fixed step size, weights from 0.

    Args:
      num_features: the length of each feature vector.
      discount: ``γ`` in [0, 1] for streams of plain rewards; a problem's stream carries its own.
      trace_decay: ``λ`` in [0, 1].
      step_size: ``α`` ≥ 0.
    """

    def __init__(self, num_features: int, discount: float, trace_decay: float,
                 step_size: float):
        _checks.check_count("num_features", num_features)
        _checks.check_unit_interval("discount", discount)
        _checks.check_unit_interval("trace_decay", trace_decay)
        _checks.check_non_negative("step_size", step_size)
        self.num_features = num_features
        self.discount = discount
        self.trace_decay = trace_decay
        self.step_size = step_size

    def init(self, key: jax.Array | None = None, dtype: Any = None) -> TrueOnlineTDState:
        """Zeros; ``key`` is unused."""
        del key
        dtype = dtype or jnp.result_type(float)
        _checks.check_float_dtype("dtype", dtype)
        zeros = jnp.zeros((self.num_features,), dtype)
        return TrueOnlineTDState(zeros, jnp.zeros_like(zeros), jnp.zeros_like(zeros),
                                 jnp.zeros((), dtype), jnp.zeros((), dtype))

    def step(self, state: TrueOnlineTDState, x: jax.Array, y: Any):
        """Predict ``v(x_t)``, then close the previous step (see the module docstring)."""
        check_features(x, self.num_features)
        reward, discount, value = reward_and_discount(y, self.discount)
        w, phi = state.weights, state.previous_features
        dtype = w.dtype
        x = x.astype(dtype)
        discount = jnp.asarray(discount, dtype)
        alpha = self.step_size
        value_before, prediction = jnp.sum(w * phi), jnp.sum(w * x)
        td_error = jnp.asarray(reward, dtype) + discount * prediction - value_before
        decay = state.previous_discount * self.trace_decay
        trace = decay * state.trace + (1 - alpha * decay * jnp.sum(state.trace * phi)) * phi
        correction = value_before - state.previous_prediction
        weights = w + alpha * (td_error + correction) * trace - alpha * correction * phi
        new_state = TrueOnlineTDState(weights, trace, x, discount, prediction)
        return new_state, StepOutput(prediction, td_error, self.step_sizes(new_state),
                                     value_metrics(prediction, value))

    def step_sizes(self, state: TrueOnlineTDState) -> jax.Array:
        """``α`` for every feature."""
        return jnp.full_like(state.weights, self.step_size)

