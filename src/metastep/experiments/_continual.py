"""What the continual benchmarks share: the method roster, the sweep, the tables, the plasticity
metrics, the summary and the figures.

Each continual experiment (``slowly-changing-regression``, ``permuted-digits``,
``label-permuted-digits``, ``permuted-fashion``) trains a network online (batch 1, the metric
measured before each update) on a stream whose task changes every ``switch_every`` steps, with
every method of the roster, and asks: **does a meta-learned step size at its one default setting
match or beat Adam tuned for the benchmark?**

The roster (:data:`METHODS`), in three families:

* ``tuned``: SGD, Adam and RMSprop (``ms.sgd``, ``ms.adam``, ``ms.rmsprop``), their step size
  swept around a centre that each experiment chooses; reported at their best step size.
* ``meta``: IDBD, Autostep, SMD, MetaOptimize and Adam-HD, every hyperparameter at the library's
  default (their meta step size is swept around it, to measure the sensitivity); IDBD, Autostep
  and SMD read the Gauss-Newton curvature (``ms.deep.extra_args``), the others only the gradient.
* ``free``: the learning-rate-free peers of ``optax.contrib``: Prodigy (its learning-rate
  factor), Mechanic around ``optax.adam`` (the base learning rate) and schedule-free AdamW (its
  learning rate), at optax's defaults and swept around them. Schedule-free predicts with the point
  where it takes the gradient (``y``), as every other method does; its average ``x`` is not used.

Each method's grid is ``centre × 10^(spacing × k)`` for ``k = −(P − 1)/2 .. (P − 1)/2`` (``P`` =
``points``, odd, so the default is on it). All the methods train side by side in **one** compiled
program (:class:`RosterLearner`), swept by ``ms.sweep`` over the grid position × seeds: on a CPU
the compilation of a program (5–20 s) costs more than running it at the small budgets, and one
program for the whole roster compiles about four times faster than one per method. In a lane
every method starts from the same initial weights and reads the same stream: a paired comparison.

Divergence: a method whose squared error (``2 ×`` its loss) is not finite or exceeds
``metastep.engine.DEFAULT_DIVERGENCE_THRESHOLD`` stops counting; its metrics and step sizes are
NaN from the record bin where that happened onwards (the engine's convention); the others go on.

Tables (one shard per problem and block of seeds): one row per (method, grid point, seed,
record) with ``method``, ``family``, ``parameter`` (the name of its main parameter), ``value``,
``point`` (the grid position), ``default`` (whether ``value`` is the method's default, or the
centre of a ``tuned`` sweep), ``seed``, ``step``, ``task``, the metrics as bin means
(``accuracy`` and ``loss``, or ``squared_error``), ``diverged``, and for each parameter array
``log10_step_size:<array>``, the mean of ``log₁₀ α`` over the array after the bin's last update
(NaN for the ``free`` family, which reports no step sizes).

Summary of a problem (:func:`summarize_problem`; "better" means higher accuracy or lower error):

* ``methods.<method>``: ``default_value`` and ``best_value`` (the grid value with the best run
  average among those where no seed diverged); ``default`` and ``best``, each with ``average``
  (the metric over the whole run, mean over seeds; NaN if a seed diverged), ``early`` and ``late``
  (over the first and the last 10% of the tasks, at least one task each),
  ``late_minus_early`` (the change of plasticity) and ``diverged_seeds``; ``sensitivity``:
  ``spread`` (the best minus the worst run average over the grid points where no seed diverged,
  ≥ 0), ``diverged_points``, ``decades`` (the grid's span), and the curve, ``values`` and
  ``averages``.
* ``answer``: ``tuned_adam`` (Adam's run average at its best step size), ``best_meta_default``
  (the best run average of a ``meta`` method at its default), ``best_meta_default_method`` (that
  method's name), ``best_meta_default_vs_tuned_adam`` (the difference, signed so that
  **positive means the meta-learned step size is better**), ``standard_error`` (that of the
  difference, from its spread over the seeds, each seed's runs paired; NaN with one seed), and
  ``vs_tuned_adam.<method>``, the difference for each ``meta`` method. Both sides are picked
  after the fact (Adam's best step size, the best meta method): each is a little optimistic.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

import metastep as ms
from metastep.engine import DEFAULT_DIVERGENCE_THRESHOLD
from metastep.experiments._base import Budget, Experiment, Published, Shard
from metastep.learner import StepOutput
from metastep.problems import Problem

# The opening of the classification benchmarks' explanations: the question they answer.
ACCURACY_QUESTION = """
**The question**: does a meta-learned step size with its one default setting (IDBD, Autostep,
SMD, MetaOptimize, Adam-HD, all at the library's defaults) match or beat Adam with its step size
tuned for this benchmark? `answer.best_meta_default_vs_tuned_adam` is the run-average online
accuracy of the best meta-learned method at its default minus tuned Adam's (positive: the
meta-learned step size wins); `answer.vs_tuned_adam.<method>` gives it for each.
"""
PROGRESS_CHUNKS = 20  # compiled chunks per roster sweep: the progress bar moves 20 times
EARLY_LATE_FRACTION = 0.1  # plasticity: the first 10% of the tasks against the last 10%
METRIC_LABELS = {"accuracy": "online accuracy", "squared_error": "online squared error"}
STEP_SIZE_COLUMN = "log10_step_size:"  # + the parameter array's name
MARKED_TASKS = 40  # up to this many tasks, the per-task curves mark each task


def library_default(function: Callable, parameter: str) -> float:
    """The default of ``parameter`` in ``function``'s signature: the "one default setting"."""
    return float(inspect.signature(function).parameters[parameter].default)


# ---------------------------------------------------------------------------------------------
# The roster


@dataclass(frozen=True)
class Method:
    """A method of the roster and the sweep of its main parameter.

    Attributes:
      name: its key in tables and summaries.
      title: for figures.
      family: ``"tuned"``, ``"meta"`` or ``"free"``.
      parameter: the name of its main parameter.
      symbol: the parameter's symbol, for figures.
      centre: the centre of the grid: the default for ``meta`` and ``free``, the experiment's
        choice for ``tuned``.
      spacing: decades between grid points.
      optimizer: main parameter (possibly traced) -> optax transformation.
      curvature: the source of the curvature signals (``ms.deep.DeepLearner``).
      color, linestyle: for figures.
    """

    name: str
    title: str
    family: str
    parameter: str
    symbol: str
    centre: float
    spacing: float
    optimizer: Callable[[Any], optax.GradientTransformation]
    curvature: str = "none"
    color: str = "black"
    linestyle: str = "-"

    def grid(self, points: int) -> list[float]:
        """``points`` values (odd), ``spacing`` decades apart, the centre in the middle."""
        if points < 1 or points % 2 == 0:
            raise ValueError(f"`points` must be odd and >= 1, got {points}")
        offsets = np.arange(points) - (points - 1) // 2
        return (self.centre * 10.0 ** (self.spacing * offsets)).tolist()


def mechanic_adam(base_learning_rate):
    """Mechanic (Cutkosky et al. 2023) learning the scale of ``optax.adam``'s updates."""
    return optax.contrib.mechanize(optax.adam(base_learning_rate))


# Mechanic's documentation: "base learning rate set to 1.0 (or any other constant)".
MECHANIC_BASE_LEARNING_RATE = 1.0

METHODS: dict[str, Method] = {method.name: method for method in (
    Method("sgd", "SGD", "tuned", "step_size", "α", 1e-2, 0.5, ms.sgd,
           color="0.45", linestyle=":"),
    Method("adam", "Adam", "tuned", "step_size", "η", 1e-3, 0.5, ms.adam, color="black"),
    Method("rmsprop", "RMSprop", "tuned", "step_size", "η", 1e-3, 0.5, ms.rmsprop,
           color="0.45", linestyle="--"),
    Method("idbd", "IDBD", "meta", "meta_step_size", "θ",
           library_default(ms.idbd, "meta_step_size"), 1.0, ms.idbd, "gauss_newton",
           color="tab:red"),
    Method("autostep", "Autostep", "meta", "meta_step_size", "μ",
           library_default(ms.autostep, "meta_step_size"), 1.0, ms.autostep, "gauss_newton",
           color="tab:orange"),
    Method("smd", "SMD", "meta", "meta_step_size", "μ",
           library_default(ms.smd, "meta_step_size"), 1.0, ms.smd, "gauss_newton",
           color="tab:purple"),
    Method("metaoptimize", "MetaOptimize", "meta", "meta_step_size", "η",
           library_default(ms.metaoptimize, "meta_step_size"), 1.0,
           functools.partial(ms.metaoptimize, "adam", "adam"), color="tab:brown"),
    Method("adam-hd", "Adam-HD", "meta", "meta_step_size", "β",
           library_default(ms.adam_hypergradient, "meta_step_size"), 1.0,
           ms.adam_hypergradient, color="tab:pink"),
    Method("prodigy", "Prodigy", "free", "learning_rate", "factor",
           library_default(optax.contrib.prodigy, "learning_rate"), 0.5, optax.contrib.prodigy,
           color="tab:green", linestyle="-."),
    Method("mechanic", "Mechanic (Adam)", "free", "base_learning_rate", "η",
           MECHANIC_BASE_LEARNING_RATE, 1.0, mechanic_adam, color="tab:olive", linestyle="-."),
    Method("schedule-free-adamw", "Schedule-free AdamW", "free", "learning_rate", "η",
           library_default(optax.contrib.schedule_free_adamw, "learning_rate"), 0.5,
           optax.contrib.schedule_free_adamw, color="tab:cyan", linestyle="-."),
)}
META_ORDER = tuple(name for name, method in METHODS.items() if method.family == "meta")
FEATURED_METHODS = ("idbd", "autostep")  # in the step-size heatmaps


def roster(names: Sequence[str], centres: Mapping[str, float]) -> list[Method]:
    """The methods ``names``, each ``tuned`` one centred where ``centres`` says."""
    unknown = set(names) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; known: {', '.join(METHODS)}")
    return [dataclasses.replace(METHODS[name], centre=centres[name]) if name in centres
            else METHODS[name] for name in names]


# ---------------------------------------------------------------------------------------------
# The learner: the roster side by side


class RosterState(NamedTuple):
    learners: dict[str, Any]  # method -> DeepLearnerState
    diverged_at: dict[str, jax.Array]  # method -> int32 step count at divergence, 0 while healthy
    step: jax.Array  # int32 steps done


class RosterLearner:
    """The methods of a roster, each training its own copy of ``model``, on one stream.

    A learner for the engine: ``step`` steps every method on the same example and reports, per
    method, its metrics as ``"<method>/<metric>"`` (NaN once it diverged); the error that the
    engine watches is 0, so one method's divergence does not stop the others. ``record`` gives
    ``"<method>/log10_step_size"`` ``[L]``, the mean ``log₁₀ α`` of each parameter array.

    Args:
      model: a :class:`metastep.deep.Model`.
      loss: ``"squared"`` or ``"cross_entropy"``.
      methods: the roster.
      values: method name -> the value of its main parameter (possibly traced).
    """

    def __init__(self, model: ms.deep.Model, loss: str, methods: Sequence[Method],
                 values: Mapping[str, Any]):
        self.learners = {
            method.name: ms.deep.DeepLearner(model, method.optimizer(values[method.name]),
                                             loss=loss, curvature=method.curvature)
            for method in methods
        }
        self.with_step_sizes = [method.name for method in methods if method.family != "free"]
        first = next(iter(self.learners.values()))
        self.num_features = first.num_features
        self.layer_names = first.layer_names
        self.metrics = ("accuracy", "loss") if loss == "cross_entropy" else ("squared_error",)

    def init(self, key: jax.Array) -> RosterState:
        zero = jnp.zeros((), jnp.int32)
        return RosterState({name: learner.init(key) for name, learner in self.learners.items()},
                           {name: zero for name in self.learners}, zero)

    def step(self, state: RosterState, x: jax.Array, y: jax.Array):
        step = state.step + 1
        learners, diverged_at, metrics = {}, {}, {}
        for name, learner in self.learners.items():
            learners[name], output = learner.step(state.learners[name], x, y)
            squared_error = jnp.square(output.error)
            broken = jnp.logical_not(jnp.isfinite(squared_error)) | (
                squared_error > DEFAULT_DIVERGENCE_THRESHOLD)
            previous = state.diverged_at[name]
            diverged_at[name] = jnp.where((previous == 0) & broken, step, previous)
            values = {"squared_error": squared_error, **output.metrics}
            for metric in self.metrics:
                metrics[f"{name}/{metric}"] = jnp.where(diverged_at[name] == 0, values[metric],
                                                        jnp.nan)
        zero = jnp.zeros((), squared_error.dtype)
        return RosterState(learners, diverged_at, step), StepOutput(zero, zero, zero, metrics)

    def record(self, state: RosterState) -> dict[str, jax.Array]:
        # The mean of log α only: DeepLearner.record's quantiles cost seconds of compilation.
        record = {}
        for name in self.with_step_sizes:
            learner = self.learners[name]
            leaves = jax.tree.leaves(learner.step_sizes(state.learners[name]))
            means = jnp.stack([
                jnp.mean(jnp.log10(jnp.maximum(alpha, jnp.finfo(alpha.dtype).tiny)))
                for alpha in leaves
            ])
            record[f"{name}/log10_step_size"] = jnp.where(state.diverged_at[name] == 0, means,
                                                          jnp.nan)
        return record


# ---------------------------------------------------------------------------------------------
# The sweep and its table


@dataclass(frozen=True)
class Benchmark:
    """What a continual experiment runs: a problem, a network and the roster.

    Attributes:
      name: its key in the summary and the prefix of its shard and figure names when an
        experiment has several benchmarks, else ``""``.
      title: what it is, for figures (stream, network, budget).
      problem: () -> the stream (called when a shard computes: it may load data).
      problem_parameters: the stream's parameters, for ``config.json``.
      switch_every: the steps of a task.
      sizes: the network's layer sizes (``ms.deep.mlp``), ReLU hidden units.
      loss: ``"squared"`` (the metric: ``squared_error``) or ``"cross_entropy"``
        (``accuracy``).
      methods: the roster.
    """

    name: str
    title: str
    problem: Callable[[], Problem]
    problem_parameters: Mapping[str, Any]
    switch_every: int
    sizes: tuple[int, ...]
    loss: str
    methods: tuple[Method, ...]

    @property
    def metric(self) -> str:
        return "squared_error" if self.loss == "squared" else "accuracy"


# The classification benchmarks: the centres of the tuned sweeps (Adam's and RMSprop's usual
# default; SGD's usual best region), the digits budgets, and one benchmark from a stream.
CLASSIFICATION_CENTRES = {"sgd": 10**-1.5, "adam": 1e-3, "rmsprop": 1e-3}
NUM_CLASSES = 10


def digits_budgets(switch_every: int) -> dict[str, Budget]:
    """The budgets of the 8×8 digits benchmarks (a 64-64-10 network at quick, UPGD's 300-150
    hidden units at full), tasks of ``switch_every`` steps beyond the smoke budget."""
    return {
        "smoke": Budget(steps=400, seeds=1, settings={
            "switch_every": 200, "hidden": [16], "points": 3, "records_per_task": 2,
            "methods": ["adam", "idbd"]}),
        "quick": Budget(steps=30_000, seeds=2, settings={
            "switch_every": switch_every, "hidden": [64], "points": 5, "records_per_task": 5,
            "methods": list(METHODS)}),
        "full": Budget(steps=1_000_000, seeds=10, settings={
            "switch_every": switch_every, "hidden": [300, 150], "points": 7,
            "records_per_task": 2, "methods": list(METHODS), "seeds_per_shard": 5}),
    }


def classification_benchmark(budget: Budget, stream: str, problem: Callable[..., Problem],
                             problem_parameters: Mapping[str, Any],
                             num_inputs: int) -> list[Benchmark]:
    """The one benchmark of a classification experiment: ``problem(switch_every)`` learned by an
    MLP ``num_inputs``-hidden-10 (the budget's ``hidden``) with cross-entropy.

    ``stream`` describes the stream for the title, with ``{switch_every:,}`` where the task length
    goes; ``problem_parameters`` (for ``config.json``) start with the problem's ``name`` and get
    ``switch_every`` after it.
    """
    settings = budget.settings
    switch_every = settings["switch_every"]
    sizes = (num_inputs, *settings["hidden"], NUM_CLASSES)
    name, *others = problem_parameters.items()
    return [Benchmark(
        name="",
        title=(f"{stream.format(switch_every=switch_every)}, MLP {'-'.join(map(str, sizes))}, "
               f"{budget.seeds} seed(s)"),
        problem=functools.partial(problem, switch_every),
        problem_parameters=dict([name, ("switch_every", switch_every), *others]),
        switch_every=switch_every,
        sizes=sizes,
        loss="cross_entropy",
        methods=tuple(roster(settings["methods"], CLASSIFICATION_CENTRES)),
    )]


def record_interval(steps: int, switch_every: int, records_per_task: int) -> int:
    """The largest divisor of both ``steps`` and ``switch_every`` that is at most
    ``switch_every / records_per_task``: records never straddle a task switch."""
    common = math.gcd(steps, switch_every)
    interval = max(1, min(common, switch_every // records_per_task))
    while common % interval:
        interval -= 1
    return interval


def progress_chunk(steps: int, record_every: int) -> int:
    """Steps per compiled chunk: whole records, about 1/:data:`PROGRESS_CHUNKS` of the run, and
    dividing it (one compilation). A network's step costs milliseconds: without this the
    engine's default chunk (at least 100,000 steps) would keep a progress bar still for minutes,
    and its overhead per chunk is negligible here."""
    bins = steps // record_every
    bins_per_chunk = max(1, bins // PROGRESS_CHUNKS)
    while bins % bins_per_chunk:
        bins_per_chunk -= 1
    return bins_per_chunk * record_every


def roster_sweep(benchmark: Benchmark, points: int, seeds: Sequence[int], steps: int,
                 record_every: int) -> pd.DataFrame:
    """The roster over its grids × ``seeds``, one ``ms.sweep``: the tidy table (module doc)."""
    model = ms.deep.mlp(benchmark.sizes)
    grids = {method.name: method.grid(points) for method in benchmark.methods}

    def make_learner(point):
        index = jnp.asarray(point).astype(jnp.int32)
        return RosterLearner(model, benchmark.loss, benchmark.methods,
                             {name: jnp.asarray(grid)[index] for name, grid in grids.items()})

    result = ms.sweep(make_learner, benchmark.problem(), {"point": list(range(points))},
                      seeds=list(seeds), steps=steps, record_every=record_every,
                      chunk_steps=progress_chunk(steps, record_every))
    probe = make_learner(0)
    num_points, num_seeds, num_records = result.squared_error.shape
    point, seed, record = np.indices((num_points, num_seeds, num_records)).reshape(3, -1)
    tables = []
    for method in benchmark.methods:
        columns = {
            "method": method.name, "family": method.family, "parameter": method.parameter,
            "value": np.asarray(grids[method.name])[point], "point": point,
            "default": point == (points - 1) // 2, "seed": result.seeds[seed],
            "step": result.steps[record], "task": result.info["task"].reshape(-1),
        }
        for metric in probe.metrics:
            columns[metric] = result.records[f"{method.name}/{metric}"].reshape(-1)
        columns["diverged"] = np.isnan(columns[probe.metrics[0]])
        step_sizes = result.records.get(f"{method.name}/log10_step_size")
        for index, layer in enumerate(probe.layer_names):
            columns[STEP_SIZE_COLUMN + layer] = (
                np.nan if step_sizes is None else step_sizes[..., index].reshape(-1))
        tables.append(pd.DataFrame(columns))
    table = pd.concat(tables, ignore_index=True)
    floats = table.select_dtypes("floating").columns
    table[floats] = table[floats].astype(np.float64)
    return table


def roster_shards(benchmark: Benchmark, budget: Budget) -> list[Shard]:
    """The shards of a benchmark: one per block of ``seeds_per_shard`` seeds (default: all)."""
    settings = budget.settings
    points = settings["points"]
    record_every = record_interval(budget.steps, benchmark.switch_every,
                                   settings["records_per_task"])
    block = settings.get("seeds_per_shard", budget.seeds)
    parameters = {
        "problem": dict(benchmark.problem_parameters),
        "network": {"sizes": list(benchmark.sizes), "activation": "relu",
                    "loss": benchmark.loss},
        "methods": {method.name: {"family": method.family, method.parameter: method.grid(points),
                                  "curvature": method.curvature}
                    for method in benchmark.methods},
        "other_hyperparameters": "the defaults of metastep and optax.contrib",
        "steps": budget.steps, "record_every": record_every,
    }
    shards = []
    for first in range(0, budget.seeds, block):
        seeds = budget.seed_list[first:first + block]
        prefix = f"{benchmark.name}-" if benchmark.name else ""
        shards.append(Shard(
            f"{prefix}seeds-{seeds[0]}-{seeds[-1]}",
            functools.partial(roster_sweep, benchmark, points, seeds, budget.steps,
                              record_every),
            {**parameters, "seeds": seeds},
            work=len(benchmark.methods) * points * len(seeds) * budget.steps,
            engine_lane_steps=points * len(seeds) * budget.steps,  # a lane runs the roster
        ))
    return shards


def benchmark_table(tables: Mapping[str, pd.DataFrame], benchmark: Benchmark) -> pd.DataFrame:
    """The stored shards of ``benchmark``, as one table."""
    prefix = f"{benchmark.name}-seeds-" if benchmark.name else "seeds-"
    return pd.concat([table for name, table in tables.items() if name.startswith(prefix)],
                     ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Plasticity and the summary


def task_means(table: pd.DataFrame, metric: str) -> pd.Series:
    """The metric per (method, value, seed, task): the mean of the task's records (NaN if the
    method diverged in or before the task)."""
    return table.groupby(["method", "value", "seed", "task"])[metric].agg(
        lambda values: values.mean(skipna=False))


def early_late(per_task: pd.Series) -> tuple[float, float]:
    """The mean over the first and over the last ``EARLY_LATE_FRACTION`` of the tasks (at least
    one task each) of one run's per-task metric, indexed by task."""
    per_task = per_task.sort_index()
    count = max(1, int(EARLY_LATE_FRACTION * len(per_task)))
    return float(per_task.iloc[:count].mean(skipna=False)), float(
        per_task.iloc[-count:].mean(skipna=False))


def run_results(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (method, value, seed): ``average`` (over the tasks), ``early``, ``late``; each NaN if
    the method diverged in or before the tasks it covers."""
    rows = {}
    for run, per_task in task_means(table, metric).groupby(level=["method", "value", "seed"]):
        early, late = early_late(per_task.droplevel(["method", "value", "seed"]))
        rows[run] = {"average": float(per_task.mean(skipna=False)), "early": early, "late": late}
    runs = pd.DataFrame.from_dict(rows, orient="index")
    runs.index.names = ["method", "value", "seed"]
    return runs


def configuration_results(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (method, value): the mean over seeds of ``average``, ``early`` and ``late`` (NaN when
    a seed diverged) and ``diverged_seeds``."""
    grouped = runs.groupby(level=["method", "value"])
    configurations = grouped.agg(lambda values: values.mean(skipna=False))
    configurations["diverged_seeds"] = grouped["average"].agg(lambda values: values.isna().sum())
    return configurations


def better(metric: str) -> int:
    """+1 when a higher value of ``metric`` is better (accuracy), −1 when lower (error)."""
    return 1 if metric == "accuracy" else -1


def best_value(configurations: pd.DataFrame, metric: str) -> float:
    """The value with the best ``average`` among the configurations no seed diverged in (the
    centre when all diverged)."""
    scores = better(metric) * configurations["average"]
    if scores.isna().all():
        values = configurations.index.to_numpy()
        return float(values[len(values) // 2])
    return float(scores.idxmax())


def setting_summary(configurations: pd.DataFrame, value: float) -> dict[str, float]:
    row = configurations.loc[value]
    return {"average": float(row["average"]), "early": float(row["early"]),
            "late": float(row["late"]), "late_minus_early": float(row["late"] - row["early"]),
            "diverged_seeds": int(row["diverged_seeds"])}


def summarize_problem(table: pd.DataFrame, metric: str) -> dict[str, Any]:
    """The summary of one problem's table (module docstring)."""
    runs = run_results(table, metric)
    configurations = configuration_results(runs)
    defaults = table[table["default"]].groupby("method")["value"].first()
    methods = {}
    for name in [name for name in METHODS if name in defaults.index]:
        method = configurations.loc[name]
        best = best_value(method, metric)
        healthy = method["average"].dropna()
        values = method.index.to_numpy()
        methods[name] = {
            "default_value": float(defaults[name]),
            "best_value": best,
            "default": setting_summary(method, float(defaults[name])),
            "best": setting_summary(method, best),
            "sensitivity": {
                "spread": float(healthy.max() - healthy.min()) if len(healthy) else math.nan,
                "diverged_points": int((method["diverged_seeds"] > 0).sum()),
                "decades": float(np.log10(values.max() / values.min())),
                "values": values.tolist(),
                "averages": method["average"].tolist(),
            },
        }
    summary: dict[str, Any] = {"methods": methods}
    meta = [name for name in META_ORDER if name in methods]
    if "adam" in methods and meta:
        tuned_adam = methods["adam"]["best"]["average"]
        advantages = {name: better(metric) * (methods[name]["default"]["average"] - tuned_adam)
                      for name in meta}
        finite = {name: value for name, value in advantages.items() if math.isfinite(value)}
        leader = max(finite, key=finite.get) if finite else meta[0]
        # Paired by seed: the same stream and initial weights in both runs.
        differences = better(metric) * (
            runs.loc[(leader, methods[leader]["default_value"]), "average"]
            - runs.loc[("adam", methods["adam"]["best_value"]), "average"])
        summary["answer"] = {
            "tuned_adam": tuned_adam,
            "best_meta_default": methods[leader]["default"]["average"],
            "best_meta_default_method": leader,
            "best_meta_default_vs_tuned_adam": advantages[leader],
            "standard_error": float(differences.std() / np.sqrt(len(differences))),
            "vs_tuned_adam": advantages,
        }
    return summary


# ---------------------------------------------------------------------------------------------
# Figures


def log_scale(axes) -> None:
    """A log y axis labelled with plain numbers at 1, 2 and 5 times powers of ten."""
    axes.set_yscale("log")
    axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    axes.yaxis.set_minor_formatter(NullFormatter())


def present(table: pd.DataFrame) -> list[Method]:
    names = set(table["method"])
    return [method for name, method in METHODS.items() if name in names]


def online_figure(table: pd.DataFrame, metric: str, title: str) -> Figure:
    """The metric per task over time, mean over seeds: each method at its best value (left) and
    at its default (right; the centre of the sweep for ``tuned``)."""
    configurations = configuration_results(run_results(table, metric))
    per_task = task_means(table, metric).groupby(level=["method", "value", "task"]).mean()
    task_ends = table.groupby("task")["step"].max()
    figure = Figure(figsize=(13, 5.2), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    for panel, setting in zip(axes, ("best", "default")):
        for method in present(table):
            values = configurations.loc[method.name]
            value = (best_value(values, metric) if setting == "best"
                     else float(table.loc[(table["method"] == method.name) & table["default"],
                                          "value"].iloc[0]))
            curve = per_task.loc[(method.name, value)]
            panel.plot(task_ends.loc[curve.index], curve, color=method.color,
                       linestyle=method.linestyle, linewidth=2.2 if method.name == "adam" else 1.4,
                       marker="." if len(curve) <= MARKED_TASKS else None,
                       label=f"{method.title} ({method.symbol} = {value:.3g})")
        panel.set_xlabel("step (each point: the mean over one task)")
        panel.set_title(f"each method at its {setting} setting"
                        + ("" if setting == "best" else " (tuned: the centre of the sweep)"),
                        fontsize=10)
        panel.legend(fontsize=7.5, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.13))
        if metric == "squared_error":  # an error spans decades when a method falters
            log_scale(panel)
    axes[0].set_ylabel(f"{METRIC_LABELS[metric]} per task (mean over seeds)")
    figure.suptitle(title)
    return figure


def sensitivity_figure(table: pd.DataFrame, metric: str, title: str) -> Figure:
    """One panel per method: its run average against its own main parameter (log x), mean ± sd
    over seeds; the default ringed, diverged values marked ×, tuned Adam as a dashed line."""
    runs = run_results(table, metric)
    configurations = configuration_results(runs)
    methods = present(table)
    columns = min(4, len(methods))
    rows = math.ceil(len(methods) / columns)
    figure = Figure(figsize=(3.3 * columns, 2.7 * rows + 0.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, sharey=True, squeeze=False)).ravel()
    reference = None
    if "adam" in configurations.index.get_level_values("method"):
        adam = configurations.loc["adam"]
        reference = adam.loc[best_value(adam, metric), "average"]
    # Diverged values are marked at the worst measured value.
    averages = configurations["average"].to_numpy()
    worst = np.nanmin(averages) if better(metric) > 0 else np.nanmax(averages)
    for panel, method in zip(axes, methods):
        values = configurations.loc[method.name]
        spread = runs.loc[method.name].groupby(level="value")["average"].std().fillna(0.0)
        panel.errorbar(values.index, values["average"], yerr=spread.loc[values.index],
                       color=method.color, marker="o", markersize=3.5, capsize=2)
        default = table.loc[(table["method"] == method.name) & table["default"], "value"].iloc[0]
        panel.plot(default, values.loc[default, "average"], "o", markersize=10,
                   markerfacecolor="none", markeredgecolor="black",
                   label="default" if method.family != "tuned" else "centre")
        broken = values.index[values["diverged_seeds"] > 0]
        if len(broken):
            panel.plot(broken, np.full(len(broken), worst), "x", color="tab:red", markersize=8,
                       label="a seed diverged")
        if reference is not None and math.isfinite(reference):
            panel.axhline(reference, color="black", linestyle="--", linewidth=1,
                          label="tuned Adam")
        panel.set_xscale("log")
        if metric == "squared_error":
            log_scale(panel)
        panel.set_xlabel(f"{method.parameter} {method.symbol} (log scale)", fontsize=8.5)
        panel.set_title(f"{method.title} [{method.family}]", fontsize=9.5)
        panel.legend(fontsize=7, loc="best")
    for panel in axes[len(methods):]:
        panel.set_visible(False)
    for panel in axes[::columns]:
        panel.set_ylabel(f"{METRIC_LABELS[metric]}\n(run average)", fontsize=8.5)
    figure.suptitle(title)
    return figure


def step_size_figure(table: pd.DataFrame, switch_every: int, title: str) -> Figure | None:
    """For each featured method at its default, a heatmap of parameter arrays × time: the change
    of the array's mean ``log₁₀ α`` from its mean over the run (each array's run mean is in its
    label), task switches marked. None when the table holds no featured method."""
    runs = {name: table[(table["method"] == name) & table["default"]]
            for name in FEATURED_METHODS if name in set(table["method"])}
    if not runs:
        return None
    columns = [column for column in table.columns if column.startswith(STEP_SIZE_COLUMN)]
    layers = [column.removeprefix(STEP_SIZE_COLUMN) for column in columns]
    figure = Figure(figsize=(10, len(runs) * (0.45 * len(layers) + 1.6) + 0.6),
                    layout="constrained")
    axes = np.atleast_1d(figure.subplots(len(runs), 1, sharex=True))
    for panel, (name, run) in zip(axes, runs.items()):
        method = METHODS[name]
        mean = run.groupby("step")[columns].mean()  # over seeds: the switches are shared
        steps = mean.index.to_numpy()
        run_mean = mean.mean()
        labels = [f"{layer} ({level:+.2f})" for layer, level in zip(layers, run_mean)]
        ms.deep.plot_layer_step_sizes(
            (mean - run_mean).to_numpy(), steps, labels,
            np.arange(switch_every, steps[-1], switch_every), ax=panel,
            statistic="log₁₀ α − its run mean",
            title=f"{method.title} at its default ({method.symbol} = {run['value'].iloc[0]:.3g}):"
            " change of each array's mean log₁₀ α (run mean in brackets), mean over seeds")
    for panel in axes[:-1]:
        panel.set_xlabel("")
    figure.suptitle(f"{title}\nwhich parameter arrays speed up after a task switch (marked in "
                    "white), which settle")
    return figure


def benchmark_figures(table: pd.DataFrame, benchmark: Benchmark,
                      suffix: str = "") -> dict[str, Figure]:
    """The three figures of a benchmark, named ``online-<metric>``, ``sensitivity`` and
    ``step-sizes`` (+ ``suffix``)."""
    metric, title = benchmark.metric, benchmark.title
    figures = {
        f"online-{metric.replace('_', '-')}{suffix}": online_figure(table, metric, title),
        f"sensitivity{suffix}": sensitivity_figure(table, metric, title),
    }
    heatmap = step_size_figure(table, benchmark.switch_every, title)
    if heatmap is not None:
        figures[f"step-sizes{suffix}"] = heatmap
    return figures


# ---------------------------------------------------------------------------------------------
# The experiment


def continual_experiment(
    *,
    name: str,
    description: str,
    budgets: Mapping[str, Budget],
    benchmarks: Callable[[Budget], list[Benchmark]],
    published: list[Published],
    explanation: str,
    extra_summary: Callable[[pd.DataFrame, Benchmark], dict[str, Any]] | None = None,
    availability: Callable[[], str | None] | None = None,
    quick_minutes: float | None = None,
) -> Experiment:
    """A continual experiment over ``benchmarks(budget)``: their shards, and the summary
    (:func:`summarize_problem`, plus ``extra_summary``) and figures of each; with several
    benchmarks the summary has one entry per benchmark name and the figure names end with it.
    ``quick_minutes``: as for :class:`Experiment`."""

    def shards(budget: Budget) -> list[Shard]:
        return [shard for benchmark in benchmarks(budget)
                for shard in roster_shards(benchmark, budget)]

    def summarize(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Any]:
        summaries = {}
        for benchmark in benchmarks(budget):
            table = benchmark_table(tables, benchmark)
            summary = summarize_problem(table, benchmark.metric)
            if extra_summary is not None:
                summary.update(extra_summary(table, benchmark))
            summaries[benchmark.name] = summary
        return summaries.pop("") if list(summaries) == [""] else summaries

    def figures(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Figure]:
        result = {}
        for benchmark in benchmarks(budget):
            suffix = f"-{benchmark.name}" if benchmark.name else ""
            result.update(benchmark_figures(benchmark_table(tables, benchmark), benchmark,
                                            suffix))
        return result

    return Experiment(name=name, description=description, budgets=budgets, shards=shards,
                      summarize=summarize, figures=figures, published=published,
                      explanation=explanation, availability=availability,
                      quick_minutes=quick_minutes)
