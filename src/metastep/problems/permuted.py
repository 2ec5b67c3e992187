"""Permuted classification streams: a data set seen online, its inputs or labels permuted per task.

Reference: the continual-learning protocols of Elsayed & Mahmood, "Addressing loss of plasticity
and catastrophic forgetting in continual learning" (UPGD), ICLR 2024 (input-permuted MNIST, a new
pixel permutation every 5,000 steps; label-permuted EMNIST and CIFAR-10, a new label permutation
every 2,500 steps), and Dohare et al., Nature 2024 (permuted MNIST);
docs/problems.md#permuted_classification.

Step ``t`` serves one example drawn uniformly at random, with replacement, from the data set (from
``fold_in(key, t)``: no state, and the stream does not depend on the block sizes; the index is 32
random bits modulo N, uniform up to a relative bias below N / 2³²). UPGD instead
restarts a shuffled pass at each task; over a task the two differ only in repeats. Task ``k``
covers steps ``k K .. (k + 1) K − 1``; its permutation ``π_k`` is drawn from ``fold_in(permutation
key, k)`` by ``jax.random.permutation`` (task 0 is permuted too, as in UPGD):

* ``"inputs"``: ``x_j = pixel[π_k(j)] / pixel_max``, the label unchanged;
* ``"labels"``: ``x_j = pixel[j] / pixel_max``, the label ``π_k(label)``.

``x`` is a float vector, ``y`` the class index as an int32 scalar (for a cross-entropy loss, not a
regression target). ``info["task"]`` holds ``k``. The data set is a constant of the stream's
closure; stored as integers (uint8 pixels), it is scaled to floats per example.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from metastep._checks import check_count, check_positive
from metastep._structure import recorded
from metastep.problems._base import Problem, Sample, step_keys
from metastep.problems._common import steps_of_block

PERMUTE = ("inputs", "labels")


class PermutedState(NamedTuple):
    key: jax.Array  # the stream key: step t draws its example from fold_in(key, t)
    permutation_key: jax.Array  # task k's permutation is drawn from fold_in(permutation_key, k)
    step: jax.Array  # uint32, the index of the next step


def task_permutation(permutation_key: jax.Array, task: jax.Array, size: int) -> jax.Array:
    """``π_task``: a uniformly random permutation of ``0 .. size − 1`` (int32)."""
    return jax.random.permutation(jax.random.fold_in(permutation_key, task), size)


@recorded
def permuted_classification(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    switch_every: int,
    permute: str = "inputs",
    pixel_max: float = 1.0,
    num_classes: int | None = None,
    name: str = "permuted_classification",
    description: str = "",
) -> Problem:
    """A stream of examples of a data set, inputs or labels permuted anew every task.

    Args:
      images: [N, ...] the examples (flattened to [N, n]); integers or floats.
      labels: [N] integer class labels in ``0 .. num_classes − 1``.
      switch_every: ``K`` ≥ 1, the number of steps of a task.
      permute: ``"inputs"`` (a pixel permutation per task) or ``"labels"`` (a label permutation).
      pixel_max: ``x`` is the pixel divided by ``pixel_max`` > 0 (255 for 8-bit images).
      num_classes: the number of classes; by default the largest label plus one.
      name, description: the problem's name and description.
    """
    if permute not in PERMUTE:
        raise ValueError(f"`permute` must be one of {PERMUTE}, got {permute!r}")
    check_count("switch_every", switch_every)
    check_positive("pixel_max", pixel_max)
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim < 2 or images.shape[0] == 0 or labels.shape != images.shape[:1]:
        raise ValueError(
            f"`images` [N, ...] and `labels` [N] must hold the same N >= 1 examples, got shapes "
            f"{images.shape} and {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError("`labels` must be non-negative integers")
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    check_count("num_classes", num_classes)
    if labels.max() >= num_classes:
        raise ValueError(f"`num_classes` ({num_classes}) must exceed the largest label")
    num_examples = images.shape[0]
    pixels = jnp.asarray(images.reshape(num_examples, -1))
    classes = jnp.asarray(labels, jnp.int32)
    num_features = pixels.shape[1]
    size = num_features if permute == "inputs" else num_classes

    def init(key: jax.Array) -> PermutedState:
        stream_key, permutation_key = jax.random.split(key)
        return PermutedState(stream_key, permutation_key, jnp.uint32(0))

    def generate(state: PermutedState, num_steps: int) -> tuple[PermutedState, Sample]:
        # 32 random bits modulo N: a bias below N / 2³² (1.4e-5 for 60,000 examples), and it
        # compiles several times faster than randint.
        bits = jax.vmap(lambda key: jax.random.bits(key, (), jnp.uint32))(
            step_keys(state.key, state.step, num_steps)
        )
        index = (bits % num_examples).astype(jnp.int32)
        task = steps_of_block(state.step, num_steps) // switch_every
        # A block meets at most this many tasks: one permutation each, not one per step.
        num_tasks = min(num_steps, (num_steps - 1) // switch_every + 2)
        first_task = state.step // switch_every
        permutations = jax.vmap(lambda k: task_permutation(state.permutation_key, k, size))(
            first_task + jnp.arange(num_tasks, dtype=jnp.uint32)
        )[task - first_task]
        if permute == "inputs":
            x, y = pixels[index[:, None], permutations], classes[index]
        else:
            x = pixels[index]
            y = jnp.take_along_axis(permutations, classes[index][:, None], axis=1)[:, 0]
        x = x.astype(jnp.result_type(float)) / pixel_max
        new_state = state._replace(step=state.step + num_steps)
        return new_state, Sample(x, y.astype(jnp.int32), {"task": task.astype(jnp.int32)})

    return Problem(
        name=name,
        num_features=num_features,
        params={
            "switch_every": switch_every,
            "permute": permute,
            "num_examples": num_examples,
            "num_classes": num_classes,
        },
        init=init,
        generate=generate,
        description=description,
    )
