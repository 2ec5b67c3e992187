"""Running into a run directory: resumable, shard by shard, and refusing mixed parameters."""

import collections
import dataclasses

import pandas as pd
import pytest

from metastep.experiments import Shard
from metastep.report import RunDirectory, RunDirectoryError, build_report, run_experiment
from metastep.report.storage import read_json

from .toy import SHARD_NAMES, make_toy_experiment


def test_run_stores_every_shard_as_a_tidy_table(tmp_path, toy):
    experiment, counter = toy
    run = run_experiment(RunDirectory(tmp_path), experiment, experiment.budget("smoke"),
                         progress=False)
    assert (run.computed, run.reused) == (3, 0)
    table = RunDirectory(tmp_path).read_shard("toy", "part-0")
    assert list(table.columns[:4]) == ["experiment", "method", "step_size", "seed"]
    assert set(table["experiment"]) == {"toy"}
    config = read_json(tmp_path / "config.json")
    entry = config["experiments"]["toy"]
    assert entry["budget"] == {"name": "smoke", "steps": 5, "seeds": 2, "settings": {}}
    assert entry["seeds"] == [0, 1]
    assert list(entry["shards"]) == list(SHARD_NAMES)
    assert config["environment"]["packages"]["jax"]
    assert config["environment"]["device"]["platform"]


def test_resumed_run_recomputes_nothing_finished(tmp_path, toy):
    experiment, counter = toy
    budget = experiment.budget("smoke")
    run_dir = RunDirectory(tmp_path)
    run_experiment(run_dir, experiment, budget, progress=False)
    mtimes = {name: run_dir.shard_path("toy", name).stat().st_mtime_ns for name in SHARD_NAMES}

    again = run_experiment(run_dir, experiment, budget, progress=False)
    assert (again.computed, again.reused) == (0, 3)
    assert counter == {name: 1 for name in SHARD_NAMES}
    assert mtimes == {name: run_dir.shard_path("toy", name).stat().st_mtime_ns
                      for name in SHARD_NAMES}

    run_dir.shard_path("toy", "part-1").unlink()
    third = run_experiment(run_dir, experiment, budget, progress=False)
    assert (third.computed, third.reused) == (1, 2)
    assert counter == {"part-0": 1, "part-1": 2, "part-2": 1}


def test_interrupted_run_keeps_the_finished_shards(tmp_path, register):
    counter = collections.Counter()
    failing = register(make_toy_experiment(counter, fail_on="part-1"))
    run_dir = RunDirectory(tmp_path)
    with pytest.raises(RuntimeError, match="part-1 failed"):
        run_experiment(run_dir, failing, failing.budget("smoke"), progress=False)
    assert [run_dir.has_shard("toy", name) for name in SHARD_NAMES] == [True, False, False]
    assert not list(tmp_path.rglob(".*"))

    fixed = register(make_toy_experiment(counter))
    run = run_experiment(run_dir, fixed, fixed.budget("smoke"), progress=False)
    assert (run.computed, run.reused) == (2, 1)
    assert counter == {"part-0": 1, "part-1": 2, "part-2": 1}


def test_other_parameters_are_refused(tmp_path, toy):
    experiment, counter = toy
    run_dir = RunDirectory(tmp_path)
    run_experiment(run_dir, experiment, experiment.budget("smoke"), progress=False)
    with pytest.raises(RunDirectoryError, match="other parameters"):
        run_experiment(run_dir, experiment, experiment.budget("smoke", seeds=3), progress=False)
    assert sum(counter.values()) == 3


def test_a_table_without_the_tidy_columns_is_refused(tmp_path, toy):
    experiment, _ = toy

    def untidy(budget):
        return [Shard("bad", lambda: pd.DataFrame({"value": [1.0]}), {}, work=1)]

    experiment = type(experiment)(**{**experiment.__dict__, "shards": untidy})
    with pytest.raises(ValueError, match=r"lacks the columns \['method', 'seed', 'step'\]"):
        run_experiment(RunDirectory(tmp_path), experiment, experiment.budget("smoke"),
                       progress=False)
    assert not RunDirectory(tmp_path).has_shard("toy", "bad")


def test_an_experiment_that_cannot_run_is_skipped_until_it_can(tmp_path, register):
    counter = collections.Counter()
    missing = {"reason": "its data are missing: install them with `get-data`"}
    experiment = register(dataclasses.replace(make_toy_experiment(counter),
                                              availability=lambda: missing["reason"]))
    run_dir = RunDirectory(tmp_path)
    run = run_experiment(run_dir, experiment, experiment.budget("smoke"), progress=False)
    assert (run.computed, run.reused, run.skipped) == (0, 0, missing["reason"])
    assert not counter
    assert read_json(tmp_path / "config.json")["experiments"]["toy"]["skipped"] == run.skipped
    (report,) = build_report(run_dir)
    assert report.skipped == run.skipped and not report.complete
    assert read_json(tmp_path / "summary.json") == {"toy": {"skipped": run.skipped}}
    page = (tmp_path / "report.md").read_text()
    assert f"**Skipped**: {run.skipped}" in page and "| skipped |" in page

    missing["reason"] = None  # the data arrive: the same directory takes the run
    run = run_experiment(run_dir, experiment, experiment.budget("smoke"), progress=False)
    assert (run.computed, run.skipped) == (3, None)
    build_report(run_dir)
    assert "lms" in read_json(tmp_path / "summary.json")["toy"]
