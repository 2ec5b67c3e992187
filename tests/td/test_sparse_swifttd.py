"""Sparse SwiftTD: against a float64 NumPy transcription of the authors' sparse ``Step`` (feature
by feature, the eligible set a list kept in the code's order) with episode ends, against the
authors' ``swifttd`` 0.1.8, its reductions to the dense learner, its capacity and its checks."""

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metastep as ms
from metastep import td
from td.td_data import sparse_td_data

HYPERPARAMETERS = dict(trace_decay=0.9, initial_step_size=1e-2, meta_step_size=1e-3,
                       step_size_bound=0.1, step_size_decay=0.999, min_step_size=1e-10,
                       trace_cutoff=1e-5)


def exp(x):
    """``math.exp`` that overflows to inf (as the code's ``exp``) instead of raising."""
    return math.exp(x) if x < 709.0 else math.inf


class Reference(NamedTuple):
    predictions: np.ndarray  # [T]
    step_sizes: np.ndarray  # [T, n]: e^β after each step
    set_sizes: np.ndarray  # [T]: the eligible set's size after each step
    overshoots: int  # steps whose rate of learning exceeded η
    drops: int  # features that left the eligible set


def sparse_swifttd_reference(indices, values, rewards, discounts, num_features, trace_decay,
                             initial_step_size, meta_step_size, step_size_bound,
                             step_size_decay, min_step_size, trace_cutoff, floor="applied"):
    """The code's ``SwiftTD::Step`` one feature at a time, in float64 (Python floats), the
    per-step discount where the code has γ. With every value 1 it is ``SwiftTDBinaryFeatures::
    Step``: the two differ only by products with the values, exact for a value of 1."""
    n = num_features
    w, z, z_delta, delta_w, h, h_old, h_temp, z_bar, p, last_alpha = ([0.0] * n
                                                                      for _ in range(10))
    beta = [math.log(initial_step_size)] * n
    eligible = []
    v_old = v_delta = 0.0
    eta, lam, eps = step_size_bound, trace_decay, trace_cutoff
    floor_test = min_step_size if floor == "applied" else math.log(min_step_size)
    predictions, step_sizes, set_sizes = [], [], []
    overshoots = drops = 0
    for active, xs, reward, gamma in zip(indices.tolist(), values.tolist(), rewards.tolist(),
                                         discounts.tolist()):
        v = 0.0
        for i, x in zip(active, xs):
            v += w[i] * x
        delta = reward + gamma * v - v_old
        position = 0
        while position < len(eligible):
            i = eligible[position]
            delta_w[i] = delta * z[i] - z_delta[i] * v_delta
            w[i] += delta_w[i]
            beta[i] += meta_step_size / exp(beta[i]) * (delta - v_delta) * p[i]
            if exp(beta[i]) > eta:
                beta[i] = math.log(eta)
            if exp(beta[i]) < floor_test:
                beta[i] = math.log(min_step_size)
            h_old[i] = h[i]
            h[i] = h_temp[i] + delta * z_bar[i] - z_delta[i] * v_delta
            h_temp[i] = h[i]
            z_delta[i] = 0.0
            z[i] = gamma * lam * z[i]
            p[i] = gamma * lam * p[i]
            z_bar[i] = gamma * lam * z_bar[i]
            if z[i] <= last_alpha[i] * eps:
                z[i] = p[i] = z_bar[i] = delta_w[i] = 0.0
                eligible[position] = eligible[-1]
                eligible.pop()
                drops += 1
            else:
                position += 1
        v_delta = 0.0
        rate = t = 0.0
        for i, x in zip(active, xs):
            rate += exp(beta[i]) * x * x
        bound = max(eta, rate)  # the code's E
        for i, x in zip(active, xs):
            t += z[i] * x
        for i, x in zip(active, xs):
            if z[i] == 0:
                eligible.append(i)
            v_delta += delta_w[i] * x
            z_delta[i] = (eta / bound) * exp(beta[i]) * x
            last_alpha[i] = (eta / bound) * exp(beta[i])
            if eta / bound < 1:
                h_temp[i] = h[i] = h_old[i] = z_bar[i] = 0.0
                beta[i] += math.log(step_size_decay) * x * x
            z[i] += z_delta[i] * (1 - t)
            p[i] += h_old[i] * x
            z_bar[i] += z_delta[i] * (1 - t - z_bar[i] * x)
            h_temp[i] = h[i] - h_old[i] * x * (z[i] - z_delta[i]) - h[i] * z_delta[i] * x
        overshoots += rate > eta
        v_old = v
        predictions.append(v)
        step_sizes.append(np.exp(beta))
        set_sizes.append(len(eligible))
    return Reference(np.array(predictions), np.array(step_sizes), np.array(set_sizes),
                     overshoots, drops)


NAMES = tuple(HYPERPARAMETERS)


@functools.cache
def compiled_run(binary: bool, floor: str = "applied", capacity: int | None = None):
    """A compiled scan of ``SparseSwiftTD(40, ...)`` whose float hyperparameters are arguments
    (as in the engine's sweeps): one program per input kind, floor and capacity, shared by the
    tests. Returns predictions, per-step step sizes and eligible-set sizes."""

    def run(hyperparameters, indices, values, targets):
        learner = td.SparseSwiftTD(40, 0.9, floor=floor, capacity=capacity,
                                   **dict(zip(NAMES, hyperparameters)))
        xs = indices if binary else td.SparseFeatures(indices, values)

        def step(state, xy):
            state, output = learner.step(state, *xy)
            return state, (output.prediction, output.step_sizes, state.num_eligible)

        return jax.lax.scan(step, learner.init(), (xs, targets))[1]

    return jax.jit(run)


def run_sparse(indices, values, rewards, discounts, binary=True, floor="applied",
               capacity=None, **hyperparameters):
    """:func:`compiled_run` over NumPy data (float64: call it under ``x64``)."""
    hyperparameters = {**HYPERPARAMETERS, **hyperparameters}
    targets = td.TDTarget(jnp.asarray(rewards), jnp.asarray(discounts), jnp.zeros(len(rewards)))
    outputs = compiled_run(binary, floor, capacity)(
        jnp.asarray([hyperparameters[name] for name in NAMES]), jnp.asarray(indices),
        jnp.asarray(values), targets)
    return tuple(np.asarray(a) for a in outputs)


@pytest.fixture(scope="module")
def data():
    """Binary and valued sparse data, 40 features, 4 active per step, episode ends."""
    return {binary: sparse_td_data(seed=3, steps=1500, binary=binary) for binary in (True, False)}


# (case, hyperparameters, floor, binary): what each case exercises is asserted on the
# transcription. (The floor's two forms on one input kind: one program fewer to compile.)
CASES = [
    ("bound", dict(initial_step_size=0.02, meta_step_size=0.05), "applied", True),
    ("bound", dict(initial_step_size=0.02, meta_step_size=0.05), "applied", False),
    ("cutoff", dict(trace_cutoff=0.1, meta_step_size=0.02), "applied", True),
    ("cutoff", dict(trace_cutoff=0.1, meta_step_size=0.02), "applied", False),
    ("floor", dict(min_step_size=9e-3, meta_step_size=0.01), "applied", False),
    ("floor", dict(min_step_size=9e-3, meta_step_size=0.01), "code", False),
    # ε = 0: a trace leaves the set when it reaches 0, i.e. at each episode end (z ≤ 0)
    ("no-cutoff", dict(trace_cutoff=0.0, meta_step_size=0.02), "applied", True),
    # α₀ > η: the code bounds β only in the set, so a new feature's first rate uses α₀
    ("above-bound", dict(initial_step_size=0.2, meta_step_size=0.02), "applied", False),
]


@pytest.mark.parametrize("case, hyperparameters, floor, binary", CASES, ids=[
    f"{case}-{floor}-{'binary' if binary else 'values'}" for case, _, floor, binary in CASES])
def test_matches_numpy_transcription(x64, data, case, hyperparameters, floor, binary):
    predictions, step_sizes, set_sizes = run_sparse(*data[binary], binary=binary, floor=floor,
                                                    **hyperparameters)
    expected = sparse_swifttd_reference(*data[binary], 40, floor=floor,
                                        **{**HYPERPARAMETERS, **hyperparameters})
    steps = len(expected.predictions)
    assert np.all(np.isfinite(expected.predictions))
    if case == "bound":  # the rate of learning exceeded η often (resets and decay)
        assert 0.1 * steps < expected.overshoots
        assert np.max(expected.step_sizes) == pytest.approx(0.1)
    if case == "cutoff":  # features left the set by the cut-off, not only at episode ends
        assert np.max(expected.set_sizes) < 40 and expected.drops > steps
    if case == "floor":  # the applied floor acted where the code's did not
        assert (np.min(expected.step_sizes) >= 0.99 * 9e-3) == (floor == "applied")
    if case == "no-cutoff":  # the set emptied at the episode ends only
        assert np.max(expected.set_sizes) == 40 and np.min(expected.set_sizes[100:]) == 4
    if case == "above-bound":  # features outside the set kept α₀ above η for a while
        assert np.max(expected.step_sizes[10]) == pytest.approx(0.2)
    np.testing.assert_array_equal(set_sizes, expected.set_sizes)
    np.testing.assert_allclose(predictions, expected.predictions, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(step_sizes, expected.step_sizes, rtol=1e-9, atol=1e-15)


def authors_predictions(binary, indices, values, rewards, hyperparameters, discount):
    """The predictions of the authors' sparse code (float32) over the data."""
    swifttd = pytest.importorskip("swifttd", reason="the authors' swifttd package (0.1.8) is "
                                  "not installed: pip install swifttd==0.1.8")
    h = hyperparameters
    arguments = (40, h["trace_decay"], h["initial_step_size"], discount,
                 h["trace_cutoff"], h["step_size_bound"], h["step_size_decay"],
                 h["meta_step_size"], h["min_step_size"])
    if binary:
        reference = swifttd.SwiftTDBinaryFeatures(*arguments)
        return np.array([reference.step(i, r) for i, r in zip(indices.tolist(),
                                                                 rewards.tolist())])
    reference = swifttd.SwiftTD(*arguments)
    return np.array([reference.step(list(zip(i, v)), r) for i, v, r in zip(
        indices.tolist(), values.tolist(), rewards.tolist())])


@pytest.fixture(scope="module")
def float32_data():
    """Float32 sparse data with a constant discount, and the authors' predictions over it."""
    hyperparameters = {**HYPERPARAMETERS, "trace_cutoff": 0.1, "meta_step_size": 0.02}
    result = {}
    for binary in (True, False):
        indices, values, rewards, _ = sparse_td_data(seed=5, steps=4000, binary=binary)
        values, rewards = values.astype(np.float32), rewards.astype(np.float32)
        expected = authors_predictions(binary, indices, values, rewards, hyperparameters, 0.95)
        assert np.ptp(expected) > 1.0  # it learned something to compare
        result[binary] = indices, values, rewards, expected
    return hyperparameters, result


def assert_float32_close(predictions, expected):
    """Float32 rounding, grown over thousands of steps: relative to the predictions' scale."""
    np.testing.assert_allclose(predictions, expected, rtol=1e-4,
                               atol=1e-5 * np.max(np.abs(expected)))


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "values"])
def test_transcription_matches_the_authors_code(float32_data, binary):
    """The oracle of the tests above against the code it transcribes."""
    hyperparameters, result = float32_data
    indices, values, rewards, expected = result[binary]
    transcribed = sparse_swifttd_reference(indices, values.astype(float), rewards.astype(float),
                                           np.full(len(rewards), 0.95), 40, floor="code",
                                           **hyperparameters)
    assert transcribed.drops > len(rewards) / 2  # the cut-off acted
    assert_float32_close(transcribed.predictions, expected)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "values"])
def test_matches_the_authors_code(float32_data, binary):
    hyperparameters, result = float32_data
    indices, values, rewards, expected = result[binary]
    learner = td.SparseSwiftTD(40, discount=0.95, floor="code", **hyperparameters)
    xs = indices if binary else td.SparseFeatures(indices, values)
    run = ms.run_arrays(learner, xs, rewards)
    assert run.predictions.dtype == np.float32 and run.diverged_at == 0
    assert_float32_close(run.predictions, expected)


# ε = 0 and a bound that the rate of learning never reaches (asserted below): the sparse code's
# departures from the dense rule do not act. With episode ends they would: at γ_t = 0 every
# trace falls to 0 and leaves the set, and the code zeroes a leaving feature's Δw before that
# step's v_δ sums it, and keeps its h_old at the value of that step (the dense rule sets
# h_old ← h at every step); hence a constant discount here.
NO_CUTOFF = dict(trace_cutoff=0.0, step_size_bound=1.0)


@pytest.fixture(scope="module")
def continuing_data():
    """Binary and valued sparse data with a constant discount (no episode ends)."""
    return {binary: sparse_td_data(seed=7, steps=1500, binary=binary, end_probability=0.0)
            for binary in (True, False)}


def test_equals_dense_swifttd_without_cutoff_and_bound(x64, continuing_data):
    hyperparameters = {**HYPERPARAMETERS, **NO_CUTOFF}
    dense = td.SwiftTD(40, discount=0.9, **{name: value for name, value in
                                            hyperparameters.items() if name != "trace_cutoff"})
    run_dense = jax.jit(lambda xs, targets: jax.lax.scan(
        lambda s, xy: dense.step(s, *xy), dense.init(), (xs, targets))[1])
    for binary, (indices, values, rewards, discounts) in continuing_data.items():
        expected = sparse_swifttd_reference(indices, values, rewards, discounts, 40,
                                            **hyperparameters)
        assert expected.overshoots == 0 and np.ptp(expected.predictions) > 1.0
        rows = np.zeros((len(rewards), 40))
        np.put_along_axis(rows, indices, values, axis=1)  # the k-hot (or valued) dense rows
        targets = td.TDTarget(jnp.asarray(rewards), jnp.asarray(discounts),
                              jnp.zeros(len(rewards)))
        outputs = run_dense(jnp.asarray(rows), targets)
        predictions, step_sizes, _ = run_sparse(indices, values, rewards, discounts, binary,
                                                **NO_CUTOFF)
        np.testing.assert_allclose(predictions, outputs.prediction, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(step_sizes, outputs.step_sizes, rtol=1e-9)


def test_binary_indices_equal_values_of_one(x64, data):
    indices, _, rewards, discounts = data[True]
    ones = np.ones(indices.shape)
    hyperparameters = dict(initial_step_size=0.02, meta_step_size=0.05)  # the bound acts
    binary = run_sparse(indices, ones, rewards, discounts, True, **hyperparameters)
    valued = run_sparse(indices, ones, rewards, discounts, False, **hyperparameters)
    for a, b in zip(binary, valued):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_zero_meta_step_size_keeps_initial_step_sizes(x64, continuing_data):
    indices, values, rewards, discounts = continuing_data[True]
    predictions, step_sizes, _ = run_sparse(indices, values, rewards, discounts, True,
                                            meta_step_size=0.0, **NO_CUTOFF)
    assert np.ptp(predictions) > 1.0
    np.testing.assert_allclose(step_sizes, HYPERPARAMETERS["initial_step_size"], rtol=1e-12)


def test_order_of_active_features_changes_only_rounding(x64, data):
    indices, values, rewards, discounts = data[False]
    order = np.argsort(np.random.default_rng(0).uniform(size=indices.shape), axis=1)
    shuffled = np.take_along_axis(indices, order, 1), np.take_along_axis(values, order, 1)
    assert np.any(shuffled[0] != indices)
    hyperparameters = dict(initial_step_size=0.02, meta_step_size=0.05, trace_cutoff=0.1)
    first = run_sparse(indices, values, rewards, discounts, False, **hyperparameters)
    second = run_sparse(*shuffled, rewards, discounts, False, **hyperparameters)
    np.testing.assert_array_equal(first[2], second[2])  # the set's size
    np.testing.assert_allclose(first[0], second[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(first[1], second[1], rtol=1e-9)


@pytest.fixture(scope="module")
def capacity_case():
    """Binary data with a constant discount (``run_arrays``'s plain rewards), the cut-off
    0.1, and the eligible set's size per step from the transcription."""
    indices, values, rewards, discounts = sparse_td_data(seed=9, steps=1500,
                                                         end_probability=0.0)
    hyperparameters = {**HYPERPARAMETERS, "trace_cutoff": 0.1}
    expected = sparse_swifttd_reference(indices, values, rewards, discounts, 40,
                                        **hyperparameters)
    return indices, values, rewards, discounts, hyperparameters, expected


def test_capacity_of_the_true_set_size_changes_nothing(x64, capacity_case):
    """Also ``ms.run_arrays`` over int indices [T, k] against the learner stepped in a scan."""
    indices, values, rewards, discounts, hyperparameters, expected = capacity_case
    size = int(np.max(expected.set_sizes))
    assert size < 40
    learner = td.SparseSwiftTD(40, 0.9, capacity=size, **hyperparameters)
    run = ms.run_arrays(learner, indices, rewards)
    unbounded = run_sparse(indices, values, rewards, discounts, **hyperparameters)
    assert run.diverged_at == 0 and not bool(run.final_state.overflowed)
    np.testing.assert_allclose(run.predictions, unbounded[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(run.step_sizes, unbounded[1], rtol=1e-12)
    assert int(run.final_state.num_eligible) == expected.set_sizes[-1]


def test_overflowing_capacity_gives_nan_and_divergence_from_that_step(x64, capacity_case):
    indices, values, rewards, discounts, hyperparameters, expected = capacity_case
    capacity = int(np.max(expected.set_sizes)) - 1
    first = int(np.argmax(expected.set_sizes > capacity))  # the first step that overflows
    assert 100 < first
    learner = td.SparseSwiftTD(40, 0.9, capacity=capacity, **hyperparameters)
    run = ms.run_arrays(learner, indices, rewards)
    np.testing.assert_allclose(run.predictions[:first], expected.predictions[:first],
                               rtol=1e-9, atol=1e-12)
    assert np.all(np.isnan(run.predictions[first:]))
    assert bool(run.final_state.overflowed)
    assert run.diverged_at == first + 1  # the engine's steps count from 1


def test_run_arrays_of_sparse_features_matches_stepping(x64, data):
    """(Int indices: in the capacity tests.)"""
    indices, values, rewards, _ = data[False]
    discounts = np.full(len(rewards), 0.9)  # run_arrays: plain rewards, the learner's discount
    learner = td.SparseSwiftTD(40, 0.9, **HYPERPARAMETERS)
    run = ms.run_arrays(learner, td.SparseFeatures(indices, values), rewards)
    predictions, step_sizes, set_sizes = run_sparse(indices, values, rewards, discounts, False)
    np.testing.assert_allclose(run.predictions, predictions, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(run.step_sizes, step_sizes, rtol=1e-12)
    assert int(run.final_state.num_eligible) == set_sizes[-1] and run.diverged_at == 0


def test_bad_arguments_are_named():
    for name, value in [("trace_cutoff", -1e-5), ("capacity", 0), ("capacity", 41),
                        ("capacity", 2.0), ("floor", "c++")]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            td.SparseSwiftTD(40, 0.9, 0.9, **{name: value})
    learner = td.SparseSwiftTD(40, 0.9, 0.9)
    state = learner.init()
    for x, name in [(jnp.array([1.0, 2.0]), "`x`"), (jnp.zeros((2, 3), int), "`x`"),
                    (td.SparseFeatures(jnp.array([1, 2, 3]), jnp.ones(2)), "`x.values`")]:
        with pytest.raises(ValueError, match=name):
            learner.step(state, x, 0.0)
    rewards = np.zeros(3)
    indices = np.array([[0, 1], [2, 3], [4, 5]])
    for xs, name in [(indices.astype(float), "`xs`"), (indices[0], "`xs`"),
                     (np.array([[0, 1], [2, 2], [4, 5]]), "`xs`"), (indices + 39, "`xs`"),
                     (td.SparseFeatures(indices, np.ones((3, 3))), "`xs.values`"),
                     (td.SparseFeatures(indices, np.full((3, 2), np.nan)), "`xs.values`")]:
        with pytest.raises(ValueError, match=name):
            ms.run_arrays(learner, xs, rewards)
    with pytest.raises(ValueError, match="`ys`"):
        ms.run_arrays(learner, indices, np.zeros(4))
