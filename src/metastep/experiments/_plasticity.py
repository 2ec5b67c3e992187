"""The plasticity metrics and the summary of a continual benchmark's table.

Summary of a problem (:func:`summarize_problem`; "better" means higher accuracy or lower error):

* ``methods.<method>``: ``default_value`` and ``best_value`` (the grid value with the best run
  average among those where no seed diverged); ``default`` and ``best``, each with ``average``
  (the metric over the whole run, mean over seeds; NaN if a seed diverged), ``early`` and ``late``
  (over the first and the last 10% of the tasks, at least one task each),
  ``late_minus_early`` (the change of plasticity) and ``diverged_seeds``; ``sensitivity``:
  ``spread`` (the best minus the worst run average over the grid points where no seed diverged,
  ≥ 0), ``diverged_points``, ``decades`` (the grid's span), and the curve, ``values`` and
  ``averages``.
* ``answer``: ``tuned_adam`` (Adam's run average at its best step size), ``best_meta_default``
  (the best run average of a ``meta`` method at its default), ``best_meta_default_method`` (that
  method's name), ``best_meta_default_vs_tuned_adam`` (the difference, signed so that
  **positive means the meta-learned step size is better**), ``standard_error`` (that of the
  difference, from its spread over the seeds, each seed's runs paired; NaN with one seed), and
  ``vs_tuned_adam.<method>``, the difference for each ``meta`` method. Both sides are picked
  after the fact (Adam's best step size, the best meta method): each is a little optimistic.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from metastep.experiments._roster import FAMILIES, ROSTER

EARLY_LATE_FRACTION = 0.1  # plasticity: the first 10% of the tasks against the last 10%


def task_means(table: pd.DataFrame, metric: str) -> pd.Series:
    """The metric per (method, value, seed, task): the mean of the task's records (NaN if the
    method diverged in or before the task)."""
    return table.groupby(["method", "value", "seed", "task"])[metric].agg(
        lambda values: values.mean(skipna=False))


def early_late(per_task: pd.Series) -> tuple[float, float]:
    """The mean over the first and over the last ``EARLY_LATE_FRACTION`` of the tasks (at least
    one task each) of one run's per-task metric, indexed by task."""
    per_task = per_task.sort_index()
    count = max(1, int(EARLY_LATE_FRACTION * len(per_task)))
    return float(per_task.iloc[:count].mean(skipna=False)), float(
        per_task.iloc[-count:].mean(skipna=False))


def run_results(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (method, value, seed): ``average`` (over the tasks), ``early``, ``late``; each NaN if
    the method diverged in or before the tasks it covers."""
    rows = {}
    for run, per_task in task_means(table, metric).groupby(level=["method", "value", "seed"]):
        early, late = early_late(per_task.droplevel(["method", "value", "seed"]))
        rows[run] = {"average": float(per_task.mean(skipna=False)), "early": early, "late": late}
    runs = pd.DataFrame.from_dict(rows, orient="index")
    runs.index.names = ["method", "value", "seed"]
    return runs


def configuration_results(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (method, value): the mean over seeds of ``average``, ``early`` and ``late`` (NaN when
    a seed diverged) and ``diverged_seeds``."""
    grouped = runs.groupby(level=["method", "value"])
    configurations = grouped.agg(lambda values: values.mean(skipna=False))
    configurations["diverged_seeds"] = grouped["average"].agg(lambda values: values.isna().sum())
    return configurations


def better(metric: str) -> int:
    """+1 when a higher value of ``metric`` is better (accuracy), −1 when lower (error)."""
    return 1 if metric == "accuracy" else -1


def best_value(configurations: pd.DataFrame, metric: str) -> float:
    """The value with the best ``average`` among the configurations no seed diverged in (the
    centre when all diverged)."""
    scores = better(metric) * configurations["average"]
    if scores.isna().all():
        values = configurations.index.to_numpy()
        return float(values[len(values) // 2])
    return float(scores.idxmax())


def setting_summary(configurations: pd.DataFrame, value: float) -> dict[str, float]:
    row = configurations.loc[value]
    return {"average": float(row["average"]), "early": float(row["early"]),
            "late": float(row["late"]), "late_minus_early": float(row["late"] - row["early"]),
            "diverged_seeds": int(row["diverged_seeds"])}


def summarize_problem(table: pd.DataFrame, metric: str) -> dict[str, Any]:
    """The summary of one problem's table (module docstring); ``metric``: ``"accuracy"`` or
    ``"squared_error"``."""
    runs = run_results(table, metric)
    configurations = configuration_results(runs)
    defaults = table[table["default"]].groupby("method")["value"].first()
    methods = {}
    for name in [name for name in ROSTER if name in defaults.index]:
        method = configurations.loc[name]
        best = best_value(method, metric)
        healthy = method["average"].dropna()
        values = method.index.to_numpy()
        methods[name] = {
            "default_value": float(defaults[name]),
            "best_value": best,
            "default": setting_summary(method, float(defaults[name])),
            "best": setting_summary(method, best),
            "sensitivity": {
                "spread": float(healthy.max() - healthy.min()) if len(healthy) else math.nan,
                "diverged_points": int((method["diverged_seeds"] > 0).sum()),
                "decades": float(np.log10(values.max() / values.min())),
                "values": values.tolist(),
                "averages": method["average"].tolist(),
            },
        }
    summary: dict[str, Any] = {"methods": methods}
    meta = [name for name in FAMILIES["meta"] if name in methods]
    if "adam" in methods and meta:
        tuned_adam = methods["adam"]["best"]["average"]
        advantages = {name: better(metric) * (methods[name]["default"]["average"] - tuned_adam)
                      for name in meta}
        finite = {name: value for name, value in advantages.items() if math.isfinite(value)}
        leader = max(finite, key=finite.get) if finite else meta[0]
        # Paired by seed: the same stream and initial weights in both runs.
        differences = better(metric) * (
            runs.loc[(leader, methods[leader]["default_value"]), "average"]
            - runs.loc[("adam", methods["adam"]["best_value"]), "average"])
        summary["answer"] = {
            "tuned_adam": tuned_adam,
            "best_meta_default": methods[leader]["default"]["average"],
            "best_meta_default_method": leader,
            "best_meta_default_vs_tuned_adam": advantages[leader],
            "standard_error": float(differences.std() / np.sqrt(len(differences))),
            "vs_tuned_adam": advantages,
        }
    return summary
