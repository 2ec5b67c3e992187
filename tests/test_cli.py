"""The command line, called in-process: list, run, report, resuming, errors."""

import argparse
import collections
import contextlib
import dataclasses
import io

import pytest

import metastep
from metastep.cli import build_parser, main
from metastep.experiments import EXPERIMENTS
from metastep.report.build import EXPECTED, NO_REFERENCE

SMALL_RUN = ["run", "delta-delta", "--budget", "smoke", "--steps", "1000", "--seeds", "1"]


def mtimes(directory):
    return {path: path.stat().st_mtime_ns for path in directory.rglob("*.parquet")}


def test_list_prints_aligned_columns_with_the_quick_time(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) < 100 for line in lines)
    entries = []  # each experiment's first line and its continuation lines
    for line in lines:
        if line.startswith(" "):
            entries[-1].append(line)
        else:
            entries.append([line])
    assert [entry[0].split()[0] for entry in entries] == list(EXPERIMENTS)
    # One column for the times, one for the descriptions, continued under themselves.
    assert len({entry[0].index("quick: ") for entry in entries}) == 1
    columns = set()
    for entry, experiment in zip(entries, EXPERIMENTS.values()):
        column = entry[0].index(experiment.description[:20])
        columns |= {column} | {len(line) - len(line.lstrip()) for line in entry[1:]}
        assert " ".join(line[column:] for line in entry) == experiment.description
    assert len(columns) == 1


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
    assert "(3 shards computed, 0 reused," in printed.splitlines()[0]
    assert f"report: {directory / 'report.html'}" in printed
    assert len(mtimes(directory)) == 3


def test_rerun_computes_nothing(small_run, capsys):
    directory, _ = small_run
    stored = mtimes(directory)
    assert main([*SMALL_RUN, "--out", str(directory)]) == 0
    assert "(0 shards computed, 3 reused," in capsys.readouterr().out.splitlines()[0]
    assert mtimes(directory) == stored


def test_report_rebuilds_from_stored_results(small_run, capsys):
    directory, _ = small_run
    stored = mtimes(directory)
    (directory / "report.html").unlink()
    (directory / "summary.json").unlink()
    assert main(["report", str(directory)]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith(f"delta-delta: {EXPECTED}\n  7 checks against the references: ")
    assert "report: summary and figures of delta-delta (1/1)" in printed.err
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


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"metastep {metastep.__version__}\n"


def subcommands(parser):
    (action,) = [action for action in parser._actions
                 if isinstance(action, argparse._SubParsersAction)]
    return action.choices


def test_every_command_and_option_has_help():
    parser = build_parser()
    for name, command in [("metastep", parser), *subcommands(parser).items()]:
        assert command.description, name
        for action in command._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)


@pytest.mark.parametrize("columns", [40, 60, 80, 120])
@pytest.mark.parametrize("command", [[], ["run"], ["reproduce"]])
def test_help_never_breaks_an_experiment_name(monkeypatch, columns, command):
    monkeypatch.setenv("COLUMNS", str(columns))
    parser = build_parser()
    helped = subcommands(parser)[command[0]] if command else parser
    text = helped.format_help()
    if command:
        assert all(name in text for name in EXPERIMENTS)
    for line in text.splitlines():  # no name cut at a hyphen and continued on the next line
        assert not line.rstrip().endswith("-") or line.strip() == "-", line


def test_each_verdict_is_printed_as_its_experiment_finishes(monkeypatch, tmp_path):
    from metastep.cli import experiments
    from report.toy import make_toy_experiment

    first = make_toy_experiment(collections.Counter())
    printed = io.StringIO()
    printed_before_second = []

    def recording(compute):
        def compute_and_record():
            printed_before_second.append(printed.getvalue())
            return compute()
        return compute_and_record

    second = dataclasses.replace(first, name="toy-second", shards=lambda budget: [
        dataclasses.replace(shard, compute=recording(shard.compute))
        for shard in first.shards(budget)])
    monkeypatch.setattr(experiments, "EXPERIMENTS", {"toy": first, "toy-second": second})
    with contextlib.redirect_stdout(printed):
        assert main(["reproduce", "--budget", "smoke", "--out", str(tmp_path / "run")]) == 0
    assert printed_before_second[0].startswith(
        f"toy: {NO_REFERENCE} (3 shards computed, 0 reused, ")
    assert "toy-second" not in printed_before_second[0]
    assert (f"overview:\n  toy         {NO_REFERENCE}\n  toy-second  {NO_REFERENCE}\n"
            in printed.getvalue())
