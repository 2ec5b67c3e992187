"""The figures of a continual benchmark: the metric per task over time, the sensitivity of each
method to its main parameter, and the step sizes of the featured methods per parameter array."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

import metastep as ms
from metastep.experiments._base import SweptMethod
from metastep.experiments._plasticity import (
    best_value,
    better,
    configuration_results,
    run_results,
    task_means,
)
from metastep.experiments._roster import FAMILY, FEATURED_METHODS

METRIC_LABELS = {"accuracy": "online accuracy", "squared_error": "online squared error"}
STEP_SIZE_COLUMN = "log10_step_size:"  # + the parameter array's name
MARKED_TASKS = 40  # up to this many tasks, the per-task curves mark each task


def log_scale(axes) -> None:
    """A log y axis labelled with plain numbers at 1, 2 and 5 times powers of ten."""
    axes.set_yscale("log")
    axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    axes.yaxis.set_minor_formatter(NullFormatter())


def present(table: pd.DataFrame, methods: Sequence[SweptMethod]) -> list[SweptMethod]:
    """The ``methods`` that ``table`` holds."""
    names = set(table["method"])
    return [method for method in methods if method.name in names]


def online_figure(table: pd.DataFrame, methods: Sequence[SweptMethod], metric: str,
                  title: str) -> Figure:
    """The metric per task over time, mean over seeds: each method at its best value (left) and
    at its default (right; the centre of the sweep for ``tuned``)."""
    configurations = configuration_results(run_results(table, metric))
    per_task = task_means(table, metric).groupby(level=["method", "value", "task"]).mean()
    task_ends = table.groupby("task")["step"].max()
    figure = Figure(figsize=(13, 5.2), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    for panel, setting in zip(axes, ("best", "default")):
        for method in present(table, methods):
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


def sensitivity_figure(table: pd.DataFrame, methods: Sequence[SweptMethod], metric: str,
                       title: str) -> Figure:
    """One panel per method: its run average against its own main parameter (log x), mean ± sd
    over seeds; the default ringed, diverged values marked ×, tuned Adam as a dashed line."""
    runs = run_results(table, metric)
    configurations = configuration_results(runs)
    methods = present(table, methods)
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
                   label="default" if FAMILY[method.name] != "tuned" else "centre")
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
        panel.set_title(f"{method.title} [{FAMILY[method.name]}]", fontsize=9.5)
        panel.legend(fontsize=7, loc="best")
    for panel in axes[len(methods):]:
        panel.set_visible(False)
    for panel in axes[::columns]:
        panel.set_ylabel(f"{METRIC_LABELS[metric]}\n(run average)", fontsize=8.5)
    figure.suptitle(title)
    return figure


def step_size_figure(table: pd.DataFrame, methods: Sequence[SweptMethod], switch_every: int,
                     title: str) -> Figure | None:
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
    by_name = {method.name: method for method in methods}
    for panel, (name, run) in zip(axes, runs.items()):
        method = by_name[name]
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
