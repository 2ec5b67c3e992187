"""Mountain Car under a fixed policy (gymnasium's ``MountainCar-v0``), tile-coded, as a stream for
the TD learners (:mod:`metastep.td`), with each state's Monte-Carlo return as its target value.

The environment (Moore 1990; Sutton & Barto 2018, Example 10.1) is gymnasium's own, not
reimplemented: a car in a valley, observation ``(position, velocity)`` in the box ``[−1.2, 0.6] ×
[−0.07, 0.07]``, actions push left (0), do nothing (1) or push right (2), reward −1 per step until
the position reaches 0.5. The policy is fixed and stochastic: *energy pumping*, push in the
direction of the velocity (``1 + sign(velocity)``: nothing when the car is at rest), and with
probability ε (``random_action_probability``) an action drawn uniformly from the three.

Episodes. ``num_episodes`` episodes are played with gymnasium when a stream first starts (not
when the problem is built; cached per set of arguments) from ``environment_seed`` (the first
``reset`` and the policy's generator are seeded with it), and kept as arrays: the pool. The
stream serves whole episodes of the pool one after the other, the episode that starts at step
``t`` drawn uniformly (with replacement) from ``fold_in(key, t)``: the stream's key decides the
order of the episodes, the environment's randomness is frozen in the pool. The stream never
stops; step 0 serves the first state of an episode with reward 0 and discount 0.

Targets (:class:`metastep.td.TDTarget`). Step ``t`` serving state ``s_k`` of an episode carries
the reward ``r_k`` of the transition into it and its discount ``γ``; the first state of an
episode is reached with the reward of the previous episode's last transition and discount 0 (the
terminal state itself is never served: its value is 0). The true values are unknown: ``value``
is the Monte-Carlo return from the state, computed backward over its episode,

    G_k = r_{k+1} + γ G_{k+1},   G_{T−1} = r_T,

so a TD learner's ``value_error`` is measured against the return (which includes the return's
own variance around the true value). ``info``: ``"return"`` (``G_k``), ``"episode"`` (its index
in the pool), ``"time_step"`` (``k``) and ``"truncated"``.

Truncation. gymnasium ends an episode at its time limit (``max_episode_steps``; 200 steps in
gymnasium's registration, raised to 500 by default here, which this policy never reaches at the
default ε: the longest of its 1,000 episodes takes 218 steps). A truncated episode is served as
an ended one (discount 0 into the next episode's start: the learner takes the cut for a
termination), its returns sum the rewards up to the cut (no bootstrap: they are too small in
magnitude) and its states carry ``truncated = True``, so that a measure can leave them out.

Features: a tile coder over the observation box (:func:`tile_indices`, Sutton & Barto 2018,
§9.5.4): ``num_tilings`` grid tilings of ``tiles_per_dimension`` tiles across each dimension
(plus one, so that every offset tiling covers the box), tiling ``i`` offset by ``i (1, 3) /
num_tilings`` of a tile width (asymmetric offsets); binary features, one active per tiling, no
hashing: ``num_tilings (tiles_per_dimension + 1)²`` features. With ``features="observation"``
the stream serves the observation itself, scaled to [−1, 1] across the box
(:func:`scaled_observations`: 2 features, for a network's input) instead.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from metastep._checks import check_count, check_unit_interval
from metastep._structure import recorded
from metastep.problems._base import Problem, Sample, step_keys
from metastep.td.learner import TDTarget

ENVIRONMENT = "MountainCar-v0"
GYMNASIUM_MISSING = ("ms.problems.mountain_car needs gymnasium, an optional dependency: "
                     "pip install 'metastep[experiments]'")
FEATURES = ("tiles", "observation")
# Past the end of any episode: the stream's first step starts one.
BEFORE_FIRST_EPISODE = np.iinfo(np.int32).max


def gymnasium_missing() -> str | None:
    """Why the gymnasium problems cannot run here (with how to fix it), or None."""
    return None if importlib.util.find_spec("gymnasium") else GYMNASIUM_MISSING


# ---------------------------------------------------------------------------------------------
# Tile coding

def num_tile_features(num_tilings: int, tiles_per_dimension: int, num_dimensions: int) -> int:
    """The number of binary features of the tile coder: ``N (k + 1)^d``."""
    return num_tilings * (tiles_per_dimension + 1) ** num_dimensions


def tile_indices(observations, low, high, num_tilings: int, tiles_per_dimension: int):
    """The index of the active feature of each tiling: [..., num_tilings] int32.

    A point ``u = (o − low) / (high − low)`` of the unit box (clipped to it) lies in tile
    ``⌊k u_j + c_ij⌋`` along dimension ``j`` of tiling ``i``, with ``k = tiles_per_dimension``
    and the offset ``c_ij = (i (2j + 1) mod N) / N`` (displacements 1, 3, 5, ... as Sutton &
    Barto recommend): ``0 … k`` per dimension. Feature indices count tiling by tiling.
    """
    check_count("num_tilings", num_tilings)
    check_count("tiles_per_dimension", tiles_per_dimension)
    observations = jnp.asarray(observations)
    if not jnp.issubdtype(observations.dtype, jnp.floating):
        observations = observations.astype(jnp.result_type(float))
    dtype = observations.dtype
    num_dimensions = observations.shape[-1]
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    if low.shape != (num_dimensions,) or high.shape != low.shape or not np.all(high > low):
        raise ValueError(f"`low` and `high` must be [{num_dimensions}] with high > low, got "
                         f"{low} and {high}")
    low, high = jnp.asarray(low, dtype), jnp.asarray(high, dtype)
    unit = jnp.clip((observations - low) / (high - low), 0.0, 1.0)
    tilings = np.arange(num_tilings)
    offsets = (tilings[:, None] * (2 * np.arange(num_dimensions) + 1) % num_tilings) / num_tilings
    cells = jnp.floor(unit[..., None, :] * tiles_per_dimension + offsets.astype(dtype))
    cells = jnp.minimum(cells.astype(jnp.int32), tiles_per_dimension)  # u = 1 exactly
    strides = (tiles_per_dimension + 1) ** np.arange(num_dimensions)
    per_tiling = (tiles_per_dimension + 1) ** num_dimensions
    return (cells * strides).sum(-1).astype(jnp.int32) + per_tiling * tilings.astype(np.int32)


def tile_features(observations, low, high, num_tilings: int, tiles_per_dimension: int):
    """Binary features [..., num_tile_features]: 1 at each tiling's active tile."""
    observations = jnp.asarray(observations)
    indices = tile_indices(observations, low, high, num_tilings, tiles_per_dimension)
    size = num_tile_features(num_tilings, tiles_per_dimension, observations.shape[-1])
    dtype = (observations.dtype if jnp.issubdtype(observations.dtype, jnp.floating)
             else jnp.result_type(float))
    return jax.nn.one_hot(indices, size, dtype=dtype).sum(-2)


def scaled_observations(observations, low, high):
    """``2 (o − low) / (high − low) − 1``: the observation box mapped onto [−1, 1]."""
    low, high = (jnp.asarray(bound, observations.dtype) for bound in (low, high))
    return 2.0 * (observations - low) / (high - low) - 1.0


# ---------------------------------------------------------------------------------------------
# Episodes

class Episodes(NamedTuple):
    """A pool of episodes, concatenated: the non-terminal observations ``s_0 … s_{T−1}`` of each.

    observations: [steps, 2]; rewards: [steps], ``r_{k+1}`` of the transition out of ``s_k``;
    returns: [steps], ``G_k``; starts, lengths: [episodes], where each episode lies; truncated:
    [episodes], ended by the time limit; low, high: [2], the observation box.
    """

    observations: np.ndarray
    rewards: np.ndarray
    returns: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    truncated: np.ndarray
    low: np.ndarray
    high: np.ndarray


def energy_pumping_action(velocity: float, random_action_probability: float,
                          rng: np.random.Generator) -> int:
    """Push in the direction of the velocity; with probability ε, a uniform random action."""
    if rng.random() < random_action_probability:
        return int(rng.integers(3))
    return 1 + int(np.sign(velocity))


def discounted_returns(rewards: np.ndarray, discount: float) -> np.ndarray:
    """``G_k = r_{k+1} + γ G_{k+1}`` backward over one episode's rewards ``r_1 … r_T``."""
    returns = np.empty(len(rewards))
    following = 0.0
    for k in range(len(rewards) - 1, -1, -1):
        following = rewards[k] + discount * following
        returns[k] = following
    return returns


@functools.lru_cache(maxsize=4)
def mountain_car_episodes(num_episodes: int, random_action_probability: float, discount: float,
                          environment_seed: int, max_episode_steps: int) -> Episodes:
    """``num_episodes`` episodes of gymnasium's MountainCar-v0 under the energy-pumping policy,
    their returns computed backward (see the module docstring); float64 arrays."""
    if gymnasium_missing():
        raise ImportError(GYMNASIUM_MISSING)
    import gymnasium

    environment = gymnasium.make(ENVIRONMENT, max_episode_steps=max_episode_steps)
    rng = np.random.default_rng(environment_seed)
    observations, rewards, returns, lengths, truncated = [], [], [], [], []
    for episode in range(num_episodes):
        observation, _ = environment.reset(seed=environment_seed if episode == 0 else None)
        episode_observations, episode_rewards = [], []
        ended = cut = False
        while not (ended or cut):
            episode_observations.append(observation)
            action = energy_pumping_action(observation[1], random_action_probability, rng)
            observation, reward, ended, cut, _ = environment.step(action)
            episode_rewards.append(reward)
        observations += episode_observations
        rewards += episode_rewards
        returns.append(discounted_returns(np.asarray(episode_rewards, np.float64), discount))
        lengths.append(len(episode_rewards))
        truncated.append(cut and not ended)
    lengths = np.asarray(lengths, np.int64)
    space = environment.observation_space
    environment.close()
    return Episodes(np.asarray(observations, np.float64), np.asarray(rewards, np.float64),
                    np.concatenate(returns), np.cumsum(lengths) - lengths, lengths,
                    np.asarray(truncated), np.asarray(space.low, np.float64),
                    np.asarray(space.high, np.float64))


# ---------------------------------------------------------------------------------------------
# The stream

class ClassicControlState(NamedTuple):
    key: jax.Array  # the stream key: the episode starting at step t is drawn from fold_in(key, t)
    step: jax.Array  # uint32, the index of the next step
    episode: jax.Array  # int32, the pool index of the current episode
    time_step: jax.Array  # int32, the position in it of the next state to serve
    previous: jax.Array  # int32, the pool row of the last state served (−1 before the first)


def serve_episodes(episodes: Episodes, state: ClassicControlState, draws: jax.Array):
    """A block of steps: the carry after it (episode, next time step, last row served) and per
    step the pool row of its state, the row served before it (−1 before the first), whether it
    starts an episode, its episode and its time step. ``draws``: the episode that each step
    starts, if it starts one."""
    lengths, starts = jnp.asarray(episodes.lengths, jnp.int32), jnp.asarray(episodes.starts,
                                                                            jnp.int32)

    def move(carry, draw):
        episode, time_step, previous = carry
        new = time_step >= lengths[episode]
        episode = jnp.where(new, draw, episode)
        time_step = jnp.where(new, 0, time_step)
        row = starts[episode] + time_step
        return (episode, time_step + 1, row), (row, previous, new, episode, time_step)

    return jax.lax.scan(move, (state.episode, state.time_step, state.previous), draws)


@recorded
def mountain_car(
    num_tilings: int = 8,
    tiles_per_dimension: int = 8,
    *,
    random_action_probability: float = 0.1,
    discount: float = 1.0,
    num_episodes: int = 1_000,
    environment_seed: int = 0,
    max_episode_steps: int = 500,
    features: str = "tiles",
    active_indices: bool = False,
) -> Problem:
    """Mountain Car under the energy-pumping policy, tile-coded (see the module docstring).

    Args:
      num_tilings: ``N`` ≥ 1 tilings.
      tiles_per_dimension: ``k`` ≥ 1 tiles across each dimension of the box (each tiling has
        ``k + 1``).
      random_action_probability: ``ε`` in [0, 1], the probability of a uniform random action.
      discount: ``γ`` in [0, 1] of the non-terminal transitions (and of the returns).
      num_episodes: ≥ 1 episodes in the pool that the stream draws from.
      environment_seed: integer ≥ 0, the seed of the environment and of the policy.
      max_episode_steps: ≥ 1, gymnasium's time limit: an episode is truncated there.
      features: ``"tiles"`` (the tile coder's binary features) or ``"observation"`` (the
        observation scaled to [−1, 1] across the box; the tile arguments are then unused).
      active_indices: with ``"tiles"``, serve each step's features as the indices of the
        active ones (:func:`tile_indices`: [num_tilings] int32) instead of the binary vector,
        for :class:`metastep.td.SparseSwiftTD`.
    """
    check_count("num_tilings", num_tilings)
    check_count("tiles_per_dimension", tiles_per_dimension)
    check_unit_interval("random_action_probability", random_action_probability)
    check_unit_interval("discount", discount)
    check_count("num_episodes", num_episodes)
    check_count("environment_seed", environment_seed, minimum=0)
    check_count("max_episode_steps", max_episode_steps)
    if features not in FEATURES:
        raise ValueError(f"`features` must be one of {FEATURES}, got {features!r}")
    if not isinstance(active_indices, bool):
        raise ValueError(f"`active_indices` must be True or False, got {active_indices!r}")
    if active_indices and features != "tiles":
        raise ValueError(f"`active_indices` needs features='tiles', got {features!r}")
    if gymnasium_missing():
        raise ImportError(GYMNASIUM_MISSING)
    tiled = features == "tiles"
    num_features = num_tile_features(num_tilings, tiles_per_dimension, 2) if tiled else 2

    def pool() -> Episodes:
        # float() fails on traced values: the engine then compiles the floats in.
        return mountain_car_episodes(num_episodes, float(random_action_probability),
                                     float(discount), environment_seed, max_episode_steps)

    def init(key: jax.Array) -> ClassicControlState:
        return ClassicControlState(key, jnp.uint32(0), jnp.int32(0),
                                   jnp.int32(BEFORE_FIRST_EPISODE), jnp.int32(-1))

    def generate(state: ClassicControlState, num_steps: int):
        episodes, dtype = pool(), jnp.result_type(float)
        keys = step_keys(state.key, state.step, num_steps)
        draws = jax.vmap(lambda key: jax.random.randint(key, (), 0, num_episodes,
                                                        jnp.int32))(keys)
        (episode, time_step, previous), (rows, previous_rows, new, indices, time_steps) = (
            serve_episodes(episodes, state, draws))
        rewards = jnp.asarray(episodes.rewards, dtype)
        reward = jnp.where(previous_rows < 0, 0.0, rewards[jnp.maximum(previous_rows, 0)])
        returns = jnp.asarray(episodes.returns, dtype)[rows]
        observations = jnp.asarray(episodes.observations, dtype)[rows]
        tile_coder = tile_indices if active_indices else tile_features
        x = (tile_coder(observations, episodes.low, episodes.high, num_tilings,
                        tiles_per_dimension) if tiled
             else scaled_observations(observations, episodes.low, episodes.high))
        target = TDTarget(reward, jnp.where(new, 0.0, discount).astype(dtype), returns)
        info = {"return": returns, "episode": indices, "time_step": time_steps,
                "truncated": jnp.asarray(episodes.truncated)[indices]}
        advanced = ClassicControlState(state.key, state.step + num_steps, episode, time_step,
                                       previous)
        return advanced, Sample(x, target, info)

    return Problem(
        name="mountain_car",
        num_features=num_features,
        params={"environment": ENVIRONMENT, "num_tilings": num_tilings,
                "tiles_per_dimension": tiles_per_dimension,
                "random_action_probability": random_action_probability, "discount": discount,
                "num_episodes": num_episodes, "environment_seed": environment_seed,
                "max_episode_steps": max_episode_steps,
                # Named only when not the default: the tile-coded params stay as they were.
                **({} if tiled else {"features": features}),
                **({"active_indices": True} if active_indices else {})},
        init=init,
        generate=generate,
        description=(f"{ENVIRONMENT} under energy pumping (ε = {random_action_probability}), "
                     + (f"{num_tilings} tilings of {tiles_per_dimension}² tiles"
                        + (" (served as active indices)" if active_indices else "") if tiled
                        else "the observation scaled to [−1, 1]")
                     + f", γ = {discount}, {num_episodes} episodes"),
    )
