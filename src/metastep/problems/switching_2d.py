"""Two-dimensional switching: the talk's problem (Degris et al. 2024, Fig. 1).

Reference: docs/problems.md#switching_2d. Inputs ``x_1, x_2 ~ N(0, 1)``, the noiseless
target::

    y* = w1* x_1 + w2* x_2,   w1* = 0 always,   w2* ∈ {+1, −1}

``w2*`` starts at +1 (a fixed start, so that error surfaces of different seeds share their first
regime). At each boundary ``t = flip_every, 2 flip_every, ...`` it switches sign with probability
``flip_probability``, just before example ``t`` is served ("may switch" at 0.5; 1.0 gives the
deterministic variant, which alternates every ``flip_every`` examples).
``info["true_weights"]`` [2] holds ``(w1*, w2*)`` in force at each step.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from metastep._checks import check_count, check_unit_interval
from metastep._structure import recorded
from metastep.problems._base import Problem, Sample, step_keys
from metastep.problems._common import (
    apply_flips,
    is_boundary,
    standard_draws,
    steps_of_block,
)


class Switching2DState(NamedTuple):
    key: jax.Array  # the stream key: step t draws from fold_in(key, t)
    step: jax.Array  # uint32, the index of the next example
    sign: jax.Array  # [1] the sign of w2* before the next example


@recorded
def switching_2d(flip_every: int = 20, flip_probability: float = 0.5) -> Problem:
    """The two-dimensional switching stream (the talk; Degris et al. 2024).

    Args:
      flip_every: the period ≥ 1, in examples, between chances to switch.
      flip_probability: the probability in ``[0, 1]`` that ``w2*`` switches at a boundary;
        may be a traced value.
    """
    check_count("flip_every", flip_every)
    check_unit_interval("flip_probability", flip_probability)

    def init(key: jax.Array) -> Switching2DState:
        return Switching2DState(key, jnp.uint32(0), jnp.ones((1,), jnp.result_type(float)))

    def draw(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        x, u = standard_draws(key, 2, 1)
        return x, u[0] < flip_probability

    def generate(state: Switching2DState, num_steps: int) -> tuple[Switching2DState, Sample]:
        x, switch = jax.vmap(draw)(step_keys(state.key, state.step, num_steps))
        flips = is_boundary(steps_of_block(state.step, num_steps), flip_every) & switch
        signs, final_sign = apply_flips(state.sign, flips[:, None])
        weights = jnp.concatenate([jnp.zeros_like(signs), signs], axis=1)
        y = jnp.sum(x * weights, axis=1)
        new_state = Switching2DState(state.key, state.step + num_steps, final_sign)
        return new_state, Sample(x, y, {"true_weights": weights})

    return Problem(
        name="switching_2d",
        num_features=2,
        params={"flip_every": flip_every, "flip_probability": flip_probability},
        init=init,
        generate=generate,
        description=(
            f"2-D switching: w1* = 0, w2* = ±1 switches with probability {flip_probability} "
            f"every {flip_every} examples"
        ),
    )
