"""The figures of trace-patterning: the error over time, the error against each method's step
size or meta step size, and the learned step sizes per group of features. Each takes the tables
of :mod:`metastep.experiments.trace_patterning` with their configurations' errors and methods
per table (``"errors"``: the microstimuli features; ``"pattern-errors"``, where the budget has
it: the pattern features)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from metastep.experiments import _td
from metastep.experiments._base import SweptMethod

ERROR_AXIS_TOP = 0.3  # about twice the error of predicting 0: larger ones drawn at the top
FEATURE_SETS = {"errors": "microstimuli", "pattern-errors": "pattern microstimuli"}
GROUP_STYLES = {"us": ("tab:red", "US"), "cs": ("tab:blue", "CSs"),
                "distractor": ("tab:gray", "distractors"), "bias": ("black", "bias"),
                "activation": ("tab:green", "activation patterns' blocks"),
                "other_pattern": ("tab:olive", "other patterns' blocks")}


def shown_configurations(configs: pd.DataFrame,
                         methods: dict[str, SweptMethod]) -> dict[str, float]:
    """The configuration drawn per method: a meta method's default, TD(λ)'s best α
    (``configs``: the configurations' errors, indexed by method and value)."""
    return _td.shown_values(configs.loc["td", "mean_error"], methods)


def error_over_time_figure(tables: dict[str, pd.DataFrame], configs: dict[str, pd.DataFrame],
                           methods: dict[str, dict[str, SweptMethod]], title: str,
                           num_features: dict[str, int]) -> Figure:
    """One panel per feature set (``num_features`` per table): the squared error against the
    expected return per bin (mean over seeds) of each meta method at its defaults and TD(λ) at
    its best α; dotted, the error of predicting 0 and the return's variance around the value
    (MSRE = error + that variance)."""
    returns = tables["returns"]
    figure = Figure(figsize=(10 * len(methods), 4.8), layout="constrained")
    panels = figure.subplots(1, len(methods), sharey=True, squeeze=False)[0]
    for axes, (table_name, table_methods) in zip(panels, methods.items()):
        table = tables[table_name]
        for name, value in shown_configurations(configs[table_name], table_methods).items():
            curve = _td.rows_of(table, name, value).groupby("step")["value_error"].mean()
            axes.plot(curve.index, curve.clip(upper=ERROR_AXIS_TOP),
                      color=table_methods[name].color, linestyle=table_methods[name].linestyle,
                      label=_td.label(table_methods[name], value))
        for column, color, text in (("value_square", "0.4", "predicting 0"),
                                    ("return_variance", "0.7", "the return's variance around v")):
            curve = returns.groupby("step")[column].mean()
            axes.plot(curve.index, curve, color=color, linestyle=":", label=text)
        axes.set_ylim(0, ERROR_AXIS_TOP)
        axes.set_xlabel("step")
        axes.legend(loc="best", fontsize=8)
        axes.set_title(f"{num_features[table_name]:,} {FEATURE_SETS[table_name]} features",
                       fontsize=10)
    panels[0].set_ylabel("mean squared error against the expected return, per bin")
    figure.suptitle(f"{title} (mean over seeds; errors above {ERROR_AXIS_TOP:g} drawn at the "
                    "top)", fontsize=10)
    return figure


def sweep_figure(configs: pd.DataFrame, methods: dict[str, SweptMethod],
                 final_fraction: float) -> Figure:
    """One panel per method: the error over the run and over its last ``final_fraction``
    against the swept step size (log scale); a configuration where a seed diverged is left
    out."""
    figure = Figure(figsize=(15, 4.2), layout="constrained")
    panels = figure.subplots(1, len(methods), sharey=True)
    styles = {"mean_error": ("o-", "whole run"),
              "final_error": ("v:", f"last {final_fraction:.0%} of the run")}
    for axes, (name, method) in zip(panels, methods.items()):
        curves = configs.loc[name]
        for column, (marker, text) in styles.items():
            axes.plot(curves.index, curves[column].clip(upper=ERROR_AXIS_TOP), marker,
                      color=method.color, label=text)
        if name != "td":
            axes.axvline(method.grid[_td.default_position(method)], color="0.3",
                         linestyle="--", linewidth=0.8)
        axes.set_xscale("log")
        axes.set_ylim(0, ERROR_AXIS_TOP * 1.05)
        axes.set_xlabel(f"{method.symbol} (log scale)")
        axes.set_title(method.title, fontsize=10)
    panels[0].set_ylabel("mean squared error against the expected return")
    figure.legend(*panels[0].get_legend_handles_labels(), loc="outside lower center", ncols=2)
    figure.suptitle("Error against each method's step size or meta step size (dashed: the "
                    "library's default; missing points: a seed diverged; errors above "
                    f"{ERROR_AXIS_TOP:g} drawn at the top)")
    return figure


def step_size_figure(tables: dict[str, pd.DataFrame], configs: dict[str, pd.DataFrame],
                     methods: dict[str, dict[str, SweptMethod]]) -> Figure:
    """A row per feature set, a panel per meta method at its defaults: the step sizes of each
    group of features over time (geometric mean over the group's features, then over
    seeds)."""
    meta = [name for name in methods["errors"] if name != "td"]
    figure = Figure(figsize=(15, 4.2 * len(methods)), layout="constrained")
    panels = figure.subplots(len(methods), len(meta), squeeze=False)
    for row, (table_name, row_methods) in zip(panels, methods.items()):
        table = tables[table_name]
        shown = shown_configurations(configs[table_name], row_methods)
        for axes, name in zip(row, meta):
            rows = _td.rows_of(table, name, shown[name])
            for group, (color, text) in GROUP_STYLES.items():
                if f"step_size_{group}" in rows:
                    logs = np.log(rows[f"step_size_{group}"]).groupby(rows["step"]).mean()
                    axes.plot(logs.index, np.exp(logs), color=color, label=text)
            axes.set_yscale("log")
            axes.set_xlabel("step")
            title = _td.label(row_methods[name], shown[name])
            axes.set_title(f"{FEATURE_SETS[table_name]}:\n{title}", fontsize=9)
        row[0].set_ylabel("step size (geometric mean over the group)")
    figure.legend(*panels[-1, 0].get_legend_handles_labels(), loc="outside lower center",
                  ncols=len(GROUP_STYLES))
    figure.suptitle("Learned step sizes per group of features at each method's defaults (the "
                    "presence and microstimuli of the group's signals;\non the pattern features, "
                    "also the blocks of the seed's activation patterns and of the other patterns)")
    return figure
