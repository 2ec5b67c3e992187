"""The noisy-tracking experiment: its theory, its bookkeeping (on the shared smoke run), and its
claims at a small budget (slow)."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from metastep.experiments import get, noisy_tracking
from metastep.problems import optimal_mse, optimal_step_size

EXPERIMENT = get("noisy-tracking")
# Three regimes of the real length, two seeds: six regimes per method and preset.
SMALL = EXPERIMENT.budget("quick", steps=150_000, seeds=2)


@pytest.fixture(scope="module")
def smoke_tables(smoke_run):
    return smoke_run.tables(EXPERIMENT.name)


@pytest.fixture(scope="module")
def small_tables():
    return {shard.name: shard.compute() for shard in EXPERIMENT.shards(SMALL)}


@pytest.fixture(scope="module")
def small_summary(small_tables):
    return EXPERIMENT.summarize(small_tables, SMALL)


# ---------------------------------------------------------------------------------------------
# Theory (docs/published.md#noisy-tracking): expectations over σ ~ U(0, 3), and the talk preset's
# RMSprop identity


def test_expectations_over_sigma_match_the_spec():
    step_size, mse = noisy_tracking.expected_best_fixed_step_size("paper")
    assert step_size == pytest.approx(0.79, abs=0.005)
    assert mse == pytest.approx(4.791, abs=0.001)
    expected = noisy_tracking.expected_over_sigma(lambda sigma: optimal_mse(sigma, "paper"))
    assert expected == pytest.approx(4.660, abs=0.001)


def test_talk_optimal_step_size_is_one_over_root_optimal_mse():
    # Why RMSprop with η = 1 tracks α* in the talk preset: α* = 1/P and P² = P + σ² = MSE.
    sigmas = np.linspace(0.05, 3.0, 30)
    np.testing.assert_allclose(optimal_step_size(sigmas, "talk"),
                               1 / np.sqrt(optimal_mse(sigmas, "talk")), rtol=1e-5)


def record_every(budget):
    """The record interval of the shards: the same for every one."""
    (interval,) = {shard.parameters["record_every"] for shard in EXPERIMENT.shards(budget)}
    return interval


@pytest.mark.parametrize("steps", [4_000, 150_000, 1_000_000, 123_000])
def test_record_interval_divides_the_run_and_the_regime(steps):
    for name in ("smoke", "quick", "full"):
        budget = EXPERIMENT.budget(name, steps=steps)
        interval = record_every(budget)
        assert steps % interval == 0
        assert budget.settings["regime_length"] % interval == 0


# ---------------------------------------------------------------------------------------------
# Bookkeeping: the records and regimes of the tables, divergence (test_every_experiment checks
# the tables, summary and figures every experiment owes)


def test_tables_hold_every_record_and_one_sigma_per_regime(smoke_tables):
    smoke = EXPERIMENT.budget("smoke")
    records = smoke.steps // record_every(smoke)
    assert set(smoke_tables) == {"sweeps"}
    sweeps = smoke_tables["sweeps"]
    for preset in noisy_tracking.PRESETS:
        preset_rows = sweeps[sweeps["preset"] == preset]
        assert preset_rows["method"].unique().tolist() == list(noisy_tracking.METHOD)
        for method in noisy_tracking.METHODS:
            table = noisy_tracking.rows_of(smoke_tables, preset, method)
            assert {"method", "preset", method.parameter, "seed", "step", "squared_error",
                    "diverged", "step_size", "sigma", "optimal_step_size"} <= set(table.columns)
            assert not table[method.parameter].isna().any()
            assert len(table) == len(method.grid) * smoke.seeds * records, method.name
            # One σ per regime: no record bin straddles two regimes.
            sigmas = table.groupby([method.parameter, "seed", "regime"])["sigma"]
            assert (sigmas.nunique() == 1).all()
            # Every method read the same streams.
            pd.testing.assert_frame_equal(
                table.groupby(["seed", "step"])["sigma"].first().reset_index(),
                preset_rows.groupby(["seed", "step"])["sigma"].first().reset_index())


def test_a_run_stored_with_a_shard_per_method_is_read_the_same(smoke_tables):
    # Before the methods shared a program, a run stored one shard per (preset, method).
    smoke = EXPERIMENT.budget("smoke")
    per_method = {f"{preset}-{method.name}": noisy_tracking.rows_of(smoke_tables, preset, method)
                  for preset in noisy_tracking.PRESETS for method in noisy_tracking.METHODS}
    assert list(per_method["talk-sgd"].columns).count("meta_step_size") == 0
    assert (json.dumps(EXPERIMENT.summarize(per_method, smoke), sort_keys=True)
            == json.dumps(EXPERIMENT.summarize(smoke_tables, smoke), sort_keys=True))


def test_a_diverged_configuration_is_reported_and_never_chosen():
    method = noisy_tracking.METHOD["idbd"]
    table = pd.DataFrame({
        method.parameter: [0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.2],
        "seed": [0, 0, 1, 1, 0, 0, 1, 1],
        "squared_error": [1.0, 1.0, 1.0, np.nan, 2.0, 2.0, 2.0, 2.0],
        "diverged": [False, False, False, True, False, False, False, False],
    })
    configurations = noisy_tracking.configuration_results(table, method)
    assert math.isnan(configurations.loc[0.1, "mse"])
    assert configurations.loc[0.1, "diverged_seeds"] == 1
    assert configurations.loc[0.2, "mse"] == 2.0
    chosen = noisy_tracking.best_configuration(table, method)
    assert set(chosen[method.parameter]) == {0.2}


# ---------------------------------------------------------------------------------------------
# The claims, at the small budget (slow: a run of the quick budget's regime length)


@pytest.mark.parametrize("preset", noisy_tracking.PRESETS)
@pytest.mark.slow
def test_idbd_tracks_the_optimal_step_size(small_summary, preset):
    idbd = small_summary[preset]["idbd"]
    assert idbd["step_size_correlation"] > 0.9
    assert 0.8 < idbd["step_size_slope"] < 1.2
    # Near the Kalman optimum, and closer to it than the best fixed α.
    assert idbd["mse_ratio"] < 1.02
    assert idbd["mse"] < small_summary[preset]["sgd"]["mse"]


@pytest.mark.slow
def test_rmsprop_moves_the_wrong_way_when_the_drift_changes(small_summary):
    rmsprop = small_summary["paper"]["rmsprop"]
    assert rmsprop["step_size_correlation"] < -0.9
    assert rmsprop["step_size_slope"] < 0
    assert rmsprop["mse"] > small_summary["paper"]["sgd"]["mse"]


@pytest.mark.slow
def test_rmsprop_moves_the_right_way_when_the_noise_changes(small_summary):
    # In the talk preset a larger error means more noise, where α* is smaller too.
    assert small_summary["talk"]["rmsprop"]["step_size_correlation"] > 0.9


@pytest.mark.slow
def test_best_fixed_step_size_is_the_spec_one(small_summary):
    fixed = small_summary["paper"]["sgd"]
    assert fixed["fixed_step_size"] == pytest.approx(0.79, abs=0.06)
    assert fixed["expected_mse"] == pytest.approx(4.791, rel=0.005)
