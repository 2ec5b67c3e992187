"""The scale-sensitivity experiment: its tables, and Degris et al.'s claim (IDBD's best θ moves
with the target scale, SGD's best α and Autostep's best μ do not) at the smoke budget, where it
already holds (test_every_experiment checks the tables, summary and figures every experiment
owes)."""

import numpy as np
import pytest

from metastep.experiments import get, scale_sensitivity

EXPERIMENT = get("scale-sensitivity")


@pytest.fixture(scope="module")
def smoke_tables(smoke_run):
    return smoke_run.tables(EXPERIMENT.name)


@pytest.fixture(scope="module")
def smoke_summary(smoke_tables):
    return EXPERIMENT.summarize(smoke_tables, EXPERIMENT.budget("smoke"))


def test_smoke_tables_hold_every_scale_and_grid_value(smoke_tables):
    budget = EXPERIMENT.budget("smoke")
    methods = scale_sensitivity.budget_methods(budget)
    assert set(smoke_tables) == set(methods)
    for name, table in smoke_tables.items():
        parameter = methods[name].parameter
        assert {"method", "scale", parameter, "seed", "step", "squared_error",
                "diverged"} <= set(table.columns), name
        assert set(table["scale"]) == set(scale_sensitivity.SCALES), name
        np.testing.assert_allclose(np.sort(table[parameter].unique()), methods[name].grid)


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
        parameter = scale_sensitivity.methods(1)[method].parameter
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
