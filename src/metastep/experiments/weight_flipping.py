"""weight-flipping: which inputs deserve a large step size? (Sutton 1992, Fig. 3 and Exp. 2)

The question: on a problem where only some inputs matter, and the weights of those keep changing,
can a learner find a step size per input (large where tracking pays, zero where the input is noise)
and thereby beat every single step size? Sutton (1992, "Adapting bias by gradient descent: an
incremental version of delta-bar-delta") showed that IDBD can, on the weight-flipping problem
(``ms.problems.weight_flipping()``, docs/problems.md#weight_flipping): 20 inputs ``x_i ~ N(0, 1)``,
target ``y* = Σ_i s_i x_i`` with ``s_1..s_5 = ±1`` and ``s_6..s_20 = 0``; every 20 examples one of
the five relevant ``s_i`` flips sign. No noise: all the error comes from tracking the flips.

Protocol, top to bottom below:

1. Fig. 3 (Sutton's Exp. 1): each method from zero weights for ``steps`` examples (30,000 in the
   paper), its asymptotic MSE the mean of δ² over the last third (the paper: 20,000 examples of
   burn-in, then the MSE over the next 10,000), for each value of the method's one swept
   parameter: LMS against α, IDBD (α₀ = 0.05) against θ, and as references Autostep against μ,
   RMSprop and Adam (with and without momentum) against η, and "oracle SGD" against α (α on the
   5 relevant inputs, 0 on the 15 irrelevant ones: the best that fixed per-input step sizes can
   do). Every method's sweep side by side in one compiled program (``ms.sweep_together``; the
   shard ``fig3``, whose rows :func:`rows_of` gives per method, also from a run stored with one
   shard per method), every configuration on the same streams (seeds ``0 .. seeds − 1``); mean
   ± standard error over seeds. A configuration in which any seed
   diverged is reported as diverged (with its count) and left out of the best-of-sweep numbers
   and of the curves; it is never averaged in.
2. Exp. 2: IDBD at θ = 0.001, α₀ = 0.05, for 250,000 examples (at every budget but smoke: it is
   cheap), each α_i recorded every 1,000 examples. Sutton: the 5 relevant α_i settle at
   0.13 ± 0.015, the best fixed α for the relevant inputs; the 15 irrelevant α_i fall below
   0.007, still falling.

(Degris et al. 2024 average the error over all steps of a 200,000-step run instead; that protocol
is not run here: Fig. 3 is Sutton's.)

Summary: per method the best MSE of its sweep (± SE), where it is, and what diverged; for IDBD
the span of θ over which it beats the best LMS; for Exp. 2 the step sizes at the last record.
Figures: ``asymptotic-mse`` (Fig. 3) and ``exp2-step-sizes`` (Exp. 2).
"""

from __future__ import annotations


import jax.numpy as jnp
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

import metastep as ms
from metastep.experiments._base import (
    SYMBOL_NAMES,
    Budget,
    Experiment,
    Published,
    Shard,
    SweptMethod,
    sweep_table,
)
from metastep.problems import Problem

# ---------------------------------------------------------------------------------------------
# The problem, the methods and their sweeps

NUM_INPUTS = 20
NUM_RELEVANT = 5  # the problem puts the relevant inputs first
TARGET_VARIANCE = float(NUM_RELEVANT)  # Var(y*): the MSE of a learner that learns nothing
# A seed whose asymptotic MSE is above twice that is blowing up, even when it has not reached
# the engine's divergence threshold within the run (a slow learner stays below Var(y*)).
BLOW_UP_MSE = 2 * TARGET_VARIANCE
BURN_IN_FRACTION = 2 / 3  # Sutton's 20,000 of 30,000 examples

INITIAL_STEP_SIZE = 0.05  # α₀ of IDBD and Autostep (Sutton's)
AUTOSTEP_TAU = 1e4  # Mahmood et al.'s default
RMSPROP_NORMALIZER_RATE = 0.01  # decay 0.99
ADAM_MOMENTUM_RATE, ADAM_NORMALIZER_RATE = 0.1, 0.001  # Kingma and Ba's 0.9 and 0.999
NO_MOMENTUM_RATE = 1.0  # m = g: Adam without momentum (RMSprop with bias-corrected v)

EXP2_META_STEP_SIZE = 0.001  # Sutton's θ in Exp. 2
EXP2_RECORDS = 250  # α_i every 1,000 examples of 250,000
# Sutton's Exp. 2 numbers, drawn on the trajectory figure.
PUBLISHED_RELEVANT_ALPHA, PUBLISHED_RELEVANT_SPREAD = 0.13, 0.015
PUBLISHED_IRRELEVANT_BOUND = 0.007


def oracle_sgd(learning_rate, irrelevant_step_size):
    """SGD with ``learning_rate`` on the relevant inputs and ``irrelevant_step_size`` on the
    others: at 0, fixed per-input step sizes at their best."""
    return ms.sgd(jnp.concatenate([
        learning_rate * jnp.ones(NUM_RELEVANT),
        irrelevant_step_size * jnp.ones(NUM_INPUTS - NUM_RELEVANT),
    ]))


# Grids: past each method's best on both sides, and for LMS and IDBD into divergence, as in the
# paper ("both diverge past their plotted ranges"); dense near the published optima.
ETA_GRID = (0.001, 0.003, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1, 0.15, 0.2, 0.3)
METHODS = {method.name: method for method in (
    SweptMethod(
        "lms", "LMS", "learning_rate", "α",
        (0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.045, 0.05,
         0.06, 0.07, 0.08, 0.09, 0.1),
        ms.sgd, label="LMS (α on every input)", color="tab:blue",
    ),
    SweptMethod(
        "idbd", "IDBD", "meta_step_size", "θ",
        (1e-4, 2e-4, 5e-4, 0.001, 0.002, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.025,
         0.03, 0.04, 0.05),
        ms.idbd, {"initial_step_size": INITIAL_STEP_SIZE},
        label=f"IDBD (θ; α₀ = {INITIAL_STEP_SIZE})", color="tab:red",
    ),
    SweptMethod(
        "oracle", "oracle SGD", "learning_rate", "α",
        (0.01, 0.02, 0.05, 0.08, 0.1, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.18, 0.2, 0.25,
         0.3, 0.35),
        oracle_sgd, {"irrelevant_step_size": 0.0},
        label="oracle SGD (α on the 5 relevant inputs, 0 on the rest)", color="k",
    ),
    SweptMethod(
        "autostep", "Autostep", "meta_step_size", "μ",
        (1e-4, 3e-4, 0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 1.0),
        ms.autostep, {"initial_step_size": INITIAL_STEP_SIZE, "tau": AUTOSTEP_TAU},
        label=f"Autostep (μ; α₀ = {INITIAL_STEP_SIZE}, τ = 10⁴)", color="tab:purple",
    ),
    SweptMethod(
        "rmsprop", "RMSprop", "learning_rate", "η", ETA_GRID,
        ms.rmsprop, {"normalizer_rate": RMSPROP_NORMALIZER_RATE},
        label=f"RMSprop (η; γ_g = {RMSPROP_NORMALIZER_RATE})", color="tab:green",
    ),
    SweptMethod(
        "adam", "Adam", "learning_rate", "η", ETA_GRID,
        ms.adam, {"momentum_rate": ADAM_MOMENTUM_RATE, "normalizer_rate": ADAM_NORMALIZER_RATE},
        label=f"Adam (η; γ_m = {ADAM_MOMENTUM_RATE}, γ_g = {ADAM_NORMALIZER_RATE})",
        color="tab:orange",
    ),
    # Momentum averages the gradient over about 10 examples, across flips of the target: this
    # variant shows how much of Adam's error is its momentum.
    SweptMethod(
        "adam_no_momentum", "Adam, no momentum", "learning_rate", "η", ETA_GRID,
        ms.adam, {"momentum_rate": NO_MOMENTUM_RATE, "normalizer_rate": ADAM_NORMALIZER_RATE},
        label=f"Adam without momentum (η; γ_m = {NO_MOMENTUM_RATE}, γ_g = "
        f"{ADAM_NORMALIZER_RATE})",
        color="tab:brown", linestyle="--",
    ),
)}
# Exp. 2: IDBD at Sutton's θ only.
EXP2_METHOD = SweptMethod("idbd", "IDBD", "meta_step_size", "θ", (EXP2_META_STEP_SIZE,),
                          ms.idbd, {"initial_step_size": INITIAL_STEP_SIZE})

EXP1_RECORDS = 30  # Exp. 1: 30 bins (1,000 examples each at 30,000)
BUDGETS = {
    "smoke": Budget(steps=3_000, seeds=2, settings={"exp2_steps": 20_000}),
    "quick": Budget(steps=30_000, seeds=10, settings={"exp2_steps": 250_000}),
    "full": Budget(steps=30_000, seeds=30, settings={"exp2_steps": 250_000}),
}


def measured_records(budget: Budget) -> int:
    """How many of the last records make up the measured window (the last third)."""
    num_records = budget.steps // budget.record_every(EXP1_RECORDS)
    return max(1, round(num_records * (1 - BURN_IN_FRACTION)))


# ---------------------------------------------------------------------------------------------
# Shard 1: every method's sweep (Fig. 3), side by side


def fig3_table(result, method: SweptMethod) -> pd.DataFrame:
    """One row per (configuration, seed, record) of ``method``'s sweep ``result``: the bin's
    ``squared_error`` and the mean step size of the relevant and of the irrelevant inputs at the
    end of the bin."""
    table = sweep_table(result, method.name, **method.constants)
    step_sizes = result.step_sizes  # [C, S, R, n], in the row order of the table
    relevant, irrelevant = step_sizes[..., :NUM_RELEVANT], step_sizes[..., NUM_RELEVANT:]
    table["mean_step_size_relevant"] = relevant.mean(axis=-1).reshape(-1)
    table["mean_step_size_irrelevant"] = irrelevant.mean(axis=-1).reshape(-1)
    return table


def fig3_sweeps(problem: Problem, methods: list[SweptMethod], seeds: list[int], steps: int,
                record_every: int) -> pd.DataFrame:
    """The rows of every method (:func:`fig3_table`), each swept over its grid, all on the
    same streams in one compiled program (``ms.sweep_together``); a method's rows leave the
    other methods' parameters and constants empty."""
    results = ms.sweep_together(
        {method.name: (method.linear_learners(NUM_INPUTS), {method.parameter: list(method.grid)})
         for method in methods},
        problem, seeds=seeds, steps=steps, record_every=record_every)
    return pd.concat([fig3_table(results[method.name], method) for method in methods],
                     ignore_index=True)


def rows_of(tables: dict[str, pd.DataFrame], name: str) -> pd.DataFrame:
    """The Fig. 3 rows of method ``name``, from the ``fig3`` shard, or from the shard of its
    own in a run stored with one shard per method."""
    if name in tables:
        return tables[name]
    method = METHODS[name]
    columns = {column for other in METHODS.values() for column in (other.parameter,
                                                                    *other.constants)}
    others = sorted(columns - {method.parameter, *method.constants})
    table = tables["fig3"]
    return table[table["method"] == name].drop(columns=others).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Shard 2: IDBD's step sizes over 250,000 examples (Exp. 2)


def exp2_trajectories(problem: Problem, method: SweptMethod, seeds: list[int], steps: int,
                      record_every: int) -> pd.DataFrame:
    """One row per (seed, record, input): α_i used by the last update of the bin, and w_i."""
    result = ms.sweep(method.linear_learners(NUM_INPUTS), problem,
                      {method.parameter: list(method.grid)}, seeds=seeds, steps=steps,
                      record_every=record_every)
    num_seeds, records = len(result.seeds), len(result.steps)
    seed_index, record_index, input_index = np.indices(
        (num_seeds, records, NUM_INPUTS)).reshape(3, -1)
    step_count = result.steps[record_index]
    diverged_at = result.diverged_at[0, seed_index]
    return pd.DataFrame({
        "method": method.name,
        method.parameter: method.grid[0],
        **method.constants,
        "seed": result.seeds[seed_index],
        "step": step_count,
        "input": input_index + 1,
        "relevant": input_index < NUM_RELEVANT,
        "step_size": result.step_sizes[0].reshape(-1),
        "weight": result.records["weights"][0].reshape(-1),
        "diverged": (diverged_at > 0) & (diverged_at <= step_count),
    })


def shards(budget: Budget) -> list[Shard]:
    problem = ms.problems.weight_flipping()
    exp2_steps = budget.settings["exp2_steps"]
    return [
        Shard.of_call("fig3", fig3_sweeps,
                      work=sum(map(len, (method.grid for method in METHODS.values())))
                      * budget.seeds * budget.steps,
                      problem=problem, methods=list(METHODS.values()), seeds=budget.seed_list,
                      steps=budget.steps, record_every=budget.record_every(EXP1_RECORDS)),
        Shard.of_call("exp2-step-sizes", exp2_trajectories, work=budget.seeds * exp2_steps,
                      problem=problem, method=EXP2_METHOD, seeds=budget.seed_list,
                      steps=exp2_steps,
                      record_every=budget.record_every(EXP2_RECORDS, exp2_steps)),
    ]


# ---------------------------------------------------------------------------------------------
# Summary


def asymptotic_mse(table: pd.DataFrame, name: str, budget: Budget) -> pd.DataFrame:
    """One row per configuration (index: the swept parameter): ``mse`` and ``se`` over seeds,
    ``diverged_seeds``, ``stable`` (no seed diverged) and ``unstable_seeds`` (diverged, or
    blowing up: MSE above ``BLOW_UP_MSE``).

    A seed's asymptotic MSE is the mean of its measured records (equal bins: the MSE over the
    window). The mean and SE of a configuration with any diverged seed are NaN: it is reported
    as diverged, not averaged over the survivors.
    """
    parameter = METHODS[name].parameter
    last_steps = np.sort(table["step"].unique())[-measured_records(budget):]
    per_seed = table.groupby([parameter, "seed"]).agg(
        diverged=("diverged", "any"),
    ).join(
        table[table["step"].isin(last_steps)].groupby([parameter, "seed"])["squared_error"].mean()
    )
    per_seed["unstable"] = per_seed["diverged"] | (per_seed["squared_error"] > BLOW_UP_MSE)
    by_config = per_seed.groupby(parameter)
    configs = pd.DataFrame({
        "diverged_seeds": by_config["diverged"].sum().astype(int),
        "unstable_seeds": by_config["unstable"].sum().astype(int),
        "mse": by_config["squared_error"].mean(),
        "se": by_config["squared_error"].std(ddof=1) / np.sqrt(by_config.size()),
    })
    configs["stable"] = configs["diverged_seeds"] == 0
    configs.loc[~configs["stable"], ["mse", "se"]] = np.nan
    return configs


def method_summary(configs: pd.DataFrame, name: str) -> dict:
    """Best of the sweep (stable configurations only), what diverged, and the largest value of
    the parameter at which no seed diverged or blew up."""
    symbol = SYMBOL_NAMES[METHODS[name].symbol]
    stable = configs[configs["stable"]]
    diverging = configs.index[~configs["stable"]]
    reliable = configs.index[configs["unstable_seeds"] == 0]
    best = stable["mse"].idxmin() if len(stable) else np.nan
    return {
        "best_mse": float(stable["mse"].min()) if len(stable) else np.nan,
        "best_mse_se": float(stable.loc[best, "se"]) if len(stable) else np.nan,
        f"best_{symbol}": float(best),
        f"max_stable_{symbol}": float(stable.index.max()) if len(stable) else np.nan,
        f"min_diverging_{symbol}": float(diverging.min()) if len(diverging) else np.nan,
        f"max_reliable_{symbol}": float(reliable.max()) if len(reliable) else np.nan,
        "diverged_configs": int((~configs["stable"]).sum()),
        "diverged_seeds": int(configs["diverged_seeds"].sum()),
        "unstable_seeds": int(configs["unstable_seeds"].sum()),
    }


def range_below(configs: pd.DataFrame, bound: float) -> dict:
    """The span of the swept parameter over which the (stable) mean MSE is below ``bound``:
    how broad a range of the parameter does well."""
    below = configs.index[configs["mse"] < bound]
    if not len(below):
        return {"low": np.nan, "high": np.nan, "decades": 0.0}
    return {"low": float(below.min()), "high": float(below.max()),
            "decades": float(np.log10(below.max() / below.min()))}


def exp2_summary(trajectories: pd.DataFrame) -> dict:
    """The step sizes at the last record, and how much the irrelevant ones fell over the last
    10% of the run (a ratio below 1: still falling)."""
    steps = np.sort(trajectories["step"].unique())
    final = trajectories[trajectories["step"] == steps[-1]]
    earlier = trajectories[trajectories["step"] == steps[int(0.9 * (len(steps) - 1))]]
    relevant = final[final["relevant"]]
    irrelevant = final[~final["relevant"]]
    # Per seed, the farthest relevant α from that seed's relevant mean: Sutton's "± 0.015".
    deviation = relevant.groupby("seed")["step_size"].agg(lambda a: np.max(np.abs(a - a.mean())))
    irrelevant_mean = irrelevant.groupby("seed")["step_size"].mean()
    earlier_mean = earlier[~earlier["relevant"]].groupby("seed")["step_size"].mean()
    return {
        "meta_step_size": EXP2_META_STEP_SIZE,
        "steps": int(steps[-1]),
        "relevant_alpha": float(relevant["step_size"].mean()),
        "relevant_alpha_min": float(relevant["step_size"].min()),
        "relevant_alpha_max": float(relevant["step_size"].max()),
        "relevant_alpha_deviation": float(deviation.mean()),
        "irrelevant_alpha_max": float(irrelevant["step_size"].max()),
        "irrelevant_alpha_mean": float(irrelevant["step_size"].mean()),
        "irrelevant_alpha_last_10pct_ratio": float((irrelevant_mean / earlier_mean).mean()),
        "relevant_over_irrelevant_max": float(
            relevant["step_size"].mean() / irrelevant["step_size"].max()
        ),
        "diverged_seeds": int(trajectories.groupby("seed")["diverged"].any().sum()),
    }


def summarize(tables: dict[str, pd.DataFrame], budget: Budget) -> dict:
    configs = {name: asymptotic_mse(rows_of(tables, name), name, budget) for name in METHODS}
    summary = {
        "protocol": {"steps": budget.steps,
                     "measured_steps": measured_records(budget) * budget.record_every(EXP1_RECORDS),
                     "seeds": budget.seeds},
        **{name: method_summary(configs[name], name) for name in METHODS},
        "exp2": exp2_summary(tables["exp2-step-sizes"]),
    }
    best_lms = summary["lms"]["best_mse"]
    summary["idbd"]["theta_beating_best_lms"] = range_below(configs["idbd"], best_lms)
    summary["autostep"]["mu_beating_best_lms"] = range_below(configs["autostep"], best_lms)
    summary["idbd_over_lms"] = summary["idbd"]["best_mse"] / summary["lms"]["best_mse"]
    summary["idbd_over_oracle"] = summary["idbd"]["best_mse"] / summary["oracle"]["best_mse"]
    return summary


# ---------------------------------------------------------------------------------------------
# Figures

MSE_AXIS_TOP = 6.0
MSE_LABEL = "asymptotic MSE, units of (y*)² (mean δ² over the last third)"
RELEVANT_COLORS = {True: "tab:red", False: "tab:blue"}
INPUT_GROUPS = {True: f"relevant (inputs 1–{NUM_RELEVANT})",
                False: f"irrelevant (inputs {NUM_RELEVANT + 1}–{NUM_INPUTS})"}


def plot_sweep(axes, configs: pd.DataFrame, name: str, seeds: int, mark_unstable: bool) -> None:
    """Mean ± SE over seeds of the stable configurations; an × at the top of the axes for each
    configuration in which some seed diverged, with the counts in the legend; and if asked, a
    triangle for each other configuration in which some seed blew up without diverging."""
    method = METHODS[name]
    stable = configs[configs["stable"]]
    axes.errorbar(stable.index, stable["mse"], yerr=stable["se"], color=method.color,
                  linestyle=method.linestyle, marker="o", markersize=3, capsize=2,
                  label=method.label)
    diverged = configs[~configs["stable"]]
    if len(diverged):
        counts = ", ".join(f"{value:g} ({count}/{seeds} seeds)"
                           for value, count in diverged["diverged_seeds"].items())
        axes.plot(diverged.index, np.full(len(diverged), MSE_AXIS_TOP * 0.97), "x",
                  color=method.color, markersize=7, clip_on=False,
                  label=f"{method.title} diverged at {method.symbol} = {counts}")
    unstable = configs[configs["stable"] & (configs["unstable_seeds"] > 0)]
    if mark_unstable and len(unstable):
        counts = ", ".join(f"{value:g} ({count}/{seeds})"
                           for value, count in unstable["unstable_seeds"].items())
        axes.plot(unstable.index, np.full(len(unstable), MSE_AXIS_TOP * 0.97), "^",
                  color=method.color, markerfacecolor="none", markersize=6, clip_on=False,
                  label=f"{method.name}: seeds with MSE > {BLOW_UP_MSE:g} (blowing up) at "
                  f"{method.symbol} = {counts}")


def mse_figure(tables: dict[str, pd.DataFrame], budget: Budget) -> Figure:
    configs = {name: asymptotic_mse(rows_of(tables, name), name, budget) for name in METHODS}
    oracle = method_summary(configs["oracle"], "oracle")
    figure = Figure(figsize=(13, 7), layout="constrained")
    sutton, everything = figure.subplots(1, 2, sharey=True)
    for name in ("lms", "idbd"):
        plot_sweep(sutton, configs[name], name, budget.seeds, mark_unstable=True)
    for value, name in ((3.5, "lms"), (1.5, "idbd")):
        sutton.axhline(value, color=METHODS[name].color, linestyle=":", linewidth=1,
                       label=f"Sutton 1992: best {METHODS[name].title} ≈ {value}")
    for name in METHODS:
        plot_sweep(everything, configs[name], name, budget.seeds, mark_unstable=False)
    for axes in (sutton, everything):
        axes.axhline(oracle["best_mse"], color="k", linestyle="--", linewidth=1,
                     label=f"oracle SGD best: {oracle['best_mse']:.3g} "
                     f"(α = {oracle['best_alpha']:.3g})")
        axes.axhline(TARGET_VARIANCE, color="0.5", linewidth=0.8,
                     label="Var(y*) = 5: the error of learning nothing")
        axes.set_xscale("log")
        axes.set_ylim(0, MSE_AXIS_TOP)
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=1)
    sutton.set_xlabel("step size α (LMS) or meta step size θ (IDBD), log scale")
    everything.set_xlabel("swept parameter, log scale: α (LMS, oracle SGD), θ (IDBD), "
                          "μ (Autostep), η (RMSprop, Adam)")
    sutton.set_ylabel(MSE_LABEL)
    sutton.set_title("Sutton 1992 Fig. 3: LMS against α, IDBD against θ", fontsize=10)
    everything.set_title("Every method against its own parameter", fontsize=10)
    measured = budget.steps - measured_records(budget) * budget.record_every(EXP1_RECORDS)
    figure.suptitle(f"Weight flipping: MSE over examples {measured + 1:,}–{budget.steps:,}, "
                    f"mean ± SE over {budget.seeds} seeds (× = some seeds diverged)")
    return figure


def step_size_figure(trajectories: pd.DataFrame) -> Figure:
    figure = Figure(figsize=(13, 5), layout="constrained")
    one_run, all_runs = figure.subplots(1, 2)
    first_seed = trajectories["seed"].min()
    run = trajectories[trajectories["seed"] == first_seed]
    for relevant, group_name in INPUT_GROUPS.items():
        color = RELEVANT_COLORS[relevant]
        per_input = run[run["relevant"] == relevant].pivot(
            index="step", columns="input", values="step_size"
        )
        for position, column in enumerate(per_input.columns):
            one_run.plot(per_input.index, per_input[column], color=color, linewidth=0.8,
                         label=f"α_i, {group_name}" if position == 0 else None)
        group = trajectories[trajectories["relevant"] == relevant].groupby("step")["step_size"]
        all_runs.plot(group.mean().index, group.mean(), color=color, label=f"{group_name}: mean")
        all_runs.fill_between(group.min().index, group.min(), group.max(), color=color,
                              alpha=0.2, linewidth=0, label=f"{group_name}: min–max")
    for axes in (one_run, all_runs):
        axes.axhspan(PUBLISHED_RELEVANT_ALPHA - PUBLISHED_RELEVANT_SPREAD,
                     PUBLISHED_RELEVANT_ALPHA + PUBLISHED_RELEVANT_SPREAD, color="0.6", alpha=0.3,
                     label=f"Sutton 1992: relevant {PUBLISHED_RELEVANT_ALPHA} ± "
                     f"{PUBLISHED_RELEVANT_SPREAD}")
        axes.axhline(PUBLISHED_IRRELEVANT_BOUND, color="k", linestyle="--", linewidth=1,
                     label=f"Sutton 1992: irrelevant < {PUBLISHED_IRRELEVANT_BOUND}")
        axes.set_xlabel("examples seen (steps)")
        axes.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        axes.legend(loc="center right")
    one_run.set_ylabel("step size α_i (linear scale)")
    one_run.set_title(f"One run (seed {first_seed}): every α_i, as in Sutton's Exp. 2",
                      fontsize=10)
    all_runs.set_yscale("log")
    all_runs.set_ylabel("step size α_i (log scale)")
    seeds = trajectories["seed"].nunique()
    all_runs.set_title(f"All {seeds} seeds: mean and min–max over seeds and inputs", fontsize=10)
    figure.suptitle(f"IDBD step sizes on weight flipping (θ = {EXP2_META_STEP_SIZE}, "
                    f"α₀ = {INITIAL_STEP_SIZE})")
    return figure


def figures(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Figure]:
    return {
        "asymptotic-mse": mse_figure(tables, budget),
        "exp2-step-sizes": step_size_figure(tables["exp2-step-sizes"]),
    }


# ---------------------------------------------------------------------------------------------
# What the papers say, and the registration

SUTTON_EXP1 = "Sutton 1992, Exp. 1 / Fig. 3"
SUTTON_EXP2 = "Sutton 1992, Exp. 2"
INDEPENDENT = "independent simulation, 10 seeds, Exp. 1 protocol"
DEGRIS = ("Degris et al. 2024 (their protocol: all steps of 200,000; independent simulation: "
          "SGD 3.36, RMSprop 3.53)")
# Tolerances: Sutton's ≈ 3.5 and ≈ 1.5 are read off his Fig. 3; the independent simulation's
# numbers are means over 10 seeds (their standard errors are about 0.02). IDBD's curve is flat
# near its best θ ("a broad range"): its best θ is within a factor 2 of 0.01, where seeds decide.
PUBLISHED = [
    Published("lms.best_mse", 3.5, f"{SUTTON_EXP1} (≈); {INDEPENDENT}: 3.39", tolerance=0.15),
    Published("lms.best_alpha", 0.035, INDEPENDENT, kind="simulation", tolerance=0.005),
    Published("idbd.best_mse", 1.5, f"{SUTTON_EXP1} (≈); {INDEPENDENT}: 1.54 at θ = 0.01",
              tolerance=0.1),
    Published("idbd.best_theta", 0.01, f"{INDEPENDENT}; reproduced within a factor 2",
              kind="simulation", check=lambda theta: 0.005 <= theta <= 0.02),
    Published("idbd.theta_beating_best_lms.decades", "IDBD ≈ 1.5 over a broad range of θ",
              f"{SUTTON_EXP1}; reproduced if it beats the best LMS over a decade of θ or more",
              check=lambda decades: decades >= 1),
    Published("idbd.max_reliable_theta", "diverges for θ ≥ 0.02 in some seeds",
              f"{INDEPENDENT}; reproduced if no θ above 0.02 is reliable", kind="simulation",
              check=lambda theta: theta <= 0.02),
    Published("oracle.best_mse", 1.375, INDEPENDENT, kind="simulation", tolerance=0.03),
    Published("oracle.best_alpha", 0.13,
              f"{SUTTON_EXP2}: 0.13 ± 0.01; {INDEPENDENT}: ≈ 0.14", tolerance=0.01),
    Published("rmsprop.best_mse", "slightly worse than classic SGD, far worse than oracle SGD",
              DEGRIS),
    Published("adam.best_mse", "slightly worse than classic SGD, far worse than oracle SGD",
              DEGRIS),
    Published("exp2.relevant_alpha", PUBLISHED_RELEVANT_ALPHA, SUTTON_EXP2,
              tolerance=PUBLISHED_RELEVANT_SPREAD),
    Published("exp2.relevant_alpha_deviation", PUBLISHED_RELEVANT_SPREAD,
              f"{SUTTON_EXP2} (the ± of 0.13 ± 0.015: an upper bound)",
              check=lambda deviation: deviation <= PUBLISHED_RELEVANT_SPREAD),
    Published("exp2.irrelevant_alpha_max", PUBLISHED_IRRELEVANT_BOUND,
              f"{SUTTON_EXP2} (an upper bound: “below 0.007”)",
              check=lambda alpha: alpha < PUBLISHED_IRRELEVANT_BOUND,
              known_deviation="the irrelevant step sizes are still falling at 250,000 "
              "examples and cross 0.007 only near 290,000 in independent simulation; runs "
              "here give 0.0076–0.0079 at 250,000, in float32 and float64 alike"),
    Published("exp2.irrelevant_alpha_last_10pct_ratio", "still falling (ratio < 1)",
              SUTTON_EXP2, check=lambda ratio: ratio < 1),
]

EXPLANATION = """
Weight flipping (Sutton 1992): 20 inputs, of which only the first 5 matter; every 20 examples
one of those 5 weights flips sign. A single step size must compromise: large enough to track
the flips, small enough that the 15 irrelevant inputs do not inject noise. Per-input step sizes
need not: the "oracle" (α on the relevant inputs, 0 on the others) gets less than half the
error of the best LMS. IDBD learns such step sizes by itself, from the error alone: this is
structural credit assignment at the level of step sizes.

How to read the figures:

- **asymptotic-mse** (Sutton's Fig. 3, protocol of his Exp. 1): the mean squared error over
  the last third of the run (examples 20,001–30,000 at the paper's budget), mean ± standard
  error over seeds, against each method's swept parameter on a log axis. Left: LMS against α
  and IDBD (α₀ = 0.05) against θ, with Sutton's ≈ 3.5 and ≈ 1.5 dotted. Right: every method,
  with Autostep, RMSprop and Adam for reference. The dashed line is the best oracle SGD; the
  grey line, 5 = Var(y*), is the error of learning nothing. An × at the top marks a
  configuration in which some seeds diverged (how many is in the legend): it is left out of
  the curves and of the best-of-sweep numbers, not averaged over the survivors. On the left a
  triangle marks a configuration in which some seeds blew up without diverging yet (MSE above
  10, twice that of learning nothing; the mean then leaves the axes). For IDBD this starts at
  about θ = 0.015–0.02, a little below where it diverges outright.
- **exp2-step-sizes** (Sutton's Exp. 2): IDBD at θ = 0.001 over 250,000 examples. Left: one
  run's 20 step sizes (relevant red, irrelevant blue) on a linear axis; right: all seeds, log
  axis. Sutton's band 0.13 ± 0.015 for the relevant inputs and his bound 0.007 for the
  irrelevant ones are drawn.

Deviations to expect: the irrelevant step sizes are still falling at 250,000 examples and cross
0.007 only later (about 290,000 in independent simulation), so the measured maximum sits just
above Sutton's 0.007. Sutton's ≈ 3.5 and ≈ 1.5 are read off his figure. RMSprop and Adam are run
with their usual rates, tuned only in η. With its usual momentum (γ_m = 0.1, an average over
about 10 examples, across flips of the target) Adam is far worse than LMS; without momentum it
is about RMSprop: "slightly worse than classic SGD", as Degris et al. report.
"""

EXPERIMENT = Experiment(
    name="weight-flipping",
    description="Sutton 1992 Fig. 3 and Exp. 2: IDBD's per-input step sizes beat the best single "
    "step size on weight flipping, nearly matching the oracle",
    budgets=BUDGETS,
    shards=shards,
    summarize=summarize,
    figures=figures,
    published=PUBLISHED,
    explanation=EXPLANATION,
    quick_minutes=0.9,  # approximate: see QUICK_MINUTES_MACHINE
)
