"""switching-2d: the error surface over two step sizes, and where each method takes them.

The talk ("2-dim non-stationary linear supervised learning"; Degris et al. 2024, Fig. 1) asks
which step-size methods find the best step size *per weight*. The problem
(``ms.problems.switching_2d``, docs/problems.md#switching_2d)::

    y* = w1* x1 + w2* x2,   x_i ~ N(0, 1),   w1* = 0,   w2* = ±1 switching w.p. ½ every 20 steps

The first input is irrelevant (its best step size is 0: learning it only adds noise), the second
tracks a target that keeps switching (its best step size is large, about 0.33). A method does
structural credit assignment if it drives (α1, α2) to that corner of the plane.

Protocol, top to bottom below:

1. ``surface``: LMS (``ms.sgd`` with the fixed vector (α1, α2)) over a regular grid of
   [0, 0.5]², weights from 0, squared error averaged over the whole run, for the "may switch"
   problem and the deterministic variant (switch every 20 steps). Every configuration of a
   seed reads the same stream.
2. ``near-optimum``: the same on a fine grid around the optimum (α1 ≤ 0.1, α2 in [0.28, 0.40]
   by 0.005): the optimum and its MSE, and the MSE at (0.1, 0.34) quoted in the talk.
3. ``idbd``, ``rmsprop``, ``adam``: the step-size vector of each adaptive method over the run
   (recorded a few hundred times), on the "may switch" problem. IDBD: three meta
   step sizes θ (3e-4 slow, 1e-3 the talk's, 1e-2 too large), each from five starts in
   [0.01, 0.5]². RMSprop and Adam: three base step sizes η each; their "step size" is the
   per-weight normalizer α = η / sqrt(v̂ + ε) (docs/methods.md#adam), which starts huge (v = 0) and
   settles within a few hundred steps.

Shards: ``lms-surfaces`` (1 and 2: both grids on both variants side by side in one program,
``ms.sweep_together``, the ``grid`` column naming them) and ``trajectories`` (3: the three
methods side by side in one program); :func:`part_tables` reads them, or a run stored with one
shard per part, as before.

An end point is the mean over the last 10% of a run's records, then over seeds (and starts);
its MSE is the learner's own squared error over those records. Diverged lanes (NaN in the
engine's records) are counted and left out of every mean explicitly.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import ListedColormap, LogNorm
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
from metastep.problems import Problem

# ---------------------------------------------------------------------------------------------
# The problem, the grids and the methods' settings

NUM_FEATURES = 2
FLIP_EVERY = 20
VARIANTS = {"may_switch": 0.5, "deterministic": 1.0}  # name -> probability of a switch
VARIANT_TITLES = {"may_switch": "w2* may switch (p = ½) every 20 steps",
                  "deterministic": "w2* switches every 20 steps"}
SURFACE_MAX = 0.5  # the talk's plots show α in [0, ~0.5]

# The fine grid: the optimum to ±0.0025 in α2, how fast the error grows with α1, and the talk's
# off-optimum point (0.1, 0.34).
NEAR_OPTIMUM_ALPHA1 = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1)
NEAR_OPTIMUM_ALPHA2 = tuple(np.round(np.arange(0.28, 0.40001, 0.005), 3).tolist())
OFF_OPTIMUM = (0.1, 0.34)

IDBD_META_STEP_SIZES = (3e-4, 1e-3, 1e-2)
REFERENCE_META_STEP_SIZE = 1e-3  # the talk's θ
REFERENCE_INDEX = IDBD_META_STEP_SIZES.index(REFERENCE_META_STEP_SIZE)
TOO_LARGE_META_STEP_SIZE = 1e-2
# (α1, α2) at the start of the IDBD runs: the corners and the centre of [0.01, 0.5]².
STARTS = ((0.01, 0.01), (0.5, 0.5), (0.01, 0.5), (0.5, 0.01), (0.25, 0.25))
# Base step sizes η: α settles near (1.3 η, 0.8 η) for RMSprop and (0.8 η, 0.5 η) for Adam,
# so these span the plotted square. Their rates are Degris et al.'s (ms.rmsprop's and ms.adam's
# defaults), stated for config.json.
RMSPROP = SweptMethod("rmsprop", "RMSprop", "learning_rate", "η", (0.03, 0.1, 0.2), ms.rmsprop,
                      {"normalizer_rate": 0.01, "eps": 1e-8})
ADAM = SweptMethod("adam", "Adam", "learning_rate", "η", (0.03, 0.1, 0.3), ms.adam,
                   {"momentum_rate": 0.1, "normalizer_rate": 0.001, "eps": 1e-8})
SURFACE_RECORDS = 10  # per run: the surface's error is averaged over all of them
FINAL_FRACTION = 0.1  # an end point: the last 10% of the records

BUDGETS = {
    "smoke": Budget(steps=2_000, seeds=2, settings={
        "surface_spacing": 0.1, "surface_seeds": 2, "trajectory_records": 20}),
    # IDBD (θ = 1e-3) has α2 at 0.33 after ~50,000 steps; α1 keeps falling (0.03 at 250,000).
    "quick": Budget(steps=250_000, seeds=3, settings={
        "surface_spacing": 0.02, "surface_seeds": 3, "trajectory_records": 500}),
    "full": Budget(steps=1_000_000, seeds=30, settings={
        "surface_spacing": 0.02, "surface_seeds": 10, "trajectory_records": 1_000}),
}


def lms(alpha1, alpha2):
    return ms.LinearLearner(ms.sgd(jnp.stack([alpha1, alpha2])), NUM_FEATURES)


def idbd_from_start(meta_step_size, start, starts=STARTS):
    """IDBD with θ = ``meta_step_size`` from the per-weight step sizes ``starts[start]``."""
    initial = jnp.asarray(starts)[jnp.asarray(start).astype(jnp.int32)]
    return ms.LinearLearner(ms.idbd(meta_step_size, initial), NUM_FEATURES)


# ---------------------------------------------------------------------------------------------
# Shard 1: the error surfaces of fixed step sizes


def surface_grid(spacing: float) -> list[float]:
    return np.round(np.arange(0.0, SURFACE_MAX + spacing / 2, spacing), 6).tolist()


def lms_surfaces(problems: dict[str, Problem], grids: dict[str, dict[str, list[float]]],
                 seeds: list[int], steps: int, record_every: int) -> pd.DataFrame:
    """One row per (grid, variant, α1, α2, seed, record): LMS's squared error, mean over the
    bin. ``grids``: name (the ``grid`` column) -> ``{"alpha1": [...], "alpha2": [...]}``; every
    grid on every variant, side by side in one program (``ms.sweep_together``)."""
    pairs = [(name, variant) for name in grids for variant in problems]
    results = ms.sweep_together(
        {f"{name}-{variant}": (lms, grids[name]) for name, variant in pairs},
        {f"{name}-{variant}": problems[variant] for name, variant in pairs},
        seeds=seeds, steps=steps, record_every=record_every)
    tables = [sweep_table(results[f"{name}-{variant}"], "lms", grid=name, variant=variant,
                          flip_probability=problems[variant].params["flip_probability"])
              for name, variant in pairs]
    return pd.concat(tables, ignore_index=True).drop(columns="mean_step_size")


# ---------------------------------------------------------------------------------------------
# Shard 2: the step-size vectors of the adaptive methods over time


def trajectory_table(result, method: str) -> pd.DataFrame:
    """``sweep_table`` with the two step sizes of each record as ``alpha1``, ``alpha2``."""
    table = sweep_table(result, method).drop(columns="mean_step_size")
    step_sizes = result.step_sizes.reshape(-1, NUM_FEATURES)  # rows in to_pandas order
    table["alpha1"], table["alpha2"] = step_sizes[:, 0], step_sizes[:, 1]
    return table


def idbd_table(result, starts: tuple[tuple[float, float], ...]) -> pd.DataFrame:
    """IDBD's step sizes over time, for each meta step size from each start."""
    table = trajectory_table(result, "idbd")
    start_alphas = np.asarray(starts)[table["start"].to_numpy()]
    table.insert(3, "start_alpha1", start_alphas[:, 0])
    table.insert(4, "start_alpha2", start_alphas[:, 1])
    return table


def adaptive_trajectories(problem: Problem, meta_step_sizes: tuple[float, ...],
                          starts: tuple[tuple[float, float], ...], methods: list[SweptMethod],
                          seeds: list[int], steps: int, record_every: int) -> pd.DataFrame:
    """The step sizes over time of IDBD (each meta step size from each start) and of each of
    ``methods`` (each value of its grid), side by side in one program (``ms.sweep_together``);
    a method's rows leave the others' parameters empty."""
    sweeps = {"idbd": (functools.partial(idbd_from_start, starts=starts),
                       {"meta_step_size": meta_step_sizes, "start": list(range(len(starts)))})}
    sweeps.update({method.name: (method.linear_learners(NUM_FEATURES),
                                 {method.parameter: method.grid}) for method in methods})
    results = ms.sweep_together(sweeps, problem, seeds=seeds, steps=steps,
                                record_every=record_every)
    return pd.concat([idbd_table(results["idbd"], starts),
                      *(trajectory_table(results[method.name], method.name)
                        for method in methods)], ignore_index=True)


def part_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The tables of ``surface``, ``near-optimum``, ``idbd``, ``rmsprop`` and ``adam``, from
    the two shards, or as a run stored with one shard for each (before they shared programs)
    has them."""
    if "lms-surfaces" not in tables:
        return tables
    surfaces, adaptive = tables["lms-surfaces"], tables["trajectories"]
    parts = {name: surfaces[surfaces["grid"] == name].drop(columns="grid")
             for name in ("surface", "near-optimum")}
    idbd_columns = ["meta_step_size", "start", "start_alpha1", "start_alpha2"]
    for method in ("idbd", RMSPROP.name, ADAM.name):
        rows = adaptive[adaptive["method"] == method]
        # RMSprop and Adam sweep the same parameter, learning_rate.
        parts[method] = rows.drop(columns=[RMSPROP.parameter] if method == "idbd"
                                  else idbd_columns)
    # The start is an index (integers); the other methods' empty rows made the column float.
    parts["idbd"] = parts["idbd"].astype({"start": np.int64})
    return {name: part.reset_index(drop=True) for name, part in parts.items()}


def shards(budget: Budget) -> list[Shard]:
    settings = budget.settings
    surface = surface_grid(settings["surface_spacing"])
    # The surface has hundreds of configurations, and common streams make its differences
    # precise: at most ``surface_seeds`` seeds.
    surface_seeds = budget.seed_list[:settings["surface_seeds"]]
    problems = {variant: ms.problems.switching_2d(FLIP_EVERY, p)
                for variant, p in VARIANTS.items()}
    surface_schedule = {"seeds": surface_seeds, "steps": budget.steps,
                        "record_every": budget.record_every(SURFACE_RECORDS)}
    schedule = {"seeds": budget.seed_list, "steps": budget.steps,
                "record_every": budget.record_every(settings["trajectory_records"])}
    near_optimum = {"alpha1": list(NEAR_OPTIMUM_ALPHA1), "alpha2": list(NEAR_OPTIMUM_ALPHA2)}
    surface_configurations = len(surface) ** 2 + len(NEAR_OPTIMUM_ALPHA1) * len(
        NEAR_OPTIMUM_ALPHA2)
    adaptive_configurations = len(IDBD_META_STEP_SIZES) * len(STARTS) + len(RMSPROP.grid) + len(
        ADAM.grid)
    return [
        Shard.of_call("lms-surfaces", lms_surfaces,
                      work=(len(VARIANTS) * surface_configurations * len(surface_seeds)
                            * budget.steps),
                      problems=problems,
                      grids={"surface": {"alpha1": surface, "alpha2": surface},
                             "near-optimum": near_optimum}, **surface_schedule),
        Shard.of_call("trajectories", adaptive_trajectories,
                      work=adaptive_configurations * budget.seeds * budget.steps,
                      problem=problems["may_switch"], meta_step_sizes=IDBD_META_STEP_SIZES,
                      starts=STARTS, methods=[RMSPROP, ADAM], **schedule),
    ]


# ---------------------------------------------------------------------------------------------
# Summary


def surface_mse(table: pd.DataFrame, variant: str) -> pd.DataFrame:
    """Per (α1, α2): ``mse`` (run average, mean over seeds; NaN where any seed diverged) and
    ``diverged_seeds``. A diverged configuration is excluded, not averaged over its survivors."""
    rows = table[table["variant"] == variant]
    lanes = rows.groupby(["alpha1", "alpha2", "seed"]).agg(
        mse=("squared_error", "mean"), diverged=("diverged", "any"))
    lanes.loc[lanes["diverged"], "mse"] = np.nan
    configs = lanes.groupby(["alpha1", "alpha2"]).agg(
        mse=("mse", "mean"), diverged_seeds=("diverged", "sum"))
    configs.loc[configs["diverged_seeds"] > 0, "mse"] = np.nan
    return configs


def surface_matrix(configs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """α1 values, α2 values, and MSE as a [len(α2), len(α1)] matrix (rows: α2)."""
    matrix = configs["mse"].unstack("alpha1").sort_index()
    return matrix.columns.to_numpy(), matrix.index.to_numpy(), matrix.to_numpy()


def optimum(configs: pd.DataFrame) -> dict:
    alpha1, alpha2 = configs["mse"].idxmin()
    return {"alpha": [alpha1, alpha2], "alpha1": alpha1, "alpha2": alpha2,
            "mse": float(configs["mse"].min()),
            "diverged_configurations": int((configs["diverged_seeds"] > 0).sum())}


def final_lanes(table: pd.DataFrame, config_columns: list[str]) -> pd.DataFrame:
    """Per lane (configuration, seed): mean α1, α2 and squared error over the last records, and
    whether it diverged."""
    last_steps = np.sort(table["step"].unique())
    last_steps = last_steps[-max(1, int(round(FINAL_FRACTION * len(last_steps)))):]
    lanes = table.groupby([*config_columns, "seed"])
    diverged = lanes["diverged"].any()
    final = table[table["step"].isin(last_steps)].groupby([*config_columns, "seed"])[
        ["alpha1", "alpha2", "squared_error"]].mean()
    return final.assign(diverged=diverged)


def end_point(lanes: pd.DataFrame, best: tuple[float, float]) -> dict:
    """The end point of a set of lanes (diverged ones left out, and counted)."""
    healthy = lanes[~lanes["diverged"]]
    alpha1, alpha2 = healthy["alpha1"].mean(), healthy["alpha2"].mean()
    return {
        "final_alpha": [alpha1, alpha2], "final_alpha1": alpha1, "final_alpha2": alpha2,
        # How the method shares its step size out: 1 on the diagonal, 0 on the α2 axis.
        "final_alpha_ratio": alpha1 / alpha2 if alpha2 > 0 else np.nan,
        "distance_to_optimum": float(np.hypot(alpha1 - best[0], alpha2 - best[1])),
        "final_mse": healthy["squared_error"].mean(),
        "diverged_runs": int(lanes["diverged"].sum()),
    }


def setting_key(name: str, value: float) -> str:
    """A summary key for a setting, without dots (they separate the levels of a key)."""
    return f"{name}_{value:.0e}"


def summarize(tables: dict[str, pd.DataFrame], budget: Budget) -> dict:
    tables = part_tables(tables)
    near = {variant: surface_mse(tables["near-optimum"], variant) for variant in VARIANTS}
    best = optimum(near["may_switch"])
    surface = surface_mse(tables["surface"], "may_switch")
    summary = {
        "optimum": best,
        "off_optimum": {"alpha": list(OFF_OPTIMUM),
                        "mse": float(near["may_switch"].loc[OFF_OPTIMUM, "mse"])},
        "deterministic": {"optimum": optimum(near["deterministic"])},
        "surface": {"grid_spacing": budget.settings["surface_spacing"],
                    "configurations": len(surface),
                    "diverged_configurations": int((surface["diverged_seeds"] > 0).sum()),
                    "max_mse": float(surface["mse"].max())},
    }
    optimum_alpha = (best["alpha1"], best["alpha2"])

    idbd = final_lanes(tables["idbd"], ["meta_step_size", "start"])
    by_theta = {}
    for theta, runs in idbd.groupby("meta_step_size"):
        by_start = [end_point(start_runs, optimum_alpha)["final_alpha"]
                    for _, start_runs in runs.groupby("start")]
        by_theta[theta] = {"meta_step_size": theta, **end_point(runs, optimum_alpha),
                           "final_alpha_by_start": by_start}
    # The talk's θ first (the required keys), then every θ.
    reference = next(entry for theta, entry in by_theta.items()
                     if np.isclose(theta, REFERENCE_META_STEP_SIZE))
    summary["idbd"] = {**reference, **{setting_key("theta", theta): entry
                                       for theta, entry in by_theta.items()}}

    for method in ("rmsprop", "adam"):
        lanes = final_lanes(tables[method], ["learning_rate"])
        entries = {
            setting_key("eta", eta): {"learning_rate": eta, **end_point(runs, optimum_alpha)}
            for eta, runs in lanes.groupby("learning_rate")
        }
        ratios = [entry["final_alpha_ratio"] for entry in entries.values()]
        summary[method] = {**entries, "min_final_alpha_ratio": float(np.nanmin(ratios))
                           if np.isfinite(ratios).any() else np.nan}
    return summary


# ---------------------------------------------------------------------------------------------
# Figures

START_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
SETTING_COLORS = ("tab:blue", "tab:orange", "tab:red")
CONTOUR_LEVELS = {"may_switch": (0.31, 0.32, 0.35, 0.4, 0.5, 0.6, 0.8),
                  "deterministic": (0.61, 0.63, 0.7, 0.8, 1.0, 1.2, 1.6)}
# The colours span the minimum MSE to 4 times it, the region that matters; beyond it (large α1,
# near instability) they saturate at mid-grey, so that the paths drawn on top stay visible.
COLOR_RANGE = 4.0
SURFACE_COLORS = ListedColormap(colormaps["Greys"](np.linspace(0.0, 0.65, 256)))
SMOOTHING_FRACTION = 0.02  # a path's line: rolling mean over 2% of its records


def draw_surface(axes, table: pd.DataFrame, variant: str, best: dict | None = None):
    """The MSE heatmap (log colour scale) with labelled contours; returns the mappable."""
    alpha1, alpha2, mse = surface_matrix(surface_mse(table, variant))
    lowest = np.nanmin(mse)
    mesh = axes.pcolormesh(alpha1, alpha2, np.ma.masked_invalid(mse), shading="nearest",
                           cmap=SURFACE_COLORS, norm=LogNorm(lowest, COLOR_RANGE * lowest),
                           rasterized=True)
    levels = [level for level in CONTOUR_LEVELS[variant] if lowest < level < np.nanmax(mse)]
    if len(alpha1) > 2 and levels:
        contours = axes.contour(alpha1, alpha2, mse, levels=levels, colors="0.3",
                                linewidths=0.6)
        axes.clabel(contours, fontsize=7, fmt="%g")
    diverged = np.argwhere(~np.isfinite(mse))
    if len(diverged):
        axes.plot(alpha1[diverged[:, 1]], alpha2[diverged[:, 0]], "x", color="tab:red",
                  markersize=4, label="diverged (≥ 1 seed)")
    if best is not None:
        axes.plot(best["alpha1"], best["alpha2"], "*", color="gold", markeredgecolor="k",
                  markersize=14, zorder=5, clip_on=False,
                  label=f"optimum ({best['alpha1']:g}, {best['alpha2']:g}), "
                  f"MSE {best['mse']:.3f}")
    axes.grid(False)
    axes.set_xlim(-0.015, SURFACE_MAX + 0.015)
    axes.set_ylim(-0.015, SURFACE_MAX + 0.015)
    axes.set_aspect("equal")
    axes.set_xlabel("α1: step size of the irrelevant input")
    axes.set_ylabel("α2: step size of the switching input")
    return mesh


def add_colorbar(figure: Figure, mesh, axes, **options):
    colorbar = figure.colorbar(mesh, ax=axes, extend="max", **options)
    low, high = mesh.norm.vmin, mesh.norm.vmax
    ticks = np.round(np.geomspace(low, high, 5), 2)
    colorbar.set_ticks(ticks, labels=[f"{tick:g}" for tick in ticks])
    colorbar.minorticks_off()
    colorbar.set_label("MSE of LMS, mean over the run (log scale)")
    return colorbar


def surface_figure(tables: dict[str, pd.DataFrame]) -> Figure:
    figure = Figure(figsize=(11, 5.2), layout="constrained")
    panels = figure.subplots(1, len(VARIANTS))
    for axes, variant in zip(panels, VARIANTS):
        best = optimum(surface_mse(tables["near-optimum"], variant))
        mesh = draw_surface(axes, tables["surface"], variant, best)
        if variant == "may_switch":
            off = surface_mse(tables["near-optimum"], variant).loc[OFF_OPTIMUM, "mse"]
            axes.plot(*OFF_OPTIMUM, "o", color="tab:blue", markeredgecolor="k",
                      label=f"({OFF_OPTIMUM[0]:g}, {OFF_OPTIMUM[1]:g}): MSE {off:.3f}")
        axes.set_title(VARIANT_TITLES[variant])
        axes.legend(loc="upper right")
        add_colorbar(figure, mesh, axes, shrink=0.8)
    figure.suptitle("Error surface of LMS over fixed step sizes (α1, α2): mean of δ² over "
                    "the whole run, weights from 0")
    return figure


def mean_paths(table: pd.DataFrame, config_columns: list[str]):
    """Per configuration: (values, steps, α1 and α2 mean over the seeds that did not diverge,
    number of diverged seeds)."""
    for values, runs in table.groupby(config_columns):
        diverged_seeds = runs.groupby("seed")["diverged"].any()
        healthy = runs[runs["seed"].isin(diverged_seeds.index[~diverged_seeds])]
        path = healthy.groupby("step")[["alpha1", "alpha2"]].mean().sort_index()
        yield values, path, int(diverged_seeds.sum())


def draw_path(axes, path: pd.DataFrame, color: str, label: str, start=None):
    """The records as faint dots, their rolling mean as the line; ○ start, ● end."""
    smooth = path.rolling(max(1, round(SMOOTHING_FRACTION * len(path))), center=True,
                          min_periods=1).mean()
    start = (smooth["alpha1"].iloc[0], smooth["alpha2"].iloc[0]) if start is None else start
    axes.plot(path["alpha1"], path["alpha2"], ".", color=color, markersize=2, alpha=0.2)
    axes.plot(smooth["alpha1"], smooth["alpha2"], color=color, linewidth=1.4, label=label)
    axes.plot(start[0], start[1], "o", markerfacecolor="white", markeredgecolor=color,
              markeredgewidth=1.5, clip_on=False, zorder=4)
    axes.plot(smooth["alpha1"].iloc[-1], smooth["alpha2"].iloc[-1], "o", color=color,
              markeredgecolor="k", clip_on=False, zorder=4)


def diverged_note(count: int) -> str:
    return f", {count} seeds diverged" if count else ""


def trajectories_figure(tables: dict[str, pd.DataFrame]) -> Figure:
    figure = Figure(figsize=(13, 9), layout="constrained")
    panels = figure.subplots(2, 3).ravel()
    best = optimum(surface_mse(tables["near-optimum"], "may_switch"))
    for axes, theta in zip(panels, IDBD_META_STEP_SIZES):
        mesh = draw_surface(axes, tables["surface"], "may_switch", best)
        runs = tables["idbd"][np.isclose(tables["idbd"]["meta_step_size"], theta)]
        for (start,), path, diverged in mean_paths(runs, ["start"]):
            draw_path(axes, path, START_COLORS[start],
                      f"IDBD from ({STARTS[start][0]:g}, {STARTS[start][1]:g})"
                      f"{diverged_note(diverged)}", start=STARTS[start])
        role = {REFERENCE_META_STEP_SIZE: " (the talk's)",
                TOO_LARGE_META_STEP_SIZE: " (too large)"}.get(theta, "")
        axes.set_title(f"IDBD, θ = {theta:g}{role}")
    for axes, method, learning_rates in ((panels[3], "rmsprop", RMSPROP.grid),
                                         (panels[4], "adam", ADAM.grid)):
        draw_surface(axes, tables["surface"], "may_switch", best)
        name = "RMSprop" if method == "rmsprop" else "Adam"
        for (eta,), path, diverged in mean_paths(tables[method], ["learning_rate"]):
            color = SETTING_COLORS[learning_rates.index(eta)]
            draw_path(axes, path, color, f"{name}, η = {eta:g}{diverged_note(diverged)}")
        axes.set_title(f"{name}: α = η / √(v̂ + ε)")
        axes.legend(loc="lower right", fontsize=7.5)
    key = panels[5]
    key.axis("off")
    handles, labels = panels[REFERENCE_INDEX].get_legend_handles_labels()
    key.legend(handles, labels, loc="upper left", title="IDBD starts (top row)")
    key.text(0.0, 0.45, "\n".join([
        "★  optimum of fixed step sizes",
        "○  start of a run (RMSprop, Adam:",
        "   the first record)",
        "●  end of a run",
        "line: mean over seeds (diverged seeds",
        "   left out), smoothed; dots: records",
    ]), va="top", fontsize=9, transform=key.transAxes)
    add_colorbar(figure, mesh, key, location="bottom", shrink=0.9)
    figure.suptitle("Where each method takes the step-size vector (α1, α2) on the 2-D "
                    "switching problem (background: MSE of LMS at fixed (α1, α2))")
    return figure


def idbd_over_time_figure(tables: dict[str, pd.DataFrame]) -> Figure:
    figure = Figure(figsize=(13, 4.2), layout="constrained")
    panels = figure.subplots(1, len(IDBD_META_STEP_SIZES), sharey=True)
    best = optimum(surface_mse(tables["near-optimum"], "may_switch"))
    for axes, theta in zip(panels, IDBD_META_STEP_SIZES):
        runs = tables["idbd"][np.isclose(tables["idbd"]["meta_step_size"], theta)]
        for (start,), path, _ in mean_paths(runs, ["start"]):
            color = START_COLORS[start]
            axes.plot(path.index, path["alpha2"], color=color,
                      label=f"from ({STARTS[start][0]:g}, {STARTS[start][1]:g})")
            axes.plot(path.index, path["alpha1"], color=color, linestyle="--")
        axes.axhline(best["alpha2"], color="k", linestyle=":",
                     label=f"optimal α2 = {best['alpha2']:g}")
        axes.set_xscale("log")
        axes.set_xlabel("step (examples seen, log scale)")
        axes.set_title(f"IDBD, θ = {theta:g}: α2 solid, α1 dashed")
    panels[0].set_ylabel("step size (mean over seeds)")
    panels[0].legend(loc="upper left", fontsize=7)
    return figure


def figures(tables: dict[str, pd.DataFrame], budget: Budget) -> dict[str, Figure]:
    tables = part_tables(tables)
    return {
        "error-surface": surface_figure(tables),
        "step-size-trajectories": trajectories_figure(tables),
        "idbd-step-sizes-over-time": idbd_over_time_figure(tables),
    }


# ---------------------------------------------------------------------------------------------
# What the papers say, and the registration

SPEC = "the talk; Degris et al. 2024, Fig. 1"
# The step sizes are given to two digits (≈ 0.33: ±0.01), the MSEs to three (±0.005). "Toward
# 0" is below 0.05, a tenth of the largest start; "along the diagonal, not toward α1 = 0" is an
# end point with α1 at least half of α2 (α1/α2 is 1 on the diagonal, 0 at the optimum's corner).
PUBLISHED = [
    Published("optimum.alpha1", 0.0, SPEC, tolerance=0.01),
    Published("optimum.alpha2", 0.33, SPEC + " (≈)", tolerance=0.01),
    Published("optimum.mse", 0.301, SPEC + " (≈)", tolerance=0.005),
    Published("off_optimum.mse", 0.324, SPEC + ", at (α1, α2) = (0.1, 0.34)", tolerance=0.005),
    Published("deterministic.optimum.alpha2", 0.34, SPEC + ", deterministic switching (≈)",
              tolerance=0.01),
    Published("deterministic.optimum.mse", 0.599, SPEC + ", deterministic switching (≈)",
              tolerance=0.005),
    Published("idbd.final_alpha2", 0.33, SPEC + ": IDBD θ = 0.001 from starts in [0.01, 0.5]²",
              tolerance=0.02),
    Published("idbd.final_alpha1", "falls toward 0", SPEC + ": IDBD θ = 0.001",
              check=lambda alpha1: alpha1 < 0.05),
    Published(f"idbd.{setting_key('theta', TOO_LARGE_META_STEP_SIZE)}.final_alpha2",
              "θ ≥ 0.01 collapses α2 toward 0", SPEC, check=lambda alpha2: alpha2 < 0.05),
    Published("rmsprop.min_final_alpha_ratio",
              "moves α1 and α2 together, along the diagonal, not toward α1 = 0", SPEC,
              check=lambda ratio: ratio >= 0.5),
    Published("adam.min_final_alpha_ratio", "like RMSprop", SPEC,
              check=lambda ratio: ratio >= 0.5),
]

EXPLANATION = """
The target is y* = w1* x1 + w2* x2 with w1* = 0 and w2* = ±1 switching with probability ½ every
20 steps. The irrelevant first input is best not learned at all (α1 = 0); the second is best
learned fast (α2 ≈ 0.33). Only a method that assigns step sizes per weight, by their effect on
the error, can find that corner: the talk's "only IDBD finds optimal step sizes".

How to read the figures:

- **error-surface**: the MSE of LMS with fixed step sizes (α1, α2), averaged over the whole
  run from zero weights, on the problem as specified and on the deterministic variant; the star
  is the optimum found on a fine grid (spacing 0.005 in α2), the dot the talk's (0.1, 0.34).
  The error grows steadily with α1 and has a shallow minimum in α2.
- **step-size-trajectories**: the step-size vector of each method over its run, on that surface
  (mean over seeds; ○ start, ● end). IDBD with θ = 0.001 goes from every start to α2 ≈ 0.33 while
  α1 falls toward 0 (slowly: it is still falling at the end of the run); θ = 3e-4 does the same
  more slowly; θ = 0.01 is too large: the weights blow up (the MSE reaches tens, without
  overflowing) and both step sizes collapse to 0, the failure mode the talk mentions.
  RMSprop and Adam set α = η / √(v̂ + ε), the same function of each input's gradient scale: their
  (α1, α2) settle within a few hundred steps at a point that η slides along a line through the
  origin. The two step sizes move together (the talk's "along the diagonal"), and the irrelevant
  input gets the *larger* one (α1/α2 ≈ 1.4–1.7: its gradient is the smaller), the opposite of the
  optimum. Their α starts huge (v = 0), so their paths start at the first record.
- **idbd-step-sizes-over-time**: IDBD's α1 (dashed) and α2 (solid) against time: α2 gets to the
  optimum within tens of thousands of steps, α1 takes the whole run to fall. Starts that share
  their α2 share its path (α2's adaptation barely depends on α1), so some lines lie on others.

In the table, `final_alpha_ratio` is α1/α2 at the end (1 on the diagonal, 0 at the optimum's
corner) and `min_final_alpha_ratio` the smallest over a method's three settings. An end point is
the mean over the last 10% of the run; its MSE is the learner's own over that part.
"""

EXPERIMENT = Experiment(
    name="switching-2d",
    description="The error surface over two step sizes on the 2-D switching problem, and the "
    "step-size paths of IDBD, RMSprop and Adam on it",
    budgets=BUDGETS,
    shards=shards,
    summarize=summarize,
    figures=figures,
    published=PUBLISHED,
    explanation=EXPLANATION,
    quick_minutes=0.6,  # approximate: see QUICK_MINUTES_MACHINE
)
