"""Sparse against dense SwiftTD: tile-coded Mountain Car, few active features out of many.

Each step of the tile coder has ``num_tilings`` = 8 active features out of
``8 (tiles_per_dimension + 1)²``; this script times, in one process, for each tiling size:

1. ``ms.run`` of ``ms.td.SwiftTD`` on the binary feature vectors (dense),
2. ``ms.run`` of ``ms.td.SparseSwiftTD`` on the active indices (``active_indices=True``),
   its eligible set's capacity ``--capacity`` (at most the number of features),
3. the authors' C++ ``SwiftTDNonSparse`` and ``SwiftTDBinaryFeatures`` (``swifttd`` 0.1.8), one
   call per step from Python over the same stream (skipped when the package is absent).

The compiled paths are timed after a first call (compilation excluded), each path's fastest of
``--repeats`` rounds counts. A sparse run whose eligible set overflows would report a divergence:
the script checks that it does not.

    python benchmarks/sparse_swifttd.py [--tiles 8 32] [--steps 20000] [--loop-steps 5000]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import metastep as ms

try:  # imported here: the import is no part of the reference's time
    import swifttd as reference_package
except ImportError:
    reference_package = None

NUM_TILINGS = 8
DISCOUNT = 1.0
TRACE_DECAY = 0.9
TRACE_CUTOFF = 1e-5
SWIFT = dict(initial_step_size=1e-2, meta_step_size=1e-3, step_size_bound=0.1,
             step_size_decay=0.999, min_step_size=1e-10)
NUM_EPISODES = 50
RECORD_EVERY = 1_000


def problem(tiles: int, active_indices: bool) -> ms.problems.Problem:
    return ms.problems.mountain_car(NUM_TILINGS, tiles, num_episodes=NUM_EPISODES,
                                    active_indices=active_indices)


def cpp_loop(make, inputs, rewards):
    """One ``step`` call per step; returns the last prediction."""
    reference = make()
    prediction = 0.0
    for x, reward in zip(inputs, rewards):
        prediction = reference.step(x, reward)
    return prediction


def best_seconds(function, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def rates(tiles: int, args) -> dict[str, float]:
    """Steps per second of each path for tilings of ``tiles`` tiles per dimension."""
    dense_problem, sparse_problem = problem(tiles, False), problem(tiles, True)
    n = dense_problem.num_features
    capacity = min(args.capacity, n)
    dense = ms.td.SwiftTD(n, DISCOUNT, TRACE_DECAY, **SWIFT)
    sparse = ms.td.SparseSwiftTD(n, DISCOUNT, TRACE_DECAY, trace_cutoff=TRACE_CUTOFF,
                                 capacity=capacity, **SWIFT)

    def run(learner, stream_problem):
        result = ms.run(learner, stream_problem, steps=args.steps, seed=1,
                        record_every=RECORD_EVERY, progress=False)
        if result.diverged_at:
            raise RuntimeError(f"the run diverged at step {result.diverged_at} (capacity "
                               f"{capacity} too small?)")
        return result

    paths = {"ms.run, dense SwiftTD": lambda: run(dense, dense_problem),
             f"ms.run, SparseSwiftTD (capacity {capacity})": lambda: run(sparse,
                                                                          sparse_problem)}
    work = {path: args.steps for path in paths}
    if reference_package is not None:
        stream = sparse_problem.sample(jax.random.PRNGKey(0), args.loop_steps)
        indices = np.asarray(stream.x).tolist()
        rewards = np.asarray(stream.y.reward, np.float32).tolist()
        rows = np.zeros((args.loop_steps, n), np.float32)
        np.put_along_axis(rows, np.asarray(stream.x), 1.0, axis=1)
        rows = rows.tolist()
        settings = (TRACE_DECAY, SWIFT["initial_step_size"], DISCOUNT, TRACE_CUTOFF,
                    SWIFT["step_size_bound"], SWIFT["step_size_decay"], SWIFT["meta_step_size"],
                    SWIFT["min_step_size"])
        paths["C++ SwiftTDNonSparse"] = lambda: cpp_loop(
            lambda: reference_package.SwiftTDNonSparse(n, *settings), rows, rewards)
        paths["C++ SwiftTDBinaryFeatures"] = lambda: cpp_loop(
            lambda: reference_package.SwiftTDBinaryFeatures(n, *settings), indices, rewards)
        work.update({"C++ SwiftTDNonSparse": args.loop_steps,
                     "C++ SwiftTDBinaryFeatures": args.loop_steps})
    for path in paths:
        if path.startswith("ms.run"):
            paths[path]()  # compiles
    return {path: work[path] / best_seconds(paths[path], args.repeats) for path in paths}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, nargs="+", default=[8, 32],
                        help="tiles per dimension of each tiling (one row group each)")
    parser.add_argument("--steps", type=int, default=20_000, help="steps of each ms.run")
    parser.add_argument("--loop-steps", type=int, default=5_000, help="steps of the C++ loops")
    parser.add_argument("--capacity", type=int, default=1_024,
                        help="the sparse learner's eligible-set capacity")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"backend: {jax.default_backend()}; {NUM_TILINGS} active features per step")
    print(f"{'features':>9}  {'path':<38}{'steps/s':>12}{'vs dense':>10}")
    for tiles in args.tiles:
        by_path = rates(tiles, args)
        dense_rate = by_path["ms.run, dense SwiftTD"]
        n = NUM_TILINGS * (tiles + 1) ** 2
        for path, rate in by_path.items():
            print(f"{n:>9}  {path:<38}{rate:>12,.0f}{rate / dense_rate:>10.1f}")
    if reference_package is None:
        print("the authors' swifttd package is not installed: no C++ reference")


if __name__ == "__main__":
    main()
