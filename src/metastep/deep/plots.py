"""Which parts of a network learn: a layers × time heatmap of the learned step sizes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Up to this many task switches are drawn across the heatmap; more would hide it, so they become
# ticks along its top edge.
MAX_SWITCH_LINES = 24

STATISTIC_LABELS = {
    "log10_step_size_mean": "mean log₁₀ α",
    "effective_step_size": "effective step size −g·Δw / error²",
}


def plot_layer_step_sizes(
    records: dict[str, Any] | np.ndarray,
    steps: Sequence[float],
    layer_names: Sequence[str],
    switch_steps: Sequence[float] | None = None,
    ax: Any = None,
    *,
    statistic: str = "log10_step_size_mean",
    title: str | None = None,
):
    """A heatmap of one step-size statistic, parameter arrays (rows) × time (columns).

    Args:
      records: a run's records (``RunResult.records`` of a :class:`~metastep.deep.DeepLearner`
        run: ``records[statistic]`` is ``[R, L]``), or that ``[R, L]`` array itself.
      steps: ``[R]`` the steps at the end of each record bin (``RunResult.steps``).
      layer_names: ``[L]`` the row labels (``learner.layer_names``).
      switch_steps: steps at which the task changes, drawn as vertical dashed lines across the
        heatmap, or, when there are more than ``MAX_SWITCH_LINES`` (24), as ticks along its top
        edge so that they do not cover it.
      ax: a Matplotlib axes to draw on (default: a new figure).
      statistic: the record to show, ``"log10_step_size_mean"`` (default) or
        ``"effective_step_size"``.
      title: the axes title.

    Returns:
      The Matplotlib figure.
    """
    # A bare Figure (no pyplot): no global backend state, and it renders with Agg when saved.
    from matplotlib.figure import Figure

    values = np.asarray(records[statistic] if isinstance(records, dict) else records, float)
    steps = np.asarray(steps, float)
    if values.ndim != 2 or values.shape != (len(steps), len(layer_names)):
        raise ValueError(
            f"the statistic must be [R, L] = [{len(steps)}, {len(layer_names)}] (records × "
            f"layers), got shape {values.shape}"
        )
    if ax is None:
        figure = Figure(figsize=(8, 0.35 * len(layer_names) + 1.6), layout="constrained")
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    # Bin edges: each record covers the steps since the previous one.
    edges = np.concatenate([[0.0], steps]) if steps[0] > 0 else np.arange(len(steps) + 1.0)
    mesh = ax.pcolormesh(edges, np.arange(len(layer_names) + 1), values.T, cmap="viridis")
    ax.set_yticks(np.arange(len(layer_names)) + 0.5, labels=list(layer_names))
    ax.invert_yaxis()
    ax.set_xlabel("step")
    ax.set_ylabel("parameter array")
    switches = np.asarray(switch_steps if switch_steps is not None else [], float)
    if len(switches) > MAX_SWITCH_LINES:
        # x in data units, y in axes units: the top 4% of the axes, whatever the y limits.
        ax.vlines(switches, 0.96, 1.0, transform=ax.get_xaxis_transform(), color="white",
                  linewidth=0.8)
    else:
        for switch in switches:
            ax.axvline(switch, color="white", linestyle="--", linewidth=0.8)
    figure.colorbar(mesh, ax=ax, label=STATISTIC_LABELS.get(statistic, statistic))
    if title:
        ax.set_title(title)
    return figure


__all__ = ["MAX_SWITCH_LINES", "plot_layer_step_sizes"]
