"""permuted-digits: a new pixel permutation every 5,000 steps; does a meta-learned step size at its
one default match Adam tuned for the benchmark?

The stream is ``ms.problems.permuted_digits``: scikit-learn's 8×8 digits (1,797 images, pixels in
[0, 1]), one example drawn at random per step, and every ``switch_every`` steps (5,000: UPGD's
input-permuted MNIST protocol, Elsayed & Mahmood 2024) a new random permutation of the 64 pixels.
Each task is the same ten-class problem in a new input coding: what the first layer learned no
longer applies, what the later layers learned may. The network is an MLP with ReLU hidden units
(64-64-10 at the quick budget, UPGD's hidden sizes 64-300-150-10 at full), trained online with
cross-entropy, batch 1; the metric is the online accuracy, the prediction made before each update.

Every method of the roster (``_roster``: SGD, Adam and RMSprop swept; IDBD, Autostep, SMD,
MetaOptimize and Adam-HD at their defaults, swept around them; Prodigy, Mechanic and schedule-free
AdamW from ``optax.contrib``) trains on the same stream from the same initial weights.
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

SWITCH_EVERY = 5_000  # UPGD's input-permuted MNIST
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
        title=(f"Permuted digits (a new pixel permutation every {switch_every:,} steps), "
               f"{mlp_title(sizes)}, {budget.seeds} seed(s)"),
        problem=functools.partial(ms.problems.permuted_digits, switch_every),
        switch_every=switch_every,
        sizes=sizes,
        loss=LOSS,
        methods=roster(settings["methods"], settings["points"], TUNED_CENTRES),
    )]


EXPLANATION = ACCURACY_QUESTION + """
The stream: scikit-learn's 8×8 digits, one example per step, and every 5,000 steps (UPGD's
protocol for input-permuted MNIST) a new random permutation of the 64 pixels. The network, an MLP
with ReLU units, learns online with batch 1; the online accuracy is that of the prediction made
before each update. All methods train side by side on the same stream from the same initial
weights.

How to read the figures:

- **online-accuracy**: the accuracy per task over time, each method at its best setting (left)
  and at its default (right; for SGD, Adam and RMSprop the centre of their sweep). A method that
  loses plasticity drifts down from task to task.
- **sensitivity**: each method's run-average accuracy against its own main parameter (log
  scale): the step size for the tuned baselines, the meta step size for the meta-learned methods,
  the learning-rate factor for the optax.contrib peers. The ringed point is the default; the
  dashed line is tuned Adam.
- **step-sizes**: IDBD's and Autostep's step sizes at their defaults, parameter arrays × time:
  the change of each array's mean log₁₀ α from its mean over the run (in brackets), task
  switches marked in white. It shows which arrays speed up after a switch and which settle.

Plasticity: `methods.<method>.best.late_minus_early` compares the accuracy over the last 10% of
the tasks with that over the first 10%. The quick budget runs 6 tasks (a small network, 2 seeds):
a first look; the full budget runs UPGD's 1,000,000 steps.
"""

EXPERIMENT = continual_experiment(
    name="permuted-digits",
    description="8×8 digits with a new pixel permutation every 5,000 steps: meta-learned step "
    "sizes at their default vs tuned Adam, RMSprop, SGD and optax.contrib's learning-rate-free "
    "methods",
    budgets=BUDGETS,
    benchmarks=benchmarks,
    published=[],
    explanation=EXPLANATION,
    quick_minutes=1.4,  # approximate: see QUICK_MINUTES_MACHINE
)
