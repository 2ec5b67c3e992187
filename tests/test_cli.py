"""The command line, called in-process: list, run, report, resuming, errors."""

import contextlib
import io

import pytest

from metastep.cli import build_parser, main
from metastep.experiments import EXPERIMENTS

SMALL_RUN = ["run", "delta-delta", "--budget", "smoke", "--steps", "1000", "--seeds", "1"]


def mtimes(directory):
    return {path: path.stat().st_mtime_ns for path in directory.rglob("*.parquet")}


def test_list_prints_a_line_per_experiment(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(EXPERIMENTS)
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A run directory of a small delta-delta run, and what the run printed."""
    directory = tmp_path_factory.mktemp("run")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([*SMALL_RUN, "--out", str(directory)]) == 0
    return directory, printed.getvalue()


def test_run_prints_a_line_per_experiment(small_run):
    directory, printed = small_run
    assert "delta-delta: 3 shards computed, 0 reused" in printed
    assert f"report: {directory / 'report.html'}" in printed
    assert len(mtimes(directory)) == 3


def test_rerun_computes_nothing(small_run, capsys):
    directory, _ = small_run
    stored = mtimes(directory)
    assert main([*SMALL_RUN, "--out", str(directory)]) == 0
    assert "delta-delta: 0 shards computed, 3 reused" in capsys.readouterr().out
    assert mtimes(directory) == stored


def test_report_rebuilds_from_stored_results(small_run, capsys):
    directory, _ = small_run
    stored = mtimes(directory)
    (directory / "report.html").unlink()
    (directory / "summary.json").unlink()
    assert main(["report", str(directory)]) == 0
    assert capsys.readouterr().out.startswith("delta-delta: fixed.too_small.sign_agreement = ")
    assert (directory / "report.html").exists() and (directory / "summary.json").exists()
    assert mtimes(directory) == stored


def test_a_run_of_other_parameters_into_the_same_directory_fails(small_run, capsys):
    directory, _ = small_run
    stored = mtimes(directory)
    assert main([*SMALL_RUN[:-1], "2", "--out", str(directory)]) == 1
    assert "holds delta-delta results of other parameters" in capsys.readouterr().err
    assert mtimes(directory) == stored


def test_report_of_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    assert "not a run directory" in capsys.readouterr().err


def test_report_of_an_experiment_no_longer_registered(tmp_path, capsys):
    (tmp_path / "config.json").write_text(
        '{"experiments": {"gone": {"budget": {"steps": 1, "seeds": 1}, "shards": {}}}}')
    assert main(["report", str(tmp_path)]) == 1
    assert "no experiment 'gone'" in capsys.readouterr().err


@pytest.mark.parametrize("arguments", [
    ["run", "no-such-experiment"],
    ["reproduce", "--only", "no-such-experiment"],
    ["run", "delta-delta", "--steps", "0"],
    ["reproduce", "--full", "--budget", "smoke"],
])
def test_bad_arguments_exit_with_usage(arguments, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2
    assert "usage: metastep" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "reproduce"])
def test_the_default_budget_is_quick(command):
    arguments = [command, "delta-delta"] if command == "run" else [command]
    assert build_parser().parse_args(arguments).budget == "quick"
    assert build_parser().parse_args([*arguments, "--full"]).budget == "full"
    assert build_parser().parse_args([*arguments, "--budget", "smoke"]).budget == "smoke"


def test_a_bug_inside_an_experiment_is_not_reported_as_an_unknown_experiment(monkeypatch,
                                                                              tmp_path):
    from metastep.cli import experiments

    def broken(name):
        raise KeyError("a bug")

    monkeypatch.setattr(experiments, "get", broken)
    with pytest.raises(KeyError, match="a bug"):
        main(["run", "delta-delta", "--budget", "smoke", "--out", str(tmp_path / "run")])
