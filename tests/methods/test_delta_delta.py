"""The ΔΔ rule against a NumPy transcription of docs/methods.md#delta_delta, and its behaviour."""

import numpy as np
import pytest

import metastep.methods as ms
from helpers import assert_close, run_learner

INITIAL_STEP_SIZE = 0.01
MIN_STEP_SIZE = 1e-6


def delta_delta_reference(xs, ys, kappa, alpha0, floor):
    """``α ← max(α + κ Δ_{t−1} Δ_t, floor)``, ``w ← w − α g``, with ``Δ`` the weight changes."""
    w = np.zeros(xs.shape[1])
    alpha = np.full(xs.shape[1], alpha0)
    last_change = np.zeros(xs.shape[1])
    change_before = np.zeros(xs.shape[1])
    predictions, step_sizes = [], []
    for x, y in zip(xs, ys):
        prediction = w @ x
        g = -(y - prediction) * x
        alpha = np.maximum(alpha + kappa * change_before * last_change, floor)
        new_w = w - alpha * g
        change_before, last_change = last_change, new_w - w
        w = new_w
        predictions.append(prediction)
        step_sizes.append(alpha)
    return np.array(predictions), np.array(step_sizes)


def lms_predictions(xs, ys, alpha):
    w = np.zeros(xs.shape[1])
    predictions = []
    for x, y in zip(xs, ys):
        predictions.append(w @ x)
        w = w + alpha * (y - w @ x) * x
    return np.array(predictions)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_numpy_transcription(x64, nonstationary_data, seed):
    xs, ys = nonstationary_data(seed, steps=1500, num_features=5)
    predictions, step_sizes = run_learner(ms.delta_delta(0.1, INITIAL_STEP_SIZE), xs, ys)
    expected = delta_delta_reference(xs, ys, 0.1, INITIAL_STEP_SIZE, MIN_STEP_SIZE)
    # The check means something only if the step sizes moved.
    assert np.ptp(np.log(expected[1])) > 0.1
    assert_close(predictions, expected[0])
    assert_close(step_sizes, expected[1])


def test_floor_binds_and_matches(x64, nonstationary_data):
    xs, ys = nonstationary_data(2, steps=1500, num_features=5)
    floor = 3e-3
    predictions, step_sizes = run_learner(
        ms.delta_delta(0.2, INITIAL_STEP_SIZE, min_step_size=floor), xs, ys
    )
    expected = delta_delta_reference(xs, ys, 0.2, INITIAL_STEP_SIZE, floor)
    assert step_sizes.min() >= floor
    assert np.sum(step_sizes == floor) > 10  # it binds
    assert_close(predictions, expected[0])
    assert_close(step_sizes, expected[1])


def test_zero_meta_step_size_is_lms(x64, nonstationary_data):
    xs, ys = nonstationary_data(3, steps=1500, num_features=5)
    predictions, step_sizes = run_learner(ms.delta_delta(0.0, INITIAL_STEP_SIZE), xs, ys)
    sgd_predictions, _ = run_learner(ms.sgd(INITIAL_STEP_SIZE), xs, ys)
    assert_close(predictions, sgd_predictions)
    assert_close(predictions, lms_predictions(xs, ys, INITIAL_STEP_SIZE))
    np.testing.assert_array_equal(step_sizes, INITIAL_STEP_SIZE)
