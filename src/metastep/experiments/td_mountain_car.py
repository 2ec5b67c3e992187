"""td-mountain-car: TD(λ) and the meta-learned step sizes predicting the return of gymnasium's
Mountain Car under a fixed policy, on tile-coded features.

The problem is ``ms.problems.mountain_car`` (gymnasium's ``MountainCar-v0``; energy pumping with
ε = 0.1 random actions; γ = 1, so the return of a state is minus the number of steps left to the
goal; 8 tilings of 8 × 8 tiles across the box, 9 × 9 each with its offset: 648 binary features,
8 active per state). Its true values are unknown: each step's target value is the Monte-Carlo
return of its state.

Methods, all with λ = ``TRACE_DECAY`` and accumulating traces (SwiftTD: its true online trace),
side by side on one stream per seed (:mod:`metastep.experiments._td`): TD(λ) with a fixed α over
a grid (per weight: 8 weights are active, so the step of a state's value is 8α); TIDBD in both
forms, AutoTIDBD and SwiftTD over their meta step size θ, and ``ms.normalized_idbd`` as
:class:`ms.td.TDLearner`'s method over its meta step size μ, each ±2 decades around the
library's default (the methods of ``td-nonstationary``).

Measure: ``return_error``, the mean over each bin of ``record_every`` steps of ``(v(x_t) −
G_t)²``, the prediction made before step t's update against the return ``G_t`` from that state
(the mean squared error against the return: it includes the return's own variance around the
true value, the same for every method). Per lane: ``mean_error``, its mean over the run, and
``final_error``, over the last ``FINAL_FRACTION`` of it. The best configuration of each method has
the least ``mean_error`` (mean over seeds); a configuration with a diverged seed is never
chosen. Step sizes: per bin, the 10%, 50% and 90% quantiles of the meta methods' step sizes over
the features visited so far (those whose weight has moved from 0). No published number exists
for this protocol.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import metastep as ms
from metastep._learner_protocol import StepOutput
from metastep.experiments import _td
from metastep.experiments._base import Budget, Experiment, Shard, SweptMethod
from metastep.experiments.td_nonstationary import methods as tracking_methods
from metastep.experiments.td_nonstationary import paired_difference
from metastep.problems import Problem
from metastep.problems.classic_control import gymnasium_missing, num_tile_features

TRACE_DECAY = 0.9  # λ of every method, as in td-nonstationary
DISCOUNT = 1.0
NUM_TILINGS = 8
TILES_PER_DIMENSION = 8
NUM_FEATURES = num_tile_features(NUM_TILINGS, TILES_PER_DIMENSION, 2)
STEP_SIZE_DECADES = (-3.0, -0.5)  # TD(λ)'s α per weight: a state's step 8α from 0.008 to 2.5
RECORDS = 50
FINAL_FRACTION = 0.2
QUANTILES = (0.1, 0.5, 0.9)  # of the step sizes over the visited features
QUANTILE_NAMES = ("step_size_low", "step_size_median", "step_size_high")

BUDGETS = {
    "smoke": Budget(steps=2_000, seeds=2, settings={"points": 3, "num_episodes": 50}),
    "quick": Budget(steps=50_000, seeds=20, settings={"points": 9, "num_episodes": 1_000}),
    "full": Budget(steps=200_000, seeds=50, settings={"points": 13, "num_episodes": 5_000}),
}


def methods(points: int) -> dict[str, SweptMethod]:
    """The methods of td-nonstationary, TD(λ)'s α grid moved to tile coding's scale."""
    step_sizes = tuple(np.logspace(*STEP_SIZE_DECADES, points).tolist())
    swept = tracking_methods(points)
    return {**swept, "td": dataclasses.replace(swept["td"], grid=step_sizes)}


def budget_methods(budget: Budget) -> dict[str, SweptMethod]:
    return methods(budget.settings["points"])


def budget_problem(budget: Budget) -> Problem:
    return ms.problems.mountain_car(NUM_TILINGS, TILES_PER_DIMENSION, discount=DISCOUNT,
                                    num_episodes=budget.settings["num_episodes"])


def record_every(budget: Budget) -> int:
    return budget.record_every(RECORDS)


class MountainCarSideBySide(_td.SideBySide):
    """The side-by-side learner on the tile-coded features, recording per method
    ``"<method>/return_error"`` (the bin's mean of each prediction's squared error against the
    stream's return) and, for the meta methods, ``"<method>/step_size_quantiles"`` [3]; NaN
    once the method diverged."""

    num_features = NUM_FEATURES
    discount = DISCOUNT

    def step_metrics(self, output: StepOutput, y: Any) -> dict[str, Any]:
        return {"return_error": jnp.square(output.prediction - y.value)}

    def method_records(self, name: str, learner: Any, learner_state: Any) -> dict[str, Any]:
        if name == "td":
            return {}
        step_sizes = learner.step_sizes(learner_state)
        visited = jnp.where(learner_state.weights != 0, step_sizes, jnp.nan)
        return {"step_size_quantiles": jnp.nanquantile(visited, jnp.asarray(QUANTILES))}


def return_sweep(problem: Problem, methods: dict[str, SweptMethod], trace_decay: float,
                 seeds: list[int], steps: int, record_every: int) -> pd.DataFrame:
    """One row per (method, grid value, seed, record): ``return_error``, the step-size
    quantiles (NaN for TD(λ)) and ``diverged``."""
    return _td.side_by_side_table(MountainCarSideBySide, problem, methods, trace_decay, seeds,
                                  steps, record_every, "return_error", "step_size_quantiles",
                                  list(QUANTILE_NAMES))


def shards(budget: Budget) -> list[Shard]:
    methods = budget_methods(budget)
    lanes = budget.settings["points"] * budget.seeds
    return [Shard.of_call("returns", return_sweep, work=len(methods) * lanes * budget.steps,
                          engine_lane_steps=lanes * budget.steps, problem=budget_problem(budget),
                          methods=methods, trace_decay=TRACE_DECAY, seeds=budget.seed_list,
                          steps=budget.steps, record_every=record_every(budget))]


# ---------------------------------------------------------------------------------------------
# Summary

def lane_errors(table: pd.DataFrame) -> pd.DataFrame:
    """Per (method, value, seed): ``mean_error`` over the run, ``final_error`` over its last
    ``FINAL_FRACTION`` and ``diverged``."""
    keys = ["method", "value", "seed"]
    last_steps = table["step"] > (1.0 - FINAL_FRACTION) * table["step"].max()
    return pd.DataFrame({
        "mean_error": table.groupby(keys)["return_error"].mean(),
        "final_error": table[last_steps].groupby(keys)["return_error"].mean(),
        "diverged": table.groupby(keys)["diverged"].any(),
    })


def configuration_errors(table: pd.DataFrame) -> pd.DataFrame:
    """Per (method, value): the lane errors averaged over seeds, the standard error of the mean
    error over seeds and ``diverged_seeds``; the errors NaN where a seed diverged."""
    configs = lane_errors(table).groupby(["method", "value"]).agg(
        mean_error=("mean_error", "mean"), mean_error_se=("mean_error", "sem"),
        final_error=("final_error", "mean"), diverged_seeds=("diverged", "sum"))
    numbers = ["mean_error", "mean_error_se", "final_error"]
    configs.loc[configs["diverged_seeds"] > 0, numbers] = np.nan
    return configs


def entry(configs: pd.DataFrame, value: float) -> dict[str, float]:
    row = configs.loc[value]
    return {"value": float(value), **{name: float(row[name]) for name in (
        "mean_error", "mean_error_se", "final_error", "diverged_seeds")}}


def default_value(method: SweptMethod) -> float:
    return method.grid[_td.default_position(method)]


def nearest(index: pd.Index, value: float) -> float:
    """The grid value of ``index`` nearest ``value`` (tables hold floats read back)."""
    return float(index[np.argmin(np.abs(index.to_numpy() - value))])


def return_summary(table: pd.DataFrame, methods: dict[str, SweptMethod]) -> dict[str, Any]:
    """Per method: its best configuration (least mean error) and, for the meta methods, its
    defaults; each against TD(λ) at its best α, paired by seed (``default_vs_td_best``,
    ``best_vs_td_best``: the difference of the mean errors, its mean and standard error over
    seeds; NaN where a seed of the configuration diverged)."""
    configs = configuration_errors(table)
    lanes = lane_errors(table)["mean_error"]
    summary: dict[str, Any] = {}
    for name, method in methods.items():
        at_method = configs.loc[name]
        finite = at_method["mean_error"].dropna()
        summary[name] = {"best": entry(at_method, finite.idxmin()) if len(finite) else None,
                         "diverged_configurations": int((at_method["diverged_seeds"] > 0).sum())}
        if name != "td":
            summary[name]["default"] = entry(at_method, nearest(at_method.index,
                                                                default_value(method)))
    td_best = summary["td"]["best"]
    if td_best is not None:
        reference = lanes.loc[("td", td_best["value"])]
        for name in methods:
            for which in ("default", "best") if name != "td" else ():
                compared = summary[name].get(which)
                if compared is None:
                    continue
                summary[name][f"{which}_vs_td_best"] = (
                    paired_difference(lanes.loc[(name, compared["value"])], reference)
                    if compared["diverged_seeds"] == 0
                    else {"mean": np.nan, "standard_error": np.nan})
    return summary


def summarize(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Any]:
    return {"trace_decay": TRACE_DECAY, "num_features": NUM_FEATURES,
            "num_episodes": budget.settings["num_episodes"], "steps": budget.steps,
            "record_every": record_every(budget),
            **return_summary(tables["returns"], budget_methods(budget))}


# ---------------------------------------------------------------------------------------------
# Figures

def shown_configurations(table: pd.DataFrame,
                         methods: dict[str, SweptMethod]) -> dict[str, float]:
    """The configuration drawn per method: a meta method's default, TD(λ)'s best α."""
    return _td.shown_values(configuration_errors(table).loc["td", "mean_error"], methods)


def error_over_time_figure(table: pd.DataFrame, methods: dict[str, SweptMethod],
                           title: str | None = None, reference: str = "td") -> Figure:
    """The squared error against the return per bin (mean over seeds, log scale): each method
    at its default, ``reference`` (TD(λ), or td-deep's Adam) at its best step size."""
    figure = Figure(figsize=(10, 4.8), layout="constrained")
    axes = figure.subplots()
    errors = configuration_errors(table).loc[reference, "mean_error"]
    for name, value in _td.shown_values(errors, methods, reference).items():
        curve = _td.rows_of(table, name, value).groupby("step")["return_error"].mean()
        axes.plot(curve.index, curve, color=methods[name].color, linestyle=methods[name].linestyle,
                  label=_td.label(methods[name], value, reference))
    axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("mean squared error against the return, per bin (mean over seeds)")
    axes.legend(loc="best", fontsize=8)
    axes.set_title(title or f"Mountain Car, energy pumping, {NUM_FEATURES} tile features, "
                            f"λ = {TRACE_DECAY:g}", fontsize=10)
    return figure


ERROR_AXIS_TOP = 1e5  # about 15 times the error of predicting 0: larger ones drawn at the top


def sweep_figure(table: pd.DataFrame, methods: dict[str, SweptMethod]) -> Figure:
    """One panel per method: the error over the run and over its last fifth against the swept
    step size (log scales); a configuration where a seed diverged is left out."""
    configs = configuration_errors(table)
    figure = Figure(figsize=(15, 4.2), layout="constrained")
    panels = figure.subplots(1, len(methods), sharey=True)
    styles = {"mean_error": ("o-", "whole run"),
              "final_error": ("v:", f"last {FINAL_FRACTION:.0%} of the run")}
    for axes, (name, method) in zip(panels, methods.items()):
        curves = configs.loc[name]
        for column, (marker, text) in styles.items():
            axes.plot(curves.index, curves[column].clip(upper=ERROR_AXIS_TOP), marker,
                      color=method.color, label=text)
        if name != "td":
            axes.axvline(default_value(method), color="0.3", linestyle="--", linewidth=0.8)
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_ylim(top=ERROR_AXIS_TOP * 1.5)
        axes.set_xlabel(f"{method.symbol} (log scale)")
        axes.set_title(method.title, fontsize=10)
    panels[0].set_ylabel("mean squared error against the return")
    figure.legend(*panels[0].get_legend_handles_labels(), loc="outside lower center", ncols=2)
    figure.suptitle("Error against each method's step size or meta step size (dashed: the "
                    "library's default; missing points: a seed diverged; errors above "
                    f"{ERROR_AXIS_TOP:.0e} drawn at the top)")
    return figure


def step_size_figure(table: pd.DataFrame, methods: dict[str, SweptMethod]) -> Figure:
    """The meta methods' step sizes at their defaults over the features visited so far: the
    median (line) and the 10%–90% band, each averaged over seeds in log space."""
    shown = shown_configurations(table, methods)
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    axes = figure.subplots()
    for name, method in methods.items():
        if name == "td":
            continue
        rows = _td.rows_of(table, name, shown[name])
        curves = {column: np.exp(np.log(rows[column]).groupby(rows["step"]).mean())
                  for column in QUANTILE_NAMES}
        steps = curves["step_size_median"].index
        axes.fill_between(steps, curves["step_size_low"], curves["step_size_high"],
                          color=method.color, alpha=0.15, linewidth=0)
        axes.plot(steps, curves["step_size_median"], color=method.color,
                  linestyle=method.linestyle, label=_td.label(method, shown[name]))
    axes.axhline(shown["td"], color="black", linestyle="--", linewidth=0.8,
                 label=f"TD(λ)'s best fixed α = {shown['td']:.3g}")
    axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("step size over the visited features")
    axes.legend(loc="best", fontsize=8)
    axes.set_title("Learned step sizes at each method's defaults: median, 10%–90% band",
                   fontsize=10)
    return figure


def figures(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Figure]:
    table, methods = tables["returns"], budget_methods(budget)
    return {"error-over-time": error_over_time_figure(table, methods),
            "error-vs-step-size": sweep_figure(table, methods),
            "step-sizes-over-time": step_size_figure(table, methods)}


EXPLANATION = """
Mountain Car (gymnasium's `MountainCar-v0`, the real environment) under a fixed, stochastic
policy: energy pumping (push in the direction of the velocity) with a uniformly random action
10% of the time. With γ = 1 the return of a state is minus the number of steps left to the goal
(about 140 per episode). The state (position, velocity) is tile-coded: 8 tilings with
asymmetric offsets, each cutting the box into 8 × 8 tiles (9 × 9 with the offset), 648 binary
features, 8 active per state. The episodes are played with
gymnasium when the stream starts (1,000 of them at the quick budget, from one environment seed)
and each seed's stream serves them in its own random order. The true values are unknown, so the
error is measured against the Monte-Carlo return of each state: the mean squared error of the
prediction (made before each update) against the return, per bin and over the run. The return's
own variance around the true value is part of every method's error alike.

All methods use λ = 0.9 and read the same stream per seed: TD(λ) with a fixed α over a grid (α
per weight; a state's value moves by 8α of its error); TIDBD (semi- and full-gradient),
AutoTIDBD and SwiftTD over their meta step size θ, and normalized IDBD (`ms.normalized_idbd`) as
the step-size method of `ms.td.TDLearner` over μ, ±2 decades around each library default.

What it shows, at the quick budget (20 seeds, 50,000 steps: about 360 episodes; predicting 0
everywhere would have an error of about 7,060, the mean square of the returns):

- TD(λ) does best over the run at α = 0.037 per weight (mean error 361 ± 5; 213 over the last
  20% of the run). A smaller α ends lower (183 at α = 0.0087, last 20%) but learns slower;
  α = 0.075 blows up on one seed (its error grows past 10¹⁴ without crossing the divergence
  threshold) and α ≥ 0.15 diverges on every seed.
- TIDBD in its semi-gradient form at its default θ = 0.01 has the least error of all: 310 ± 4
  over the run, 51 ± 1.2 below TD(λ) at its best α (paired over seeds; the best α was chosen on
  the same runs, which favours TD(λ)), and 173 over the last 20%. Its step sizes spread over
  the features (median 0.023, 10% and 90% quantiles 0.002 and 0.057 at the end). Every larger
  θ diverges (on 19 of the 20 seeds at θ = 0.032, on all of them above).
- TIDBD in its full-gradient form diverges at its default θ = 0.01 on 4 of the 20 seeds, and on
  every seed at larger θ; on those that do not, it drives some features' step sizes to about
  10⁻¹⁶. At θ = 0.0032 it gets 321 (40 ± 0.8 below TD(λ)'s best).
- AutoTIDBD at its defaults: 343, 18 ± 3 below TD(λ)'s best; it never diverges on the grid (θ up
  to 1), its best θ = 0.1 gets 332. Its step sizes hardly spread (10% and 90% quantiles 0.017
  and 0.023 at the end).
- SwiftTD at its defaults starts slowly (α₀ = 0.01 per weight, under its bound η = 0.1 on the
  rate of learning): 492 over the run, 130 ± 2.5 above TD(λ)'s best, but 183 over the last 20%,
  below TD(λ)'s 213 at its best α. Its error hardly depends on θ (483 to 521 over four decades).
- Normalized IDBD at its default μ = 0.003 learns slowly (1,405 over the run, 1,044 ± 11 above
  TD(λ)'s best; 281 over the last 20%); at μ = 0.03 it gets 479, and μ ≥ 0.095 diverges.

How to read the figures:

- **error-over-time**: the mean squared error against the return per bin (mean over seeds, log
  scale) of each meta method at its defaults and of TD(λ) at its best α.
- **error-vs-step-size**: one panel per method, its error over the run and over the last 20% of
  the run against its step size or meta step size (log scales), the library's default dashed; a
  configuration where a seed diverged is left out.
- **step-sizes-over-time**: the meta methods' learned step sizes at their defaults, over the
  features visited so far (median, and the band from the 10% to the 90% quantile; averaged over
  seeds in log space), with TD(λ)'s best fixed α dashed. Normalized IDBD's step size is the
  factor of its normalized update, not comparable in scale with the others'.

No published number exists for this protocol; the summary's numbers are this project's
measurements.
"""

EXPERIMENT = Experiment(
    name="td-mountain-car",
    description="TD(λ), TIDBD, AutoTIDBD, SwiftTD and normalized IDBD predicting the return of "
    "gymnasium's Mountain Car under energy pumping, on tile-coded features",
    budgets=BUDGETS,
    shards=shards,
    summarize=summarize,
    figures=figures,
    published=[],
    explanation=EXPLANATION,
    availability=gymnasium_missing,
    quick_minutes=3.2,  # approximate: see QUICK_MINUTES_MACHINE
)
