"""The engine: run, run_arrays and sweep, on a small stream defined here."""

import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metastep as ms
from metastep._structure import recorded
from metastep.problems._base import Problem, Sample, step_keys


@recorded  # runs on equal problems share their compiled programs
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


@pytest.mark.slow  # CI time: block sizes and sweep chunks stay fast
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
    assert diverging.diverged_at == grid.diverged_at[1, 0]
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


@pytest.mark.slow  # CI time: the CLI's tests hear progress lines
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


# ---------------------------------------------------------------------------------------------
# Every grid configuration meets its constructors' checks (inside vmap they see tracers).

def linear(method, num_features=4):
    return ms.LinearLearner(method, num_features)


P = ms.problems
# (a learner or a problem from one keyword, a good value, a bad value); with a problem, the
# learner is plain SGD.
BAD_GRID_VALUES = [
    (lambda momentum_rate: linear(ms.adam(momentum_rate=momentum_rate)), 0.1, 2.0),
    (lambda normalizer_rate: linear(ms.adam(normalizer_rate=normalizer_rate)), 0.001, -0.5),
    (lambda learning_rate: linear(ms.adam(learning_rate=learning_rate)), 1e-3, -1e-3),
    (lambda normalizer_rate: linear(ms.rmsprop(normalizer_rate=normalizer_rate)), 0.01, 1.5),
    (lambda learning_rate: linear(ms.sgd(learning_rate)), 0.01, -0.01),
    (lambda meta_step_size: linear(ms.idbd(meta_step_size=meta_step_size)), 0.01, -0.01),
    (lambda initial_step_size: linear(ms.idbd(initial_step_size=initial_step_size)), 0.05, 0.0),
    (lambda tau: linear(ms.autostep(tau=tau)), 1e4, -1.0),
    (lambda meta_step_size: linear(ms.autostep(meta_step_size=meta_step_size)), 0.01, -1.0),
    (lambda initial_step_size: linear(ms.autostep(initial_step_size=initial_step_size)), 0.05,
     0.0),
    (lambda min_step_size: linear(ms.delta_delta(min_step_size=min_step_size)), 1e-6, 0.0),
    (lambda decay: linear(ms.smd(decay=decay)), 0.9, 1.5),
    (lambda initial_step_size: linear(ms.smd(initial_step_size=initial_step_size)), 0.05, -0.05),
    (lambda meta_step_size: linear(ms.hypergradient(meta_step_size=meta_step_size)), 1e-3,
     -1e-3),
    (lambda momentum_rate: linear(ms.adam_hypergradient(momentum_rate=momentum_rate)), 0.1, 1.1),
    (lambda discount: linear(ms.metaoptimize(discount=discount)), 1.0, 2.0),
    (lambda scale: P.weight_flipping(scale=scale), 1.0, 0.0),
    (lambda scale: P.weight_flipping(scale=scale), 1.0, -1.0),
    (lambda sigma_max: P.noisy_tracking(sigma_max=sigma_max), 3.0, -1.0),
    (lambda flip_probability: P.switching_2d(flip_probability=flip_probability), 0.5, 1.5),
    (lambda beta: P.slowly_changing_regression(beta=beta), 0.7, np.inf),
]


@pytest.mark.parametrize(
    "build, good, bad", BAD_GRID_VALUES,
    ids=[f"{next(iter(inspect.signature(b).parameters))}={v}" for b, _, v in BAD_GRID_VALUES],
)
def test_sweep_checks_every_configuration_before_running(build, good, bad):
    """The last configuration is bad: the sweep names it, as the constructor alone would."""
    (name,) = inspect.signature(build).parameters
    with pytest.raises(ValueError, match=f"`{name}`"):
        build(bad)
    built = build(good)
    if isinstance(built, ms.LinearLearner):
        make_learner, problem = build, drifting_problem()
    else:
        make_learner, problem = (lambda: linear(ms.sgd(0.01), built.num_features)), build
    message = rf"grid configuration 2 \{{'{name}': {re.escape(repr(bad))}\}}: `{name}`"
    with pytest.raises(ValueError, match=message):
        ms.sweep(make_learner, problem, grid={name: [good, good, bad]}, seeds=1, steps=10,
                 record_every=10)


# ---------------------------------------------------------------------------------------------
# Summaries that rank a diverged configuration last.


def hand_made_sweep():
    """Configuration 0 diverged on both seeds after a low first record, 1 is healthy, 2 lost a
    seed: pandas' mean skips the NaNs and ranks 0 best, then 2."""
    nan = np.nan
    squared_error = np.array([[[0.5, nan, nan], [0.6, nan, nan]],
                              [[3.0, 2.0, 1.0], [3.0, 2.0, 3.0]],
                              [[0.9, 0.8, 0.7], [0.9, nan, nan]]])
    diverged_at = np.array([[150, 120], [0, 0], [0, 180]])
    return ms.SweepResult(
        grid={"step_size": np.array([0.5, 0.01, 0.1])}, seeds=np.array([0, 1]),
        steps=np.array([100, 200, 300]), squared_error=squared_error, records={}, info={},
        diverged_at=diverged_at,
    )


def test_summarize_and_best_rank_diverged_configurations_last():
    result = hand_made_sweep()
    naive = result.to_pandas().groupby("step_size")["squared_error"].mean()
    assert naive.idxmin() == 0.5  # what the README's old idiom reported as best
    table = ms.summarize(result)
    assert table.index.tolist() == [1, 2, 0]
    assert table.step_size.tolist() == [0.01, 0.1, 0.5]
    assert table.diverged_seeds.tolist() == [0, 1, 2]
    assert table.seeds.tolist() == [2, 2, 2]
    np.testing.assert_allclose(table.final_error.tolist(), [14 / 6, np.inf, np.inf])
    np.testing.assert_allclose(table.standard_error.iloc[0], np.std([2.0, 8 / 3], ddof=1) / 2**0.5)
    assert np.isnan(table.standard_error.iloc[1:]).all()
    last = ms.summarize(result, last=1)
    np.testing.assert_allclose(last.final_error.iloc[0], 2.0)
    assert ms.best(result) == {"step_size": 0.01}
    with pytest.raises(ValueError, match="`last`"):
        ms.summarize(result, last=4)
    with pytest.raises(ValueError, match="`result`"):
        ms.summarize(result.to_pandas())
    all_diverged = hand_made_sweep()
    all_diverged.diverged_at[:] = 1
    with pytest.raises(ValueError, match="every configuration"):
        ms.best(all_diverged)


# ---------------------------------------------------------------------------------------------
# Seeds and step counters: 32-bit unsigned, never wrapped.


def test_seeds_are_unsigned_32_bit_and_never_wrap():
    problem = drifting_problem()
    seed = 2**31 + 5  # wrapped to a negative int32 in a sweep, OverflowError in run
    alone = ms.run(idbd_learner(), problem, steps=200, seed=seed, record_every=100)
    grid = ms.sweep(lambda meta_step_size: idbd_learner(meta_step_size), problem,
                    grid={"meta_step_size": [0.01]}, seeds=[seed, 5], steps=200,
                    record_every=100)
    np.testing.assert_allclose(grid.squared_error[0, 0], alone.squared_error, rtol=1e-5)
    assert not np.allclose(grid.squared_error[0, 0], grid.squared_error[0, 1])
    assert grid.seeds.tolist() == [seed, 5]
    for bad in (2**32, -1, 1.0, True):
        with pytest.raises(ValueError, match="`seed` must be an integer in \\[0, 2\\*\\*32\\)"):
            ms.run(idbd_learner(), problem, steps=100, seed=bad, record_every=100)
    with pytest.raises(ValueError, match="`seeds` must hold integers in \\[0, 2\\*\\*32\\)"):
        ms.sweep(lambda meta_step_size: idbd_learner(meta_step_size), problem,
                 grid={"meta_step_size": [0.01]}, seeds=[5, 2**32 + 5], steps=100,
                 record_every=100)


def test_step_counter_passes_2_31_without_wrapping():
    """A lane that diverges past step 2³¹ reports that step, not a negative one."""
    from metastep import _lanes

    learner = idbd_learner(100.0)  # diverges within a few hundred steps
    problem = drifting_problem(scale=3.0)
    spec = _lanes.LaneSpec(lambda _: learner, lambda _: problem, config_axis=None,
                           shared_stream=True)
    carry = _lanes.init_lanes(spec, (), np.zeros(1, np.uint32))
    start = 2**31 - 10
    carry = carry._replace(step=jnp.full_like(carry.step, start))
    carry, _ = _lanes.run_lane_bins(spec, 1_000, 1_000, ("squared_error",), (), carry, 1e20, 1)
    assert int(carry.step[0, 0]) == start + 1_000
    assert start < int(carry.diverged_at[0, 0]) <= start + 1_000
    with pytest.raises(ValueError, match="`steps` must be < 2\\*\\*32"):
        ms.run(learner, problem, steps=2**32, record_every=2**32)


# ---------------------------------------------------------------------------------------------
# Inputs that are not real numbers.


def test_inputs_must_be_real_numbers():
    learner = idbd_learner()
    xs, ys = np.ones((10, 4)), np.ones(10)
    with pytest.raises(ValueError, match="`xs` must hold real numbers"):
        ms.run_arrays(learner, xs * (1 + 1j), ys)
    with pytest.raises(ValueError, match="`ys` must hold real numbers"):
        ms.run_arrays(learner, xs, ys.astype(str))
    with pytest.raises(ValueError, match="`x` must hold real numbers"):
        learner.step(learner.init(), jnp.ones(4, jnp.complex64), jnp.array(1.0))
    with pytest.raises(ValueError, match="`dtype`"):
        learner.init(dtype=jnp.complex64)
    with pytest.raises(ValueError, match="`divergence_threshold`"):
        ms.run_arrays(learner, xs, ys, divergence_threshold="1e20")
    with pytest.raises(ValueError, match="`grid\\['meta_step_size'\\]` must hold real numbers"):
        ms.sweep(lambda meta_step_size: idbd_learner(meta_step_size), drifting_problem(),
                 grid={"meta_step_size": [0.01, 0.02 + 0.01j]}, seeds=1, steps=10,
                 record_every=10)
    # Numeric strings and complex numbers are not hyperparameters.
    for build in (lambda: ms.idbd("0.01"), lambda: ms.autostep(tau="100"),
                  lambda: P.weight_flipping(scale="2"), lambda: ms.smd(decay=np.complex128(0.5))):
        with pytest.raises(ValueError, match="must be a real number"):
            build()


# ---------------------------------------------------------------------------------------------
# Record bins are fed in blocks: memory does not grow with record_every.


def spied(problem, requested):
    """``problem``, noting the number of steps of every block it is asked to generate."""

    def generate(state, num_steps):
        requested.append(num_steps)
        return problem.generate(state, num_steps)

    return Problem(problem.name, problem.num_features, problem.params, problem.init, generate)


def test_a_long_bin_is_generated_in_blocks():
    from metastep import engine

    requested = []
    record_every = 200_000
    ms.run(ms.LinearLearner(ms.sgd(0.01), 4), spied(drifting_problem(), requested),
           steps=record_every, record_every=record_every)
    assert 0 < max(requested) < record_every
    assert max(requested) <= engine.BLOCK_STEPS


def test_block_size_does_not_change_a_run(x64):
    """In float64: XLA may round this test stream's float32 sums differently per block length
    (the library's problems are exact in both; tests/problems)."""
    kwargs = dict(steps=3_000, record_every=1_500, seed=2)
    whole = ms.run(idbd_learner(), drifting_problem(), **kwargs)
    requested = []
    blocks = ms.run(idbd_learner(), spied(drifting_problem(), requested), block_steps=700,
                    **kwargs)
    assert set(requested) <= {1, 700, 100}  # 1: the engine's look at one step's shapes
    for name in ("squared_error", "step_sizes"):
        np.testing.assert_array_equal(getattr(blocks, name), getattr(whole, name))
    np.testing.assert_array_equal(blocks.info["true_weights"], whole.info["true_weights"])


def test_blocks_are_whole_iterations_of_the_unrolled_scan():
    """A run's cheap learner scan takes up to 4 steps per loop iteration, which may round each
    step differently: every block is a multiple of them, so blocks do not change the rounding."""
    from metastep import _lanes, engine

    assert [_lanes.unroll_for(r) for r in (1_000, 1_500, 6, 999)] == [4, 4, 2, 1]
    assert engine._block_plan(1_500, 750) == 748
    assert engine._block_plan(1_500, 3) == 4
    assert engine._block_plan(1_000, None) == 1_000
    learner = idbd_learner()
    state, x = learner.init(), jnp.ones(4)
    lane = _lanes.LaneSpec(None, None, config_axis=None, shared_stream=True)
    assert _lanes.scan_unroll(lane, learner, state, x, x[0], 1_000) == 4
    sweep = lane._replace(config_axis=0)
    assert _lanes.scan_unroll(sweep, learner, state, x, x[0], 1_000) == 1


def test_a_cheap_lane_scans_in_small_slices_with_the_plain_scans_results():
    """A single lane's unrolled scan runs in slices of its unrolled steps when they and the
    learner's state are small (so that XLA's CPU runtime runs the loop's kernels in order): the
    lane ends as the plain unrolled scan leaves it, divergence step included."""
    from metastep import _lanes

    learner = idbd_learner(initial_step_size=0.8)  # its error blows up
    xs = np.random.default_rng(0).normal(size=(24, 4)).astype(np.float32)
    ys = xs.sum(axis=1)
    state = jax.eval_shape(learner.init)
    assert _lanes.sliced_scan(state, xs[0], ys[0], 4)
    assert not _lanes.sliced_scan(state, xs[0], ys[0], 1)  # not unrolled
    assert not _lanes.sliced_scan(state, xs[0], ys[0], 64)  # 64 steps of 4 floats: 1 KiB
    wide = jax.eval_shape(idbd_learner(num_features=200).init)  # its weights: 800 bytes
    assert not _lanes.sliced_scan(wide, np.zeros(200, np.float32), ys[0], 4)
    zero = jnp.zeros((), jnp.uint32)

    def both_ends(learner, threshold):
        lane = _lanes.Lane(learner.init(), zero, zero, _lanes.zero_sums(("squared_error",)))
        return [jax.jit(lambda lane, sliced=sliced: _lanes.learner_loop(
            learner, lane, xs, ys, threshold, 2, sliced))(lane) for sliced in (True, False)]

    ours, theirs = both_ends(idbd_learner(), 1e30)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert int(ours.step) == int(theirs.step) == 24 and int(ours.diverged_at) == 0
    for threshold, diverged_at in ((10.0, 11), (1e2, 17)):  # in slices 6 and 9 of 12
        ours, theirs = both_ends(learner, threshold)
        assert int(ours.diverged_at) == int(theirs.diverged_at) == diverged_at
        np.testing.assert_allclose(ours.sums["squared_error"], theirs.sums["squared_error"],
                                   rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("sweeps", ["learner", "problem"])
def test_block_size_does_not_change_a_sweep(x64, sweeps):
    if sweeps == "learner":
        make_learner, problem = (lambda meta_step_size: idbd_learner(meta_step_size),
                                 drifting_problem())
        grid = {"meta_step_size": [0.01, 0.02]}
    else:
        make_learner, problem = (lambda: idbd_learner(),
                                 lambda scale: drifting_problem(scale=scale))
        grid = {"scale": [0.5, 1.0]}
    whole, blocks = [ms.sweep(make_learner, problem, grid, seeds=2, steps=3_000,
                              record_every=1_500, block_steps=block) for block in (None, 700)]
    for name in ("squared_error", "step_sizes"):
        np.testing.assert_array_equal(getattr(blocks, name), getattr(whole, name))
    np.testing.assert_array_equal(blocks.info["true_weights"], whole.info["true_weights"])


def test_compiled_memory_does_not_grow_with_record_every():
    from metastep import _lanes, engine

    learner, problem = idbd_learner(), drifting_problem()
    spec = _lanes.LaneSpec(lambda _: learner, lambda _: problem, config_axis=None,
                           shared_stream=True)
    carry = _lanes.init_lanes(spec, (), np.zeros(1, np.uint32))

    def temporary_bytes(record_every):
        block_steps = engine._block_plan(record_every, 2_000)
        chunk = jax.jit(lambda carry: _lanes.run_lane_bins(
            spec, record_every, block_steps, ("squared_error",), (), carry, 1e20, 1))
        return chunk.lower(carry).compile().memory_analysis().temp_size_in_bytes

    short, long = temporary_bytes(2_000), temporary_bytes(64_000)
    assert long < 1.5 * short  # a whole bin in memory would be 32 times as large


# ---------------------------------------------------------------------------------------------
# A lane and the run alone: the same operations, compiled in a batched program.


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sweep_lanes_match_runs_alone_up_to_rounding(dtype):
    """Over a problem parameter (test_sweep_lane_equals_the_configuration_run_alone covers the
    learner's); the tolerance is the one the engine documents."""
    with jax.enable_x64(dtype == "float64"):
        kwargs = dict(steps=2_000, seed=3, record_every=500)
        grid = ms.sweep(lambda: idbd_learner(), lambda scale: drifting_problem(scale=scale),
                        {"scale": [0.3, 2.0]}, seeds=[kwargs.pop("seed")], **kwargs)
        alone = ms.run(idbd_learner(), drifting_problem(scale=2.0), seed=3, **kwargs)
        assert grid.squared_error.dtype == dtype
        rtol = 100 * np.finfo(dtype).eps
        np.testing.assert_allclose(grid.squared_error[1, 0], alone.squared_error, rtol=rtol)
        np.testing.assert_allclose(grid.step_sizes[1, 0], alone.step_sizes, rtol=rtol)


class FakeAccelerator:
    """A device that reports its memory, as a GPU does (a CPU reports none)."""

    def __init__(self, bytes_limit):
        self.bytes_limit = bytes_limit

    def memory_stats(self):
        return {"bytes_limit": self.bytes_limit}


def test_chunks_of_lanes_are_sized_to_the_device_memory():
    from metastep import engine

    assert engine.chunk_memory_bytes(jax.devices("cpu")[0]) == engine.CHUNK_MEMORY_BYTES
    assert engine.chunk_memory_bytes(FakeAccelerator(80 * 2**30)) == 20 * 2**30
    # A small device never gets less than the CPU's budget.
    assert engine.chunk_memory_bytes(FakeAccelerator(2**20)) == engine.CHUNK_MEMORY_BYTES
