"""delta-delta: the talk's picture of the ΔΔ rule, measured on one weight.

The talk ("Suppose a weight is being learned...") reads the step size off the weight's trajectory:
with ``Δ_t = w_t − w_{t−1}``, a step size that is too small gives ``Δ_t`` all of the same sign (the
weight creeps toward its target), one that is too big gives ``Δ_t`` changing sign (it overshoots
back and forth), and one about right gives both. Hence the ΔΔ rule,
``α ← α + κ Δ_{t−1} Δ_t`` (``ms.methods.delta_delta``).

The problem (chosen here: the talk draws the picture without one) is one-weight tracking with
``x ≡ 1``, so the prediction is the weight itself: a number ``z_t`` starts at 10 and takes a random
walk, and the learner sees it through noise::

    y*_t = z_t + N(0, 1),   z_{t+1} = z_t + N(0, 0.3²),   z_0 = 10,   w_0 = 0

It is the noisy tracking problem (docs/problems.md#noisy_tracking) with σ held fixed: its best fixed
step size is the steady-state Kalman gain ``α* = P / (P + r)`` with ``q = 0.09``, ``r = 1``
(``α* ≈ 0.258``). At ``α*`` the tracker's errors are uncorrelated from one step to the next, so
consecutive weight changes agree in sign half the time; below ``α*`` they agree more often (the
weight lags), above it less (it overshoots). The ΔΔ rule's fixed point, ``E[Δ_{t−1} Δ_t] = 0``,
is therefore ``α*``, and the experiment checks that it gets there from each start.

Shards, top to bottom below:

1. ``trajectories``: LMS (``ms.sgd``, via ``ms.run_arrays``) at α too small (0.025), too big
   (1.5) and about right (α*), the first ``window`` steps of each seed: ``w_t``, ``z_t``, ``y*_t``
   and ``Δ_t``.
2. ``sign-agreement``: LMS over a log grid of fixed α (``ms.sweep``): the fraction of steps with
   ``Δ_{t−1} Δ_t > 0`` over the second half of ``agreement_steps`` steps.
3. ``delta-delta``: the ΔΔ rule (κ = 0.003, floor 1e-6) from each of the three starts for
   ``steps`` steps (``ms.sweep``), α recorded about 1,000 times.
"""

from __future__ import annotations


import jax
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
    sweep_table,
)
from metastep.methods import delta_delta, sgd
from metastep.problems import Problem, Sample, steady_state_gain, steady_state_variance
from metastep.problems._base import step_keys

# ---------------------------------------------------------------------------------------------
# The problem and the three step sizes

START = 10.0  # z_0; the weight starts at 0, so every run begins with an approach
WALK_STD = 0.3  # sqrt(q)
NOISE_STD = 1.0  # sqrt(r)
OPTIMAL_STEP_SIZE = float(steady_state_gain(WALK_STD**2, NOISE_STD**2))
OPTIMAL_MSE = float(steady_state_variance(WALK_STD**2, NOISE_STD**2)) + NOISE_STD**2  # P + r

# The talk's three cases, in its order; the values are the starts of the ΔΔ runs too.
STEP_SIZES = {"too_small": 0.025, "too_big": 1.5, "about_right": OPTIMAL_STEP_SIZE}
LABELS = {"too_small": "too small", "too_big": "too big", "about_right": "about right"}
COLORS = {"too_small": "tab:blue", "too_big": "tab:red", "about_right": "tab:green"}

# The ΔΔ rule's κ is not dimensionless (Δ_{t−1}Δ_t scales like α² δ²); 0.003 moves α from 0.025
# to α* in about 10,000 steps on this problem without making it noisy there.
META_STEP_SIZE = 0.003
MIN_STEP_SIZE = 1e-6
AGREEMENT_RANGE = (0.005, 1.9)  # LMS with x ≡ 1 is stable for α < 2

BUDGETS = {
    "smoke": Budget(steps=2_000, seeds=2,
                    settings={"window": 50, "agreement_steps": 1_000, "agreement_points": 5}),
    "quick": Budget(steps=50_000, seeds=5,
                    settings={"window": 100, "agreement_steps": 10_000, "agreement_points": 13}),
    "full": Budget(steps=1_000_000, seeds=30,
                   settings={"window": 100, "agreement_steps": 20_000, "agreement_points": 13}),
}


def tracking_problem() -> Problem:
    """The stream: ``x ≡ 1``, ``y*_t = z_t + N(0, 1)``, ``z`` a random walk from 10."""

    def init(key):
        return key, jnp.zeros((), jnp.uint32), jnp.asarray(START, jnp.result_type(float))

    def generate(state, num_steps):
        key, first_step, target = state
        noises = jax.vmap(lambda k: jax.random.normal(k, (2,), target.dtype))(
            step_keys(key, first_step, num_steps)
        )

        def advance(target, noise):
            return target + WALK_STD * noise[0], (target, target + NOISE_STD * noise[1])

        # Sequential, so the stream is the same whatever the block sizes it is read in.
        target, (targets, ys) = jax.lax.scan(advance, target, noises)
        xs = jnp.ones((num_steps, 1), ys.dtype)
        state = (key, first_step + num_steps, target)
        return state, Sample(xs, ys, {"true_weights": targets[:, None]})

    return Problem(
        name="fixed_noise_tracking",
        num_features=1,
        params={"start": START, "walk_std": WALK_STD, "noise_std": NOISE_STD},
        init=init,
        generate=generate,
        description="1-D tracking: z from 10, increments N(0, 0.3²), observation noise N(0, 1)",
    )


def lms(step_size):
    return ms.LinearLearner(sgd(step_size), 1)


def delta_delta_from(initial_step_size, meta_step_size, min_step_size):
    """The ΔΔ rule from ``initial_step_size`` (the swept value)."""
    return delta_delta(meta_step_size, initial_step_size, min_step_size=min_step_size)


# The ΔΔ rule from each of the three step sizes.
DELTA_DELTA = SweptMethod("delta-delta", "ΔΔ", "initial_step_size", "α₀",
                          tuple(STEP_SIZES.values()), delta_delta_from,
                          {"meta_step_size": META_STEP_SIZE, "min_step_size": MIN_STEP_SIZE})
DELTA_DELTA_RECORDS = 1_000  # records per run


# ---------------------------------------------------------------------------------------------
# Shard 1: the weight and its changes under each fixed α, step by step


def trajectories(problem: Problem, step_sizes: dict[str, float], seeds: list[int],
                 window: int) -> pd.DataFrame:
    """``step`` t counts updates done: ``weight`` is w_t, ``delta`` is Δ_t (NaN at t = 0)."""
    tables = []
    for seed in seeds:
        samples = problem.sample(jax.random.PRNGKey(seed), window)
        for case, step_size in step_sizes.items():
            trace = ms.run_arrays(lms(step_size), samples.x, samples.y)
            weights = trace.predictions.astype(np.float64)  # x ≡ 1: the prediction is w_t
            tables.append(pd.DataFrame({
                "method": "lms",
                "case": case,
                "step_size": step_size,
                "seed": seed,
                "step": np.arange(window),
                "weight": weights,
                "target": np.asarray(samples.info["true_weights"][:, 0], np.float64),
                "observation": np.asarray(samples.y, np.float64),
                "delta": np.diff(weights, prepend=np.nan),
            }))
    return pd.concat(tables, ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Shard 2: how often consecutive changes agree in sign, across fixed α


def agreement_grid(budget: Budget) -> list[float]:
    """A log grid over the stable range, plus the three cases (so they are measured exactly)."""
    grid = np.geomspace(*AGREEMENT_RANGE, budget.settings["agreement_points"])
    return sorted(set(grid.tolist()) | set(STEP_SIZES.values()))


def sign_agreement(problem: Problem, step_sizes: list[float], seeds: list[int],
                   steps: int) -> pd.DataFrame:
    """One row per (α, seed): ``sign_agreement`` and ``squared_error`` over the second half."""
    result = ms.sweep(lms, problem, {"step_size": step_sizes}, seeds=seeds, steps=steps,
                      record_every=1)
    weights = result.records["weights"][..., 0].astype(np.float64)  # [α, seed, t]: w after t
    deltas = np.diff(weights, axis=-1, prepend=0.0)
    products = (deltas[..., 1:] * deltas[..., :-1])[..., steps // 2:]  # past the approach
    step_size, seed = np.meshgrid(result.grid["step_size"], result.seeds, indexing="ij")
    return pd.DataFrame({
        "method": "lms",
        "step_size": step_size.ravel(),
        "seed": seed.ravel(),
        "step": steps,
        "sign_agreement": (products > 0).mean(axis=-1).ravel(),
        "squared_error": result.squared_error[..., steps // 2:].mean(axis=-1).ravel(),
    })


# ---------------------------------------------------------------------------------------------
# Shard 3: the ΔΔ rule adapting α from each start


def delta_delta_run(problem: Problem, method: SweptMethod, seeds: list[int], steps: int,
                    record_every: int) -> pd.DataFrame:
    """``step_size`` is the α of the last update of each record bin."""
    result = ms.sweep(method.linear_learners(1), problem, {method.parameter: list(method.grid)},
                      seeds=seeds, steps=steps, record_every=record_every)
    table = sweep_table(result, method.name, **method.constants)
    case_of = {step_size: case for case, step_size in STEP_SIZES.items()}
    table.insert(1, "case", table[method.parameter].map(case_of))
    return table.rename(columns={"mean_step_size": "step_size"})


def shards(budget: Budget) -> list[Shard]:
    problem = tracking_problem()
    window, agreement_steps = budget.settings["window"], budget.settings["agreement_steps"]
    grid = agreement_grid(budget)
    return [
        Shard.of_call("trajectories", trajectories, work=len(STEP_SIZES) * budget.seeds * window,
                      problem=problem, step_sizes=STEP_SIZES, seeds=budget.seed_list,
                      window=window),
        Shard.of_call("sign-agreement", sign_agreement,
                      work=len(grid) * budget.seeds * agreement_steps,
                      problem=problem, step_sizes=grid, seeds=budget.seed_list,
                      steps=agreement_steps),
        Shard.of_call("delta-delta", delta_delta_run,
                      work=len(STEP_SIZES) * budget.seeds * budget.steps,
                      problem=problem, method=DELTA_DELTA, seeds=budget.seed_list,
                      steps=budget.steps, record_every=budget.record_every(DELTA_DELTA_RECORDS)),
    ]


# ---------------------------------------------------------------------------------------------
# Summary


def window_agreement(table: pd.DataFrame) -> float:
    """Fraction of consecutive Δ pairs of the same sign in each seed's window, mean over seeds."""
    fractions = []
    for _, run in table.groupby("seed"):
        deltas = run.sort_values("step")["delta"].to_numpy()[1:]
        fractions.append(np.mean(deltas[1:] * deltas[:-1] > 0))
    return float(np.mean(fractions))


def half_agreement_step_size(curve: pd.Series) -> float:
    """The α where the mean sign agreement (a falling function of α) crosses ½, interpolated in
    log α; the grid point nearest ½ when it does not cross."""
    alphas, agreement = curve.index.to_numpy(), curve.to_numpy()
    for i in range(len(alphas) - 1):
        if agreement[i] >= 0.5 > agreement[i + 1]:
            fraction = (agreement[i] - 0.5) / (agreement[i] - agreement[i + 1])
            log_alpha = np.log(alphas[i]) + fraction * np.log(alphas[i + 1] / alphas[i])
            return float(np.exp(log_alpha))
    return float(alphas[np.argmin(np.abs(agreement - 0.5))])


def final_values(run: pd.DataFrame, column: str) -> float:
    """Each seed's mean over the last 10% of records, median over seeds."""
    per_seed = []
    for _, seed_run in run.groupby("seed"):
        values = seed_run.sort_values("step")[column].to_numpy()
        per_seed.append(values[-max(1, len(values) // 10):].mean())
    return float(np.median(per_seed))


def summarize(tables: dict[str, pd.DataFrame], budget: Budget) -> dict:
    windows, agreement, adaptation = (
        tables["trajectories"], tables["sign-agreement"], tables["delta-delta"]
    )
    fixed = {}
    for case, step_size in STEP_SIZES.items():
        steady = agreement[np.isclose(agreement["step_size"], step_size)]
        fixed[case] = {
            "step_size": step_size,
            "sign_agreement": window_agreement(windows[windows["case"] == case]),
            "steady_sign_agreement": float(steady["sign_agreement"].mean()),
            "steady_mse": float(steady["squared_error"].mean()),
        }
    curve = agreement.groupby("step_size")["sign_agreement"].mean().sort_index()
    learned = {}
    for case, step_size in STEP_SIZES.items():
        run = adaptation[adaptation["case"] == case]
        learned[f"from_{case}"] = {
            "initial_step_size": step_size,
            "final_step_size": final_values(run, "step_size"),
            "final_mse": final_values(run, "squared_error"),
            "diverged_runs": int(run.groupby("seed")["diverged"].any().sum()),
        }
    finals = [learned[f"from_{case}"]["final_step_size"] for case in STEP_SIZES]
    return {
        "problem": {"start": START, "walk_std": WALK_STD, "noise_std": NOISE_STD,
                    "optimal_step_size": OPTIMAL_STEP_SIZE, "optimal_mse": OPTIMAL_MSE},
        "fixed": fixed,
        "sign_agreement_half_at": half_agreement_step_size(curve),
        "delta_delta": {
            "meta_step_size": META_STEP_SIZE,
            "min_step_size": MIN_STEP_SIZE,
            **learned,
            # How far apart the three starts end: 1 means they meet.
            "final_step_size_ratio": max(finals) / min(finals),
        },
    }


# ---------------------------------------------------------------------------------------------
# Figures


def trajectories_figure(windows: pd.DataFrame) -> Figure:
    figure = Figure(figsize=(11, 5.5), layout="constrained")
    axes = figure.subplots(2, len(STEP_SIZES), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    first_seed = windows["seed"].min()
    for column, (case, step_size) in enumerate(STEP_SIZES.items()):
        run = windows[(windows["case"] == case) & (windows["seed"] == first_seed)]
        run = run.sort_values("step")
        top, bottom = axes[0, column], axes[1, column]
        top.scatter(run["step"], run["observation"], s=6, color="0.65",
                    label="observation $y^*_t$")
        top.plot(run["step"], run["target"], "k--", linewidth=1, label="target $z_t$")
        top.plot(run["step"], run["weight"], color=COLORS[case], marker=".", markersize=3,
                 label="weight $w_t$ (LMS)")
        top.set_title(f"α {LABELS[case]} (α = {step_size:.3g})")
        deltas = run["delta"].to_numpy()
        bottom.bar(run["step"], deltas, width=0.8,
                   color=np.where(deltas >= 0, "tab:blue", "tab:orange"))
        bottom.axhline(0, color="k", linewidth=0.6)
        same_sign = window_agreement(run)
        bottom.set_title(f"consecutive $\\Delta_t$ of the same sign: {same_sign:.0%}",
                         fontsize=9)
        bottom.set_xlabel("step $t$ (examples seen)")
    axes[0, 0].set_ylabel("weight / target (units of $y^*$)")
    axes[1, 0].set_ylabel("$\\Delta_t = w_t - w_{t-1}$")
    axes[0, 0].legend(loc="lower right")
    figure.suptitle(f"One weight learned by LMS at three fixed step sizes (seed {first_seed}); "
                    f"α* = {OPTIMAL_STEP_SIZE:.3g}")
    return figure


def agreement_figure(agreement: pd.DataFrame) -> Figure:
    figure = Figure(figsize=(6.5, 4.2), layout="constrained")
    axes = figure.subplots()
    by_step_size = agreement.groupby("step_size")["sign_agreement"]
    mean, spread = by_step_size.mean(), by_step_size.std().fillna(0.0)
    axes.errorbar(mean.index, mean, yerr=spread, color="k", marker="o", markersize=3,
                  capsize=2, label="LMS, mean ± sd over seeds")
    axes.axhline(0.5, color="0.5", linewidth=1, linestyle=":")
    axes.axvline(OPTIMAL_STEP_SIZE, color="tab:green", linestyle="--",
                 label=f"α* = {OPTIMAL_STEP_SIZE:.3g} (best fixed α)")
    for case, step_size in STEP_SIZES.items():
        axes.plot(step_size, mean.loc[np.isclose(mean.index, step_size)].iloc[0], "o",
                  color=COLORS[case], markersize=8, label=f"α {LABELS[case]} = {step_size:.3g}")
    axes.set_xscale("log")
    axes.set_ylim(0, 1)
    axes.set_xlabel("fixed step size α (log scale)")
    axes.set_ylabel("fraction of steps with $\\Delta_{t-1}\\Delta_t > 0$")
    axes.set_title("Consecutive weight changes agree in sign half the time at α*", fontsize=10)
    axes.legend(loc="lower left")
    return figure


def adaptation_figure(adaptation: pd.DataFrame) -> Figure:
    figure = Figure(figsize=(6.5, 4.2), layout="constrained")
    axes = figure.subplots()
    for case, step_size in STEP_SIZES.items():
        runs = adaptation[adaptation["case"] == case].pivot(
            index="step", columns="seed", values="step_size"
        )
        low, median, high = (runs.quantile(q, axis=1) for q in (0.1, 0.5, 0.9))
        axes.plot(runs.index, median, color=COLORS[case],
                  label=f"ΔΔ from α₀ = {step_size:.3g} ({LABELS[case]})")
        axes.fill_between(runs.index, low, high, color=COLORS[case], alpha=0.2, linewidth=0)
    axes.axhline(OPTIMAL_STEP_SIZE, color="k", linestyle="--",
                 label=f"α* = {OPTIMAL_STEP_SIZE:.3g} (best fixed α)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("step $t$ (examples seen, log scale)")
    axes.set_ylabel("step size $\\alpha_t$ (log scale)")
    axes.set_title(f"The ΔΔ rule (κ = {META_STEP_SIZE}) from three starts: "
                   "median and 10–90% of seeds", fontsize=10)
    axes.legend(loc="upper right")
    return figure


def figures(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Figure]:
    return {
        "weight-trajectories": trajectories_figure(tables["trajectories"]),
        "sign-agreement": agreement_figure(tables["sign-agreement"]),
        "delta-delta-step-sizes": adaptation_figure(tables["delta-delta"]),
    }


# ---------------------------------------------------------------------------------------------
# What the talk says, and the registration

TALK = "Sutton 2023 talk, “Suppose a weight is being learned...”"
THEORY = ("theory: α* = P/(P + r), the steady-state Kalman gain (Sutton 1981), "
          "where consecutive errors are uncorrelated")
FIXED_POINT = "theory: the ΔΔ rule's fixed point, E[Δ_{t−1}Δ_t] = 0, is α* (as above)"
# The talk's words as bounds on the fraction of consecutive changes of the same sign: near 1 is
# at least 0.8, well below ½ at most 0.35, about ½ within 0.4–0.6. The theory rows: within 0.01
# (4% of α*) where the agreement crosses ½ on the grid of fixed step sizes, within 0.005 (2%)
# for the ΔΔ rule's end point, the median over seeds.
PUBLISHED = [
    Published("fixed.too_small.sign_agreement", "Δ_t all positive, or the same sign (near 1)",
              TALK, check=lambda agreement: agreement >= 0.8),
    Published("fixed.too_big.sign_agreement", "Δ_t changing sign (well below ½)", TALK,
              check=lambda agreement: agreement <= 0.35),
    Published("fixed.about_right.sign_agreement",
              "Δ_t sometimes the same sign, sometimes opposite (about ½)", TALK,
              check=lambda agreement: 0.4 <= agreement <= 0.6),
    Published("sign_agreement_half_at", OPTIMAL_STEP_SIZE, THEORY, kind="theory",
              tolerance=0.01),
    *[Published(f"delta_delta.from_{start}.final_step_size", OPTIMAL_STEP_SIZE, FIXED_POINT,
                kind="theory", tolerance=0.005)
      for start in ("too_small", "too_big", "about_right")],
]

EXPLANATION = """
The talk reads a weight's step size off its trajectory. With Δ_t = w_t − w_{t−1}: a step size
**too small** makes the weight creep toward its target, every Δ_t of the same sign; one **too
big** makes it overshoot back and forth, Δ_t changing sign; one **about right** gives both. Hence
the ΔΔ rule, α ← α + κ Δ_{t−1} Δ_t: grow α while consecutive changes agree, shrink it while they
alternate.

The problem here is one weight (input x ≡ 1) tracking a number that starts at 10 and takes a
random walk (increments N(0, 0.3²)), seen through noise N(0, 1); the weight starts at 0. Its best
fixed step size is known in closed form: the steady-state Kalman gain α* ≈ 0.258. At α* the
errors of successive predictions are uncorrelated, so consecutive weight changes agree in sign
half the time; that is exactly where the ΔΔ rule stops moving α.

How to read the figures:

- **weight-trajectories**: LMS at α = 0.025 (too small), 1.5 (too big) and α* (about right),
  the first steps of one seed, with the changes Δ_t below each: the talk's three pictures.
- **sign-agreement**: over a grid of fixed α, the fraction of steps at which Δ_{t−1} and Δ_t
  have the same sign, after the approach: it falls through ½ at α*.
- **delta-delta-step-sizes**: the ΔΔ rule started from each of the three step sizes: all three
  α_t should end near α* (dashed line). The additive rule's κ is not dimensionless; it is set for
  this problem's scale.

The talk gives no numbers: its claims are the qualitative rows of the table; α* is the reference
for the numeric rows.
"""

EXPERIMENT = Experiment(
    name="delta-delta",
    description="The ΔΔ rule: the sign of successive weight changes tells whether α is too small "
    "or too big; from each start the rule finds the best α",
    budgets=BUDGETS,
    shards=shards,
    summarize=summarize,
    figures=figures,
    published=PUBLISHED,
    explanation=EXPLANATION,
    quick_minutes=0.3,  # approximate: see QUICK_MINUTES_MACHINE
)
