"""The layers × time heatmap of step sizes."""

import numpy as np
import pytest

import metastep as ms


def test_heatmap_builds_with_labels_and_switches(tmp_path):
    names = ["layer_0/kernel", "layer_0/bias", "layer_1/kernel"]
    steps = np.arange(1, 11) * 100
    records = {"log10_step_size_mean": np.linspace(-3, -1, 30).reshape(10, 3)}
    figure = ms.deep.plot_layer_step_sizes(records, steps, names, switch_steps=[500])
    ax = figure.axes[0]
    assert [label.get_text() for label in ax.get_yticklabels()] == names
    assert ax.get_xlabel() == "step"
    assert any(line.get_xdata()[0] == 500 for line in ax.get_lines())
    assert figure.axes[1].get_ylabel() == "mean log₁₀ α"  # the colorbar
    figure.savefig(tmp_path / "layers.png")
    assert (tmp_path / "layers.png").stat().st_size > 0


def test_heatmap_draws_on_given_axes_and_checks_shapes():
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    values = np.zeros((4, 2))
    figure = ms.deep.plot_layer_step_sizes(
        {"effective_step_size": values}, [1, 2, 3, 4], ["a", "b"], ax=ax,
        statistic="effective_step_size",
    )
    assert figure is ax.figure
    with pytest.raises(ValueError, match="records × layers"):
        ms.deep.plot_layer_step_sizes(values, [1, 2, 3], ["a", "b"])


def test_many_switches_become_ticks_along_the_top_edge():
    from matplotlib.collections import LineCollection

    steps = np.arange(1, 401) * 100
    values = np.zeros((400, 2))
    switches = np.arange(1, 100) * 400.0
    assert len(switches) > ms.deep.plots.MAX_SWITCH_LINES
    ax = ms.deep.plot_layer_step_sizes(values, steps, ["a", "b"], switch_steps=switches).axes[0]
    assert not ax.get_lines()  # no line across the heatmap
    (ticks,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    segments = ticks.get_segments()
    np.testing.assert_array_equal([s[0][0] for s in segments], switches)
    # In axes units along y: the top 4% of the heatmap.
    assert all(s[0][1] >= 0.96 and s[1][1] == 1.0 for s in segments)
