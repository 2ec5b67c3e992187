"""What the problems share: checks of structural arguments and sign-flip schedules."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def check_count(name: str, value: object, minimum: int = 1) -> None:
    """Structural sizes (numbers of inputs, period lengths) shape arrays: Python ints only."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}")


def steps_of_block(first_step: jax.Array, num_steps: int) -> jax.Array:
    """The global indices ``first_step, ..., first_step + num_steps - 1`` (uint32, as in step_keys)."""
    return first_step + jnp.arange(num_steps, dtype=jnp.uint32)


def is_boundary(steps: jax.Array, period: int) -> jax.Array:
    """True at steps ``period, 2 period, ...``: the first step served with the new value."""
    return (steps > 0) & (steps % period == 0)


def apply_flips(signs: jax.Array, flips: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Signs in force at each step of a block, and after it.

    Args:
      signs: [k] the signs before the block.
      flips: [num_steps, k] bool, True where sign ``j`` flips before step ``t`` is served.

    Returns:
      ``(per_step [num_steps, k], final [k])``. Flips are counted in integers, so the result
      does not depend on how the stream is cut into blocks.
    """
    counts = jnp.cumsum(flips, axis=0, dtype=jnp.int32)
    per_step = jnp.where(counts % 2 == 1, -signs, signs)
    final = jnp.where(jnp.sum(flips, axis=0, dtype=jnp.int32) % 2 == 1, -signs, signs)
    return per_step, final
