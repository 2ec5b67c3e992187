"""Weight flipping: the non-stationary regression of Sutton (1992), Experiment 1.

Reference: R. S. Sutton, "Adapting bias by gradient descent: an incremental version of
delta-bar-delta", AAAI 1992; the 20-input problem of Degris et al. 2024
(docs/problems.md#weight_flipping). Each example has ``n`` inputs ``x_i ~ N(0, 1)`` and the
noiseless target::

    y* = Σ_i s_i x_i,   s_1..s_k ∈ {+scale, −scale} (random initial signs),   s_{k+1}..s_n = 0

Every ``flip_every`` examples one of the ``k`` relevant weights, chosen uniformly, flips sign.
Schedule: examples ``0 .. flip_every − 1`` see the initial signs; the first flip happens just
before example ``flip_every`` is served (example 20 by default is the first one to see it), the
next before example ``2 flip_every``, and so on.

The relevant weights are the first ``num_relevant`` inputs. ``info["true_weights"]`` [n] holds the
``s_i`` in force at each step.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from metastep._checks import check_count, check_positive
from metastep._structure import recorded
from metastep.problems._base import Problem, Sample, step_keys
from metastep.problems._common import (
    apply_flips,
    is_boundary,
    standard_draws,
    steps_of_block,
)


class WeightFlippingState(NamedTuple):
    key: jax.Array  # the stream key: step t draws from fold_in(key, t)
    step: jax.Array  # uint32, the index of the next example
    signs: jax.Array  # [num_relevant] ±1, the signs in force before the next example


@recorded
def weight_flipping(
    num_inputs: int = 20, num_relevant: int = 5, flip_every: int = 20, scale: float = 1.0
) -> Problem:
    """The weight-flipping stream (Sutton 1992).

    Args:
      num_inputs: ``n`` ≥ 1, the number of inputs.
      num_relevant: ``k`` in ``[1, n]``, the number of relevant (non-zero, flipping) weights.
      flip_every: the period ≥ 1, in examples, of the flips.
      scale: ``s`` > 0, the magnitude of the relevant weights (Degris et al. also use 0.1 and 10);
        may be a traced value.
    """
    check_count("num_inputs", num_inputs)
    check_count("num_relevant", num_relevant)
    if num_relevant > num_inputs:
        raise ValueError(f"`num_relevant` must be <= num_inputs ({num_inputs}), got {num_relevant}")
    check_count("flip_every", flip_every)
    check_positive("scale", scale)

    def init(key: jax.Array) -> WeightFlippingState:
        # The initial signs use their own key so that no step key is reused.
        sign_key, stream_key = jax.random.split(key)
        signs = jax.random.rademacher(sign_key, (num_relevant,), dtype=jnp.result_type(float))
        return WeightFlippingState(stream_key, jnp.uint32(0), signs)

    def draw(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        x, u = standard_draws(key, num_inputs, 1)
        # floor(u k) with u in [0, 1): uniform over the k weights up to the float grid of u (a bias
        # below 1e-6); the minimum guards against rounding up to k.
        return x, jnp.minimum((u[0] * num_relevant).astype(jnp.int32), num_relevant - 1)

    def generate(state: WeightFlippingState, num_steps: int) -> tuple[WeightFlippingState, Sample]:
        x, chosen = jax.vmap(draw)(step_keys(state.key, state.step, num_steps))
        # The choice drawn at a non-boundary step is unused; drawing it everywhere keeps the draws
        # of a step independent of where the block starts.
        flips = is_boundary(steps_of_block(state.step, num_steps), flip_every)[:, None] & (
            chosen[:, None] == jnp.arange(num_relevant)
        )
        signs, final_signs = apply_flips(state.signs, flips)
        weights = jnp.concatenate(
            [scale * signs, jnp.zeros((num_steps, num_inputs - num_relevant), signs.dtype)], axis=1
        )
        y = jnp.sum(x * weights, axis=1)
        new_state = WeightFlippingState(state.key, state.step + num_steps, final_signs)
        return new_state, Sample(x, y, {"true_weights": weights})

    return Problem(
        name="weight_flipping",
        num_features=num_inputs,
        params={
            "num_inputs": num_inputs,
            "num_relevant": num_relevant,
            "flip_every": flip_every,
            "scale": scale,
        },
        init=init,
        generate=generate,
        description=(
            f"Sutton (1992) weight flipping: {num_relevant} of {num_inputs} weights ±{scale}, "
            f"one flips every {flip_every} examples"
        ),
    )
