"""The scale-sensitivity experiment: tidy tables, finite summary, and Degris et al.'s claim (IDBD's
best θ moves with the target scale, SGD's best α and Autostep's best μ do not) at the smoke
budget, where it already holds."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from metastep.experiments import get, lookup, scale_sensitivity
from metastep.experiments._base import is_finite_number

EXPERIMENT = get("scale-sensitivity")
REQUIRED_KEYS = ("idbd.best_theta_span_decades", "sgd.best_alpha_span_decades",
                 "autostep.best_mu_span_decades")


@pytest.fixture(scope="module")
def smoke_tables(smoke_run):
    return smoke_run.tables(EXPERIMENT.name)


@pytest.fixture(scope="module")
def smoke_summary(smoke_tables):
    return EXPERIMENT.summarize(smoke_tables, EXPERIMENT.budget("smoke"))


def test_smoke_tables_are_tidy(smoke_tables):
    budget = EXPERIMENT.budget("smoke")
    assert set(smoke_tables) == set(scale_sensitivity.METHODS)
    for method, table in smoke_tables.items():
        parameter = scale_sensitivity.METHODS[method].parameter
        assert {"method", "scale", parameter, "seed", "step", "squared_error",
                "diverged"} <= set(table.columns), method
        assert set(table["scale"]) == set(scale_sensitivity.SCALES), method
        assert set(table["seed"]) == set(budget.seed_list), method
        grid = scale_sensitivity.parameter_grid(method, budget.settings["points_per_decade"])
        np.testing.assert_allclose(np.sort(table[parameter].unique()), grid)


def test_smoke_summary_has_finite_required_and_published_numbers(smoke_summary):
    for key in REQUIRED_KEYS + tuple(published.key for published in EXPERIMENT.published):
        assert is_finite_number(lookup(smoke_summary, key)), key


def test_smoke_figures_have_labelled_axes(smoke_tables):
    figures = EXPERIMENT.figures(smoke_tables, EXPERIMENT.budget("smoke"))
    assert set(figures) == {"error-vs-hyperparameter", "best-hyperparameter-vs-scale"}
    for name, figure in figures.items():
        assert isinstance(figure, Figure)
        assert figure.axes[0].get_ylabel(), name
        assert all(axes.get_xlabel() for axes in figure.axes), name


def test_best_theta_moves_with_scale_and_best_alpha_and_mu_do_not(smoke_summary):
    theory = smoke_summary["theory_idbd_span_decades"]
    assert theory == pytest.approx(4.0)
    assert smoke_summary["idbd"]["best_theta_span_decades"] == pytest.approx(theory, abs=0.5)
    assert smoke_summary["sgd"]["best_alpha_span_decades"] == 0.0
    assert smoke_summary["autostep"]["best_mu_span_decades"] == 0.0


def normalized_curves(table, parameter):
    curves = scale_sensitivity.error_curves(table, parameter)
    return {scale: curve.droplevel("scale")["normalized_mse"]
            for scale, curve in curves.groupby(level="scale")}


def assert_same_where_learning(actual, desired, err_msg=""):
    """Equal (to float32 rounding) where the error is below twice that of not learning: past
    it the runs blow up (without diverging) and rounding differences grow chaotically."""
    actual, desired = np.asarray(actual), np.asarray(desired)
    learning = desired < 2 * scale_sensitivity.NO_LEARNING_MSE  # False for NaN (diverged)
    assert learning.sum() >= 3, err_msg
    np.testing.assert_allclose(actual[learning], desired[learning], rtol=1e-3, err_msg=err_msg)


def test_curves_are_scale_equivariant(smoke_tables):
    """Same streams at every scale: SGD's and Autostep's normalized errors are the same curve;
    IDBD's at scale s and θ is its curve at scale 1 and θ s² (two decades per factor 10)."""
    for method in ("sgd", "autostep"):
        parameter = scale_sensitivity.METHODS[method].parameter
        curves = normalized_curves(smoke_tables[method], parameter)
        for scale in (0.1, 10.0):
            assert_same_where_learning(curves[scale], curves[1.0], err_msg=method)
    curves = normalized_curves(smoke_tables["idbd"], "meta_step_size")
    shift = 2 * EXPERIMENT.budget("smoke").settings["points_per_decade"]  # grid points per s²
    reference = curves[1.0].to_numpy()
    assert_same_where_learning(curves[0.1].to_numpy()[shift:], reference[:-shift])
    assert_same_where_learning(curves[10.0].to_numpy()[:-shift], reference[shift:])


def test_diverged_configurations_are_counted_and_never_best(smoke_tables, smoke_summary):
    at_large_scale = smoke_summary["idbd"][scale_sensitivity.scale_key(10.0)]
    assert at_large_scale["diverged_configurations"] > 0
    table = smoke_tables["idbd"]
    diverged = table[(table["scale"] == 10.0) & table["diverged"]]["meta_step_size"].unique()
    assert at_large_scale["best_theta"] not in diverged
