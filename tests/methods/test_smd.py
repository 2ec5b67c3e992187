"""SMD against a NumPy transcription of the rule in docs/methods.md#smd, and its behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metastep.methods as ms
from helpers import run_learner

META_STEP_SIZE = 0.01
INITIAL_STEP_SIZE = 0.05


def smd_reference(xs, ys, mu, alpha0, decay, min_gain_factor=0.5, diagonal=False):
    """Schraudolph (1999) for a linear unit: C v = x (x·v), or its diagonal x² v."""
    w = np.zeros(xs.shape[1])
    p = np.full(xs.shape[1], alpha0)
    v = np.zeros(xs.shape[1])
    predictions, step_sizes = [], []
    for x, y in zip(xs, ys):
        prediction = w @ x
        g = -(y - prediction) * x
        curvature_times_v = x * x * v if diagonal else x * (x @ v)
        p = p * np.maximum(min_gain_factor, 1.0 - mu * g * v)
        w = w - p * g
        v = decay * v - p * (g + decay * curvature_times_v)
        predictions.append(prediction)
        step_sizes.append(p)
    return np.array(predictions), np.array(step_sizes)


@pytest.mark.parametrize(("seed", "decay"), [(0, 1.0), (1, 0.9)])
def test_matches_numpy_transcription(x64, nonstationary_data, seed, decay):
    xs, ys = nonstationary_data(seed, steps=1500, num_features=5)
    method = ms.smd(META_STEP_SIZE, INITIAL_STEP_SIZE, decay)
    predictions, step_sizes = run_learner(method, xs, ys)
    expected_predictions, expected_step_sizes = smd_reference(
        xs, ys, META_STEP_SIZE, INITIAL_STEP_SIZE, decay
    )
    assert np.ptp(np.log(expected_step_sizes)) > 0.5
    np.testing.assert_allclose(predictions, expected_predictions, rtol=1e-9)
    np.testing.assert_allclose(step_sizes, expected_step_sizes, rtol=1e-9)
    # The full product matters: the diagonal rule gives other step sizes.
    _, diagonal_step_sizes = smd_reference(
        xs, ys, META_STEP_SIZE, INITIAL_STEP_SIZE, decay, diagonal=True
    )
    assert not np.allclose(step_sizes, diagonal_step_sizes, rtol=1e-3)


def test_min_gain_factor_binds(x64, nonstationary_data):
    """A large μ makes 1 − μ g v fall below ϱ: the gain is then cut by exactly ϱ."""
    xs, ys = nonstationary_data(2, steps=1000, num_features=5)
    meta_step_size, min_gain_factor = 0.1, 0.9
    method = ms.smd(meta_step_size, INITIAL_STEP_SIZE, min_gain_factor=min_gain_factor)
    predictions, step_sizes = run_learner(method, xs, ys)
    ratios = step_sizes[1:] / step_sizes[:-1]
    assert ratios.min() >= min_gain_factor * (1 - 1e-12)
    assert np.all(np.isfinite(step_sizes))
    assert np.sum(np.isclose(ratios, min_gain_factor, rtol=1e-12)) > 5
    expected = smd_reference(
        xs, ys, meta_step_size, INITIAL_STEP_SIZE, 1.0, min_gain_factor=min_gain_factor
    )
    np.testing.assert_allclose(predictions, expected[0], rtol=1e-9)
    np.testing.assert_allclose(step_sizes, expected[1], rtol=1e-9)


def test_falls_back_to_diagonal_curvature(x64, nonstationary_data):
    """Without ``curvature_vector_product``, C v is ``curvature * v``."""
    xs, ys = nonstationary_data(3, steps=1000, num_features=5)
    method = ms.smd(META_STEP_SIZE, INITIAL_STEP_SIZE)

    def step(carry, data):
        weights, opt_state = carry
        x, y = data
        prediction = weights @ x
        updates, opt_state = method.update(
            -(y - prediction) * x, opt_state, weights, curvature=x * x
        )
        return (weights + updates, opt_state), (prediction, opt_state.step_sizes)

    weights = jnp.zeros(5)
    run = jax.jit(lambda carry, xs, ys: jax.lax.scan(step, carry, (xs, ys)))
    _, (predictions, step_sizes) = run((weights, method.init(weights)), jnp.asarray(xs), ys)
    expected = smd_reference(xs, ys, META_STEP_SIZE, INITIAL_STEP_SIZE, 1.0, diagonal=True)
    np.testing.assert_allclose(predictions, expected[0], rtol=1e-9)
    np.testing.assert_allclose(step_sizes, expected[1], rtol=1e-9)


def test_zero_meta_step_size_is_lms(x64, nonstationary_data):
    xs, ys = nonstationary_data(4, steps=1500, num_features=5)
    predictions, step_sizes = run_learner(ms.smd(0.0, INITIAL_STEP_SIZE), xs, ys)
    w = np.zeros(5)
    expected_predictions = []
    for x, y in zip(xs, ys):
        expected_predictions.append(w @ x)
        w = w + INITIAL_STEP_SIZE * (y - w @ x) * x
    np.testing.assert_allclose(predictions, expected_predictions, rtol=1e-9)
    np.testing.assert_allclose(step_sizes, INITIAL_STEP_SIZE, rtol=1e-12)


def test_step_sizes_ignore_the_sign_of_the_target(x64, nonstationary_data):
    xs, ys = nonstationary_data(5, steps=1500, num_features=5)
    method = ms.smd(META_STEP_SIZE, INITIAL_STEP_SIZE)
    predictions, step_sizes = run_learner(method, xs, ys)
    flipped_predictions, flipped_step_sizes = run_learner(method, xs, -ys)
    np.testing.assert_allclose(flipped_predictions, -predictions, rtol=1e-12)
    np.testing.assert_allclose(flipped_step_sizes, step_sizes, rtol=1e-12)
