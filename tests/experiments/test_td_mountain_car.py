"""The td-mountain-car experiment: its smoke tables, a lane of the side-by-side learner against
TD(λ) run alone on the same stream, and the summary's logic on a small hand-made table
(test_every_experiment checks the tables, summary and figures every experiment owes). Skipped
without gymnasium."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("gymnasium", reason="gymnasium (the `experiments` and `test` extras) is not "
                    "installed: td-mountain-car plays its episodes with it")

import metastep as ms  # noqa: E402
from metastep.experiments import SweptMethod, get, td_mountain_car  # noqa: E402

EXPERIMENT = get("td-mountain-car")
BUDGET = EXPERIMENT.budget("smoke")


@pytest.fixture(scope="module")
def smoke_table(smoke_run):
    return smoke_run.tables(EXPERIMENT.name)["returns"]


def test_the_experiment_runs_here_and_its_methods_have_their_defaults_in_the_middle():
    assert EXPERIMENT.unavailable() is None
    methods = td_mountain_car.methods(5)
    assert set(methods) == {"td", "tidbd-semi", "tidbd-full", "autotidbd", "swifttd",
                            "normalized-idbd"}
    np.testing.assert_allclose(methods["td"].grid, np.logspace(-3.0, -0.5, 5))
    for name in ("tidbd-semi", "autotidbd", "swifttd", "normalized-idbd"):
        method = methods[name]
        assert method.grid[2] == pytest.approx(td_mountain_car.default_value(method))
        assert method.grid[0] == pytest.approx(method.grid[2] / 100)


def test_smoke_table_holds_every_method_and_grid_value(smoke_table):
    methods = td_mountain_car.budget_methods(BUDGET)
    assert set(smoke_table["method"]) == set(methods)
    every = td_mountain_car.record_every(BUDGET)
    for name, method in methods.items():
        rows = smoke_table[smoke_table["method"] == name]
        np.testing.assert_allclose(np.sort(rows["value"].unique()), method.grid, rtol=1e-12)
        np.testing.assert_array_equal(np.sort(rows["step"].unique()),
                                      np.arange(every, BUDGET.steps + 1, every))
        healthy = rows[~rows["diverged"]]
        assert len(healthy) and (healthy["return_error"] > 0).all(), name
        low, median, high = (healthy[column] for column in td_mountain_car.QUANTILE_NAMES)
        if name == "td":
            assert rows[list(td_mountain_car.QUANTILE_NAMES)].isna().all().all()
        else:
            assert (low > 0).all() and (low <= median).all() and (median <= high).all(), name


def test_a_lane_equals_td_run_alone(smoke_table):
    """The side-by-side learner's error of TD(λ) in a lane is the square of the value error
    that ms.run records for TD(λ) alone (the stream's value is the return)."""
    position, seed = 1, 1
    step_size = td_mountain_car.budget_methods(BUDGET)["td"].grid[position]
    learner = ms.td.TDLearner(ms.sgd(step_size), td_mountain_car.NUM_FEATURES,
                              td_mountain_car.DISCOUNT, td_mountain_car.TRACE_DECAY)
    result = ms.run(learner, td_mountain_car.budget_problem(BUDGET), steps=BUDGET.steps,
                    seed=seed, record_every=td_mountain_car.record_every(BUDGET))
    lane = smoke_table[(smoke_table["method"] == "td") & (smoke_table["position"] == position)
                       & (smoke_table["seed"] == seed)]
    np.testing.assert_allclose(lane["return_error"].to_numpy(),
                               np.square(result.records["value_error"]), rtol=1e-4)


# A hand-made table: 10 records of 10 steps (the last fifth is the last 2 records), two seeds,
# the second 2 above the first.
STEPS = np.arange(10, 101, 10)


def lane_rows(method, value, seed, errors, diverge_at=None):
    errors = np.asarray(errors, float) + 2.0 * seed
    if diverge_at is not None:
        errors[diverge_at:] = np.nan
    return pd.DataFrame({"method": method, "value": value, "seed": seed, "step": STEPS,
                         "return_error": errors, "diverged": np.isnan(errors)})


def hand_made_methods():
    return {"td": SweptMethod("td", "TD", "step_size", "α", (0.1, 0.2), ms.sgd),
            "meta": SweptMethod("meta", "Meta", "meta_step_size", "θ", (0.01, 0.1, 1.0),
                                ms.sgd)}


def hand_made_table():
    falling = np.linspace(100.0, 10.0, 10)
    lanes = [lane_rows("td", 0.1, seed, falling) for seed in (0, 1)]
    # Better while it lasts, but one seed diverges: never the best.
    lanes += [lane_rows("td", 0.2, 0, falling - 5), lane_rows("td", 0.2, 1, falling - 5, 6)]
    lanes += [lane_rows("meta", value, seed, falling + offset)
              for value, offset in ((0.01, 4.0), (0.1, 1.0), (1.0, -3.0)) for seed in (0, 1)]
    return pd.concat(lanes, ignore_index=True)


def test_summary_of_a_hand_made_table():
    summary = td_mountain_car.return_summary(hand_made_table(), hand_made_methods())
    td = summary["td"]
    assert td["best"]["value"] == 0.1 and td["diverged_configurations"] == 1
    assert td["best"]["mean_error"] == pytest.approx(55.0 + 1.0)  # mean of 100 … 10, seeds
    assert td["best"]["mean_error_se"] == pytest.approx(1.0)  # two seeds 2 apart
    assert td["best"]["final_error"] == pytest.approx(15.0 + 1.0)  # the records 20 and 10
    meta = summary["meta"]
    assert meta["best"]["value"] == 1.0 and meta["default"]["value"] == 0.1
    assert meta["default"]["mean_error"] == pytest.approx(57.0)
    for which, difference in (("default", 1.0), ("best", -3.0)):
        paired = meta[f"{which}_vs_td_best"]
        assert paired["mean"] == pytest.approx(difference)
        assert paired["standard_error"] == pytest.approx(0.0, abs=1e-12)
    assert "default_vs_td_best" not in td
