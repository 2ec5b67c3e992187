"""permuted-fashion: UPGD's input-permuted protocol on Fashion-MNIST; does a meta-learned step
size at its one default match Adam tuned for the benchmark?

The stream is ``ms.problems.permuted_fashion``: Fashion-MNIST's 60,000 training images (784 pixels
in [0, 1]), one drawn at random per step, and every 5,000 steps a new random permutation of the
pixels: UPGD's input-permuted MNIST protocol (Elsayed & Mahmood 2024) with Fashion-MNIST, which
Debian ships, in place of MNIST. The network is UPGD's, an MLP 784-300-150-10 with ReLU units,
trained online with cross-entropy, batch 1; the metric is the online accuracy, measured before
each update. The roster is that of every continual benchmark
(``metastep.experiments._roster``).

The data are read from IDX files (plain or gzipped): from ``$METASTEP_FASHION_MNIST`` if set, else
from Debian's ``/usr/share/datasets/fashion-mnist/`` (``apt-get install dataset-fashion-mnist``).
Without them the experiment is skipped, and the report says how to get them.

The network costs about 0.5 ms per method and step on a laptop CPU (the roster: 6 ms a step), so
the quick budget is a check of the pipeline (two tasks of 1,000 steps, one seed); the answer needs
the full budget, UPGD's 1,000,000 steps, on an accelerator.
"""

from __future__ import annotations

import functools

import metastep as ms
from metastep.experiments._base import Budget, Published
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
NUM_INPUTS, NUM_CLASSES = 784, 10  # 28×28 pixels, ten classes
HIDDEN = [300, 150]  # UPGD's network, 784-300-150-10
LOSS = "cross_entropy"
# The centres of the tuned sweeps: Adam's and RMSprop's usual default, SGD's usual best region.
TUNED_CENTRES = {"sgd": 10**-1.5, "adam": 1e-3, "rmsprop": 1e-3}

# Per budget: the task length, the hidden layers, the grid points per method, the records per task,
# the roster (ROSTER: every method) and, at full, the split into shards (one seed and one family of
# methods each: a cluster gets many units of work).
BUDGETS = {
    "smoke": Budget(steps=200, seeds=1, settings={
        "switch_every": 100, "hidden": [16], "points": 3, "records_per_task": 2,
        "methods": ["adam", "idbd"]}),
    "quick": Budget(steps=2_000, seeds=1, settings={
        "switch_every": 1_000, "hidden": HIDDEN, "points": 3, "records_per_task": 4,
        "methods": list(ROSTER)}),
    "full": Budget(steps=1_000_000, seeds=10, settings={
        "switch_every": SWITCH_EVERY, "hidden": HIDDEN, "points": 7, "records_per_task": 2,
        "methods": list(ROSTER), "seeds_per_shard": 1,
        "method_groups": "family"}),
}


def benchmarks(budget: Budget) -> list[Benchmark]:
    settings = budget.settings
    switch_every = settings["switch_every"]
    sizes = (NUM_INPUTS, *settings["hidden"], NUM_CLASSES)
    return [Benchmark(
        name="",
        title=(f"Permuted Fashion-MNIST (a new pixel permutation every {switch_every:,} steps), "
               f"{mlp_title(sizes)}, {budget.seeds} seed(s)"),
        problem=functools.partial(ms.problems.permuted_fashion, switch_every, split="train"),
        switch_every=switch_every,
        sizes=sizes,
        loss=LOSS,
        methods=roster(settings["methods"], settings["points"], TUNED_CENTRES),
    )]


def missing_data() -> str | None:
    """Why the experiment cannot run (the data are not found: how to get them), or None."""
    try:
        ms.problems.load_fashion_mnist()
    except FileNotFoundError as error:
        return str(error)
    return None


EXPLANATION = ACCURACY_QUESTION + """
The protocol is UPGD's input-permuted MNIST (Elsayed & Mahmood 2024) on Fashion-MNIST: one
training image per step, a new pixel permutation every 5,000 steps, an MLP 784-300-150-10 with
ReLU units, batch 1, online accuracy (before each update). UPGD reports about 0.68–0.72 for tuned
AdamW on MNIST; Fashion-MNIST is harder, so expect less. The data come from
`$METASTEP_FASHION_MNIST` or Debian's `/usr/share/datasets/fashion-mnist/` (`apt-get install
dataset-fashion-mnist`).

How to read the figures:

- **online-accuracy**: the accuracy per task over time, each method at its best setting (left)
  and at its default (right; for SGD, Adam and RMSprop the centre of their sweep).
- **sensitivity**: each method's run-average accuracy against its own main parameter (log
  scale); the ringed point is the default, the dashed line tuned Adam.
- **step-sizes**: IDBD's and Autostep's step sizes at their defaults, parameter arrays × time:
  the change of each array's mean log₁₀ α from its mean over the run (in brackets), task
  switches marked in white. After an input permutation the first layer should move first.

The quick budget only checks the pipeline (two tasks of 1,000 steps, three grid points, one seed:
the network costs about 6 ms a step for the whole roster on a laptop CPU); the answer needs the
full budget (1,000,000 steps, 10 seeds), on an accelerator.
"""

PUBLISHED = [
    Published("methods.adam.best.average",
              "≈ 0.68–0.72 for tuned AdamW on input-permuted MNIST (Fashion-MNIST is harder)",
              "Elsayed & Mahmood 2024 (UPGD)"),
]

EXPERIMENT = continual_experiment(
    name="permuted-fashion",
    description="Fashion-MNIST with a new pixel permutation every 5,000 steps (UPGD's protocol): "
    "meta-learned step sizes at their default vs tuned Adam, RMSprop, SGD and optax.contrib's "
    "learning-rate-free methods",
    budgets=BUDGETS,
    benchmarks=benchmarks,
    published=PUBLISHED,
    explanation=EXPLANATION,
    availability=missing_data,
    quick_minutes=5.5,  # approximate: see QUICK_MINUTES_MACHINE (measured under heavy load)
)
