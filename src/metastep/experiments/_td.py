"""What the TD experiments on the 19-state random walk share: the walk's constants, TD(λ) and the
meta methods with their grids, and the side-by-side learner that runs them all on one stream.

Every method runs in **one** compiled program (:class:`SideBySide`): a lane holds one λ and one
position ``k`` on the grids, and at ``k`` runs TD(λ) at the k-th α and each meta method at its
k-th θ, on the same stream (compiling one program per method would cost more than a smoke run).
A method whose TD error diverges is marked diverged (its numbers NaN from that record on); the
others go on.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import metastep as ms
from metastep._learner_protocol import DEFAULT_DIVERGENCE_THRESHOLD, StepOutput, diverges
from metastep.experiments._base import SweptMethod
from metastep.experiments._roster import centred_grid, library_default
from metastep.problems import Problem

NUM_STATES = 19
DISCOUNT = 1.0
STEP_SIZE_DECADES = (-2.0, 0.0)  # TD(λ)'s α from 0.01 to 1 (the book's axis is α in [0, 1])
META_DECADES = 2.0  # each meta step size from its default / 100 to its default × 100


def meta_grid(function, points: int) -> tuple[float, ...]:
    """``points`` meta step sizes (odd), ±``META_DECADES`` around ``function``'s default."""
    spacing = 2 * META_DECADES / (points - 1)
    return centred_grid(library_default(function, "meta_step_size"), spacing, points)


def methods(points: int) -> dict[str, SweptMethod]:
    """TD(λ) and the TD meta methods, each over ``points`` values (odd: the defaults on the
    grid): TD(λ) over α, TIDBD (both forms), AutoTIDBD and SwiftTD over θ."""
    step_sizes = tuple(np.logspace(*STEP_SIZE_DECADES, points).tolist())
    tidbd, autotidbd, swifttd = ms.td.tidbd, ms.td.autotidbd, ms.td.SwiftTD
    swift_constants = {name: library_default(swifttd, name) for name in (
        "initial_step_size", "step_size_bound", "step_size_decay", "min_step_size")}
    return {method.name: method for method in (
        SweptMethod("td", "TD(λ)", "step_size", "α", step_sizes, ms.sgd, color="black"),
        SweptMethod("tidbd-semi", "TIDBD (semi-gradient)", "meta_step_size", "θ",
                    meta_grid(tidbd, points), tidbd,
                    {"initial_step_size": library_default(tidbd, "initial_step_size"),
                     "form": "semi_gradient"}, color="tab:blue"),
        SweptMethod("tidbd-full", "TIDBD (full gradient)", "meta_step_size", "θ",
                    meta_grid(tidbd, points), tidbd,
                    {"initial_step_size": library_default(tidbd, "initial_step_size"),
                     "form": "full_gradient"}, color="tab:cyan", linestyle="--"),
        SweptMethod("autotidbd", "AutoTIDBD", "meta_step_size", "θ",
                    meta_grid(autotidbd, points), autotidbd,
                    {"initial_step_size": library_default(autotidbd, "initial_step_size"),
                     "tau": library_default(autotidbd, "tau"), "form": "full_gradient",
                     "variant": "paper"},
                    color="tab:orange"),
        # A learner of its own: built by td_learner from the constants, not by transformation.
        SweptMethod("swifttd", "SwiftTD", "meta_step_size", "θ", meta_grid(swifttd, points),
                    swifttd, swift_constants, color="tab:red"),
    )}


def default_position(method: SweptMethod) -> int:
    """Where the library's default sits on a meta method's grid: the middle."""
    return (len(method.grid) - 1) // 2


def shown_values(errors: pd.Series, methods: dict[str, SweptMethod],
                 reference: str = "td") -> dict[str, float]:
    """The configuration drawn per method in the figures: ``reference`` (TD(λ), or a tuned
    baseline) at its least error (``errors``: its mean error per grid value; the grid's first
    value if every one diverged), every other method at its library default."""
    best = float(errors.idxmin()) if errors.notna().any() else methods[reference].grid[0]
    return {name: best if name == reference else method.grid[default_position(method)]
            for name, method in methods.items()}


def rows_of(table: pd.DataFrame, name: str, value: float) -> pd.DataFrame:
    """The rows of method ``name`` at grid value ``value`` (tables hold floats read back)."""
    return table[(table["method"] == name) & np.isclose(table["value"], value)]


def label(method: SweptMethod, value: float, reference: str = "td") -> str:
    which = "best" if method.name == reference else "default"
    return f"{method.title}, {which} {method.symbol} = {value:.3g}"


def td_learner(method: SweptMethod, value: Any, trace_decay: Any,
               num_features: int = NUM_STATES, discount: float = DISCOUNT):
    """The learner of ``method`` at ``value`` of its swept parameter, with ``λ = trace_decay``
    (by default on the walk's features and discount)."""
    if method.name == "swifttd":
        return ms.td.SwiftTD(num_features, discount, trace_decay, meta_step_size=value,
                             **method.constants)
    return ms.td.TDLearner(method.transformation(value), num_features, discount, trace_decay)


class SideBySideState(NamedTuple):
    learners: dict[str, Any]  # method -> its learner's state
    diverged_at: dict[str, jax.Array]  # method -> int32 step count at divergence, 0 if healthy
    step: jax.Array  # int32 steps done


class SideBySide:
    """Every method at position ``position`` of its grid, each with its own weights, on one
    stream. The error the engine watches is 0, so that one method's divergence (its TD error's
    square past ``divergence_threshold``, the engine's unless a subclass knows its problem's
    scale) stops only that method's numbers.

    What it records is set by two hooks, each per method and NaN once the method diverged:
    :meth:`method_records` (arrays of the learner's state at the end of a bin, recorded as
    ``"<method>/<key>"``) and :meth:`step_metrics` (per-step numbers the engine averages over a
    bin; :meth:`bin_records` may transform the averages)."""

    num_features = NUM_STATES  # a subclass for another problem sets its own
    discount = DISCOUNT
    divergence_threshold = DEFAULT_DIVERGENCE_THRESHOLD

    def __init__(self, methods: dict[str, SweptMethod], position: Any, trace_decay: Any):
        index = jnp.asarray(position).astype(jnp.int32)  # the engine passes grid values as floats
        self.learners = {name: td_learner(method, jnp.asarray(method.grid)[index], trace_decay,
                                          self.num_features, self.discount)
                         for name, method in methods.items()}

    def init(self, key: jax.Array) -> SideBySideState:
        zero = jnp.zeros((), jnp.int32)
        return SideBySideState({name: learner.init(key) for name, learner in self.learners.items()},
                               {name: zero for name in self.learners}, zero)

    def step(self, state: SideBySideState, x: jax.Array, y: Any):
        step = state.step + 1
        learners, diverged_at, metrics = {}, {}, {}
        for name, learner in self.learners.items():
            learners[name], output = learner.step(state.learners[name], x, y)
            previous = state.diverged_at[name]
            diverged_at[name] = jnp.where(
                (previous == 0) & diverges(jnp.square(output.error), self.divergence_threshold),
                step, previous)
            for key, value in self.step_metrics(output, y).items():
                metrics[f"{name}/{key}"] = jnp.where(diverged_at[name] == 0, value, jnp.nan)
        zero = jnp.zeros((), x.dtype)
        return SideBySideState(learners, diverged_at, step), StepOutput(zero, zero, zero, metrics)

    def step_metrics(self, output: StepOutput, y: Any) -> dict[str, jax.Array]:
        """Per-step numbers of one method's step (none here)."""
        del output, y
        return {}

    def bin_records(self, means: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """The bin's records from its averages of :meth:`step_metrics` (unchanged here)."""
        return means

    def method_records(self, name: str, learner: Any, learner_state: Any) -> dict[str, Any]:
        """What to record of one method at the end of a bin: the meta methods' step sizes."""
        return {} if name == "td" else {"step_sizes": learner.step_sizes(learner_state)}

    def record(self, state: SideBySideState) -> dict[str, jax.Array]:
        records = {}
        for name, learner in self.learners.items():
            healthy = state.diverged_at[name] == 0
            for key, value in self.method_records(name, learner, state.learners[name]).items():
                records[f"{name}/{key}"] = jnp.where(healthy, value, jnp.nan)
        return records

    def check_problem(self, problem: Problem) -> None:
        for learner in self.learners.values():
            learner.check_problem(problem)


# ``make_learner`` per side-by-side class and set of methods: ms.sweep caches its compiled
# program by that function object, so a shard computed again (a rerun, a test) reuses it.
LEARNER_FACTORIES: dict[str, Any] = {}


def learner_factory(side_by_side: type[SideBySide], methods: dict[str, SweptMethod]):
    """``make_learner(trace_decay, position)`` for ``ms.sweep``, one per class and set of
    methods (the same names, grids and constants)."""
    configs = [method.config() for method in methods.values()]  # configs hold lists: text
    key = f"{side_by_side.__module__}.{side_by_side.__qualname__}: {configs!r}"

    def make_learner(trace_decay, position):
        return side_by_side(methods, position, trace_decay)

    return LEARNER_FACTORIES.setdefault(key, make_learner)


def sweep_side_by_side(side_by_side: type[SideBySide], problem: Problem,
                       methods: dict[str, SweptMethod], trace_decays: list[float],
                       seeds: list[int], steps: int, record_every: int):
    """Every method side by side over λ × grid position × ``seeds``, one ``ms.sweep``.

    Returns the sweep's result, per method the columns every TD table starts with (``method``,
    ``trace_decay``, ``position``, ``value``, ``seed``, ``step``; one row per lane and record,
    in the order of ``result.records[...].reshape(-1)``) and each row's record index."""
    points = len(next(iter(methods.values())).grid)
    result = ms.sweep(learner_factory(side_by_side, methods), problem,
                      {"trace_decay": list(trace_decays), "position": list(range(points))},
                      seeds=seeds, steps=steps, record_every=record_every)
    config, seed, record = np.indices(result.squared_error.shape).reshape(3, -1)
    position = result.grid["position"][config].astype(int)
    leading = {name: {"method": name, "trace_decay": result.grid["trace_decay"][config],
                      "position": position, "value": np.asarray(method.grid)[position],
                      "seed": result.seeds[seed], "step": result.steps[record]}
               for name, method in methods.items()}
    return result, leading, record


def side_by_side_table(side_by_side: type[SideBySide], problem: Problem,
                       methods: dict[str, SweptMethod], trace_decay: float, seeds: list[int],
                       steps: int, record_every: int, error: str, vector: str,
                       columns: list[str]) -> pd.DataFrame:
    """One row per (method, grid value, seed, record): the leading columns of
    :func:`sweep_side_by_side`, the per-bin record ``error``, the vector record ``vector`` as
    ``columns`` (NaN for a method that does not record it, e.g. TD(λ)) and ``diverged``."""
    result, leading, _ = sweep_side_by_side(side_by_side, problem, methods, [trace_decay],
                                            seeds, steps, record_every)
    tables = []
    for name in methods:
        errors = result.records[f"{name}/{error}"].reshape(-1).astype(np.float64)
        values = result.records.get(f"{name}/{vector}")
        values = (np.full((len(errors), len(columns)), np.nan) if values is None
                  else values.reshape(-1, len(columns)).astype(np.float64))
        tables.append(pd.DataFrame({**leading[name], error: errors,
                                    **dict(zip(columns, values.T)),
                                    "diverged": np.isnan(errors)}))
    return pd.concat(tables, ignore_index=True)
