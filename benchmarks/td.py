"""TD speed: SwiftTD and TIDBD on the 19-state random walk, four ways, in one process.

1. a per-step NumPy loop (each method transcribed in NumPy, one step per Python iteration),
2. the authors' C++ SwiftTD (``swifttd`` 0.1.8, ``SwiftTDNonSparse.step``) called once per step
   from Python (SwiftTD only; skipped when the package is absent),
3. ``ms.run`` (one compiled lane),
4. ``ms.sweep`` with many lanes (meta step sizes × seeds in one vmapped computation).

The loops of 1 and 2 read a stream drawn beforehand (``problem.sample``), so they time the learner
alone; the C++ code has one constant discount, so it sees the stream's features and rewards without
its episode ends (the work per step is the same). The compiled paths are timed after a first call
(same program, other seeds), so compilation is excluded and reported separately; their time
includes everything else (drawing the stream, records, the copy of the results to NumPy). The
paths of a method are timed in turn, ``--repeats`` rounds, and each path's fastest round counts:
other processes on the machine then disturb the ratios less (the C++ import is outside the
timings). Targets of the issue: one lane at least 5× the C++ reference, 1,000 lanes at least 100×
the NumPy loop.

    python benchmarks/td.py [--steps 1000000] [--loop-steps 50000] [--lanes 1000] [--repeats 3]
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

NUM_STATES = 19
DISCOUNT = 1.0
TRACE_DECAY = 0.9
INITIAL_STEP_SIZE = 0.05
TIDBD_META_STEP_SIZE = 0.01
SWIFT = dict(initial_step_size=1e-2, meta_step_size=1e-3, step_size_bound=0.1,
             step_size_decay=0.999, min_step_size=1e-10)
RECORD_EVERY = 1_000


def swifttd(meta_step_size: float = SWIFT["meta_step_size"]) -> ms.td.SwiftTD:
    return ms.td.SwiftTD(NUM_STATES, DISCOUNT, TRACE_DECAY,
                         **{**SWIFT, "meta_step_size": meta_step_size})


def tidbd(meta_step_size: float = TIDBD_META_STEP_SIZE) -> ms.td.TDLearner:
    return ms.td.TDLearner(ms.td.tidbd(meta_step_size, INITIAL_STEP_SIZE), NUM_STATES, DISCOUNT,
                           TRACE_DECAY)


LEARNERS = {"SwiftTD": swifttd, "TIDBD": tidbd}


def numpy_tidbd(xs, rewards, discounts) -> float:
    """Semi-gradient TIDBD(λ), one step per iteration; returns the last prediction."""
    n = xs.shape[1]
    w, z, h, previous = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    beta = np.full(n, np.log(INITIAL_STEP_SIZE))
    prediction = 0.0
    for x, reward, gamma in zip(xs, rewards, discounts):
        prediction = w @ x
        delta = reward + gamma * prediction - w @ previous
        beta += TIDBD_META_STEP_SIZE * delta * previous * h
        alpha = np.exp(beta)
        w += alpha * delta * z
        h = h * np.maximum(1 - alpha * previous * z, 0) + alpha * delta * z
        z = gamma * TRACE_DECAY * z + x
        previous = x
    return prediction


def numpy_swifttd(xs, rewards, discounts) -> float:
    """SwiftTD (dense), vectorized over features, one step per iteration."""
    n = xs.shape[1]
    w, z, z_delta, h, h_temp, z_bar, p = (np.zeros(n) for _ in range(7))
    beta = np.full(n, np.log(SWIFT["initial_step_size"]))
    eta, theta = SWIFT["step_size_bound"], SWIFT["meta_step_size"]
    v_old = v_delta = prediction = 0.0
    for x, reward, gamma in zip(xs, rewards, discounts):
        prediction = w @ x
        delta = reward + gamma * prediction - v_old
        delta_w = delta * z - z_delta * v_delta
        w += delta_w
        beta = np.minimum(beta + theta / np.exp(beta) * (delta - v_delta) * p, np.log(eta))
        beta = np.maximum(beta, np.log(SWIFT["min_step_size"]))
        h_old, h = h, h_temp + delta * z_bar - z_delta * v_delta
        decay = gamma * TRACE_DECAY
        z, p, z_bar = decay * z, decay * p, decay * z_bar
        v_delta = delta_w @ x
        alpha = np.exp(beta)
        tau = alpha @ (x * x)
        b = z @ x
        z_delta = min(1.0, eta / tau) * alpha * x
        z = z + z_delta * (1 - b)
        p = p + h_old * x
        z_bar = z_bar + z_delta * (1 - b - z_bar * x)
        h_temp = h - h_old * x * (z - z_delta) - h * z_delta * x
        if tau > eta:
            h = h_temp = z_bar = np.zeros(n)
            beta = beta + np.log(SWIFT["step_size_decay"]) * x * x
        v_old = prediction
    return prediction


def cpp_swifttd(xs, rewards) -> float | None:
    """The authors' C++ SwiftTD, one call per step from Python; None without the package."""
    if reference_package is None:
        return None
    reference = reference_package.SwiftTDNonSparse(
        NUM_STATES, TRACE_DECAY, SWIFT["initial_step_size"], DISCOUNT, 1e-5,
        SWIFT["step_size_bound"], SWIFT["step_size_decay"], SWIFT["meta_step_size"],
        SWIFT["min_step_size"])
    prediction = 0.0
    for x, reward in zip(xs.tolist(), rewards.tolist()):
        prediction = reference.step(x, reward)
    return prediction


NUMPY_LOOPS = {"SwiftTD": numpy_swifttd, "TIDBD": numpy_tidbd}


def timed(function, *args):
    """``(value, seconds)``; the engine returns NumPy arrays, so it has finished."""
    start = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - start


def make_swifttd(meta_step_size):
    """The sweeps' learner factories: one function object each (a second sweep reuses its
    program)."""
    return swifttd(meta_step_size)


def make_tidbd(meta_step_size):
    return tidbd(meta_step_size)


SWEEP_FACTORIES = {"SwiftTD": (make_swifttd, SWIFT["meta_step_size"]),
                   "TIDBD": (make_tidbd, TIDBD_META_STEP_SIZE)}


def rates(name, problem, stream, args):
    """Lane-steps per second of each path for the method ``name`` (None: no C++ reference),
    and the first calls' seconds. The paths are timed in turn, ``args.repeats`` rounds, so that
    a change in the machine's load falls on all of them; each path's fastest round counts."""
    xs = np.asarray(stream.x, np.float64)
    rewards, discounts = np.asarray(stream.y.reward), np.asarray(stream.y.discount)
    make = LEARNERS[name]
    factory, meta_step_size = SWEEP_FACTORIES[name]
    seeds = max(1, args.lanes // 10)
    grid = {"meta_step_size": meta_step_size * np.geomspace(0.1, 10, max(1, args.lanes // seeds))}
    lanes = len(grid["meta_step_size"]) * seeds

    def single_run(seed):
        return ms.run(make(), problem, steps=args.steps, seed=seed, record_every=RECORD_EVERY,
                      progress=False).squared_error

    def many_lanes(first_seed):
        return ms.sweep(factory, problem, grid, seeds=list(range(first_seed, first_seed + seeds)),
                        steps=args.sweep_steps, record_every=RECORD_EVERY,
                        progress=False).squared_error

    # path: (function, its arguments, lane-steps per call)
    paths = {"NumPy per-step loop": (NUMPY_LOOPS[name], (xs, rewards, discounts),
                                     args.loop_steps),
             "ms.run (1 lane)": (single_run, (1,), args.steps),
             f"ms.sweep ({lanes} lanes)": (many_lanes, (seeds,), lanes * args.sweep_steps)}
    if name == "SwiftTD" and reference_package is not None:
        paths["C++ from Python"] = (cpp_swifttd, (xs.astype(np.float32),
                                                  rewards.astype(np.float32)), args.loop_steps)
    firsts = {"run": timed(single_run, 0)[1], "sweep": timed(many_lanes, 0)[1]}
    seconds = {path: float("inf") for path in paths}
    for _ in range(args.repeats):
        for path, (function, arguments, _) in paths.items():
            seconds[path] = min(seconds[path], timed(function, *arguments)[1])
    return {path: work / seconds[path] for path, (_, _, work) in paths.items()}, firsts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000, help="steps of the single run")
    parser.add_argument("--loop-steps", type=int, default=50_000,
                        help="steps of the NumPy and C++ loops")
    parser.add_argument("--lanes", type=int, default=1_000, help="lanes of the sweep")
    parser.add_argument("--sweep-steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds of timings; each path's fastest counts")
    args = parser.parse_args()

    problem = ms.problems.random_walk(NUM_STATES)
    print(f"backend: {jax.default_backend()} ({jax.devices()[0].device_kind}), "
          f"{jax.device_count()} device(s)")
    stream = problem.sample(jax.random.PRNGKey(0), args.loop_steps)
    print(f"{'method':<9}{'path':<26}{'lane-steps/s':>15}{'vs NumPy':>10}{'vs C++':>9}")
    firsts, reference_rate = [], None
    for name in LEARNERS:
        by_path, first = rates(name, problem, stream, args)
        reference_rate = by_path.pop("C++ from Python", reference_rate)
        numpy_rate = by_path["NumPy per-step loop"]
        if name == "SwiftTD" and reference_rate is not None:
            by_path = {"NumPy per-step loop": numpy_rate, "C++ from Python": reference_rate,
                       **by_path}
        for path, rate in by_path.items():
            versus_cpp = (f"{rate / reference_rate:>9.1f}" if name == "SwiftTD"
                          and reference_rate else f"{'':>9}")
            print(f"{name:<9}{path:<26}{rate:>15,.0f}{rate / numpy_rate:>10.1f}{versus_cpp}")
        firsts.append(f"{name}: run {first['run']:.2f} s, sweep {first['sweep']:.2f} s")
    if reference_rate is None:
        print("the authors' swifttd package is not installed: no C++ reference")
    print("first calls (with compilation): " + "; ".join(firsts))


if __name__ == "__main__":
    main()
