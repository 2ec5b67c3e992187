"""True online TD(λ): against a float64 transcription of Sutton & Barto's algorithm box (episode by
episode, as the book writes it), and SwiftTD reduced to it."""

import numpy as np
import pytest

from metastep import td
from td.td_data import run_td, td_data

LAMBDA, ALPHA = 0.9, 0.05


def true_online_reference(xs, rewards, discounts, discount, lam, alpha):
    """Sutton & Barto (2018), §12.5: each episode starts with z = 0 and V_old = 0; a transition
    with discount 0 ends it (its next features count as 0) and the next features start the next
    one."""
    n = xs.shape[1]
    w = np.zeros(n)
    x, z, v_old = xs[0], np.zeros(n), 0.0
    predictions = [0.0]
    for x_next, reward, gamma in zip(xs[1:], rewards[1:], discounts[1:]):
        predictions.append(w @ x_next)
        terminal = gamma == 0
        v, v_next = w @ x, 0.0 if terminal else w @ x_next
        delta = reward + discount * v_next - v
        z = discount * lam * z + (1 - alpha * discount * lam * z @ x) * x
        w = w + alpha * (delta + v - v_old) * z - alpha * (v - v_old) * x
        v_old = v_next
        if terminal:
            z, v_old = np.zeros(n), 0.0
        x = x_next
    return np.array(predictions)


@pytest.mark.parametrize("lam", [LAMBDA, 0.0])
def test_matches_the_book(x64, lam):
    data = td_data(seed=21)
    assert np.sum(data[2] == 0) > 20  # episodes ended
    predictions, _, step_sizes = run_td(td.TrueOnlineTD(data[0].shape[1], 0.9, lam, ALPHA),
                                        *data)
    expected = true_online_reference(*data, 0.9, lam, ALPHA)
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(predictions, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(step_sizes, ALPHA)


def test_swifttd_without_meta_learning_bound_or_decay_is_true_online_td(x64):
    data = td_data(seed=22)
    n = data[0].shape[1]
    swift = td.SwiftTD(n, 0.9, LAMBDA, initial_step_size=ALPHA, meta_step_size=0.0,
                       step_size_bound=1e6, step_size_decay=1.0)
    np.testing.assert_allclose(run_td(swift, *data)[0],
                               run_td(td.TrueOnlineTD(n, 0.9, LAMBDA, ALPHA), *data)[0],
                               rtol=1e-9, atol=1e-12)


def test_bad_arguments_are_named():
    for name, value in [("trace_decay", 2.0), ("discount", -1.0), ("step_size", -0.1)]:
        arguments = {"num_features": 3, "discount": 0.9, "trace_decay": 0.5, "step_size": 0.1,
                     name: value}
        with pytest.raises(ValueError, match=f"`{name}`"):
            td.TrueOnlineTD(**arguments)
