"""SwiftTD on sparse features: the authors' sparse versions, whose work per step grows with the
features that are active or still carry a trace, not with all the features.

Reference: K. Javed, A. Sharifnassab, R. S. Sutton, "SwiftTD: A fast and robust algorithm for
temporal difference learning", RLC 2024; the authors' code, ``SwiftTDBinaryFeatures::Step``
(binary features, given as the indices of those that are 1) and ``SwiftTD::Step`` (pairs of index
and value) in ``src/cpp/SwiftTD.cpp`` of ``swifttd`` 0.1.8 (PyPI). The rule per feature is that of
:class:`~metastep.td.SwiftTD` (dense), whose docstring gives the symbols; what the sparse code
adds or changes:

- **Eligible set.** Only the features in the set ``E`` (those whose trace ``z_i`` is not 0) take
  the first half of the step (``Δw``, ``w``, ``β``, ``h_old``, ``h``, ``h_temp``, ``z_δ ← 0``,
  the decay of ``z``, ``p``, ``z̄``). A feature leaves ``E`` when its decayed trace falls to
  ``z_i ≤ ε α̂_i``, where ``α̂_i = m e^{β_i}`` is the step size of its last activation and ``ε``
  the trace cut-off; its ``z``, ``p``, ``z̄`` and ``Δw`` are then set to 0 (``h``, ``h_old`` and
  ``h_temp`` keep their values). An active feature with ``z_i = 0`` joins ``E``.
- **The second half runs over the active features** ``i ∈ A`` (value ``x_i``; 1 for binary
  features): ``τ = Σ_A e^{β_i} x_i²``, ``m = η / max(τ, η)``, ``b = Σ_A z_i x_i`` and
  ``v_δ = Σ_A Δw_i x_i``; then, per active feature::

      z_δ = m e^β x;  α̂ = m e^β
      if τ > η:  h_temp, h, h_old, z̄ ← 0;  β ← β + ln(decay) x²
      z ← z + z_δ (1 − b);  p ← p + h_old x;  z̄ ← z̄ + z_δ (1 − b − z̄ x)
      h_temp ← h − h_old x (z − z_δ) − h z_δ x

  The reset comes *before* the updates of ``z``, ``p``, ``z̄`` and ``h_temp`` here, after them in
  the dense code: at a step where ``τ > η`` the sparse code adds ``z_δ (1 − b)`` to the freshly
  zeroed ``z̄`` and nothing to ``p``, where the dense code leaves ``z̄ = 0`` and adds
  ``h_old x`` to ``p``. This module follows the sparse code (the paper gives one algorithm, whose
  order is the dense code's).

Features outside ``A ∪ E`` keep their values. The dense rule leaves them unchanged too (their
``z``, ``p``, ``z̄`` and ``z_δ`` are 0), except ``h_old``, which it sets to ``h`` at every step.
So the sparse and the dense rule differ in four places:

1. the cut-off ``ε`` (``trace_cutoff=0`` drops only the traces that reach 0);
2. the order of the reset;
3. a feature that leaves ``E`` takes ``Δw = 0`` into the next ``v_δ``, where the dense rule keeps
   its ``Δw``;
4. a feature outside ``E`` keeps the ``h_old`` of its last step in ``E`` (its ``h`` before that
   step's update), which ``p`` and ``h_temp`` read when it is next active; the dense rule has
   ``h_old = h`` there.

3 and 4 act when features leave ``E``: with ``ε > 0``, and at an episode's end (``γ_t = 0``),
where every trace falls to 0 and ``E`` empties (the code has one constant ``γ``). Without
episode ends, with ``ε = 0`` and a bound that never acts, the two give the same predictions.

Here ``E`` is a buffer of ``capacity`` feature indices; the step gathers the rows of ``E`` and
of ``A`` from a table of per-feature values and scatters them back, so its work grows with
``capacity + k``. The set's size is about ``k ln ε / ln(γλ)`` for ``k`` active features per
step; a ``capacity`` under the set's size overflows: ``state.overflowed`` becomes true and every
prediction and TD error from that step on is NaN, which the engine reports as a divergence at
that step.

Differences from the code, as for :class:`~metastep.td.SwiftTD`: the per-step discount ``γ_t``
of a :class:`~metastep.td.TDTarget` where the code has one constant ``γ``, and the floor on the
step sizes (``floor="applied"``: ``α ≥ α_min``; ``floor="code"``: the code's test, which never
acts). Within a step the code updates features one after another; the rules above do not couple
them except through the sums, so the order of ``E`` and of the active indices changes nothing
but rounding. Active indices must be distinct and in ``[0, num_features)``:
``ms.run_arrays`` checks them; inside a compiled step an index out of range reads zeros and
writes nothing.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from metastep import _checks
from metastep._learner_protocol import StepOutput
from metastep._structure import recorded
from metastep.td.learner import reward_and_discount, value_metrics
from metastep.td.swifttd import SwiftTD

# The columns of the per-feature table: w, z, z_δ, Δw, h, h_old, h_temp, z̄, p, β and α̂.
COLUMNS = ("weights", "trace", "trace_increment", "weight_change", "meta_trace", "old_meta_trace",
           "next_meta_trace", "step_size_trace", "meta_gradient_trace", "log_step_size",
           "last_step_size")
W, Z, BETA = (COLUMNS.index(name) for name in ("weights", "trace", "log_step_size"))


def columns_of(rows: jax.Array) -> dict[str, jax.Array]:
    return {name: rows[:, i] for i, name in enumerate(COLUMNS)}


def rows_of(columns: dict[str, jax.Array]) -> jax.Array:
    return jnp.stack([columns[name] for name in COLUMNS], axis=1)


class SparseFeatures(NamedTuple):
    """The active features of one step (or of ``T`` steps, with a leading axis): their indices
    and values. Binary features may be given as the indices alone."""

    indices: jax.Array  # int [k], distinct, in [0, num_features)
    values: jax.Array  # float [k]


class SparseSwiftTDState(NamedTuple):
    table: jax.Array  # [num_features, len(COLUMNS)]: per feature w, z, z_δ, Δw, h, h_old,
    # h_temp, z̄, p, β and α̂ (the step size of its last activation)
    eligible: jax.Array  # int32 [capacity]: the features of E, then num_features (unused)
    num_eligible: jax.Array  # int32: the size of E
    overflowed: jax.Array  # bool: E outgrew its capacity at some step
    previous_prediction: jax.Array  # v_old
    prediction_change: jax.Array  # v_δ

    @property
    def weights(self) -> jax.Array:
        return self.table[..., W]

    @property
    def trace(self) -> jax.Array:
        return self.table[..., Z]

    @property
    def log_step_size(self) -> jax.Array:
        return self.table[..., BETA]


def active_features(x: Any) -> tuple[jax.Array, jax.Array | None]:
    """``(indices, values or None)`` of one step's ``x``: an int array of the indices of the
    binary features that are 1, or :class:`SparseFeatures`."""
    indices, values = (x.indices, x.values) if isinstance(x, SparseFeatures) else (x, None)
    if not jnp.issubdtype(jnp.result_type(indices), jnp.integer):
        raise ValueError("`x` must hold the integer indices of the active features (or be a "
                         f"SparseFeatures), got dtype {jnp.result_type(indices)}")
    if jnp.ndim(indices) != 1:
        raise ValueError(f"`x` must be one step's indices [k], got shape {jnp.shape(indices)}")
    if values is not None:
        _checks.check_real("x.values", values)
        if jnp.shape(values) != jnp.shape(indices):
            raise ValueError(f"`x.values` must have the shape of `x.indices` "
                             f"{jnp.shape(indices)}, got {jnp.shape(values)}")
    return indices, values


@recorded
class SparseSwiftTD(SwiftTD):
    """SwiftTD on sparse features (the authors' sparse code; see the module docstring).

    Args:
      num_features, discount, trace_decay, initial_step_size, meta_step_size, step_size_bound,
        step_size_decay, min_step_size, floor: as for :class:`~metastep.td.SwiftTD`.
      trace_cutoff: ``ε`` ≥ 0: a feature leaves the eligible set when its trace falls to ``ε``
        times the step size of its last activation (the code's ``epsilon``; its README uses
        ``1e-5``).
      capacity: the most features that the eligible set holds (default ``num_features``: it
        cannot overflow); smaller is faster (see the module docstring).
    """

    def __init__(self, num_features: int, discount: float, trace_decay: float,
                 initial_step_size: float = 1e-2, meta_step_size: float = 1e-3,
                 step_size_bound: float = 0.1, step_size_decay: float = 0.999,
                 min_step_size: float = 1e-10, trace_cutoff: float = 1e-5,
                 capacity: int | None = None, floor: str = "applied"):
        super().__init__(num_features, discount, trace_decay, initial_step_size, meta_step_size,
                         step_size_bound, step_size_decay, min_step_size, floor)
        _checks.check_non_negative("trace_cutoff", trace_cutoff)
        capacity = num_features if capacity is None else capacity
        _checks.check_count("capacity", capacity)
        if capacity > num_features:
            raise ValueError(f"`capacity` must be at most num_features ({num_features}), "
                             f"got {capacity}")
        self.trace_cutoff = trace_cutoff
        self.capacity = capacity

    def init(self, key: jax.Array | None = None, dtype: Any = None) -> SparseSwiftTDState:
        """Zeros, ``β = ln α₀``, an empty eligible set; ``key`` is unused."""
        del key
        dtype = dtype or jnp.result_type(float)
        _checks.check_float_dtype("dtype", dtype)
        table = jnp.zeros((self.num_features, len(COLUMNS)), dtype).at[:, BETA].set(
            jnp.log(jnp.asarray(self.initial_step_size, dtype)))
        zero = jnp.zeros((), dtype)
        return SparseSwiftTDState(
            table, jnp.full((self.capacity,), self.num_features, jnp.int32),
            jnp.zeros((), jnp.int32), jnp.zeros((), bool), zero, zero)

    def check_inputs(self, xs: Any, name: str) -> Any:
        """``ms.run_arrays``'s check of ``T`` steps of active features (int ``[T, k]``, or
        :class:`SparseFeatures` of two ``[T, k]`` arrays): integers in range, distinct within a
        step, finite values. Returns them as arrays."""
        indices, values = (xs.indices, xs.values) if isinstance(xs, SparseFeatures) else (xs,
                                                                                         None)
        indices = np.asarray(indices)
        if not np.issubdtype(indices.dtype, np.integer) or indices.ndim != 2:
            raise ValueError(f"`{name}` must be integer indices [T, k] of the active features "
                             f"(or a SparseFeatures), got {indices.dtype} {indices.shape}")
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_features):
            raise ValueError(f"`{name}` holds feature indices outside [0, {self.num_features})")
        ordered = np.sort(indices, axis=1)
        if np.any(ordered[:, 1:] == ordered[:, :-1]):
            row = int(np.argmax(np.any(ordered[:, 1:] == ordered[:, :-1], axis=1)))
            raise ValueError(f"`{name}` repeats a feature index within a step (first at row "
                             f"{row})")
        if values is None:
            return jnp.asarray(indices, jnp.int32)
        values = np.asarray(values, float)
        if values.shape != indices.shape:
            raise ValueError(f"`{name}.values` must have the shape of `{name}.indices` "
                             f"{indices.shape}, got {values.shape}")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"`{name}.values` holds non-finite values")
        return SparseFeatures(jnp.asarray(indices, jnp.int32), jnp.asarray(values))

    def step(self, state: SparseSwiftTDState, x: Any, y: Any):
        """Predict ``v(x_t) = Σ_A w_i x_i``, then learn (see the module docstring)."""
        indices, values = active_features(x)
        reward, discount, value = reward_and_discount(y, self.discount)
        dtype = state.table.dtype
        values = (jnp.ones(indices.shape, dtype) if values is None else values.astype(dtype))
        table = state.table
        prediction = jnp.sum(table.at[indices, W].get(mode="fill", fill_value=0) * values)
        td_error = (jnp.asarray(reward, dtype) + jnp.asarray(discount, dtype) * prediction
                    - state.previous_prediction)
        table, eligible, num_eligible = self._eligible_half(
            state, table, td_error, jnp.asarray(discount, dtype) * self.trace_decay)
        table, prediction_change, joining = self._active_half(table, indices, values)
        eligible, num_eligible, overflow = join(eligible, num_eligible, indices, joining,
                                                self.num_features)
        overflowed = state.overflowed | overflow
        new_state = SparseSwiftTDState(table, eligible, num_eligible, overflowed, prediction,
                                       prediction_change)
        # An overflowed set has lost features: what follows is wrong, and says so.
        shown, shown_error = (jnp.where(overflowed, jnp.nan, a) for a in (prediction, td_error))
        return new_state, StepOutput(shown, shown_error, self.step_sizes(new_state),
                                     value_metrics(shown, value))

    def _eligible_half(self, state, table, td_error, decay):
        """The first half of the step over the features of ``E``, and the cut-off."""
        valid = jnp.arange(self.capacity) < state.num_eligible
        rows = table.at[state.eligible].get(mode="fill", fill_value=0)
        col = columns_of(rows)
        change = state.prediction_change
        weight_change = td_error * col["trace"] - col["trace_increment"] * change
        log_step_size = self._bounded(
            col["log_step_size"] + self.meta_step_size * jnp.exp(-col["log_step_size"])
            * (td_error - change) * col["meta_gradient_trace"])
        meta_trace = (col["next_meta_trace"] + td_error * col["step_size_trace"]
                      - col["trace_increment"] * change)
        trace = decay * col["trace"]
        dropped = trace <= col["last_step_size"] * self.trace_cutoff
        kept = ~dropped
        rows = rows_of({
            **col, "weights": col["weights"] + weight_change, "trace": jnp.where(kept, trace, 0),
            "trace_increment": jnp.zeros_like(trace),
            "weight_change": jnp.where(kept, weight_change, 0), "meta_trace": meta_trace,
            "old_meta_trace": col["meta_trace"], "next_meta_trace": meta_trace,
            "step_size_trace": jnp.where(kept, decay * col["step_size_trace"], 0),
            "meta_gradient_trace": jnp.where(kept, decay * col["meta_gradient_trace"], 0),
            "log_step_size": log_step_size})
        table = table.at[jnp.where(valid, state.eligible, self.num_features)].set(
            rows, mode="drop")
        keep = valid & kept
        return (table,) + compact(state.eligible, keep, self.num_features)

    def _active_half(self, table, indices, values):
        """The second half of the step over the active features; also which of them join
        ``E`` (their trace was 0)."""
        col = columns_of(table.at[indices].get(mode="fill", fill_value=0))
        bound = self.step_size_bound
        step_size = jnp.exp(col["log_step_size"])
        rate = jnp.sum(step_size * values * values)
        overshoot = rate > bound
        multiplier = jnp.where(overshoot, bound / jnp.where(overshoot, rate, 1), 1)
        trace_dot_x = jnp.sum(col["trace"] * values)
        prediction_change = jnp.sum(col["weight_change"] * values)
        last_step_size = multiplier * step_size
        increment = last_step_size * values
        zero = jnp.zeros_like(step_size)
        meta_trace = jnp.where(overshoot, zero, col["meta_trace"])
        old_meta_trace = jnp.where(overshoot, zero, col["old_meta_trace"])
        step_size_trace = jnp.where(overshoot, zero, col["step_size_trace"])
        log_step_size = jnp.where(overshoot, col["log_step_size"] + jnp.log(
            jnp.asarray(self.step_size_decay, table.dtype)) * values * values,
            col["log_step_size"])
        trace = col["trace"] + increment * (1 - trace_dot_x)
        rows = rows_of({
            **col, "trace": trace, "trace_increment": increment, "meta_trace": meta_trace,
            "old_meta_trace": old_meta_trace,
            "next_meta_trace": meta_trace - old_meta_trace * values * (trace - increment)
            - meta_trace * increment * values,
            "step_size_trace": step_size_trace + increment * (
                1 - trace_dot_x - step_size_trace * values),
            "meta_gradient_trace": col["meta_gradient_trace"] + old_meta_trace * values,
            "log_step_size": log_step_size, "last_step_size": last_step_size})
        return table.at[indices].set(rows, mode="drop"), prediction_change, col["trace"] == 0


def compact(eligible, keep, num_features):
    """``E`` without the features that left it, in their order; unused slots hold
    ``num_features``."""
    capacity = eligible.shape[0]
    slots = jnp.where(keep, jnp.cumsum(keep) - 1, capacity)
    kept = jnp.full_like(eligible, num_features).at[slots].set(eligible, mode="drop")
    return kept, jnp.sum(keep, dtype=jnp.int32)


def join(eligible, num_eligible, indices, joining, num_features):
    """``E`` with the active features whose trace was 0 appended; and whether it overflowed."""
    capacity = eligible.shape[0]
    joining = joining & (indices >= 0) & (indices < num_features)
    slots = jnp.where(joining, num_eligible + jnp.cumsum(joining) - 1, capacity)
    total = num_eligible + jnp.sum(joining, dtype=jnp.int32)
    eligible = eligible.at[slots].set(indices.astype(eligible.dtype), mode="drop")
    return eligible, jnp.minimum(total, capacity), total > capacity
