"""Scale: the engine at many lanes, and the projected wall time of every full budget.

1. The linear IDBD sweep on weight flipping at 1k, 10k and 100k lanes, in lane-steps per second
   (each timed on a second call: compilation excluded).
2. Every experiment's full-budget shards, run with fewer steps and seeds, twice: the rate of the
   second run in lane-steps per second (the engine reuses its compiled programs; for the
   continual benchmarks a lane-step is one method's step of the roster, at the full settings'
   network sizes). Parts of a budget that do not shorten with ``--steps`` (a fixed window)
   count at their own size.
3. The projected wall time of each full budget from those rates: on one worker, and on N workers
   that each take the longest shard left (the shards of a budget are its units of work: a
   budget with few large shards cannot use many workers).

On an accelerator, part 1 also runs on this machine's CPU in the same process, for the ratio.

    python benchmarks/scale.py [--lanes 1000 10000 100000] [--steps 2000]
                               [--probe-steps 4000] [--workers 1 4 16 64] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import heapq
import time

import jax
import numpy as np

import metastep as ms
from metastep import experiments

INITIAL_STEP_SIZE = 0.05
SEEDS_PER_CONFIGURATION = 10


def make_idbd_learner(meta_step_size):
    return ms.LinearLearner(ms.idbd(meta_step_size, INITIAL_STEP_SIZE), 20)


def sweep_rate(lanes: int, steps: int) -> float:
    """Lane-steps per second of a sweep of ``lanes`` lanes (configurations × 10 seeds)."""
    seeds = min(lanes, SEEDS_PER_CONFIGURATION)
    grid = {"meta_step_size": np.geomspace(1e-4, 1e-2, max(1, lanes // seeds))}
    problem = ms.problems.weight_flipping()

    def call(first_seed):
        start = time.perf_counter()
        ms.sweep(make_idbd_learner, problem, grid,
                 seeds=list(range(first_seed, first_seed + seeds)), steps=steps,
                 record_every=steps, progress=False)
        return time.perf_counter() - start

    call(0)  # compiles
    return len(grid["meta_step_size"]) * seeds * steps / call(seeds)


def compute_shards(shards) -> tuple[float, float]:
    """(lane-steps, seconds) of computing ``shards``."""
    start = time.perf_counter()
    for shard in shards:
        shard.compute()
    return sum(shard.work for shard in shards), time.perf_counter() - start


def probe_rate(experiment, steps: int, seeds: int) -> float:
    """Lane-steps per second of the full budget's shards, shortened to ``steps`` and ``seeds``:
    computed twice, the second time timed (the engine's programs are then compiled, as they are
    for all but the first shards of a long run)."""
    shards = experiment.shards(experiment.budget("full", steps=steps, seeds=seeds))
    compute_shards(shards)
    work, seconds = compute_shards(shards)
    return work / seconds


def makespan(durations: list[float], workers: int) -> float:
    """The wall time of ``durations`` on ``workers`` that each take the longest job left."""
    finish = [0.0] * workers
    for duration in sorted(durations, reverse=True):
        heapq.heapreplace(finish, finish[0] + duration)
    return max(finish)


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 360 else f"{seconds / 60:.1f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lanes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--steps", type=int, default=2_000, help="steps of each lane (part 1)")
    parser.add_argument("--probe-steps", type=int, default=4_000)
    parser.add_argument("--probe-seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--only", nargs="+", choices=list(experiments.EXPERIMENTS))
    args = parser.parse_args()
    device = jax.devices()[0]
    print(f"backend: {jax.default_backend()} ({device.device_kind}), {jax.device_count()} "
          "device(s)")

    cpu = jax.devices("cpu")[0]
    print(f"\n1. linear IDBD sweep on weight flipping, {args.steps} steps per lane")
    header = f"{'lanes':>8}{'lane-steps/s':>16}"
    if device.platform != "cpu":
        header += f"{'CPU lane-steps/s':>18}{'ratio':>8}"
    print(header)
    for lanes in args.lanes:
        rate = sweep_rate(lanes, args.steps)
        line = f"{lanes:>8,}{rate:>16,.0f}"
        if device.platform != "cpu":
            with jax.default_device(cpu):
                cpu_rate = sweep_rate(lanes, args.steps)
            line += f"{cpu_rate:>18,.0f}{rate / cpu_rate:>8.1f}"
        print(line, flush=True)

    names = args.only or list(experiments.EXPERIMENTS)
    print(f"\n2-3. full budgets: rate at {args.probe_steps} steps and {args.probe_seeds} seeds, "
          "and the projected wall time on N workers")
    print(f"{'experiment':<28}{'shards':>7}{'lane-steps':>12}{'lane-steps/s':>14}"
          + "".join(f"{f'{n} worker' + ('s' if n > 1 else ''):>12}" for n in args.workers))
    total = dict.fromkeys(args.workers, 0.0)
    for name in names:
        experiment = experiments.get(name)
        if experiment.unavailable() is not None:
            print(f"{name:<28} skipped: {experiment.unavailable()}")
            continue
        rate = probe_rate(experiment, args.probe_steps, args.probe_seeds)
        shards = experiment.shards(experiment.budget("full"))
        durations = [shard.work / rate for shard in shards]
        spans = {n: makespan(durations, n) for n in args.workers}
        for n in args.workers:
            total[n] += spans[n]
        print(f"{name:<28}{len(shards):>7}{sum(s.work for s in shards):>12.3g}{rate:>14,.0f}"
              + "".join(f"{hours(spans[n]):>12}" for n in args.workers), flush=True)
    print(f"{'all, one after the other':<61}" + "".join(f"{hours(total[n]):>12}"
                                                        for n in args.workers))


if __name__ == "__main__":
    main()
