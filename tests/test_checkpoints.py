"""Checkpoints inside an engine call: an interrupted run or sweep resumes from its last save and
gives the same results, bit for bit, as an uninterrupted one."""

import numpy as np
import pytest

import metastep as ms
from metastep._checkpoints import checkpointing
from metastep.engine import progress_listener

STEPS, RECORD_EVERY, CHUNK_STEPS = 2_000, 100, 400  # 5 chunks of 4 bins


class Interrupted(Exception):
    pass


def learner(meta_step_size=0.01):
    return ms.LinearLearner(ms.idbd(meta_step_size, 0.05), 20)


def run(seed=0):
    return ms.run(learner(), ms.problems.weight_flipping(), steps=STEPS, seed=seed,
                  record_every=RECORD_EVERY, chunk_steps=CHUNK_STEPS, progress=False)


def sweep():
    return ms.sweep(learner, ms.problems.weight_flipping(), {"meta_step_size": [0.01, 0.02]},
                    seeds=2, steps=STEPS, record_every=RECORD_EVERY, chunk_steps=CHUNK_STEPS,
                    progress=False)


def interrupted_after(chunks, call):
    """Run ``call`` and stop it by an exception after ``chunks`` compiled chunks."""
    done = []

    def stop(lane_steps):
        done.append(lane_steps)
        if len(done) == chunks:
            raise Interrupted

    with progress_listener(stop), pytest.raises(Interrupted):
        call()


def counted(call):
    """``call()`` and the lane-steps reported chunk by chunk (a restore reports its bins first)."""
    reports = []
    with progress_listener(reports.append):
        result = call()
    return result, reports


def assert_same_run(first, second):
    np.testing.assert_array_equal(first.squared_error, second.squared_error)
    for name in first.records:
        np.testing.assert_array_equal(first.records[name], second.records[name])
    for a, b in zip(jax_leaves(first.final_state), jax_leaves(second.final_state)):
        np.testing.assert_array_equal(a, b)
    assert first.diverged_at == second.diverged_at


def jax_leaves(tree):
    import jax

    return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


def test_an_interrupted_run_resumes_from_its_last_save_with_the_same_results(tmp_path):
    whole = run()
    with checkpointing(tmp_path, every_seconds=0):
        interrupted_after(3, run)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    with checkpointing(tmp_path, every_seconds=0):  # the same code again: a new session
        resumed, reports = counted(run)
    # 3 chunks were saved: they are reported at once, then the 2 left are computed.
    assert reports == [3 * CHUNK_STEPS, CHUNK_STEPS, CHUNK_STEPS]
    assert_same_run(whole, resumed)
    # Finished, the call is saved whole: a third time computes nothing.
    with checkpointing(tmp_path, every_seconds=0):
        again, reports = counted(run)
    assert reports == [STEPS]
    assert_same_run(whole, again)


def test_another_call_does_not_read_the_checkpoint(tmp_path):
    with checkpointing(tmp_path, every_seconds=0):
        interrupted_after(3, run)
    with checkpointing(tmp_path, every_seconds=0):
        other, reports = counted(lambda: run(seed=1))
    assert reports == [CHUNK_STEPS] * 5  # all computed
    assert_same_run(run(seed=1), other)


def test_a_damaged_checkpoint_is_ignored(tmp_path):
    with checkpointing(tmp_path, every_seconds=0):
        interrupted_after(2, run)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])
    with checkpointing(tmp_path, every_seconds=0):
        resumed, reports = counted(run)
    assert reports == [CHUNK_STEPS] * 5
    assert_same_run(run(), resumed)


def test_an_interrupted_sweep_resumes_with_the_same_results(tmp_path):
    whole = sweep()
    with checkpointing(tmp_path, every_seconds=0):
        interrupted_after(2, sweep)
    with checkpointing(tmp_path, every_seconds=0):
        resumed, reports = counted(sweep)
    lanes = 4
    assert reports == [lanes * 2 * CHUNK_STEPS] + [lanes * CHUNK_STEPS] * 3
    np.testing.assert_array_equal(whole.squared_error, resumed.squared_error)
    np.testing.assert_array_equal(whole.step_sizes, resumed.step_sizes)
    np.testing.assert_array_equal(whole.diverged_at, resumed.diverged_at)


def test_saves_wait_for_the_interval(tmp_path):
    with checkpointing(tmp_path, every_seconds=3600):
        interrupted_after(3, run)
    assert not list(tmp_path.glob("*.npz"))  # no save before the hour, none at the end yet
    with pytest.raises(ValueError, match="every_seconds"):
        with checkpointing(tmp_path, every_seconds=-1):
            pass


def scaled_sweep(scale):
    return ms.sweep(learner, ms.problems.weight_flipping(scale=scale),
                    {"meta_step_size": [0.01, 0.02]}, seeds=2, steps=STEPS,
                    record_every=RECORD_EVERY, chunk_steps=CHUNK_STEPS, progress=False)


def test_calls_that_differ_only_in_their_problem_keep_their_own_results(tmp_path):
    """Two sweeps of the same grid and seeds over problems of other scales (floats compiled into
    the program, not inputs of it): each call has its own checkpoint, in process and resumed."""
    alone = [scaled_sweep(scale).squared_error for scale in (1.0, 10.0)]

    def both():
        return [scaled_sweep(scale).squared_error for scale in (1.0, 10.0)]

    with checkpointing(tmp_path, every_seconds=0):
        first = both()
    with checkpointing(tmp_path, every_seconds=0):
        interrupted_after(2, both)  # both restored whole: 2 reports, then stopped
    (tmp_path / "call-1-lanes-0-0.npz").unlink()
    with checkpointing(tmp_path, every_seconds=0):
        interrupted_after(3, both)  # call 0 restored, call 1 stopped after 2 of its 5 chunks
    with checkpointing(tmp_path, every_seconds=0):
        resumed, reports = counted(both)
    for errors in (first, resumed):
        np.testing.assert_array_equal(errors[0], alone[0])
        np.testing.assert_array_equal(errors[1], alone[1])
    # Call 0 restored whole, call 1 from its 2 chunks, then its 3 other chunks computed.
    assert reports == [4 * STEPS, 4 * 2 * CHUNK_STEPS] + [4 * CHUNK_STEPS] * 3
