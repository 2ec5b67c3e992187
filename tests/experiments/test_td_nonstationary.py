"""The td-nonstationary experiment: its smoke tables, a lane of the side-by-side learner against
the method run alone on the switching walk, and the summary's logic on a small hand-made table
(test_every_experiment checks the tables, summary and figures every experiment owes)."""

import numpy as np
import pandas as pd
import pytest

import metastep as ms
from metastep.experiments import SweptMethod, get, td_nonstationary

EXPERIMENT = get("td-nonstationary")
BUDGET = EXPERIMENT.budget("smoke")
SWITCH_EVERY = BUDGET.settings["switch_every"]


@pytest.fixture(scope="module")
def smoke_table(smoke_run):
    return smoke_run.tables(EXPERIMENT.name)["tracking"]


def test_smoke_table_holds_every_method_and_grid_value(smoke_table):
    methods = td_nonstationary.budget_methods(BUDGET)
    assert set(smoke_table["method"]) == set(methods)
    every = td_nonstationary.record_every(BUDGET)
    for name, method in methods.items():
        rows = smoke_table[smoke_table["method"] == name]
        np.testing.assert_allclose(np.sort(rows["value"].unique()), method.grid, rtol=1e-12)
        np.testing.assert_array_equal(np.sort(rows["step"].unique()),
                                      np.arange(every, BUDGET.steps + 1, every))
        healthy = rows[~rows["diverged"]]
        assert (healthy["value_error"] > 0).all(), name
        if name == "td":
            assert rows["step_size"].isna().all()
        else:
            assert (healthy["step_size"] > 0).all(), name


def test_a_lane_equals_the_method_run_alone(smoke_table):
    """The side-by-side learner's value error of TD(λ) in a lane is the one ms.run records for
    TD(λ) alone on the switching walk (the stream's true values change sign with the
    rewards)."""
    position, seed = 1, 1
    step_size = td_nonstationary.budget_methods(BUDGET)["td"].grid[position]
    learner = ms.td.TDLearner(ms.sgd(step_size), 19, 1.0, td_nonstationary.TRACE_DECAY)
    problem = ms.problems.random_walk(19, switch_every=SWITCH_EVERY)
    result = ms.run(learner, problem, steps=BUDGET.steps, seed=seed,
                    record_every=td_nonstationary.record_every(BUDGET))
    lane = smoke_table[(smoke_table["method"] == "td") & (smoke_table["position"] == position)
                       & (smoke_table["seed"] == seed)]
    np.testing.assert_allclose(lane["value_error"].to_numpy(), result.records["value_error"],
                               rtol=1e-5, atol=1e-6)


# A hand-made table: segments of 100 steps, a record every 10 steps, 3 complete segments and a
# partial fourth; two seeds, the second 0.02 above the first.
STEPS, EVERY, SWITCH = 350, 10, 100
AFTER_SWITCH = np.array([1.0, 0.8, 0.5, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2])


def lane_rows(method, value, seed, profile, diverge_at=None):
    """One lane: 0.5 in segment 0, ``profile`` in the two complete segments after a switch,
    0.1 in the partial one (which must count in the mean error only: it would lower the
    windows and the profile), NaN from record ``diverge_at`` on."""
    errors = np.concatenate([np.full(10, 0.5), profile, profile, np.full(5, 0.1)])
    errors = errors + 0.02 * seed
    if diverge_at is not None:
        errors[diverge_at:] = np.nan
    return pd.DataFrame({"method": method, "value": value, "seed": seed,
                         "step": np.arange(EVERY, STEPS + 1, EVERY), "value_error": errors,
                         "diverged": np.isnan(errors)})


def hand_made_methods():
    return {"td": SweptMethod("td", "TD", "step_size", "α", (0.1, 0.2), ms.sgd),
            "meta": SweptMethod("meta", "Meta", "meta_step_size", "θ", (0.01, 0.1, 1.0),
                                ms.sgd)}


def hand_made_table():
    slow = np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.3, 0.3])
    lanes = [lane_rows("td", 0.1, seed, AFTER_SWITCH) for seed in (0, 1)]
    # Better while it lasts, but one seed diverges: never the best.
    lanes += [lane_rows("td", 0.2, 0, AFTER_SWITCH - 0.1),
              lane_rows("td", 0.2, 1, AFTER_SWITCH - 0.1, diverge_at=15)]
    lanes += [lane_rows("meta", value, seed, slow + offset)
              for value, offset in ((0.01, 0.1), (0.1, 0.0), (1.0, -0.05)) for seed in (0, 1)]
    return pd.concat(lanes, ignore_index=True)


def test_summary_of_a_hand_made_table():
    summary = td_nonstationary.tracking_summary(hand_made_table(), hand_made_methods(), SWITCH)
    td = summary["td"]["best"]
    assert td["value"] == 0.1  # the better α = 0.2 had a diverged seed
    # The mean of seed 0's 35 records, +0.01 for the mean over both seeds.
    expected_mean = (10 * 0.5 + 2 * AFTER_SWITCH.sum() + 5 * 0.1) / 35 + 0.01
    assert td["mean_value_error"] == pytest.approx(expected_mean)
    assert td["mean_value_error_se"] == pytest.approx(0.01)  # two seeds 0.02 apart
    window = td_nonstationary.window_steps(SWITCH)
    assert window == 20  # the first and the last two records of a segment
    assert td["after_switch_error"] == pytest.approx(0.9 + 0.01)
    assert td["segment_end_error"] == pytest.approx(0.2 + 0.01)
    # 90% of the way from 1.01 down to 0.21 is 0.29: first reached at the 5th record, 50 steps.
    assert td["recovery_steps"] == 50.0
    meta = summary["meta"]
    assert meta["best"]["value"] == 1.0 and meta["default"]["value"] == 0.1
    # The slow profile: 90% of the way from 1.0 to 0.3 is 0.37, first reached at 80 steps.
    assert meta["default"]["recovery_steps"] == 80.0
    # The default's lanes minus TD's best, seed by seed: the same difference for both seeds.
    difference = meta["default"]["mean_value_error"] - td["mean_value_error"]
    assert meta["default_vs_td_best"]["mean"] == pytest.approx(difference)
    assert meta["default_vs_td_best"]["standard_error"] == pytest.approx(0.0, abs=1e-12)
    assert summary["slowest_default_recovery_steps"] == 80.0
    assert summary["td_best_recovery_steps"] == 50.0


def test_recovery_is_nan_without_a_jump_or_a_return():
    rising = pd.Series([0.5, 0.6, 0.7], index=[10, 20, 30])
    assert np.isnan(td_nonstationary.recovery_steps(rising, settled=0.6))  # no jump
    assert np.isnan(td_nonstationary.recovery_steps(rising, settled=0.4))  # never back
    falling = pd.Series([0.9, 0.6, 0.35], index=[10, 20, 30])
    assert td_nonstationary.recovery_steps(falling, settled=0.3) == 30.0  # 0.36 at 90%
