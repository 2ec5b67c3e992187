"""ms.problems.trace_patterning: the rules of Rafiee et al.'s trials (timings, durations, the
pattern draw, the distractors) checked on many streams, the realized return against a backward
float64 sum of the US, the closed-form value against Monte-Carlo returns, the microstimuli
against a NumPy recomputation from the signals, block-size independence, and bad arguments."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metastep as ms
from metastep.problems.trace_patterning import Rules, draw_trial, feature_groups

STEPS = 60_000  # about 500 trials
BLOCK = 10_000
M = 2  # microstimuli per trace
GAMMA, DECAY = 0.95, 0.9025
US, CS, DISTRACTORS = 1, slice(2, 8), slice(8, 13)  # columns of the signals
MICROSTIMULI = slice(13, 13 + 12 * M)
PATTERNS = slice(13 + 12 * M, None)


@pytest.fixture(scope="module")
def stream():
    """One stream at the defaults but 2 microstimuli, read as one block of 60,000 steps and
    its first 30,000 steps as three blocks of 10,000, in one program; as NumPy arrays."""
    problem = ms.problems.trace_patterning("pattern_microstimuli", num_microstimuli=M)

    @jax.jit
    def whole_and_blocks(key):
        state = problem.init(key)
        whole = problem.generate(state, STEPS)[1]
        blocks, advanced = [], state
        for _ in range(3):
            advanced, block = problem.generate(advanced, BLOCK)
            blocks.append(block)
        return state, whole, jax.tree.map(lambda *parts: jnp.concatenate(parts), *blocks)

    state, whole, blocks = jax.tree.map(np.asarray, whole_and_blocks(jax.random.PRNGKey(3)))
    return problem, state, whole, blocks


def trials_of(sample):
    """The complete trials: start, ISI (None if not reinforced), next start."""
    starts = np.flatnonzero(sample.info["time_in_trial"] == 0)
    trials = []
    for start, next_start in zip(starts[:-1], starts[1:]):
        onsets = np.flatnonzero(sample.x[start:next_start, US])
        trials.append((start, onsets[0] if len(onsets) else None, next_start))
    return trials


def test_trial_rules(stream):
    _, state, sample, _ = stream
    x, info, patterns = sample.x, sample.info, state.patterns
    assert np.array_equal(x[:, 0], np.ones(STEPS))  # the bias
    assert np.array_equal(info["us"], x[:, US])
    isis, itis, reinforced, distractors_on = [], [], [], []
    for start, isi, next_start in trials_of(sample):
        trial = x[start:next_start]
        k = np.arange(next_start - start)
        assert np.array_equal(info["time_in_trial"][start:next_start], k)
        cs = trial[0, CS].astype(bool)
        assert info["pattern"][start] == np.sum(cs * 2 ** np.arange(6))
        # CSs and distractors: on for exactly the first 4 steps, as at the start
        assert np.array_equal(trial[:, CS], np.outer(k < 4, cs))
        assert np.array_equal(trial[:, DISTRACTORS], np.outer(k < 4, trial[0, DISTRACTORS]))
        matches = bool(np.all(patterns == cs, axis=1).any())
        assert info["reinforced"][start] == matches == (isi is not None)
        if isi is not None:  # the US: 2 steps, ISI after the CSs' onset
            assert np.array_equal(trial[:, US], (k >= isi) & (k < isi + 2))
            isis.append(isi)
            itis.append(next_start - start - isi)
        reinforced.append(matches)
        distractors_on.extend(trial[0, DISTRACTORS])
    # 10 distinct activation patterns of 3 CSs each
    assert patterns.shape == (10, 6) and np.all(patterns.sum(1) == 3)
    assert len({tuple(row) for row in patterns}) == 10
    assert set(isis) == set(range(14, 27)) and set(itis) == set(range(80, 121))
    for share, count in ((np.mean(reinforced), len(reinforced)),
                         (np.mean(distractors_on), len(distractors_on))):
        assert abs(share - 0.5) < 4 * np.sqrt(0.25 / count)  # 1/2, within 4 standard errors


def backward_returns(us, gamma):
    """``G_t = Σ_k γ^k US_{t+1+k}`` over the stream (float64, truncated at its end)."""
    returns, following = np.zeros(len(us)), 0.0
    for t in range(len(us) - 1, -1, -1):
        returns[t] = following
        following = us[t] + gamma * following
    return returns


def test_realized_return_is_the_discounted_sum_of_the_us(stream):
    _, _, sample, _ = stream
    settled = STEPS - 500  # the backward sum misses less than γ^500 of the return
    expected = backward_returns(sample.info["us"].astype(np.float64), GAMMA)
    np.testing.assert_allclose(sample.info["return"][:settled], expected[:settled], atol=1e-6)


def test_value_against_a_float64_transcription(stream):
    """``v_t`` recomputed in float64 from each trial's start, ISI, outcome and the next start:
    the current trial's US to come plus ``γ^{n−t−1} u / (1 − E[γ^I] E[γ^ITI])``."""
    _, _, sample, _ = stream
    isi_factor = np.mean(GAMMA ** np.arange(14, 27.0))
    iti_factor = np.mean(GAMMA ** np.arange(80, 121.0))
    later = 0.5 * isi_factor * (1 + GAMMA) / (1 - isi_factor * iti_factor)
    expected = np.full(STEPS, np.nan)
    for start, isi, next_start in trials_of(sample):
        t = np.arange(start, next_start)
        to_come = np.zeros(len(t))
        for j in range(2) if isi is not None else ():  # the US at start + ISI + j
            delay = start + isi + j - t - 1
            to_come += np.where(delay >= 0, GAMMA ** np.maximum(delay, 0), 0.0)
        expected[t] = to_come + GAMMA ** (next_start - t - 1.0) * later
    complete = ~np.isnan(expected)  # the steps of complete trials
    assert complete.mean() > 0.99
    np.testing.assert_allclose(sample.y.value[complete], expected[complete], rtol=1e-5,
                               atol=1e-7)


def test_value_is_the_expected_return(stream):
    """``E[G_t − v_t | state] = 0``: per phase of the trial and outcome, the mean of ``G − v``
    is 0 within 4 standard errors (of 20 batch means of 3,000 steps); and so the squared error
    of a prediction against the return is its error against the value plus the return's
    variance."""
    _, _, sample, _ = stream
    error = sample.info["return"].astype(np.float64) - sample.y.value
    k, reinforced = sample.info["time_in_trial"], sample.info["reinforced"]
    phases = {"before the US": k < 14, "US window": (k >= 14) & (k < 28), "ITI": k >= 28}
    for name, phase in phases.items():
        for outcome in (False, True):
            where = (phase & (reinforced == outcome)).reshape(20, -1)
            batch_means = np.where(where, error.reshape(20, -1), 0.0).sum(1) / where.sum(1)
            standard_error = batch_means.std(ddof=1) / np.sqrt(len(batch_means))
            assert abs(batch_means.mean()) < 4 * standard_error, (name, outcome)
    constant = sample.y.value.mean()  # the prediction of a learner that knows only the mean
    value_error = np.mean((sample.y.value - constant) ** 2)
    return_error = np.mean((sample.info["return"] - constant) ** 2)
    np.testing.assert_allclose(return_error, value_error + np.mean(error ** 2), rtol=0.03)


def test_targets_of_the_td_convention(stream):
    _, _, sample, _ = stream
    assert sample.y.discount[0] == 0
    np.testing.assert_allclose(sample.y.discount[1:], GAMMA)
    assert np.array_equal(sample.y.reward, sample.info["us"])


def test_blocks_of_other_sizes_give_the_same_stream(stream):
    _, _, whole, blocks = stream
    for one, other in zip(jax.tree.leaves(whole), jax.tree.leaves(blocks)):
        np.testing.assert_array_equal(one[:3 * BLOCK], other)


def scaled_bumps(trace, m, width=0.08):
    """``y exp(−(y − μ_i)² / (2σ²))`` for ``μ_i = i / m``: [..., m] (float64)."""
    centres = np.arange(1, m + 1) / m
    return trace[..., None] * np.exp(-(trace[..., None] - centres) ** 2 / (2 * width ** 2))


def microstimuli_numpy(signals, decay, m):
    """Per step, each signal's trace (1 at an onset, then decaying; 0 before the first) and its
    microstimuli, signal by signal: [steps, signals × m]."""
    trace, previous, features = np.zeros(signals.shape[1]), np.zeros(signals.shape[1]), []
    for row in signals:
        trace = np.where((row == 1) & (previous == 0), 1.0, trace * decay)
        previous = row
        features.append(scaled_bumps(trace, m).reshape(-1))
    return np.asarray(features)


def test_features_recomputed_from_the_signals(stream):
    """The bias, the signals, their microstimuli and the pattern's, as NumPy recomputes them
    from the signals and the time in the trial (the first 3,000 steps)."""
    problem, _, sample, _ = stream
    steps = 3_000
    x, info = sample.x[:steps], {name: value[:steps] for name, value in sample.info.items()}
    assert sample.x.shape == (STEPS, problem.num_features) == (STEPS, 1 + 12 + 12 * M + 64 * M)
    np.testing.assert_allclose(x[:, MICROSTIMULI], microstimuli_numpy(
        x[:, 1:13].astype(np.float64), DECAY, M), atol=1e-6)
    expected = np.zeros((steps, 64, M))
    expected[np.arange(steps), info["pattern"]] = scaled_bumps(DECAY ** info["time_in_trial"], M)
    np.testing.assert_allclose(x[:, PATTERNS].reshape(steps, 64, M), expected, atol=1e-6)
    groups = feature_groups(problem)
    assert [np.sum(groups == name) for name in ("bias", "us", "cs", "distractor", "pattern")] == [
        1, 1 + M, 6 * (1 + M), 5 * (1 + M), 64 * M]


def test_trial_draws_with_noise():
    """20,000 trials drawn at once: the activation patterns drawn with probability q = 1/2 in
    all (with p = (2^6 q − 10) / (2^6 − 10) and the uniform patterns that match), each
    equally often, the outcome flipped with probability ν = 0.2, ISI and ITI uniform."""
    noise, count = 0.2, 20_000
    share = (2 ** 6 * 0.5 - 10) / (2 ** 6 - 10)
    rules = Rules(6, 5, 10, (14, 26), (80, 120), 4, 4, 2, share, noise, 0.5, 0.95)
    patterns = jnp.asarray([[cs in on for cs in range(6)]  # 10 of the patterns of 3 CSs
                            for on in itertools.combinations(range(6), 3)][:10])
    trials = jax.tree.map(np.asarray, jax.jit(jax.vmap(
        lambda start: draw_trial(rules, jax.random.PRNGKey(7), start, patterns)))(
            np.arange(count)))
    matches = np.all(trials.cs[:, None, :] == np.asarray(patterns)[None], axis=-1)
    which = matches.argmax(1)[matches.any(1)]

    def within(share, expected, draws=count):  # 4 standard errors
        return abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / draws)

    assert within(matches.any(1).mean(), 0.5)
    assert all(within(np.mean(which == k), 0.1, len(which)) for k in range(10))
    assert within(np.mean(trials.reinforced != matches.any(1)), noise)
    assert within(trials.reinforced.mean(), 0.5)
    assert within(trials.distractors.mean(), 0.5, trials.distractors.size)
    for values, (low, high) in ((trials.isi, (14, 26)), (trials.iti, (80, 120))):
        assert values.min() == low and values.max() == high
        assert all(within(np.mean(values == v), 1 / (high - low + 1)) for v in (low, high))


@pytest.mark.parametrize(("arguments", "name"), [
    ({"features": "tiles"}, "features"),
    ({"num_cs": 0}, "num_cs"),
    ({"num_distractors": -1}, "num_distractors"),
    ({"num_activation_patterns": 21}, "num_activation_patterns"),
    ({"activation_patterns_probability": 0.1}, "activation_patterns_probability"),
    ({"noise": 1.5}, "noise"),
    ({"distractor_probability": -0.1}, "distractor_probability"),
    ({"isi_range": (26, 14)}, "isi_range"),
    ({"isi_range": (0, 5)}, "isi_range"),
    ({"iti_range": (1, 120)}, "iti_range"),
    ({"iti_range": (80.0, 120)}, "iti_range"),
    ({"cs_duration": 0}, "cs_duration"),
    ({"distractor_duration": 200}, "distractor_duration"),
    ({"us_duration": 0}, "us_duration"),
    ({"discount": 1.0}, "discount"),
    ({"num_microstimuli": 0}, "num_microstimuli"),
    ({"microstimulus_decay": 1.1}, "microstimulus_decay"),
    ({"microstimulus_width": 0.0}, "microstimulus_width"),
    ({"scale_by_trace": 1}, "scale_by_trace"),
    ({"lookahead_trials": 0}, "lookahead_trials"),
])
def test_bad_arguments_are_named(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        ms.problems.trace_patterning(**arguments)
