"""Trace patterning (Rafiee, Abbas, Ghiassian, Kumaraswamy, Sutton, Ludvig & White 2023), a
continuing stream of classical-conditioning trials for the TD learners (:mod:`metastep.td`).

Signals, in the order of the observation: the US (unconditioned stimulus), ``num_cs`` CSs
(conditioned stimuli) and ``num_distractors`` distractors, each 0 or 1. Trials follow one
another without a break:

* At the start of the stream ``num_activation_patterns`` *activation patterns* are drawn once,
  without replacement, among the CS patterns with exactly ``⌊num_cs / 2⌋`` CSs on (20 patterns
  of 3 out of 6 CSs at the defaults).
* At a trial's start its CS pattern is drawn: with probability ``p`` one of the activation
  patterns (uniformly), otherwise a uniformly random pattern of the ``2^n`` (which may itself be
  an activation pattern), with ``p = (2^n q − K) / (2^n − K)`` so that the pattern is an
  activation pattern with probability ``q`` (``activation_patterns_probability``; ``K`` patterns
  out of ``2^n``). The trial is *reinforced* (the US follows) iff its pattern equals an
  activation pattern in every bit; with ``noise`` ν that outcome is flipped with probability ν,
  so ``P(US) = q (1 − ν) + (1 − q) ν``.
* The pattern's CSs switch on at the trial's start, and so does each distractor independently
  with probability ``distractor_probability``. A CS or distractor stays on ``cs_duration`` or
  ``distractor_duration`` steps (its onset step included).
* The US switches on ``ISI`` steps after the trial's start (if reinforced) and stays on
  ``us_duration`` steps; ``ISI`` is uniform on the integers of ``isi_range``. The next trial
  starts ``ISI + ITI`` steps after this one's start, ``ITI`` uniform on ``iti_range``.

Randomness: the stream key is split once into a key for the activation patterns and a key for
the trials; the trial that starts at step ``s`` draws everything it needs (pattern, distractors,
ISI, ITI, the noise's flip) from ``fold_in(trials_key, s)``. A trial's start is known once the
trial before it is drawn, so the stream is the same whatever the block sizes it is read in.

Targets (:class:`metastep.td.TDTarget`). The cumulant is the US: the reward ``r_t`` of step ``t``
is the US at step ``t`` (the signal of the transition into ``x_t``), the discount ``γ`` at every
step (a continuing task) except step 0 (0, as in the other TD streams). The return predicted at
step ``t`` is ``G_t = Σ_{k≥0} γ^k C_{t+1+k}`` with ``C_u`` the US at step ``u`` (the paper's
mean squared return error, MSRE, measures predictions against it). ``value`` is its
expectation given the environment's state at ``t`` (the current trial's pattern, outcome, ISI,
ITI and the time in the trial). With ``s, I, R`` the current trial's start, ISI and outcome,
``n`` the next trial's start and ``D = us_duration``:

    v_t = R Σ_{j<D, s+I+j>t} γ^{s+I+j−t−1}  +  γ^{n−t−1} u / (1 − E[γ^I] E[γ^ITI])
    u   = P(US) E[γ^I] (1 − γ^D) / (1 − γ)

The first term is the current trial's US still to come (deterministic given its configuration).
Later trials are independent and identically distributed: the trial starting at ``n`` brings
``γ^{n−t−1} u`` in expectation (``u`` its expected discounted US seen from its start step), and
each further trial is shifted by another ``I + ITI`` steps, a factor ``E[γ^{I+ITI}] = E[γ^I]
E[γ^ITI]`` (ISI and ITI independent): a geometric series.

``info["return"]`` is the realized return ``G_t`` itself, cheap here because the next trials are
fixed by the key: the state holds the current trial and the next ``lookahead_trials`` ones, and
``G_t`` sums the current trial's remaining US and theirs; the trials after them are left out,
an error below ``γ^{M L_min + I_min} (1 − γ^D) / ((1 − γ)(1 − γ^{L_min}))`` for ``M =
lookahead_trials``, ``L_min`` the shortest trial and ``I_min`` the shortest ISI (4·10⁻⁹ at the
defaults). Other ``info``: ``"us"`` (the US at ``t``), ``"pattern"`` (the trial's CS pattern as
the integer ``Σ_i 2^i CS_i``), ``"reinforced"`` and ``"time_in_trial"`` (``t − s``).

Features (``features``):

* ``"presence"``: a bias and the signals themselves (the paper's *presence* representation).
* ``"microstimuli"`` (Ludvig, Sutton & Kehoe 2008): a bias, the signals, and per signal
  ``m = num_microstimuli`` features. Each signal's onset (on now, off at the step before) starts
  a memory trace ``y = d^{steps since the onset}`` (``d = microstimulus_decay``; 0 before the
  signal's first onset), and feature ``i`` is ``y exp(−(y − μ_i)² / (2σ²))`` with centres ``μ_i
  = i / m``, ``i = 1 … m``, evenly in (0, 1], and width ``σ = microstimulus_width``. Layout:
  ``[1, signals, microstimuli of the US, of CS 1, …]``, ``1 + S + S m`` features for ``S``
  signals.
* ``"pattern_microstimuli"``: the microstimuli features and, for the trial's CS pattern (one of
  ``2^n``), the microstimuli of the trace of the trial's start, one block of ``m`` per pattern
  (the other patterns' blocks 0): ``1 + S + S m + 2^n m`` features. Whether the US comes is a
  conjunction of all ``n`` CSs, which no weighted sum of per-signal features expresses; these
  features make it expressible (the US's timing given the pattern then lies in the span of the
  trace's microstimuli up to the spread of the ISI).

:func:`feature_groups` names the signal each feature belongs to.

Where this differs from the authors' code (``TracePatterning`` in
``classical_conditioning_benchmarks.py`` of github.com/banafsheh-rafiee/Classical-conditioning-
benchmarks-for-state-construction, and its ``exp.py`` and ``Algorithms/MicroStimuli.py``):

* The randomness: the code draws from one NumPy generator in sequence; here each trial draws
  from its own key (so the streams differ sample for sample, not in distribution).
* The microstimuli: the code's features are ``exp(−(y − μ_i)² / (2σ²))`` without the factor
  ``y`` of Ludvig et al. (2008), so they are not 0 far from an onset (its first centre's feature
  is about 0.74 when ``y ≈ 0``); ``scale_by_trace=False`` computes the code's. The decay
  ``d = 0.9025`` and ``σ = 0.08`` are the code's values for ISI 20 (``exp.py``: the trace
  parameter is ``γ²`` with γ = 0.95); its number of microstimuli is a command-line argument
  (16 by default), as here.
* The timing rules, durations, the pattern draw (``p`` as above), the exact-match rule, the
  noise and the distractors at the trial's start are the code's; ISI and ITI ranges at the
  defaults are the code's for ISI 20 (``20 ± ⌊20/3⌋``; ITI 80 to 120) and γ = 1 − 1/20.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from metastep._checks import check_count, check_positive, check_unit_interval, is_concrete
from metastep._structure import recorded
from metastep.problems._base import Problem, Sample
from metastep.problems._common import steps_of_block
from metastep.td.learner import TDTarget

FEATURES = ("presence", "microstimuli", "pattern_microstimuli")
NEVER = np.iinfo(np.int32).min  # the last onset of a signal not yet seen


class Trials(NamedTuple):
    """Trials, each field with a leading axis (the current trial first in the state)."""

    start: jax.Array  # int32, the step of the trial's start
    isi: jax.Array  # int32, steps from the start to the US
    iti: jax.Array  # int32, steps from the US's onset time to the next start
    cs: jax.Array  # bool [num_cs], the CS pattern
    distractors: jax.Array  # bool [num_distractors]
    reinforced: jax.Array  # bool, whether the US follows


class TracePatterningState(NamedTuple):
    trials_key: jax.Array  # trial starting at step s draws from fold_in(trials_key, s)
    step: jax.Array  # uint32, the index of the next step
    patterns: jax.Array  # bool [num_activation_patterns, num_cs]
    trials: Trials  # [1 + lookahead_trials]: the current trial and the next ones
    last_onsets: jax.Array  # int32 [num_signals], the step of each signal's last onset


class Rules(NamedTuple):
    """What the trials follow: sizes and durations (Python ints), probabilities and the
    discount (floats, possibly traced)."""

    num_cs: int
    num_distractors: int
    num_activation_patterns: int
    isi_range: tuple[int, int]
    iti_range: tuple[int, int]
    cs_duration: int
    distractor_duration: int
    us_duration: int
    activation_share: Any  # p: the probability of drawing an activation pattern
    noise: Any
    distractor_probability: Any
    discount: Any


class Representation(NamedTuple):
    """How the features are made from the signals (see the module docstring)."""

    features: str
    num_microstimuli: int
    decay: Any
    width: Any
    scale_by_trace: bool


def candidate_patterns(num_cs: int) -> np.ndarray:
    """The CS patterns with ``⌊num_cs / 2⌋`` CSs on, bool [C(n, ⌊n/2⌋), n]."""
    combinations = list(itertools.combinations(range(num_cs), num_cs // 2))
    patterns = np.zeros((len(combinations), num_cs), bool)
    for row, on in enumerate(combinations):
        patterns[row, list(on)] = True
    return patterns


def microstimuli(trace: jax.Array, num_microstimuli: int, width, scale_by_trace: bool):
    """``y exp(−(y − μ_i)² / (2σ²))`` for ``μ_i = i / m`` [..., m] (without ``y`` if not
    ``scale_by_trace``)."""
    centres = jnp.arange(1, num_microstimuli + 1, dtype=trace.dtype) / num_microstimuli
    bumps = jnp.exp(-jnp.square(trace[..., None] - centres) / (2 * jnp.square(width)))
    return trace[..., None] * bumps if scale_by_trace else bumps


def feature_groups(problem: Problem) -> np.ndarray:
    """The group of each feature of a trace-patterning problem: ``"bias"``, ``"us"``, ``"cs"``,
    ``"distractor"`` (its presence and microstimuli) or ``"pattern"``, [num_features]."""
    params = problem.params
    signals = np.array(["us"] + ["cs"] * params["num_cs"]
                       + ["distractor"] * params["num_distractors"])
    groups = [np.array(["bias"]), signals]
    if params["features"] != "presence":
        groups.append(np.repeat(signals, params["num_microstimuli"]))
    if params["features"] == "pattern_microstimuli":
        groups.append(np.full(2 ** params["num_cs"] * params["num_microstimuli"], "pattern"))
    return np.concatenate(groups)


def check_range(name: str, value, minimum: int = 1) -> tuple[int, int]:
    """A pair of integers ``minimum ≤ low ≤ high``."""
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or not minimum <= value[0] <= value[1]):
        raise ValueError(f"`{name}` must be a pair of integers {minimum} <= low <= high, "
                         f"got {value!r}")
    return int(value[0]), int(value[1])


def mean_power(base, low: int, high: int):
    """``E[base^K]`` for ``K`` uniform on the integers ``low … high``."""
    return jnp.mean(jnp.power(base, jnp.arange(low, high + 1, dtype=jnp.result_type(float))))


def later_trials_value(rules: Rules, us_probability) -> jax.Array:
    """``u / (1 − E[γ^I] E[γ^ITI])``: the expected discounted US of all the trials from the next
    one on, seen from the step before the next trial's start."""
    isi_factor = mean_power(rules.discount, *rules.isi_range)  # E[γ^I]
    trial_factor = isi_factor * mean_power(rules.discount, *rules.iti_range)  # E[γ^(I + ITI)]
    us_sum = jnp.sum(jnp.power(rules.discount, jnp.arange(rules.us_duration,
                                                          dtype=jnp.result_type(float))))
    return us_probability * isi_factor * us_sum / (1.0 - trial_factor)


def draw_trial(rules: Rules, trials_key: jax.Array, start, patterns: jax.Array) -> Trials:
    """The trial that starts at step ``start``, from ``fold_in(trials_key, start)``."""
    num_cs, count = rules.num_cs, rules.num_activation_patterns
    u = jax.random.uniform(jax.random.fold_in(trials_key, start),
                           (num_cs + rules.num_distractors + 5,), jnp.result_type(float))
    chosen = patterns[jnp.minimum(jnp.floor(u[1] * count).astype(jnp.int32), count - 1)]
    cs = jnp.where(u[0] < rules.activation_share, chosen, u[5:5 + num_cs] < 0.5)
    matched = jnp.any(jnp.all(cs == patterns, axis=-1))

    def uniform_integer(v, low, high):
        return jnp.minimum(low + jnp.floor(v * (high - low + 1)).astype(jnp.int32), high)

    return Trials(jnp.asarray(start, jnp.int32), uniform_integer(u[3], *rules.isi_range),
                  uniform_integer(u[4], *rules.iti_range), cs,
                  u[5 + num_cs:] < rules.distractor_probability, matched != (u[2] < rules.noise))


def first_trials(rules: Rules, trials_key: jax.Array, patterns: jax.Array,
                 count: int) -> Trials:
    """The first ``count`` trials of the stream, the first at step 0 (a scan rather than a
    Python loop: one trial draw to compile)."""
    def next_trial(start, _):
        trial = draw_trial(rules, trials_key, start, patterns)
        return trial.start + trial.isi + trial.iti, trial

    return jax.lax.scan(next_trial, jnp.int32(0), length=count)[1]


def us_to_come(rules: Rules, t, trials: Trials) -> jax.Array:
    """``R Σ_{j<D, s+I+j>t} γ^{s+I+j−t−1}`` per trial: its US after step ``t``, discounted."""
    delays = (trials.start + trials.isi)[..., None] + jnp.arange(rules.us_duration) - t - 1
    powers = jnp.power(rules.discount, jnp.maximum(delays, 0).astype(jnp.result_type(float)))
    return jnp.where(trials.reinforced, jnp.where(delays >= 0, powers, 0.0).sum(-1), 0.0)


def advance(rules: Rules, later_trials, trials_key, patterns, carry, t):
    """Step ``t``: the trials (a new one drawn at the end of the queue when the next starts),
    each signal's last onset, and what the step outputs."""
    trials, last_onsets = carry
    last = jax.tree.map(lambda field: field[-1], trials)
    drawn = draw_trial(rules, trials_key, last.start + last.isi + last.iti, patterns)
    shifted = jax.tree.map(lambda queue, new: jnp.concatenate([queue[1:], new[None]]),
                           trials, drawn)
    trials = jax.tree.map(lambda a, b: jnp.where(t == trials.start[1], a, b), shifted, trials)
    current = jax.tree.map(lambda field: field[0], trials)
    k = t - current.start  # the time in the trial
    us_on = current.reinforced & (k >= current.isi) & (k < current.isi + rules.us_duration)
    signals = jnp.concatenate([us_on[None], current.cs & (k < rules.cs_duration),
                               current.distractors & (k < rules.distractor_duration)])
    onsets = jnp.concatenate([(current.reinforced & (k == current.isi))[None],
                              current.cs & (k == 0), current.distractors & (k == 0)])
    last_onsets = jnp.where(onsets, t, last_onsets)
    to_come = us_to_come(rules, t, trials)
    next_start = (trials.start[1] - t - 1).astype(jnp.result_type(float))
    value = to_come[0] + jnp.power(rules.discount, next_start) * later_trials
    pattern = jnp.sum(current.cs * 2 ** jnp.arange(rules.num_cs, dtype=jnp.int32))
    outputs = (signals, last_onsets, k, pattern, current.reinforced, value, to_come.sum())
    return (trials, last_onsets), outputs


def onset_traces(decay, last_onsets: jax.Array, t: jax.Array) -> jax.Array:
    """``d^{t − onset}`` per signal [steps, signals] (0 where there was no onset yet)."""
    never = last_onsets == NEVER
    ages = jnp.where(never, 0, t[:, None] - last_onsets).astype(jnp.result_type(float))
    return jnp.where(never, 0.0, jnp.power(decay, ages))


def features_of(representation: Representation, num_cs: int, signals, last_onsets,
                time_in_trial, pattern, t) -> jax.Array:
    """The features [steps, num_features] of a block (see the module docstring)."""
    dtype, steps = jnp.result_type(float), len(t)
    m, width = representation.num_microstimuli, representation.width
    x = [jnp.ones((steps, 1), dtype), signals.astype(dtype)]
    if representation.features != "presence":
        trace = onset_traces(representation.decay, last_onsets, t)
        x.append(microstimuli(trace, m, width, representation.scale_by_trace).reshape(
            steps, -1))
    if representation.features == "pattern_microstimuli":
        trial_trace = jnp.power(representation.decay, time_in_trial.astype(dtype))
        trial = microstimuli(trial_trace, m, width, representation.scale_by_trace)
        one_hot = jax.nn.one_hot(pattern, 2 ** num_cs, dtype=dtype)
        x.append((one_hot[:, :, None] * trial[:, None, :]).reshape(steps, -1))
    return jnp.concatenate(x, axis=-1)


def num_features_of(representation: Representation, num_cs: int, num_signals: int) -> int:
    """``1 + S`` (presence), ``+ S m`` (microstimuli), ``+ 2^n m`` (pattern microstimuli)."""
    count = 1 + num_signals
    if representation.features != "presence":
        count += num_signals * representation.num_microstimuli
    if representation.features == "pattern_microstimuli":
        count += 2 ** num_cs * representation.num_microstimuli
    return count


@recorded
def trace_patterning(
    features: str = "microstimuli",
    *,
    num_cs: int = 6,
    num_distractors: int = 5,
    num_activation_patterns: int = 10,
    activation_patterns_probability: float = 0.5,
    noise: float = 0.0,
    distractor_probability: float = 0.5,
    isi_range: tuple[int, int] = (14, 26),
    iti_range: tuple[int, int] = (80, 120),
    cs_duration: int = 4,
    distractor_duration: int = 4,
    us_duration: int = 2,
    discount: float | None = None,
    num_microstimuli: int = 16,
    microstimulus_decay: float = 0.9025,
    microstimulus_width: float = 0.08,
    scale_by_trace: bool = True,
    lookahead_trials: int = 4,
) -> Problem:
    """Rafiee et al.'s trace patterning (see the module docstring).

    Args:
      features: ``"presence"``, ``"microstimuli"`` or ``"pattern_microstimuli"``.
      num_cs: ``n`` ≥ 1 conditioned stimuli.
      num_distractors: ≥ 0 distractors.
      num_activation_patterns: ``K`` patterns that are reinforced, 1 ≤ K ≤ C(n, ⌊n/2⌋).
      activation_patterns_probability: ``q`` in [K / 2^n, 1], the probability that a trial's
        pattern is an activation pattern.
      noise: ``ν`` in [0, 1], the probability that a trial's outcome is flipped.
      distractor_probability: in [0, 1], the probability that a distractor is on in a trial.
      isi_range: integers ``1 ≤ low ≤ high``: the ISI is uniform on them.
      iti_range: integers ``us_duration ≤ low ≤ high``: the ITI is uniform on them.
      cs_duration, distractor_duration, us_duration: steps a signal stays on (≥ 1; a CS or
        distractor at most the shortest trial).
      discount: ``γ`` in [0, 1); default ``1 − 1 / ISI_mean`` (0.95 at the defaults).
      num_microstimuli: ``m`` ≥ 1 microstimuli per trace.
      microstimulus_decay: ``d`` in [0, 1], the trace's decay per step.
      microstimulus_width: ``σ`` > 0.
      scale_by_trace: multiply the microstimuli by the trace (Ludvig et al. 2008; False: the
        authors' code).
      lookahead_trials: ≥ 1 next trials summed into ``info["return"]``.
    """
    rules, representation = checked_arguments(
        features, num_cs, num_distractors, num_activation_patterns,
        activation_patterns_probability, noise, distractor_probability, isi_range, iti_range,
        cs_duration, distractor_duration, us_duration, discount, num_microstimuli,
        microstimulus_decay, microstimulus_width, scale_by_trace, lookahead_trials)
    discount = rules.discount
    candidates = candidate_patterns(num_cs)
    num_signals = 1 + num_cs + num_distractors
    us_probability = (activation_patterns_probability * (1.0 - noise)
                      + (1.0 - activation_patterns_probability) * noise)
    later_trials = later_trials_value(rules, us_probability)

    @jax.jit  # compiled once per problem: eagerly, the scan of first_trials would recompile
    def init(key: jax.Array) -> TracePatterningState:
        patterns_key, trials_key = jax.random.split(key)
        # K distinct candidates, uniformly: the first K of a random order (an argsort compiles
        # faster than jax.random.choice without replacement).
        order = jnp.argsort(jax.random.uniform(patterns_key, (len(candidates),)))
        patterns = jnp.asarray(candidates)[order[:num_activation_patterns]]
        return TracePatterningState(
            trials_key, jnp.uint32(0), patterns,
            first_trials(rules, trials_key, patterns, 1 + lookahead_trials),
            jnp.full(num_signals, NEVER, jnp.int32))

    def generate(state: TracePatterningState, num_steps: int):
        dtype = jnp.result_type(float)
        t = steps_of_block(state.step, num_steps).astype(jnp.int32)
        (trials, last_onsets), (signals, onsets, time_in_trial, pattern, reinforced, value,
                                realized) = jax.lax.scan(
            lambda carry, step: advance(rules, later_trials, state.trials_key, state.patterns,
                                        carry, step),
            (state.trials, state.last_onsets), t)
        us = signals[:, 0].astype(dtype)
        target = TDTarget(us, jnp.where(t == 0, 0.0, discount).astype(dtype),
                          value.astype(dtype))
        info = {"us": us, "pattern": pattern, "reinforced": reinforced,
                "time_in_trial": time_in_trial, "return": realized.astype(dtype)}
        x = features_of(representation, num_cs, signals, onsets, time_in_trial, pattern, t)
        advanced = TracePatterningState(state.trials_key, state.step + num_steps, state.patterns,
                                        trials, last_onsets)
        return advanced, Sample(x, target, info)

    return Problem(
        name="trace_patterning",
        num_features=num_features_of(representation, num_cs, num_signals),
        params={"features": features, "num_cs": num_cs, "num_distractors": num_distractors,
                "num_activation_patterns": num_activation_patterns,
                "activation_patterns_probability": activation_patterns_probability,
                "noise": noise, "distractor_probability": distractor_probability,
                "isi_range": rules.isi_range, "iti_range": rules.iti_range,
                "cs_duration": cs_duration, "distractor_duration": distractor_duration,
                "us_duration": us_duration, "discount": discount,
                "num_microstimuli": num_microstimuli,
                "microstimulus_decay": microstimulus_decay,
                "microstimulus_width": microstimulus_width, "scale_by_trace": scale_by_trace,
                "lookahead_trials": lookahead_trials},
        init=init,
        generate=generate,
        description=(f"Trace patterning: {num_cs} CSs ({num_activation_patterns} activation "
                     f"patterns), {num_distractors} distractors, ISI {isi_range[0]}-{isi_range[1]}"
                     f", ITI {iti_range[0]}-{iti_range[1]}, γ = {discount:.4g}, {features} "
                     "features" if is_concrete(discount) else "Trace patterning"),
    )


def checked_arguments(features, num_cs, num_distractors, num_activation_patterns,
                      activation_patterns_probability, noise, distractor_probability, isi_range,
                      iti_range, cs_duration, distractor_duration, us_duration, discount,
                      num_microstimuli, microstimulus_decay, microstimulus_width,
                      scale_by_trace, lookahead_trials) -> tuple[Rules, Representation]:
    """The arguments of :func:`trace_patterning` checked (errors name them), as its rules and
    representation (``discount`` resolved)."""
    if features not in FEATURES:
        raise ValueError(f"`features` must be one of {FEATURES}, got {features!r}")
    check_count("num_cs", num_cs)
    check_count("num_distractors", num_distractors, minimum=0)
    check_count("num_activation_patterns", num_activation_patterns)
    num_candidates = len(candidate_patterns(num_cs))
    if num_activation_patterns > num_candidates:
        raise ValueError(f"`num_activation_patterns` must be <= C({num_cs}, {num_cs // 2}) = "
                         f"{num_candidates}, got {num_activation_patterns}")
    check_unit_interval("activation_patterns_probability", activation_patterns_probability)
    random_share = num_activation_patterns / 2 ** num_cs  # of the uniform patterns
    if (is_concrete(activation_patterns_probability)
            and activation_patterns_probability < random_share):
        raise ValueError(f"`activation_patterns_probability` must be >= num_activation_patterns"
                         f" / 2^num_cs = {random_share}, got {activation_patterns_probability}")
    check_unit_interval("noise", noise)
    check_unit_interval("distractor_probability", distractor_probability)
    check_count("us_duration", us_duration)
    isi_range = check_range("isi_range", isi_range)
    iti_range = check_range("iti_range", iti_range, minimum=us_duration)
    shortest_trial = isi_range[0] + iti_range[0]
    for name, duration in (("cs_duration", cs_duration),
                           ("distractor_duration", distractor_duration)):
        check_count(name, duration)
        if duration > shortest_trial:
            raise ValueError(f"`{name}` must be <= the shortest trial ({shortest_trial} steps), "
                             f"got {duration}")
    if discount is None:
        discount = 1.0 - 2.0 / sum(isi_range)
    check_unit_interval("discount", discount)
    if is_concrete(discount) and discount >= 1:
        raise ValueError(f"`discount` must be < 1 (a continuing task), got {discount}")
    check_count("num_microstimuli", num_microstimuli)
    check_unit_interval("microstimulus_decay", microstimulus_decay)
    check_positive("microstimulus_width", microstimulus_width)
    if not isinstance(scale_by_trace, bool):
        raise ValueError(f"`scale_by_trace` must be a bool, got {scale_by_trace!r}")
    check_count("lookahead_trials", lookahead_trials)
    activation_share = ((activation_patterns_probability - random_share)
                        / (1.0 - random_share))  # p
    return (Rules(num_cs, num_distractors, num_activation_patterns, isi_range, iti_range,
                  cs_duration, distractor_duration, us_duration, activation_share, noise,
                  distractor_probability, discount),
            Representation(features, num_microstimuli, microstimulus_decay,
                           microstimulus_width, scale_by_trace))
