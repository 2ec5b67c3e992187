"""Mountain Car under energy pumping (gymnasium's MountainCar-v0): the pool of episodes, the
stream served from it (determinism, blocks, the TD targets' convention), the Monte-Carlo returns
against a direct sum, truncation, the tile coder and bad arguments. Skipped without gymnasium."""

import jax
import numpy as np
import pytest

pytest.importorskip("gymnasium", reason="gymnasium (the `experiments` and `test` extras) is not "
                    "installed: ms.problems.mountain_car plays its episodes with it")

import metastep as ms  # noqa: E402
from metastep.problems import classic_control  # noqa: E402
from metastep.problems.classic_control import (  # noqa: E402
    mountain_car_episodes,
    tile_features,
    tile_indices,
)

DISCOUNT = 0.95
EPISODES = 12
STEPS = 2_500  # about 18 episodes: the pool of 12 is drawn from more than once
PROBLEM = ms.problems.mountain_car(4, 5, discount=DISCOUNT, num_episodes=EPISODES)
LOW, HIGH = np.array([-1.2, -0.07]), np.array([0.6, 0.07])


@pytest.fixture(scope="module")
def pool():
    return mountain_car_episodes(EPISODES, 0.1, DISCOUNT, 0, 500)


@pytest.fixture(scope="module")
def stream(blocks):
    return blocks(PROBLEM, jax.random.key(0), [STEPS])[1]


def test_the_stream_depends_on_its_key_only(blocks, stream, streams_equal):
    streams_equal(blocks(PROBLEM, jax.random.key(0), [STEPS])[1], stream)
    other = blocks(PROBLEM, jax.random.key(1), [STEPS])[1]
    assert not np.array_equal(other.info["episode"], stream.info["episode"])


def test_the_stream_does_not_depend_on_blocks(blocks, stream, streams_equal):
    streams_equal(blocks(PROBLEM, jax.random.key(0), [1000, 1000, 500])[1], stream)


def test_the_pool_is_the_environment_seeds(pool):
    """Gymnasium and the policy seeded alike play the same episodes; another seed others."""
    again = mountain_car_episodes.__wrapped__(EPISODES, 0.1, DISCOUNT, 0, 500)
    for mine, theirs in zip(pool, again, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    other = mountain_car_episodes.__wrapped__(EPISODES, 0.1, DISCOUNT, 1, 500)
    assert not np.array_equal(other.lengths, pool.lengths)
    np.testing.assert_array_equal(pool.low, LOW.astype(np.float32))
    np.testing.assert_array_equal(pool.high, HIGH.astype(np.float32))
    # Energy pumping reaches the goal well within the time limit: no episode is cut.
    assert not pool.truncated.any() and 80 < pool.lengths.min() and pool.lengths.max() < 300


def test_the_stream_serves_whole_episodes_of_the_pool(stream, pool):
    episodes, time_steps = stream.info["episode"], stream.info["time_step"]
    starts = time_steps == 0
    # Every episode is served from its first state to its last, then the next one begins.
    assert starts[0] and len(np.unique(episodes[starts])) > 5
    following = ~starts[1:]
    np.testing.assert_array_equal(time_steps[1:][following], time_steps[:-1][following] + 1)
    np.testing.assert_array_equal(episodes[1:][following], episodes[:-1][following])
    ended = np.flatnonzero(starts)[1:] - 1
    np.testing.assert_array_equal(time_steps[ended], pool.lengths[episodes[ended]] - 1)
    # The features tile-code the pool's observations of the states served.
    rows = pool.starts[episodes] + time_steps
    expected = tile_features(pool.observations[rows].astype(np.float32), LOW, HIGH, 4, 5)
    np.testing.assert_array_equal(stream.x, expected)


def test_td_targets_follow_the_streaming_convention(stream, pool):
    starts = stream.info["time_step"] == 0
    np.testing.assert_array_equal(stream.y.discount,
                                  np.where(starts, 0.0, np.float32(DISCOUNT)))
    # The reward of the transition into each state: 0 before the first, −1 otherwise (the
    # terminal transition's −1 arrives with the next episode's first state).
    assert stream.y.reward[0] == 0
    np.testing.assert_array_equal(stream.y.reward[1:], -1.0)
    assert not stream.info["truncated"].any()


def test_returns_equal_a_direct_sum_over_the_episode(stream, pool):
    """G_k = Σ_j γ^j r_{k+1+j}, summed forward over the episode's rewards in float64."""
    episodes, time_steps = stream.info["episode"], stream.info["time_step"]
    direct = np.empty(STEPS)
    for t, (episode, k) in enumerate(zip(episodes, time_steps)):
        start, length = pool.starts[episode], pool.lengths[episode]
        rewards = pool.rewards[start + k:start + length]
        direct[t] = np.sum(DISCOUNT ** np.arange(len(rewards)) * rewards)
    np.testing.assert_allclose(stream.info["return"], direct, rtol=1e-6)
    np.testing.assert_array_equal(stream.y.value, stream.info["return"])
    # With γ = 1 the return is minus the steps left to the goal.
    undiscounted = mountain_car_episodes(EPISODES, 0.1, 1.0, 0, 500)
    steps_left = np.concatenate([np.arange(n, 0, -1) for n in undiscounted.lengths])
    np.testing.assert_array_equal(undiscounted.returns, -steps_left)


def test_observation_features_are_the_observations_scaled_to_the_box(blocks, stream, pool):
    """features="observation": the same stream (targets, info) serving the observation mapped
    onto [−1, 1]; the tile-coded problem's params do not name the option."""
    problem = ms.problems.mountain_car(4, 5, discount=DISCOUNT, num_episodes=EPISODES,
                                       features="observation")
    observed = blocks(problem, jax.random.key(0), [STEPS])[1]
    rows = pool.starts[stream.info["episode"]] + stream.info["time_step"]
    scaled = 2 * (pool.observations[rows] - pool.low) / (pool.high - pool.low) - 1
    assert problem.num_features == 2 and problem.params["features"] == "observation"
    assert "features" not in PROBLEM.params
    np.testing.assert_allclose(observed.x, scaled, rtol=1e-5, atol=1e-6)
    assert np.abs(observed.x).max() <= 1 + 1e-6
    for mine, theirs in zip(jax.tree.leaves((observed.y, observed.info)),
                            jax.tree.leaves((stream.y, stream.info)), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_active_indices_are_the_tiles_that_are_one(blocks, stream):
    """active_indices=True: the same stream, each step's binary features as the indices of the
    ones that are 1 (one per tiling), named in the params only when set."""
    problem = ms.problems.mountain_car(4, 5, discount=DISCOUNT, num_episodes=EPISODES,
                                       active_indices=True)
    indexed = blocks(problem, jax.random.key(0), [STEPS])[1]
    assert indexed.x.shape == (STEPS, 4) and indexed.x.dtype == np.int32
    assert problem.num_features == PROBLEM.num_features and problem.params["active_indices"]
    assert "active_indices" not in PROBLEM.params
    rows = np.zeros_like(stream.x)
    np.put_along_axis(rows, np.asarray(indexed.x), 1.0, axis=1)
    np.testing.assert_array_equal(rows, stream.x)
    for mine, theirs in zip(jax.tree.leaves((indexed.y, indexed.info)),
                            jax.tree.leaves((stream.y, stream.info)), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_a_truncated_episode_sums_its_rewards_up_to_the_cut():
    cut = mountain_car_episodes.__wrapped__(3, 0.1, DISCOUNT, 0, 40)
    np.testing.assert_array_equal(cut.lengths, 40)
    assert cut.truncated.all()
    np.testing.assert_allclose(cut.returns[:40], -(1 - DISCOUNT ** np.arange(40, 0, -1))
                               / (1 - DISCOUNT), rtol=1e-12)
    samples = ms.problems.mountain_car(2, 2, num_episodes=3, max_episode_steps=40).sample(
        jax.random.key(0), 100)
    assert samples.info["truncated"].all()
    np.testing.assert_array_equal(samples.y.discount, np.where(np.arange(100) % 40 == 0, 0, 1))


def test_float64_under_x64(x64):
    state = PROBLEM.init(jax.random.key(0))
    samples = jax.eval_shape(lambda s: PROBLEM.generate(s, 10), state)[1]
    assert samples.x.dtype == samples.y.value.dtype == samples.y.reward.dtype == np.float64


def test_the_tile_coder_has_one_active_tile_per_tiling():
    points = np.random.default_rng(0).uniform(LOW, HIGH, (500, 2))
    points[:2] = LOW, HIGH  # the corners of the box
    indices = np.asarray(tile_indices(points, LOW, HIGH, 8, 6))
    per_tiling = 7 * 7
    assert indices.shape == (500, 8)
    # Tiling i's active tile lies in its own block of (6 + 1)² features.
    np.testing.assert_array_equal(indices // per_tiling, np.broadcast_to(np.arange(8), (500, 8)))
    features = np.asarray(tile_features(points, LOW, HIGH, 8, 6))
    assert features.shape == (500, classic_control.num_tile_features(8, 6, 2)) == (500, 392)
    np.testing.assert_array_equal(features.sum(1), 8)
    np.testing.assert_array_equal(np.sort(np.flatnonzero(features[7])), np.sort(indices[7]))
    # Outside the box a point counts as the nearest point of the box.
    np.testing.assert_array_equal(tile_indices(HIGH + 1, LOW, HIGH, 8, 6), indices[1])
    # Integer observations are coded as the same numbers in floating point.
    np.testing.assert_array_equal(tile_features(np.array([0, 0]), LOW, HIGH, 8, 6),
                                  tile_features(np.array([0.0, 0.0]), LOW, HIGH, 8, 6))


def test_neighbouring_states_share_tiles():
    width = (HIGH - LOW) / 6
    rng = np.random.default_rng(1)
    points = rng.uniform(LOW + width, HIGH - width, (300, 2))

    def shared(step):
        near = tile_indices(points + step, LOW, HIGH, 8, 6)
        return (np.asarray(near) == np.asarray(tile_indices(points, LOW, HIGH, 8, 6))).sum(1)

    # A move of a small fraction of a tile changes a few tilings at most; a move of a tile's
    # width along a dimension leaves no tile shared; in between, fewer tiles are shared the
    # farther the move (coarse coding).
    assert shared(width / 64).min() >= 6
    assert shared(width * np.array([1.0, 0.0])).max() == 0
    means = [shared(width * fraction).mean() for fraction in (0.1, 0.3, 0.6)]
    assert 8 > means[0] > means[1] > means[2] > 0


def test_the_tilings_are_offset_asymmetrically():
    """Tiling i is offset by i (1, 3) / N of a tile: a point moved along the diagonal by 1/N of
    a tile changes tilings differently along the two dimensions."""
    offsets = (np.arange(8)[:, None] * np.array([1, 3]) % 8) / 8
    assert len({tuple(row) for row in offsets}) == 8
    corner = tile_indices(LOW, LOW, HIGH, 8, 6)
    cells = (np.asarray(corner) % 49)
    np.testing.assert_array_equal(cells % 7, np.floor(offsets[:, 0]))
    np.testing.assert_array_equal(cells // 7, np.floor(offsets[:, 1]))
    just_inside = LOW + (HIGH - LOW) / 6 * (1 - offsets[5])  # tiling 5's next tile, both axes
    moved = np.asarray(tile_indices(just_inside + 1e-9, LOW, HIGH, 8, 6))[5] % 49
    assert moved == 1 + 7


@pytest.mark.parametrize("arguments, name", [
    ({"num_tilings": 0}, "num_tilings"), ({"tiles_per_dimension": 1.5}, "tiles_per_dimension"),
    ({"low": HIGH}, "low"), ({"high": HIGH[:1]}, "high"),
])
def test_bad_tile_coder_arguments_are_named(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        tile_indices(LOW, **{"low": LOW, "high": HIGH, "num_tilings": 4,
                             "tiles_per_dimension": 3, **arguments})


def test_a_missing_gymnasium_is_named(monkeypatch):
    monkeypatch.setattr(classic_control, "gymnasium_missing",
                        lambda: classic_control.GYMNASIUM_MISSING)
    with pytest.raises(ImportError, match="gymnasium"):
        ms.problems.mountain_car()


@pytest.mark.parametrize("arguments, name", [
    ({"num_tilings": 0}, "num_tilings"), ({"tiles_per_dimension": 2.5}, "tiles_per_dimension"),
    ({"random_action_probability": 1.5}, "random_action_probability"),
    ({"discount": -0.1}, "discount"), ({"num_episodes": 0}, "num_episodes"),
    ({"environment_seed": -1}, "environment_seed"), ({"max_episode_steps": 0},
                                                     "max_episode_steps"),
    ({"features": "pixels"}, "features"), ({"active_indices": 1.0}, "active_indices"),
    ({"features": "observation", "active_indices": True}, "active_indices"),
])
def test_bad_arguments_are_named(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        ms.problems.mountain_car(**arguments)
