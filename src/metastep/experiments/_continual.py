"""The continual benchmarks: what one is, its sweep, its table, its shards and its experiment.

Each continual experiment (``slowly-changing-regression``, ``permuted-digits``,
``label-permuted-digits``, ``permuted-fashion``) states its :class:`Benchmark` (the stream, the
network, the loss, the task length, the roster and its grids) and its budgets at the top of its
module. It trains the network online (batch 1, the metric measured before each update) on a stream
whose task changes every ``switch_every`` steps, with every method of the roster
(:mod:`metastep.experiments._roster`), and asks: **does a meta-learned step size at its one
default setting match or beat Adam tuned for the benchmark?** The summary and the plasticity
metrics are in :mod:`metastep.experiments._plasticity`, the figures in
:mod:`metastep.experiments._continual_figures`.

The roster trains side by side in one compiled program, swept by ``ms.sweep`` over the grid
position × seeds (:func:`roster_sweep`).

Tables (one shard per problem and block of seeds): one row per (method, grid point, seed,
record) with ``method``, ``family``, ``parameter`` (the name of its main parameter), ``value``,
``point`` (the grid position), ``default`` (whether ``value`` is the method's default, or the
centre of a ``tuned`` sweep), ``seed``, ``step``, ``task``, the metrics as bin means
(``accuracy`` and ``loss``, or ``squared_error``), ``diverged``, and for each parameter array
``log10_step_size:<array>``, the mean of ``log₁₀ α`` over the array after the bin's last update
(NaN for the ``free`` family, which reports no step sizes).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import metastep as ms
from metastep.experiments._base import (
    Budget,
    Experiment,
    Published,
    Shard,
    SweptMethod,
    call_parameters,
)
from metastep.experiments._continual_figures import (
    STEP_SIZE_COLUMN,
    online_figure,
    sensitivity_figure,
    step_size_figure,
)
from metastep.experiments._plasticity import summarize_problem
from metastep.experiments._roster import FAMILY, RosterLearner, curvature

# The opening of the classification benchmarks' explanations: the question they answer.
ACCURACY_QUESTION = """
**The question**: does a meta-learned step size with its one default setting (IDBD, Autostep,
SMD, MetaOptimize, Adam-HD, all at the library's defaults) match or beat Adam with its step size
tuned for this benchmark? `answer.best_meta_default_vs_tuned_adam` is the run-average online
accuracy of the best meta-learned method at its default minus tuned Adam's (positive: the
meta-learned step size wins); `answer.vs_tuned_adam.<method>` gives it for each.
"""
PROGRESS_CHUNKS = 20  # compiled chunks per roster sweep: the progress bar moves 20 times


@dataclass(frozen=True)
class Benchmark:
    """What a continual experiment runs: a stream, a network and the roster.

    Attributes:
      name: its key in the summary and the prefix of its shard and figure names when an
        experiment has several benchmarks, else ``""``.
      title: what it is, for figures (stream, network, budget).
      problem: ``functools.partial`` of a problem builder: called when a shard computes (it may
        load data); ``config.json`` records its arguments (:func:`call_parameters`).
      switch_every: the steps of a task.
      sizes: the network's layer sizes (``ms.deep.mlp``), ReLU hidden units.
      loss: ``"squared"`` (the metric: ``squared_error``) or ``"cross_entropy"``
        (``accuracy``).
      methods: the roster (:func:`metastep.experiments._roster.roster`), every grid of the
        same odd length, its middle value the default.
    """

    name: str
    title: str
    problem: functools.partial
    switch_every: int
    sizes: tuple[int, ...]
    loss: str
    methods: tuple[SweptMethod, ...]

    def __post_init__(self):
        lengths = {len(method.grid) for method in self.methods}
        if len(lengths) != 1 or lengths.pop() % 2 == 0:
            raise ValueError(f"benchmark {self.name!r}: the methods' grids must have one odd "
                             f"length, got {[len(method.grid) for method in self.methods]}")

    @property
    def metric(self) -> str:
        return "squared_error" if self.loss == "squared" else "accuracy"

    @property
    def points(self) -> int:
        """The number of grid points of each method."""
        return len(self.methods[0].grid)

    @functools.cached_property
    def make_learner(self) -> Callable[[Any], RosterLearner]:
        """``make_learner`` of the roster sweep, one function per benchmark object: the engine
        keys its compiled programs by this function, so the shards that share a benchmark (one
        per seed at the full budgets) compile once."""
        model = ms.deep.mlp(self.sizes)

        def make_learner(point):
            index = jnp.asarray(point).astype(jnp.int32)
            return RosterLearner(model, self.loss, self.methods,
                                 {method.name: jnp.asarray(method.grid)[index]
                                  for method in self.methods})

        return make_learner

    def config(self) -> dict[str, Any]:
        """What ``config.json`` records of the benchmark: its problem, network and roster."""
        return {
            "problem": call_parameters(self.problem),
            "network": {"sizes": list(self.sizes), "activation": "relu", "loss": self.loss},
            "methods": {method.name: {"family": FAMILY[method.name],
                                      method.parameter: list(method.grid),
                                      "curvature": curvature(method)}
                        for method in self.methods},
            "other_hyperparameters": "the defaults of metastep and optax.contrib",
        }


def mlp_title(sizes: Sequence[int]) -> str:
    """``"MLP 64-16-10"``."""
    return f"MLP {'-'.join(map(str, sizes))}"


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


def roster_sweep(benchmark: Benchmark, seeds: Sequence[int], steps: int,
                 record_every: int) -> pd.DataFrame:
    """The roster over its grids × ``seeds``, one ``ms.sweep``: the tidy table (module doc)."""
    points = benchmark.points
    make_learner = benchmark.make_learner
    result = ms.sweep(make_learner, benchmark.problem(), {"point": list(range(points))},
                      seeds=list(seeds), steps=steps, record_every=record_every,
                      chunk_steps=progress_chunk(steps, record_every))
    probe = make_learner(0)
    num_points, num_seeds, num_records = result.squared_error.shape
    point, seed, record = np.indices((num_points, num_seeds, num_records)).reshape(3, -1)
    tables = []
    for method in benchmark.methods:
        columns = {
            "method": method.name, "family": FAMILY[method.name], "parameter": method.parameter,
            "value": np.asarray(method.grid)[point], "point": point,
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


def method_groups(benchmark: Benchmark, grouping: str | None) -> list[tuple[str, tuple]]:
    """The roster cut into the groups of methods that each shard trains: ``None`` keeps it
    whole (one program: fastest on one machine); ``"family"`` gives a group per family of
    :data:`metastep.experiments._roster.FAMILIES` (more, smaller shards for a cluster). A method
    trains alone in its lane, so the cut changes no result."""
    if grouping is None:
        return [("", benchmark.methods)]
    if grouping != "family":
        raise ValueError(f"`method_groups` must be 'family' or absent, got {grouping!r}")
    families = dict.fromkeys(FAMILY[method.name] for method in benchmark.methods)
    return [(f"{family}-", tuple(m for m in benchmark.methods if FAMILY[m.name] == family))
            for family in families]


def roster_shards(benchmark: Benchmark, budget: Budget) -> list[Shard]:
    """The shards of a benchmark: one per group of methods (setting ``method_groups``, default:
    the whole roster) and block of ``seeds_per_shard`` seeds (default: all), about
    ``records_per_task`` records per task."""
    settings = budget.settings
    record_every = budget.record_every(settings["records_per_task"],
                                       period=benchmark.switch_every)
    block = settings.get("seeds_per_shard", budget.seeds)
    prefix = f"{benchmark.name}-" if benchmark.name else ""
    shards = []
    for group, methods in method_groups(benchmark, settings.get("method_groups")):
        part = dataclasses.replace(benchmark, methods=methods)
        for first in range(0, budget.seeds, block):
            seeds = budget.seed_list[first:first + block]
            lane_steps = benchmark.points * len(seeds) * budget.steps
            shards.append(Shard.of_call(
                f"{prefix}{group}seeds-{seeds[0]}-{seeds[-1]}", roster_sweep,
                work=len(methods) * lane_steps,
                engine_lane_steps=lane_steps,  # a lane runs the group's roster
                benchmark=part, seeds=seeds, steps=budget.steps, record_every=record_every,
            ))
    return shards


def benchmark_table(tables: Mapping[str, pd.DataFrame], benchmark: Benchmark) -> pd.DataFrame:
    """The stored shards of ``benchmark``, as one table (rows by method in roster order, then
    as each shard stored them)."""
    prefix = f"{benchmark.name}-" if benchmark.name else ""
    names = [name for name in tables if name.startswith(prefix)
             and re.fullmatch(r"([a-z]+-)?seeds-\d+-\d+", name[len(prefix):])]
    table = pd.concat([tables[name] for name in names], ignore_index=True)
    order = {method.name: index for index, method in enumerate(benchmark.methods)}
    return table.sort_values("method", key=lambda column: column.map(order), kind="stable",
                              ignore_index=True)


def benchmark_figures(table: pd.DataFrame, benchmark: Benchmark,
                      suffix: str = "") -> dict[str, Figure]:
    """The three figures of a benchmark, named ``online-<metric>``, ``sensitivity`` and
    ``step-sizes`` (+ ``suffix``)."""
    metric, title, methods = benchmark.metric, benchmark.title, benchmark.methods
    figures = {
        f"online-{metric.replace('_', '-')}{suffix}": online_figure(table, methods, metric,
                                                                   title),
        f"sensitivity{suffix}": sensitivity_figure(table, methods, metric, title),
    }
    heatmap = step_size_figure(table, methods, benchmark.switch_every, title)
    if heatmap is not None:
        figures[f"step-sizes{suffix}"] = heatmap
    return figures


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
