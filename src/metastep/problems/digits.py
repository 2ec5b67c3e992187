"""Permuted 8×8 digits: UPGD's continual-learning protocols on scikit-learn's digits.

Reference: Elsayed & Mahmood, "Addressing loss of plasticity and catastrophic forgetting in
continual learning" (UPGD), ICLR 2024: input-permuted MNIST (a new pixel permutation every 5,000
steps) and label-permuted EMNIST / CIFAR-10 (a new label permutation every 2,500 steps);
docs/problems.md#permuted_digits. MNIST cannot be downloaded on these machines; the UCI
optical digits that ship inside scikit-learn (``sklearn.datasets.load_digits``: 1,797 images of
8×8 pixels with values 0..16, ten classes) stand in for it.

``x`` is the 64 pixels scaled to [0, 1] (divided by 16), ``y`` the class as an int32 index.
Sampling and permutations are those of :func:`metastep.problems.permuted.permuted_classification`:
one example drawn uniformly at random per step, a new permutation every ``switch_every`` steps.
"""

from __future__ import annotations

import functools

import numpy as np

from metastep._structure import recorded
from metastep.problems._base import Problem
from metastep.problems.permuted import permuted_classification

DIGITS_PIXEL_MAX = 16


@functools.cache
def load_digits_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8×8 digits: ``(images [1797, 64] uint8 in 0..16, labels [1797] uint8)``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:  # scikit-learn is an optional dependency (extra "experiments")
        raise ImportError(
            "the digits problems need scikit-learn: pip install 'metastep[experiments]'"
        ) from error
    digits = load_digits()
    return digits.data.astype(np.uint8), digits.target.astype(np.uint8)


@recorded
def permuted_digits(switch_every: int = 5_000) -> Problem:
    """Input-permuted digits: a new pixel permutation of the 64 inputs every ``switch_every`` steps.

    Args:
      switch_every: ``K`` ≥ 1, the steps of a task (UPGD's input-permuted MNIST: 5,000).
    """
    images, labels = load_digits_data()
    return permuted_classification(
        images,
        labels,
        switch_every=switch_every,
        permute="inputs",
        pixel_max=DIGITS_PIXEL_MAX,
        num_classes=10,
        name="permuted_digits",
        description=f"8×8 digits, a new pixel permutation every {switch_every} steps",
    )


@recorded
def label_permuted_digits(switch_every: int = 2_500) -> Problem:
    """Label-permuted digits: a new permutation of the 10 labels every ``switch_every`` steps.

    Args:
      switch_every: ``K`` ≥ 1, the steps of a task (UPGD's label-permuted EMNIST: 2,500).
    """
    images, labels = load_digits_data()
    return permuted_classification(
        images,
        labels,
        switch_every=switch_every,
        permute="labels",
        pixel_max=DIGITS_PIXEL_MAX,
        num_classes=10,
        name="label_permuted_digits",
        description=f"8×8 digits, a new label permutation every {switch_every} steps",
    )
