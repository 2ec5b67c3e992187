"""The weight-flipping experiment: its tables and Fig. 3's axes on the shared smoke run, the
divergence accounting, and Sutton's claims at the paper's run lengths (slow; the fast suite checks
Sutton 1992's Exp. 1 and 2 in tests/test_replications.py). test_every_experiment checks the
tables, summary and figures every experiment owes."""

import json

import numpy as np
import pandas as pd
import pytest

from metastep.experiments import get
from metastep.experiments import weight_flipping as wf

EXPERIMENT = get("weight-flipping")


@pytest.fixture(scope="module")
def smoke_run_tables(smoke_run):
    return EXPERIMENT.budget("smoke"), smoke_run.tables(EXPERIMENT.name)


@pytest.fixture(scope="module")
def small_run():
    """The paper's run lengths (30,000 and 250,000 examples), 3 seeds: compile-bound, so the
    cost is about that of the smoke budget."""
    budget = EXPERIMENT.budget("quick", seeds=3)
    return budget, {shard.name: shard.compute() for shard in EXPERIMENT.shards(budget)}


def test_tables_hold_every_configuration_and_record(smoke_run_tables):
    budget, tables = smoke_run_tables
    records = budget.steps // budget.record_every(wf.EXP1_RECORDS)
    assert set(tables) == {"fig3", "exp2-step-sizes"}
    assert tables["fig3"]["method"].unique().tolist() == list(wf.METHODS)
    for name, method in wf.METHODS.items():
        table = wf.rows_of(tables, name)
        assert len(table) == len(method.grid) * budget.seeds * records, name
        assert set(table["method"]) == {name}
        assert set(table[method.parameter]) == set(method.grid), name
        assert set(table.columns) == {"experiment", "method", method.parameter, *method.constants,
                                      "seed", "step", "squared_error", "diverged", "mean_step_size",
                                      "mean_step_size_relevant", "mean_step_size_irrelevant"}
        assert not table.isna()[[method.parameter, *method.constants]].any().any(), name
    trajectories = tables["exp2-step-sizes"]
    assert set(trajectories["input"]) == set(range(1, wf.NUM_INPUTS + 1))
    assert trajectories["relevant"].sum() == len(trajectories) * wf.NUM_RELEVANT // wf.NUM_INPUTS
    assert trajectories["step"].max() == budget.settings["exp2_steps"]


def test_a_run_stored_with_a_shard_per_method_is_read_the_same(smoke_run_tables):
    # Before the methods shared a program, a run stored one Fig. 3 shard per method.
    budget, tables = smoke_run_tables
    per_method = {name: wf.rows_of(tables, name) for name in wf.METHODS}
    per_method["exp2-step-sizes"] = tables["exp2-step-sizes"]
    assert "tau" not in per_method["lms"].columns
    assert (json.dumps(EXPERIMENT.summarize(per_method, budget), sort_keys=True)
            == json.dumps(EXPERIMENT.summarize(tables, budget), sort_keys=True))


def test_fig3_has_log_parameter_axes_as_in_the_paper(smoke_run):
    fig3 = smoke_run.figures(EXPERIMENT.name)["asymptotic-mse"]
    assert all(axes.get_xscale() == "log" and axes.get_legend() is not None
               for axes in fig3.axes)


def sweep_rows(mse_by_seed, diverged_seeds=()):
    """A Fig. 3 table of one LMS configuration per key, one record per seed."""
    rows = []
    for learning_rate, errors in mse_by_seed.items():
        for seed, error in enumerate(errors):
            diverged = (learning_rate, seed) in diverged_seeds
            rows.append({"method": "lms", "learning_rate": learning_rate, "seed": seed, "step": 3,
                         "squared_error": np.nan if diverged else error, "diverged": diverged})
    return pd.DataFrame(rows)


def test_a_configuration_with_a_diverged_seed_is_reported_not_averaged():
    budget = wf.Budget(steps=3, seeds=3)
    # α = 0.05 would be the best if its surviving seeds were averaged; at α = 0.02 one seed
    # blew up (MSE above 2 Var(y*) = 10) without diverging.
    table = sweep_rows({0.01: [2.0, 2.2, 2.4], 0.02: [1.5, 1.5, 60.0], 0.05: [1.0, 1.0, 1.0]},
                       diverged_seeds={(0.05, 2)})
    configs = wf.asymptotic_mse(table, "lms", budget)
    assert configs.loc[0.05, "diverged_seeds"] == 1 and not configs.loc[0.05, "stable"]
    assert np.isnan(configs.loc[0.05, "mse"])
    assert configs.loc[0.01, "mse"] == pytest.approx(2.2)
    assert configs.loc[0.01, "se"] == pytest.approx(0.2 / np.sqrt(3))
    assert configs.loc[0.02, "stable"] and configs.loc[0.02, "unstable_seeds"] == 1
    summary = wf.method_summary(configs, "lms")
    assert summary["best_alpha"] == 0.01 and summary["best_mse"] == pytest.approx(2.2)
    assert summary["min_diverging_alpha"] == 0.05 and summary["max_stable_alpha"] == 0.02
    assert summary["max_reliable_alpha"] == 0.01
    assert summary["diverged_configs"] == 1 and summary["diverged_seeds"] == 1
    assert summary["unstable_seeds"] == 2


def best(small_run, name):
    budget, tables = small_run
    return wf.method_summary(wf.asymptotic_mse(wf.rows_of(tables, name), name, budget), name)


@pytest.mark.slow
def test_idbd_beats_the_best_lms_by_a_wide_margin_and_the_oracle_beats_both(small_run):
    lms, idbd, oracle = (best(small_run, name) for name in ("lms", "idbd", "oracle"))
    # Sutton: ≈ 3.5 against ≈ 1.5; the oracle (1.375) is the floor of fixed per-input α.
    assert idbd["best_mse"] < 0.6 * lms["best_mse"]
    assert oracle["best_mse"] < idbd["best_mse"] < 1.8
    assert 3.0 < lms["best_mse"] < 3.8
    assert 0.02 <= lms["best_alpha"] <= 0.05
    assert 0.1 <= oracle["best_alpha"] <= 0.2


@pytest.mark.slow
def test_lms_diverges_past_its_range_and_diverged_configurations_are_left_out(small_run):
    budget, tables = small_run
    configs = wf.asymptotic_mse(wf.rows_of(tables, "lms"), "lms", budget)
    assert configs.loc[0.1, "diverged_seeds"] == budget.seeds
    summary = wf.method_summary(configs, "lms")
    assert summary["min_diverging_alpha"] <= 0.1
    assert summary["best_alpha"] < summary["min_diverging_alpha"]


@pytest.mark.slow
def test_adam_momentum_hurts_on_flipping_weights(small_run):
    with_momentum, without = best(small_run, "adam"), best(small_run, "adam_no_momentum")
    assert with_momentum["best_mse"] > without["best_mse"] + 0.5


@pytest.mark.slow
def test_exp2_relevant_step_sizes_settle_near_013_and_irrelevant_ones_fall(small_run):
    _, tables = small_run
    exp2 = wf.exp2_summary(tables["exp2-step-sizes"])
    assert exp2["steps"] == 250_000 and exp2["diverged_seeds"] == 0
    assert exp2["relevant_alpha"] == pytest.approx(0.13, abs=0.015)
    assert exp2["relevant_alpha"] > 10 * exp2["irrelevant_alpha_max"]
    assert exp2["irrelevant_alpha_max"] < 0.01
    assert exp2["irrelevant_alpha_last_10pct_ratio"] < 1  # still falling
