"""The command line: ``metastep reproduce | run | list | report``.

Results go to a run directory (``--out``, default ``runs/<timestamp>``); rerunning a command into
the same directory computes only the shards it does not hold yet.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

from metastep import experiments
from metastep.experiments import BUDGET_NAMES
from metastep.report import RunDirectory, RunDirectoryError, build_report, run_experiment
from metastep.report.build import ExperimentReport, format_value
from metastep.report.runner import ExperimentRun

# Comparisons shown on an experiment's closing line; the report has them all.
HEADLINE_ROWS = 3


def default_out() -> Path:
    return Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")


def add_budget_options(parser: argparse.ArgumentParser) -> None:
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--full", dest="budget", action="store_const", const="full",
                        help="the papers' budgets (1,000,000 steps, 30 seeds where they average)")
    choice.add_argument("--budget", choices=BUDGET_NAMES,
                        help="quick (default: minutes on a laptop), full, or smoke (seconds: a "
                        "tiny budget for tests and CI)")
    # Set on the parser: with two options sharing a destination, a per-option default is lost.
    parser.set_defaults(budget="quick")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="the run directory (default: runs/<timestamp>); an existing one is "
                        "resumed")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    names = list(experiments.EXPERIMENTS)
    parser = argparse.ArgumentParser(
        prog="metastep", description="Reproduce the experiments of meta-learned step sizes.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    reproduce = commands.add_parser(
        "reproduce", help="run every experiment into a run directory and write its report")
    add_budget_options(reproduce)
    reproduce.add_argument("--only", nargs="+", action="extend", choices=names, metavar="NAME",
                           help=f"run only these experiments ({', '.join(names)})")

    run = commands.add_parser("run", help="run one experiment")
    run.add_argument("name", choices=names, metavar="NAME", help=", ".join(names))
    add_budget_options(run)
    run.add_argument("--steps", type=positive_int, help="override the budget's steps")
    run.add_argument("--seeds", type=positive_int, help="override the budget's number of seeds")

    commands.add_parser("list", help="list the experiments, a line each")

    report = commands.add_parser(
        "report", help="rebuild a run directory's report from its stored results")
    report.add_argument("directory", type=Path, metavar="DIR")
    return parser


def headline(run: ExperimentRun | None, report: ExperimentReport) -> str:
    """One line: what was done and the first measured-vs-published numbers."""
    name = report.experiment.name
    if report.skipped is not None:
        return f"{name}: skipped: {report.skipped}"
    if not report.complete:
        return f"{name}: incomplete ({len(report.stored_shards)}/{len(report.all_shards)} shards)"
    parts = [f"{name}:"]
    if run is not None:
        parts.append(f"{run.computed} shards computed, {run.reused} reused, {run.seconds:.1f} s;")
    numbers = []
    for row in report.comparisons[:HEADLINE_ROWS]:
        text = f"{row.key} = {format_value(row.measured)}"
        if not isinstance(row.published, str):
            text += f" (published {format_value(row.published)})"
        numbers.append(text)
    parts.append(", ".join(numbers) if numbers else "no published numbers")
    return " ".join(parts)


def run_and_report(names: list[str], budget: str, run_dir: RunDirectory, command: list[str],
                   steps: int | None = None, seeds: int | None = None,
                   fail_if_skipped: bool = False) -> int:
    """Run ``names``, rebuild the report; the exit status is 1 if ``fail_if_skipped`` and an
    experiment could not run here (``reproduce`` goes on without it; ``run`` asked for it)."""
    print(f"run directory: {run_dir.path}", file=sys.stderr)
    runs = {}
    for name in names:
        experiment = experiments.get(name)
        runs[name] = run_experiment(
            run_dir, experiment, experiment.budget(budget, steps=steps, seeds=seeds),
            command=command,
        )
    for report in build_report(run_dir):
        print(headline(runs.get(report.experiment.name), report))
    print(f"report: {run_dir.path / 'report.html'}")
    skipped = any(run.skipped is not None for run in runs.values())
    return 1 if fail_if_skipped and skipped else 0


def os_error_text(error: OSError) -> str:
    """An OS error in one line that names the file: ``PATH: No space left on device``."""
    if error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)


def stop_at_once(message: str) -> None:
    """On Ctrl-C from now on: print ``message`` and end the process with status 130 at once.

    ``os._exit`` skips the interpreter's teardown, which can crash (a segfault) while JAX's
    threads still run, and the signal handler cannot be lost as a KeyboardInterrupt can (one
    raised inside a garbage-collection callback is ignored). What it leaves is safe: every file
    is renamed into place whole, temporary files of dead processes are removed by the next run,
    and the directory's lock goes with the process.
    """

    def leave(signum, frame):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # e.g. a write to it was interrupted
                stream.flush()
        newline = "\n" if sys.stderr.isatty() else ""  # end a progress bar's line
        os.write(sys.stderr.fileno(), f"{newline}{message}\n".encode())
        os._exit(130)

    signal.signal(signal.SIGINT, leave)


def main(argv: list[str] | None = None, *, exit_on_interrupt: bool = False) -> int:
    """Entry point of the ``metastep`` command; returns the exit status.

    Ctrl-C returns 130 after saying how to resume; with ``exit_on_interrupt`` (the console
    command, :func:`console_main`) it ends the process there and then (:func:`stop_at_once`).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    command = ["metastep", *argv]
    run_dir = RunDirectory(getattr(args, "out", None) or default_out())
    interrupted = "metastep: interrupted"
    if args.command in ("run", "reproduce"):
        interrupted += (f"; the finished shards are stored: rerun the same command with --out "
                        f"{run_dir.path} to resume")
    if exit_on_interrupt:
        stop_at_once(interrupted)
    try:
        if args.command == "list":
            for experiment in experiments.EXPERIMENTS.values():
                print(f"{experiment.name:<20} {experiment.description}")
            return 0
        if args.command == "report":
            for report in build_report(args.directory):
                print(headline(None, report))
            print(f"report: {args.directory / 'report.html'}")
            return 0
        if args.command == "run":
            return run_and_report([args.name], args.budget, run_dir, command,
                                  steps=args.steps, seeds=args.seeds, fail_if_skipped=True)
        names = list(dict.fromkeys(args.only or experiments.EXPERIMENTS))
        return run_and_report(names, args.budget, run_dir, command)
    except RunDirectoryError as error:
        print(f"metastep: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # disk full, no permission, a file where a directory should be...
        print(f"metastep: {os_error_text(error)}", file=sys.stderr)
        return 1
    except experiments.UnknownExperimentError as error:  # e.g. a run directory of an old version
        print(f"metastep: {error.args[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130


def console_main() -> None:
    """The ``metastep`` console command."""
    sys.exit(main(exit_on_interrupt=True))


if __name__ == "__main__":
    console_main()
