"""The td-random-walk experiment: its tables, Sutton & Barto's claims about TD(λ) on the 19-state
random walk at the smoke budget (where they already hold), a lane of the side-by-side learner
against the method run alone, and a stored shard recomputed (test_every_experiment checks the
tables, summary and figures every experiment owes)."""

import numpy as np
import pandas as pd
import pytest

import metastep as ms
from metastep.experiments import get, td_random_walk

EXPERIMENT = get("td-random-walk")
BUDGET = EXPERIMENT.budget("smoke")
SHARD = "first-10-episodes"


@pytest.fixture(scope="module")
def smoke_tables(smoke_run):
    return smoke_run.tables(EXPERIMENT.name)


@pytest.fixture(scope="module")
def smoke_summary(smoke_tables):
    return EXPERIMENT.summarize(smoke_tables, BUDGET)


def test_smoke_tables_hold_every_method_lambda_and_grid_value(smoke_tables):
    methods = td_random_walk.budget_methods(BUDGET)
    assert set(smoke_tables) == {SHARD}  # the long run only where steps exceed 10 episodes
    table = smoke_tables[SHARD]
    assert set(table["method"]) == set(methods)
    for name, method in methods.items():
        rows = table[table["method"] == name]
        assert set(rows["trace_decay"]) == set(td_random_walk.TRACE_DECAYS), name
        np.testing.assert_allclose(np.sort(rows["value"].unique()), method.grid, rtol=1e-12)
        assert rows["step"].max() == td_random_walk.EARLY_STEPS, name
        # Learned step sizes in the last record's rows, of the meta methods only.
        last = rows[rows["step"] == rows["step"].max()]
        alphas = last[list(td_random_walk.STEP_SIZE_COLUMNS)].to_numpy()
        healthy = ~last["diverged"].to_numpy()
        if name == "td":
            assert np.isnan(alphas).all()
        else:  # a large θ can drive a step size to 0 (underflow); the default keeps them > 0
            assert healthy.any() and (alphas[healthy] >= 0).all(), name
            at_default = (last["position"] == td_random_walk.default_position(method)).to_numpy()
            assert (alphas[at_default] > 0).all(), name
        assert rows[rows["step"] < rows["step"].max()][
            list(td_random_walk.STEP_SIZE_COLUMNS)].isna().all().all(), name


def test_td_lambda_error_is_u_shaped_in_the_step_size(smoke_tables):
    """Too small an α barely learns, too large a one is noisy or unstable: for intermediate λ
    the least error lies inside the grid (a diverged configuration counts as infinite)."""
    curves = td_random_walk.error_curves(smoke_tables[SHARD])["rms_error"].loc["td"]
    for trace_decay in (0.4, 0.8, 0.95):
        curve = curves.loc[trace_decay].fillna(np.inf).to_numpy()
        best = int(np.argmin(curve))
        assert 0 < best, trace_decay
        if trace_decay >= 0.8:
            assert best < len(curve) - 1, trace_decay
        assert np.all(np.diff(curve[:best + 1]) < 0), trace_decay  # falls down to the best
    # Smallest α: the values barely move from 0, the error is near that of not learning.
    smallest = curves.xs(td_random_walk.methods(5)["td"].grid[0], level="value")
    np.testing.assert_array_less(smallest, td_random_walk.NO_LEARNING_ERROR)
    np.testing.assert_array_less(td_random_walk.NO_LEARNING_ERROR - 0.05, smallest)


def test_intermediate_lambda_does_best_and_the_best_alpha_falls_with_lambda(smoke_summary):
    td = smoke_summary["first_10_episodes"]["td"]
    assert 0.0 < td["best_lambda"] < 1.0
    assert td["best_rms_error"] < 0.7 * td_random_walk.NO_LEARNING_ERROR
    best_alphas = [td[td_random_walk.lambda_key(trace_decay)]["best_alpha"]
                   for trace_decay in td_random_walk.TRACE_DECAYS]
    assert best_alphas[0] > best_alphas[-1]
    assert td["best_alpha_lambda_rank_correlation"] <= -0.8
    assert td[td_random_walk.lambda_key(1.0)]["out_of_range_fraction_at_largest_alpha"] == 1.0
    assert td[td_random_walk.lambda_key(0.0)]["out_of_range_fraction_at_largest_alpha"] == 0.0


def test_meta_methods_report_their_defaults_at_every_lambda(smoke_summary):
    section = smoke_summary["first_10_episodes"]
    for name, method in td_random_walk.budget_methods(BUDGET).items():
        if name == "td":
            continue
        entry = section[name]
        assert entry["default_theta"] == pytest.approx(method.grid[len(method.grid) // 2])
        for trace_decay in td_random_walk.TRACE_DECAYS:
            at_lambda = entry[td_random_walk.lambda_key(trace_decay)]
            assert at_lambda["best_rms_error"] <= at_lambda["default_rms_error"], name
            assert np.isfinite(at_lambda["default_rms_error"]), name


def test_true_values_solve_the_bellman_equations():
    """v(s) = ½ v(s − 1) + ½ v(s + 1), with −1 and +1 for stepping off the ends."""
    padded = np.concatenate([[-1.0], td_random_walk.TRUE_VALUES, [1.0]])
    np.testing.assert_allclose(padded[1:-1], 0.5 * (padded[:-2] + padded[2:]), atol=1e-12)
    assert td_random_walk.NO_LEARNING_ERROR == pytest.approx(np.sqrt(0.3))  # mean of v² = 0.3


def test_a_lane_equals_the_method_run_alone(smoke_tables):
    """The side-by-side learner runs TD(λ) in a lane exactly as ms.run runs it alone: the RMS
    error over the states, from the recorded weights, matches to float32 rounding."""
    trace_decay, position, seed = 0.8, 3, 1
    step_size = td_random_walk.methods(5)["td"].grid[position]
    learner = ms.td.TDLearner(ms.sgd(step_size), td_random_walk.NUM_STATES, 1.0, trace_decay)
    result = ms.run(learner, ms.problems.random_walk(td_random_walk.NUM_STATES),
                    steps=td_random_walk.EARLY_STEPS, seed=seed, record_every=50)
    alone = np.sqrt(np.mean(
        (result.records["weights"] - td_random_walk.TRUE_VALUES) ** 2, axis=-1))
    table = smoke_tables[SHARD]
    lane = table[(table["method"] == "td") & (table["trace_decay"] == trace_decay)
                 & (table["position"] == position) & (table["seed"] == seed)]
    np.testing.assert_allclose(lane["rms_error"].to_numpy(), alone, rtol=1e-5, atol=1e-6)


def test_a_stored_shard_reproduces(smoke_tables):
    (shard,) = EXPERIMENT.shards(BUDGET)
    pd.testing.assert_frame_equal(
        shard.compute().reset_index(drop=True),
        smoke_tables[SHARD].drop(columns="experiment", errors="ignore").reset_index(drop=True),
        check_dtype=False)
