"""The command line when things go wrong: OS errors and a corrupt config.json give one line that
names the path and harm nothing stored; Ctrl-C ends with status 130, cleanly, every time."""

import collections
import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from metastep import experiments
from metastep.cli import main
from metastep.report import storage
from metastep.report.storage import RunDirectory, read_json, shard_provenance
from report.toy import make_toy_experiment

TOY_RUN = ["run", "toy", "--budget", "smoke", "--out"]


@pytest.fixture
def toy(monkeypatch):
    experiment = make_toy_experiment(collections.Counter())
    monkeypatch.setitem(experiments.EXPERIMENTS, experiment.name, experiment)
    return experiment


@pytest.fixture
def toy_run(tmp_path, toy):
    """A complete run directory of the toy experiment."""
    directory = tmp_path / "run"
    assert main([*TOY_RUN, str(directory)]) == 0
    return directory


def stored_files(directory):
    """Every stored file's bytes (the lock file aside)."""
    return {path: path.read_bytes() for path in directory.rglob("*")
            if path.is_file() and path.name != ".lock"}


def one_line_naming(capsys, path, reason):
    """The error is one last line on stderr, naming ``path``, with ``reason``."""
    errors = capsys.readouterr().err
    assert "Traceback" not in errors, errors
    error = errors.rstrip().splitlines()[-1]
    assert error.startswith(f"metastep: {path}") and reason in error, errors


def test_an_existing_file_as_out(tmp_path, toy, capsys):
    path = tmp_path / "results.csv"
    path.write_text("precious")
    assert main([*TOY_RUN, str(path)]) == 1
    one_line_naming(capsys, path, "is a file, not a run directory")
    assert path.read_text() == "precious"


def test_a_directory_that_cannot_be_created(tmp_path, toy, capsys, monkeypatch):
    """No permission to create --out (simulated: as root, permissions do not stop a write)."""
    out = tmp_path / "locked" / "run"
    original = type(out).mkdir

    def refuse(self, *args, **kwargs):
        if self == out:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(out), "mkdir", refuse)
    assert main([*TOY_RUN, str(out)]) == 1
    one_line_naming(capsys, out, "Permission denied")


def read_only_replace(source, target):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(source), None, str(target))


@pytest.mark.parametrize("command", ["run", "report"])
def test_a_read_only_run_directory(toy_run, capsys, monkeypatch, command):
    """Simulated by a rename that fails as on a read-only file system."""
    before = stored_files(toy_run)
    monkeypatch.setattr(storage.os, "replace", read_only_replace)
    arguments = [*TOY_RUN, str(toy_run)] if command == "run" else ["report", str(toy_run)]
    assert main(arguments) == 1
    monkeypatch.undo()
    one_line_naming(capsys, toy_run, "Read-only file system")
    assert stored_files(toy_run) == before


def test_an_immutable_run_directory(toy_run, capsys):
    """A real write refusal, where ``chattr +i`` works (root, a file system that has it)."""
    before = stored_files(toy_run)
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    # Every file and folder immutable, so whichever write comes first is refused.
    try:
        if subprocess.run(["chattr", "-R", "+i", str(toy_run)],
                          capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available on this file system")
        assert main([*TOY_RUN, str(toy_run)]) == 1
    finally:
        subprocess.run(["chattr", "-R", "-i", str(toy_run)], capture_output=True)
    # The first refused write names its file: config.json, or a later one when the config is
    # already up to date (it is written only when it changes, and its timestamp has seconds).
    one_line_naming(capsys, toy_run, "Operation not permitted")
    assert stored_files(toy_run) == before


def test_a_full_disk_while_a_shard_is_written(toy_run, capsys, monkeypatch):
    import pyarrow.parquet as pq

    RunDirectory(toy_run).shard_path("toy", "part-1").unlink()
    before = {path: data for path, data in stored_files(toy_run).items()
              if path.name != "config.json"}

    def write_half_then_fill_the_disk(table, path, **kwargs):
        with open(path, "wb") as file:
            file.write(b"PAR1 half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pq, "write_table", write_half_then_fill_the_disk)
    assert main([*TOY_RUN, str(toy_run)]) == 1
    monkeypatch.undo()
    one_line_naming(capsys, RunDirectory(toy_run).shard_path("toy", "part-1"),
                    "No space left on device")
    after = stored_files(toy_run)
    assert {path: data for path, data in after.items() if path.name != "config.json"} == before
    assert read_json(toy_run / "config.json")["experiments"]["toy"]["shards"]


@pytest.mark.parametrize("command", ["run", "report"])
def test_a_corrupt_config(toy_run, capsys, command):
    config = toy_run / "config.json"
    config.write_text(config.read_text()[:40])
    before = stored_files(toy_run)
    arguments = [*TOY_RUN, str(toy_run)] if command == "run" else ["report", str(toy_run)]
    assert main(arguments) == 1
    one_line_naming(capsys, config, "is not valid JSON")
    assert stored_files(toy_run) == before


# ---------------------------------------------------------------------------------------------
# Ctrl-C, in a real process: the console command, a shard computing

CONSOLE = [sys.executable, "-c", "from metastep.cli import console_main; console_main()"]
RUN = ["run", "delta-delta", "--budget", "smoke"]


def interrupt_a_run(directory, delay):
    """Start ``metastep run``, send SIGINT ``delay`` s after it says its run directory; returns
    the exit status and what it wrote to stderr."""
    process = subprocess.Popen([*CONSOLE, *RUN, "--out", str(directory)], text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = []
    for line in process.stderr:
        lines.append(line)
        if line.startswith("run directory:"):
            break
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    lines += process.stderr.readlines()
    process.stderr.close()
    return process.wait(timeout=60), "".join(lines)


def check_interrupted(directory, status, errors):
    assert status == 130, errors
    assert "Traceback" not in errors and "Exception ignored" not in errors, errors
    assert errors.rstrip().endswith(
        f"metastep: interrupted; the finished shards are stored: rerun the same command with "
        f"--out {directory} to resume")
    entry = read_json(directory / "config.json")["experiments"]["delta-delta"]
    for shard, parameters in entry["shards"].items():
        problem = RunDirectory(directory).check_shard(
            "delta-delta", shard, shard_provenance(parameters, entry["budget"]))
        assert problem in (None, "missing"), problem


# Later interruptions: the slow test below interrupts at many delays.
@pytest.mark.parametrize("delay", [0.5, pytest.param(2.0, marks=pytest.mark.slow)])
def test_ctrl_c_exits_130(tmp_path, delay):
    directory = tmp_path / "run"
    check_interrupted(directory, *interrupt_a_run(directory, delay))


@pytest.mark.slow
def test_ctrl_c_exits_130_every_time_and_the_run_resumes(tmp_path):
    for index, delay in enumerate((0.2, 0.6, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0)):
        directory = tmp_path / f"run-{index}"
        check_interrupted(directory, *interrupt_a_run(directory, delay))
    finished = subprocess.run([*CONSOLE, *RUN, "--out", str(directory)], capture_output=True,
                              text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert not list(directory.rglob(f"*{storage.TEMPORARY_SUFFIX}"))


def test_executor_arguments_that_cannot_work_are_one_line(tmp_path, toy, capsys, monkeypatch):
    out = str(tmp_path / "run")
    assert main([*TOY_RUN, out, "--ray-address", "127.0.0.1:6379"]) == 1
    assert capsys.readouterr().err.rstrip().endswith(
        "metastep: --ray-address needs --executor ray")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main([*TOY_RUN, out, "--executor", "ray"]) == 1
    errors = capsys.readouterr().err
    assert "Traceback" not in errors
    assert errors.rstrip().endswith('pip install -e ".[cluster]" (or pip install ray)')
