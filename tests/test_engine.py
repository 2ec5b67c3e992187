"""The engine: run, run_arrays and sweep, on a small stream defined here."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metastep as ms
from metastep.problems._base import Problem, Sample, step_keys


def drifting_problem(num_features: int = 4, scale=1.0, drift: float = 0.05) -> Problem:
    """Gaussian inputs; the target weights (all ``scale`` at first) take a random walk."""

    def init(key):
        return key, jnp.zeros((), jnp.uint32), scale * jnp.ones(num_features)

    def generate(state, num_steps):
        key, first_step, weights = state
        keys = step_keys(key, first_step, num_steps)
        draws = jax.vmap(lambda k: jax.random.normal(k, (2, num_features)))(keys)
        xs, increments = draws[:, 0], scale * drift * draws[:, 1]

        def advance(weights, increment):
            weights = weights + increment
            return weights, weights

        weights, true_weights = jax.lax.scan(advance, weights, increments)
        ys = jnp.sum(xs * true_weights, axis=1)
        sample = Sample(xs, ys, {"true_weights": true_weights})
        return (key, first_step + num_steps, weights), sample

    return Problem("drifting", num_features, {"scale": scale}, init, generate)


def idbd_learner(meta_step_size=0.01, initial_step_size=0.05, num_features=4):
    return ms.LinearLearner(ms.idbd(meta_step_size, initial_step_size), num_features)


def test_run_shapes_and_records():
    result = ms.run(idbd_learner(), drifting_problem(), steps=6_000, seed=0, record_every=1_000)
    assert result.steps.tolist() == [1000, 2000, 3000, 4000, 5000, 6000]
    assert result.squared_error.shape == (6,)
    assert result.step_sizes.shape == (6, 4)
    assert result.records["weights"].shape == (6, 4)
    assert result.info["true_weights"].shape == (6, 4)
    assert result.diverged is False
    assert np.all(np.isfinite(result.squared_error))
    # The learner tracks the drifting target: its error is far below the target's variance |w|².
    assert result.squared_error[-1] < 0.1 * np.sum(result.info["true_weights"][-1] ** 2)


def test_same_seed_same_numbers_other_seed_other_numbers():
    problem = drifting_problem()
    a = ms.run(idbd_learner(), problem, steps=3_000, seed=7, record_every=500)
    b = ms.run(idbd_learner(), problem, steps=3_000, seed=7, record_every=500)
    c = ms.run(idbd_learner(), problem, steps=3_000, seed=8, record_every=500)
    np.testing.assert_array_equal(a.squared_error, b.squared_error)
    np.testing.assert_array_equal(a.step_sizes, b.step_sizes)
    assert not np.allclose(a.squared_error, c.squared_error)


def test_chunking_and_bin_size_do_not_change_the_run(x64):
    problem = drifting_problem()
    whole = ms.run(idbd_learner(), problem, steps=4_000, seed=1, record_every=1_000)
    chunked = ms.run(idbd_learner(), problem, steps=4_000, seed=1, record_every=1_000,
                     chunk_steps=1_000)
    np.testing.assert_array_equal(whole.squared_error, chunked.squared_error)
    fine = ms.run(idbd_learner(), problem, steps=4_000, seed=1, record_every=500)
    np.testing.assert_allclose(fine.squared_error.reshape(4, 2).mean(1), whole.squared_error,
                               rtol=1e-12)
    np.testing.assert_allclose(fine.step_sizes[1::2], whole.step_sizes, rtol=1e-12)


def test_run_matches_run_arrays_on_the_same_stream(x64):
    problem = drifting_problem()
    result = ms.run(idbd_learner(), problem, steps=2_000, seed=3, record_every=500)
    problem_key, _ = jax.random.split(jax.random.PRNGKey(3))
    samples = problem.sample(problem_key, 2_000)
    trace = ms.run_arrays(idbd_learner(), samples.x, samples.y)
    assert trace.predictions.shape == (2_000,)
    assert trace.step_sizes.shape == (2_000, 4)
    np.testing.assert_allclose((trace.errors**2).reshape(4, 500).mean(1), result.squared_error,
                               rtol=1e-12)
    np.testing.assert_allclose(trace.step_sizes[499::500], result.step_sizes, rtol=1e-12)
    np.testing.assert_allclose(trace.errors, samples.y - trace.predictions, rtol=1e-12)


def test_sweep_lane_equals_the_configuration_run_alone(x64):
    problem = drifting_problem()
    grid = ms.sweep(
        lambda meta_step_size, initial_step_size: idbd_learner(meta_step_size, initial_step_size),
        problem, grid={"meta_step_size": [0.0, 0.003, 0.03], "initial_step_size": [0.01, 0.05]},
        seeds=[4, 9], steps=2_000, record_every=500,
    )
    assert grid.squared_error.shape == (6, 2, 4)
    assert grid.step_sizes.shape == (6, 2, 4, 4)
    for config in (0, 3, 5):
        values = grid.config(config)
        for seed_index, seed in enumerate((4, 9)):
            alone = ms.run(idbd_learner(**values), problem, steps=2_000, seed=seed,
                           record_every=500)
            np.testing.assert_allclose(grid.squared_error[config, seed_index],
                                       alone.squared_error, rtol=1e-10)
            np.testing.assert_allclose(grid.step_sizes[config, seed_index], alone.step_sizes,
                                       rtol=1e-10)


def test_sweep_lane_chunks_and_time_chunks_do_not_change_results():
    def make(meta_step_size):
        return idbd_learner(meta_step_size)

    kwargs = dict(grid={"meta_step_size": [0.001, 0.01, 0.02]}, seeds=4, steps=2_000,
                  record_every=500)
    reference = ms.sweep(make, drifting_problem(), **kwargs)
    chunked = ms.sweep(make, drifting_problem(), lanes_per_chunk=5, chunk_steps=1_000, **kwargs)
    np.testing.assert_array_equal(reference.squared_error, chunked.squared_error)
    np.testing.assert_array_equal(reference.step_sizes, chunked.step_sizes)


def test_divergence_is_flagged_per_lane_and_leaves_other_lanes_alone(x64):
    problem = drifting_problem(scale=3.0)
    grid = ms.sweep(lambda meta_step_size: idbd_learner(meta_step_size), problem,
                    grid={"meta_step_size": [0.001, 100.0]}, seeds=2, steps=3_000,
                    record_every=500)
    assert not grid.diverged[0].any()
    assert grid.diverged[1].all()
    first_bad_bin = (grid.diverged_at[1, 0] - 1) // 500
    assert np.all(np.isnan(grid.squared_error[1, 0, first_bad_bin:]))
    assert np.all(np.isfinite(grid.squared_error[1, 0, :first_bad_bin]))
    alone = ms.run(idbd_learner(0.001), problem, steps=3_000, seed=1, record_every=500)
    np.testing.assert_allclose(grid.squared_error[0, 1], alone.squared_error, rtol=1e-10)
    diverging = ms.run(idbd_learner(100.0), problem, steps=3_000, seed=0, record_every=500)
    assert diverging.diverged == grid.diverged_at[1, 0]
    table = grid.to_pandas()
    rows = table[(table.meta_step_size == 100.0) & (table.seed == 0)]
    assert rows.diverged.tolist() == (rows.step >= grid.diverged_at[1, 0]).tolist()


def test_sweep_over_a_problem_parameter():
    grid = ms.sweep(lambda: idbd_learner(0.0), lambda scale: drifting_problem(scale=scale),
                    grid={"scale": [0.1, 10.0]}, seeds=1, steps=1_000, record_every=500)
    # LMS is linear in the data: scaling the target by 100 scales the squared error by 10⁴.
    np.testing.assert_allclose(grid.squared_error[1, 0], 1e4 * grid.squared_error[0, 0], rtol=1e-3)


def test_to_pandas_is_tidy():
    grid = ms.sweep(lambda meta_step_size: idbd_learner(meta_step_size), drifting_problem(),
                    grid={"meta_step_size": [0.001, 0.01]}, seeds=3, steps=1_000,
                    record_every=250)
    table = grid.to_pandas()
    assert list(table.columns) == ["meta_step_size", "seed", "step", "squared_error", "diverged",
                                   "mean_step_size"]
    assert len(table) == 2 * 3 * 4
    row = table[(table.meta_step_size == 0.01) & (table.seed == 2) & (table.step == 750)]
    assert row.squared_error.item() == pytest.approx(float(grid.squared_error[1, 2, 2]))
    assert row.mean_step_size.item() == pytest.approx(float(grid.step_sizes[1, 2, 2].mean()))


def test_run_arrays_rejects_bad_data():
    learner = idbd_learner()
    xs = np.ones((10, 4))
    ys = np.ones(10)
    with pytest.raises(ValueError, match="`xs`"):
        ms.run_arrays(learner, np.ones(10), ys)
    with pytest.raises(ValueError, match="`ys`"):
        ms.run_arrays(learner, xs, np.ones(9))
    with pytest.raises(ValueError, match="`xs`.*features"):
        ms.run_arrays(learner, np.ones((10, 3)), ys)
    bad = xs.copy()
    bad[6, 2] = np.nan
    with pytest.raises(ValueError, match="`xs`.*row 6"):
        ms.run_arrays(learner, bad, ys)
    bad_ys = ys.copy()
    bad_ys[2] = np.inf
    with pytest.raises(ValueError, match="`ys`"):
        ms.run_arrays(learner, xs, bad_ys)


def test_run_and_sweep_reject_bad_arguments():
    problem = drifting_problem()
    with pytest.raises(ValueError, match="`steps`"):
        ms.run(idbd_learner(), problem, steps=1_500, record_every=1_000)
    with pytest.raises(ValueError, match="`record_every`"):
        ms.run(idbd_learner(), problem, steps=1_000, record_every=0)
    with pytest.raises(ValueError, match="`problem`"):
        ms.run(idbd_learner(), "weight_flipping", steps=1_000)
    with pytest.raises(ValueError, match="features"):
        ms.run(idbd_learner(num_features=5), problem, steps=1_000)
    with pytest.raises(ValueError, match="neither"):
        ms.sweep(lambda meta_step_size: idbd_learner(meta_step_size), problem,
                 grid={"theta": [0.1]}, seeds=1, steps=1_000)
    with pytest.raises(ValueError, match="grid"):
        ms.sweep(lambda method: idbd_learner(), problem, grid={"method": ["idbd", "sgd"]},
                 seeds=1, steps=1_000)
    with pytest.raises(ValueError, match="`seeds`"):
        ms.sweep(lambda meta_step_size: idbd_learner(meta_step_size), problem,
                 grid={"meta_step_size": [0.1]}, seeds=0, steps=1_000)


class AbsoluteErrorLearner(ms.LinearLearner):
    """Reports a per-step metric, which the engine averages per bin."""

    def step(self, state, x, y):
        state, output = super().step(state, x, y)
        return state, output._replace(metrics={"absolute_error": jnp.abs(output.error)})


def test_step_metrics_are_averaged_per_bin(x64):
    problem = drifting_problem()
    learner = AbsoluteErrorLearner(ms.idbd(0.01, 0.05), 4)
    result = ms.run(learner, problem, steps=2_000, seed=2, record_every=500)
    problem_key, _ = jax.random.split(jax.random.PRNGKey(2))
    samples = problem.sample(problem_key, 2_000)
    trace = ms.run_arrays(learner, samples.x, samples.y)
    np.testing.assert_allclose(result.records["absolute_error"],
                               np.abs(trace.errors).reshape(4, 500).mean(1), rtol=1e-12)


def test_progress_listeners_hear_every_compiled_chunk():
    from metastep.engine import progress_listener

    heard = []
    learner = ms.LinearLearner(ms.sgd(0.01), 20)
    problem = ms.problems.weight_flipping()
    with progress_listener(heard.append):
        ms.run(learner, problem, steps=4_000, record_every=1_000, chunk_steps=2_000)
        ms.sweep(lambda step_size: ms.LinearLearner(ms.sgd(step_size), 20), problem,
                 grid={"step_size": [0.01, 0.02]}, seeds=3, steps=2_000, record_every=1_000,
                 chunk_steps=1_000)
    ms.run(learner, problem, steps=1_000, record_every=1_000)  # outside the block: not heard
    assert heard == [2_000, 2_000, 6_000, 6_000]
