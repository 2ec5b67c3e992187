"""one-default: the verdicts on hand-made tables (better passes, worse fails, diverged fails; the
error rows read alike at every scale), and the smoke run's rows and methods. (test_every_experiment
checks its tables, summary and figures with the others'.)"""

import inspect
import math

import numpy as np
import pandas as pd
import pytest

import metastep as ms
from metastep.experiments import one_default
from metastep.experiments.one_default import CANDIDATE, METHODS, REFERENCE, TUNED
from metastep.report.build import answer_text

SEEDS = (0, 1, 2)
SMOKE = one_default.EXPERIMENT.budget("smoke")
STREAMS = {stream.name: stream for stream in one_default.streams(SMOKE)}
# Every stream, as the quick budget declares them (the hand-made tables need no computation).
DECLARED = {stream.name: stream
            for stream in one_default.streams(one_default.EXPERIMENT.budget("quick"))}
ADAM_STEP_SIZES = (1e-3, 1e-2)


def hand_made_table(stream, runs, scale=1.0, steps=(10, 20, 30)):
    """A table as ``group_sweep`` writes it: ``runs`` maps method -> one number per seed (NaN:
    diverged), the metric constant over the records; Adam's at each of ADAM_STEP_SIZES (its
    second: the first worse by 1 in the metric's own direction). Error metrics × scale²."""
    records = []
    sign = 1 if stream.metric == "accuracy" else -1
    for method, per_seed in runs.items():
        values = ADAM_STEP_SIZES if method == TUNED else (0.5,)
        for value in values:
            worse = method == TUNED and value == ADAM_STEP_SIZES[0]
            for seed, number in zip(SEEDS, per_seed):
                number = number - sign * 1.0 if worse else number
                if stream.metric == "squared_error":
                    number = number * scale**2
                for step in steps:
                    records.append({"row": stream.row(scale), "scale": scale, "method": method,
                                    "value": value, "seed": seed, "step": step,
                                    stream.metric: number, "optimal_mse": 2.0})
    return pd.DataFrame(records)


def summary_of(stream, runs, scale=1.0, **table_options):
    table = hand_made_table(stream, runs, scale, **table_options)
    values = one_default.run_values(table, stream)
    return one_default.row_summary(values.loc[stream.row(scale)], stream, scale)


# A deep error row: the candidate beats both references, IDBD beats Adam only, Autostep
# diverged in one seed, MetaOptimize is worse than both, the plain form ties Mechanic.
PLAIN = "normalized-idbd-plain"
ERROR_RUNS = {CANDIDATE: [1.0, 1.1, 0.9], PLAIN: [1.5, 1.6, 1.7], "idbd": [1.9, 2.0, 2.1],
              "autostep": [1.0, np.nan, 1.0], "metaoptimize": [3.0, 3.1, 3.2],
              TUNED: [2.0, 2.2, 2.4], REFERENCE: [1.5, 1.6, 1.7]}


def test_deep_verdicts_pass_only_a_method_that_beats_both_references():
    row = summary_of(DECLARED["slowly-changing-regression-redraw"], ERROR_RUNS)
    methods = row["methods"]
    assert {name: methods[name]["verdict"] for name in METHODS} == {
        CANDIDATE: "pass", PLAIN: "fail", "idbd": "fail", "autostep": "fail",
        "metaoptimize": "fail", TUNED: "reference", REFERENCE: "reference"}
    assert row["tuned_adam_step_size"] == ADAM_STEP_SIZES[1]  # the lower error of its grid
    candidate = methods[CANDIDATE]
    # Paired over seeds, positive = better (lower error): Adam − candidate = 1.0, 1.1, 1.5.
    assert candidate["vs_tuned_adam"]["difference"] == pytest.approx(1.2)
    assert candidate["vs_tuned_adam"]["se"] == pytest.approx(np.std([1.0, 1.1, 1.5], ddof=1)
                                                             / math.sqrt(3))
    assert candidate["vs_tuned_adam"]["beyond_2se"]
    assert candidate["margin_over_tuned_adam"] == pytest.approx((2.2 - 1.0) / 2.2)
    assert methods["idbd"]["vs_mechanic"]["difference"] < 0 < methods["idbd"]["vs_tuned_adam"][
        "difference"]
    autostep = methods["autostep"]
    assert autostep["diverged_seeds"] == 1 and math.isnan(autostep["value"])
    assert math.isnan(autostep["vs_tuned_adam"]["difference"])


def test_accuracy_rows_count_higher_as_better():
    runs = {name: [0.5 + 0.01 * seed for seed in SEEDS] for name in METHODS}
    runs[CANDIDATE] = [0.7, 0.72, 0.69]
    runs["idbd"] = [0.4, 0.41, 0.42]
    row = summary_of(DECLARED["permuted-digits"], runs)
    assert row["methods"][CANDIDATE]["verdict"] == "pass"
    assert row["methods"]["idbd"]["verdict"] == "fail"
    assert row["tuned_adam_step_size"] == ADAM_STEP_SIZES[1]  # the higher accuracy
    assert row["methods"][CANDIDATE]["margin_over_tuned_adam"] == pytest.approx(
        np.mean(runs[CANDIDATE]) - 0.51)


@pytest.mark.parametrize("scale", [0.1, 10.0])
def test_error_rows_read_alike_at_every_scale(scale):
    stream = DECLARED["slowly-changing-regression-flip-one"]
    reference = summary_of(stream, ERROR_RUNS)
    scaled = summary_of(stream, ERROR_RUNS, scale)
    for name in METHODS:
        for key in ("value", "margin_over_tuned_adam", "verdict"):
            expected, measured = reference["methods"][name][key], scaled["methods"][name][key]
            if isinstance(expected, str):
                assert measured == expected, (name, key)
            else:
                np.testing.assert_allclose(measured, expected, rtol=1e-12, err_msg=name)
    assert scaled["scale"] == scale


def test_linear_bars():
    # Weight flipping: the MSE over the last third only (the first record is left out).
    runs = {name: [1.6, 1.6, 1.6] for name in METHODS}
    runs[CANDIDATE] = [1.4, 1.44, 1.45]
    runs["idbd"] = [1.4, 1.5, 1.5]
    runs["autostep"] = [1.0, np.nan, 1.0]
    row = summary_of(DECLARED["weight-flipping"], runs, 10.0)
    verdicts = {name: row["methods"][name]["verdict"] for name in METHODS}
    assert verdicts == {CANDIDATE: "pass", PLAIN: "fail", "idbd": "fail", "autostep": "fail",
                        "metaoptimize": "fail", TUNED: "fail", REFERENCE: "fail"}
    table = hand_made_table(DECLARED["weight-flipping"], runs)
    table.loc[table["step"] == 10, "squared_error"] = 100.0  # burn-in: not measured
    values = one_default.run_values(table, DECLARED["weight-flipping"])
    assert values.loc[("weight-flipping", CANDIDATE, 0.5, 0)] == pytest.approx(1.4)
    # Noisy tracking: MSE / s² / the optimum's (2.0 in the hand-made table).
    runs = {name: [2.1, 2.1, 2.1] for name in METHODS}
    runs[CANDIDATE] = [2.0, 2.02, 2.04]
    row = summary_of(DECLARED["noisy-tracking-paper"], runs, 0.1)
    assert row["methods"][CANDIDATE]["value"] == pytest.approx(1.01)
    assert row["methods"][CANDIDATE]["verdict"] == "pass"
    assert row["methods"]["idbd"]["verdict"] == "fail"  # 1.05


@pytest.mark.parametrize("budget", ["quick", "full"])
def test_quick_and_full_budgets_have_the_issues_18_rows(budget, monkeypatch):
    monkeypatch.setattr(one_default.permuted_fashion, "missing_data", lambda: None)
    streams = one_default.streams(one_default.EXPERIMENT.budget(budget))
    rows = [stream.row(scale) for stream in streams for scale in stream.scales]
    assert len(rows) == len(set(rows)) == 18
    assert one_default.columns(one_default.EXPERIMENT.budget(budget)) == METHODS


def test_smoke_run_has_every_row_and_method_of_its_streams(smoke_run):
    tables = smoke_run.tables("one-default")
    summary = one_default.summarize(tables, SMOKE)
    expected_rows = [stream.row(scale) for stream in STREAMS.values() for scale in stream.scales]
    # One stream of each kind: a linear one (errors) and a deep one (accuracy).
    assert {stream.linear for stream in STREAMS.values()} == {True, False}
    assert {stream.metric for stream in STREAMS.values()} == {"squared_error", "accuracy"}
    assert list(summary["rows"]) == expected_rows
    for row in summary["rows"].values():
        assert list(row["methods"]) == list(one_default.columns(SMOKE))
        assert all(entry["seeds"] >= 1 for entry in row["methods"].values())
    answer = summary["answer"]
    failed = [name for name in answer["failed_rows"].split(", ") if name]
    assert answer["passed"] + len(failed) == answer["rows"] == len(expected_rows)
    assert answer_text("", answer) == answer["text"]
    # The candidate's settings as its signature gives them now (they may change).
    settings = inspect.signature(ms.normalized_idbd).parameters
    assert summary["candidate_settings"] == {name: parameter.default
                                             for name, parameter in settings.items()}
    # Adam's grid moves with the targets' scale; the other methods' settings do not.
    table = pd.concat([tables[name] for name in tables
                       if name.startswith("noisy-tracking-paper-")])
    values = table.groupby(["method", "scale"])["value"].unique()
    np.testing.assert_allclose(values[(TUNED, 10.0)], 100 * values[(TUNED, 0.1)])
    np.testing.assert_array_equal(values[(CANDIDATE, 10.0)], values[(CANDIDATE, 0.1)])


def test_accuracy_per_task_averages_each_task_of_the_defaults_and_tuned_adam(smoke_run):
    tables = smoke_run.tables("one-default")
    summary = one_default.summarize(tables, SMOKE)
    per_task = one_default.accuracy_per_task(tables, SMOKE, summary)
    stream = STREAMS["label-permuted-digits"]
    assert list(per_task) == [stream.title]  # the deep streams only
    curves = per_task[stream.title]
    table = one_default.stream_table(tables, stream)
    assert list(curves.index) == sorted(table["task"].unique())
    assert set(curves.columns) == set(one_default.columns(SMOKE))
    tuned = summary["rows"][stream.row(1.0)]["tuned_adam_step_size"]
    for method in curves.columns:
        runs = table[(table["method"] == method) & (
            np.isclose(table["value"], tuned) if method == TUNED else table["default"])]
        np.testing.assert_allclose(curves[method], runs.groupby("task")["accuracy"].mean())
