"""The random walk stream: its true values against the Bellman equations, its episodes and
features, and its independence of the blocks it is read in."""

import jax
import numpy as np
import pytest

import metastep as ms
from metastep.problems import random_walk, random_walk_values


def bellman_residual(values, discount, right_probability):
    """``v(s) − Σ p(s'|s) [r + γ v(s')]`` with the terminal transitions' discount 0."""
    n = len(values)
    p = right_probability
    residual = np.empty(n)
    for s in range(n):
        right = 1.0 if s == n - 1 else discount * values[s + 1]
        left = -1.0 if s == 0 else discount * values[s - 1]
        residual[s] = values[s] - (p * right + (1 - p) * left)
    return residual


@pytest.mark.parametrize("num_states, discount, right_probability",
                         [(19, 1.0, 0.5), (19, 0.9, 0.5), (5, 0.95, 0.7)])
def test_true_values_solve_the_bellman_equations(x64, num_states, discount, right_probability):
    values = np.asarray(random_walk_values(num_states, discount, right_probability))
    np.testing.assert_allclose(bellman_residual(values, discount, right_probability), 0,
                               atol=1e-12)


def test_true_values_of_the_book(x64):
    np.testing.assert_allclose(random_walk_values(19, 1.0, 0.5), (np.arange(19) - 9) / 10,
                               atol=1e-12)
    np.testing.assert_allclose(random_walk_values(5, 1.0, 0.5), np.arange(1, 6) / 3 - 1,
                               atol=1e-12)


@pytest.fixture(scope="module")
def stream():
    return random_walk(19).sample(jax.random.PRNGKey(3), 3000)


def test_episodes(stream):
    states = np.asarray(stream.info["state"])
    rewards, discounts = np.asarray(stream.y.reward), np.asarray(stream.y.discount)
    ended = discounts == 0
    # Step 0 and every episode's first step start in the middle, after a discount 0.
    assert ended[0] and states[0] == 9 and rewards[0] == 0
    np.testing.assert_array_equal(states[ended], 9)
    # Elsewhere a move of one state, reward 0, discount 1.
    moves = np.diff(states)[~ended[1:]]
    np.testing.assert_array_equal(np.abs(moves), 1)
    np.testing.assert_array_equal(rewards[~ended], 0)
    np.testing.assert_array_equal(discounts[~ended], 1)
    # An episode ends from an end state: left with −1, right with +1.
    previous = states[:-1][ended[1:]]
    np.testing.assert_array_equal(rewards[1:][ended[1:]], np.where(previous == 0, -1, 1))
    assert set(previous) == {0, 18} and ended.sum() > 5
    # One-hot features and the true value of each step's state.
    np.testing.assert_array_equal(np.argmax(stream.x, axis=1), states)
    np.testing.assert_allclose(stream.y.value, (states - 9) / 10, atol=1e-6)


def test_aggregation_features():
    problem = random_walk(19, "aggregation", num_groups=5)
    assert problem.num_features == 5
    samples = problem.sample(jax.random.PRNGKey(3), 2000)
    states = np.asarray(samples.info["state"])
    np.testing.assert_array_equal(np.argmax(samples.x, axis=1), states * 5 // 19)
    np.testing.assert_array_equal(np.sum(samples.x, axis=1), 1)


@pytest.mark.parametrize("features", ["tabular", "aggregation"])
def test_active_indices_serve_the_one_hot_features_as_indices(features):
    one_hot, indexed = (random_walk(19, features, active_indices=active).sample(
        jax.random.PRNGKey(3), 500) for active in (False, True))
    assert indexed.x.shape == (500, 1) and indexed.x.dtype == np.int32
    np.testing.assert_array_equal(indexed.x[:, 0], np.argmax(one_hot.x, axis=1))
    for mine, theirs in zip(jax.tree.leaves((indexed.y, indexed.info)),
                            jax.tree.leaves((one_hot.y, one_hot.info)), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_switching_rewards():
    samples = random_walk(19, switch_every=500).sample(jax.random.PRNGKey(3), 2000)
    sign = np.where((np.arange(2000) // 500) % 2 == 0, 1.0, -1.0)
    states = np.asarray(samples.info["state"])
    np.testing.assert_allclose(samples.y.value, sign * (states - 9) / 10, atol=1e-6)
    ended = np.asarray(samples.y.discount)[1:] == 0
    unsigned = np.where(states[:-1][ended] == 0, -1.0, 1.0)
    np.testing.assert_array_equal(np.asarray(samples.y.reward)[1:][ended],
                                  sign[1:][ended] * unsigned)
    assert len(set(sign[1:][ended])) == 2


def test_stream_does_not_depend_on_blocks(stream):
    problem = random_walk(19)
    generate = jax.jit(problem.generate, static_argnums=1)
    state, first = generate(problem.init(jax.random.PRNGKey(3)), 1234)
    _, second = generate(state, 3000 - 1234)
    joined = jax.tree.map(lambda a, b: np.concatenate([a, b]), first, second)
    for whole, part in zip(jax.tree.leaves(stream), jax.tree.leaves(joined)):
        np.testing.assert_array_equal(whole, part)


@pytest.mark.parametrize("arguments, name", [
    ({"num_states": 1}, "num_states"), ({"features": "tiles"}, "features"),
    ({"features": "aggregation", "num_groups": 20}, "num_groups"), ({"discount": 1.5}, "discount"),
    ({"right_probability": -0.1}, "right_probability"), ({"switch_every": 0}, "switch_every"),
    ({"active_indices": "yes"}, "active_indices"),
])
def test_bad_arguments_are_named(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        ms.problems.random_walk(**arguments)
