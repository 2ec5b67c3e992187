"""The one-default experiment's table as a heatmap (:mod:`metastep.experiments.one_default`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from metastep.experiments._base import Budget

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
