"""The engine: compiled streaming runs (``lax.scan`` over time) and vectorized sweeps (``vmap``).

A run reads the problem's stream in blocks of at most ``block_steps`` steps (by default up to
:data:`BLOCK_STEPS`) and scans the learner over each; the steps of a record bin (``record_every``)
are summed block by block, and a compiled chunk holds many bins, so memory grows with the number of
records, neither with the number of steps nor with ``record_every``. Each step is *predict, then
update*: the recorded squared error is the one made before that step's update. Seeds are integers
in [0, 2³²) and the step counters are uint32: a run has fewer than 2³² steps.

A sweep runs configurations × seeds as lanes of one ``vmap``ped computation, in chunks of lanes to
bound memory. Lane ``(configuration, seed)`` draws its data from ``PRNGKey(seed)`` exactly as
:func:`run` does and computes the same operations, but within a batched program that XLA compiles
on its own terms: it may round differently (it may, say, fuse a multiply and an add into one
rounding in one program and not in the other). A lane therefore matches the configuration run
alone up to rounding, amplified by the run's dynamics, not to the bit, whether the grid sweeps
learner or problem parameters: relative differences of the records up to about 100 ε of the
float type (ε = 1.2e-7 in float32, 2.2e-16 in float64), and typically a few ε (4e-7 in float32,
0 to 4e-16 in float64, over 2,000 steps of the test streams). Each configuration is built once
with Python numbers before anything runs, so that the constructors' checks see every value.

Divergence: a step whose squared error is not finite or exceeds ``divergence_threshold`` stops
the lane. The run is flagged with the (1-based) count of steps done when it was detected; every
record (error, step sizes, ...) from the bin where it happened onwards holds NaN, so that no
average can silently mix diverged and healthy lanes; and its learner state stays at the end of the
last healthy bin.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from metastep._engine_arguments import (
    check_configurations,
    check_count,
    check_grid,
    check_learner,
    check_problem,
    check_schedule,
    check_seed,
    check_seeds,
    check_threshold,
    keyword_names,
    real_array,
    select,
)
from metastep.problems._base import Problem
from metastep.results import RunResult, SweepResult, RunArraysResult

DEFAULT_DIVERGENCE_THRESHOLD = 1e20
# Work (lane-steps) above which a progress bar is shown when ``progress=None``.
PROGRESS_MIN_WORK = 20_000_000
# Bytes of one compiled chunk's stream blocks and records that a sweep aims to stay under.
CHUNK_MEMORY_BYTES = 256 * 2**20
# Steps of a problem's stream that a lane holds at a time: a record bin longer than this is
# generated and scanned in blocks, so memory does not grow with ``record_every``.
BLOCK_STEPS = 100_000


# Callbacks told of the work (lane-steps) each compiled chunk has done, e.g. by a run directory's
# progress bar that outlives the engine calls of a shard.
_PROGRESS_LISTENERS: contextvars.ContextVar[tuple[Callable[[int], None], ...]] = (
    contextvars.ContextVar("metastep_progress_listeners", default=())
)


@contextlib.contextmanager
def progress_listener(callback: Callable[[int], None]) -> Iterator[None]:
    """Within the block, call ``callback(lane_steps)`` after every compiled chunk that
    :func:`run` or :func:`sweep` finishes, with the lane-steps (steps × real lanes) it did."""
    token = _PROGRESS_LISTENERS.set((*_PROGRESS_LISTENERS.get(), callback))
    try:
        yield
    finally:
        _PROGRESS_LISTENERS.reset(token)


def _report_progress(bar, lane_steps: int) -> None:
    bar.update(lane_steps)
    for callback in _PROGRESS_LISTENERS.get():
        callback(lane_steps)


# ---------------------------------------------------------------------------------------------
# The compiled core: one lane, one chunk of bins.


class _Carry(NamedTuple):
    problem_state: Any
    learner_state: Any
    diverged_at: jax.Array  # uint32, 0 while healthy
    step: jax.Array  # uint32 steps done


def _check_divergence(squared_error, threshold):
    return jnp.logical_not(jnp.isfinite(squared_error)) | (squared_error > threshold)


class _Lane(NamedTuple):
    """What one lane carries through a record bin, block after block."""

    learner_state: Any
    diverged_at: jax.Array
    step: jax.Array
    sums: dict[str, jax.Array]  # over the bin's healthy steps: squared error, step metrics


def _metric_names(learner, learner_state, x, y) -> tuple[str, ...]:
    """The per-step values the engine sums per bin: the squared error and the step metrics."""
    output = jax.eval_shape(learner.step, learner_state, x, y)[1]
    return ("squared_error", *getattr(output, "metrics", {}))


def _first_sample(problem, problem_state) -> tuple[jax.ShapeDtypeStruct, jax.ShapeDtypeStruct]:
    """The shapes of one step's ``x`` and ``y``."""
    samples = jax.eval_shape(lambda state: problem.generate(state, 1)[1], problem_state)
    return tuple(jax.ShapeDtypeStruct(a.shape[1:], a.dtype) for a in (samples.x, samples.y))


def _zero_sums(names, shape=()) -> dict[str, jax.Array]:
    return {name: jnp.zeros(shape, jnp.result_type(float)) for name in names}


def _learner_scan(learner, lane: _Lane, xs, ys, threshold):
    """Scan ``learner.step`` over a block; notes the step at which the error first diverges.

    Adds to ``lane.sums`` the healthy steps' squared errors and the entries of the step output's
    optional ``metrics`` dict (e.g. a classifier's accuracy). A diverged lane's state is not
    frozen here (its NaNs stay in its own lane); :func:`_end_bin` restores the last healthy
    bin-end state, which costs one select per bin, not per step.
    """

    def body(lane: _Lane, xy):
        x, y = xy
        state, output = learner.step(lane.learner_state, x, y)
        values = {"squared_error": jnp.square(output.error), **getattr(output, "metrics", {})}
        diverged_at = jnp.where(
            (lane.diverged_at == 0) & _check_divergence(values["squared_error"], threshold),
            lane.step + 1, lane.diverged_at,
        )
        sums = {name: total + jnp.where(diverged_at == 0, values[name], 0.0)
                for name, total in lane.sums.items()}
        return _Lane(state, diverged_at, lane.step + 1, sums), output

    return jax.lax.scan(body, lane, (xs, ys))


def _split_seed(seed):
    """The keys of a run: the problem's stream and the learner's initialization.

    ``seed`` is a uint32 (see :func:`check_seed`): ``PRNGKey`` of a seed below 2³¹ is the same
    whether the seed is given as int32, int64 or uint32.
    """
    return jax.random.split(jax.random.PRNGKey(seed))


def _init_carry(learner, problem, seed) -> _Carry:
    problem_key, learner_key = _split_seed(seed)
    return _Carry(
        problem.init(problem_key),
        learner.init(learner_key),
        jnp.zeros((), jnp.uint32),
        jnp.zeros((), jnp.uint32),
    )


def _feed_bin(generate, learn, problem_state, lane, record_every: int, block_steps: int,
              last_step_info):
    """Feed one record bin to the learner in blocks of at most ``block_steps`` steps.

    Only one block of samples exists at a time, so memory does not grow with ``record_every``;
    a problem's stream does not depend on how it is cut into blocks (step ``t`` draws from
    ``fold_in(key, t)``), nor does the sequential scan of the learner. ``generate(problem_state,
    num_steps)`` and ``learn(lane, samples)`` may be vmapped over lanes; ``last_step_info``
    picks the info of a block's last step. Returns the problem state, the lane and the info of
    the bin's last step.
    """

    def feed(problem_state, lane, num_steps):
        problem_state, samples = generate(problem_state, num_steps)
        return problem_state, learn(lane, samples), last_step_info(samples.info)

    num_blocks, remainder = divmod(record_every, block_steps)
    if num_blocks == 1 and not remainder:
        return feed(problem_state, lane, block_steps)

    def block_body(carry, _):
        problem_state, lane, info = feed(*carry, block_steps)
        return (problem_state, lane), info

    (problem_state, lane), infos = jax.lax.scan(
        block_body, (problem_state, lane), None, length=num_blocks
    )
    info = jax.tree.map(lambda a: a[-1], infos)
    if remainder:
        problem_state, lane, info = feed(problem_state, lane, remainder)
    return problem_state, lane, info


def _end_bin(learner, start_state, lane: _Lane, record_every):
    """The end of one lane's bin: the last healthy state, and the bin's record (NaN once
    diverged)."""
    healthy = lane.diverged_at == 0
    learner_state = jax.tree.map(lambda new, old: jnp.where(healthy, new, old),
                                 lane.learner_state, start_state)
    means = {name: total / record_every for name, total in lane.sums.items()}
    record = {**learner.record(learner_state), **means}
    record = jax.tree.map(
        lambda a: jnp.where(healthy, a, jnp.nan) if jnp.issubdtype(a.dtype, jnp.floating) else a,
        record,
    )
    return learner_state, (record.pop("squared_error"), record)


def _run_bins(learner, problem, carry: _Carry, num_bins: int, record_every: int, threshold,
              block_steps: int, metric_names):
    """``num_bins`` record bins of one lane: returns the carry and the stacked records."""

    def learn(lane, samples):
        return _learner_scan(learner, lane, samples.x, samples.y, threshold)[0]

    def bin_body(carry: _Carry, _):
        lane = _Lane(carry.learner_state, carry.diverged_at, carry.step,
                     _zero_sums(metric_names))
        problem_state, lane, info = _feed_bin(
            problem.generate, learn, carry.problem_state, lane, record_every, block_steps,
            lambda info: jax.tree.map(lambda a: a[-1], info),
        )
        learner_state, (mean_squared_error, record) = _end_bin(
            learner, carry.learner_state, lane, record_every
        )
        return _Carry(problem_state, learner_state, lane.diverged_at, lane.step), (
            mean_squared_error, record, info
        )

    return jax.lax.scan(bin_body, carry, None, length=num_bins)


# ---------------------------------------------------------------------------------------------
# Planning (block and chunk sizes) and host-side helpers


def _block_plan(record_every: int, block_steps: int | None) -> int:
    """The steps generated and scanned at a time inside a record bin.

    By default ``record_every`` up to :data:`BLOCK_STEPS`; above, the largest divisor of
    ``record_every`` between a quarter of :data:`BLOCK_STEPS` and :data:`BLOCK_STEPS` (a bin is
    then one compiled block repeated), else :data:`BLOCK_STEPS` and a shorter last block.
    """
    if block_steps is not None:
        return min(check_count("block_steps", block_steps), record_every)
    if record_every <= BLOCK_STEPS:
        return record_every
    divisors = (d for d in range(BLOCK_STEPS, BLOCK_STEPS // 4 - 1, -1) if record_every % d == 0)
    return next(divisors, BLOCK_STEPS)


def _bins_per_chunk(num_bins: int, record_every: int, chunk_steps: int | None) -> int:
    # Without a request, a chunk covers about 1/20 of the run (so a progress bar moves), at
    # least 100,000 steps (so the per-call overhead is negligible).
    if chunk_steps is None:
        chunk_steps = max(100_000, math.ceil(num_bins * record_every / 20))
    chunk_steps = check_count("chunk_steps", chunk_steps)
    return max(1, min(num_bins, chunk_steps // record_every))


def _show_progress(progress, work):
    # A listener (e.g. a run directory's bar) shows the progress already: no second bar.
    if progress is None and _PROGRESS_LISTENERS.get():
        return False
    return work >= PROGRESS_MIN_WORK if progress is None else bool(progress)


def _to_numpy(tree):
    return jax.tree.map(np.asarray, tree)


def _concatenate(parts, axis):
    return jax.tree.map(lambda *leaves: np.concatenate(leaves, axis=axis), *parts)


# ---------------------------------------------------------------------------------------------
# run


def run(
    learner,
    problem: Problem,
    steps: int,
    seed: int = 0,
    record_every: int = 1_000,
    *,
    divergence_threshold: float = DEFAULT_DIVERGENCE_THRESHOLD,
    chunk_steps: int | None = None,
    block_steps: int | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Run ``learner`` online on ``problem`` for ``steps`` steps from ``PRNGKey(seed)``.

    Args:
      learner: e.g. ``ms.LinearLearner(ms.idbd(), 20)``; any object with ``init(key)``,
        ``step(state, x, y) -> (state, output with .error)`` and ``record(state) -> dict``.
      problem: a :class:`metastep.problems.Problem` stream.
      steps: number of examples; a multiple of ``record_every``.
      seed: the run's seed in [0, 2³²); the problem and the learner draw from
        ``PRNGKey(seed)``.
      record_every: steps per record bin.
      divergence_threshold: squared error above which the run counts as diverged.
      chunk_steps: steps per compiled chunk (default: about 1/20 of the run, at least 100,000).
      block_steps: steps of the stream generated and scanned at a time inside a record bin,
        which bounds memory whatever ``record_every`` (default: up to :data:`BLOCK_STEPS`); the
        results do not depend on it.
      progress: show a progress bar (default: only for long runs, and not while a
        :func:`progress_listener` is active).
    """
    check_problem(problem)
    check_learner(learner, problem)
    steps, record_every, num_bins = check_schedule(steps, record_every)
    seed = check_seed(seed)
    threshold = check_threshold(divergence_threshold)
    bins_per_chunk = _bins_per_chunk(num_bins, record_every, chunk_steps)
    block_steps = _block_plan(record_every, block_steps)

    carry = jax.jit(lambda s: _init_carry(learner, problem, s))(seed)
    metric_names = _metric_names(learner, carry.learner_state,
                                 *_first_sample(problem, carry.problem_state))
    run_chunk = jax.jit(
        lambda carry, n: _run_bins(learner, problem, carry, n, record_every, threshold,
                                   block_steps, metric_names),
        static_argnums=1,
    )
    parts = []
    with tqdm(
        total=steps, unit="step", unit_scale=True, desc=problem.name,
        disable=not _show_progress(progress, steps), leave=False,
    ) as bar:
        for first_bin in range(0, num_bins, bins_per_chunk):
            bins = min(bins_per_chunk, num_bins - first_bin)
            carry, records = run_chunk(carry, bins)
            parts.append(_to_numpy(records))
            _report_progress(bar, bins * record_every)
    squared_error, learner_records, info = _concatenate(parts, axis=0)
    diverged_at = int(carry.diverged_at)
    return RunResult(
        steps=record_every * np.arange(1, num_bins + 1),
        squared_error=squared_error,
        records=learner_records,
        info=info,
        diverged=diverged_at if diverged_at else False,
        final_state=carry.learner_state,
    )


# ---------------------------------------------------------------------------------------------
# run_arrays


def run_arrays(
    learner, xs, ys, *, key: jax.Array | None = None,
    divergence_threshold: float = DEFAULT_DIVERGENCE_THRESHOLD,
) -> RunArraysResult:
    """Run ``learner`` over explicit data, recording every step.

    Args:
      learner: as for :func:`run`.
      xs: inputs, [T, n] with n the learner's ``num_features``.
      ys: targets, [T].
      key: passed to ``learner.init`` (default ``PRNGKey(0)``).

    Raises:
      ValueError: on shape mismatches, data that are not finite real numbers, or targets the
        learner cannot take (e.g. labels out of a classifier's range), naming the argument.
    """
    check_learner(learner)
    threshold = check_threshold(divergence_threshold)
    xs = real_array("xs", xs)
    ys = real_array("ys", ys)
    if xs.ndim != 2:
        raise ValueError(f"`xs` must have shape [T, num_features], got shape {xs.shape}")
    if ys.shape != (xs.shape[0],):
        raise ValueError(f"`ys` must have shape [T] = [{xs.shape[0]}], got shape {ys.shape}")
    num_features = getattr(learner, "num_features", None)
    if num_features is not None and xs.shape[1] != num_features:
        raise ValueError(
            f"`xs` has {xs.shape[1]} features per row but the learner expects {num_features}"
        )
    for name, array in (("xs", xs), ("ys", ys)):
        if not bool(jnp.all(jnp.isfinite(array))):
            finite_rows = np.isfinite(np.asarray(array)).reshape(len(array), -1).all(axis=1)
            bad = int(np.argmin(finite_rows))
            raise ValueError(f"`{name}` holds non-finite values (first at row {bad})")
    # An optional hook: e.g. a classifier checks that the labels fit its outputs.
    check_targets = getattr(learner, "check_targets", None)
    if callable(check_targets):
        check_targets(ys, "ys")
    key = jax.random.PRNGKey(0) if key is None else key

    @jax.jit
    def scan(xs, ys):
        state = learner.init(key)
        zero = jnp.zeros((), jnp.uint32)
        sums = _zero_sums(_metric_names(learner, state, xs[0], ys[0]))
        lane, outputs = _learner_scan(learner, _Lane(state, zero, zero, sums), xs, ys, threshold)
        return lane.learner_state, lane.diverged_at, outputs

    state, diverged_at, outputs = scan(xs, ys)
    diverged_at = int(diverged_at)
    return RunArraysResult(
        predictions=np.asarray(outputs.prediction),
        errors=np.asarray(outputs.error),
        step_sizes=_to_numpy(outputs.step_sizes),
        diverged=diverged_at if diverged_at else False,
        final_state=state,
    )


# ---------------------------------------------------------------------------------------------
# sweep


def sweep(
    make_learner: Callable[..., Any],
    problem: Problem | Callable[..., Problem],
    grid: dict[str, Any],
    seeds: int | list[int] = 10,
    steps: int = 10_000,
    record_every: int = 1_000,
    *,
    divergence_threshold: float = DEFAULT_DIVERGENCE_THRESHOLD,
    lanes_per_chunk: int | None = None,
    chunk_steps: int | None = None,
    block_steps: int | None = None,
    progress: bool | None = None,
) -> SweepResult:
    """Every configuration of ``grid`` × every seed, as one vectorized computation.

    Args:
      make_learner: builds the learner from grid parameters given by keyword, e.g.
        ``lambda meta_step_size: ms.LinearLearner(ms.idbd(meta_step_size, 0.05), 20)``. It is
        called once per configuration with Python numbers before anything runs, so that the
        constructors check every value, then inside ``vmap``, where the values are traced
        scalars.
      problem: a Problem, or a function of grid parameters that returns one (for sweeping, say,
        the target's ``scale``); called as ``make_learner`` is.
      grid: parameter name -> list of numbers; the sweep covers their Cartesian product. Each
        parameter must be accepted by ``make_learner`` or by ``problem``.
      seeds: a count (seeds 0..k-1) or a list of seeds in [0, 2³²).
      steps, record_every, divergence_threshold, chunk_steps, block_steps, progress: as for
        :func:`run`.
      lanes_per_chunk: lanes per vmapped chunk (default: as many as fit the memory budget).

    Raises:
      ValueError: on a bad argument, or a grid configuration that ``make_learner`` or
        ``problem`` rejects (the message names the configuration).
    """
    columns = check_grid(grid)
    seed_values = check_seeds(seeds)
    steps, record_every, num_bins = check_schedule(steps, record_every)
    threshold = check_threshold(divergence_threshold)
    block_steps = _block_plan(record_every, block_steps)
    learner_names = keyword_names(make_learner)
    problem_names = None if isinstance(problem, Problem) else keyword_names(problem)
    if not isinstance(problem, Problem) and not callable(problem):
        check_problem(problem)
    for name in columns:
        used_by_learner = learner_names is None or name in learner_names
        used_by_problem = not isinstance(problem, Problem) and (
            problem_names is None or name in problem_names
        )
        if not (used_by_learner or used_by_problem):
            raise ValueError(f"grid parameter {name!r} is accepted neither by `make_learner` nor "
                             "by `problem`")

    names = list(columns)
    configs = np.array(list(itertools.product(*columns.values())), dtype=np.float64)
    grid_values = {name: configs[:, i].astype(columns[name].dtype) for i, name in enumerate(names)}
    num_configs, num_seeds = len(configs), len(seed_values)
    # With a fixed problem, the lanes of one seed read the same stream: it is drawn once per seed
    # and shared by all configurations (as run alone, each lane sees the stream of its seed).
    shared_stream = isinstance(problem, Problem)

    def build_problem(values: dict[str, Any]):
        if shared_stream:
            return problem
        built = problem(**select(values, problem_names))
        check_problem(built)
        return built

    def build_learner(values: dict[str, Any]):
        return make_learner(**select(values, learner_names))

    def lane_values(hyperparameters) -> dict[str, Any]:
        return dict(zip(names, hyperparameters))

    learner0, problem0 = check_configurations(
        num_configs, lambda index: {name: values[index].item()
                                    for name, values in grid_values.items()},
        build_learner, build_problem, learner_names, {} if shared_stream else problem_names,
    )
    key = jax.random.PRNGKey(0)
    metric_names = _metric_names(
        learner0, jax.eval_shape(learner0.init, key),
        *_first_sample(problem0, jax.eval_shape(problem0.init, key)),
    )
    itemsize = jnp.zeros((), jnp.result_type(float)).dtype.itemsize
    lane_bytes = itemsize * (
        block_steps * (problem0.num_features + 2) * (1 if shared_stream else 2)
        + num_bins * (problem0.num_features + 1) * 3
    )
    if lanes_per_chunk is None:
        lanes_per_chunk = max(1, CHUNK_MEMORY_BYTES // lane_bytes)
    lanes_per_chunk = check_count("lanes_per_chunk", lanes_per_chunk)
    seeds_per_chunk = min(num_seeds, lanes_per_chunk)
    configs_per_chunk = min(num_configs, max(1, lanes_per_chunk // seeds_per_chunk))
    bins_per_chunk = _bins_per_chunk(num_bins, record_every, chunk_steps)
    float_dtype = jnp.result_type(float)

    def over_configs_and_seeds(function, config_axis, seed_axis):
        return jax.vmap(jax.vmap(function, in_axes=seed_axis), in_axes=config_axis)

    def init_chunk(hyperparameters, seeds):
        problem_keys, learner_keys = jax.vmap(_split_seed)(seeds).swapaxes(0, 1)

        def init_learner(hyperparameters, key):
            return build_learner(lane_values(hyperparameters)).init(key)

        def init_problem(hyperparameters, key):
            return build_problem(lane_values(hyperparameters)).init(key)

        learner_states = over_configs_and_seeds(init_learner, (0, None), (None, 0))(
            hyperparameters, learner_keys
        )
        if shared_stream:
            problem_states = jax.vmap(problem.init)(problem_keys)
        else:
            problem_states = over_configs_and_seeds(init_problem, (0, None), (None, 0))(
                hyperparameters, problem_keys
            )
        lane_zeros = jnp.zeros((len(hyperparameters), len(seeds)), jnp.uint32)
        return _Carry(problem_states, learner_states, lane_zeros, lane_zeros)

    def run_chunk(hyperparameters, carry: _Carry, num_bins_in_chunk: int):
        sample_config_axis = None if shared_stream else 0
        time_axis = 1 if shared_stream else 2

        def generate(problem_states, num_steps):
            if shared_stream:
                return jax.vmap(lambda state: problem.generate(state, num_steps))(problem_states)
            return over_configs_and_seeds(
                lambda h, state: build_problem(lane_values(h)).generate(state, num_steps),
                (0, 0), (None, 0),
            )(hyperparameters, problem_states)

        def learn(lanes: _Lane, samples):
            def lane_scan(h, lane, x, y):
                return _learner_scan(build_learner(lane_values(h)), lane, x, y, threshold)[0]

            return over_configs_and_seeds(
                lane_scan, (0, 0, sample_config_axis, sample_config_axis), (None, 0, 0, 0)
            )(hyperparameters, lanes, samples.x, samples.y)

        def end_bin(h, start_state, lane):
            return _end_bin(build_learner(lane_values(h)), start_state, lane, record_every)

        def bin_body(carry: _Carry, _):
            lanes = _Lane(carry.learner_state, carry.diverged_at, carry.step,
                          _zero_sums(metric_names, carry.step.shape))
            problem_states, lanes, info = _feed_bin(
                generate, learn, carry.problem_state, lanes, record_every, block_steps,
                lambda info: jax.tree.map(lambda a: jnp.take(a, -1, axis=time_axis), info),
            )
            learner_states, (mean_squared_error, record) = over_configs_and_seeds(
                end_bin, (0, 0, 0), (None, 0, 0)
            )(hyperparameters, carry.learner_state, lanes)
            info = jax.tree.map(
                lambda a: jnp.broadcast_to(a, mean_squared_error.shape + a.shape[time_axis:]),
                info,
            )
            new_carry = _Carry(problem_states, learner_states, lanes.diverged_at, lanes.step)
            return new_carry, (mean_squared_error, record, info)

        return jax.lax.scan(bin_body, carry, None, length=num_bins_in_chunk)

    init_compiled = jax.jit(init_chunk)
    run_compiled = jax.jit(run_chunk, static_argnums=2)

    def padded(values, start, size):
        """``values[start:start + size]``, padded by repeating the last (one compilation)."""
        index = np.minimum(np.arange(start, start + size), len(values) - 1)
        return values[index], min(size, len(values) - start)

    num_lanes = num_configs * num_seeds
    squared_error = np.empty((num_configs, num_seeds, num_bins))
    diverged_at = np.zeros((num_configs, num_seeds), np.int64)
    learner_records = info = None
    with tqdm(
        total=num_lanes * steps, unit="lane-step", unit_scale=True, desc="sweep",
        disable=not _show_progress(progress, num_lanes * steps), leave=False,
    ) as bar:
        for first_config in range(0, num_configs, configs_per_chunk):
            chunk_configs, real_configs = padded(configs, first_config, configs_per_chunk)
            hyperparameters = jnp.asarray(chunk_configs, float_dtype)
            for first_seed in range(0, num_seeds, seeds_per_chunk):
                chunk_seeds, real_seeds = padded(seed_values, first_seed, seeds_per_chunk)
                carry = init_compiled(hyperparameters, jnp.asarray(chunk_seeds, jnp.uint32))
                time_parts = []
                for first_bin in range(0, num_bins, bins_per_chunk):
                    bins = min(bins_per_chunk, num_bins - first_bin)
                    carry, records = run_compiled(hyperparameters, carry, bins)
                    # Records come time-major: [bins, configs, seeds, ...].
                    time_parts.append(_to_numpy(records))
                    _report_progress(bar, real_configs * real_seeds * bins * record_every)
                real = (slice(real_configs), slice(real_seeds))
                chunk_squared_error, chunk_records, chunk_info = jax.tree.map(
                    lambda a, real=real: np.moveaxis(a, 0, 2)[real],
                    _concatenate(time_parts, axis=0),
                )
                if learner_records is None:
                    learner_records, info = jax.tree.map(
                        lambda a: np.empty((num_configs, num_seeds) + a.shape[2:], a.dtype),
                        (chunk_records, chunk_info),
                    )
                lanes = (slice(first_config, first_config + real_configs),
                         slice(first_seed, first_seed + real_seeds))
                squared_error[lanes] = chunk_squared_error
                diverged_at[lanes] = np.asarray(carry.diverged_at)[:real_configs, :real_seeds]
                for target, part in zip(jax.tree.leaves((learner_records, info)),
                                        jax.tree.leaves((chunk_records, chunk_info))):
                    target[lanes] = part

    return SweepResult(
        grid=grid_values,
        seeds=seed_values,
        steps=record_every * np.arange(1, num_bins + 1),
        squared_error=squared_error.astype(float_dtype),
        records=learner_records,
        info=info,
        diverged_at=diverged_at,
        parameters={"steps": steps, "record_every": record_every,
                    "divergence_threshold": threshold},
    )
