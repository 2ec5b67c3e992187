"""Running into a run directory: resumable, shard by shard, refusing mixed parameters, safe
with other processes running into the same directory, never reusing a shard that does not
verify."""

import collections
import dataclasses
import subprocess
import sys
import multiprocessing
import textwrap
import time
import types

import pandas as pd
import pytest

from metastep.experiments import Budget, Shard
from metastep.report import RunDirectory, RunDirectoryError, build_report, run_experiment
from metastep.report.runner import record_experiment
from metastep.report.storage import TEMPORARY_SUFFIX, read_json

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
    assert not list(tmp_path.rglob(f"*{TEMPORARY_SUFFIX}"))

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


# Records, in config.json, experiments named <tag>-<index> once the file ``go`` exists.
RECORDING_PROCESS = textwrap.dedent("""
    import sys, time, types
    from pathlib import Path
    from metastep.experiments import Budget
    from metastep.report.runner import record_experiment
    from metastep.report.storage import RunDirectory

    directory, tag, go, count = sys.argv[1:]
    run_dir = RunDirectory(directory).open()
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.005)
    for index in range(int(count)):
        experiment = types.SimpleNamespace(name=f"{tag}-{index}", description="concurrent")
        record_experiment(run_dir, experiment, Budget(steps=1, seeds=1), [])
""")


def record_many(directory, tag, count, start):
    start.wait()
    for index in range(count):
        experiment = types.SimpleNamespace(name=f"{tag}-{index}", description="concurrent")
        record_experiment(RunDirectory(directory), experiment, Budget(steps=1, seeds=1), [])


@pytest.mark.filterwarnings("ignore:os.fork")  # the children do not use JAX
def test_concurrent_records_into_one_config_all_land(tmp_path, monkeypatch):
    """Two forked processes record experiments into one config.json at the same moment, each
    probing the environment (made slow here, as when it starts JAX): every record lands (a
    read-modify-write without a lock loses some of the other process's)."""
    from metastep.report import runner

    monkeypatch.setattr(runner, "environment", lambda: time.sleep(0.005) or {"probed": True})
    context = multiprocessing.get_context("fork")
    start, count = context.Event(), 20
    processes = [context.Process(target=record_many, args=(tmp_path, tag, count, start))
                 for tag in ("first", "second")]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    config = read_json(tmp_path / "config.json")
    assert config["environment"] == {"probed": True}
    assert sorted(config["experiments"]) == sorted(
        f"{tag}-{index}" for tag in ("first", "second") for index in range(count))


@pytest.mark.slow
def test_concurrent_runs_into_one_directory_all_land(tmp_path):
    """As above, with two fresh Python processes (JAX and all) and the real environment probe."""
    go, count = tmp_path / "go", 25
    processes = [subprocess.Popen([sys.executable, "-c", RECORDING_PROCESS, str(tmp_path / "run"),
                                   tag, str(go), str(count)], stdout=subprocess.PIPE, text=True)
                 for tag in ("first", "second")]
    for process in processes:
        assert process.stdout.readline() == "ready\n"
    go.touch()
    for process in processes:
        assert process.wait(timeout=120) == 0
        process.stdout.close()
    recorded = read_json(tmp_path / "run" / "config.json")["experiments"]
    assert sorted(recorded) == sorted(f"{tag}-{index}" for tag in ("first", "second")
                                      for index in range(count))


def test_stale_shards_of_other_parameters_are_computed_again(tmp_path, toy, capsys):
    """config.json deleted, the run repeated with other steps: no shard of the old parameters
    is reused (the new config.json would claim parameters they were not computed with)."""
    experiment, counter = toy
    run_dir = RunDirectory(tmp_path)
    run_experiment(run_dir, experiment, experiment.budget("smoke"), progress=False)
    (tmp_path / "config.json").unlink()
    capsys.readouterr()
    run = run_experiment(run_dir, experiment, experiment.budget("smoke", steps=7), progress=False)
    assert (run.computed, run.reused, run.replaced) == (3, 0, SHARD_NAMES)
    assert counter == {name: 2 for name in SHARD_NAMES}
    errors = capsys.readouterr().err
    for name in SHARD_NAMES:
        assert f"{run_dir.shard_path('toy', name)} was computed with other parameters" in errors
        assert run_dir.read_shard("toy", name)["step"].max() == 7
    build_report(run_dir)
    assert read_json(tmp_path / "summary.json")["toy"]["lms"]["best_mse"] == pytest.approx(
        pd.concat(run_dir.read_shard("toy", name) for name in SHARD_NAMES)["squared_error"].mean())


def test_shards_of_another_metastep_version_are_computed_again(tmp_path, toy, monkeypatch):
    import metastep

    experiment, counter = toy
    run_dir = RunDirectory(tmp_path)
    run_experiment(run_dir, experiment, experiment.budget("smoke"), progress=False)
    monkeypatch.setattr(metastep, "__version__", metastep.__version__ + ".post1")
    run = run_experiment(run_dir, experiment, experiment.budget("smoke"), progress=False)
    assert (run.computed, run.replaced) == (3, SHARD_NAMES)


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_corrupt_shard_is_named_by_the_report_and_computed_again(tmp_path, toy, capsys):
    experiment, counter = toy
    run_dir = RunDirectory(tmp_path)
    budget = experiment.budget("smoke")
    run_experiment(run_dir, experiment, budget, progress=False)
    build_report(run_dir)
    complete_summary = read_json(tmp_path / "summary.json")
    truncate(run_dir.shard_path("toy", "part-1"))

    (report,) = build_report(run_dir)  # no ArrowInvalid: the shard is named, with why
    assert not report.complete and list(report.invalid) == ["part-1"]
    assert f"{run_dir.shard_path('toy', 'part-1')} does not match its checksum" in (
        report.missing_text())
    assert "does not match its checksum" in (tmp_path / "report.md").read_text()
    assert read_json(tmp_path / "summary.json") == complete_summary

    capsys.readouterr()
    run = run_experiment(run_dir, experiment, budget, progress=False)
    assert (run.computed, run.reused, run.replaced) == (1, 2, ("part-1",))
    assert "part-1.parquet does not match its checksum" in capsys.readouterr().err
    assert counter == {"part-0": 1, "part-1": 2, "part-2": 1}
    assert build_report(run_dir)[0].complete


def test_the_summary_keeps_an_experiment_that_became_incomplete(tmp_path, toy):
    """A shard removed after a complete report: the numbers stay, and what is missing is said."""
    experiment, _ = toy
    run_dir = RunDirectory(tmp_path)
    run_experiment(run_dir, experiment, experiment.budget("smoke"), progress=False)
    build_report(run_dir)
    complete_summary = read_json(tmp_path / "summary.json")
    assert "lms" in complete_summary["toy"]
    run_dir.shard_path("toy", "part-2").unlink()
    (report,) = build_report(run_dir)
    assert not report.complete and report.summary_kept
    assert read_json(tmp_path / "summary.json") == complete_summary
    assert report.missing_text() == ("missing: part-2; summary.json keeps the numbers of the "
                                     "earlier complete run")
    assert "missing: part-2" in (tmp_path / "report.md").read_text()


def test_an_unreadable_summary_is_said_and_written_anew(tmp_path, toy, capsys):
    experiment, _ = toy
    run_dir = RunDirectory(tmp_path)
    run_experiment(run_dir, experiment, experiment.budget("smoke"), progress=False)
    (tmp_path / "summary.json").write_text('{"toy": {"lms": ')
    build_report(run_dir)
    assert f"{tmp_path / 'summary.json'} is not valid JSON" in capsys.readouterr().err
    assert "lms" in read_json(tmp_path / "summary.json")["toy"]
