"""Scenarios of the Ray executor, run by tests/report/test_ray_executor.py inside a private network
namespace (loopback only): ``python ray_scenarios.py SCENARIO DIRECTORY [ADDRESS]``.

Prints one JSON line with what the test checks. A real Ray instance runs the shards: started here
(``ray.init``), or the cluster at ADDRESS.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from metastep.experiments import Budget, Experiment, Shard
from metastep.report import RunDirectory, run_experiment
from metastep.report.executors import RayExecutor, ShardFailedError


# The environment's commands (ray, metastep), beside its Python: found whether or not it is active.
BIN = Path(sys.executable).parent


def note_attempt(path: Path) -> int:
    """Append one line to ``path``; the number of attempts so far."""
    with open(path, "a") as file:
        file.write(f"{os.getpid()}\n")
    return len(path.read_text().splitlines())


def table(value: float):
    return pd.DataFrame({"method": ["m"], "seed": [0], "step": [1], "value": [value]})


def faulty_experiment(directory: Path) -> Experiment:
    """Three shards: one fine, one whose worker dies on its first attempt, one that raises."""

    def dies_once():
        if note_attempt(directory / "dies-once.attempts") == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return table(2.0)

    def raises():
        note_attempt(directory / "raises.attempts")
        raise ValueError("bad data in shard raises")

    def shards(budget):
        del budget
        return [Shard("fine", lambda: table(1.0), {}, 1.0),
                Shard("dies-once", dies_once, {}, 1.0),
                Shard("raises", raises, {}, 1.0)]

    smoke = Budget(steps=1, seeds=1)
    return Experiment(
        name="faulty", description="shards that fail", budgets=dict.fromkeys(
            ("smoke", "quick", "full"), smoke),
        shards=shards, summarize=lambda tables, budget: {}, figures=lambda tables, budget: {},
        published=[], explanation="",
    )


def same_tables(first: Path, second: Path, name: str) -> dict[str, bool]:
    """Whether each stored shard of ``name`` is the same file, byte for byte, in both."""
    files = sorted((first / "results" / name).glob("*.parquet"))
    return {path.stem: path.read_bytes() == (second / "results" / name / path.name).read_bytes()
            for path in files}


def numbers_experiment() -> Experiment:
    """Two shards of seeded random numbers (no compilation: the fast test stays fast; the slow
    test compares a real experiment's tables)."""

    def numbers(seed):
        values = np.random.default_rng(seed).normal(size=50)
        return pd.DataFrame({"method": "m", "seed": seed, "step": np.arange(50), "value": values})

    def shards(budget):
        return [Shard.of_call(f"seed-{seed}", numbers, work=50.0, seed=seed)
                for seed in budget.seed_list]

    return Experiment(
        name="numbers", description="seeded numbers",
        budgets=dict.fromkeys(("smoke", "quick", "full"), Budget(steps=50, seeds=2)),
        shards=shards, summarize=lambda tables, budget: {}, figures=lambda tables, budget: {},
        published=[], explanation="",
    )


def identical_and_failures(directory: Path, address: str | None) -> dict:
    experiment = numbers_experiment()
    budget = experiment.budget("smoke")
    in_process, on_ray = directory / "in-process", directory / "ray"
    run_experiment(RunDirectory(in_process), experiment, budget, progress=False)
    executor = RayExecutor(address)
    try:
        run = run_experiment(RunDirectory(on_ray), experiment, budget, progress=False,
                             executor=executor)
        faulty = faulty_experiment(directory)
        try:
            run_experiment(RunDirectory(directory / "faulty"), faulty, faulty.budget("smoke"),
                           progress=False, executor=executor)
            failure = None
        except ShardFailedError as error:
            failure = str(error)
        config = json.loads((on_ray / "config.json").read_text())["experiments"]["numbers"]
    finally:
        executor.close()
    return {
        "computed": run.computed,
        "same": same_tables(in_process, on_ray, "numbers"),
        "executor": config["executor"],
        "ran_on": sorted(config["ran_on"]),
        "failure": failure,
        "stored_faulty": sorted(p.stem for p in (directory / "faulty/results/faulty").glob(
            "*.parquet")),
        "dies_once_attempts": len((directory / "dies-once.attempts").read_text().split()),
        "raises_attempts": len((directory / "raises.attempts").read_text().split()),
    }


def cluster_cli_kill_and_resume(directory: Path, address: str | None) -> dict:
    """A ``ray start --head`` cluster that the CLI joins by address; the driver killed with
    SIGKILL once a shard is stored, then the same command run again."""
    del address
    port = "6391"
    # `ray start` (Ray >= 2.59) makes the cluster ask for its token; the CLI joins with it.
    os.environ["RAY_AUTH_MODE"] = "token"
    subprocess.run([BIN / "ray", "start", "--head", f"--port={port}", "--num-cpus=2",
                    "--include-dashboard=false", "--disable-usage-stats"],
                   check=True, capture_output=True)
    try:
        command = [BIN / "metastep", "run", "weight-flipping", "--budget", "smoke",
                   "--executor", "ray", "--ray-address", f"127.0.0.1:{port}",
                   "--out", str(directory / "ray")]
        shards = directory / "ray" / "results" / "weight-flipping"
        driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        while not list(shards.glob("*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.05)
        driver.kill()
        driver.wait()
        before_resume = {path.name: path.stat().st_ino for path in shards.glob("*.parquet")}
        resumed = subprocess.run(command, capture_output=True, text=True)
    finally:
        subprocess.run([BIN / "ray", "stop", "--force"], capture_output=True)
    subprocess.run([BIN / "metastep", "run", "weight-flipping", "--budget", "smoke", "--out",
                    str(directory / "in-process")], check=True, capture_output=True)
    after = {path.name: path.stat().st_ino for path in shards.glob("*.parquet")}
    config = json.loads((directory / "ray/config.json").read_text())["experiments"]
    return {
        "resumed_status": resumed.returncode,
        "resumed_stderr": resumed.stderr[-2000:],
        "stored_before_resume": sorted(before_resume),
        "kept": [name for name, inode in before_resume.items() if after.get(name) == inode],
        "same": same_tables(directory / "in-process", directory / "ray", "weight-flipping"),
        "executor": config["weight-flipping"]["executor"],
        "ran_on": sorted(config["weight-flipping"]["ran_on"]),
    }


SCENARIOS = {"identical_and_failures": identical_and_failures,
             "cluster_cli_kill_and_resume": cluster_cli_kill_and_resume}

if __name__ == "__main__":
    scenario, out = sys.argv[1], Path(sys.argv[2])
    address = sys.argv[3] if len(sys.argv) > 3 else None
    print(json.dumps(SCENARIOS[scenario](out, address)))
