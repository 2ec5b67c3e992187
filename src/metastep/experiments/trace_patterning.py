"""trace-patterning: TD(λ) and the meta-learned step sizes predicting the discounted US of Rafiee
et al.'s trace patterning, on fixed microstimuli features and on features of the CS patterns,
and what step sizes each learns for the US, the CSs, the distractors and the patterns.

The problem is ``ms.problems.trace_patterning`` at its defaults: 6 CSs, 10 activation patterns
of 3 CSs, 5 distractors, ISI 14 to 26 steps, ITI 80 to 120, γ = 0.95, and per signal a presence
feature and 16 microstimuli (with a bias: 205 features). Whether a trial is reinforced is an
exact match of all six CSs with one of the activation patterns: no weighted sum of these
features expresses it (the paper's point: fixed representations fail trace patterning), so
every linear learner here has an error floor; the distractors carry no information at all.
Beyond the smoke budget a second shard, ``pattern-errors``, runs the same methods on the
problem's ``"pattern_microstimuli"`` features (1,229: the same 205 and, per CS pattern, a block
of 16 microstimuli of the trial's start, 0 but for the trial's pattern), which make the US
linearly predictable; over fewer grid values (:func:`pattern_methods`: a lane-step costs about 5
times as much).

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
distractors smaller step sizes than the CSs? On the pattern features, the pattern blocks are
split per seed into the blocks of the stream's 10 activation patterns (drawn from the stream's
key: :func:`activation_patterns`) and the blocks of the 54 others: do the meta methods give the
activation patterns' features larger step sizes than the other patterns' and than the CSs' and
distractors'? No published number exists for this protocol.
"""

from __future__ import annotations

import dataclasses
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
from metastep.experiments import _trace_patterning_figures as _figures
from metastep.experiments._base import Budget, Experiment, Shard, SweptMethod
from metastep.experiments.td_mountain_car import methods as tile_coding_methods
from metastep.experiments.td_mountain_car import nearest
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

# The second feature set adds a block of microstimuli per CS pattern (1,229 features, about 5
# times the cost per lane-step): its grids are those of ``pattern_points`` without their two
# ends, and the smoke budget, which CI runs, leaves it out.
PATTERN_PROBLEM = ms.problems.trace_patterning("pattern_microstimuli")
NUM_PATTERNS = 2 ** PROBLEM.params["num_cs"]
PATTERN_BLOCKS = np.flatnonzero(feature_groups(PATTERN_PROBLEM) == "pattern").reshape(
    NUM_PATTERNS, PROBLEM.params["num_microstimuli"])  # pattern-major, as the problem lays out
BUDGETS = {
    "smoke": Budget(steps=2_000, seeds=2, settings={"points": 3}),
    "quick": Budget(steps=100_000, seeds=10, settings={"points": 9, "pattern_points": 5}),
    "full": Budget(steps=1_000_000, seeds=30, settings={"points": 13, "pattern_points": 7}),
}


def budget_methods(budget: Budget) -> dict[str, SweptMethod]:
    """TD(λ) over α per weight from 10⁻³ to 10^−0.5 and the meta methods (td-mountain-car's)."""
    return tile_coding_methods(budget.settings["points"])


def pattern_methods(budget: Budget) -> dict[str, SweptMethod] | None:
    """The methods on the pattern features: :func:`budget_methods`' over ``pattern_points``
    values, the two ends dropped (the defaults stay in the middle); None at a budget without
    them."""
    points = budget.settings.get("pattern_points")
    if points is None:
        return None
    return {name: dataclasses.replace(method, grid=method.grid[1:-1])
            for name, method in tile_coding_methods(points).items()}


def record_every(budget: Budget) -> int:
    return budget.record_every(RECORDS)


def log_step_sizes(step_sizes: jax.Array) -> jax.Array:
    """Their logs, a step size that underflowed to 0 counting as the smallest normal float32."""
    return jnp.log(jnp.maximum(step_sizes, np.finfo(np.float32).tiny))


def group_means(step_sizes: jax.Array) -> jax.Array:
    """The geometric mean of the step sizes over each group of features [len(GROUPS)] (of the
    first ``NUM_FEATURES``: the pattern features come after them)."""
    logs = log_step_sizes(step_sizes[:NUM_FEATURES])
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

    def group_step_sizes(self, step_sizes: jax.Array) -> jax.Array:
        return group_means(step_sizes)

    def method_records(self, name: str, learner: Any, learner_state: Any) -> dict[str, Any]:
        if name == "td":
            return {}
        return {"group_step_sizes": self.group_step_sizes(learner.step_sizes(learner_state))}


class PatternSideBySide(PatterningSideBySide):
    """:class:`PatterningSideBySide` on the pattern features, whose ``group_step_sizes`` go on
    with the geometric mean over each CS pattern's block [len(GROUPS) + NUM_PATTERNS] (which
    patterns are the activation patterns depends on the seed: the table sorts them out)."""

    num_features = PATTERN_PROBLEM.num_features

    def group_step_sizes(self, step_sizes: jax.Array) -> jax.Array:
        blocks = jnp.exp(log_step_sizes(step_sizes)[PATTERN_BLOCKS].mean(-1))
        return jnp.concatenate([group_means(step_sizes), blocks])


def side_by_side_table(side_by_side: type[PatterningSideBySide], problem: Problem,
                       methods: dict[str, SweptMethod], trace_decay: float, seeds: list[int],
                       steps: int, record_every: int, columns: list[str]) -> pd.DataFrame:
    """One row per (method, grid value, seed, record): ``value_error``, the recorded group step
    sizes as ``columns`` (NaN for TD(λ)) and ``diverged``."""
    return _td.side_by_side_table(side_by_side, problem, methods, trace_decay, seeds, steps,
                                  record_every, "value_error", "group_step_sizes", columns)


def error_sweep(problem: Problem, methods: dict[str, SweptMethod], trace_decay: float,
                seeds: list[int], steps: int, record_every: int) -> pd.DataFrame:
    """One row per (method, grid value, seed, record): ``value_error``, the step size of each
    group of features (NaN for TD(λ)) and ``diverged``."""
    return side_by_side_table(PatterningSideBySide, problem, methods, trace_decay, seeds, steps,
                              record_every, list(STEP_SIZE_COLUMNS))


def activation_patterns(problem: Problem, seed: int) -> np.ndarray:
    """Whether each CS pattern (by its index ``Σ_i 2^i CS_i``, the stream's ``info["pattern"]``)
    is one of the activation patterns of the seed's stream, bool [2^num_cs]; the stream's key
    is the engine's, ``split(PRNGKey(seed))[0]``."""
    patterns = np.asarray(problem.init(split_seed(np.uint32(seed))[0]).patterns)
    indices = patterns @ (2 ** np.arange(patterns.shape[1]))
    return np.isin(np.arange(2 ** patterns.shape[1]), indices)


def split_pattern_blocks(table: pd.DataFrame, activation: dict[int, np.ndarray],
                         blocks: list[str]) -> pd.DataFrame:
    """``table`` with the step sizes of the pattern blocks (``blocks`` columns, one per CS
    pattern) replaced by their geometric means over the seed's activation patterns
    (``step_size_activation``) and over the other patterns (``step_size_other_pattern``)."""
    logs = np.log(table[blocks].to_numpy())
    chosen = np.stack([activation[seed] for seed in table["seed"]])
    means = {name: np.exp(np.where(mask, logs, 0.0).sum(1) / mask.sum(1))
             for name, mask in (("activation", chosen), ("other_pattern", ~chosen))}
    table = table.drop(columns=blocks)
    position = table.columns.get_loc("diverged")
    for offset, (name, values) in enumerate(means.items()):
        table.insert(position + offset, f"step_size_{name}", values)
    return table


def pattern_error_sweep(problem: Problem, methods: dict[str, SweptMethod], trace_decay: float,
                        seeds: list[int], steps: int, record_every: int) -> pd.DataFrame:
    """:func:`error_sweep` on the pattern features: the step sizes of the per-signal groups and
    of the pattern features split into the seed's activation patterns' blocks and the other
    patterns' (``step_size_activation``, ``step_size_other_pattern``)."""
    blocks = [f"pattern_{index}" for index in range(2 ** problem.params["num_cs"])]
    table = side_by_side_table(PatternSideBySide, problem, methods, trace_decay, seeds, steps,
                               record_every, [*STEP_SIZE_COLUMNS, *blocks])
    activation = {seed: activation_patterns(problem, seed) for seed in seeds}
    return split_pattern_blocks(table, activation, blocks)


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
    shards = [Shard.of_call("errors", error_sweep, work=len(methods) * lanes * budget.steps,
                            engine_lane_steps=lanes * budget.steps, methods=methods,
                            trace_decay=TRACE_DECAY, **common),
              Shard.of_call("returns", return_variances, work=budget.seeds * budget.steps,
                            **common)]
    patterns = pattern_methods(budget)
    if patterns is not None:
        lanes = len(patterns["td"].grid) * budget.seeds
        # Work in microstimuli lane-steps: a pattern lane-step costs about 5 of them.
        shards.append(Shard.of_call(
            "pattern-errors", pattern_error_sweep,
            work=5 * len(patterns) * lanes * budget.steps, engine_lane_steps=lanes * budget.steps,
            methods=patterns, trace_decay=TRACE_DECAY, **{**common, "problem": PATTERN_PROBLEM}))
    return shards


# ---------------------------------------------------------------------------------------------
# Summary

def step_size_columns(table: pd.DataFrame) -> list[str]:
    """The table's ``step_size_<group>`` columns, in its order."""
    return [column for column in table.columns if column.startswith("step_size_")]


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
        **{column: last_record[column] for column in step_size_columns(table)},
    })


def configuration_errors(table: pd.DataFrame) -> pd.DataFrame:
    """Per (method, value): the lane errors averaged over seeds, the standard error of the mean
    error over seeds, ``diverged_seeds`` and the final step sizes of the groups (geometric mean
    over seeds); all NaN where a seed diverged."""
    lanes = lane_errors(table)
    columns = step_size_columns(table)
    logs = np.log(lanes[columns]).groupby(["method", "value"]).mean()
    configs = lanes.groupby(["method", "value"]).agg(
        mean_error=("mean_error", "mean"), mean_error_se=("mean_error", "sem"),
        final_error=("final_error", "mean"), diverged_seeds=("diverged", "sum"))
    configs = configs.join(np.exp(logs))
    numbers = ["mean_error", "mean_error_se", "final_error", *columns]
    configs.loc[configs["diverged_seeds"] > 0, numbers] = np.nan
    return configs


def stream_numbers(returns: pd.DataFrame) -> dict[str, float]:
    """The return's variance around the value over the run and its last part, and the error of
    predicting 0, each averaged over seeds."""
    last_steps = returns["step"] > (1.0 - FINAL_FRACTION) * returns["step"].max()
    return {"return_variance": float(returns["return_variance"].mean()),
            "final_return_variance": float(returns[last_steps]["return_variance"].mean()),
            "zero_prediction_error": float(returns["value_square"].mean())}


# The ratios of final step sizes a summary gives, where the table has both groups.
RATIOS = {"distractor_to_cs": ("distractor", "cs"),
          "activation_to_other_pattern": ("activation", "other_pattern"),
          "activation_to_cs": ("activation", "cs"),
          "activation_to_distractor": ("activation", "distractor")}


def entry(configs: pd.DataFrame, value: float, stream: dict[str, float],
          step_sizes: bool) -> dict[str, Any]:
    """A configuration's errors, its MSRE (error + the return's variance) and, with
    ``step_sizes``, its final step sizes per group and their ``RATIOS`` (the distractors' over
    the CSs'; on the pattern features, the activation patterns' over the other groups')."""
    row = configs.loc[value]
    numbers = {"value": float(value), **{name: float(row[name]) for name in (
        "mean_error", "mean_error_se", "final_error", "diverged_seeds")}}
    numbers["msre"] = numbers["mean_error"] + stream["return_variance"]
    numbers["final_msre"] = numbers["final_error"] + stream["final_return_variance"]
    if step_sizes:
        sizes = {column.removeprefix("step_size_"): float(row[column])
                 for column in step_size_columns(configs)}
        numbers["final_step_sizes"] = sizes
        numbers.update({key: sizes[over] / sizes[under] for key, (over, under) in RATIOS.items()
                        if over in sizes and under in sizes})
    return numbers


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


def judged_value(numbers: dict[str, Any]) -> float | None:
    """The configuration a method is judged by (a meta method's defaults, TD(λ)'s best α);
    None where it has no mean error (none, or a seed diverged)."""
    judged = numbers.get("default", numbers["best"])
    return None if judged is None or judged["diverged_seeds"] > 0 else judged["value"]


def pattern_summary(tables: dict[str, pd.DataFrame], methods: dict[str, SweptMethod],
                    microstimuli: dict[str, Any], stream: dict[str, float]) -> dict[str, Any]:
    """:func:`error_summary` of the pattern features, each method's entries going on with
    ``vs_microstimuli``: its mean error there minus on the microstimuli alone (the defaults of
    a meta method, TD(λ)'s best α on each), paired by seed (NaN where a seed diverged)."""
    summary = error_summary(tables["pattern-errors"], methods, stream)
    lanes = {"pattern": lane_errors(tables["pattern-errors"])["mean_error"],
             "microstimuli": lane_errors(tables["errors"])["mean_error"]}
    for name, numbers in summary.items():
        values = {"pattern": judged_value(numbers),
                  "microstimuli": judged_value(microstimuli[name])}
        summary[name]["vs_microstimuli"] = (
            {"mean": np.nan, "standard_error": np.nan} if None in values.values() else
            paired_difference(*(lanes[which].loc[(name, values[which])]
                                for which in ("pattern", "microstimuli"))))
    return summary


def summarize(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Any]:
    stream = stream_numbers(tables["returns"])
    summary = {"trace_decay": TRACE_DECAY, "discount": DISCOUNT, "num_features": NUM_FEATURES,
               "steps": budget.steps, "record_every": record_every(budget), **stream,
               **error_summary(tables["errors"], budget_methods(budget), stream)}
    patterns = pattern_methods(budget)
    if patterns is not None:
        summary["pattern_microstimuli"] = {
            "num_features": PATTERN_PROBLEM.num_features,
            **pattern_summary(tables, patterns, summary, stream)}
    return summary


def figures(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Figure]:
    methods = {"errors": budget_methods(budget)}
    patterns = pattern_methods(budget)
    if patterns is not None:
        methods["pattern-errors"] = patterns
    configs = {name: configuration_errors(tables[name]) for name in methods}
    title = f"Trace patterning, γ = {DISCOUNT:g}, λ = {TRACE_DECAY:g}"
    num_features = {"errors": NUM_FEATURES, "pattern-errors": PATTERN_PROBLEM.num_features}
    return {"error-over-time": _figures.error_over_time_figure(tables, configs, methods, title,
                                                               num_features),
            "error-vs-step-size": _figures.sweep_figure(configs["errors"], methods["errors"],
                                                        FINAL_FRACTION),
            "step-sizes-per-group": _figures.step_size_figure(tables, configs, methods)}


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
method; the summary gives both). A second set of features (at the quick and full budgets, not
the smoke one), the problem's `"pattern_microstimuli"`, adds per CS pattern (64 of them) a
block of 16 microstimuli of the trial's start, 0 unless the trial shows that pattern: 1,229
features, with which the US's coming is a weighted sum.

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

With the pattern features (summary key `pattern_microstimuli`; 3 grid values per method, TD(λ)'s
α = 0.0042, 0.018, 0.075 and each meta step size at its default and a decade either side; the
activation patterns are drawn from each seed's stream key, so they differ by seed):

- Every method's error drops. TD(λ) at its best α = 0.018: 0.0842 ± 0.0005 over the run (0.0722
  over its last 20%), 0.0109 ± 0.0002 below its best on the microstimuli alone (paired by
  seed), and still falling at the end: in 100,000 steps (about 835 trials) each activation
  pattern is shown about 43 times, each other pattern about 7. SwiftTD at its defaults: 0.0809
  (0.0094 ± 0.0002 below its own on the microstimuli; 0.0034 ± 0.0001 below TD(λ)'s best);
  AutoTIDBD: 0.0785 (0.0235 ± 0.0007 and 0.0057 ± 0.0001 below), and at θ = 0.1 the least error
  of all, 0.0603 (0.0354 over the last 20%); TIDBD: 0.0884 (semi-gradient) and 0.0868 (full),
  about 0.033 below their own; normalized IDBD at its default μ no longer passes the threshold
  but errs most (0.124), and diverges on every seed at μ = 0.03.
- The structural question, answered plainly: **no meta method gives the activation patterns'
  features larger step sizes than the other patterns'**. Activation over other patterns' step
  sizes at the last record, at the defaults: 1.001 and 1.000 (TIDBD), 0.83 (AutoTIDBD), 0.99
  (SwiftTD), 0.0014 (normalized IDBD); over the grids, 0.0014 to 1.002, never above 1 by more
  than 0.2%.
- Over the per-signal features: TIDBD at its defaults leaves all its step sizes within 0.2% of
  α₀ = 0.05 (but the bias's), and its activation patterns' are 1.000 to 1.008 times its CSs'
  over its grid. SwiftTD's activation patterns' features end 1.19 times the CSs' at its
  defaults, not because theirs grow (they stay at α₀ = 0.01, like the US's) but because the CSs'
  and the distractors' shrink alike to about 0.0083. AutoTIDBD at its defaults: 1.05; at θ =
  0.1, where its error is least, it does single out the pattern features as a whole: activation
  patterns' 0.017 and other patterns' 0.11 against the CSs' 7.6·10⁻⁴, the distractors' 4.8·10⁻⁴
  (now 0.63 of the CSs') and the US's 4·10⁻⁷. Normalized IDBD does so too (activation patterns'
  11 times the CSs' at μ = 3·10⁻⁴; at its default the CSs' collapse to 1.6·10⁻⁷), always with
  the other patterns' largest. So the conjunction features can be singled out against the
  per-signal ones, but not the conjunctions that the US follows against those it does not: both
  tell the outcome (a block of another pattern learns that no US comes, against what the
  per-signal features predict), and the other patterns are shown about 6 times less often.

How to read the figures:

- **error-over-time**: one panel per set of features (the pattern features beyond the smoke
  budget): the squared error against the expected return per bin (mean over seeds) of each meta
  method at its defaults and of TD(λ) at its best α, with the error of predicting 0 and the
  return's variance around its expectation dotted.
- **error-vs-step-size**: one panel per method, its error over the run and over its last 20%
  against its step size or meta step size (log scales), the library's default dashed; a
  configuration where a seed diverged is left out.
- **step-sizes-per-group**: one panel per meta method at its defaults, a row per set of
  features: the learned step sizes of the US's, the CSs', the distractors' features and the
  bias over time, and on the pattern features those of the activation patterns' blocks and of
  the other patterns' (geometric mean over the group's features and the seeds). Normalized
  IDBD's step size is the factor of its normalized update, not comparable in scale with the
  others'.

No published number exists for this protocol: the paper reports MSRE curves of its own
learners (TD(λ) with Adam on several representations, and recurrent learners) in figures, not
TD(λ) with these step-size methods; the summary's numbers are this project's measurements.
"""

EXPERIMENT = Experiment(
    name="trace-patterning",
    description="TD(λ), TIDBD, AutoTIDBD, SwiftTD and normalized IDBD on Rafiee et al.'s trace "
    "patterning with microstimuli features (and, beyond the smoke budget, with features of the "
    "CS patterns): errors and the step sizes learned per group of features",
    budgets=BUDGETS,
    shards=shards,
    summarize=summarize,
    figures=figures,
    published=[],
    explanation=EXPLANATION,
    quick_minutes=3.6,  # approximate: see QUICK_MINUTES_MACHINE
)
