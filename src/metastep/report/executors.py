"""Where the shards of a run are computed: in this process, or as tasks of a Ray cluster.

An executor computes shards and hands each table back to the runner as it finishes; only the
runner (the driver) writes the run directory, so a cluster needs no shared file system and a
run directory has one writer whatever the executor. Tables come back in completion order.

* :class:`InProcess` (the default): one shard after the other, in this process, with progress
  inside each shard.
* :class:`RayExecutor`: every shard not yet stored becomes a Ray task
  (``pip install -e ".[cluster]"``). Without an address it starts a local Ray instance sized to
  this machine; with one (``HOST:PORT``, or ``auto`` for the cluster this machine belongs to) it
  connects to that cluster. A task whose worker dies (the process killed, the node lost) is
  retried up to ``max_retries`` times; a task that raises (a bug, bad data) is not retried: the
  run fails with that error, after storing every other shard that finishes.

A worker rebuilds its shard from the experiment, the budget and the shard's name (a registered
experiment travels by name), so the task carries no closure of the driver. While it computes, a
shard's engine calls save their work every few minutes to its checkpoint directory
(:class:`Checkpoints`, by default under the run directory): a shard computed again after its
process or node died continues from there. On a cluster of several machines the checkpoint
directory must be on storage that every node reaches at the same path (else a retried shard
resumes only on the node that saved it).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metastep._checkpoints import DEFAULT_EVERY_SECONDS, checkpointing
from metastep.experiments._base import Budget, Experiment, Shard
from metastep.report.progress import shard_progress

EXECUTORS = ("in-process", "ray")
# Retries of a task whose worker died: enough for a preempted node or two, not a crash loop.
DEFAULT_MAX_RETRIES = 3


class ExecutorError(RuntimeError):
    """The executor cannot run: Ray is missing, or its cluster cannot be reached."""


class ShardFailedError(RuntimeError):
    """A shard's computation raised: the message names the shard and the error."""


@dataclass(frozen=True)
class Checkpoints:
    """Where the shards' engine calls save their work as they go (:mod:`metastep._checkpoints`),
    and how often: a killed shard computed again continues from its last save."""

    directories: dict[str, Path]  # shard name -> its checkpoint directory
    every_seconds: float = DEFAULT_EVERY_SECONDS

    def around(self, shard: str):
        """The context in which ``shard`` computes."""
        directory = self.directories.get(shard)
        if directory is None:
            return contextlib.nullcontext()
        return checkpointing(directory, self.every_seconds)


NO_CHECKPOINTS = Checkpoints({})


@dataclass(frozen=True)
class ShardTask:
    """What a worker needs to compute one shard."""

    experiment: str | Experiment  # a registered experiment's name, or the experiment itself
    budget: dict[str, Any]
    shard: str
    checkpoints: Checkpoints = NO_CHECKPOINTS


def task_for(experiment: Experiment, budget: Budget, shard: Shard,
             checkpoints: Checkpoints) -> ShardTask:
    from metastep import experiments

    registered = experiments.EXPERIMENTS.get(experiment.name) is experiment
    return ShardTask(experiment.name if registered else experiment, budget.to_dict(), shard.name,
                     checkpoints)


def where_computed(seconds: float) -> dict[str, Any]:
    """Where and how long a shard ran (host, process, Ray node): recorded in ``config.json``."""
    where = {"host": socket.gethostname(), "pid": os.getpid(), "seconds": round(seconds, 3)}
    ray = sys.modules.get("ray")  # imported only where Ray runs the shard
    if ray is not None and ray.is_initialized():
        where["node"] = ray.get_runtime_context().get_node_id()
    return where


def compute_shard(task: ShardTask) -> tuple[Any, dict[str, Any]]:
    """Compute one shard from its task: ``(table, where)``. Runs on a worker."""
    from metastep import experiments

    experiment = task.experiment
    if isinstance(experiment, str):
        experiment = experiments.get(experiment)
    budget = Budget.from_dict(task.budget)
    shards = {shard.name: shard for shard in experiment.shards(budget)}
    if task.shard not in shards:
        raise ValueError(f"{experiment.name} has no shard {task.shard!r} at budget {task.budget}")
    start = time.perf_counter()
    with task.checkpoints.around(task.shard):
        table = shards[task.shard].compute()
    return table, where_computed(time.perf_counter() - start)


class InProcess:
    """Compute the shards one after the other in this process."""

    name = "in-process"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "host": socket.gethostname(), "cpus": os.cpu_count()}

    def completed(self, experiment: Experiment, budget: Budget, shards: list[Shard], bar,
                  checkpoints: Checkpoints = NO_CHECKPOINTS,
                  ) -> Iterator[tuple[Shard, Any, dict[str, Any]]]:
        del experiment, budget  # the shards carry their computation
        for shard in shards:
            bar.set_postfix_str(f"shard {shard.name}")
            # Moves with the engine's chunks, then to exactly the shard's work once stored.
            with shard_progress(bar, shard.work, shard.engine_lane_steps):
                start = time.perf_counter()
                with checkpoints.around(shard.name):
                    table = shard.compute()
                where = where_computed(time.perf_counter() - start)
                yield shard, table, where

    def close(self) -> None:
        pass


def import_ray():
    try:
        import ray
    except ImportError as error:
        raise ExecutorError(
            "--executor ray needs Ray: pip install -e \".[cluster]\" (or pip install ray)"
        ) from error
    return ray


class RayExecutor:
    """Compute the shards as tasks of a Ray cluster.

    Args:
      address: a running cluster's ``HOST:PORT`` (or ``"auto"``); None starts a local Ray
        instance sized to this machine, shut down again by :meth:`close`.
      max_retries: retries of a task whose worker process or node died.
      cpus_per_shard: CPUs that Ray reserves for each task.
      gpus_per_shard: GPUs per task; default 1 when the cluster has GPUs (a GPU node takes the
        shards), else 0.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, max_retries: int = DEFAULT_MAX_RETRIES,
                 cpus_per_shard: float = 1, gpus_per_shard: float | None = None):
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"`max_retries` must be an integer >= 0, got {max_retries!r}")
        if not cpus_per_shard > 0:
            raise ValueError(f"`cpus_per_shard` must be > 0, got {cpus_per_shard!r}")
        if gpus_per_shard is not None and not gpus_per_shard >= 0:
            raise ValueError(f"`gpus_per_shard` must be >= 0, got {gpus_per_shard!r}")
        self.ray = import_ray()
        self.address = address
        self.max_retries = max_retries
        self.cpus_per_shard = cpus_per_shard
        self.started_here = not self.ray.is_initialized()
        if self.started_here:
            # Workers log to their own files; the driver's terminal keeps the progress bar.
            try:
                self.ray.init(address=address, include_dashboard=False, log_to_driver=False,
                              configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as error:
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                hint = "" if not address or os.environ.get("RAY_AUTH_MODE") else (
                    " (a cluster started by `ray start` of Ray >= 2.59 asks for its token: "
                    "export RAY_AUTH_MODE=token, with the token in ~/.ray/auth_token or "
                    "RAY_AUTH_TOKEN)"
                )
                raise ExecutorError(f"cannot start or reach {where}: {error}{hint}") from error
        resources = self.ray.cluster_resources()
        self.gpus_per_shard = (
            (1 if resources.get("GPU", 0) > 0 else 0) if gpus_per_shard is None
            else gpus_per_shard
        )
        self.remote_compute = self.ray.remote(compute_shard).options(
            num_cpus=cpus_per_shard, num_gpus=self.gpus_per_shard,
            max_retries=max_retries, retry_exceptions=False,
        )

    def describe(self) -> dict[str, Any]:
        resources = self.ray.cluster_resources()
        return {
            "name": self.name,
            "address": self.address or "local",
            "nodes": sum(1 for node in self.ray.nodes() if node.get("Alive")),
            "resources": {key: resources[key] for key in ("CPU", "GPU", "memory")
                          if key in resources},
            "cpus_per_shard": self.cpus_per_shard,
            "gpus_per_shard": self.gpus_per_shard,
            "max_retries": self.max_retries,
        }

    def completed(self, experiment: Experiment, budget: Budget, shards: list[Shard], bar,
                  checkpoints: Checkpoints = NO_CHECKPOINTS,
                  ) -> Iterator[tuple[Shard, Any, dict[str, Any]]]:
        pending = {
            self.remote_compute.remote(task_for(experiment, budget, shard, checkpoints)): shard
            for shard in shards
        }
        bar.set_postfix_str(f"{len(pending)} shards submitted")
        failures = []
        while pending:
            (ready,), _ = self.ray.wait(list(pending), num_returns=1)
            shard = pending.pop(ready)
            try:
                table, where = self.ray.get(ready)
            except self.ray.exceptions.RayError as error:  # it raised, or its retries ran out
                failures.append((shard, error))
                continue
            bar.update(shard.work)
            bar.set_postfix_str(f"{len(pending)} shards running or queued")
            yield shard, table, where
        if failures:
            shard, error = failures[0]
            cause = getattr(error, "cause", None) or error
            names = ", ".join(failed.name for failed, _ in failures)
            raise ShardFailedError(
                f"{experiment.name}: shard {shard.name} failed: {type(cause).__name__}: {cause} "
                f"(failed shards: {names}; every other shard is stored)"
            ) from cause

    def close(self) -> None:
        if self.started_here and self.ray.is_initialized():
            self.ray.shutdown()


def make_executor(name: str = "in-process", address: str | None = None):
    """The executor called ``name`` (one of :data:`EXECUTORS`)."""
    if name == "in-process":
        if address is not None:
            raise ExecutorError("--ray-address needs --executor ray")
        return InProcess()
    if name == "ray":
        return RayExecutor(address)
    raise ExecutorError(f"`executor` must be one of {EXECUTORS}, got {name!r}")
