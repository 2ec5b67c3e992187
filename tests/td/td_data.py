"""Shared by the TD tests: random non-stationary TD data with episode ends, and a scan of a TD
learner over it."""

import jax
import jax.numpy as jnp
import numpy as np

from metastep.td import TDTarget


def drifting_rewards(rng, steps: int, num_features: int, value_of) -> np.ndarray:
    """``value_of(t, w_t)`` plus noise, for weights ``w_t`` that drift and flip sign."""
    weights = rng.normal(size=num_features)
    rewards = np.empty(steps)
    for t in range(steps):
        if t % 200 == 0:
            weights[rng.integers(num_features)] *= -1.0
        weights += 0.02 * rng.normal(size=num_features)
        rewards[t] = value_of(t, weights) + 0.1 * rng.normal()
    return rewards


def td_data(seed: int, steps: int = 1200, num_features: int = 6, discount: float = 0.9,
            end_probability: float = 0.05):
    """Features of different scales in [0, scale], rewards from weights that drift and flip sign,
    per-step discounts that are 0 at random episode ends (float64 NumPy arrays)."""
    rng = np.random.default_rng(seed)
    scales = np.geomspace(0.2, 1.0, num_features)
    xs = rng.uniform(size=(steps, num_features)) * scales
    rewards = drifting_rewards(rng, steps, num_features, lambda t, weights: xs[t] @ weights)
    discounts = np.where(rng.uniform(size=steps) < end_probability, 0.0, discount)
    return xs, rewards, discounts


def run_td(learner, xs, rewards, discounts):
    """Predictions, TD errors and per-step step sizes of ``learner`` stepped over the data."""
    targets = TDTarget(jnp.asarray(rewards), jnp.asarray(discounts), jnp.zeros(len(rewards)))
    run = jax.jit(lambda state, xs, ys: jax.lax.scan(
        lambda s, xy: learner.step(s, *xy), state, (xs, ys)))
    _, outputs = run(learner.init(), jnp.asarray(xs), targets)
    return (np.asarray(outputs.prediction), np.asarray(outputs.error),
            np.asarray(outputs.step_sizes))


def transitions(xs, rewards, discounts):
    """The data as the papers' transitions ``(φ, γ into φ, φ', R, γ)``: φ = 0 before the first
    step."""
    previous = np.vstack([np.zeros(xs.shape[1]), xs[:-1]])
    previous_discounts = np.concatenate([[0.0], discounts[:-1]])
    return zip(previous, previous_discounts, xs, rewards, discounts)


def sparse_td_data(seed: int, steps: int = 1500, num_features: int = 40, active: int = 4,
                   binary: bool = True, discount: float = 0.9, end_probability: float = 0.05):
    """Sparse TD data: ``active`` distinct random feature indices per step (int [T, k]), their
    values (1 for binary features, else in (0, 1]), rewards from weights that drift and flip
    sign, per-step discounts that are 0 at random episode ends (float64 NumPy arrays)."""
    rng = np.random.default_rng(seed)
    indices = np.argsort(rng.uniform(size=(steps, num_features)), axis=1)[:, :active]
    values = np.ones((steps, active)) if binary else 1.0 - rng.uniform(size=(steps, active))
    rewards = drifting_rewards(rng, steps, num_features,
                               lambda t, weights: weights[indices[t]] @ values[t])
    discounts = np.where(rng.uniform(size=steps) < end_probability, 0.0, discount)
    return indices, values, rewards, discounts
