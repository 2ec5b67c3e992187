"""The stream protocol that every problem follows.

A problem is a pure JAX stream. ``init(key)`` returns its state (which holds the key and the step
count); ``generate(state, num_steps)`` returns the next ``num_steps`` samples, batched along a
leading axis, and the advanced state. The randomness of step ``t`` is drawn from
``jax.random.fold_in(key, t)``, so a stream is the same whatever the block sizes it is read in,
and a block is drawn in one vectorized call (the engine reads one record bin per call).

A :class:`Sample` carries the input ``x`` [n], the target ``y`` [] and ``info``: what the problem
knows that the learner does not (the true weights, and for tracking the current σ and the optimal
step size α*). ``info`` values are arrays; the engine records their values at the end of each bin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from metastep.problems._common import steps_of_block


class Sample(NamedTuple):
    x: jax.Array  # [..., n]
    y: jax.Array  # [...]
    info: dict[str, jax.Array]


@dataclass(frozen=True)
class Problem:
    """A non-stationary stream of ``(x, y)`` pairs.

    Attributes:
      name: short name, e.g. ``"weight_flipping"``.
      num_features: the length of ``x``.
      params: the problem's resolved parameters (for configs and reports).
      init: ``key -> state``.
      generate: ``(state, num_steps) -> (state, Sample)`` with a leading ``num_steps`` axis;
        ``num_steps`` is a static Python int.
    """

    name: str
    num_features: int
    params: dict[str, Any]
    init: Callable[[jax.Array], Any]
    generate: Callable[[Any, int], tuple[Any, Sample]]
    description: str = field(default="", compare=False)

    def sample(self, key: jax.Array, num_steps: int) -> Sample:
        """The first ``num_steps`` samples of the stream started from ``key``, as arrays."""
        _, samples = jax.jit(self.generate, static_argnums=1)(self.init(key), num_steps)
        return samples


def step_keys(key: jax.Array, first_step: jax.Array, num_steps: int) -> jax.Array:
    """Keys for steps ``first_step, ..., first_step + num_steps - 1``: ``fold_in(key, t)``."""
    return jax.vmap(lambda t: jax.random.fold_in(key, t))(steps_of_block(first_step, num_steps))
