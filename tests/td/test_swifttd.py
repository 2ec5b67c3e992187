"""SwiftTD: against a float64 NumPy transcription (feature by feature, as the authors' dense
``Step`` is written) with episode ends, and against the authors' ``swifttd`` 0.1.8."""

import numpy as np
import pytest

import metastep as ms
from metastep import td
from td.td_data import run_td, td_data

HYPERPARAMETERS = dict(trace_decay=0.9, initial_step_size=1e-2, meta_step_size=1e-3,
                       step_size_bound=0.1, step_size_decay=0.999, min_step_size=1e-10)


def swifttd_reference(xs, rewards, discounts, trace_decay, initial_step_size, meta_step_size,
                      step_size_bound, step_size_decay, min_step_size, floor="applied"):
    """One feature at a time, two passes per step, the per-step discount where the code has γ."""
    n = xs.shape[1]
    w, z, z_delta, delta_w = (np.zeros(n) for _ in range(4))
    h, h_old, h_temp, z_bar, p = (np.zeros(n) for _ in range(5))
    beta = np.full(n, np.log(initial_step_size))
    v_old = v_delta = 0.0
    eta, lam = step_size_bound, trace_decay
    predictions, step_sizes = [], []
    for x, reward, gamma in zip(xs, rewards, discounts):
        v = float(w @ x)
        delta = reward + gamma * v - v_old
        for i in range(n):
            delta_w[i] = delta * z[i] - z_delta[i] * v_delta
            w[i] += delta_w[i]
            beta[i] += meta_step_size / np.exp(beta[i]) * (delta - v_delta) * p[i]
            if np.exp(beta[i]) > eta:
                beta[i] = np.log(eta)
            floor_test = min_step_size if floor == "applied" else np.log(min_step_size)
            if np.exp(beta[i]) < floor_test:
                beta[i] = np.log(min_step_size)
            h_old[i] = h[i]
            h[i] = h_temp[i] + delta * z_bar[i] - z_delta[i] * v_delta
            h_temp[i] = h[i]
            z_delta[i] = 0.0
            z[i] *= gamma * lam
            p[i] *= gamma * lam
            z_bar[i] *= gamma * lam
        v_delta = 0.0
        tau = float(np.sum(np.exp(beta) * x * x))
        b = float(z @ x)
        for i in range(n):
            v_delta += delta_w[i] * x[i]
            multiplier = eta / tau if tau > eta else 1.0
            z_delta[i] = multiplier * np.exp(beta[i]) * x[i]
            z[i] += z_delta[i] * (1 - b)
            p[i] += h_old[i] * x[i]
            z_bar[i] += z_delta[i] * (1 - b - z_bar[i] * x[i])
            h_temp[i] = h[i] - h_old[i] * x[i] * (z[i] - z_delta[i]) - h[i] * z_delta[i] * x[i]
            if tau > eta:
                h_temp[i] = h[i] = h_old[i] = z_bar[i] = 0.0
                beta[i] += np.log(step_size_decay) * x[i] * x[i]
        v_old = v
        predictions.append(v)
        step_sizes.append(np.exp(beta))
    return np.array(predictions), np.array(step_sizes)


@pytest.fixture(scope="module")
def data():
    # Larger features than td_data's, so that the bound on the rate of learning acts.
    xs, rewards, discounts = td_data(seed=11, steps=1200, num_features=6)
    return 3.0 * xs, rewards, discounts


@pytest.mark.parametrize("floor, min_step_size", [("applied", 9e-3), ("code", 9e-3),
                                                  ("applied", 1e-10)])
def test_matches_numpy_transcription(x64, data, floor, min_step_size):
    hyperparameters = {**HYPERPARAMETERS, "meta_step_size": 0.05, "min_step_size": min_step_size}
    learner = td.SwiftTD(data[0].shape[1], discount=0.9, floor=floor, **hyperparameters)
    predictions, _, step_sizes = run_td(learner, *data)
    expected_predictions, expected_step_sizes = swifttd_reference(*data, floor=floor,
                                                                  **hyperparameters)
    assert np.all(np.isfinite(expected_predictions))
    # The bound acted (α hit η), step sizes also fell below α₀, and with a high floor the
    # applied floor acted where the code's did not.
    assert np.max(expected_step_sizes) == pytest.approx(0.1)
    assert np.min(expected_step_sizes) < HYPERPARAMETERS["initial_step_size"]
    # (The decay acts after the floor: α may end a step just under α_min.)
    assert (np.min(expected_step_sizes) >= 0.99 * min_step_size) == (floor == "applied")
    np.testing.assert_allclose(predictions, expected_predictions, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(step_sizes, expected_step_sizes, rtol=1e-9, atol=1e-15)


def test_matches_the_authors_code():
    swifttd = pytest.importorskip("swifttd", reason="the authors' swifttd package (0.1.8) is "
                                  "not installed: pip install swifttd==0.1.8")
    xs, rewards, _ = td_data(seed=12, steps=4000, num_features=8)
    xs, rewards = (3.0 * xs).astype(np.float32), rewards.astype(np.float32)
    h = HYPERPARAMETERS
    reference = swifttd.SwiftTDNonSparse(
        8, h["trace_decay"], h["initial_step_size"], 0.95, 1e-5, h["step_size_bound"],
        h["step_size_decay"], h["meta_step_size"], h["min_step_size"])
    expected = np.array([reference.step(x.tolist(), float(r)) for x, r in zip(xs, rewards)])
    learner = td.SwiftTD(8, discount=0.95, floor="code", **h)
    result = ms.run_arrays(learner, xs, rewards)
    assert np.ptp(expected) > 1.0  # it learned something to compare
    np.testing.assert_allclose(result.predictions, expected, rtol=1e-4, atol=1e-5)


def test_bad_arguments_are_named():
    for name, value in [("trace_decay", 1.5), ("discount", -0.1), ("step_size_bound", 0.0),
                        ("step_size_decay", 1.2), ("min_step_size", 0.0)]:
        arguments = {"num_features": 3, "discount": 0.9, **HYPERPARAMETERS, name: value}
        with pytest.raises(ValueError, match=f"`{name}`"):
            td.SwiftTD(**arguments)
    with pytest.raises(ValueError, match="`floor`"):
        td.SwiftTD(3, 0.9, 0.9, floor="c++")
