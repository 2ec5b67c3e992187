"""The Ray executor on this machine: an experiment on a local Ray instance against in-process, and
the overhead of one shard sent through Ray (submission to stored).

1. ``EXPERIMENT`` (default weight-flipping) at ``BUDGET`` (default quick) into a fresh run
   directory, in this process, then on a local Ray instance with ``--workers`` CPUs (one shard
   per CPU at a time); wall times, and whether every stored table is the same file byte for byte.
2. A one-shard experiment whose shard returns at once, run ``--repeats`` times into fresh
   directories, in process and on Ray: the median wall time of each; their difference is what
   Ray adds to a shard (the task's round trip and the table sent back), the runner's own work
   (checks, storing, ``config.json``) counted on both sides.

Ray binds to the machine's network address: on a machine where that must not happen, run this in
a private network namespace (as root: ``unshare --net bash -c 'ip link set lo up && python
benchmarks/cluster.py'``).

    python benchmarks/cluster.py [--experiment weight-flipping] [--budget quick] [--workers 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from metastep import experiments
from metastep.experiments import Budget, Experiment, Shard
from metastep.report import RunDirectory, run_experiment
from metastep.report.executors import RayExecutor


def instant_table():
    return pd.DataFrame({"method": ["none"], "seed": [0], "step": [1], "value": [0.0]})


def one_shard_experiment() -> Experiment:
    budget = Budget(steps=1, seeds=1)
    return Experiment(
        name="one-shard", description="a shard that returns at once",
        budgets=dict.fromkeys(("smoke", "quick", "full"), budget),
        shards=lambda budget: [Shard("instant", instant_table, {}, 1.0)],
        summarize=lambda tables, budget: {}, figures=lambda tables, budget: {},
        published=[], explanation="",
    )


def timed_run(directory: Path, experiment, budget, executor=None) -> float:
    start = time.perf_counter()
    run_experiment(RunDirectory(directory), experiment, budget, progress=False,
                   executor=executor)
    return time.perf_counter() - start


def same_files(first: Path, second: Path) -> bool:
    files = sorted(first.glob("results/*/*.parquet"))
    return bool(files) and all(
        path.read_bytes() == (second / path.relative_to(first)).read_bytes() for path in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="weight-flipping",
                        choices=list(experiments.EXPERIMENTS))
    parser.add_argument("--budget", default="quick", choices=["smoke", "quick", "full"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    import ray

    experiment = experiments.get(args.experiment)
    budget = experiment.budget(args.budget)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        in_process = timed_run(scratch / "in-process", experiment, budget)
        start = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        started = time.perf_counter() - start
        executor = RayExecutor()
        on_ray = timed_run(scratch / "ray", experiment, budget, executor)
        same = same_files(scratch / "in-process", scratch / "ray")
        print(f"1. {args.experiment} at the {args.budget} budget "
              f"({len(experiment.shards(budget))} shards)")
        print(f"   in process          {in_process:8.1f} s")
        print(f"   Ray, {args.workers} workers      {on_ray:8.1f} s  ({in_process / on_ray:.2f}x; "
              f"Ray started in {started:.1f} s beforehand)")
        print(f"   tables byte for byte the same: {same}")

        toy = one_shard_experiment()
        toy_budget = toy.budget("smoke")
        for path in ("warm-up-local", "warm-up-ray"):  # imports, the first worker processes
            timed_run(scratch / path, toy, toy_budget,
                      executor if path.endswith("ray") else None)
        local = [timed_run(scratch / f"local-{i}", toy, toy_budget) for i in range(args.repeats)]
        remote = [timed_run(scratch / f"ray-{i}", toy, toy_budget, executor)
                  for i in range(args.repeats)]
        executor.close()
        ray.shutdown()
    local_median, remote_median = statistics.median(local), statistics.median(remote)
    print(f"2. one instant shard, median of {args.repeats}: in process {1e3 * local_median:.0f} "
          f"ms, on Ray {1e3 * remote_median:.0f} ms: Ray adds "
          f"{1e3 * (remote_median - local_median):.0f} ms per shard")


if __name__ == "__main__":
    main()
