"""The switching-2d experiment: its tables (on the shared smoke run), and the talk's claims at a
small budget (slow; tests/test_replications.py checks the optimum fast). test_every_experiment
checks the tables, summary and figures every experiment owes."""

import dataclasses
import json

import jax
import numpy as np
import pytest

import metastep as ms
from metastep.experiments import get, switching_2d

EXPERIMENT = get("switching-2d")


def compute(budget):
    return {shard.name: shard.compute() for shard in EXPERIMENT.shards(budget)}


@pytest.fixture(scope="module")
def smoke_tables(smoke_run):
    return smoke_run.tables(EXPERIMENT.name)


@pytest.fixture(scope="module")
def small_budget_summary():
    """100,000 steps, 2 seeds, a coarse surface (the claims below do not read it)."""
    budget = EXPERIMENT.budget("quick", steps=100_000, seeds=2)
    budget = dataclasses.replace(budget, settings={**budget.settings, "surface_spacing": 0.1})
    return EXPERIMENT.summarize(compute(budget), budget)


def test_smoke_tables_hold_both_variants_and_every_idbd_run(smoke_tables):
    assert set(smoke_tables) == {"lms-surfaces", "trajectories"}
    parts = switching_2d.part_tables(smoke_tables)
    assert set(parts) == {"surface", "near-optimum", "idbd", "rmsprop", "adam"}
    for name, table in parts.items():
        assert {"squared_error", "diverged"} <= set(table.columns), name
        assert not table.drop(columns=["squared_error", "alpha1", "alpha2"],
                              errors="ignore").isna().any().any(), name
    surface = parts["surface"]
    assert set(surface["variant"]) == set(switching_2d.VARIANTS)
    assert surface.groupby("variant").size().nunique() == 1
    smoke = EXPERIMENT.budget("smoke")
    assert len(parts["near-optimum"]) == (
        len(switching_2d.VARIANTS) * len(switching_2d.NEAR_OPTIMUM_ALPHA1)
        * len(switching_2d.NEAR_OPTIMUM_ALPHA2) * smoke.settings["surface_seeds"]
        * switching_2d.SURFACE_RECORDS)
    for method in ("idbd", "rmsprop", "adam"):
        table = parts[method]
        assert {"alpha1", "alpha2"} <= set(table.columns), method
        assert set(table["method"]) == {method}
    idbd = parts["idbd"]
    assert idbd["start"].dtype == np.int64 and "learning_rate" not in idbd.columns
    assert len(idbd.groupby(["meta_step_size", "start"])) == (
        len(switching_2d.IDBD_META_STEP_SIZES) * len(switching_2d.STARTS))


def test_a_run_stored_with_a_shard_per_part_is_read_the_same(smoke_tables):
    # Before the parts shared programs, a run stored one shard per part.
    budget = EXPERIMENT.budget("smoke")
    per_part = switching_2d.part_tables(smoke_tables)
    assert switching_2d.part_tables(per_part) is per_part
    assert (json.dumps(EXPERIMENT.summarize(per_part, budget), sort_keys=True)
            == json.dumps(EXPERIMENT.summarize(smoke_tables, budget), sort_keys=True))


def test_idbd_starts_from_its_per_weight_step_sizes():
    for index, start in enumerate(switching_2d.STARTS):
        learner = switching_2d.idbd_from_start(1e-3, index)
        state = learner.init(jax.random.PRNGKey(0))
        np.testing.assert_allclose(learner.step_sizes(state), start, rtol=1e-6)


def test_idbd_with_zero_meta_step_size_is_lms_at_its_start():
    samples = ms.problems.switching_2d().sample(jax.random.PRNGKey(1), 300)
    start = switching_2d.STARTS[3]
    idbd = ms.run_arrays(switching_2d.idbd_from_start(0.0, 3), samples.x, samples.y)
    lms = ms.run_arrays(switching_2d.lms(*start), samples.x, samples.y)
    np.testing.assert_allclose(idbd.predictions, lms.predictions, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_the_optimum_and_the_cost_of_learning_the_irrelevant_input(small_budget_summary):
    summary = small_budget_summary
    assert summary["optimum"]["alpha1"] == 0.0
    assert summary["optimum"]["alpha2"] == pytest.approx(0.33, abs=0.03)
    assert summary["optimum"]["mse"] == pytest.approx(0.301, abs=0.01)
    assert summary["off_optimum"]["mse"] - summary["optimum"]["mse"] > 0.01
    assert summary["deterministic"]["optimum"]["mse"] == pytest.approx(0.599, abs=0.02)


@pytest.mark.slow
def test_only_idbd_finds_the_optimal_step_sizes(small_budget_summary):
    summary = small_budget_summary
    idbd = summary["idbd"]
    assert idbd["diverged_runs"] == 0
    # From every start: α2 near the optimum, α1 well below where the 0.5-starts began.
    for alpha1, alpha2 in idbd["final_alpha_by_start"]:
        assert alpha2 == pytest.approx(summary["optimum"]["alpha2"], abs=0.05)
        assert alpha1 < 0.15
    assert idbd["final_alpha_ratio"] < 0.3
    # A meta step size ten times larger collapses the step sizes.
    assert summary["idbd"]["theta_1e-02"]["final_alpha2"] < 0.05
    # RMSprop and Adam keep α1 at least as large as α2: nowhere near the α2 axis.
    assert summary["rmsprop"]["min_final_alpha_ratio"] > 0.8
    assert summary["adam"]["min_final_alpha_ratio"] > 0.8
