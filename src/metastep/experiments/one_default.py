"""one-default: one method at one setting of its hyperparameters, on every problem, untuned.

Is there a meta-learned step size whose library default, used unchanged, meets every bar, on
linear and deep learners alike, whatever the targets' scale? The candidate, normalized IDBD
(``ms.normalized_idbd``; also over plain gradients), IDBD, Autostep, MetaOptimize and Mechanic
(around ``optax.adam``) run at their defaults; Adam is tuned per row (a grid of its step size,
reported at its best point).

The rows (problems; the bars are in :data:`EXPLANATION`), each a stream at one scale of its
targets (× 0.1 and × 10 besides × 1 where the targets are real numbers; errors divided by ``s²``):
weight flipping and noisy tracking (``talk``, ``paper``) with ``ms.LinearLearner``;
slowly-changing regression (``redraw``, ``flip_one``), permuted digits, label-permuted digits and
permuted Fashion-MNIST with the continual roster's
:class:`~metastep.experiments._roster.RosterLearner` (an MLP per method, online, batch 1).

Every method of a row trains in one lane on the same stream (a paired comparison); a stream's
scales are a grid axis of one ``ms.sweep`` (one compiled program per stream and group of
methods), and Adam's grid is centred at ``centre × s`` (its best step size moves with the data's
scale: that is the tuning the others go without). A diverged lane gives NaN and is reported as
diverged, never averaged over the surviving seeds.

Tables: one row per (row, method, grid point, seed, record): ``row``, ``scale``, ``method``,
``family``, ``parameter``, ``value``, ``point``, ``default``, ``seed``, ``step``, the metric
(``squared_error`` or ``accuracy``; bin means), ``diverged``, ``log10_step_size:<array>`` and,
for noisy tracking, ``optimal_mse``; deep rows add ``task``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import metastep as ms
from metastep.experiments import permuted_fashion
from metastep.experiments._base import Budget, Experiment, Shard, SweptMethod, call_parameters
from metastep.experiments._continual import STEP_SIZE_COLUMN, progress_chunk
from metastep.experiments._one_default_figures import (
    accuracy_per_task_figure,
    candidate_step_size_figure,
    margin_figure,
)
from metastep.experiments._plasticity import better
from metastep.experiments._roster import FAMILY, RosterLearner, curvature, roster

# ---------------------------------------------------------------------------------------------
# Every knob

CANDIDATE = "normalized-idbd"
TUNED = "adam"  # tuned per row; every other column runs at its default
REFERENCE = "mechanic"  # the learning-rate-free peer that deep rows must also beat
# The columns: the candidate, its form over plain gradients, the peers at their defaults.
METHODS = (CANDIDATE, "normalized-idbd-plain", "idbd", "autostep", "metaoptimize", TUNED,
           REFERENCE)
SCALES = (1.0, 0.1, 10.0)  # the targets' scales of the rows with real-valued targets
SCALE_SUFFIX = {1.0: "", 0.1: "-scale-1e-1", 10.0: "-scale-1e1"}  # row names: no dots
ADAM_SPACING = 0.5  # decades between Adam's grid points
WEIGHT_FLIPPING_BAR = 1.45  # tuned IDBD 1.51, the oracle 1.373 (weight-flipping experiment)
NOISY_TRACKING_BAR = 1.02  # within 2% of the Kalman optimum
MEASURED_FRACTION = 1 / 3  # weight flipping: Sutton's last 10,000 of 30,000 examples
LINEAR_RECORDS = 30
# Adam's grid centre per problem at scale 1 (× the row's scale): its usual best region there.
ADAM_CENTRES = {"weight-flipping": 10**-1.5, "noisy-tracking": 10**-0.5,
                "slowly-changing-regression": 10**-2.5, "digits": 1e-3, "fashion": 1e-3}
STEP_SIZE_ROW = "label-permuted-digits"  # the candidate's step sizes over time, in a figure


@dataclass(frozen=True)
class Stream:
    """One problem of the table, at each of its ``scales``: one row per scale.

    Attributes:
      name: the row name at scale 1 (others add :data:`SCALE_SUFFIX`).
      title: what it is, for the figure and the summary.
      problem: ``functools.partial`` of a problem builder, called when a shard computes.
      measure: how a run becomes a number: ``"run"`` (the metric's mean over the run),
        ``"last_third"`` (the error's mean over the last third) or ``"optimal_ratio"`` (the
        error over the run divided by the stream's ``optimal_mse``).
      metric: ``"squared_error"`` or ``"accuracy"``.
      adam_centre: the centre of Adam's grid at scale 1.
      scales: the targets' scales.
      sizes: the network's layer sizes (deep rows), or ``(num_features,)`` (linear rows).
      linear: whether the learner is ``ms.LinearLearner`` (else an MLP with ReLU units).
      switch_every: a deep stream's task length, or noisy tracking's regime length.
      steps, seeds: the run's length and number of seeds.
    """

    name: str
    title: str
    problem: functools.partial
    measure: str
    metric: str
    adam_centre: float
    scales: tuple[float, ...]
    sizes: tuple[int, ...]
    linear: bool
    switch_every: int
    steps: int
    seeds: int

    @property
    def bar(self) -> str:
        if self.measure == "last_third":
            return f"MSE / s² ≤ {WEIGHT_FLIPPING_BAR}"
        if self.measure == "optimal_ratio":
            return f"MSE / (s² × Kalman optimum's MSE) ≤ {NOISY_TRACKING_BAR}"
        return "beats tuned Adam and Mechanic (paired difference > 0)"

    def row(self, scale: float) -> str:
        return self.name + SCALE_SUFFIX[scale]

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "problem": call_parameters(self.problem),
                "scales": list(self.scales), "measure": self.measure,
                "learner": "LinearLearner" if self.linear else
                {"mlp": list(self.sizes), "activation": "relu"},
                "adam_centre_at_scale_1": self.adam_centre}


def streams(budget: Budget) -> list[Stream]:
    """The streams of the table at ``budget`` (permuted Fashion only where its data are)."""
    settings, problems = budget.settings, ms.problems
    linear, scr, fashion = (settings[key] for key in
                            ("linear", "slowly_changing_regression", "fashion"))
    digits_sizes = (64, *settings["hidden"], 10)
    result = [
        Stream("weight-flipping", "Weight flipping (Sutton 1992), LinearLearner",
               functools.partial(problems.weight_flipping), "last_third", "squared_error",
               ADAM_CENTRES["weight-flipping"], SCALES, (20,), True, switch_every=1,
               steps=linear["weight_flipping_steps"], seeds=linear["weight_flipping_seeds"]),
        *(Stream(f"noisy-tracking-{preset}", f"Noisy tracking ({preset}), LinearLearner",
                 functools.partial(problems.noisy_tracking, preset, linear["regime_length"]),
                 "optimal_ratio", "squared_error", ADAM_CENTRES["noisy-tracking"], SCALES,
                 (1,), True, switch_every=linear["regime_length"],
                 steps=linear["noisy_tracking_steps"], seeds=linear["noisy_tracking_seeds"])
          for preset in ("talk", "paper")),
        *(Stream(f"slowly-changing-regression-{variant.replace('_', '-')}",
                 f"Slowly-changing regression ({variant}), MLP 21-5-1",
                 functools.partial(problems.slowly_changing_regression, variant,
                                   slow_period=scr["switch_every"]),
                 "run", "squared_error", ADAM_CENTRES["slowly-changing-regression"], SCALES,
                 (21, 5, 1), False, switch_every=scr["switch_every"], steps=scr["steps"],
                 seeds=budget.seeds)
          for variant in ("redraw", "flip_one")),
        *(Stream(name, f"{title}, MLP {'-'.join(map(str, digits_sizes))}",
                 functools.partial(builder, settings["switch_every"][key]), "run", "accuracy",
                 ADAM_CENTRES["digits"], (1.0,), digits_sizes, False,
                 switch_every=settings["switch_every"][key], steps=budget.steps,
                 seeds=budget.seeds)
          for name, title, builder, key in (
              ("permuted-digits", "Permuted digits", problems.permuted_digits, "permuted"),
              ("label-permuted-digits", "Label-permuted digits",
               problems.label_permuted_digits, "label_permuted"))),
    ]
    if permuted_fashion.missing_data() is None:
        sizes = (784, *fashion["hidden"], 10)
        result.append(Stream(
            "permuted-fashion", f"Permuted Fashion-MNIST, MLP {'-'.join(map(str, sizes))}",
            functools.partial(problems.permuted_fashion, fashion["switch_every"], split="train"),
            "run", "accuracy", ADAM_CENTRES["fashion"], (1.0,), sizes, False,
            switch_every=fashion["switch_every"], steps=fashion["steps"],
            seeds=fashion["seeds"]))
    only = settings.get("streams")  # a budget may run some streams only (smoke: the pipeline)
    return [stream for stream in result if only is None or stream.name in only]


# ---------------------------------------------------------------------------------------------
# Shards: one sweep per stream, group of methods and block of seeds


class LinearRoster(RosterLearner):
    """:class:`RosterLearner` with ``ms.LinearLearner`` in place of the networks: every method
    trains its own linear unit (weights from 0) on the same stream."""

    def __init__(self, num_features: int, methods: Sequence[SweptMethod], values: dict):
        self.learners = {method.name: ms.LinearLearner(method.transformation(values[method.name]),
                                                       num_features)
                         for method in methods}
        self.with_step_sizes = [method.name for method in methods
                                if FAMILY[method.name] != "free"]
        self.num_features = num_features
        self.layer_names = ("weights",)
        self.metrics = ("squared_error",)


@dataclass(frozen=True)
class Group:
    """The methods that one program trains side by side on a stream: each method's value is
    ``grid[point]`` (a grid of ``points`` values) or its only value; Adam's is × the scale."""

    stream: Stream
    methods: tuple[SweptMethod, ...]

    @property
    def points(self) -> int:  # the longest grid
        return max(len(method.grid) for method in self.methods)

    @functools.cached_property
    def make_learner(self):
        """One function per group object: the shards of its seed blocks compile once."""
        stream, methods = self.stream, self.methods
        model = None if stream.linear else ms.deep.mlp(stream.sizes)
        loss = "squared" if stream.metric == "squared_error" else "cross_entropy"

        def make_learner(point, scale=1.0):
            index = jnp.asarray(point).astype(jnp.int32)
            values = {method.name: (jnp.asarray(method.grid)[index] if len(method.grid) > 1
                                    else method.grid[0]) * (scale if method.name == TUNED else 1)
                      for method in methods}
            if stream.linear:
                return LinearRoster(stream.sizes[0], methods, values)
            return RosterLearner(model, loss, methods, values)

        return make_learner

    @functools.cached_property
    def problem(self):
        """The stream's problem, or with several scales a function of ``scale`` (one function
        per group object, as ``make_learner``)."""
        base = self.stream.problem()
        if self.stream.scales == (1.0,):
            return base

        def problem(scale):
            return ms.problems.scaled_targets(base, scale)

        return problem

    def config(self) -> dict[str, Any]:
        return {"stream": self.stream.config(),
                "methods": {method.name: {"family": FAMILY[method.name],
                                          method.parameter: list(method.grid),
                                          "curvature": curvature(method),
                                          "defaults": signature_defaults(method.optimizer)}
                            for method in self.methods}}


def signature_defaults(function) -> dict[str, Any]:
    """The settings in ``function``'s signature (a ``functools.partial``'s arguments included):
    what a "default" column ran with, which a later library version may change. Numbers and
    strings as they are, other values in words."""
    call = function if isinstance(function, functools.partial) else functools.partial(function)
    bound = inspect.signature(call.func).bind_partial(*call.args, **call.keywords)
    bound.apply_defaults()
    return {name: value if isinstance(value, (bool, int, float, str, type(None))) else repr(value)
            for name, value in bound.arguments.items()}


def columns(budget: Budget) -> tuple[str, ...]:
    """The methods a budget runs: :data:`METHODS`, or its ``methods`` setting (which keeps the
    candidate and the two references, in :data:`METHODS`' order)."""
    chosen = set(budget.settings.get("methods", METHODS)) | {CANDIDATE, TUNED, REFERENCE}
    return tuple(method for method in METHODS if method in chosen)


def groups(stream: Stream, adam_points: int,
           methods: Sequence[str] = METHODS) -> list[tuple[str, Group]]:
    """The groups of a stream's ``methods``, named: all in one program where Adam has one grid
    point or the learner is linear (cheap), else Adam alone (its grid) and the defaults (one
    lane per seed and scale, not one per Adam grid point)."""
    every = tuple(method if method.name != TUNED else
                  roster([TUNED], adam_points, {TUNED: stream.adam_centre})[0]
                  for method in roster(methods, 1, {}))
    if stream.linear or adam_points == 1:
        return [("all", Group(stream, every))]
    return [("tuned", Group(stream, tuple(m for m in every if m.name == TUNED))),
            ("defaults", Group(stream, tuple(m for m in every if m.name != TUNED)))]


def group_sweep(group: Group, seeds: Sequence[int], steps: int,
                record_every: int) -> pd.DataFrame:
    """The group's methods on its stream × scales × ``seeds``: the tidy table (module doc)."""
    grid = {"point": list(range(group.points))}
    if group.stream.scales != (1.0,):
        grid["scale"] = list(group.stream.scales)
    result = ms.sweep(group.make_learner, group.problem, grid, seeds=list(seeds), steps=steps,
                      record_every=record_every, chunk_steps=progress_chunk(steps, record_every))
    return sweep_rows(result, group)


def sweep_rows(result, group: Group) -> pd.DataFrame:
    """The tidy table of a group's sweep; a method with one value keeps the lanes of grid
    point 0 only (the other points' lanes repeat it)."""
    stream, probe = group.stream, group.make_learner(0)
    num_configs, num_seeds, num_records = result.squared_error.shape
    config, seed, record = np.indices((num_configs, num_seeds, num_records)).reshape(3, -1)
    point = result.grid["point"].astype(int)[config]
    scale = (result.grid["scale"][config] if "scale" in result.grid
             else np.ones(len(config)))
    info = {name: result.info[name].reshape(-1) for name in ("task", "optimal_mse")
            if name in result.info}
    tables = []
    for method in group.methods:
        single = len(method.grid) == 1
        keep = point == 0 if single else np.ones(len(point), bool)
        value = np.asarray(method.grid)[0 if single else point]
        columns = {
            "row": [stream.row(s) for s in scale[keep]], "scale": scale[keep],
            "method": method.name, "family": FAMILY[method.name], "parameter": method.parameter,
            "value": (value * scale if method.name == TUNED else value
                      * np.ones(len(point)))[keep],
            "point": point[keep],
            "default": (single | (point == (len(method.grid) - 1) // 2))[keep],
            "seed": result.seeds[seed][keep], "step": result.steps[record][keep],
            **{name: values[keep] for name, values in info.items()},
        }
        for metric in probe.metrics:
            columns[metric] = result.records[f"{method.name}/{metric}"].reshape(-1)[keep]
        columns["diverged"] = np.isnan(columns[stream.metric])
        step_sizes = result.records.get(f"{method.name}/log10_step_size")
        for index, layer in enumerate(probe.layer_names):
            columns[STEP_SIZE_COLUMN + layer] = (
                np.nan if step_sizes is None else step_sizes[..., index].reshape(-1)[keep])
        tables.append(pd.DataFrame(columns))
    table = pd.concat(tables, ignore_index=True)
    floats = table.select_dtypes("floating").columns
    table[floats] = table[floats].astype(np.float64)
    return table


def record_every(stream: Stream, budget: Budget) -> int:
    """About :data:`LINEAR_RECORDS` records per linear run (none straddling a noisy-tracking
    regime), or the budget's records per task of a deep stream."""
    if stream.linear:
        period = None if stream.measure == "last_third" else stream.switch_every
        records = LINEAR_RECORDS if period is None else LINEAR_RECORDS // 3
        return budget.record_every(records, stream.steps, period=period)
    return budget.record_every(budget.settings["records_per_task"], stream.steps,
                               period=stream.switch_every)


def shards(budget: Budget) -> list[Shard]:
    """One shard per stream, group of methods and block of ``seeds_per_shard`` seeds."""
    result = []
    for stream in streams(budget):
        block = stream.seeds if stream.linear else budget.settings.get("seeds_per_shard",
                                                                          stream.seeds)
        every = record_every(stream, budget)
        points = budget.settings["linear_adam_points" if stream.linear else "adam_points"]
        for part, group in groups(stream, points, columns(budget)):
            lane_steps = group.points * len(stream.scales) * stream.steps
            for first in range(0, stream.seeds, block):
                seeds = list(range(first, min(first + block, stream.seeds)))
                result.append(Shard.of_call(
                    f"{stream.name}-{part}-seeds-{seeds[0]}-{seeds[-1]}", group_sweep,
                    work=len(group.methods) * lane_steps * len(seeds),
                    engine_lane_steps=lane_steps * len(seeds),
                    group=group, seeds=seeds, steps=stream.steps, record_every=every))
    return result


# ---------------------------------------------------------------------------------------------
# Summary


def stream_table(tables: dict[str, pd.DataFrame], stream: Stream) -> pd.DataFrame:
    """The stored shards of ``stream``, as one table."""
    prefix = f"{stream.name}-"
    names = [name for name in tables if name.startswith(prefix)
             and name[len(prefix):].split("-")[0] in ("all", "tuned", "defaults")]
    return pd.concat([tables[name] for name in names], ignore_index=True)


def run_values(table: pd.DataFrame, stream: Stream) -> pd.Series:
    """Each run's number, indexed by (row, method, value, seed): the stream's ``measure`` of
    its metric, an error divided by the scale² (and by the optimum's MSE for
    ``optimal_ratio``); NaN where the run diverged."""
    if stream.measure == "last_third":
        table = table[table["step"] > table["step"].max() * (1 - MEASURED_FRACTION)]
    grouped = table.groupby(["row", "method", "value", "seed"])
    values = grouped[stream.metric].agg(lambda column: column.mean(skipna=False))
    if stream.measure == "optimal_ratio":
        values = values / grouped["optimal_mse"].mean()
    if stream.metric == "squared_error":
        values = values / grouped["scale"].first() ** 2
    return values


def paired(runs: pd.Series, reference: pd.Series, sign: int) -> dict[str, Any]:
    """The paired difference over seeds, signed so that positive means ``runs`` is better,
    its standard error (NaN with one seed) and whether it is beyond 2 SE; NaN if a run
    diverged."""
    differences = sign * (runs - reference)
    difference = float(differences.mean(skipna=False))
    se = float(differences.std(ddof=1) / np.sqrt(len(differences)))
    return {"difference": difference, "se": se,
            "beyond_2se": bool(abs(difference) > 2 * se) if math.isfinite(se) else False}


def verdict(method: str, entry: dict[str, Any], stream: Stream) -> str:
    """``"pass"`` or ``"fail"`` against the row's bar (a diverged method fails); on the deep
    rows tuned Adam and Mechanic are the bar itself: ``"reference"``."""
    if stream.measure == "last_third":
        return "pass" if entry["value"] <= WEIGHT_FLIPPING_BAR else "fail"
    if stream.measure == "optimal_ratio":
        return "pass" if entry["value"] <= NOISY_TRACKING_BAR else "fail"
    if method in (TUNED, REFERENCE):
        return "reference"
    beats = all(entry[key]["difference"] > 0 for key in ("vs_tuned_adam", "vs_mechanic"))
    return "pass" if beats else "fail"


def row_summary(values: pd.Series, stream: Stream, scale: float) -> dict[str, Any]:
    """One row of the table (``values``: its runs, indexed by method, value, seed)."""
    sign = better(stream.metric)
    adam = values.loc[TUNED].groupby(level="value").agg(lambda runs: runs.mean(skipna=False))
    scores = sign * adam
    best = float(scores.idxmax()) if scores.notna().any() else float(adam.index[len(adam) // 2])
    adam_runs = values.loc[(TUNED, best)]
    mechanic_runs = values.loc[REFERENCE].droplevel("value")
    methods = {}
    present = set(values.index.get_level_values("method"))
    for method in (name for name in METHODS if name in present):
        runs = adam_runs if method == TUNED else values.loc[method].droplevel("value")
        value = float(runs.mean(skipna=False))
        tuned_value = float(adam_runs.mean(skipna=False))
        entry = {
            "value": value,
            "se": float(runs.std(ddof=1) / np.sqrt(len(runs))),
            "seeds": int(len(runs)),
            "diverged_seeds": int(runs.isna().sum()),
            "vs_tuned_adam": paired(runs, adam_runs, sign),
            "vs_mechanic": paired(runs, mechanic_runs, sign),
            # + is better: a difference of accuracies, or Adam's relative excess of error.
            "margin_over_tuned_adam": (value - tuned_value if sign > 0
                                       else (tuned_value - value) / tuned_value),
        }
        entry["verdict"] = verdict(method, entry, stream)
        methods[method] = entry
    grid = adam.index.to_numpy()
    return {
        "problem": stream.title, "scale": scale, "metric": stream.metric,
        "better": "higher" if sign > 0 else "lower", "bar": stream.bar,
        "tuned_adam_step_size": best,
        "tuned_adam_at_grid_edge": bool(len(grid) > 1 and best in (grid.min(), grid.max())),
        "methods": methods,
    }


def summarize(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Any]:
    rows = {}
    for stream in streams(budget):
        values = run_values(stream_table(tables, stream), stream)
        for scale in stream.scales:
            rows[stream.row(scale)] = row_summary(values.loc[stream.row(scale)], stream, scale)
    judged = [name for name in columns(budget)
              if any(row["methods"][name]["verdict"] in ("pass", "fail") for row in rows.values())]
    passes = {name: sum(row["methods"][name]["verdict"] == "pass" for row in rows.values())
              for name in judged}
    failed = [name for name, row in rows.items()
              if row["methods"][CANDIDATE]["verdict"] != "pass"]
    unavailable = "" if permuted_fashion.missing_data() is None else "permuted-fashion"
    text = (f"{CANDIDATE} at its default passes {passes[CANDIDATE]} of {len(rows)} rows"
            + (f"; fails {', '.join(failed)}" if failed else "")
            + (f"; not run: {unavailable} (no data)" if unavailable else ""))
    return {
        "candidate": CANDIDATE,
        "candidate_settings": signature_defaults(ms.normalized_idbd),
        "rows": rows,
        "answer": {
            "rows": len(rows),
            "passed": passes[CANDIDATE],
            "failed_rows": ", ".join(failed),
            "passes_per_method": passes,
            "unavailable_rows": unavailable,
            "text": text,
        },
    }


# ---------------------------------------------------------------------------------------------
# Figures

COLUMN_TITLES = {CANDIDATE: "Normalized IDBD\n(candidate)",
                 "normalized-idbd-plain": "Normalized IDBD,\nplain gradients",
                 "idbd": "IDBD", "autostep": "Autostep",
                 "metaoptimize": "MetaOptimize", TUNED: "Adam\n(tuned per row)",
                 REFERENCE: "Mechanic\n(Adam)"}
def step_size_figure(tables: dict[str, pd.DataFrame], budget: Budget) -> Figure | None:
    """The candidate's step sizes over time on :data:`STEP_SIZE_ROW`; None without that row."""
    stream = next((s for s in streams(budget) if s.name == STEP_SIZE_ROW), None)
    if stream is None:
        return None
    table = stream_table(tables, stream)
    return candidate_step_size_figure(table[table["method"] == CANDIDATE], stream)


def accuracy_per_task(tables: dict[str, pd.DataFrame], budget: Budget,
                      summary: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Per classification stream (by title): each task's mean accuracy over its records and
    the seeds (rows: tasks; columns: the methods at their defaults, Adam at its tuned step
    size)."""
    result = {}
    for stream in streams(budget):
        if stream.metric != "accuracy":  # slowly-changing regression is deep, not classified
            continue
        table = stream_table(tables, stream)
        tuned = summary["rows"][stream.row(1.0)]["tuned_adam_step_size"]
        chosen = table[np.where(table["method"] == TUNED, np.isclose(table["value"], tuned),
                                table["default"])]
        result[stream.title] = chosen.pivot_table(index="task", columns="method",
                                                  values="accuracy", aggfunc="mean")
    return result


def figures(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Figure]:
    summary = summarize(tables, budget)
    titles = [(method, COLUMN_TITLES[method]) for method in columns(budget)]
    result = {"margin-over-tuned-adam": margin_figure(summary, budget, titles)}
    step_sizes = step_size_figure(tables, budget)
    if step_sizes is not None:
        result["candidate-step-sizes"] = step_sizes
    per_task = accuracy_per_task(tables, budget, summary)
    if per_task:
        result["accuracy-per-task"] = accuracy_per_task_figure(per_task, titles)
    return result


# ---------------------------------------------------------------------------------------------
# Budgets, explanation and the registration

BUDGETS = {
    "smoke": Budget(steps=400, seeds=2, settings={
        "linear": {"weight_flipping_steps": 3_000, "weight_flipping_seeds": 2,
                   "noisy_tracking_steps": 2_000, "noisy_tracking_seeds": 2,
                   "regime_length": 500},
        "slowly_changing_regression": {"steps": 400, "switch_every": 200},
        "switch_every": {"permuted": 200, "label_permuted": 100}, "hidden": [16],
        "fashion": {"steps": 200, "switch_every": 100, "hidden": [16], "seeds": 2},
        "adam_points": 1, "linear_adam_points": 3, "records_per_task": 2,
        # A linear stream (errors at three scales) and a deep one (accuracy): each stream
        # compiles a program of every method, and all 7 streams took a minute to compile.
        "streams": ["noisy-tracking-paper", "label-permuted-digits"],
        # The candidate and the two references, of which the verdicts need nothing more.
        "methods": [CANDIDATE, TUNED, REFERENCE]}),
    # The linear rows at the weight-flipping quick budget and 200,000 steps of noisy tracking;
    # the deep rows at the continual experiments' quick settings, Fashion with 2 seeds.
    "quick": Budget(steps=30_000, seeds=2, settings={
        "linear": {"weight_flipping_steps": 30_000, "weight_flipping_seeds": 10,
                   "noisy_tracking_steps": 200_000, "noisy_tracking_seeds": 3,
                   "regime_length": 50_000},
        "slowly_changing_regression": {"steps": 100_000, "switch_every": 10_000},
        "switch_every": {"permuted": 5_000, "label_permuted": 2_500}, "hidden": [64],
        "fashion": {"steps": 2_000, "switch_every": 1_000, "hidden": [300, 150], "seeds": 2},
        "adam_points": 5, "linear_adam_points": 9, "records_per_task": 5}),
    # The issue's: 300,000 steps and 5 seeds (64-300-150-10; slowly-changing regression's own
    # 21-5-1), permuted Fashion 10 tasks of 5,000 steps and 3 seeds; a shard per seed.
    "full": Budget(steps=300_000, seeds=5, settings={
        "linear": {"weight_flipping_steps": 30_000, "weight_flipping_seeds": 10,
                   "noisy_tracking_steps": 500_000, "noisy_tracking_seeds": 5,
                   "regime_length": 50_000},
        "slowly_changing_regression": {"steps": 300_000, "switch_every": 10_000},
        "switch_every": {"permuted": 5_000, "label_permuted": 2_500}, "hidden": [300, 150],
        "fashion": {"steps": 50_000, "switch_every": 5_000, "hidden": [300, 150], "seeds": 3},
        "adam_points": 7, "linear_adam_points": 9, "records_per_task": 2,
        "seeds_per_shard": 1}),
}

EXPLANATION = f"""
**The question**: is there one method with one setting of its hyperparameters, used unchanged
on every problem and at every scale of the targets, that meets every bar? The candidate,
normalized IDBD (`ms.normalized_idbd`; its settings: `candidate_settings`), its form over
plain gradients (`normalize_gradients=False`), IDBD, Autostep, MetaOptimize and Mechanic (around
Adam) run at their library defaults; Adam is tuned per row (a
grid of its step size centred at a usual value × the row's scale, reported at its best point;
`tuned_adam_at_grid_edge` says when that is an end of the grid).

The rows and their bars (`rows.<row>.bar`): **weight flipping** (Sutton 1992, MSE over the last
third of the run, linear learner): ≤ {WEIGHT_FLIPPING_BAR} (tuned IDBD about 1.51, the oracle's
fixed per-input step sizes 1.373); **noisy tracking** `talk` and `paper` (linear learner): the
MSE over the run ÷ the Kalman optimum's ≤ {NOISY_TRACKING_BAR}; **slowly-changing regression**
`redraw` and `flip_one` (21-5-1, squared error), **permuted digits**, **label-permuted digits**
and **permuted Fashion-MNIST** (online accuracy): beat tuned Adam **and** Mechanic, each by a
paired difference over seeds (`vs_tuned_adam`, `vs_mechanic`: difference ± SE, positive =
better; `beyond_2se`). Rows with real-valued targets are repeated with the targets × 0.1
(`…-scale-1e-1`) and × 10 (`…-scale-1e1`), errors divided by s²: a method indifferent to the
scale reads the same at every scale, against the same bar. `answer` counts the rows the
candidate passes and names the others (`passes_per_method`: each method at its default). A
method that diverged in a seed is reported as diverged and fails; it is never averaged over the
surviving seeds.

How to read the figures:

- **margin-over-tuned-adam**: the table, rows = problems, columns = methods; each cell gives the
  row's number (✓ pass, ✗ fail), its colour the margin over tuned Adam, blue when the method is
  better: the difference of accuracies, or Adam's relative excess of error (Adam − method) /
  Adam; grey: diverged.
- **candidate-step-sizes**: normalized IDBD's step sizes (α s, the factor of the gradient; mean
  log₁₀ over each parameter array) over time on label-permuted digits, task switches dotted.
- **accuracy-per-task**: each method's accuracy task by task on each deep stream (the methods at
  their defaults, Adam at its tuned step size), mean over seeds: a falling curve is lost
  plasticity.

The quick budget is a first look (2 seeds on the deep rows); the issue's budget is `--full`
(300,000 steps and 5 seeds, the 64-300-150-10 network), for a cluster.
"""

EXPERIMENT = Experiment(
    name="one-default",
    description="One method at one default on every problem, at every target scale: the "
    "candidate normalized IDBD against IDBD, Autostep, MetaOptimize, Mechanic and tuned Adam",
    budgets=BUDGETS,
    shards=shards,
    summarize=summarize,
    figures=figures,
    published=[],
    explanation=EXPLANATION,
    quick_minutes=4.5,  # approximate: see QUICK_MINUTES_MACHINE
)
