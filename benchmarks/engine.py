"""Engine speed: IDBD on Sutton's weight-flipping task, three ways, in one process.

1. a per-step NumPy loop (data drawn and IDBD updated one example at a time, as a plain
   transcription would do it),
2. ``ms.run`` (one compiled lane),
3. ``ms.sweep`` with many lanes (configurations × seeds in one vmapped computation).

Prints lane-steps per second and the ratios to the NumPy loop, all measured in this process. Each
compiled path is timed on its second call (another seed: the engine reuses the compiled program),
so compilation is excluded (and reported separately), and so is the overhead of a second
``ms.run`` of 1,000 steps with another seed or another meta step size: its time beyond that of
its steps at the 1M-step run's rate (the host side: checks, cache look-up, dispatch, copies).

    python benchmarks/engine.py [--steps 1000000] [--lanes 1000] [--sweep-steps 20000]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import metastep as ms

META_STEP_SIZE = 0.001
INITIAL_STEP_SIZE = 0.05


def numpy_loop(steps: int, seed: int = 0) -> float:
    """Weight flipping + IDBD, one example per Python iteration; returns the final MSE bin."""
    rng = np.random.default_rng(seed)
    n, relevant, flip_every = 20, 5, 20
    target = np.zeros(n)
    target[:relevant] = rng.choice([-1.0, 1.0], size=relevant)
    weights, trace = np.zeros(n), np.zeros(n)
    log_step_size = np.full(n, np.log(INITIAL_STEP_SIZE))
    squared_error_sum = 0.0
    for t in range(steps):
        if t and t % flip_every == 0:
            target[rng.integers(relevant)] *= -1.0
        x = rng.normal(size=n)
        error = target @ x - weights @ x
        log_step_size += META_STEP_SIZE * error * x * trace
        step_size = np.exp(log_step_size)
        weights += step_size * error * x
        trace = trace * np.maximum(1.0 - step_size * x * x, 0.0) + step_size * error * x
        squared_error_sum += error * error
    return squared_error_sum / steps


def timed(function, *args):
    """Seconds taken by ``function(*args)``; the engine returns NumPy arrays, so it has finished."""
    start = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - start


def idbd_learner(meta_step_size: float = META_STEP_SIZE):
    return ms.LinearLearner(ms.idbd(meta_step_size, INITIAL_STEP_SIZE), 20)


def second_call_overhead(problem, steps: int = 1_000) -> dict[str, float]:
    """Seconds of a second ``ms.run`` of ``steps`` steps beyond a first one (which compiles),
    with another seed and with another meta step size; the best of a few calls."""
    def call(seed, meta_step_size):
        return timed(lambda: ms.run(idbd_learner(meta_step_size), problem, steps=steps,
                                    seed=seed, record_every=steps, progress=False))[1]

    first = call(0, META_STEP_SIZE)
    return {"first call": first,
            "another seed": min(call(seed, META_STEP_SIZE) for seed in range(1, 6)),
            "another meta step size": min(call(0, META_STEP_SIZE * k) for k in range(2, 7))}


def make_idbd_learner(meta_step_size):
    """The sweep's learner factory: one function object, so a second sweep reuses its program."""
    return idbd_learner(meta_step_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000, help="steps of the single run")
    parser.add_argument("--numpy-steps", type=int, default=100_000)
    parser.add_argument("--lanes", type=int, default=1_000, help="lanes of the sweep")
    parser.add_argument("--sweep-steps", type=int, default=20_000)
    args = parser.parse_args()

    problem = ms.problems.weight_flipping()
    print(f"backend: {jax.default_backend()} ({jax.devices()[0].device_kind}), "
          f"{jax.device_count()} device(s)")

    _, numpy_seconds = timed(numpy_loop, args.numpy_steps)
    numpy_rate = args.numpy_steps / numpy_seconds

    overhead = second_call_overhead(problem)

    def single_run():
        return ms.run(idbd_learner(), problem, steps=args.steps, seed=0, record_every=1_000,
                      progress=False).squared_error

    _, first = timed(single_run)
    _, run_seconds = timed(single_run)
    run_rate = args.steps / run_seconds

    seeds = max(1, args.lanes // 10)
    meta_step_sizes = np.geomspace(1e-4, 1e-2, max(1, args.lanes // seeds))

    def many_lanes(seed_offset):
        return ms.sweep(
            make_idbd_learner, problem, grid={"meta_step_size": meta_step_sizes},
            seeds=list(range(seed_offset, seed_offset + seeds)), steps=args.sweep_steps,
            record_every=1_000, progress=False,
        ).squared_error

    _, sweep_first = timed(many_lanes, 0)
    _, sweep_seconds = timed(many_lanes, seeds)  # other seeds: the same program
    lanes = len(meta_step_sizes) * seeds
    sweep_rate = lanes * args.sweep_steps / sweep_seconds

    print(f"{'path':<28}{'lane-steps/s':>16}{'vs NumPy':>10}")
    print(f"{'NumPy per-step loop':<28}{numpy_rate:>16,.0f}{1.0:>10.1f}")
    print(f"{'ms.run (1 lane)':<28}{run_rate:>16,.0f}{run_rate / numpy_rate:>10.1f}")
    print(f"{f'ms.sweep ({lanes} lanes)':<28}{sweep_rate:>16,.0f}{sweep_rate / numpy_rate:>10.1f}")
    print(f"first calls (with compilation): run {first:.2f} s, sweep {sweep_first:.2f} s")
    compute = 1_000 / run_rate
    print(f"ms.run of 1,000 steps: first call {overhead['first call']:.3f} s; a second call "
          f"beyond the {1e3 * compute:.2f} ms of its steps: "
          + ", ".join(f"{name} {1e3 * (seconds - compute):.1f} ms"
                      for name, seconds in overhead.items() if name != "first call"))


if __name__ == "__main__":
    main()
