"""The random walk of Sutton & Barto (2018, Example 6.2 with 5 states, Example 7.1 with 19), as a
stream for TD learners (:mod:`metastep.td`).

``num_states`` non-terminal states in a row; every episode starts in the middle one and each step
moves left or right (right with probability ``p``, 1/2 by default). Stepping off the left end
ends the episode with reward −1, off the right end with +1; every other reward is 0. The stream
never stops: the state after an episode's end is the start of the next one, reached by a
transition with discount 0 (the TD learners' convention, :class:`metastep.td.TDTarget`). Step 0
gives the first start state (reward 0, discount 0).

True values, ``v = (I − γ P)⁻¹ b`` over the non-terminal states (``P`` the moves between them, ``b``
the expected reward of a step): with ``γ = 1`` and ``p = 1/2``, ``v(s) = 2 (s + 1) / (n + 1) − 1``,
e.g. ``(s − 9)/10`` for 19 states. Each step's target holds the true value of its state, so a TD
learner records the RMS error of its predictions per bin (``value_error``).

Features: ``"tabular"`` (one-hot, ``n`` features) or ``"aggregation"`` (state aggregation: state
``s`` lies in group ``⌊s · k / n⌋`` of ``k = num_groups``, one-hot over the groups).
Non-stationary variant: with ``switch_every = N`` the rewards change sign every ``N`` steps (the
true values with them).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from metastep._checks import check_count, check_unit_interval
from metastep._structure import recorded
from metastep.problems._base import Problem, Sample, step_keys
from metastep.problems._common import steps_of_block
from metastep.td.learner import TDTarget

FEATURES = ("tabular", "aggregation")


class RandomWalkState(NamedTuple):
    key: jax.Array  # the stream key: step t draws from fold_in(key, t)
    step: jax.Array  # uint32, the index of the next step
    position: jax.Array  # int32, the state of the last step's sample


def random_walk_values(num_states: int, discount, right_probability) -> jax.Array:
    """The true values ``(I − γ P)⁻¹ b`` of the non-terminal states (rewards of sign +1)."""
    dtype = jnp.result_type(float)
    p = jnp.asarray(right_probability, dtype)
    rights = p * jnp.eye(num_states, k=1, dtype=dtype)
    lefts = (1 - p) * jnp.eye(num_states, k=-1, dtype=dtype)
    expected_reward = jnp.zeros(num_states, dtype).at[0].add(p - 1).at[-1].add(p)
    system = jnp.eye(num_states, dtype=dtype) - jnp.asarray(discount, dtype) * (rights + lefts)
    return jnp.linalg.solve(system, expected_reward)


@recorded
def random_walk(
    num_states: int = 19,
    features: str = "tabular",
    *,
    num_groups: int = 5,
    discount: float = 1.0,
    right_probability: float = 0.5,
    switch_every: int | None = None,
    active_indices: bool = False,
) -> Problem:
    """Sutton & Barto's random walk (see the module docstring).

    Args:
      num_states: ``n`` ≥ 2 non-terminal states (19 in Example 7.1; 5 in Example 6.2).
      features: ``"tabular"`` or ``"aggregation"``.
      num_groups: ``k`` groups of state aggregation, 1 ≤ k ≤ n (with ``"aggregation"``).
      discount: ``γ`` in [0, 1] of the non-terminal transitions.
      right_probability: ``p`` in [0, 1], the probability of a step to the right.
      switch_every: optional ``N`` ≥ 1: the rewards change sign every ``N`` steps.
      active_indices: serve each step's features as the index of the active one ([1] int32)
        instead of the one-hot vector, for :class:`metastep.td.SparseSwiftTD`.
    """
    check_count("num_states", num_states, minimum=2)
    if features not in FEATURES:
        raise ValueError(f"`features` must be one of {FEATURES}, got {features!r}")
    check_count("num_groups", num_groups)
    if num_groups > num_states:
        raise ValueError(f"`num_groups` must be <= num_states ({num_states}), got {num_groups}")
    check_unit_interval("discount", discount)
    check_unit_interval("right_probability", right_probability)
    if switch_every is not None:
        check_count("switch_every", switch_every)
    if not isinstance(active_indices, bool):
        raise ValueError(f"`active_indices` must be True or False, got {active_indices!r}")
    num_features = num_states if features == "tabular" else num_groups
    start = num_states // 2

    def init(key: jax.Array) -> RandomWalkState:
        return RandomWalkState(key, jnp.uint32(0), jnp.int32(start))

    def move(position, inputs):
        step, u = inputs
        target = position + jnp.where(u < right_probability, 1, -1)
        ended = (target < 0) | (target >= num_states)
        reward = jnp.where(target < 0, -1.0, jnp.where(target >= num_states, 1.0, 0.0))
        first = step == 0
        position = jnp.where(ended | first, start, target)
        ended = ended | first
        return position, (position, jnp.where(first, 0.0, reward), ended)

    def generate(state: RandomWalkState, num_steps: int) -> tuple[RandomWalkState, Sample]:
        keys = step_keys(state.key, state.step, num_steps)
        dtype = jnp.result_type(float)
        u = jax.vmap(lambda key: jax.random.uniform(key, (), dtype))(keys)
        steps = steps_of_block(state.step, num_steps)
        position, (positions, rewards, ended) = jax.lax.scan(move, state.position, (steps, u))
        sign = 1.0 if switch_every is None else jnp.where(
            (steps // switch_every) % 2 == 0, 1.0, -1.0)
        values = sign * random_walk_values(num_states, discount, right_probability)[positions]
        groups = positions if features == "tabular" else positions * num_groups // num_states
        x = (groups[:, None].astype(jnp.int32) if active_indices
             else jax.nn.one_hot(groups, num_features, dtype=dtype))
        target = TDTarget((sign * rewards).astype(dtype),
                          jnp.where(ended, 0.0, discount).astype(dtype), values.astype(dtype))
        info = {"state": positions}
        return RandomWalkState(state.key, state.step + num_steps, position), Sample(x, target, info)

    switching = "" if switch_every is None else f", rewards switch sign every {switch_every}"
    return Problem(
        name="random_walk",
        num_features=num_features,
        params={"num_states": num_states, "features": features, "num_groups": num_groups,
                "discount": discount, "right_probability": right_probability,
                "switch_every": switch_every,
                **({"active_indices": True} if active_indices else {})},
        init=init,
        generate=generate,
        description=(f"Random walk over {num_states} states ({features} features"
                     f"{', served as active indices' if active_indices else ''}), γ = "
                     f"{discount}, p(right) = {right_probability}{switching}"),
    )
