"""The engine's program cache: a call that differs in floats or seeds compiles nothing; objects of
different structure never share a program; a cached program gives what a fresh one gives."""

import contextlib

import jax
import numpy as np
import pytest

import metastep as ms
from metastep import _lanes, engine
from metastep._structure import Identity, rebuild, recorded, split

STEPS = dict(steps=600, record_every=200)
BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
# A program loaded from the persistent compilation cache (the test session shares one across
# its processes) instead of compiled: it counts as a compilation here.
PERSISTENT_CACHE_HIT = "/jax/compilation_cache/cache_hits"


@contextlib.contextmanager
def counted_compilations():
    """A list that receives one entry per program that XLA compiled (or loaded from the
    persistent compilation cache) within the block."""
    compiled = []

    def on_duration(event, duration, **kwargs):
        if event == BACKEND_COMPILE:
            compiled.append(duration)

    def on_event(event, **kwargs):
        if event == PERSISTENT_CACHE_HIT:
            compiled.append(event)

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    try:
        yield compiled
    finally:
        jax.monitoring.unregister_event_duration_listener(on_duration)
        jax.monitoring.unregister_event_listener(on_event)


def learner(meta_step_size=0.01, num_features=4, **options):
    return ms.LinearLearner(ms.idbd(meta_step_size, 0.05, **options), num_features)


def problem(scale=1.0, num_relevant=2, **options):
    return ms.problems.weight_flipping(num_inputs=4, num_relevant=num_relevant, scale=scale,
                                       **options)


def run(a_learner, a_problem, seed=0, **kwargs):
    return ms.run(a_learner, a_problem, seed=seed, **{**STEPS, **kwargs})


def assert_same_run(actual, expected):
    np.testing.assert_array_equal(actual.squared_error, expected.squared_error)
    for name in expected.records:
        np.testing.assert_array_equal(actual.records[name], expected.records[name])
    assert actual.diverged == expected.diverged


def test_a_second_run_that_differs_in_floats_or_seed_compiles_nothing():
    run(learner(), problem())
    calls = [lambda: run(learner(), problem(), seed=7),
             lambda: run(learner(0.03), problem(scale=2.5)),
             lambda: run(learner(), problem(), divergence_threshold=1e3)]
    with counted_compilations() as compiled:
        cached = [call() for call in calls]
    assert compiled == []
    assert cached[1].squared_error[0] != cached[0].squared_error[0]
    assert_same_run(cached[1], run_fresh(calls[1]))


def run_fresh(call):
    """``call()`` compiled from scratch (an empty cache)."""
    engine.clear_cache()
    return call()


# Learners and problems that differ from ``learner()`` and ``problem()`` in structure: a shared
# program would silently give the results of one for the other.
DIFFERENT_STRUCTURES = {
    "granularity": ("learner", learner(granularity="scalar")),
    "optional floor": ("learner", learner(min_log_step_size=-3.0)),
    "int for a float": ("learner", ms.LinearLearner(ms.idbd(1, 0.05), 4)),
    "flip period": ("problem", problem(flip_every=7)),
}


@pytest.mark.parametrize("name", list(DIFFERENT_STRUCTURES))
def test_objects_of_different_structure_never_share_a_program(name):
    kind, other = DIFFERENT_STRUCTURES[name]
    reference = learner() if kind == "learner" else problem()
    assert split(other)[0] != split(reference)[0]
    run(learner(), problem())
    programs = set(_lanes.PROGRAMS)
    with counted_compilations() as compiled:
        run(other, problem()) if kind == "learner" else run(learner(), other)
    assert compiled  # a program of its own (counted as keys: a full cache drops its oldest)
    assert len(set(_lanes.PROGRAMS) - programs) == 1


def test_equal_structures_share_a_program_and_differ_in_their_leaves():
    structure, leaves = split(learner(0.02))
    assert structure == split(learner(0.5))[0]
    assert leaves == [0.02, 0.05]
    assert split(learner(0.02), trace_floats=False)[0] != split(learner(0.5), trace_floats=False)[0]
    rebuilt = rebuild(structure, [0.3, 0.1])
    assert split(rebuilt) == (structure, [0.3, 0.1])


def test_an_object_that_is_not_recorded_is_its_own_structure():
    class Subclass(ms.LinearLearner):
        pass

    first, second = Subclass(ms.idbd(), 4), Subclass(ms.idbd(), 4)
    assert split(first)[0] == ("object", Identity(first))
    assert split(first)[0] != split(second)[0]
    run(first, problem())
    with counted_compilations() as compiled:
        run(first, problem(scale=2.0))  # the same object: cached
    assert compiled == []
    programs = set(_lanes.PROGRAMS)
    run(second, problem())
    assert len(set(_lanes.PROGRAMS) - programs) == 1


@recorded
def needs_a_concrete_value(meta_step_size: float):
    """A factory that branches on its float: it cannot be called with a traced value."""
    granularity = "scalar" if float(meta_step_size) > 0.1 else "weight"
    return ms.LinearLearner(ms.idbd(meta_step_size, 0.05, granularity=granularity), 4)


def test_a_factory_that_needs_concrete_floats_is_compiled_per_value():
    structure = split(needs_a_concrete_value(0.01))[0]
    with pytest.raises(jax.errors.ConcretizationTypeError):
        jax.jit(lambda value: rebuild(structure, [value]).init())(0.01)
    first = run(needs_a_concrete_value(0.01), problem(), steps=200)
    with counted_compilations() as compiled:
        again = run(needs_a_concrete_value(0.01), problem(), steps=200)  # the same value
    assert compiled == []
    assert_same_run(again, first)
    with counted_compilations() as compiled:
        coarse = run(needs_a_concrete_value(0.5), problem(), steps=200)
    assert compiled
    assert np.ptp(coarse.step_sizes) == 0  # the branch of 0.5: one step size for all weights


def make_idbd(meta_step_size):
    return learner(meta_step_size)


def test_a_second_sweep_with_other_values_and_seeds_compiles_nothing():
    kwargs = dict(seeds=2, **STEPS)
    ms.sweep(make_idbd, problem(), {"meta_step_size": [0.01, 0.02]}, **kwargs)
    with counted_compilations() as compiled:
        cached = ms.sweep(make_idbd, problem(), {"meta_step_size": [0.03, 0.001]},
                          seeds=[5, 6], steps=STEPS["steps"], record_every=200)
    assert compiled == []
    engine.clear_cache()
    fresh = ms.sweep(make_idbd, problem(), {"meta_step_size": [0.03, 0.001]}, seeds=[5, 6],
                     steps=STEPS["steps"], record_every=200)
    np.testing.assert_array_equal(cached.squared_error, fresh.squared_error)
    np.testing.assert_array_equal(cached.step_sizes, fresh.step_sizes)


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(_lanes, "CACHED_PROGRAMS", 2)
    engine.clear_cache()
    for period in (3, 4, 5):
        _lanes.cached_program(("a key", period), lambda period=period: period)
    assert list(_lanes.PROGRAMS) == [("a key", 4), ("a key", 5)]
