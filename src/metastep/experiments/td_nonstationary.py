"""td-nonstationary: how fast TD(λ) and the meta-learned step sizes re-track the values of the
19-state random walk after its rewards change sign.

The walk of ``td-random-walk`` (``ms.problems.random_walk``: tabular features, γ = 1, rewards −1
and +1 at the two ends) with ``switch_every = N``: every N steps both rewards change sign, and so
do all the true values (``v(s) → −v(s)``). A learner that had learned the values is then wrong
by ``2|v(s)|`` in every state and must learn them again. Segment ``k`` is the steps
``[kN, (k + 1)N)``; segment 0 starts from zero weights, every later one from a switch.

Methods, all with λ = ``TRACE_DECAY`` and accumulating traces (SwiftTD: its true online trace),
side by side on one stream per seed (:mod:`metastep.experiments._td`): TD(λ) with a fixed α over
a grid; TIDBD in both forms, AutoTIDBD and SwiftTD over their meta step size θ, ±2 decades
around the library's default; and ``ms.normalized_idbd`` (the library's one-default candidate
for supervised learning) as :class:`ms.td.TDLearner`'s method, over its meta step size μ.

Measure: ``value_error``, the RMS over each bin of ``record_every`` steps of ``v(x_t) −
v_true(x_t)`` (the prediction made before step t's update, against the true value of the
current sign), so states are weighted by how often the walk visits them. Per lane, with
``W`` = ``WINDOW_FRACTION`` of a segment:

* ``mean_value_error``: the mean over the whole run;
* ``after_switch_error``: the mean over the first ``W`` steps of every complete segment after a
  switch;
* ``segment_end_error``: the mean over the last ``W`` steps of those segments (segment 0, which
  learns from zero weights, and a last, incomplete segment are left out of both);
* ``recovery_steps``: from the error profile after a switch (each bin's error as a function of
  the steps since the switch, averaged over switches and seeds), the steps until it has come
  down ``RECOVERY_FRACTION`` (90%) of the way from its first bin to ``segment_end_error``.

The best configuration of each method has the least ``mean_value_error`` (mean over seeds); a
configuration with a diverged seed is never chosen. No published number exists for this
protocol: the summary holds this project's measurements.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import metastep as ms
from metastep._learner_protocol import StepOutput
from metastep.experiments import _td
from metastep.experiments._base import Budget, Experiment, Shard, SweptMethod
from metastep.problems import Problem

TRACE_DECAY = 0.9  # λ of every method (the issue's example; the SwiftTD authors' setting)
BINS_PER_SEGMENT = 20  # records per segment
WINDOW_FRACTION = 0.2  # the windows after a switch and at a segment's end: 1/5 of a segment
RECOVERY_FRACTION = 0.9

BUDGETS = {
    "smoke": Budget(steps=2_000, seeds=2, settings={"points": 3, "switch_every": 500}),
    "quick": Budget(steps=50_000, seeds=30, settings={"points": 9, "switch_every": 5_000}),
    "full": Budget(steps=100_000, seeds=50, settings={"points": 13, "switch_every": 5_000}),
}


def methods(points: int) -> dict[str, SweptMethod]:
    """The methods of td-random-walk, and normalized IDBD as TDLearner's method."""
    normalized = ms.normalized_idbd
    return {**_td.methods(points),
            "normalized-idbd": SweptMethod(
                "normalized-idbd", "normalized IDBD", "meta_step_size", "μ",
                _td.meta_grid(normalized, points), normalized, color="tab:green")}


def budget_methods(budget: Budget) -> dict[str, SweptMethod]:
    return methods(budget.settings["points"])


def record_every(budget: Budget) -> int:
    return budget.record_every(BINS_PER_SEGMENT, period=budget.settings["switch_every"])


class TrackingSideBySide(_td.SideBySide):
    """The side-by-side learner, recording per method ``"<method>/value_error"`` (the RMS over
    the bin of each prediction's error against the stream's true value) and, for the meta
    methods, ``"<method>/step_sizes"`` [19]; NaN once the method diverged."""

    def step_metrics(self, output: StepOutput, y: Any) -> dict[str, Any]:
        return {"value_error": jnp.square(output.prediction - y.value)}

    def bin_records(self, means: dict[str, Any]) -> dict[str, Any]:
        return {key: jnp.sqrt(value) if key.endswith("/value_error") else value
                for key, value in means.items()}


def tracking_sweep(problem: Problem, methods: dict[str, SweptMethod], trace_decay: float,
                   seeds: list[int], steps: int, record_every: int) -> pd.DataFrame:
    """One row per (method, grid value, seed, record): ``value_error``, ``step_size`` (the
    geometric mean of the learned step sizes over the states; NaN for TD(λ)) and
    ``diverged``."""
    result, leading, _ = _td.sweep_side_by_side(TrackingSideBySide, problem, methods,
                                                [trace_decay], seeds, steps, record_every)
    tables = []
    for name in methods:
        error = result.records[f"{name}/value_error"].reshape(-1).astype(np.float64)
        step_sizes = result.records.get(f"{name}/step_sizes")
        if step_sizes is None:
            step_size = np.full(error.shape, np.nan)
        else:  # a step size that underflowed to 0 counts as the smallest normal number
            logs = np.log(np.maximum(step_sizes.astype(np.float64), np.finfo(np.float32).tiny))
            step_size = np.exp(logs.mean(axis=-1)).reshape(-1)
        tables.append(pd.DataFrame({
            **leading[name], "value_error": error, "step_size": step_size,
            "diverged": np.isnan(error)}))
    return pd.concat(tables, ignore_index=True)


def shards(budget: Budget) -> list[Shard]:
    methods = budget_methods(budget)
    lanes = budget.settings["points"] * budget.seeds
    problem = ms.problems.random_walk(_td.NUM_STATES, discount=_td.DISCOUNT,
                                      switch_every=budget.settings["switch_every"])
    return [Shard.of_call("tracking", tracking_sweep, work=len(methods) * lanes * budget.steps,
                          engine_lane_steps=lanes * budget.steps, problem=problem,
                          methods=methods, trace_decay=TRACE_DECAY, seeds=budget.seed_list,
                          steps=budget.steps, record_every=record_every(budget))]


# ---------------------------------------------------------------------------------------------
# Summary

def with_segments(table: pd.DataFrame, switch_every: int) -> pd.DataFrame:
    """``table`` with each record's ``segment`` and ``since_switch`` (the steps from its
    segment's start to the end of its bin)."""
    last_step = table["step"] - 1  # the last step of the record's bin
    return table.assign(segment=last_step // switch_every,
                        since_switch=last_step % switch_every + 1)


def after_switches(table: pd.DataFrame, switch_every: int) -> pd.DataFrame:
    """The records of the complete segments that start at a switch (segment ≥ 1), with their
    ``segment`` and ``since_switch``."""
    table = with_segments(table, switch_every)
    complete = (table["segment"] + 1) * switch_every <= table["step"].max()
    return table[(table["segment"] >= 1) & complete]


def window_steps(switch_every: int) -> int:
    return max(1, round(WINDOW_FRACTION * switch_every))


def lane_errors(table: pd.DataFrame, switch_every: int) -> pd.DataFrame:
    """Per (method, value, seed): ``mean_value_error``, ``after_switch_error``,
    ``segment_end_error`` and ``diverged`` (see the module docstring)."""
    tracking = after_switches(table, switch_every)
    window = window_steps(switch_every)
    keys = ["method", "value", "seed"]
    after = tracking[tracking["since_switch"] <= window]
    end = tracking[tracking["since_switch"] > switch_every - window]
    return pd.DataFrame({
        "mean_value_error": table.groupby(keys)["value_error"].mean(),
        "after_switch_error": after.groupby(keys)["value_error"].mean(),
        "segment_end_error": end.groupby(keys)["value_error"].mean(),
        "diverged": table.groupby(keys)["diverged"].any(),
    })


def recovery_steps(profile: pd.Series, settled: float) -> float:
    """The steps after a switch until ``profile`` (error by ``since_switch``) has come down
    ``RECOVERY_FRACTION`` of the way from its first value to ``settled``; NaN if it never
    does, or if its first value is not above ``settled`` (no jump to recover from)."""
    if not profile.iloc[0] > settled:
        return np.nan
    target = settled + (1.0 - RECOVERY_FRACTION) * (profile.iloc[0] - settled)
    reached = profile.index[profile.to_numpy() <= target]
    return float(reached[0]) if len(reached) else np.nan


def configuration_errors(table: pd.DataFrame, switch_every: int) -> pd.DataFrame:
    """Per (method, value): the lane errors averaged over seeds (and the standard error of the
    mean error over seeds), ``recovery_steps`` and ``diverged_seeds``; every number NaN where a
    seed diverged."""
    lanes = lane_errors(table, switch_every)
    configs = lanes.groupby(["method", "value"]).agg(
        mean_value_error=("mean_value_error", "mean"),
        mean_value_error_se=("mean_value_error", "sem"),
        after_switch_error=("after_switch_error", "mean"),
        segment_end_error=("segment_end_error", "mean"),
        diverged_seeds=("diverged", "sum"))
    profiles = switch_profiles(table, switch_every)
    configs["recovery_steps"] = [
        recovery_steps(profiles.loc[key], settled) if key in profiles.index else np.nan
        for key, settled in configs["segment_end_error"].items()]
    numbers = ["mean_value_error", "mean_value_error_se", "after_switch_error",
               "segment_end_error", "recovery_steps"]
    configs.loc[configs["diverged_seeds"] > 0, numbers] = np.nan
    return configs


def switch_profiles(table: pd.DataFrame, switch_every: int) -> pd.Series:
    """The error by steps since a switch, averaged over the switches and seeds: indexed by
    (method, value, since_switch)."""
    tracking = after_switches(table, switch_every)
    return tracking.groupby(["method", "value", "since_switch"])["value_error"].mean()


def entry(configs: pd.DataFrame, value: float) -> dict[str, float]:
    row = configs.loc[value]
    return {"value": float(value), **{name: float(row[name]) for name in (
        "mean_value_error", "mean_value_error_se", "after_switch_error", "segment_end_error",
        "recovery_steps")}}


def paired_difference(errors: pd.Series, reference: pd.Series) -> dict[str, float]:
    """``errors − reference`` (indexed by seed), its mean and standard error over seeds."""
    difference = (errors - reference).dropna()
    return {"mean": float(difference.mean()), "standard_error": float(difference.sem())}


def tracking_summary(table: pd.DataFrame, methods: dict[str, SweptMethod],
                     switch_every: int) -> dict[str, Any]:
    """Per method: its best configuration (least mean error) and, for the meta methods, its
    defaults and their mean error minus TD(λ)'s at its best α (paired by seed); and the
    slowest recovery of a meta method at its defaults."""
    configs = configuration_errors(table, switch_every)
    lanes = lane_errors(table, switch_every)["mean_value_error"]
    summary: dict[str, Any] = {}
    for name, method in methods.items():
        at_method = configs.loc[name]
        finite = at_method["mean_value_error"].dropna()
        summary[name] = {"best": entry(at_method, finite.idxmin()) if len(finite) else None}
        if name != "td":
            default = method.grid[_td.default_position(method)]
            summary[name]["default"] = entry(at_method, at_method.index[
                np.argmin(np.abs(at_method.index.to_numpy() - default))])
            if summary["td"]["best"] is not None:
                summary[name]["default_vs_td_best"] = paired_difference(
                    lanes.loc[(name, summary[name]["default"]["value"])],
                    lanes.loc[("td", summary["td"]["best"]["value"])])
    recoveries = [summary[name]["default"]["recovery_steps"] for name in methods if name != "td"]
    summary["slowest_default_recovery_steps"] = float(np.max(recoveries))
    summary["td_best_recovery_steps"] = (summary["td"]["best"] or {}).get("recovery_steps",
                                                                          np.nan)
    return summary


def summarize(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Any]:
    switch_every = budget.settings["switch_every"]
    return {"switch_every": switch_every, "trace_decay": TRACE_DECAY,
            "window_steps": window_steps(switch_every),
            "record_every": record_every(budget), "steps": budget.steps,
            **tracking_summary(tables["tracking"], budget_methods(budget), switch_every)}


# ---------------------------------------------------------------------------------------------
# Figures

def shown_configurations(table: pd.DataFrame, methods: dict[str, SweptMethod],
                         switch_every: int) -> dict[str, float]:
    """The configuration drawn per method: a meta method's default, TD(λ)'s best α."""
    errors = configuration_errors(table, switch_every).loc["td", "mean_value_error"]
    return _td.shown_values(errors, methods)


def mean_error_over_time(table: pd.DataFrame, name: str, value: float) -> pd.Series:
    """The value error of ``name`` at ``value`` by step, averaged over seeds."""
    return _td.rows_of(table, name, value).groupby("step")["value_error"].mean()


def switch_lines(axes, steps: int, switch_every: int) -> None:
    for switch in range(switch_every, steps, switch_every):
        axes.axvline(switch, color="0.6", linestyle=":", linewidth=0.8)


def error_figure(table: pd.DataFrame, methods: dict[str, SweptMethod],
                 switch_every: int) -> Figure:
    """Left: the value error over the run (mean over seeds), the switches dotted. Right: the
    error against the steps since a switch, averaged over the switches and seeds."""
    shown = shown_configurations(table, methods, switch_every)
    profiles = switch_profiles(table, switch_every)
    figure = Figure(figsize=(13, 4.8), layout="constrained")
    over_time, after_switch = figure.subplots(1, 2, width_ratios=(2, 1))
    for name, method in methods.items():
        style = {"color": method.color, "linestyle": method.linestyle}
        curve = mean_error_over_time(table, name, shown[name])
        over_time.plot(curve.index, curve, label=_td.label(method, shown[name]), **style)
        matching = [value for value in profiles.loc[name].index.unique(level="value")
                    if np.isclose(value, shown[name])]
        if matching:
            profile = profiles.loc[(name, matching[0])]
            after_switch.plot(profile.index, profile, **style)
    switch_lines(over_time, int(table["step"].max()), switch_every)
    over_time.set_xlabel("step (dotted: the rewards change sign)")
    over_time.set_ylabel("RMS value error per bin (mean over seeds)")
    after_switch.set_xlabel("steps since a switch")
    after_switch.set_ylabel("RMS value error (mean over switches and seeds)")
    for axes in (over_time, after_switch):
        axes.set_ylim(bottom=0)
    figure.legend(*over_time.get_legend_handles_labels(), loc="outside lower center", ncols=3)
    figure.suptitle(f"Random walk, rewards switching sign every {switch_every:,} steps, "
                    f"λ = {TRACE_DECAY:g}")
    return figure


def step_size_figure(table: pd.DataFrame, methods: dict[str, SweptMethod],
                     switch_every: int) -> Figure:
    """The meta methods' learned step sizes over time at their defaults: the geometric mean
    over the 19 states, then over seeds."""
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    axes = figure.subplots()
    for name, method in methods.items():
        if name == "td":
            continue
        value = method.grid[_td.default_position(method)]
        rows = table[(table["method"] == name) & np.isclose(table["value"], value)]
        logs = np.log(rows["step_size"]).groupby(rows["step"]).mean()
        axes.plot(logs.index, np.exp(logs), color=method.color, linestyle=method.linestyle,
                  label=_td.label(method, value))
    best_alpha = shown_configurations(table, {"td": methods["td"]}, switch_every)["td"]
    axes.axhline(best_alpha, color="black", linestyle="--", linewidth=0.8,
                 label=f"TD(λ)'s best fixed α = {best_alpha:.3g}")
    switch_lines(axes, int(table["step"].max()), switch_every)
    axes.set_yscale("log")
    axes.set_xlabel("step (dotted: the rewards change sign)")
    axes.set_ylabel("step size: geometric mean over states and seeds")
    axes.legend(loc="best", fontsize=8)
    axes.set_title("Learned step sizes at each method's defaults", fontsize=10)
    return figure


ERROR_AXIS_TOP = 1.0  # larger errors (a step size too large) are drawn at the top


def sweep_figure(table: pd.DataFrame, methods: dict[str, SweptMethod],
                 switch_every: int) -> Figure:
    """One panel per method: the error over the run, after a switch and at a segment's end,
    against its swept step size (log scale); a configuration where a seed diverged is left
    out."""
    configs = configuration_errors(table, switch_every)
    figure = Figure(figsize=(14, 4.2), layout="constrained")
    panels = figure.subplots(1, len(methods), sharey=True)
    styles = {"mean_value_error": ("o-", "whole run"),
              "after_switch_error": ("^--", "first 1/5 of a segment after a switch"),
              "segment_end_error": ("v:", "last 1/5 of a segment")}
    for axes, (name, method) in zip(panels, methods.items()):
        curves = configs.loc[name]
        for column, (marker, text) in styles.items():
            axes.plot(curves.index, curves[column].clip(upper=ERROR_AXIS_TOP), marker,
                      color=method.color, label=text)
        if name != "td":
            axes.axvline(method.grid[_td.default_position(method)], color="0.3",
                         linestyle="--", linewidth=0.8)
        axes.set_xscale("log")
        axes.set_ylim(0, ERROR_AXIS_TOP)
        axes.set_xlabel(f"{method.symbol} (log scale)")
        axes.set_title(method.title, fontsize=10)
    panels[0].set_ylabel("RMS value error (mean over seeds)")
    figure.legend(*panels[0].get_legend_handles_labels(), loc="outside lower center", ncols=3)
    figure.suptitle("Error against each method's step size or meta step size (dashed: the "
                    f"library's default; errors above {ERROR_AXIS_TOP:g} drawn at the top)")
    return figure


def figures(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Figure]:
    table, methods = tables["tracking"], budget_methods(budget)
    switch_every = budget.settings["switch_every"]
    return {"error-around-switches": error_figure(table, methods, switch_every),
            "step-sizes-over-time": step_size_figure(table, methods, switch_every),
            "error-vs-step-size": sweep_figure(table, methods, switch_every)}


EXPLANATION = """
The 19-state random walk of `td-random-walk` (tabular features, γ = 1, reward −1 off the left
end and +1 off the right end), made non-stationary: every N steps (5,000 at the quick and full
budgets, about 50 episodes) both rewards change sign, and with them every true value. Right
after a switch a learner that had learned the values is wrong by twice each value, and it must
learn them again. The question is how fast each method re-tracks, and what a meta-learned step
size buys over TD(λ) with a fixed step size tuned for the problem. All methods use λ = 0.9 and
read the same stream per seed: TD(λ) with a fixed α over a grid; TIDBD (semi- and
full-gradient), AutoTIDBD and SwiftTD over their meta step size θ, ±2 decades around the
library's default; and normalized IDBD (`ms.normalized_idbd`, the library's one-default
candidate for supervised learning) as the step-size method of `ms.td.TDLearner`.

The error is the RMS value error of the predictions (before each update) against the true
values of the current sign, per bin of 250 steps, so each state counts as often as the walk
visits it. Per configuration: the mean over the run; the mean over the first 1,000 steps after a
switch and over the last 1,000 steps of a segment; and the recovery time, the steps after a
switch until the error (averaged over switches and seeds) has come down 90% of the way from its
first bin to the segment-end level (resolution: one bin, 250 steps).

What it shows, at the quick budget (30 seeds, 50,000 steps, 9 switches):

- Every meta method at its defaults re-tracks: its error comes down 90% of the way within 4,000
  steps of a switch (normalized IDBD 2,000, TIDBD 3,000 (semi-gradient) and 3,250 (full
  gradient), AutoTIDBD 3,250, SwiftTD 4,000), against 1,750 for TD(λ) at its best fixed α
  (0.1; mean error 0.262).
- At their defaults TIDBD and AutoTIDBD hardly move their step sizes from α₀ = 0.05 (their
  geometric mean stays between 0.047 and 0.052), so they behave as TD(λ) at α ≈ 0.05: mean
  errors 0.293, 0.295 and 0.310 against TD(λ)'s 0.286 at α = 0.056; tuned (θ = 0.32, 30 times
  the default), TIDBD in its semi-gradient form has the least error of all, 0.248.
- SwiftTD at its defaults starts from α₀ = 0.01 and raises its step sizes slowly (to about 0.02
  by the end): it re-tracks slowest and has the largest error at the defaults (0.376); at θ = 0.1
  (100 times its default) it gets 0.258.
- Normalized IDBD at its defaults has a mean error of 0.257, below TD(λ) at its best α by
  0.004 ± 0.0015 (paired over seeds; the best α was chosen on the same runs, which favours
  TD(λ)); its step sizes drop at each switch and grow again as the values settle.
- TD(λ) with α = 1 diverges on every seed; normalized IDBD with μ ≥ 0.095 (30 times its
  default) does not re-track at all (its error stays at 1 or grows).

How to read the figures:

- **error-around-switches**: left, the value error over the run (mean over seeds) of each meta
  method at its defaults and of TD(λ) at its best α, the switches dotted; right, the same error
  against the steps since a switch, averaged over the switches and seeds: the curve whose
  recovery time the summary gives.
- **step-sizes-over-time**: the meta methods' learned step sizes at their defaults (geometric
  mean over the 19 states and the seeds; normalized IDBD's is the factor `α s` of its normalized
  update), with TD(λ)'s best fixed α dashed.
- **error-vs-step-size**: one panel per method, the error over the run, after a switch and at a
  segment's end against its step size or meta step size (log scale), the library's default
  dashed; a configuration where a seed diverged is left out, errors above 1 are drawn at 1.

No published number exists for this protocol (Kearney et al. 2018 show TIDBD on non-stationary
prediction tasks of their own); the summary's numbers are this project's measurements.
"""

EXPERIMENT = Experiment(
    name="td-nonstationary",
    description="TD(λ), TIDBD, AutoTIDBD, SwiftTD and normalized IDBD re-tracking the values of "
    "the 19-state random walk after its rewards change sign",
    budgets=BUDGETS,
    shards=shards,
    summarize=summarize,
    figures=figures,
    published=[],
    explanation=EXPLANATION,
    quick_minutes=0.5,  # approximate: see QUICK_MINUTES_MACHINE
)
