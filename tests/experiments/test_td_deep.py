"""The td-deep experiment: its methods and budgets, its smoke tables, a lane of the side-by-side
learner against stream TD(λ) run alone on the same stream, and the summary's logic on a small
hand-made table (test_every_experiment checks the tables, summary and figures every experiment
owes). Skipped without gymnasium."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("gymnasium", reason="gymnasium (the `experiments` and `test` extras) is not "
                    "installed: td-deep plays Mountain Car's episodes with it")

import metastep as ms  # noqa: E402
from metastep.experiments import SweptMethod, get, td_deep  # noqa: E402

EXPERIMENT = get("td-deep")
BUDGET = EXPERIMENT.budget("smoke")


@pytest.fixture(scope="module")
def smoke_table(smoke_run):
    return smoke_run.tables(EXPERIMENT.name)["returns"]


def test_the_methods_have_their_defaults_in_the_middle():
    assert EXPERIMENT.unavailable() is None
    methods = td_deep.methods(5)
    assert set(methods) == {"stream-td", "adaptive-obgd", "normalized-idbd", "idbd", "autostep",
                            "adam"}
    for name in ("stream-td", "adaptive-obgd"):  # the authors' α = 1, ±1 decade
        np.testing.assert_allclose(methods[name].grid, np.logspace(-1, 1, 5))
    for name, default in (("normalized-idbd", 0.003), ("idbd", 0.01), ("autostep", 0.01)):
        grid = methods[name].grid
        assert grid[2] == pytest.approx(default) and grid[0] == pytest.approx(default / 100)
    np.testing.assert_allclose(methods["adam"].grid, np.logspace(-4, -1, 5))
    # Quick and full run every method, and three of them also with γ = 1; smoke runs stream
    # TD(λ) and the baseline, with γ = 0.99 only.
    for name in ("quick", "full"):
        budget = EXPERIMENT.budget(name)
        assert set(td_deep.budget_methods(budget)) == set(methods)
        returns, undiscounted = td_deep.shards(budget)
        assert (returns.name, undiscounted.name) == ("returns", "undiscounted")
        assert returns.parameters["problem"]["discount"] == td_deep.DISCOUNT == 0.99
        assert undiscounted.parameters["problem"]["discount"] == 1.0
        assert set(undiscounted.parameters["methods"]) == {"stream-td", "adaptive-obgd", "adam"}
    assert set(td_deep.budget_methods(BUDGET)) == {"stream-td", "adam"}
    assert [shard.name for shard in td_deep.shards(BUDGET)] == ["returns"]


def test_smoke_table_holds_every_method_and_grid_value(smoke_table):
    methods = td_deep.budget_methods(BUDGET)
    assert set(smoke_table["method"]) == set(methods)
    every = td_deep.record_every(BUDGET)
    for name, method in methods.items():
        rows = smoke_table[smoke_table["method"] == name]
        np.testing.assert_allclose(np.sort(rows["value"].unique()), method.grid, rtol=1e-12)
        np.testing.assert_array_equal(np.sort(rows["step"].unique()),
                                      np.arange(every, BUDGET.steps + 1, every))
        healthy = rows[~rows["diverged"]]
        assert len(healthy) and (healthy["return_error"] > 0).all(), name
        low, median, high = (healthy[column] for column in td_deep.QUANTILE_NAMES)
        if name == td_deep.BASELINE:
            assert rows[list(td_deep.QUANTILE_NAMES)].isna().all().all()
        else:
            assert (low > 0).all() and (low <= median).all() and (median <= high).all(), name


def test_a_lane_equals_stream_td_run_alone(smoke_table):
    """The side-by-side learner's error of stream TD(λ) in a lane is the square of the value
    error that ms.run records for it alone (the stream's value is the return)."""
    position, seed = 1, 1  # the authors' α = 1
    alpha = td_deep.budget_methods(BUDGET)["stream-td"].grid[position]
    learner = td_deep.deep_learner(ms.td.obgd(alpha), td_deep.TRACE_DECAY)
    result = ms.run(learner, td_deep.budget_problem(BUDGET), steps=BUDGET.steps, seed=seed,
                    record_every=td_deep.record_every(BUDGET))
    lane = smoke_table[(smoke_table["method"] == "stream-td")
                       & (smoke_table["position"] == position) & (smoke_table["seed"] == seed)]
    lane_error = lane["return_error"].to_numpy()
    alone = np.square(result.records["value_error"])
    # float32: the two programs round differently (another fusion), and a network's 1,000 steps
    # carry it (3.6e-4 at most, measured); a different lane or seed differs by far more.
    np.testing.assert_allclose(lane_error, alone, rtol=1e-3)
    other_seed = smoke_table[(smoke_table["method"] == "stream-td")
                             & (smoke_table["position"] == position) & (smoke_table["seed"] == 0)]
    assert np.max(np.abs(other_seed["return_error"].to_numpy() / alone - 1)) > 0.1


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
    return {"stream-td": SweptMethod("stream-td", "ObGD", "learning_rate", "α",
                                     (0.1, 1.0, 10.0), ms.td.obgd),
            "meta": SweptMethod("meta", "Meta", "meta_step_size", "θ", (0.01, 0.1, 1.0),
                                ms.idbd),
            "adam": SweptMethod("adam", "Adam", "learning_rate", "α", (1e-3, 1e-2), ms.adam)}


def hand_made_table():
    falling = np.linspace(100.0, 10.0, 10)
    # Adam: 1e-2 better while it lasts, but one seed diverges: never the best.
    lanes = [lane_rows("adam", 1e-3, seed, falling) for seed in (0, 1)]
    lanes += [lane_rows("adam", 1e-2, 0, falling - 5), lane_rows("adam", 1e-2, 1, falling - 5, 6)]
    lanes += [lane_rows("stream-td", value, seed, falling + offset)
              for value, offset in ((0.1, 6.0), (1.0, 2.0), (10.0, 8.0)) for seed in (0, 1)]
    lanes += [lane_rows("meta", value, seed, falling + offset)
              for value, offset in ((0.01, 4.0), (0.1, 1.0), (1.0, -3.0)) for seed in (0, 1)]
    return pd.concat(lanes, ignore_index=True)


def test_summary_of_a_hand_made_table():
    summary = td_deep.return_summary(hand_made_table(), hand_made_methods())
    adam = summary["adam"]
    assert adam["best"]["value"] == 1e-3 and adam["diverged_configurations"] == 1
    assert adam["best"]["mean_error"] == pytest.approx(55.0 + 1.0)  # mean of 100 … 10, seeds
    assert adam["best"]["mean_error_se"] == pytest.approx(1.0)  # two seeds 2 apart
    assert adam["best"]["final_error"] == pytest.approx(15.0 + 1.0)  # the records 20 and 10
    assert "default" not in adam and "best_vs_adam_best" not in adam
    stream = summary["stream-td"]
    assert stream["best"]["value"] == 1.0 and stream["default"]["value"] == 1.0
    assert stream["default_vs_adam_best"]["mean"] == pytest.approx(2.0)
    assert "default_vs_stream_td" not in stream
    meta = summary["meta"]
    assert meta["best"]["value"] == 1.0 and meta["default"]["value"] == 0.1
    assert meta["default"]["mean_error"] == pytest.approx(57.0)
    for key, difference in (("default_vs_adam_best", 1.0), ("best_vs_adam_best", -3.0),
                            ("default_vs_stream_td", -1.0), ("best_vs_stream_td", -5.0)):
        assert meta[key]["mean"] == pytest.approx(difference), key
        assert meta[key]["standard_error"] == pytest.approx(0.0, abs=1e-12), key


def test_a_diverged_reference_gives_nan_differences():
    table = hand_made_table()
    table.loc[(table["method"] == "stream-td") & (table["value"] == 1.0)
              & (table["seed"] == 1) & (table["step"] > 50), ["return_error", "diverged"]] = (
        np.nan, True)
    meta = td_deep.return_summary(table, hand_made_methods())["meta"]
    assert np.isnan(meta["default_vs_stream_td"]["mean"])
    assert meta["default_vs_adam_best"]["mean"] == pytest.approx(1.0)
