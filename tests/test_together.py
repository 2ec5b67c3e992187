"""ms.sweep_together: several sweeps on one stream, in one program, each equal to its sweep."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import metastep as ms
from metastep import _lanes, together
from tests.test_engine import drifting_problem, idbd_learner


def make_idbd(meta_step_size):
    return idbd_learner(meta_step_size)


def make_sgd(learning_rate, last_rate):
    """SGD with ``learning_rate`` on the first three inputs, ``last_rate`` on the fourth."""
    return ms.LinearLearner(ms.sgd(jnp.stack([learning_rate] * 3 + [last_rate])), 4)


SWEEPS = {
    # θ = 100 diverges: its lanes stop, the others go on.
    "idbd": (make_idbd, {"meta_step_size": [0.001, 0.01, 100.0]}),
    "sgd": (make_sgd, {"learning_rate": [0.01, 0.05], "last_rate": [0.0, 0.02]}),
}
SCHEDULE = {"seeds": 3, "steps": 1_500, "record_every": 250}


@pytest.fixture(scope="module")
def problem():
    return drifting_problem(scale=3.0)


@pytest.fixture(scope="module")
def alone(problem):
    return {name: ms.sweep(make, problem, grid, **SCHEDULE)
            for name, (make, grid) in SWEEPS.items()}


def assert_same_sweep(result, reference):
    pd.testing.assert_frame_equal(result.to_pandas(), reference.to_pandas(), check_exact=True)
    np.testing.assert_array_equal(result.diverged_at, reference.diverged_at)
    for name in ("records", "info"):
        for key, values in getattr(reference, name).items():
            np.testing.assert_array_equal(getattr(result, name)[key], values, err_msg=key)
    assert result.squared_error.dtype == reference.squared_error.dtype
    assert result.parameters == reference.parameters


def test_each_result_is_its_sweep_alone(problem, alone):
    assert alone["idbd"].diverged[2].all() and not alone["idbd"].diverged[:2].any()
    results = ms.sweep_together(SWEEPS, problem, **SCHEDULE)
    assert list(results) == list(SWEEPS)
    for name, result in results.items():
        assert_same_sweep(result, alone[name])


def test_chunks_of_seeds_give_the_same_results(problem, alone, monkeypatch):
    monkeypatch.setattr(together, "chunk_memory_bytes", lambda: 1)  # one seed per chunk
    results = ms.sweep_together(SWEEPS, problem, **SCHEDULE)
    for name, result in results.items():
        assert_same_sweep(result, alone[name])


def test_other_grid_values_reuse_the_program(problem):
    ms.sweep_together(SWEEPS, problem, **SCHEDULE)
    programs = len(_lanes.PROGRAMS)
    other = {"idbd": (make_idbd, {"meta_step_size": [0.003, 0.02, 0.05]}),
             "sgd": (make_sgd, {"learning_rate": [0.02, 0.03], "last_rate": [0.0, 0.02]})}
    ms.sweep_together(other, problem, **SCHEDULE)
    assert len(_lanes.PROGRAMS) == programs


@pytest.mark.parametrize("sweeps, problem, match", [
    ({}, drifting_problem(), "`sweeps` must be a non-empty dict"),
    ({"idbd": make_idbd}, drifting_problem(), r"`sweeps\['idbd'\]` must be a pair"),
    ({"idbd": (make_idbd, {"theta": [0.1]})}, drifting_problem(),
     r"`sweeps\['idbd'\]`: grid parameter 'theta' is not accepted by `make_learner`"),
    ({"idbd": (make_idbd, {"meta_step_size": []})}, drifting_problem(),
     r"`sweeps\['idbd'\]`: `grid\['meta_step_size'\]` must be a non-empty"),
    ({"idbd": (make_idbd, {"meta_step_size": [0.01, -1.0]})}, drifting_problem(),
     r"`sweeps\['idbd'\]`: grid configuration 1"),
    ({"idbd": (make_idbd, {"meta_step_size": [0.01]})}, lambda scale: drifting_problem(scale),
     "`problem` must be a metastep Problem"),
])
def test_bad_arguments_are_named(sweeps, problem, match):
    with pytest.raises(ValueError, match=match):
        ms.sweep_together(sweeps, problem, seeds=1, steps=100, record_every=50)
