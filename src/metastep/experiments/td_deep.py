"""td-deep: streaming deep TD(λ) on Mountain Car: stream TD(λ) with ObGD (Elsayed, Vasan &
Mahmood 2024) and the meta-learned step sizes on the same small network, predicting the return.

The problem is td-mountain-car's (``ms.problems.mountain_car``: gymnasium's ``MountainCar-v0``
under energy pumping with ε = 0.1 random actions) with the authors' discount γ = 0.99 instead of
1, and the learner sees the observation itself (``features="observation"``: position and
velocity scaled to [−1, 1]) instead of tiles. Each step's target value is the Monte-Carlo
return of its state.

The learner is :class:`ms.td.DeepTDLearner` with the stream TD(λ) recipe for every method: the
network :func:`ms.td.stream_mlp` ``(2, HIDDEN, HIDDEN, 1)`` (LayerNorm without affine
parameters, leaky ReLU, 90% sparse uniform init: with 2 inputs the first layer starts at 0, as
in the authors' code), the running observation normalization and the reward scaling (predictions
reported in the problem's units), λ = ``TRACE_DECAY`` (the authors'). Only the step-size method
differs, side by side on one stream per seed, each from the same initial network
(:mod:`metastep.experiments._td`'s side-by-side learner): ObGD (stream TD(λ)) and AdaptiveObGD
over their base step size α (±1 decade around the authors' 1.0, κ = 2); normalized IDBD (the
library's one-default candidate), IDBD and Autostep over their meta step size (±2 decades around
the library's default), given the TD curvature ``∇v(x_{t−1}) ⊙ z``; and Adam over α, the tuned
baseline.

The shard ``undiscounted`` (not at the smoke budget) runs ObGD, AdaptiveObGD and Adam again with
γ = 1, td-mountain-car's discount.

Measure (td-mountain-car's): ``return_error``, the mean over each bin of ``(v(x_t) − G_t)²``,
the prediction made before step t's update against the return ``G_t`` from that state. Per lane:
``mean_error`` over the run, ``final_error`` over its last ``FINAL_FRACTION``. The best
configuration of a method has the least ``mean_error`` (mean over seeds); one with a diverged
seed is never chosen. Step sizes: per bin, the 10%, 50% and 90% quantiles over all the network's
weights (Adam reports none). No published number exists for this protocol.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import metastep as ms
from metastep._learner_protocol import StepOutput
from metastep.experiments import _td
from metastep.experiments._base import Budget, Experiment, Shard, SweptMethod
from metastep.experiments._roster import centred_grid
from metastep.experiments.td_mountain_car import (
    error_over_time_figure as mountain_car_error_over_time,
    FINAL_FRACTION,
    QUANTILE_NAMES,
    QUANTILES,
    configuration_errors,
    entry,
    lane_errors,
    nearest,
)
from metastep.experiments.td_nonstationary import paired_difference
from metastep.problems import Problem
from metastep.problems.classic_control import gymnasium_missing, mountain_car_episodes

TRACE_DECAY = 0.8  # λ of the authors' stream TD(λ)
DISCOUNT = 0.99  # the authors' γ
UNDISCOUNTED_METHODS = ("stream-td", "adaptive-obgd", "adam")  # also run with γ = 1
HIDDEN = 32  # units in each of the two hidden layers
RECORDS = 50
BASELINE = "adam"  # the tuned baseline: its best α
ADAM_DECADES = (-4.0, -1.0)

BUDGETS = {
    # Stream TD(λ) and the baseline: each network learner in the program adds seconds of
    # compilation, and CI runs the smoke budget (the others are the same learner with another
    # method).
    "smoke": Budget(steps=1_000, seeds=2, settings={
        "points": 3, "num_episodes": 30, "methods": ("stream-td", "adam")}),
    "quick": Budget(steps=40_000, seeds=8, settings={"points": 5, "num_episodes": 500,
                                                     "undiscounted": True}),
    "full": Budget(steps=200_000, seeds=20, settings={"points": 9, "num_episodes": 2_000,
                                                      "undiscounted": True}),
}


def network() -> ms.deep.Model:
    return ms.td.stream_mlp((2, HIDDEN, HIDDEN, 1))


def deep_learner(method: Any, trace_decay: Any,
                 discount: float = DISCOUNT) -> ms.td.DeepTDLearner:
    """Stream TD(λ)'s learner (network, normalizations) with ``method``."""
    return ms.td.DeepTDLearner(network(), method, discount, trace_decay,
                               normalize_observations=True, scale_rewards=True)


def methods(points: int) -> dict[str, SweptMethod]:
    """Each method over ``points`` values (odd: the defaults in the middle)."""
    around_one = centred_grid(1.0, 2.0 / (points - 1), points)  # α of ObGD: 0.1 … 10
    return {method.name: method for method in (
        SweptMethod("stream-td", "stream TD(λ) (ObGD)", "learning_rate", "α", around_one,
                    ms.td.obgd, color="black"),
        SweptMethod("adaptive-obgd", "AdaptiveObGD", "learning_rate", "α", around_one,
                    ms.td.adaptive_obgd, color="0.5", linestyle="--"),
        SweptMethod("normalized-idbd", "normalized IDBD", "meta_step_size", "μ",
                    _td.meta_grid(ms.normalized_idbd, points), ms.normalized_idbd,
                    color="tab:green"),
        SweptMethod("idbd", "IDBD", "meta_step_size", "θ", _td.meta_grid(ms.idbd, points),
                    ms.idbd, color="tab:blue"),
        SweptMethod("autostep", "Autostep", "meta_step_size", "θ",
                    _td.meta_grid(ms.autostep, points), ms.autostep, color="tab:orange"),
        SweptMethod(BASELINE, "Adam", "learning_rate", "α",
                    tuple(np.logspace(*ADAM_DECADES, points).tolist()), ms.adam,
                    color="tab:red", linestyle=":"),
    )}


def budget_methods(budget: Budget) -> dict[str, SweptMethod]:
    every = methods(budget.settings["points"])
    names = budget.settings.get("methods", tuple(every))
    return {name: every[name] for name in names}


def budget_problem(budget: Budget, discount: float = DISCOUNT) -> Problem:
    return ms.problems.mountain_car(discount=discount, features="observation",
                                    num_episodes=budget.settings["num_episodes"])


def record_every(budget: Budget) -> int:
    return budget.record_every(RECORDS)


def default_value(method: SweptMethod) -> float:
    """The library's default (the authors' α = 1 for the ObGDs): the grid's middle."""
    return method.grid[_td.default_position(method)]


class DeepSideBySide(_td.SideBySide):
    """Every method's :func:`deep_learner` at position ``position`` of its grid, on one stream,
    each from the same initial network; records per method ``"<method>/return_error"`` and,
    but for Adam, ``"<method>/step_size_quantiles"`` [3] over all weights; NaN once the method
    diverged."""

    num_features = 2
    discount = DISCOUNT

    def __init__(self, methods: dict[str, SweptMethod], position: Any, trace_decay: Any):
        index = jnp.asarray(position).astype(jnp.int32)  # the engine passes grid values as floats
        self.learners = {
            name: deep_learner(method.transformation(jnp.asarray(method.grid)[index]),
                               trace_decay, self.discount)
            for name, method in methods.items()}

    def step_metrics(self, output: StepOutput, y: Any) -> dict[str, Any]:
        return {"return_error": jnp.square(output.prediction - y.value)}

    def method_records(self, name: str, learner: Any, learner_state: Any) -> dict[str, Any]:
        if name == BASELINE:
            return {}
        weights = jnp.concatenate([a.reshape(-1) for a in jax.tree.leaves(
            learner.step_sizes(learner_state))])
        return {"step_size_quantiles": jnp.quantile(weights, jnp.asarray(QUANTILES))}


class UndiscountedSideBySide(DeepSideBySide):
    """:class:`DeepSideBySide` with γ = 1, td-mountain-car's discount."""

    discount = 1.0


def return_sweep(problem: Problem, methods: dict[str, SweptMethod], trace_decay: float,
                 seeds: list[int], steps: int, record_every: int) -> pd.DataFrame:
    """One row per (method, grid value, seed, record): ``return_error``, the step-size
    quantiles (NaN for Adam) and ``diverged``; γ is the problem's."""
    side_by_side = DeepSideBySide if problem.params["discount"] == DISCOUNT else (
        UndiscountedSideBySide)
    return _td.side_by_side_table(side_by_side, problem, methods, trace_decay, seeds, steps,
                                  record_every, "return_error", "step_size_quantiles",
                                  list(QUANTILE_NAMES))


def undiscounted_methods(budget: Budget) -> dict[str, SweptMethod]:
    """The methods also run with γ = 1 (none at the smoke budget)."""
    if not budget.settings.get("undiscounted"):
        return {}
    return {name: method for name, method in budget_methods(budget).items()
            if name in UNDISCOUNTED_METHODS}


def shards(budget: Budget) -> list[Shard]:
    """``returns`` (γ = 0.99, every method) and, but at the smoke budget, ``undiscounted`` (γ =
    1, :data:`UNDISCOUNTED_METHODS`)."""
    lanes = budget.settings["points"] * budget.seeds
    runs = [("returns", DISCOUNT, budget_methods(budget))]
    if undiscounted_methods(budget):
        runs.append(("undiscounted", 1.0, undiscounted_methods(budget)))
    return [Shard.of_call(name, return_sweep, work=len(methods) * lanes * budget.steps,
                          engine_lane_steps=lanes * budget.steps,
                          problem=budget_problem(budget, discount), methods=methods,
                          trace_decay=TRACE_DECAY, seeds=budget.seed_list, steps=budget.steps,
                          record_every=record_every(budget))
            for name, discount, methods in runs]


# ---------------------------------------------------------------------------------------------
# Summary

def compared(lanes: pd.Series, name: str, mine: dict | None, reference_name: str,
             reference: dict | None) -> dict[str, float]:
    """The paired difference (by seed) of two configurations' mean errors; NaN where either is
    missing or had a seed diverge."""
    if mine is None or reference is None or mine["diverged_seeds"] or reference["diverged_seeds"]:
        return {"mean": np.nan, "standard_error": np.nan}
    return paired_difference(lanes.loc[(name, mine["value"])],
                             lanes.loc[(reference_name, reference["value"])])


def return_summary(table: pd.DataFrame, methods: dict[str, SweptMethod]) -> dict[str, Any]:
    """Per method: its best configuration (least mean error) and, but for Adam, its default;
    each against Adam at its best α and against stream TD(λ) at its default, paired by seed
    (``<which>_vs_adam_best``, ``<which>_vs_stream_td``: the mean and standard error over seeds
    of the difference of the mean errors; NaN where a seed of either diverged)."""
    configs = configuration_errors(table)
    lanes = lane_errors(table)["mean_error"]
    summary: dict[str, Any] = {}
    for name, method in methods.items():
        at_method = configs.loc[name]
        finite = at_method["mean_error"].dropna()
        summary[name] = {"best": entry(at_method, finite.idxmin()) if len(finite) else None,
                         "diverged_configurations": int((at_method["diverged_seeds"] > 0).sum())}
        if name != BASELINE:
            summary[name]["default"] = entry(at_method, nearest(at_method.index,
                                                                default_value(method)))
    adam_best = summary[BASELINE]["best"]
    stream_td = summary["stream-td"]["default"]
    for name in methods:
        for which in ("default", "best") if name != BASELINE else ():
            mine = summary[name].get(which)
            summary[name][f"{which}_vs_adam_best"] = compared(lanes, name, mine, BASELINE,
                                                              adam_best)
            if name != "stream-td":
                summary[name][f"{which}_vs_stream_td"] = compared(lanes, name, mine,
                                                                  "stream-td", stream_td)
    return summary


def zero_prediction_error(budget: Budget, discount: float = DISCOUNT) -> float:
    """The mean squared return of the pool's states: the error of predicting 0 everywhere (the
    stream serves whole episodes drawn uniformly, so every state of the pool alike)."""
    params = budget_problem(budget, discount).params
    pool = mountain_car_episodes(params["num_episodes"], float(params["random_action_probability"]),
                                 float(params["discount"]), params["environment_seed"],
                                 params["max_episode_steps"])
    return float(np.mean(np.square(pool.returns)))


def summarize(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Any]:
    """The summary of ``returns`` and, where it ran, of ``undiscounted`` (under that key)."""
    summary = {"trace_decay": TRACE_DECAY, "discount": DISCOUNT, "hidden": HIDDEN,
               "num_episodes": budget.settings["num_episodes"], "steps": budget.steps,
               "record_every": record_every(budget),
               "zero_prediction_error": zero_prediction_error(budget),
               **return_summary(tables["returns"], budget_methods(budget))}
    if undiscounted_methods(budget):
        summary["undiscounted"] = {
            "zero_prediction_error": zero_prediction_error(budget, 1.0),
            **return_summary(tables["undiscounted"], undiscounted_methods(budget))}
    return summary


# ---------------------------------------------------------------------------------------------
# Figures

def shown_configurations(table: pd.DataFrame,
                         methods: dict[str, SweptMethod]) -> dict[str, float]:
    """The configuration drawn per method: its default; Adam's best α."""
    return _td.shown_values(configuration_errors(table).loc[BASELINE, "mean_error"], methods,
                            BASELINE)


def label(method: SweptMethod, value: float) -> str:
    return _td.label(method, value, BASELINE)


def error_over_time_figure(table: pd.DataFrame, methods: dict[str, SweptMethod],
                           discount: float = DISCOUNT) -> Figure:
    """td-mountain-car's figure of the error over time, Adam at its best α."""
    title = (f"Mountain Car, energy pumping, observation → network (2, {HIDDEN}, {HIDDEN}, 1), "
             f"λ = {TRACE_DECAY:g}, γ = {discount:g}")
    return mountain_car_error_over_time(table, methods, title, BASELINE)


ERROR_AXIS_TOP = 1e5  # about 40 times the error of predicting 0: larger ones drawn at the top


def sweep_figure(table: pd.DataFrame, methods: dict[str, SweptMethod]) -> Figure:
    """One panel per method: the error over the run and over its last fifth against its step
    size or meta step size (log scales); a configuration where a seed diverged is left out."""
    configs = configuration_errors(table)
    figure = Figure(figsize=(3 * len(methods), 4.2), layout="constrained")
    panels = np.atleast_1d(figure.subplots(1, len(methods), sharey=True))
    styles = {"mean_error": ("o-", "whole run"),
              "final_error": ("v:", f"last {FINAL_FRACTION:.0%} of the run")}
    for axes, (name, method) in zip(panels, methods.items()):
        curves = configs.loc[name]
        for column, (marker, text) in styles.items():
            axes.plot(curves.index, curves[column].clip(upper=ERROR_AXIS_TOP), marker,
                      color=method.color, label=text)
        if name != BASELINE:
            axes.axvline(default_value(method), color="0.3", linestyle="--", linewidth=0.8)
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_ylim(top=ERROR_AXIS_TOP * 1.5)
        axes.set_xlabel(f"{method.symbol} (log scale)")
        axes.set_title(method.title, fontsize=10)
    panels[0].set_ylabel("mean squared error against the return")
    figure.legend(*panels[0].get_legend_handles_labels(), loc="outside lower center", ncols=2)
    figure.suptitle("Error against each method's step size or meta step size (dashed: the "
                    "default; missing points: a seed diverged)")
    return figure


def step_size_figure(table: pd.DataFrame, methods: dict[str, SweptMethod]) -> Figure:
    """The step sizes over all weights at each method's default: the median (line) and the
    10%–90% band, each averaged over seeds in log space."""
    shown = shown_configurations(table, methods)
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    axes = figure.subplots()
    for name, method in methods.items():
        if name == BASELINE:
            continue
        rows = _td.rows_of(table, name, shown[name])
        curves = {column: np.exp(np.log(rows[column]).groupby(rows["step"]).mean())
                  for column in QUANTILE_NAMES}
        steps = curves["step_size_median"].index
        axes.fill_between(steps, curves["step_size_low"], curves["step_size_high"],
                          color=method.color, alpha=0.15, linewidth=0)
        axes.plot(steps, curves["step_size_median"], color=method.color,
                  linestyle=method.linestyle, label=label(method, shown[name]))
    axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("step size over the network's weights")
    axes.legend(loc="best", fontsize=8)
    axes.set_title("Step sizes at each method's default: median, 10%–90% band", fontsize=10)
    return figure


def figures(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Figure]:
    table, methods = tables["returns"], budget_methods(budget)
    drawn = {"error-over-time": error_over_time_figure(table, methods),
             "error-vs-step-size": sweep_figure(table, methods),
             "step-sizes-over-time": step_size_figure(table, methods)}
    if undiscounted_methods(budget):
        drawn["undiscounted-error-over-time"] = error_over_time_figure(
            tables["undiscounted"], undiscounted_methods(budget), discount=1.0)
    return drawn


EXPLANATION = """
Streaming deep TD: the value of a state is a small network's output, learned online from one
transition at a time (no replay buffer, no batches), as in stream TD(λ) (Elsayed, Vasan &
Mahmood 2024). The problem is td-mountain-car's (gymnasium's `MountainCar-v0` under energy
pumping with 10% random actions) with the authors' discount γ = 0.99, so a return lies between
about −100 and 0; the network sees the observation (position and velocity scaled to [−1, 1]),
not tiles. The error is measured against each state's Monte-Carlo return, as in
td-mountain-car: the mean squared error of the prediction (made before each update) per bin and
over the run; the return's own variance around the true value is part of every method's error.

Every method drives the same learner (`ms.td.DeepTDLearner`) on the same network and data: the
authors' network (`ms.td.stream_mlp`: 2 → 32 → 32 → 1, LayerNorm without affine parameters,
leaky ReLU, 90% sparse uniform initialization), their running observation normalization and
reward scaling, λ = 0.8, accumulating traces over all the network's parameters. The methods, side
by side on one stream per seed and from the same initial network: ObGD (this is stream TD(λ))
and AdaptiveObGD over their base step size α (±1 decade around the authors' 1.0, κ = 2);
normalized IDBD, IDBD and Autostep over their meta step size (±2 decades around each library
default), given the TD curvature `∇v(x_{t−1}) ⊙ z`; Adam over α from 10⁻⁴ to 10⁻¹, the tuned
baseline.

What it shows, at the quick budget (8 seeds, 40,000 steps: about 300 episodes; predicting 0
everywhere would have an error of about 2,690, the mean square of the returns):

- Stream TD(λ) at the authors' defaults: 187 ± 8 over the run, 83 over its last 20%, 24 ± 10
  below Adam at its best α = 5.6·10⁻⁴ (211; paired over seeds, Adam's α chosen on the same runs).
  Its α hardly matters (178 to 187 from α = 0.1 to 10): the overshooting bound acts, and the
  step size it leaves, `α / (α κ max(|δ|, 1) ‖z‖₁)`, about 4.5·10⁻⁴ for every weight at the
  end, does not depend on α.
- AdaptiveObGD has the least error: 126 ± 7 at its default (64 over the last 20%), 60 ± 10 below
  stream TD(λ) and 85 ± 9 below tuned Adam; also insensitive to α. Its step sizes spread over
  two decades (10% and 90% quantiles 7·10⁻⁵ and 4·10⁻³ at the end).
- Normalized IDBD, the library's one default, blows up at its default μ = 0.003: its error grows
  through the run to about 2·10⁵ (never past the divergence threshold); its step-size factors
  grow with μ (5·10⁸ at μ = 0.03), and μ = 0.3 diverges on 4 of the 8 seeds; its best, at the
  grid's smallest μ = 3·10⁻⁵, has 895, four times tuned Adam's.
- IDBD at its default: 958 (a large start, 246 over the last 20%; it diverges on 7 and 8 of the
  8 seeds at θ = 0.1 and 1); Autostep at its default: 577 (248 over the last 20%; one seed
  diverges at θ = 1). Both keep their step
  sizes near their initial 0.05 here (Autostep's 10% quantile falls to 0.009).
- With γ = 1 (td-mountain-car's discount: returns reach −200, predicting 0 has 7,150; the
  `undiscounted` shard, three methods), stream TD(λ) drifts: on 3 of the 8 seeds its error per
  bin stays above 10⁵ for 5,000 to 15,000 steps (up to 7·10⁶) before it comes back down. Over
  the run it has 1.2·10⁵ at its default, where AdaptiveObGD has 831 and Adam at its best α (the
  grid's smallest, 10⁻⁴) 996; over the last 20% stream TD(λ) is back at 694 (AdaptiveObGD 435,
  Adam 596). Our reading: the bound keeps every step small (LayerNorm's gradients make the
  trace's norm large), too small to follow the values while the reward scale still grows.

How to read the figures:

- **error-over-time**: the mean squared error against the return per bin (mean over seeds, log
  scale) of each method at its default and of Adam at its best α.
- **error-vs-step-size**: one panel per method, its error over the run and over the last 20% of
  the run against its step size or meta step size (log scales), the default dashed; a
  configuration where a seed diverged is left out.
- **step-sizes-over-time**: each method's step sizes at its default over all the network's
  weights (median, and the band from the 10% to the 90% quantile; averaged over seeds in log
  space). ObGD's is one number for all weights; normalized IDBD's is the factor of its
  normalized update, not comparable in scale with the others'.
- **undiscounted-error-over-time** (quick and full budgets): as error-over-time, with γ = 1.

No published number exists for this protocol: Elsayed et al. show stream TD(λ) on a prediction
task of their own, as curves. The summary's numbers are this project's measurements.
"""

EXPERIMENT = Experiment(
    name="td-deep",
    description="Streaming deep TD(λ) on Mountain Car: stream TD(λ) with ObGD, AdaptiveObGD, "
    "normalized IDBD, IDBD, Autostep and tuned Adam on the same small network, predicting the "
    "return from the observation",
    budgets=BUDGETS,
    shards=shards,
    summarize=summarize,
    figures=figures,
    published=[],
    explanation=EXPLANATION,
    availability=gymnasium_missing,
    quick_minutes=1.8,  # approximate: see QUICK_MINUTES_MACHINE
)
