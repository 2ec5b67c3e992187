"""The one-default experiment's figures (:mod:`metastep.experiments.one_default`): its table as
a heatmap, the candidate's step sizes over time, and each method's accuracy task by task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from metastep.experiments._base import Budget
from metastep.experiments._continual import STEP_SIZE_COLUMN

VERDICT_MARKS = {"pass": " ✓", "fail": " ✗", "reference": ""}
MARGIN_LIMIT = 1.0  # the colour scale's end: relative errors can reach −10 and more


def cell_text(entry: dict[str, Any]) -> str:
    if entry["diverged_seeds"]:
        return f"diverged\n({entry['diverged_seeds']}/{entry['seeds']} seeds)"
    return f"{entry['value']:.3g}{VERDICT_MARKS[entry['verdict']]}"


def margin_figure(summary: dict[str, Any], budget: Budget,
                  columns: Sequence[tuple[str, str]]) -> Figure:
    """The table as a heatmap: colour = margin over tuned Adam (+ better), numbers = values;
    ``columns``: (method, its column title), in order."""
    methods = [method for method, _ in columns]
    rows = summary["rows"]
    margins = np.array([[rows[row]["methods"][method]["margin_over_tuned_adam"]
                         for method in methods] for row in rows], dtype=np.float64)
    figure = Figure(figsize=(2.0 * len(methods) + 4, 0.5 * len(rows) + 2.5), layout="constrained")
    axes = figure.subplots()
    colormap = matplotlib.colormaps["RdBu"].with_extremes(bad="0.8")
    image = axes.imshow(np.ma.masked_invalid(margins), cmap=colormap, aspect="auto",
                        vmin=-MARGIN_LIMIT, vmax=MARGIN_LIMIT)
    for (i, j), margin in np.ndenumerate(margins):  # white on the darkest cells
        axes.text(j, i, cell_text(rows[list(rows)[i]]["methods"][methods[j]]), ha="center",
                  va="center", fontsize=8, color="white" if abs(margin) > 0.6 else "black")
    axes.grid(False)
    axes.set_xticks(range(len(methods)), [title for _, title in columns])
    axes.set_yticks(range(len(rows)), [f"{row}\n({rows[row]['bar']})" for row in rows],
                    fontsize=7)
    axes.set_xlabel("method: at its library default, Adam at its best grid point per row")
    axes.set_ylabel("problem (row) and its bar")
    figure.colorbar(image, ax=axes, label="margin over tuned Adam (+ = better): accuracy "
                    "difference, or (Adam − method) / Adam for errors; clipped at ±1")
    answer = summary["answer"]
    figure.suptitle(f"One default: the candidate passes {answer['passed']} of "
                    f"{answer['rows']} rows ({budget.name} budget; ✓ pass, ✗ fail; errors "
                    "divided by s²)")
    return figure


def candidate_step_size_figure(table: pd.DataFrame, stream: Any) -> Figure:
    """The candidate's mean log₁₀ step size per parameter array over time on ``stream`` (its
    rows of the stream's table), mean over seeds, task switches dotted."""
    layers = [column for column in table.columns if column.startswith(STEP_SIZE_COLUMN)]
    curves = table.groupby("step")[layers].mean()
    figure = Figure(figsize=(9, 4.5), layout="constrained")
    axes = figure.subplots()
    for layer in layers:
        axes.plot(curves.index, curves[layer], label=layer[len(STEP_SIZE_COLUMN):])
    for switch in range(stream.switch_every, stream.steps, stream.switch_every):
        axes.axvline(switch, color="0.7", linestyle=":", linewidth=0.8)
    axes.set_xlabel("step (dotted: task switches)")
    axes.set_ylabel("mean log₁₀ step size (α s) of the array")
    axes.legend(title="parameter array", fontsize=8)
    axes.set_title(f"Normalized IDBD at its default on {stream.title}, mean over "
                   f"{table['seed'].nunique()} seed(s)", fontsize=10)
    return figure


def accuracy_per_task_figure(per_task: dict[str, pd.DataFrame],
                             columns: Sequence[tuple[str, str]]) -> Figure:
    """Plasticity: each method's accuracy task by task, one panel per deep stream
    (``per_task``: title → tasks × methods); ``columns``: (method, its title), in order."""
    figure = Figure(figsize=(6 * len(per_task), 4.5), layout="constrained")
    for axes, (title, curves) in zip(np.atleast_1d(figure.subplots(1, len(per_task))),
                                     per_task.items(), strict=True):
        for method, label in columns:
            if method in curves:
                axes.plot(curves.index + 1, curves[method], label=label.replace("\n", " "),
                          linewidth=1.2)
        axes.set_xlabel("task")
        axes.set_ylabel("accuracy over the task (mean over seeds)")
        axes.set_title(title, fontsize=10)
    axes.legend(fontsize=7)
    figure.suptitle("Accuracy task by task: the methods at their defaults, Adam at its best "
                    "step size per row (a falling curve is lost plasticity)", fontsize=10)
    return figure
