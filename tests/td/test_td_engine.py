"""TD learners in the engine: ms.run on the random walk (value error, convergence of tabular
TD(λ)), ms.sweep (a lane equals the run alone), ms.run_arrays with plain rewards, and the
named errors of bad inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metastep as ms
from metastep import td
from td.td_data import td_data
from td.test_td_methods import td_lambda_reference

PROBLEM = ms.problems.random_walk(19)
TRUE_VALUES = (np.arange(19) - 9) / 10
# Odd record intervals: a single lane's loop is then not unrolled, which compiles faster.
RECORD_EVERY = 1_001


def make_swifttd(meta_step_size):
    return td.SwiftTD(19, discount=1.0, trace_decay=0.9, initial_step_size=1e-2,
                      meta_step_size=meta_step_size, step_size_bound=0.1,
                      step_size_decay=0.999, min_step_size=1e-10)


def decaying_step_size(count):
    """Robbins-Monro step sizes, so that the values converge rather than hover in noise."""
    return 0.1 * 5_000 / (5_000 + count)


@pytest.fixture(scope="module")
def tabular_run():
    learner = td.TDLearner(ms.sgd(decaying_step_size), 19, discount=1.0, trace_decay=0.8)
    return ms.run(learner, PROBLEM, steps=20 * 20 * RECORD_EVERY, seed=0,
                  record_every=20 * RECORD_EVERY)


def test_tabular_td_lambda_converges_to_the_true_values(tabular_run):
    np.testing.assert_allclose(tabular_run.final_state.weights, TRUE_VALUES, atol=0.06)
    errors = tabular_run.records["value_error"]
    assert errors[-1] < 0.05 and errors[0] > 0.1


def td_lambda_schedule_reference(xs, rewards, discounts, lam):
    """TD(λ) with the step size ``decaying_step_size(t)`` at step t."""
    w, z, previous, predictions = np.zeros(19), np.zeros(19), np.zeros(19), []
    for t, (x, reward, gamma) in enumerate(zip(xs, rewards, discounts)):
        predictions.append(w @ x)
        w = w + decaying_step_size(t) * (reward + gamma * w @ x - w @ previous) * z
        z, previous = gamma * lam * z + x, x
    return np.array(predictions)


def test_value_error_is_the_rms_error_of_the_predictions(tabular_run):
    # The first bin again by hand: the stream, TD(λ) in NumPy, the RMS error against v.
    samples = PROBLEM.sample(jax.random.split(jax.random.PRNGKey(0))[0], 20 * RECORD_EVERY)
    predictions = td_lambda_schedule_reference(
        np.asarray(samples.x, np.float64), np.asarray(samples.y.reward),
        np.asarray(samples.y.discount), 0.8)
    rms = np.sqrt(np.mean((predictions - np.asarray(samples.y.value)) ** 2))
    np.testing.assert_allclose(tabular_run.records["value_error"][0], rms, rtol=1e-4)


def test_sweep_lane_equals_the_run_alone():
    sweep = ms.sweep(make_swifttd, PROBLEM, {"meta_step_size": [0.0, 0.01]}, seeds=[0, 5],
                     steps=6 * RECORD_EVERY, record_every=RECORD_EVERY)
    alone = ms.run(make_swifttd(0.01), PROBLEM, steps=6 * RECORD_EVERY, seed=5,
                   record_every=RECORD_EVERY)
    for name in ("value_error", "step_sizes"):
        np.testing.assert_allclose(sweep.records[name][1, 1], alone.records[name], rtol=1e-5)
    np.testing.assert_allclose(sweep.squared_error[1, 1], alone.squared_error, rtol=1e-5)
    # SwiftTD learned, and the meta step size changed its step sizes.
    assert alone.records["value_error"][-1] < 0.6 * alone.records["value_error"][0]
    assert np.max(np.abs(sweep.records["step_sizes"][1] - sweep.records["step_sizes"][0])) > 1e-3


def make_sparse_swifttd(meta_step_size):
    return td.SparseSwiftTD(19, discount=1.0, trace_decay=0.9, initial_step_size=1e-2,
                            meta_step_size=meta_step_size, step_size_bound=0.1,
                            step_size_decay=0.999, min_step_size=1e-10)


def test_sparse_swifttd_in_the_engine():
    """On the walk's active indices: a sweep lane equals the run alone (an overflowing capacity:
    tests/td/test_sparse_swifttd.py)."""
    indexed = ms.problems.random_walk(19, active_indices=True)
    steps = 6 * RECORD_EVERY
    sweep = ms.sweep(make_sparse_swifttd, indexed, {"meta_step_size": [0.0, 0.01]},
                     seeds=[0, 5], steps=steps, record_every=RECORD_EVERY)
    alone = ms.run(make_sparse_swifttd(0.01), indexed, steps=steps, seed=5,
                   record_every=RECORD_EVERY)
    for name in ("value_error", "step_sizes"):
        np.testing.assert_allclose(sweep.records[name][1, 1], alone.records[name], rtol=1e-5)
    assert not sweep.diverged.any() and not alone.diverged
    assert alone.records["value_error"][-1] < 0.6 * alone.records["value_error"][0]


def test_run_arrays_takes_plain_rewards(x64):
    xs, rewards, _ = td_data(seed=4, steps=500)
    learner = td.TDLearner(ms.sgd(0.05), xs.shape[1], discount=0.9, trace_decay=0.7)
    result = ms.run_arrays(learner, xs, rewards)
    expected = td_lambda_reference(xs, rewards, np.full(len(rewards), 0.9), 0.7, 0.05)
    np.testing.assert_allclose(result.predictions, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("arguments, name", [
    ({"trace_decay": 1.5}, "trace_decay"), ({"trace_decay": -0.5}, "trace_decay"),
    ({"discount": 1.01}, "discount"), ({"discount": float("nan")}, "discount"),
    ({"num_features": 0}, "num_features"),
])
def test_bad_learner_arguments_are_named(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        td.TDLearner(**{"method": ms.sgd(0.1), "num_features": 3, "discount": 0.9,
                        "trace_decay": 0.5, **arguments})


def test_bad_method_arguments_are_named():
    with pytest.raises(ValueError, match="`form`"):
        td.tidbd(form="true_gradient")
    with pytest.raises(ValueError, match="`meta_step_size`"):
        td.autotidbd(meta_step_size=-1.0)
    with pytest.raises(ValueError, match="`tau`"):
        td.autotidbd(tau=0.0)
    with pytest.raises(ValueError, match="`variant`"):
        td.autotidbd(variant="code")
    with pytest.raises(ValueError, match="`kappa`"):
        td.obgd(kappa=0.0)
    with pytest.raises(ValueError, match="`beta2`"):
        td.adaptive_obgd(beta2=1.0)
    # A TD method outside a TD learner says what it misses.
    with pytest.raises(ValueError, match="td_error"):
        ms.run_arrays(ms.LinearLearner(td.tidbd(), 3), np.ones((4, 3)), np.ones(4))


def test_bad_data_is_named():
    learner = td.TDLearner(ms.sgd(0.1), 3, discount=0.9, trace_decay=0.5)
    with pytest.raises(ValueError, match="`ys` holds non-finite"):
        ms.run_arrays(learner, np.ones((4, 3)), np.array([0.0, np.nan, 1.0, 0.0]))
    with pytest.raises(ValueError, match="`ys` must have shape"):
        ms.run_arrays(learner, np.ones((4, 3)), np.ones(5))
    with pytest.raises(ValueError, match="features"):
        ms.run_arrays(learner, np.ones((4, 2)), np.ones(4))
    with pytest.raises(ValueError, match="`x` must have shape"):
        learner.step(learner.init(), jnp.ones(2), jnp.ones(()))
    with pytest.raises(ValueError, match="`y` must be a scalar reward"):
        learner.step(learner.init(), jnp.ones(3), jnp.ones(2))
    with pytest.raises(ValueError, match="`discount`"):
        ms.run(td.TDLearner(ms.sgd(0.1), 19, discount=0.9, trace_decay=0.5), PROBLEM,
               steps=10, record_every=10)
    with pytest.raises(ValueError, match="TD stream's targets need a metastep.td learner"):
        ms.run(ms.LinearLearner(ms.sgd(0.1), 19), PROBLEM, steps=10, record_every=10)
