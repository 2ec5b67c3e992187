"""Running an experiment into a run directory: the shards not yet stored, computed by an executor
(in this process, or on a Ray cluster) and stored by this process as they come back."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import metastep
from metastep._checkpoints import DEFAULT_EVERY_SECONDS
from metastep.experiments._base import REQUIRED_COLUMNS, Budget, Experiment, Shard
from metastep.report.environment import environment
from metastep.report.executors import Checkpoints, InProcess
from metastep.report.progress import progress_bar
from metastep.report.storage import (
    RunDirectory,
    RunDirectoryError,
    shard_provenance,
    to_json_value,
)


@dataclass(frozen=True)
class ExperimentRun:
    """What one call of :func:`run_experiment` did."""

    experiment: str
    budget: Budget
    computed: int  # shards computed by this call
    reused: int  # shards found already stored
    seconds: float
    skipped: str | None = None  # why the experiment could not run here (its data are missing...)
    replaced: tuple[str, ...] = ()  # stored shards that did not verify, computed again


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def record_experiment(run_dir: RunDirectory, experiment: Experiment, budget: Budget,
                      shards: list[Shard], command: list[str] | None = None) -> None:
    """Write the experiment's resolved parameters into ``config.json``.

    Raises:
      RunDirectoryError: the directory already holds this experiment at another budget or with
        other shard parameters: its stored shards would not be results of this run.
    """
    entry = to_json_value({
        "description": experiment.description,
        "budget": budget.to_dict(),
        "seeds": budget.seed_list,
        "shards": {shard.name: dict(shard.parameters) for shard in shards},
    })

    def check(stored: dict[str, Any] | None) -> bool:
        # A skipped experiment stored nothing: this run may take its place.
        if stored is not None and "skipped" not in stored and (
            stored.get("budget"), stored.get("shards")
        ) != (entry["budget"], entry["shards"]):
            raise RunDirectoryError(
                f"{run_dir.path} holds {experiment.name} results of other parameters (stored "
                f"budget {stored.get('budget')}, asked {entry['budget']}): choose another "
                "--out directory"
            )
        return True

    write_entry(run_dir, experiment.name, entry, command, check)


def record_skipped(run_dir: RunDirectory, experiment: Experiment, budget: Budget, reason: str,
                   command: list[str] | None = None) -> None:
    """Note in ``config.json`` that ``experiment`` was skipped, and why; the results of an earlier
    run of it, if the directory holds some, are kept."""
    entry = {"description": experiment.description, "budget": budget.to_dict(),
             "skipped": reason}
    write_entry(run_dir, experiment.name, to_json_value(entry), command,
                lambda stored: stored is None or "skipped" in stored)


def write_entry(run_dir: RunDirectory, name: str, entry: dict[str, Any],
                command: list[str] | None, replaces: Callable[[dict | None], bool]) -> None:
    """Store the experiment's entry in ``config.json``, with the run's provenance, if
    ``replaces(stored entry or None)``; one read-modify-write under the directory's lock, so
    that runs of other experiments into the directory at the same time keep theirs."""
    probed = environment()  # slow (it starts JAX): outside the lock

    def change(config: dict[str, Any]) -> None:
        if not replaces(config.get("experiments", {}).get(name)):
            return
        timestamp = now()
        config.setdefault("created", timestamp)
        config["updated"] = timestamp
        config["metastep_version"] = metastep.__version__
        if command is not None:
            config["command"] = command
        config["environment"] = probed
        # Where the shards stored so far ran stays known when a run is resumed.
        ran_on = (config.get("experiments", {}).get(name) or {}).get("ran_on")
        keep = {"ran_on": ran_on} if ran_on and "skipped" not in entry else {}
        config.setdefault("experiments", {})[name] = {**entry, **keep}

    run_dir.update_config(change)


def check_table(experiment: Experiment, shard: Shard, table: Any):
    """The shard's table with the ``experiment`` column first; errors name what is wrong."""
    import pandas as pd

    where = f"{experiment.name}/{shard.name}"
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"shard {where} must return a pandas DataFrame, got {type(table)}")
    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"shard {where} table lacks the columns {missing}")
    if table.empty:
        raise ValueError(f"shard {where} returned an empty table")
    table = table.drop(columns="experiment", errors="ignore")
    table.insert(0, "experiment", experiment.name)
    return table


def shards_to_compute(run_dir: RunDirectory, experiment: str, shards: list[Shard],
                      provenances: dict[str, dict[str, Any]]) -> tuple[list[Shard], list[str]]:
    """The shards to compute: those not stored, and those stored that do not verify (corrupt,
    or computed with other parameters or another metastep version), each said on stderr; and
    the names of the latter."""
    to_compute, replaced = [], []
    for shard in shards:
        problem = run_dir.check_shard(experiment, shard.name, provenances[shard.name])
        if problem is None:
            continue
        if problem != "missing":
            print(f"{experiment}: {problem}: computing it again", file=sys.stderr)
            replaced.append(shard.name)
        to_compute.append(shard)
    return to_compute, replaced


def record_where(run_dir: RunDirectory, experiment: str, executor: dict[str, Any], shard: str,
                 where: dict[str, Any]) -> None:
    """Note in the experiment's ``config.json`` entry the executor of this run and where a
    shard ran (as soon as it is stored: a driver killed later loses nothing)."""

    def change(config: dict[str, Any]) -> None:
        entry = config.get("experiments", {}).get(experiment)
        if entry is not None:
            entry["executor"] = to_json_value(executor)
            entry.setdefault("ran_on", {})[shard] = to_json_value(where)

    run_dir.update_config(change)


def shard_checkpoints(root: Path, experiment: str, shards: list[Shard],
                      provenances: dict[str, dict[str, Any]], every_seconds: float) -> Checkpoints:
    """A checkpoint directory per shard to compute, ``root/<experiment>/<shard>-<hash>`` (the
    hash of its provenance: a shard of other parameters never meets its files); the directories
    of the experiment's other shards (stale: their parameters changed) are removed."""
    root = root.resolve()  # a worker may run in another directory
    directories = {}
    for shard in shards:
        digest = hashlib.sha256(json.dumps(provenances[shard.name], sort_keys=True).encode())
        directories[shard.name] = root / experiment / f"{shard.name}-{digest.hexdigest()[:12]}"
    wanted = {path.name for path in directories.values()}
    if (root / experiment).is_dir():
        for path in (root / experiment).iterdir():
            if path.name not in wanted:
                shutil.rmtree(path, ignore_errors=True)
    return Checkpoints(directories, every_seconds)


def run_experiment(run_dir: RunDirectory, experiment: Experiment, budget: Budget, *,
                   progress: bool = True, command: list[str] | None = None,
                   title: str | None = None, executor=None,
                   checkpoint_every: float = DEFAULT_EVERY_SECONDS,
                   checkpoint_root: Path | None = None) -> ExperimentRun:
    """Compute and store the shards of ``experiment`` that ``run_dir`` does not hold yet.

    Progress (on stderr, titled ``title``, default the experiment's name) counts the work in
    lane-steps, with an ETA: in process it moves inside a shard with every compiled chunk the
    engine finishes (a bar on a terminal, plain lines in a log: :mod:`metastep.report.progress`);
    on a cluster with every shard stored. ``executor`` computes the shards
    (:mod:`metastep.report.executors`; default: in this process); this process alone writes
    ``run_dir``, each table as soon as it comes back, and ``config.json`` notes the executor
    and where each shard ran. While a shard computes, its engine calls save their work every
    ``checkpoint_every`` seconds under ``checkpoint_root`` (default ``run_dir/checkpoints``),
    removed once the shard is stored: a shard computed again continues from there. An
    experiment that cannot run here (``experiment.unavailable()``) computes nothing: it is
    recorded as skipped, with the reason.
    """
    start = time.perf_counter()
    executor = InProcess() if executor is None else executor
    run_dir.open()
    reason = experiment.unavailable()
    if reason is not None:
        record_skipped(run_dir, experiment, budget, reason, command)
        return ExperimentRun(experiment.name, budget, computed=0, reused=0,
                             seconds=time.perf_counter() - start, skipped=reason)
    shards = experiment.shards(budget)
    names = [shard.name for shard in shards]
    if len(set(names)) != len(names):
        raise ValueError(f"{experiment.name}: shard names repeat: {names}")
    record_experiment(run_dir, experiment, budget, shards, command)
    provenances = {shard.name: shard_provenance(shard.parameters, budget.to_dict(),
                                                metastep.__version__) for shard in shards}
    to_compute, replaced = shards_to_compute(run_dir, experiment.name, shards, provenances)
    stored_work = sum(shard.work for shard in shards) - sum(shard.work for shard in to_compute)
    described = executor.describe()
    checkpoints = shard_checkpoints(checkpoint_root or run_dir.path / "checkpoints",
                                    experiment.name, to_compute, provenances, checkpoint_every)
    with progress_bar(
        sum(shard.work for shard in shards), initial=stored_work, unit="lane-steps",
        desc=experiment.name if title is None else title, enabled=progress,
    ) as bar:
        for shard, table, where in executor.completed(experiment, budget, to_compute, bar,
                                                      checkpoints):
            table = check_table(experiment, shard, table)
            run_dir.write_shard(experiment.name, shard.name, table, provenances[shard.name])
            record_where(run_dir, experiment.name, described, shard.name, where)
            shutil.rmtree(checkpoints.directories[shard.name], ignore_errors=True)
        bar.set_postfix_str("done")
    return ExperimentRun(
        experiment=experiment.name,
        budget=budget,
        computed=len(to_compute),
        reused=len(shards) - len(to_compute),
        seconds=time.perf_counter() - start,
        replaced=tuple(replaced),
    )
