"""label-permuted-digits: a new permutation of the labels every 2,500 steps; does a meta-learned
step size at its one default match Adam tuned for the benchmark?

The stream is ``ms.problems.label_permuted_digits``: scikit-learn's 8×8 digits (pixels in
[0, 1]), one example drawn at random per step, and every ``switch_every`` steps (2,500: UPGD's
label-permuted EMNIST and CIFAR-10 protocol, Elsayed & Mahmood 2024) a new random permutation of
the ten labels. The inputs keep their meaning: the features a network learned stay useful, only
the read-out must be relearned, so this benchmark isolates loss of plasticity from input change.
The network, the training (online, batch 1, cross-entropy) and the roster are those of
``permuted-digits``; the metric is the online accuracy, measured before each update.
"""

from __future__ import annotations

import functools

import metastep as ms
from metastep.experiments._base import Budget
from metastep.experiments._continual import (
    ACCURACY_QUESTION,
    Benchmark,
    continual_experiment,
    mlp_title,
)
from metastep.experiments._roster import ROSTER, roster

# ---------------------------------------------------------------------------------------------
# The benchmark: every knob

SWITCH_EVERY = 2_500  # UPGD's label-permuted EMNIST / CIFAR-10
NUM_INPUTS, NUM_CLASSES = 64, 10  # 8×8 pixels, ten digits
LOSS = "cross_entropy"
# The centres of the tuned sweeps: Adam's and RMSprop's usual default, SGD's usual best region.
TUNED_CENTRES = {"sgd": 10**-1.5, "adam": 1e-3, "rmsprop": 1e-3}

# Per budget: the task length, the hidden layers (64 at quick, UPGD's 300 and 150 at full), the grid
# points per method, the records per task, the roster (ROSTER: every method) and, at full, the split
# into shards (one seed and one family of methods each: a cluster gets many units of work).
BUDGETS = {
    "smoke": Budget(steps=400, seeds=1, settings={
        "switch_every": 200, "hidden": [16], "points": 3, "records_per_task": 2,
        "methods": ["adam", "idbd"]}),
    "quick": Budget(steps=30_000, seeds=2, settings={
        "switch_every": SWITCH_EVERY, "hidden": [64], "points": 5, "records_per_task": 5,
        "methods": list(ROSTER)}),
    "full": Budget(steps=1_000_000, seeds=10, settings={
        "switch_every": SWITCH_EVERY, "hidden": [300, 150], "points": 7,
        "records_per_task": 2, "methods": list(ROSTER), "seeds_per_shard": 1,
        "method_groups": "family"}),
}


def benchmarks(budget: Budget) -> list[Benchmark]:
    settings = budget.settings
    switch_every = settings["switch_every"]
    sizes = (NUM_INPUTS, *settings["hidden"], NUM_CLASSES)
    return [Benchmark(
        name="",
        title=(f"Label-permuted digits (a new label permutation every {switch_every:,} steps), "
               f"{mlp_title(sizes)}, {budget.seeds} seed(s)"),
        problem=functools.partial(ms.problems.label_permuted_digits, switch_every),
        switch_every=switch_every,
        sizes=sizes,
        loss=LOSS,
        methods=roster(settings["methods"], settings["points"], TUNED_CENTRES),
    )]


EXPLANATION = ACCURACY_QUESTION + """
The stream: scikit-learn's 8×8 digits, one example per step, and every 2,500 steps (UPGD's
protocol for label-permuted EMNIST and CIFAR-10) a new random permutation of the ten labels. The
inputs keep their meaning, so the features learned for one task serve the next: a method that
keeps its plasticity should reach a task's accuracy faster and faster, one that loses it slower
and slower. Online accuracy, batch 1, measured before each update; all methods side by side on
the same stream from the same initial weights.

How to read the figures:

- **online-accuracy**: the accuracy per task over time, each method at its best setting (left)
  and at its default (right; for SGD, Adam and RMSprop the centre of their sweep).
- **sensitivity**: each method's run-average accuracy against its own main parameter (log
  scale); the ringed point is the default, the dashed line tuned Adam.
- **step-sizes**: IDBD's and Autostep's step sizes at their defaults, parameter arrays × time:
  the change of each array's mean log₁₀ α from its mean over the run (in brackets), task
  switches marked in white. After a label switch the output layer should move first.

Plasticity: `methods.<method>.best.late_minus_early` compares the accuracy over the last 10% of
the tasks with that over the first 10%. The quick budget runs 12 tasks (a small network, 2
seeds); the full budget runs 1,000,000 steps (400 tasks).
"""

EXPERIMENT = continual_experiment(
    name="label-permuted-digits",
    description="8×8 digits with a new label permutation every 2,500 steps: meta-learned step "
    "sizes at their default vs tuned Adam, RMSprop, SGD and optax.contrib's learning-rate-free "
    "methods",
    budgets=BUDGETS,
    benchmarks=benchmarks,
    published=[],
    explanation=EXPLANATION,
    quick_minutes=2.4,  # approximate: see QUICK_MINUTES_MACHINE
)
