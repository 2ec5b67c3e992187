"""TD(λ), TIDBD and AutoTIDBD step by step against float64 NumPy transcriptions of the papers'
algorithm boxes (written per transition φ → φ', as the papers write them), on random
non-stationary data with episode ends; and their reductions."""

import numpy as np
import optax
import pytest

import metastep as ms
from metastep import td
from td.td_data import run_td, td_data, transitions

LAMBDA = 0.9
ALPHA0 = 0.05


def td_lambda_reference(xs, rewards, discounts, lam, alpha):
    """TD(λ), accumulating traces, fixed α (Sutton & Barto 2018, §12.2)."""
    w, z = np.zeros(xs.shape[1]), np.zeros(xs.shape[1])
    predictions = []
    for phi, gamma_into_phi, phi_next, reward, gamma in transitions(xs, rewards, discounts):
        predictions.append(w @ phi_next)
        delta = reward + gamma * w @ phi_next - w @ phi
        z = gamma_into_phi * lam * z + phi
        w = w + alpha * delta * z
    return np.array(predictions)


def td0_reference(xs, rewards, discounts, alpha):
    """TD(0): w ← w + α δ φ."""
    w = np.zeros(xs.shape[1])
    predictions = []
    for phi, _, phi_next, reward, gamma in transitions(xs, rewards, discounts):
        predictions.append(w @ phi_next)
        w = w + alpha * (reward + gamma * w @ phi_next - w @ phi) * phi
    return np.array(predictions)


def tidbd_reference(xs, rewards, discounts, lam, theta, alpha0, form):
    """Kearney et al. (2018), semi-gradient and full-gradient TIDBD(λ)."""
    n = xs.shape[1]
    w, z, h = np.zeros(n), np.zeros(n), np.zeros(n)
    beta = np.full(n, np.log(alpha0))
    predictions, step_sizes = [], []
    for phi, gamma_into_phi, phi_next, reward, gamma in transitions(xs, rewards, discounts):
        predictions.append(w @ phi_next)
        delta = reward + gamma * w @ phi_next - w @ phi
        z = gamma_into_phi * lam * z + phi
        if form == "semi_gradient":
            beta = beta + theta * delta * phi * h
            alpha = np.exp(beta)
            w = w + alpha * delta * z
            h = h * np.maximum(1 - alpha * phi * z, 0) + alpha * delta * z
        else:
            beta = beta - theta * delta * (gamma * phi_next - phi) * h
            alpha = np.exp(beta)
            w = w + alpha * delta * z
            h = h * np.maximum(1 + alpha * z * (gamma * phi_next - phi), 0) + alpha * delta * z
        step_sizes.append(alpha)
    return np.array(predictions), np.array(step_sizes)


def autotidbd_reference(xs, rewards, discounts, lam, theta, alpha0, tau, variant):
    """Kearney et al. (2019), Algorithm 6, AutoTIDBD(λ) (full gradient), line by line
    (``variant="paper"``); ``"autostep"``: |g| in both terms of the normalizer and the trace of
    line 13 in lines 6-7 and 10. Also returns the number of steps where the bound M acted."""
    n = xs.shape[1]
    w, z, h, v = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    beta = np.full(n, np.log(alpha0))
    predictions, step_sizes, bound_steps = [], [], 0
    for phi, gamma_into_phi, phi_next, reward, gamma in transitions(xs, rewards, discounts):
        predictions.append(w @ phi_next)
        delta = reward + gamma * w @ phi_next - w @ phi  # line 3
        d = gamma * phi_next - phi
        # The trace before line 13; each episode starts from z = 0.
        z_before = z if gamma_into_phi != 0 else np.zeros(n)
        z_line_13 = gamma_into_phi * lam * z + phi
        if variant == "paper":
            decay_size, bound_trace = np.abs(delta * phi * h), z_before
        else:
            decay_size, bound_trace = np.abs(delta * d * h), z_line_13
        v = np.maximum(np.abs(delta * d * h),  # lines 5-7
                       v - np.exp(beta) * d * bound_trace * (decay_size - v) / tau)
        beta = beta - theta * np.divide(delta * d * h, v, out=np.zeros(n), where=v != 0)  # 9
        bound = max(-np.sum(np.exp(beta) * d * bound_trace), 1.0)  # line 10
        bound_steps += bound > 1.0
        beta = beta - np.log(bound)  # line 11
        alpha = np.exp(beta)  # 12
        z = z_line_13  # 13
        w = w + alpha * delta * z  # 14
        h = h * np.maximum(1 + alpha * d * z, 0) + alpha * delta * z  # 15
        step_sizes.append(alpha)
    return np.array(predictions), np.array(step_sizes), bound_steps


def assert_close(actual, expected):
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-12)


CASES = {
    "tidbd-semi": (lambda: td.tidbd(0.05, ALPHA0, "semi_gradient"),
                   lambda *d: tidbd_reference(*d, LAMBDA, 0.05, ALPHA0, "semi_gradient")),
    "tidbd-full": (lambda: td.tidbd(0.05, ALPHA0, "full_gradient"),
                   lambda *d: tidbd_reference(*d, LAMBDA, 0.05, ALPHA0, "full_gradient")),
    "autotidbd": (lambda: td.autotidbd(0.05, ALPHA0, tau=100.0),
                  lambda *d: autotidbd_reference(*d, LAMBDA, 0.05, ALPHA0, 100.0, "paper")),
    "autotidbd-autostep": (
        lambda: td.autotidbd(0.05, ALPHA0, tau=100.0, variant="autostep"),
        lambda *d: autotidbd_reference(*d, LAMBDA, 0.05, ALPHA0, 100.0, "autostep")),
    # α₀ = 0.5: the bound M acts on some steps (test_autotidbd_paper_lines_matter).
    "autotidbd-bound": (
        lambda: td.autotidbd(0.05, 0.5, tau=100.0),
        lambda *d: autotidbd_reference(*d, LAMBDA, 0.05, 0.5, 100.0, "paper")),
    "autotidbd-autostep-bound": (
        lambda: td.autotidbd(0.05, 0.5, tau=100.0, variant="autostep"),
        lambda *d: autotidbd_reference(*d, LAMBDA, 0.05, 0.5, 100.0, "autostep")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_numpy_transcription(x64, name):
    make_method, reference = CASES[name]
    data = td_data(seed=len(name))
    learner = td.TDLearner(make_method(), data[0].shape[1], discount=0.9, trace_decay=LAMBDA)
    predictions, _, step_sizes = run_td(learner, *data)
    expected_predictions, expected_step_sizes = reference(*data)[:2]
    # The check means something only if the step sizes moved, and episodes ended.
    assert np.ptp(np.log(expected_step_sizes)) > 0.3
    assert np.sum(data[2] == 0) > 20
    assert_close(predictions, expected_predictions)
    assert_close(step_sizes, expected_step_sizes)


@pytest.mark.parametrize("alpha0", [ALPHA0, 0.5])
def test_autotidbd_paper_lines_matter(alpha0):
    """The lines where Algorithm 6 differs from the "autostep" variant change the trajectory on
    the data of test_matches_numpy_transcription (so matching one is not matching the other),
    and at α₀ = 0.5 the bound M acts on some steps in both."""
    data = td_data(seed=len("autotidbd"))
    paper = autotidbd_reference(*data, LAMBDA, 0.05, alpha0, 100.0, "paper")
    autostep = autotidbd_reference(*data, LAMBDA, 0.05, alpha0, 100.0, "autostep")
    assert np.max(np.abs(paper[0] - autostep[0])) > 1e-3
    if alpha0 == 0.5:
        assert paper[2] > 0 and autostep[2] > 0


@pytest.mark.parametrize("method", [lambda: td.tidbd(0.0, ALPHA0),
                                    lambda: td.tidbd(0.0, ALPHA0, "full_gradient"),
                                    lambda: ms.sgd(ALPHA0)])
def test_zero_meta_step_size_is_td_lambda(x64, method):
    data = td_data(seed=7)
    learner = td.TDLearner(method(), data[0].shape[1], discount=0.9, trace_decay=LAMBDA)
    predictions, _, step_sizes = run_td(learner, *data)
    assert_close(predictions, td_lambda_reference(*data, LAMBDA, ALPHA0))
    np.testing.assert_allclose(step_sizes, ALPHA0, rtol=1e-12)


def test_zero_trace_decay_is_td0(x64):
    data = td_data(seed=8)
    learner = td.TDLearner(ms.sgd(ALPHA0), data[0].shape[1], discount=0.9, trace_decay=0.0)
    assert_close(run_td(learner, *data)[0], td0_reference(*data, ALPHA0))
    # TIDBD with λ = 0 is TIDBD(0): the transcription with λ = 0.
    learner = td.TDLearner(td.tidbd(0.05, ALPHA0), data[0].shape[1], 0.9, 0.0)
    predictions, _, step_sizes = run_td(learner, *data)
    expected = tidbd_reference(*data, 0.0, 0.05, ALPHA0, "semi_gradient")
    assert_close(predictions, expected[0])
    assert_close(step_sizes, expected[1])


def test_terminal_reward_is_credited(x64):
    # One episode of two steps: x0 → x1, then a terminal transition with reward 1 into x0.
    xs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    learner = td.TDLearner(ms.sgd(0.5), 2, discount=1.0, trace_decay=0.0)
    predictions, errors, _ = run_td(learner, xs, np.array([0.0, 0.0, 1.0]),
                                    np.array([1.0, 1.0, 0.0]))
    np.testing.assert_array_equal(errors, [0.0, 0.0, 1.0])
    state = learner.init()
    for x, r, g in zip(xs, [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]):
        state, _ = learner.step(state, x, td.TDTarget(r, g, 0.0))
    np.testing.assert_allclose(state.weights, [0.0, 0.5])
    np.testing.assert_allclose(state.trace, [1.0, 0.0])  # the trace restarted at x0


@pytest.mark.parametrize("method", [lambda: ms.adam(0.01), lambda: ms.rmsprop(0.01)])
def test_optax_baselines_run(x64, method):
    data = td_data(seed=9)
    learner = td.TDLearner(method(), data[0].shape[1], discount=0.9, trace_decay=LAMBDA)
    predictions, errors, _ = run_td(learner, *data)
    assert np.all(np.isfinite(predictions))
    # Learning happened: the late TD errors are smaller than the early ones.
    assert np.mean(errors[-300:] ** 2) < np.mean(errors[:100] ** 2)


def obgd_reference(xs, rewards, discounts, lam, alpha, kappa, adaptive, beta2=0.999, eps=1e-8):
    """The authors' ObGD / AdaptiveObGD (streaming-drl, optim.py), one call per transition; the
    stream's first step has no previous state (no transition, no call). Also returns the
    fraction of the steps that the bound scaled down."""
    n = xs.shape[1]
    w, z, v, count = np.zeros(n), np.zeros(n), np.zeros(n), 0
    predictions, step_sizes, bounded = [], [], []
    for t, (phi, gamma_into_phi, phi_next, reward, gamma) in enumerate(
            transitions(xs, rewards, discounts)):
        predictions.append(w @ phi_next)
        if t == 0:
            step_sizes.append(np.full(n, np.nan))
            continue
        delta = reward + gamma * w @ phi_next - w @ phi
        z = gamma_into_phi * lam * z + phi
        scale = np.ones(n)
        if adaptive:
            count += 1
            v = beta2 * v + (1 - beta2) * (delta * z) ** 2
            scale = 1 / np.sqrt(v / (1 - beta2**count) + eps)
        bound = max(abs(delta), 1.0) * np.sum(np.abs(z * scale)) * alpha * kappa
        step_size = alpha / bound if bound > 1 else alpha
        w = w + step_size * scale * delta * z
        step_sizes.append(step_size * scale)
        bounded.append(bound > 1)
    return np.array(predictions), np.array(step_sizes), np.mean(bounded)


@pytest.mark.parametrize("adaptive", [False, True])
def test_obgd_matches_the_authors_rule(x64, adaptive):
    data = td_data(seed=13)
    alpha, kappa = (0.1, 2.0) if not adaptive else (0.07, 2.0)
    method = td.adaptive_obgd(alpha, kappa) if adaptive else td.obgd(alpha, kappa)
    learner = td.TDLearner(method, data[0].shape[1], discount=0.9, trace_decay=LAMBDA)
    predictions, _, step_sizes = run_td(learner, *data)
    expected_predictions, expected_step_sizes, bounded = obgd_reference(
        *data, LAMBDA, alpha, kappa, adaptive)
    assert 0.05 < bounded < 0.95  # the bound acted on some steps and not on others
    assert_close(predictions, expected_predictions)
    assert_close(step_sizes[1:], expected_step_sizes[1:])


def test_supervised_idbd_runs_on_the_td_update(x64):
    # ms.idbd sees g = −δ z and the curvature φ z: IDBD's rule on the TD update (not TIDBD).
    data = td_data(seed=14)
    learner = td.TDLearner(ms.idbd(0.05, ALPHA0), data[0].shape[1], 0.9, LAMBDA)
    predictions, _, step_sizes = run_td(learner, *data)
    n = data[0].shape[1]
    w, z, h, beta = np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, np.log(ALPHA0))
    expected_predictions, expected_step_sizes = [], []
    for phi, gamma_into_phi, phi_next, reward, gamma in transitions(*data):
        expected_predictions.append(w @ phi_next)
        delta = reward + gamma * w @ phi_next - w @ phi
        z = gamma_into_phi * LAMBDA * z + phi
        beta = beta + 0.05 * delta * z * h
        alpha = np.exp(beta)
        w = w + alpha * delta * z
        h = h * np.maximum(1 - alpha * phi * z, 0) + alpha * delta * z
        expected_step_sizes.append(alpha)
    assert_close(predictions, np.array(expected_predictions))
    assert_close(step_sizes, np.array(expected_step_sizes))


def test_plain_optax_optimizer_reports_nan_step_sizes(x64):
    data = td_data(seed=15, steps=50)
    learner = td.TDLearner(optax.sgd(ALPHA0), data[0].shape[1], 0.9, LAMBDA)
    predictions, _, step_sizes = run_td(learner, *data)
    assert_close(predictions, td_lambda_reference(*data, LAMBDA, ALPHA0))
    assert np.all(np.isnan(step_sizes))
