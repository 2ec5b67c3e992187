"""The command line: ``metastep reproduce | run | list | report``.

Results go to a run directory (``--out``, default ``runs/<timestamp>``); rerunning a command into
the same directory computes only the shards it does not hold yet.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import metastep
from metastep import experiments
from metastep.experiments import BUDGET_NAMES
from metastep.report import RunDirectory, RunDirectoryError, build_report, run_experiment
from metastep.report.build import (
    NO_REFERENCE,
    ExperimentReport,
    answer_text,
    experiment_verdict,
    find_answers,
    summarize_stored,
)
from metastep.report.executors import (
    EXECUTORS,
    ExecutorError,
    ShardFailedError,
    make_executor,
)
from metastep.report.runner import ExperimentRun

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
    parser.add_argument("--executor", choices=EXECUTORS, default="in-process",
                        help="where the shards are computed: in this process (default), or as "
                        "tasks of a Ray cluster (pip install -e \".[cluster]\")")
    parser.add_argument("--checkpoint-every", type=non_negative_float, default=5.0,
                        metavar="MINUTES",
                        help="minutes of work between two saves of a shard in progress (default "
                        "5; 0: after every compiled chunk): a shard computed again after its "
                        "process was killed continues from its last save")
    parser.add_argument("--checkpoint-dir", type=Path, metavar="DIR",
                        help="where shards in progress save their work (default: "
                        "checkpoints/ in the run directory; on a cluster of several machines, "
                        "storage that every node reaches at the same path)")
    parser.add_argument("--ray-address", metavar="HOST:PORT",
                        help="with --executor ray: the cluster to connect to (HOST:PORT, or auto "
                        "for the one this machine belongs to); without it a local Ray instance "
                        "sized to this machine is started")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="the run directory (default: runs/<timestamp>); an existing one is "
                        "resumed")


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


class HelpFormatter(argparse.HelpFormatter):
    """Wraps help texts at spaces only, never inside a hyphenated experiment name; in a
    description or epilog, an indented line (an entry of a list) is kept as it is."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False,
                             break_long_words=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(
            indent + line if line.startswith(" ") else textwrap.fill(
                line, width, initial_indent=indent, subsequent_indent=indent,
                break_on_hyphens=False, break_long_words=False)
            for line in text.splitlines())


def experiments_epilog() -> str:
    """The experiments, one per line, with their approximate quick-budget time."""
    width = max(map(len, experiments.EXPERIMENTS))
    lines = [f"  {experiment.name:<{width}}  {quick_time(experiment)}"
             for experiment in experiments.EXPERIMENTS.values()]
    return "experiments (NAME), with the approximate time of the quick budget:\n" + "\n".join(lines)


def quick_time(experiment) -> str:
    """About how long its quick budget takes, as measured (``Experiment.quick_minutes``)."""
    minutes = experiment.quick_minutes
    return "quick: not timed" if minutes is None else f"quick: ~{minutes:.1f} min"


def build_parser() -> argparse.ArgumentParser:
    names = list(experiments.EXPERIMENTS)
    parser = argparse.ArgumentParser(
        prog="metastep", formatter_class=HelpFormatter,
        description="Reproduce the experiments of meta-learned step sizes: each experiment runs "
        "into a run directory (results, figures, summary.json, report.html); `metastep COMMAND "
        "--help` describes a command.")
    parser.add_argument("--version", action="version", version=f"metastep {metastep.__version__}",
                        help="print the version of metastep and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     help="what to do (each has its own --help)")

    def add_command(name: str, text: str, **options) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=text, description=text,
                                   formatter_class=HelpFormatter, **options)

    reproduce = add_command(
        "reproduce", "run every experiment (or those of --only) into a run directory, print "
        "each one's verdict as it finishes, and write the report", epilog=experiments_epilog())
    add_budget_options(reproduce)
    reproduce.add_argument("--only", nargs="+", action="extend", choices=names, metavar="NAME",
                           help="run only these experiments (names listed below)")

    run = add_command("run", "run one experiment into a run directory, print its verdict and "
                      "write the report", epilog=experiments_epilog())
    run.add_argument("name", choices=names, metavar="NAME",
                     help="the experiment to run (names listed below)")
    add_budget_options(run)
    run.add_argument("--steps", type=positive_int, metavar="N",
                     help="override the budget's steps (the length of the main runs)")
    run.add_argument("--seeds", type=positive_int, metavar="N",
                     help="override the budget's number of seeds (seeds 0 .. N-1)")

    add_command("list", "list the experiments: name, approximate quick-budget time and what "
                "each shows")

    report = add_command(
        "report", "rebuild a run directory's summary.json, figures and report from its stored "
        "results (computes nothing)")
    report.add_argument("directory", type=Path, metavar="DIR",
                        help="the run directory (as given to --out)")
    return parser


def verdict_lines(report: ExperimentReport, run: ExperimentRun | None = None) -> list[str]:
    """What a person reads when an experiment finishes: its verdict (with what this call
    computed), each reference it did not reproduce and why, and a continual benchmark's
    answer (the meta method at its default against tuned Adam)."""
    name = report.experiment.name
    verdict, checks, misses = experiment_verdict(report)
    first = f"{name}: {verdict}"
    if run is not None and run.skipped is None:
        first += (f" ({run.computed} shards computed, {run.reused} reused, "
                  f"{run.seconds:.1f} s)")
    if verdict in ("skipped", "incomplete"):
        lines = [f"{first}: {checks}"]
    else:  # the counts; an experiment without references has its answer instead
        lines = [first] + ([f"  {checks}"] if verdict != NO_REFERENCE else [])
    lines += [f"  - {miss}" for miss in misses]
    lines += [f"  answer: {answer_text(where, answer)}"
              for where, answer in find_answers(report.summary)]
    return lines


def print_report_progress(index: int, count: int, name: str) -> None:
    print(f"report: summary and figures of {name} ({index}/{count})", file=sys.stderr,
          flush=True)


def run_and_report(names: list[str], budget: str, run_dir: RunDirectory, command: list[str],
                   steps: int | None = None, seeds: int | None = None,
                   fail_if_skipped: bool = False, executor=None,
                   checkpoint_every: float = 5.0, checkpoint_dir: Path | None = None) -> int:
    """Run ``names`` (their shards computed by ``executor``, default in this process), printing
    each one's verdict as it finishes, then rebuild the report; the exit status is 1 if
    ``fail_if_skipped`` and an experiment could not run here (``reproduce`` goes on without it;
    ``run`` asked for it)."""
    print(f"run directory: {run_dir.path}", file=sys.stderr)
    runs = {}
    for index, name in enumerate(names, 1):
        experiment = experiments.get(name)
        runs[name] = run_experiment(
            run_dir, experiment, experiment.budget(budget, steps=steps, seeds=seeds),
            command=command, title=f"experiment {index}/{len(names)}: {name}",
            executor=executor, checkpoint_every=60 * checkpoint_every,
            checkpoint_root=checkpoint_dir,
        )
        print("\n".join(verdict_lines(summarize_stored(run_dir, name), runs[name])), flush=True)
    reports = build_report(run_dir, progress=print_report_progress)
    if len(reports) > 1:
        print("overview:")
        width = max(len(report.experiment.name) for report in reports)
        for report in reports:
            print(f"  {report.experiment.name:<{width}}  {experiment_verdict(report)[0]}")
    print(f"report: {run_dir.path / 'report.html'}")
    skipped = any(run.skipped is not None for run in runs.values())
    return 1 if fail_if_skipped and skipped else 0


def list_experiments() -> None:
    """A line per experiment, in aligned columns: name, quick-budget time, what it shows
    (wrapped to the terminal, continued under itself)."""
    width = max(map(len, experiments.EXPERIMENTS))
    times = {name: quick_time(experiment) for name, experiment in experiments.EXPERIMENTS.items()}
    time_width = max(map(len, times.values()))
    indent = " " * (width + time_width + 4)
    columns = max(shutil.get_terminal_size().columns, len(indent) + 30)
    for name, experiment in experiments.EXPERIMENTS.items():
        print(textwrap.fill(experiment.description, columns - 1, break_on_hyphens=False,
                            initial_indent=f"{name:<{width}}  {times[name]:<{time_width}}  ",
                            subsequent_indent=indent))


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
            list_experiments()
            return 0
        if args.command == "report":
            for report in build_report(args.directory, progress=print_report_progress):
                print("\n".join(verdict_lines(report)))
            print(f"report: {args.directory / 'report.html'}")
            return 0
        with contextlib.closing(make_executor(args.executor, args.ray_address)) as executor:
            options = dict(executor=executor, checkpoint_every=args.checkpoint_every,
                           checkpoint_dir=args.checkpoint_dir)
            if args.command == "run":
                return run_and_report([args.name], args.budget, run_dir, command,
                                      steps=args.steps, seeds=args.seeds, fail_if_skipped=True,
                                      **options)
            names = list(dict.fromkeys(args.only or experiments.EXPERIMENTS))
            return run_and_report(names, args.budget, run_dir, command, **options)
    except (RunDirectoryError, ShardFailedError, ExecutorError) as error:
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
