"""Noisy tracking (the talk; Degris et al. 2024): regimes, noise variances, the Kalman formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metastep.problems import (
    fixed_step_size_mse,
    noise_variances,
    noisy_tracking,
    optimal_mse,
    optimal_step_size,
    steady_state_gain,
    steady_state_variance,
)

STEPS, REGIME = 20_000, 1_000
PROBLEMS = {preset: noisy_tracking(preset, regime_length=REGIME) for preset in ("talk", "paper")}
SIGMAS = np.array([0.0, 1e-3, 0.1, 0.5, 1.0, 2.0, 3.0, 10.0])


@pytest.fixture(scope="module")
def streams(blocks):
    return {
        preset: blocks(problem, jax.random.key(0), [STEPS])[1]
        for preset, problem in PROBLEMS.items()
    }


@pytest.fixture(params=["talk", "paper"])
def preset_and_stream(request, streams):
    return request.param, streams[request.param]


# --- The formulas ------------------------------------------------------------------------------


def test_closed_forms_agree_with_the_general_kalman_gain(x64):
    talk = 2 / (1 + np.sqrt(1 + 4 * SIGMAS**2))
    paper = (-(SIGMAS**2) + np.sqrt(SIGMAS**4 + 4 * SIGMAS**2)) / 2
    np.testing.assert_allclose(optimal_step_size(SIGMAS, "talk"), talk, rtol=1e-12)
    np.testing.assert_allclose(optimal_step_size(SIGMAS, "paper"), paper, rtol=1e-12, atol=1e-15)
    q, r = noise_variances(SIGMAS, "paper")
    p = (q + np.sqrt(q**2 + 4 * q * r)) / 2
    np.testing.assert_allclose(steady_state_variance(q, r), p, rtol=1e-12)
    np.testing.assert_allclose(steady_state_gain(q, r), p / (p + r), rtol=1e-12)


@pytest.mark.parametrize(
    "sigma, preset, alpha, mse",
    [
        (0.0, "talk", 1.0, 1.0),  # r = 0: the observation is z itself
        (1.0, "talk", 2 / (1 + np.sqrt(5)), (1 + np.sqrt(5)) / 2 + 1),
        (np.sqrt(2), "talk", 0.5, 4.0),  # q = 1, r = 2: P = 2
        (np.sqrt(6), "talk", 1 / 3, 9.0),  # q = 1, r = 6: P = 3
        (0.0, "paper", 0.0, 1.0),  # q = 0: z never moves, average all observations
        (np.sqrt(0.5), "paper", 0.5, 2.0),  # q = 1/2, r = 1: P = 1
        (np.sqrt(4 / 3), "paper", 2 / 3, 3.0),  # q = 4/3, r = 1: P = 2
    ],
)
def test_hand_computed_values(sigma, preset, alpha, mse):
    np.testing.assert_allclose(optimal_step_size(sigma, preset), alpha, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(optimal_mse(sigma, preset), mse, rtol=1e-6)


def test_no_nan_at_zero_noise():
    assert float(steady_state_gain(0.0, 0.0)) == 1.0
    assert float(steady_state_variance(0.0, 0.0)) == 0.0
    for preset in ("talk", "paper"):
        assert np.isfinite(optimal_step_size(0.0, preset)) and np.isfinite(optimal_mse(0.0, preset))


@pytest.mark.parametrize("preset", ["talk", "paper"])
def test_the_optimal_step_size_minimizes_the_fixed_step_size_mse(preset, x64):
    sigmas = SIGMAS[1:]
    alpha = optimal_step_size(sigmas, preset)
    np.testing.assert_allclose(
        fixed_step_size_mse(alpha, sigmas, preset), optimal_mse(sigmas, preset), rtol=1e-12
    )
    for factor in (0.9, 1.1):
        assert np.all(
            fixed_step_size_mse(factor * alpha, sigmas, preset) > optimal_mse(sigmas, preset)
        )


def test_published_paper_preset_averages(x64):
    # Degris et al. 2024, σ ~ U(0, 3): optimal tracker 4.660, best single fixed α ≈ 0.79 gets 4.791.
    sigmas = (np.arange(3_000) + 0.5) / 1_000  # midpoints of a grid on [0, 3]
    assert round(float(np.mean(optimal_mse(sigmas, "paper"))), 3) == 4.660
    alphas = np.linspace(0.6, 1.0, 401)
    average = np.mean(fixed_step_size_mse(alphas[:, None], sigmas, "paper"), axis=1)
    assert abs(alphas[np.argmin(average)] - 0.79) < 0.01
    assert round(float(np.min(average)), 3) == 4.791


# --- The stream --------------------------------------------------------------------------------


def test_shapes_and_constant_input(preset_and_stream):
    _, stream = preset_and_stream
    assert stream.x.shape == (STEPS, 1) and stream.y.shape == (STEPS,)
    np.testing.assert_array_equal(stream.x, 1.0)
    assert stream.info["true_weights"].shape == (STEPS, 1)
    for name in ("sigma", "optimal_step_size", "optimal_mse"):
        assert stream.info[name].shape == (STEPS,)
    assert stream.info["true_weights"][0, 0] == 0.0  # z_0 = 0


def test_sigma_is_constant_in_a_regime_and_redrawn_at_boundaries(preset_and_stream):
    preset, stream = preset_and_stream
    sigma = stream.info["sigma"].reshape(STEPS // REGIME, REGIME)
    assert np.all(sigma == sigma[:, :1])
    assert len(np.unique(sigma[:, 0])) == STEPS // REGIME
    assert np.all((sigma >= 0) & (sigma <= 3))
    np.testing.assert_allclose(
        stream.info["optimal_step_size"], optimal_step_size(stream.info["sigma"], preset)
    )
    np.testing.assert_allclose(
        stream.info["optimal_mse"], optimal_mse(stream.info["sigma"], preset)
    )


def test_increments_have_variance_q_and_observation_noise_variance_r(preset_and_stream):
    preset, stream = preset_and_stream
    z = stream.info["true_weights"][:, 0].astype(np.float64)
    q, r = (np.asarray(v, np.float64) for v in noise_variances(stream.info["sigma"], preset))
    increments, noise = np.diff(z), stream.y - z
    # Standardized, both are N(0, 1): over 20,000 steps the variance has sd 0.01.
    assert abs(np.mean(increments**2 / q[:-1]) - 1) < 0.05
    assert abs(np.mean(noise**2 / r) - 1) < 0.05
    assert abs(np.mean(increments / np.sqrt(q[:-1]))) < 0.04
    assert abs(np.corrcoef(increments, noise[:-1])[0, 1]) < 0.04
    # Unstandardized too: the raw means follow σ from regime to regime.
    assert abs(np.mean(increments**2) / np.mean(q[:-1]) - 1) < 0.1
    assert abs(np.mean(noise**2) / np.mean(r) - 1) < 0.1


def test_the_optimal_tracker_reaches_the_optimal_mse(preset_and_stream):
    # w ← w + α* (y* − w), predicting before each update: the mean squared error is P + r.
    preset, stream = preset_and_stream
    y, alpha = stream.y.astype(np.float64), stream.info["optimal_step_size"].astype(np.float64)
    w, errors = 0.0, np.empty(STEPS)
    for t in range(STEPS):
        errors[t] = y[t] - w
        w += alpha[t] * errors[t]
    settled = np.arange(STEPS) % REGIME >= 100  # leave the transient after each σ change
    np.testing.assert_allclose(
        np.mean(errors[settled] ** 2), np.mean(stream.info["optimal_mse"][settled]), rtol=0.05
    )


def test_stream_does_not_depend_on_block_sizes(blocks, streams_equal, streams):
    # One preset is enough (the code is shared); the single block is the first 3,000 of 20,000.
    whole = streams["paper"]
    state, parts = blocks(PROBLEMS["paper"], jax.random.key(0), [1_000, 500, 1_500])
    streams_equal(jax.tree.map(lambda a: a[:3_000], whole), parts)
    # The state after 3,000 steps is the one that serves step 3,000 of the single block.
    assert int(state.step) == 3_000
    assert state.z == whole.info["true_weights"][3_000, 0]
    assert state.sigma == whole.info["sigma"][2_999]


def test_same_key_same_stream_other_key_other_stream(blocks, streams_equal, preset_and_stream):
    preset, stream = preset_and_stream
    streams_equal(stream, blocks(PROBLEMS[preset], jax.random.key(0), [STEPS])[1])
    assert not np.array_equal(stream.y, blocks(PROBLEMS[preset], jax.random.key(1), [STEPS])[1].y)


def test_sigma_is_uniform_and_sigma_max_may_be_traced_or_zero():
    # A new σ at every step; three values of sigma_max in one compiled, vmapped stream.
    def stream(sigma_max):
        return noisy_tracking(regime_length=1, sigma_max=sigma_max).sample(jax.random.key(6), 400)

    samples = jax.vmap(stream)(jnp.array([0.0, 1.0, 3.0]))
    sigma = np.asarray(samples.info["sigma"])
    np.testing.assert_array_equal(3 * sigma[1], sigma[2])  # σ = sigma_max · U(0, 1)
    # U(0, 3) over 400 draws: mean 1.5 (sd 0.043), variance 0.75.
    assert abs(np.mean(sigma[2]) - 1.5) < 0.18 and abs(np.var(sigma[2]) - 0.75) < 0.15
    # σ = 0 in the talk preset: r = 0, y* = z exactly, α* = 1, and no NaN anywhere.
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(samples))
    np.testing.assert_array_equal(samples.y[0], samples.info["true_weights"][0, :, 0])
    np.testing.assert_array_equal(samples.info["optimal_step_size"][0], 1.0)


def test_float64_under_x64(x64):
    problem = PROBLEMS["paper"]
    state = problem.init(jax.random.key(0))
    samples = jax.eval_shape(lambda s: problem.generate(s, 10), state)[1]
    assert state.z.dtype == state.sigma.dtype == jnp.float64
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(samples))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"preset": "other"}, "preset"),
        ({"regime_length": 0}, "regime_length"),
        ({"regime_length": 50_000.0}, "regime_length"),
        ({"sigma_max": -1.0}, "sigma_max"),
        ({"sigma_max": float("inf")}, "sigma_max"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        noisy_tracking(**kwargs)


def test_bad_preset_in_formulas_raises():
    with pytest.raises(ValueError, match="`preset`"):
        optimal_step_size(1.0, "Talk")
