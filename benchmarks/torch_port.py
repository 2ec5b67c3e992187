"""The PyTorch port of slowly-changing regression, trained with metastep.torch, against the JAX
experiment: the online squared error of each task, mean ± standard error over seeds.

The port is the one of tests/torch/test_torch_continual.py (its own stream and learner, written in
PyTorch only, the ``redraw`` variant); the JAX side runs the experiment's learner and problem
(``slowly-changing-regression``: network 21-5-1, squared loss, the slow bits redrawn every task)
with ``ms.run``, at the same budget: the experiment's ``quick`` one by default (10 tasks of
10,000 steps, 2 seeds), or ``--tasks``/``--seeds`` for another. The methods are the test's: SGD
(α = 0.01, a check of the port of the stream) and IDBD (θ = 0.01, α₀ = 0.01, Gauss-Newton
curvature; a check of the front). Prints the per-task errors of both, the mean over the tasks
after the first and the difference of the two, and saves the figure (PNG).

Seeds differ a lot here: the mean error over tasks 2-10 has a standard deviation of 0.1-0.2 over
seeds, so a few seeds can differ by 0.2 with no difference in the code. SGD at the quick budget:
the JAX experiment's seeds 0-3 give 0.52 and the port's 0.70, while 30 seeds give 0.71 ± 0.04 and
0.68 ± 0.02 (the port's streams and initial weights trained by the JAX learner, whose errors the
port's loop gives step by step). The test file checks the port part by part, where seed noise
cannot hide a mistake.

    python benchmarks/torch_port.py [--tasks 10] [--seeds 2]
        [--output docs/figures/torch-port-slowly-changing-regression.png]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import jax
import numpy as np
import torch
from matplotlib.figure import Figure

from metastep.experiments import slowly_changing_regression as experiment
from metastep.report.storage import atomic_write

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "torch"))
import test_torch_continual as port  # noqa: E402  (the port lives with its test)

BUDGET = experiment.BUDGETS["quick"]
SLOW_PERIOD = BUDGET.settings["switch_every"]
ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "figures" / "torch-port-slowly-changing-regression.png"
TITLES = {"sgd": "SGD, α = 0.01 (ms.sgd; torch.optim.SGD)",
          "idbd": "IDBD, θ = 0.01, α₀ = 0.01, Gauss-Newton (ms.idbd; mst.IDBD)"}
JAX, TORCH = "JAX experiment (ms.run)", "PyTorch port"
COLORS = {JAX: "tab:blue", TORCH: "tab:orange"}


def task_errors(seeds: int, tasks: int) -> dict[str, dict[str, np.ndarray]]:
    """Per method and side, the per-task errors [seeds, tasks]; prints each side's CPU time."""
    if port.SIZES != experiment.SIZES:
        raise RuntimeError(f"the port's network {port.SIZES} is not the experiment's")
    errors = {}
    for name, jax_method, make_optimizer, source in port.METHODS:
        start = time.process_time()
        with jax.enable_x64(True):  # the port runs in float64 too
            reference = np.array([port.jax_task_errors(jax_method(), source, seed, SLOW_PERIOD,
                                                       tasks) for seed in range(seeds)])
        middle = time.process_time()
        ported = np.array([port.torch_task_errors(make_optimizer, source, seed, SLOW_PERIOD,
                                                  tasks) for seed in range(seeds)])
        print(f"{name}: JAX {middle - start:.0f} s CPU, PyTorch {time.process_time() - middle:.0f}"
              " s CPU", flush=True)
        errors[name] = {JAX: reference, TORCH: ported}
    return errors


def mean_and_error(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The mean over seeds and its standard error (NaN for one seed)."""
    seeds = values.shape[axis]
    spread = values.std(axis=axis, ddof=1) if seeds > 1 else np.full(values.shape[1:], np.nan)
    return values.mean(axis=axis), spread / np.sqrt(seeds)


def report(errors: dict[str, dict[str, np.ndarray]]) -> None:
    for name, sides in errors.items():
        print(f"\n{TITLES[name]}: per-task online squared error, mean ± standard error over seeds")
        for side, values in sides.items():
            mean, error = mean_and_error(values)
            after, after_error = mean_and_error(values[:, 1:].mean(axis=1, keepdims=True))
            print(f"  {side:24s}", " ".join(f"{m:.3f}±{e:.3f}" for m, e in zip(mean, error)),
                  f"| tasks 2-: {after[0]:.3f}±{after_error[0]:.3f}")
        later = {side: mean_and_error(values[:, 1:].mean(axis=1, keepdims=True))
                 for side, values in sides.items()}
        difference = later[TORCH][0][0] - later[JAX][0][0]
        noise = math.hypot(later[TORCH][1][0], later[JAX][1][0])
        print(f"  port − JAX, tasks 2-: {difference:+.3f} ± {noise:.3f} (s.e. of the difference; "
              "the mean over tasks 2-10 has a standard deviation of 0.1-0.2 over seeds)")


def figure(errors: dict[str, dict[str, np.ndarray]], seeds: int) -> Figure:
    """One panel per method: both sides' per-task errors, mean ± standard error over seeds."""
    figure = Figure(figsize=(10, 3.8), layout="constrained")
    axes = figure.subplots(1, len(errors), sharey=True)
    for panel, (name, sides) in zip(axes, errors.items()):
        for side, values in sides.items():
            mean, error = mean_and_error(values)
            task_ends = SLOW_PERIOD * np.arange(1, len(mean) + 1)
            panel.plot(task_ends, mean, marker=".", color=COLORS[side], label=side)
            panel.fill_between(task_ends, mean - error, mean + error, color=COLORS[side],
                               alpha=0.25, linewidth=0)
        panel.set_title(TITLES[name], fontsize=10)
        panel.set_xlabel(f"step (each point: the mean over one task of {SLOW_PERIOD:,} steps)")
        panel.legend(fontsize=8)
    axes[0].set_ylabel(f"online squared error per task\n(mean ± s.e. over {seeds} seeds)")
    figure.suptitle("Slowly-changing regression (redraw), network 21-5-1: the PyTorch port "
                    "against the JAX experiment", fontsize=11)
    return figure


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=BUDGET.steps // SLOW_PERIOD,
                        help=f"tasks of {SLOW_PERIOD:,} steps (default: the quick budget's)")
    parser.add_argument("--seeds", type=int, default=BUDGET.seeds,
                        help="seeds (default: the quick budget's)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="the figure (PNG)")
    args = parser.parse_args()
    for argument in ("tasks", "seeds"):
        if getattr(args, argument) < 1:
            parser.error(f"--{argument} must be >= 1, got {getattr(args, argument)}")
    torch.set_num_threads(1)  # batch 1 on a 21-5-1 network: threads only add contention
    print(f"{args.tasks} tasks of {SLOW_PERIOD:,} steps, {args.seeds} seeds, torch "
          f"{torch.__version__}, jax {jax.__version__}", flush=True)
    errors = task_errors(args.seeds, args.tasks)
    report(errors)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.output, lambda path: figure(errors, args.seeds).savefig(
        path, format="png", dpi=90))
    print(f"\nsaved {args.output} ({args.output.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
