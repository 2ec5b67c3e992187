"""trace-patterning: TD(λ) and the meta-learned step sizes predicting the discounted US of Rafiee
et al.'s trace patterning, on fixed microstimuli features, and what step sizes each learns for
the US, the CSs and the distractors.

The problem is ``ms.problems.trace_patterning`` at its defaults: 6 CSs, 10 activation patterns
of 3 CSs, 5 distractors, ISI 14 to 26 steps, ITI 80 to 120, γ = 0.95, and per signal a presence
feature and 16 microstimuli (with a bias: 205 features). Whether a trial is reinforced is an
exact match of all six CSs with one of the activation patterns: no weighted sum of these
features expresses it (the paper's point: fixed representations fail trace patterning), so
every linear learner here has an error floor; the distractors carry no information at all.

Methods, all with λ = ``TRACE_DECAY`` and accumulating traces (SwiftTD: its true online trace),
side by side on one stream per seed (:mod:`metastep.experiments._td`; the methods of
``td-mountain-car``): TD(λ) with a fixed α over a grid, TIDBD in both forms, AutoTIDBD and
SwiftTD over their meta step size θ, and ``ms.normalized_idbd`` as :class:`ms.td.TDLearner`'s
method over μ, each ±2 decades around the library's default.

Measures, per bin of ``record_every`` steps: ``value_error``, the mean of ``(v(x_t) − v_t)²``,
the prediction made before step t's update against the expected return ``v_t`` (the stream's
``value``, in closed form); and, per seed and bin from the stream alone, ``return_variance``,
the mean of ``(G_t − v_t)²`` with ``G_t`` the realized return. The paper's mean squared return
error (MSRE) against ``G_t`` equals ``value_error + return_variance`` in expectation (the
prediction and ``v_t`` depend on the past only, and ``E[G_t − v_t | past] = 0``); the summary
gives that sum as ``msre``. Per lane: ``mean_error`` over the run and ``final_error`` over its
last ``FINAL_FRACTION``; the best configuration of a method has the least ``mean_error`` (mean
over seeds), a configuration with a diverged seed is never chosen.

Step sizes: per bin, the meta methods' learned step sizes averaged over each group of features
(geometric mean: the US's presence and microstimuli, the CSs', the distractors', the bias), the
structural credit assignment this experiment asks about: do the meta methods give the
distractors smaller step sizes than the CSs? No published number exists for this protocol.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import metastep as ms
from metastep._lanes import split_seed
from metastep._learner_protocol import StepOutput
from metastep.experiments import _td
from metastep.experiments._base import Budget, Experiment, Shard, SweptMethod
from metastep.experiments.td_mountain_car import methods as tile_coding_methods
from metastep.experiments.td_nonstationary import paired_difference
from metastep.problems import Problem
from metastep.problems.trace_patterning import feature_groups

TRACE_DECAY = 0.9  # λ of every method (the authors' code's default)
PROBLEM = ms.problems.trace_patterning()
NUM_FEATURES = PROBLEM.num_features
DISCOUNT = PROBLEM.params["discount"]
GROUPS = ("us", "cs", "distractor", "bias")
GROUP_MASKS = {group: feature_groups(PROBLEM) == group for group in GROUPS}
STEP_SIZE_COLUMNS = tuple(f"step_size_{group}" for group in GROUPS)
RECORDS = 50
FINAL_FRACTION = 0.2
# Returns lie in [0, 2): a squared TD error past 10⁶ (predictions off by 1,000) is a blow-up, which
# the engine's threshold (10²⁰) would leave unflagged at errors of 10⁷.
DIVERGENCE_THRESHOLD = 1e6
ERROR_AXIS_TOP = 0.3  # about twice the error of predicting 0: larger ones drawn at the top

BUDGETS = {
    "smoke": Budget(steps=2_000, seeds=2, settings={"points": 3}),
    "quick": Budget(steps=100_000, seeds=10, settings={"points": 9}),
    "full": Budget(steps=1_000_000, seeds=30, settings={"points": 13}),
}


def budget_methods(budget: Budget) -> dict[str, SweptMethod]:
    """TD(λ) over α per weight from 10⁻³ to 10^−0.5 and the meta methods (td-mountain-car's)."""
    return tile_coding_methods(budget.settings["points"])


def record_every(budget: Budget) -> int:
    return budget.record_every(RECORDS)


def group_means(step_sizes: jax.Array) -> jax.Array:
    """The geometric mean of the step sizes over each group of features [len(GROUPS)] (a step
    size that underflowed to 0 counts as the smallest normal float32)."""
    logs = jnp.log(jnp.maximum(step_sizes, np.finfo(np.float32).tiny))
    return jnp.exp(jnp.stack([logs[GROUP_MASKS[group]].mean() for group in GROUPS]))


class PatterningSideBySide(_td.SideBySide):
    """The side-by-side learner on trace patterning, recording per method
    ``"<method>/value_error"`` (the bin's mean squared error of the predictions against the
    expected return) and, for the meta methods, ``"<method>/group_step_sizes"``; NaN once the
    method diverged."""

    num_features = NUM_FEATURES
    discount = DISCOUNT
    divergence_threshold = DIVERGENCE_THRESHOLD

    def step_metrics(self, output: StepOutput, y: Any) -> dict[str, Any]:
        return {"value_error": jnp.square(output.prediction - y.value)}

    def method_records(self, name: str, learner: Any, learner_state: Any) -> dict[str, Any]:
        if name == "td":
            return {}
        return {"group_step_sizes": group_means(learner.step_sizes(learner_state))}


def error_sweep(problem: Problem, methods: dict[str, SweptMethod], trace_decay: float,
                seeds: list[int], steps: int, record_every: int) -> pd.DataFrame:
    """One row per (method, grid value, seed, record): ``value_error``, the step size of each
    group of features (NaN for TD(λ)) and ``diverged``."""
    result, leading, _ = _td.sweep_side_by_side(PatterningSideBySide, problem, methods,
                                                [trace_decay], seeds, steps, record_every)
    tables = []
    for name in methods:
        error = result.records[f"{name}/value_error"].reshape(-1).astype(np.float64)
        groups = result.records.get(f"{name}/group_step_sizes")
        groups = (np.full((len(error), len(GROUPS)), np.nan) if groups is None
                  else groups.reshape(-1, len(GROUPS)).astype(np.float64))
        tables.append(pd.DataFrame({**leading[name], "value_error": error,
                                    **dict(zip(STEP_SIZE_COLUMNS, groups.T)),
                                    "diverged": np.isnan(error)}))
    return pd.concat(tables, ignore_index=True)


def return_variances(problem: Problem, seeds: list[int], steps: int,
                     record_every: int) -> pd.DataFrame:
    """Per seed and bin, from the stream that the seed's lanes read (its key is the engine's,
    ``split(PRNGKey(seed))[0]``): ``return_variance``, the mean of ``(G_t − v_t)²``, and
    ``value_square``, the mean of ``v_t²`` (the error of predicting 0). ``method`` is
    ``"stream"``."""
    # The trials do not depend on the features: presence features are the cheapest to make.
    stream = ms.problems.trace_patterning("presence", **{
        name: value for name, value in problem.params.items() if name != "features"})

    @jax.jit
    def bin_means(key):
        sample = stream.generate(stream.init(key), steps)[1]
        value = sample.y.value
        deviation = sample.info["return"] - value
        return (jnp.square(deviation).reshape(-1, record_every).mean(1),
                jnp.square(value).reshape(-1, record_every).mean(1))

    tables = []
    for seed in seeds:
        variance, square = map(np.asarray, bin_means(split_seed(np.uint32(seed))[0]))
        tables.append(pd.DataFrame({
            "method": "stream", "seed": seed,
            "step": record_every * np.arange(1, len(variance) + 1),
            "return_variance": variance.astype(np.float64),
            "value_square": square.astype(np.float64)}))
    return pd.concat(tables, ignore_index=True)


def shards(budget: Budget) -> list[Shard]:
    methods = budget_methods(budget)
    lanes = budget.settings["points"] * budget.seeds
    common = {"problem": PROBLEM, "seeds": budget.seed_list, "steps": budget.steps,
              "record_every": record_every(budget)}
    return [Shard.of_call("errors", error_sweep, work=len(methods) * lanes * budget.steps,
                          engine_lane_steps=lanes * budget.steps, methods=methods,
                          trace_decay=TRACE_DECAY, **common),
            Shard.of_call("returns", return_variances, work=budget.seeds * budget.steps,
                          **common)]


# ---------------------------------------------------------------------------------------------
# Summary

def lane_errors(table: pd.DataFrame) -> pd.DataFrame:
    """Per (method, value, seed): ``mean_error`` over the run, ``final_error`` over its last
    ``FINAL_FRACTION``, ``diverged``, and the step sizes of the groups at the last record."""
    keys = ["method", "value", "seed"]
    last_steps = table["step"] > (1.0 - FINAL_FRACTION) * table["step"].max()
    last_record = table[table["step"] == table["step"].max()].set_index(keys)
    return pd.DataFrame({
        "mean_error": table.groupby(keys)["value_error"].mean(),
        "final_error": table[last_steps].groupby(keys)["value_error"].mean(),
        "diverged": table.groupby(keys)["diverged"].any(),
        **{column: last_record[column] for column in STEP_SIZE_COLUMNS},
    })


def configuration_errors(table: pd.DataFrame) -> pd.DataFrame:
    """Per (method, value): the lane errors averaged over seeds, the standard error of the mean
    error over seeds, ``diverged_seeds`` and the final step sizes of the groups (geometric mean
    over seeds); all NaN where a seed diverged."""
    lanes = lane_errors(table)
    logs = np.log(lanes[list(STEP_SIZE_COLUMNS)]).groupby(["method", "value"]).mean()
    configs = lanes.groupby(["method", "value"]).agg(
        mean_error=("mean_error", "mean"), mean_error_se=("mean_error", "sem"),
        final_error=("final_error", "mean"), diverged_seeds=("diverged", "sum"))
    configs = configs.join(np.exp(logs))
    numbers = ["mean_error", "mean_error_se", "final_error", *STEP_SIZE_COLUMNS]
    configs.loc[configs["diverged_seeds"] > 0, numbers] = np.nan
    return configs


def stream_numbers(returns: pd.DataFrame) -> dict[str, float]:
    """The return's variance around the value over the run and its last part, and the error of
    predicting 0, each averaged over seeds."""
    last_steps = returns["step"] > (1.0 - FINAL_FRACTION) * returns["step"].max()
    return {"return_variance": float(returns["return_variance"].mean()),
            "final_return_variance": float(returns[last_steps]["return_variance"].mean()),
            "zero_prediction_error": float(returns["value_square"].mean())}


def entry(configs: pd.DataFrame, value: float, stream: dict[str, float],
          step_sizes: bool) -> dict[str, Any]:
    """A configuration's errors, its MSRE (error + the return's variance) and, with
    ``step_sizes``, its final step sizes per group and the distractors' over the CSs'."""
    row = configs.loc[value]
    numbers = {"value": float(value), **{name: float(row[name]) for name in (
        "mean_error", "mean_error_se", "final_error", "diverged_seeds")}}
    numbers["msre"] = numbers["mean_error"] + stream["return_variance"]
    numbers["final_msre"] = numbers["final_error"] + stream["final_return_variance"]
    if step_sizes:
        numbers["final_step_sizes"] = {group: float(row[f"step_size_{group}"])
                                       for group in GROUPS}
        numbers["distractor_to_cs"] = float(row["step_size_distractor"] / row["step_size_cs"])
    return numbers


def nearest(index: pd.Index, value: float) -> float:
    """The grid value of ``index`` nearest ``value`` (tables hold floats read back)."""
    return float(index[np.argmin(np.abs(index.to_numpy() - value))])


def error_summary(table: pd.DataFrame, methods: dict[str, SweptMethod],
                  stream: dict[str, float]) -> dict[str, Any]:
    """Per method: its best configuration (least mean error) and, for the meta methods, its
    defaults, with their final step sizes per group and the distractors' over the CSs'; each
    meta method's defaults against TD(λ) at its best α, paired by seed (NaN where a seed
    diverged)."""
    configs = configuration_errors(table)
    lanes = lane_errors(table)["mean_error"]
    summary: dict[str, Any] = {}
    for name, method in methods.items():
        at_method = configs.loc[name]
        finite = at_method["mean_error"].dropna()
        summary[name] = {
            "best": (entry(at_method, finite.idxmin(), stream, name != "td") if len(finite)
                     else None),
            "diverged_configurations": int((at_method["diverged_seeds"] > 0).sum())}
        if name != "td":
            default = method.grid[_td.default_position(method)]
            summary[name]["default"] = entry(at_method, nearest(at_method.index, default),
                                             stream, step_sizes=True)
    td_best = summary["td"]["best"]
    for name in methods:
        default = summary[name].get("default")
        if default is None or td_best is None:
            continue
        summary[name]["default_vs_td_best"] = (
            paired_difference(lanes.loc[(name, default["value"])],
                              lanes.loc[("td", td_best["value"])])
            if default["diverged_seeds"] == 0 else {"mean": np.nan, "standard_error": np.nan})
    return summary


def summarize(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Any]:
    stream = stream_numbers(tables["returns"])
    return {"trace_decay": TRACE_DECAY, "discount": DISCOUNT, "num_features": NUM_FEATURES,
            "steps": budget.steps, "record_every": record_every(budget), **stream,
            **error_summary(tables["errors"], budget_methods(budget), stream)}


# ---------------------------------------------------------------------------------------------
# Figures

def shown_configurations(table: pd.DataFrame,
                         methods: dict[str, SweptMethod]) -> dict[str, float]:
    """The configuration drawn per method: a meta method's default, TD(λ)'s best α."""
    errors = configuration_errors(table).loc["td", "mean_error"]
    best_alpha = float(errors.idxmin()) if errors.notna().any() else methods["td"].grid[0]
    return {name: best_alpha if name == "td" else method.grid[_td.default_position(method)]
            for name, method in methods.items()}


def rows_of(table: pd.DataFrame, name: str, value: float) -> pd.DataFrame:
    return table[(table["method"] == name) & np.isclose(table["value"], value)]


def label(method: SweptMethod, value: float) -> str:
    which = "best" if method.name == "td" else "default"
    return f"{method.title}, {which} {method.symbol} = {value:.3g}"


def error_over_time_figure(tables: dict[str, pd.DataFrame],
                           methods: dict[str, SweptMethod]) -> Figure:
    """The squared error against the expected return per bin (mean over seeds):
    each meta method at its defaults, TD(λ) at its best α; dotted, the error of predicting 0
    and the return's variance around the value (MSRE = error + that variance)."""
    table, returns = tables["errors"], tables["returns"]
    figure = Figure(figsize=(10, 4.8), layout="constrained")
    axes = figure.subplots()
    for name, value in shown_configurations(table, methods).items():
        curve = rows_of(table, name, value).groupby("step")["value_error"].mean()
        axes.plot(curve.index, curve.clip(upper=ERROR_AXIS_TOP), color=methods[name].color,
                  linestyle=methods[name].linestyle, label=label(methods[name], value))
    for column, color, text in (("value_square", "0.4", "predicting 0"),
                                ("return_variance", "0.7", "the return's variance around v")):
        curve = returns.groupby("step")[column].mean()
        axes.plot(curve.index, curve, color=color, linestyle=":", label=text)
    axes.set_ylim(0, ERROR_AXIS_TOP)
    axes.set_xlabel("step")
    axes.set_ylabel("mean squared error against the expected return, per bin")
    axes.legend(loc="best", fontsize=8)
    axes.set_title(f"Trace patterning, {NUM_FEATURES} microstimuli features, γ = {DISCOUNT:g}, "
                   f"λ = {TRACE_DECAY:g} (mean over seeds; errors above {ERROR_AXIS_TOP:g} "
                   "drawn at the top)", fontsize=10)
    return figure


def sweep_figure(table: pd.DataFrame, methods: dict[str, SweptMethod]) -> Figure:
    """One panel per method: the error over the run and over its last part against the swept
    step size (log scale); a configuration where a seed diverged is left out."""
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


GROUP_STYLES = {"us": ("tab:red", "US"), "cs": ("tab:blue", "CSs"),
                "distractor": ("tab:gray", "distractors"), "bias": ("black", "bias")}


def step_size_figure(table: pd.DataFrame, methods: dict[str, SweptMethod]) -> Figure:
    """One panel per meta method at its defaults: the step sizes of each group of features
    over time (geometric mean over the group's features, then over seeds)."""
    shown = shown_configurations(table, methods)
    meta = [name for name in methods if name != "td"]
    figure = Figure(figsize=(15, 4.2), layout="constrained")
    panels = figure.subplots(1, len(meta))
    for axes, name in zip(panels, meta):
        rows = rows_of(table, name, shown[name])
        for group, (color, text) in GROUP_STYLES.items():
            logs = np.log(rows[f"step_size_{group}"]).groupby(rows["step"]).mean()
            axes.plot(logs.index, np.exp(logs), color=color, label=text)
        axes.set_yscale("log")
        axes.set_xlabel("step")
        axes.set_title(label(methods[name], shown[name]), fontsize=9)
    panels[0].set_ylabel("step size (geometric mean over the group)")
    figure.legend(*panels[0].get_legend_handles_labels(), loc="outside lower center", ncols=4)
    figure.suptitle("Learned step sizes per group of features at each method's defaults "
                    "(presence and microstimuli of the signals of the group)")
    return figure


def figures(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Figure]:
    table, methods = tables["errors"], budget_methods(budget)
    return {"error-over-time": error_over_time_figure(tables, methods),
            "error-vs-step-size": sweep_figure(table, methods),
            "step-sizes-per-group": step_size_figure(table, methods)}


EXPLANATION = """
Trace patterning (Rafiee et al. 2023), a continuing stream of classical-conditioning trials:
each trial switches on a pattern of 6 conditioned stimuli (CSs) for 4 steps, and the
unconditioned stimulus (US) follows 14 to 26 steps later, for 2 steps, iff the pattern is
exactly one of 10 activation patterns (3 CSs on each); half of the trials are reinforced. Five
distractors switch on at random with the CSs and carry no information. The next trial starts 80
to 120 steps after the US's time. The cumulant is the US, γ = 0.95, and the target of the
predictions is the expected discounted sum of the future US, computed in closed form from the
trial's configuration. The features are fixed: a bias, the 12 signals and 16 microstimuli of
each signal's memory trace (Ludvig, Sutton & Kehoe 2008), 205 features. A weighted sum of them
cannot tell an activation pattern from the patterns that share most of its CSs: every linear
learner here has an error floor, which is the benchmark's point (fixed representations fail
trace patterning); the paper's error is the MSRE against the realized return, here the error
against the expected return plus the return's own variance around it (the same for every
method; the summary gives both).

All methods use λ = 0.9 and read the same stream per seed: TD(λ) with a fixed α over a grid;
TIDBD (semi- and full-gradient), AutoTIDBD and SwiftTD over their meta step size θ, and
normalized IDBD (`ms.normalized_idbd`) as the step-size method of `ms.td.TDLearner` over μ,
±2 decades around each library default. The structural question: a meta method can learn a step
size per feature; do the distractors' features end up with smaller step sizes than the CSs'?

What it shows, at the quick budget (10 seeds, 100,000 steps: about 830 trials; predicting 0
everywhere has an error of 0.154, and the return's variance around its expectation adds 0.0116
to every error to make the MSRE):

- TD(λ) does best at α = 0.0042 (mean error 0.0951 ± 0.0006 over the run, 0.0906 over its last
  20%); α ≥ 0.15 diverges on every seed.
- SwiftTD at its defaults has the least error of the defaults: 0.0903, 0.0048 ± 0.0003 below
  TD(λ) at its best α (paired over seeds; the best α was chosen on the same runs, which favours
  TD(λ)), and hardly depends on θ (0.0898 to 0.0918 from 10⁻⁵ to 0.0032).
- AutoTIDBD at its defaults: 0.102 (0.0069 ± 0.0008 above TD(λ)'s best); its bound and
  normalizer bring the step sizes down from α₀ = 0.05 to about 0.026. At θ = 0.1 it matches
  TD(λ)'s best (0.0954); θ ≥ 0.32 diverges.
- TIDBD in both forms keeps its step sizes near α₀ = 0.05 at its default θ and so errs like
  TD(λ) with a fixed α of that size: 0.1216 (semi-gradient) and 0.1191 (full gradient), against
  TD(λ)'s 0.111 at α = 0.037. The semi-gradient form only gets worse with a larger θ (its bias's
  step size grows past 1); the full-gradient form improves to 0.110 at θ = 1 by driving the US's
  step sizes to about 0.
- Normalized IDBD at its default μ = 0.003 blows up: on 2 of the 10 seeds the squared TD
  error passes 10⁶ (the experiment's divergence threshold: the returns lie in [0, 2)), so the
  default has no mean, and on 7 of the other 8 the mean error over the run lies between 2.5
  and 8·10⁴. At μ ≤ 3·10⁻⁴ it is as good as SwiftTD (0.0905 at μ = 3·10⁻⁵, with the US's
  step sizes 5 times the CSs').
- The structural question: TIDBD, AutoTIDBD and SwiftTD do not give the distractors smaller
  step sizes than the CSs. At their defaults the distractors' step sizes end within 1.5% of the
  CSs' (ratios 0.986 to 1.000), and over their grids within 2% (TIDBD, SwiftTD) or where both
  have collapsed (AutoTIDBD: 0.77 at θ = 0.1, with both near 3·10⁻⁴; 1.09 at θ = 0.032).
  Normalized IDBD is the one that separates them, more as μ grows: distractors/CSs 0.96 at μ =
  3·10⁻⁵, 0.86 at 3·10⁻⁴ and 0.62 at 10⁻³, while its error rises (0.0905, 0.0911, 0.122). What
  every meta method learns is to raise the step sizes of the US's features (whose presence and
  microstimuli predict the rest of a reinforced trial) above the CSs' and to lower the bias's.
  The reason is the task: the US follows an exact conjunction of the six CSs, and a single CS
  says about as little of it as a distractor does (a CS that is in half of the activation
  patterns leaves P(US) at exactly 1/2), so the meta-gradients of the two groups are alike.
  With features of the conjunctions (the problem's `"pattern_microstimuli"`) the outcome becomes
  expressible; whether the meta methods then single out those features is not measured here.

How to read the figures:

- **error-over-time**: the squared error against the expected return per bin (mean over seeds,
  log scale) of each meta method at its defaults and of TD(λ) at its best α, with the error of
  predicting 0 and the return's variance around its expectation dotted.
- **error-vs-step-size**: one panel per method, its error over the run and over its last 20%
  against its step size or meta step size (log scales), the library's default dashed; a
  configuration where a seed diverged is left out.
- **step-sizes-per-group**: one panel per meta method at its defaults, the learned step sizes of
  the US's, the CSs', the distractors' features and the bias over time (geometric mean over the
  group's features and the seeds). Normalized IDBD's step size is the factor of its normalized
  update, not comparable in scale with the others'.

No published number exists for this protocol: the paper reports MSRE curves of its own
learners (TD(λ) with Adam on several representations, and recurrent learners) in figures, not
TD(λ) with these step-size methods; the summary's numbers are this project's measurements.
"""

EXPERIMENT = Experiment(
    name="trace-patterning",
    description="TD(λ), TIDBD, AutoTIDBD, SwiftTD and normalized IDBD on Rafiee et al.'s trace "
    "patterning with microstimuli features: errors and the step sizes learned per signal group",
    budgets=BUDGETS,
    shards=shards,
    summarize=summarize,
    figures=figures,
    published=[],
    explanation=EXPLANATION,
    quick_minutes=2.0,  # approximate: see QUICK_MINUTES_MACHINE
)
