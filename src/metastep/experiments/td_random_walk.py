"""td-random-walk: TD(λ)'s error against its step size and λ on the 19-state random walk, and the
meta-learned step sizes of TIDBD, AutoTIDBD and SwiftTD on the same walk.

Sutton & Barto (2018, Fig. 12.6; the same protocol as Figs. 7.2 and 12.3) run TD(λ) with
accumulating traces on the 19-state random walk (``ms.problems.random_walk``: tabular features,
γ = 1, rewards −1 and +1 at the two ends, weights from 0) and plot the RMS error of the values
over the 19 states, averaged over the first 10 episodes, against a fixed step size α, one curve
per λ. An episode from the middle state lasts 100 steps on average, so here the first 10 episodes
are the first ``EARLY_STEPS`` = 1,000 steps of the stream, and the RMS error over the 19 states is
measured every 50 steps (the book measures it at the end of each episode).

The meta methods learn one step size per state instead: TIDBD in its semi-gradient and
full-gradient forms, AutoTIDBD (Kearney et al. 2018, 2019; ``ms.td.tidbd``,
``ms.td.autotidbd``, with TD(λ)'s accumulating traces) and SwiftTD (Javed et al. 2024,
``ms.td.SwiftTD``, true online TD(λ) with a bound on the rate of learning), each at its library
default and over its meta step size θ, ±2 decades around that default. At budgets whose ``steps``
exceed ``EARLY_STEPS``, a second shard runs every method for ``steps`` steps (the meta methods
need longer than 10 episodes to move their step sizes), with the error averaged over that run.

Every method runs in **one** compiled program (:class:`RandomWalkSideBySide`, the side-by-side
learner of :mod:`metastep.experiments._td`): a lane holds one λ and one position ``k`` on the
grids, and at ``k`` runs TD(λ) at the k-th α and each meta method at its k-th θ, on the same
stream. A method whose TD error diverges is marked diverged (its numbers NaN from that record
on); the others go on. A configuration with a diverged seed is excluded from the choice of the
best one.

Shards: ``first-10-episodes`` (the book's protocol) and, when ``steps > EARLY_STEPS``,
``long-run``. Each is one ``ms.sweep`` over λ × ``k`` × seeds.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

import metastep as ms
from metastep.experiments._base import Budget, Experiment, Published, Shard, SweptMethod
from metastep.experiments._td import (
    DISCOUNT,
    NUM_STATES,
    SideBySide,
    default_position,
    methods,
    sweep_side_by_side,
)
from metastep.problems import Problem

# ---------------------------------------------------------------------------------------------
# The problem, the methods and their grids

TRACE_DECAYS = (0.0, 0.4, 0.8, 0.9, 0.95, 1.0)  # λ, as in Sutton & Barto's figure
EARLY_STEPS = 1_000  # ≈ the first 10 episodes (100 steps each on average)
EARLY_RECORDS = 20  # the RMS error over the states, every 50 steps of the first 10 episodes
LONG_RECORDS = 20
# v(s) = 2 (s + 1) / (n + 1) − 1 with γ = 1 and p = 1/2 (docs/problems.md#random_walk), in
# NumPy: a JAX solve here would cost a compilation at every import of the experiments.
TRUE_VALUES = 2.0 * np.arange(1, NUM_STATES + 1) / (NUM_STATES + 1) - 1.0
# The error of not learning at all (weights at 0): the RMS of the true values.
NO_LEARNING_ERROR = float(np.sqrt(np.mean(TRUE_VALUES**2)))

BUDGETS = {
    "smoke": Budget(steps=EARLY_STEPS, seeds=2, settings={"points": 5}),
    "quick": Budget(steps=20_000, seeds=20, settings={"points": 9}),
    "full": Budget(steps=100_000, seeds=100, settings={"points": 13}),  # the book's 100 runs
}


def budget_methods(budget: Budget) -> dict[str, SweptMethod]:
    return methods(budget.settings["points"])


class RandomWalkSideBySide(SideBySide):
    """The side-by-side learner, recording per method ``"<method>/rms_error"`` (the RMS error
    over the states, of the weights against the true values: the weights are the values,
    features being one-hot), ``"<method>/max_abs_value"`` (the largest ``|w_i|``) and, for the
    meta methods, ``"<method>/step_sizes"`` [19]; all NaN once the method diverged."""

    def method_records(self, name: str, learner: Any, learner_state: Any) -> dict[str, Any]:
        weights = learner_state.weights
        error = jnp.sqrt(jnp.mean(jnp.square(weights - TRUE_VALUES.astype(weights.dtype))))
        return {"rms_error": error, "max_abs_value": jnp.max(jnp.abs(weights)),
                **super().method_records(name, learner, learner_state)}


# ---------------------------------------------------------------------------------------------
# Shards

STEP_SIZE_COLUMNS = tuple(f"alpha_s{state:02d}" for state in range(1, NUM_STATES + 1))


def side_by_side_sweep(problem: Problem, methods: dict[str, SweptMethod],
                       trace_decays: list[float], seeds: list[int], steps: int,
                       record_every: int) -> pd.DataFrame:
    """One row per (method, λ, grid value, seed, record): ``rms_error``, ``max_abs_value`` and
    ``diverged``; the meta methods' learned step sizes per state (``alpha_s01`` …
    ``alpha_s19``) in the rows of the last record (NaN in the others and for TD(λ))."""
    result, leading, record = sweep_side_by_side(RandomWalkSideBySide, problem, methods,
                                                 trace_decays, seeds, steps, record_every)
    last = record == len(result.steps) - 1
    tables = []
    for name in methods:
        error = result.records[f"{name}/rms_error"].reshape(-1)
        columns = {**leading[name], "rms_error": error,
                   "max_abs_value": result.records[f"{name}/max_abs_value"].reshape(-1),
                   "diverged": np.isnan(error)}
        step_sizes = result.records.get(f"{name}/step_sizes")
        for state, column in enumerate(STEP_SIZE_COLUMNS):
            values = (np.full(error.shape, np.nan) if step_sizes is None
                      else step_sizes[..., state].reshape(-1).astype(np.float64))
            columns[column] = np.where(last, values, np.nan)
        tables.append(pd.DataFrame(columns))
    return pd.concat(tables, ignore_index=True)


def shard_specs(budget: Budget) -> dict[str, tuple[int, int]]:
    """Shard name -> (steps, record interval)."""
    specs = {"first-10-episodes": (EARLY_STEPS, EARLY_STEPS // EARLY_RECORDS)}
    if budget.steps > EARLY_STEPS:
        specs["long-run"] = (budget.steps, budget.record_every(LONG_RECORDS))
    return specs


def shards(budget: Budget) -> list[Shard]:
    methods = budget_methods(budget)
    lanes = len(TRACE_DECAYS) * budget.settings["points"] * budget.seeds
    problem = ms.problems.random_walk(NUM_STATES, discount=DISCOUNT)
    return [
        Shard.of_call(name, side_by_side_sweep, work=len(methods) * lanes * steps,
                      engine_lane_steps=lanes * steps, problem=problem, methods=methods,
                      trace_decays=list(TRACE_DECAYS), seeds=budget.seed_list, steps=steps,
                      record_every=record_every)
        for name, (steps, record_every) in shard_specs(budget).items()
    ]


# ---------------------------------------------------------------------------------------------
# Summary

SECTIONS = {"first-10-episodes": "first_10_episodes", "long-run": "long_run"}  # summary keys


def lambda_key(trace_decay: float) -> str:
    """A summary key for a λ, without dots (they separate the levels of a key)."""
    return "lambda_" + f"{trace_decay:g}".replace(".", "_")


def error_curves(table: pd.DataFrame) -> pd.DataFrame:
    """Per (method, λ, value): ``rms_error`` (the lane's mean over its records, then the mean
    over seeds) and ``diverged_seeds``; the error NaN where any seed diverged."""
    keys = ["method", "trace_decay", "value"]
    lanes = table.groupby([*keys, "seed"]).agg(rms_error=("rms_error", "mean"),
                                               diverged=("diverged", "any"))
    curves = lanes.groupby(keys).agg(rms_error=("rms_error", "mean"),
                                     diverged_seeds=("diverged", "sum"))
    curves.loc[curves["diverged_seeds"] > 0, "rms_error"] = np.nan
    return curves


def best_of(curve: pd.Series) -> tuple[float, float]:
    """(value, error) of the least error of a curve indexed by value; NaN are excluded."""
    value = curve.idxmin()
    return float(value), float(curve.loc[value])


def out_of_range_fraction(table: pd.DataFrame, trace_decay: float, step_size: float) -> float:
    """The fraction of TD(λ)'s seeds at (λ, α) whose values left [−1, 1], the range of every
    return of the walk, at some record (or that diverged): the mark of an unstable step size."""
    lanes = table[(table["method"] == "td") & (table["trace_decay"] == trace_decay)
                  & np.isclose(table["value"], step_size)]
    unstable = lanes["diverged"] | (lanes["max_abs_value"] > 1.0)
    return float(unstable.groupby(lanes["seed"]).any().mean())


def td_summary(curves: pd.Series, table: pd.DataFrame, grid: tuple[float, ...]) -> dict:
    per_lambda = {trace_decay: best_of(curve.droplevel("trace_decay"))
                  for trace_decay, curve in curves.groupby(level="trace_decay")}
    best_lambda = min(per_lambda, key=lambda trace_decay: per_lambda[trace_decay][1])
    lambdas = np.asarray(list(per_lambda))
    best_alphas = np.asarray([value for value, _ in per_lambda.values()])
    return {
        "best_lambda": float(best_lambda),
        "best_alpha": per_lambda[best_lambda][0],
        "best_rms_error": per_lambda[best_lambda][1],
        # Spearman's rank correlation of λ and the best α (ties share their mean rank).
        "best_alpha_lambda_rank_correlation": float(
            pd.Series(lambdas).rank().corr(pd.Series(best_alphas).rank())),
        **{lambda_key(trace_decay): {
            "best_alpha": alpha, "best_rms_error": error,
            "out_of_range_fraction_at_largest_alpha": out_of_range_fraction(
                table, trace_decay, grid[-1])}
           for trace_decay, (alpha, error) in per_lambda.items()},
    }


def meta_summary(curves: pd.Series, method: SweptMethod, td_best: dict) -> dict:
    default = method.grid[default_position(method)]
    entry, defaults = {}, {}
    for trace_decay, curve in curves.groupby(level="trace_decay"):
        curve = curve.droplevel("trace_decay")
        theta, error = best_of(curve)
        defaults[trace_decay] = float(curve.iloc[default_position(method)])
        entry[lambda_key(trace_decay)] = {
            "default_rms_error": defaults[trace_decay], "best_theta": theta,
            "best_rms_error": error,
            "td_best_rms_error": td_best[lambda_key(trace_decay)]["best_rms_error"]}
    finite = {trace_decay: error for trace_decay, error in defaults.items() if np.isfinite(error)}
    best_lambda = min(finite, key=finite.get) if finite else np.nan
    return {"default_theta": default, "default_best_lambda": float(best_lambda),
            "default_rms_error": finite.get(best_lambda, np.nan), **entry}


def summarize(tables: dict[str, pd.DataFrame], budget: Budget) -> dict:
    methods = budget_methods(budget)
    summary = {"trace_decays": list(TRACE_DECAYS), "no_learning_rms_error": NO_LEARNING_ERROR}
    for shard, (steps, _) in shard_specs(budget).items():
        table = tables[shard]
        curves = error_curves(table)["rms_error"]
        td = td_summary(curves.loc["td"], table, methods["td"].grid)
        section = {"steps": steps, "td": td}
        for name, method in methods.items():
            if name != "td":
                section[name] = meta_summary(curves.loc[name], method, td)
        summary[SECTIONS[shard]] = section
    return summary


# ---------------------------------------------------------------------------------------------
# Figures

ERROR_AXIS_TOP = 0.75  # larger errors (TD(λ) blowing up at large α and λ) are drawn at the top
ERROR_AXIS_BOTTOM = 0.2


def lambda_colors() -> list:
    """One colour per λ, from dark (λ = 0) to light (λ = 1)."""
    return [colormaps["viridis"](i / (len(TRACE_DECAYS) - 1)) for i in range(len(TRACE_DECAYS))]


def error_axes(axes, xlabel: str, bottom: float = ERROR_AXIS_BOTTOM):
    axes.axhline(NO_LEARNING_ERROR, color="0.5", linestyle=":", linewidth=1,
                 label="no learning (weights at 0)")
    axes.set_xscale("log")
    axes.set_ylim(bottom, ERROR_AXIS_TOP)
    axes.set_xlabel(xlabel)


def main_shard(tables: dict[str, pd.DataFrame]) -> str:
    """The shard of the longest run: the meta methods' sweeps and learned step sizes."""
    return "long-run" if "long-run" in tables else "first-10-episodes"


def error_vs_step_size_figure(tables, methods) -> Figure:
    """One panel per λ: TD(λ) against α, the meta methods at their defaults as lines."""
    curves = error_curves(tables["first-10-episodes"])["rms_error"]
    figure = Figure(figsize=(13, 7), layout="constrained")
    panels = figure.subplots(2, len(TRACE_DECAYS) // 2, sharex=True, sharey=True).ravel()
    for axes, trace_decay in zip(panels, TRACE_DECAYS):
        td = curves.loc[("td", trace_decay)]
        axes.plot(td.index, td.clip(upper=ERROR_AXIS_TOP), "o-", color="black",
                  label="TD(λ), fixed α")
        diverged = td.index[td.isna()]
        axes.plot(diverged, np.full(len(diverged), 0.97 * ERROR_AXIS_TOP), "x", color="black",
                  label="TD(λ): a seed diverged (at the top)")
        for name, method in methods.items():
            if name != "td":
                default = curves.loc[(name, trace_decay)].iloc[default_position(method)]
                axes.axhline(default, color=method.color, linestyle=method.linestyle,
                             label=f"{method.title}, defaults")
        error_axes(axes, "step size α (log scale)")
        axes.set_title(f"λ = {trace_decay:g}")
    for axes in panels[::len(panels) // 2]:
        axes.set_ylabel("RMS error over the 19 states")
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=4)
    figure.suptitle("19-state random walk, error averaged over the first 10 episodes "
                    "(errors above 0.75 drawn at 0.75)")
    return figure


def td_lambda_figure(tables) -> Figure:
    """Sutton & Barto's picture: TD(λ) against α, one curve per λ, on one panel."""
    curves = error_curves(tables["first-10-episodes"])["rms_error"].loc["td"]
    figure = Figure(figsize=(6.5, 4.5), layout="constrained")
    axes = figure.subplots()
    for color, trace_decay in zip(lambda_colors(), TRACE_DECAYS):
        curve = curves.loc[trace_decay]
        axes.plot(curve.index, curve.clip(upper=ERROR_AXIS_TOP), "o-", color=color,
                  label=f"λ = {trace_decay:g}")
    error_axes(axes, "step size α (log scale)")
    axes.set_ylabel("RMS error over the 19 states,\nfirst 10 episodes")
    axes.set_title("TD(λ) with accumulating traces", fontsize=10)
    axes.legend(loc="lower left", ncols=2)
    return figure


def meta_sweeps_figure(tables, methods) -> Figure:
    """One panel per meta method: its error against its meta step size, one curve per λ."""
    shard = main_shard(tables)
    curves = error_curves(tables[shard])["rms_error"]
    metas = [method for name, method in methods.items() if name != "td"]
    # A long run learns to errors below the first 10 episodes' axis.
    bottom = min(ERROR_AXIS_BOTTOM, 0.8 * curves.min())
    figure = Figure(figsize=(13, 4.5), layout="constrained")
    panels = figure.subplots(1, len(metas), sharey=True)
    for axes, method in zip(panels, metas):
        for color, trace_decay in zip(lambda_colors(), TRACE_DECAYS):
            curve = curves.loc[(method.name, trace_decay)]
            axes.plot(curve.index, curve.clip(upper=ERROR_AXIS_TOP), "o-", color=color,
                      label=f"λ = {trace_decay:g}")
        axes.axvline(method.grid[default_position(method)], color="0.3", linestyle="--",
                     linewidth=0.8, label="library default")
        error_axes(axes, "meta step size θ (log scale)", bottom)
        axes.set_title(method.title, fontsize=10)
    panels[0].set_ylabel("RMS error over the 19 states")
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    steps = tables[shard]["step"].max()
    figure.suptitle(f"Meta methods over their meta step size, error averaged over {steps:,} "
                    "steps (a configuration where a seed diverged is left out)")
    return figure


def step_sizes_figure(tables, methods) -> Figure:
    """One panel per meta method: the learned step size of each state at the end of the run
    (geometric mean over seeds), at the default θ, one curve per λ."""
    table = tables[main_shard(tables)]
    final = table[table["step"] == table["step"].max()]
    metas = [method for name, method in methods.items() if name != "td"]
    figure = Figure(figsize=(13, 4.5), layout="constrained")
    panels = figure.subplots(1, len(metas), sharey=True)
    states = np.arange(1, NUM_STATES + 1)
    for axes, method in zip(panels, metas):
        rows = final[(final["method"] == method.name)
                     & (final["position"] == default_position(method))]
        for color, trace_decay in zip(lambda_colors(), TRACE_DECAYS):
            at_lambda = rows[rows["trace_decay"] == trace_decay][list(STEP_SIZE_COLUMNS)]
            logs = np.log(np.maximum(at_lambda, np.finfo(np.float32).tiny))  # 0: underflow
            axes.plot(states, np.exp(logs.mean()), "o-", color=color,
                      markersize=3, label=f"λ = {trace_decay:g}")
        axes.axhline(method.constants["initial_step_size"], color="0.3", linestyle="--",
                     linewidth=0.8, label="initial step size α₀")
        axes.set_yscale("log")
        axes.set_xticks([1, 5, 10, 15, 19])
        axes.set_xlabel("state (1 = left end, 19 = right end)")
        axes.set_title(f"{method.title}, θ = {method.grid[default_position(method)]:g}",
                       fontsize=10)
    panels[0].set_ylabel("learned step size α at the end (log scale)")
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    steps = table["step"].max()
    figure.suptitle(f"Step sizes per state after {steps:,} steps, at each method's defaults "
                    "(geometric mean over seeds)")
    return figure


def figures(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Figure]:
    methods = budget_methods(budget)
    return {"error-vs-step-size": error_vs_step_size_figure(tables, methods),
            "td-lambda-curves": td_lambda_figure(tables),
            "meta-step-size-sweeps": meta_sweeps_figure(tables, methods),
            "step-sizes-per-state": step_sizes_figure(tables, methods)}


# ---------------------------------------------------------------------------------------------
# What the book says, and the registration

BOOK = ("Sutton & Barto 2018, Fig. 12.6 and §12.2 (TD(λ), 19-state random walk, "
        "first 10 episodes)")
EARLY = SECTIONS["first-10-episodes"]
PUBLISHED = [
    Published(f"{EARLY}.td.best_lambda", "an intermediate λ does best (neither 0 nor 1)",
              BOOK, check=lambda trace_decay: 0.0 < trace_decay < 1.0),
    Published(f"{EARLY}.td.best_alpha_lambda_rank_correlation",
              "the larger λ, the smaller the best α", BOOK + "; reproduced if the rank "
              "correlation of λ and the best α is at most −0.8",
              check=lambda correlation: correlation <= -0.8),
    Published(f"{EARLY}.td.{lambda_key(1.0)}.out_of_range_fraction_at_largest_alpha",
              "with λ near 1, a large α makes TD(λ) unstable", BOOK + "; at λ = 1 and α = 1, "
              "reproduced if the values of most seeds leave [−1, 1] (or diverge)",
              check=lambda fraction: fraction >= 0.5),
    Published(f"{EARLY}.td.{lambda_key(0.0)}.out_of_range_fraction_at_largest_alpha", 0.0,
              "TD(0) on one-hot features with α ≤ 1 moves a value to a weighted mean of itself "
              "and its target (a reward ±1 or a value), so no value leaves [−1, 1]",
              kind="theory", tolerance=0.0),
]

EXPLANATION = """
Sutton & Barto's 19-state random walk (tabular features, γ = 1, reward −1 off the left end and
+1 off the right end, values from 0) is the classic test of how TD(λ) depends on its step size α
and its trace decay λ. Their figure plots the RMS error of the values over the 19 states,
averaged over the first 10 episodes, against a fixed α, one curve per λ. This experiment
measures the same curves (the first 1,000 steps stand for the first 10 episodes, the error is
taken every 50 steps) and sets beside them the methods that learn one step size per state:
TIDBD (semi-gradient and full-gradient), AutoTIDBD and SwiftTD, at the library's defaults and
over their meta step size θ. All methods of a lane read the same stream.

What it shows. Each TD(λ) curve is U-shaped in α: too small an α barely moves the values from
0 (the error stays near that of not learning, 0.55), too large a one makes them noisy, and for λ
near 1 it makes TD(λ) unstable (the accumulating traces of a state visited many times in an
episode add up). The best α falls as λ rises, and an intermediate λ reaches the least error. The
meta methods start from their initial step size (α₀ = 0.05 for TIDBD and AutoTIDBD, 0.01 for
SwiftTD): over 10 episodes they cannot move far from it, so their errors lie near those of
TD(λ) at α₀. Over the longer run of the `long-run` shard (quick and full budgets) they learn step
sizes per state, and how their error depends on θ shows how sensitive each is to its one
hyperparameter. At the quick budget (20 seeds, 20,000 steps): TIDBD's error hardly changes from
θ = 10⁻⁴ to 0.1 (its step sizes stay near α₀, so it behaves as TD(λ) at α = 0.05), at θ = 1
(100 times its default) the semi-gradient form beats TD(λ) at its best α for λ from 0.8 to 0.95,
and at λ = 1 most θ diverge on some seed; AutoTIDBD raises the step sizes of the middle states
when λ is small; SwiftTD at its defaults learns slowest for small λ and does best of all at
λ = 1; TD(λ) at its best α for each λ < 1 matches or beats every meta method at its defaults.

How to read the figures:

- **error-vs-step-size**: one panel per λ: TD(λ)'s error against α (log scale; errors above
  0.75 drawn at 0.75, × where a seed diverged), the meta methods at their defaults as horizontal
  lines (over 10 episodes TIDBD's and AutoTIDBD's, all from α₀ = 0.05, lie on top of each
  other), and the error of not learning (dotted).
- **td-lambda-curves**: the book's picture: TD(λ) against α, all λ on one panel.
- **meta-step-size-sweeps**: each meta method's error against θ (log scale), one curve per λ,
  the library's default dashed; averaged over the longest run of the budget. A configuration
  where a seed diverged is left out.
- **step-sizes-per-state**: each meta method's learned step size per state at the end of the
  longest run, at its defaults (geometric mean over seeds), one curve per λ; the dashed line is
  α₀.

The book gives its result as a figure; the checks below are its qualitative claims. The error
here is measured every 50 steps rather than at the end of each episode, and on 20 (quick) or 100
(full) runs, so the numbers are close to, not equal to, the book's.
"""

EXPERIMENT = Experiment(
    name="td-random-walk",
    description="TD(λ) on the 19-state random walk: error vs α and λ (Sutton & Barto), and "
    "TIDBD, AutoTIDBD and SwiftTD over their meta step sizes",
    budgets=BUDGETS,
    shards=shards,
    summarize=summarize,
    figures=figures,
    published=PUBLISHED,
    explanation=EXPLANATION,
    quick_minutes=0.6,  # approximate: see QUICK_MINUTES_MACHINE
)
