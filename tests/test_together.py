"""ms.sweep_together: several sweeps side by side in one program, each equal to its sweep."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import metastep as ms
from metastep import _lanes, together
from metastep._checkpoints import checkpointing
from metastep.engine import progress_listener
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
    "idbd-other": (make_idbd, {"meta_step_size": [0.001, 0.01, 100.0]}),
}
SCHEDULE = {"seeds": 3, "steps": 1_000, "record_every": 250}
PROBLEM = drifting_problem(scale=3.0)
# Two sweeps read PROBLEM's streams, the third those of another problem.
PROBLEMS = {"idbd": PROBLEM, "sgd": PROBLEM, "idbd-other": drifting_problem(drift=0.2)}


@pytest.fixture(scope="module")
def alone():
    return {name: ms.sweep(make, PROBLEMS[name], grid, **SCHEDULE)
            for name, (make, grid) in SWEEPS.items()}


@pytest.fixture(scope="module")
def results():
    # One seed per chunk of lanes: three chunks.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(together, "chunk_memory_bytes", lambda: 1)
        return ms.sweep_together(SWEEPS, PROBLEMS, **SCHEDULE)


def assert_same_sweep(result, reference):
    pd.testing.assert_frame_equal(result.to_pandas(), reference.to_pandas(), check_exact=True)
    np.testing.assert_array_equal(result.diverged_at, reference.diverged_at)
    for name in ("records", "info"):
        for key, values in getattr(reference, name).items():
            np.testing.assert_array_equal(getattr(result, name)[key], values, err_msg=key)
    assert result.squared_error.dtype == reference.squared_error.dtype
    assert result.parameters == reference.parameters


def test_each_result_is_its_sweep_alone(results, alone):
    assert alone["idbd"].diverged[2].all() and not alone["idbd"].diverged[:2].any()
    assert list(results) == list(SWEEPS)
    for name, result in results.items():
        assert_same_sweep(result, alone[name])
    # The other problem's stream is another stream.
    assert not np.array_equal(results["idbd"].info["true_weights"],
                              results["idbd-other"].info["true_weights"])


class Interrupted(Exception):
    pass


def test_an_interrupted_call_resumes_from_its_checkpoints(results, tmp_path):
    reports = []

    def stop_after_two_chunks(lane_steps):
        reports.append(lane_steps)
        if len(reports) == 2:
            raise Interrupted

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(together, "chunk_memory_bytes", lambda: 1)
        with checkpointing(tmp_path, every_seconds=0), progress_listener(
                stop_after_two_chunks), pytest.raises(Interrupted):
            ms.sweep_together(SWEEPS, PROBLEMS, **SCHEDULE)
        saved = {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("*.npz")}
        assert len(saved) == 2  # the first two chunks of seeds
        with checkpointing(tmp_path, every_seconds=0):
            resumed = ms.sweep_together(SWEEPS, PROBLEMS, **SCHEDULE)
    # Those two were restored (done: not saved again), the third computed and saved.
    after = {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("*.npz")}
    assert len(after) == 3 and all(after[name] == time for name, time in saved.items())
    for name, result in resumed.items():
        assert_same_sweep(result, results[name])


def test_other_grid_values_reuse_the_program(results):
    programs, compiled = len(_lanes.PROGRAMS), set(_lanes.PROGRAMS)
    other = {"idbd": (make_idbd, {"meta_step_size": [0.003, 0.02, 0.05]}),
             "sgd": (make_sgd, {"learning_rate": [0.02, 0.03], "last_rate": [0.0, 0.02]}),
             "idbd-other": (make_idbd, {"meta_step_size": [0.001, 0.002, 0.003]})}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(together, "chunk_memory_bytes", lambda: 1)
        ms.sweep_together(other, PROBLEMS, **SCHEDULE)
    assert len(_lanes.PROGRAMS) == programs and set(_lanes.PROGRAMS) == compiled


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
    ({"idbd": (make_idbd, {"meta_step_size": [0.01]})}, {"sgd": drifting_problem()},
     r"`problem` must name the sweeps \['idbd'\], got \['sgd'\]"),
])
def test_bad_arguments_are_named(sweeps, problem, match):
    with pytest.raises(ValueError, match=match):
        ms.sweep_together(sweeps, problem, seeds=1, steps=100, record_every=50)
