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

import collections
import contextlib
import contextvars
import functools
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
from metastep._learner_protocol import DEFAULT_DIVERGENCE_THRESHOLD, diverges
from metastep._structure import Identity, rebuild, split
from metastep.problems._base import Problem
from metastep.results import RunResult, SweepResult, RunArraysResult

# Work (lane-steps) above which a progress bar is shown when ``progress=None``.
PROGRESS_MIN_WORK = 20_000_000
# Bytes of one compiled chunk's stream blocks and records that a sweep aims to stay under.
CHUNK_MEMORY_BYTES = 256 * 2**20
# Steps of a problem's stream that a lane holds at a time: a record bin longer than this is
# generated and scanned in blocks, so memory does not grow with ``record_every``.
BLOCK_STEPS = 100_000
# Compiled lane programs kept (least recently used forgotten first).
CACHED_PROGRAMS = 64


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
            (lane.diverged_at == 0) & diverges(values["squared_error"], threshold),
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


# ---------------------------------------------------------------------------------------------
# The lane program: configurations × seeds in one compiled computation, cached by structure


class _LaneSpec(NamedTuple):
    """How a lane program builds its learners and problems, from traced parameters.

    ``build_learner(parameters)`` and ``build_problem(parameters)`` take one configuration's
    parameters; ``config_axis`` is the configurations' axis of ``parameters`` (None: a single
    configuration, unbatched). With ``shared_stream`` the lanes of a seed read one stream, drawn
    once: ``build_problem`` is then called once for all configurations, so it may read its
    parameters only when they are unbatched.
    """

    build_learner: Callable[[Any], Any]
    build_problem: Callable[[Any], Problem]
    config_axis: int | None
    shared_stream: bool


class _Program(NamedTuple):
    """A lane program (compiled by ``jax.jit`` on first use) and what its structure fixes."""

    init: Callable  # (parameters, seeds [S]) -> _Carry with leading [configurations, seeds]
    run_bins: Callable  # (parameters, carry, threshold, num_bins) -> (carry, records)
    metric_names: tuple[str, ...]
    state_bytes: int  # one lane's learner and problem states
    block_bytes: int  # one block of one lane's samples
    record_bytes: int  # one lane's records of one bin

    def lane_bytes(self, num_bins: int) -> int:
        return self.state_bytes + self.block_bytes + num_bins * self.record_bytes


def _over_configs_and_seeds(function, config_axes, seed_axes, num_configs=None):
    return jax.vmap(jax.vmap(function, in_axes=seed_axes), in_axes=config_axes,
                    axis_size=num_configs)


def _init_lanes(spec: _LaneSpec, parameters, seeds) -> _Carry:
    """The carry of configurations × ``seeds``: lane ``(c, s)`` from ``PRNGKey(seeds[s])``."""
    axis = spec.config_axis
    num_configs = 1 if axis is None else jax.tree.leaves(parameters)[0].shape[axis]
    problem_keys, learner_keys = jax.vmap(_split_seed)(seeds).swapaxes(0, 1)
    learner_states = _over_configs_and_seeds(
        lambda p, key: spec.build_learner(p).init(key), (axis, None), (None, 0), num_configs,
    )(parameters, learner_keys)
    if spec.shared_stream:
        problem_states = jax.vmap(spec.build_problem(parameters).init)(problem_keys)
    else:
        problem_states = _over_configs_and_seeds(
            lambda p, key: spec.build_problem(p).init(key), (axis, None), (None, 0), num_configs,
        )(parameters, problem_keys)
    lane_zeros = jnp.zeros((num_configs, len(seeds)), jnp.uint32)
    return _Carry(problem_states, learner_states, lane_zeros, lane_zeros)


def _run_lane_bins(spec: _LaneSpec, record_every: int, block_steps: int, metric_names,
                   parameters, carry: _Carry, threshold, num_bins: int):
    """``num_bins`` record bins of every lane: the carry, and records [bins, configs, seeds, ...]
    (the mean squared error, the learner's records and the problem's info)."""
    axis = spec.config_axis
    sample_config_axis = None if spec.shared_stream else 0
    time_axis = 1 if spec.shared_stream else 2

    def generate(problem_states, num_steps):
        if spec.shared_stream:
            problem = spec.build_problem(parameters)
            return jax.vmap(lambda state: problem.generate(state, num_steps))(problem_states)
        return _over_configs_and_seeds(
            lambda p, state: spec.build_problem(p).generate(state, num_steps),
            (axis, 0), (None, 0),
        )(parameters, problem_states)

    def learn(lanes: _Lane, samples):
        def lane_scan(p, lane, x, y):
            return _learner_scan(spec.build_learner(p), lane, x, y, threshold)[0]

        return _over_configs_and_seeds(
            lane_scan, (axis, 0, sample_config_axis, sample_config_axis), (None, 0, 0, 0)
        )(parameters, lanes, samples.x, samples.y)

    def end_bin(p, start_state, lane):
        return _end_bin(spec.build_learner(p), start_state, lane, record_every)

    def bin_body(carry: _Carry, _):
        lanes = _Lane(carry.learner_state, carry.diverged_at, carry.step,
                      _zero_sums(metric_names, carry.step.shape))
        problem_states, lanes, info = _feed_bin(
            generate, learn, carry.problem_state, lanes, record_every, block_steps,
            lambda info: jax.tree.map(lambda a: jnp.take(a, -1, axis=time_axis), info),
        )
        learner_states, (mean_squared_error, record) = _over_configs_and_seeds(
            end_bin, (axis, 0, 0), (None, 0, 0)
        )(parameters, carry.learner_state, lanes)
        info = jax.tree.map(
            lambda a: jnp.broadcast_to(a, mean_squared_error.shape + a.shape[time_axis:]), info,
        )
        new_carry = _Carry(problem_states, learner_states, lanes.diverged_at, lanes.step)
        return new_carry, (mean_squared_error, record, info)

    return jax.lax.scan(bin_body, carry, None, length=num_bins)


def _nbytes(tree) -> int:
    return sum(math.prod(a.shape) * np.dtype(a.dtype).itemsize for a in jax.tree.leaves(tree))


def _lane_program(spec: _LaneSpec, learner, problem, record_every: int,
                  block_steps: int) -> _Program:
    """The program of ``spec``'s lanes; ``learner`` and ``problem`` (one configuration's, built
    with Python numbers) give the shapes, from ``jax.eval_shape``: nothing is compiled here."""
    key = jax.random.PRNGKey(0)
    learner_state = jax.eval_shape(learner.init, key)
    problem_state = jax.eval_shape(problem.init, key)
    block = jax.eval_shape(lambda state: problem.generate(state, block_steps)[1], problem_state)
    x, y = (jax.ShapeDtypeStruct(a.shape[1:], a.dtype) for a in (block.x, block.y))
    metric_names = _metric_names(learner, learner_state, x, y)
    record = jax.eval_shape(learner.record, learner_state)
    float_bytes = jnp.zeros((), jnp.result_type(float)).dtype.itemsize
    return _Program(
        init=jax.jit(functools.partial(_init_lanes, spec)),
        run_bins=jax.jit(
            functools.partial(_run_lane_bins, spec, record_every, block_steps, metric_names),
            static_argnums=3,
        ),
        metric_names=metric_names,
        state_bytes=_nbytes((learner_state, problem_state)),
        block_bytes=_nbytes(block),
        record_bytes=_nbytes(record) + _nbytes(block) // block_steps
        + len(metric_names) * float_bytes,
    )


# Compiled lane programs, least recently used first; a key holds the structures (and so keeps
# alive the objects that it compares by identity, whose ids cannot then be reused).
_PROGRAMS: collections.OrderedDict[Any, _Program] = collections.OrderedDict()
# Keys whose floats could not be traced (a factory needed a concrete value).
_UNTRACEABLE: set = set()
_CONCRETIZATION_ERRORS = (jax.errors.ConcretizationTypeError,
                          jax.errors.TracerArrayConversionError,
                          jax.errors.TracerIntegerConversionError)


def _cached_program(key, make: Callable[[], _Program]) -> _Program:
    program = _PROGRAMS.get(key)
    if program is None:
        program = _PROGRAMS[key] = make()
        while len(_PROGRAMS) > CACHED_PROGRAMS:
            _PROGRAMS.popitem(last=False)
    _PROGRAMS.move_to_end(key)
    return program


def clear_cache() -> None:
    """Forget every compiled lane program (the next calls compile again)."""
    _PROGRAMS.clear()
    _UNTRACEABLE.clear()


class _Plan(NamedTuple):
    """A call's schedule, checked: record bins, blocks within a bin, bins per compiled call."""

    steps: int
    record_every: int
    num_bins: int
    block_steps: int
    bins_per_chunk: int
    threshold: float


def _plan(steps, record_every, divergence_threshold, chunk_steps, block_steps) -> _Plan:
    steps, record_every, num_bins = check_schedule(steps, record_every)
    return _Plan(steps, record_every, num_bins, _block_plan(record_every, block_steps),
                 _bins_per_chunk(num_bins, record_every, chunk_steps),
                 check_threshold(divergence_threshold))


def _run_lanes(program: _Program, plan: _Plan, parameters, seeds, bar, real_lanes: int):
    """The host loop: init the lanes, run their bins chunk by chunk, collect the records as
    NumPy arrays [configs, seeds, bins, ...]. Returns the final carry and the records."""
    carry = program.init(parameters, seeds)
    parts = []
    for first_bin in range(0, plan.num_bins, plan.bins_per_chunk):
        bins = min(plan.bins_per_chunk, plan.num_bins - first_bin)
        carry, records = program.run_bins(parameters, carry, plan.threshold, bins)
        parts.append(_to_numpy(records))
        _report_progress(bar, real_lanes * bins * plan.record_every)
    # Records come time-major: [bins, configs, seeds, ...].
    return carry, jax.tree.map(lambda a: np.moveaxis(a, 0, 2), _concatenate(parts, axis=0))

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
# run: one lane


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

    The run is the one lane of a sweep of one configuration and one seed. Its program is cached
    by the structure of ``learner`` and ``problem`` (see the module docstring): another seed, or
    a learner or problem built by the same factories with other float values, reuses it.

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
    plan = _plan(steps, record_every, divergence_threshold, chunk_steps, block_steps)
    seeds = np.asarray([check_seed(seed)], np.uint32)
    with tqdm(
        total=plan.steps, unit="step", unit_scale=True, desc=problem.name,
        disable=not _show_progress(progress, plan.steps), leave=False,
    ) as bar:
        carry, records = _run_one_lane(learner, problem, plan, seeds, bar)
    squared_error, learner_records, info = jax.tree.map(lambda a: a[0, 0], records)
    return RunResult(
        steps=plan.record_every * np.arange(1, plan.num_bins + 1),
        squared_error=squared_error,
        records=learner_records,
        info=info,
        diverged_at=int(carry.diverged_at[0, 0]),
        final_state=jax.tree.map(lambda a: a[0, 0], carry.learner_state),
    )


def _run_one_lane(learner, problem, plan: _Plan, seeds, bar):
    """The lane of ``learner`` on ``problem``, their floats traced where the factories allow
    it: else the learner's floats, then the problem's, are compiled in (cached by value)."""
    for trace_learner, trace_problem in ((True, True), (False, True), (False, False)):
        learner_structure, learner_leaves = split(learner, trace_learner)
        problem_structure, problem_leaves = split(problem, trace_problem)
        key = ("run", learner_structure, problem_structure, plan.record_every,
               plan.block_steps, jnp.result_type(float))
        if key in _UNTRACEABLE:
            continue

        def build_learner(parameters, structure=learner_structure):
            return rebuild(structure, parameters[0])

        def build_problem(parameters, structure=problem_structure):
            return rebuild(structure, parameters[1])

        spec = _LaneSpec(build_learner, build_problem, config_axis=None, shared_stream=True)
        program = _cached_program(key, lambda spec=spec: _lane_program(
            spec, learner, problem, plan.record_every, plan.block_steps))
        try:
            return _run_lanes(program, plan, (learner_leaves, problem_leaves), seeds, bar, 1)
        except _CONCRETIZATION_ERRORS:
            if not (trace_learner or trace_problem):
                raise
            _UNTRACEABLE.add(key)
            _PROGRAMS.pop(key, None)
    raise AssertionError("unreachable: the last attempt compiles every float in")

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
    return RunArraysResult(
        predictions=np.asarray(outputs.prediction),
        errors=np.asarray(outputs.error),
        step_sizes=_to_numpy(outputs.step_sizes),
        diverged_at=int(diverged_at),
        final_state=state,
    )


# ---------------------------------------------------------------------------------------------
# sweep: configurations × seeds


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

    The program is cached by ``make_learner`` (the same function object), the problem (a
    Problem's structure, or the same function object) and the grid's parameter names: a second
    sweep with other grid values, seeds or a number of steps that keeps the lane counts reuses
    it (see the module docstring).

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
    plan = _plan(steps, record_every, divergence_threshold, chunk_steps, block_steps)
    names = list(columns)
    configs = np.array(list(itertools.product(*columns.values())), dtype=np.float64)
    grid_values = {name: configs[:, i].astype(columns[name].dtype) for i, name in enumerate(names)}
    program = _sweep_program(make_learner, problem, grid_values, plan)
    num_configs, num_seeds = len(configs), len(seed_values)
    if lanes_per_chunk is None:
        lanes_per_chunk = max(1, CHUNK_MEMORY_BYTES // program.lane_bytes(plan.num_bins))
    lanes_per_chunk = check_count("lanes_per_chunk", lanes_per_chunk)
    seeds_per_chunk = min(num_seeds, lanes_per_chunk)
    configs_per_chunk = min(num_configs, max(1, lanes_per_chunk // seeds_per_chunk))
    float_dtype = jnp.result_type(float)

    def padded(values, start, size):
        """``values[start:start + size]``, padded by repeating the last (one compilation)."""
        index = np.minimum(np.arange(start, start + size), len(values) - 1)
        return values[index], min(size, len(values) - start)

    squared_error = np.empty((num_configs, num_seeds, plan.num_bins))
    diverged_at = np.zeros((num_configs, num_seeds), np.int64)
    learner_records = info = None
    work = num_configs * num_seeds * plan.steps
    with tqdm(total=work, unit="lane-step", unit_scale=True, desc="sweep",
              disable=not _show_progress(progress, work), leave=False) as bar:
        for first_config in range(0, num_configs, configs_per_chunk):
            chunk_configs, real_configs = padded(configs, first_config, configs_per_chunk)
            hyperparameters = jnp.asarray(chunk_configs, float_dtype)
            for first_seed in range(0, num_seeds, seeds_per_chunk):
                chunk_seeds, real_seeds = padded(seed_values, first_seed, seeds_per_chunk)
                carry, records = _run_lanes(
                    program, plan, hyperparameters, jnp.asarray(chunk_seeds, jnp.uint32), bar,
                    real_configs * real_seeds,
                )
                real = (slice(real_configs), slice(real_seeds))
                chunk_squared_error, chunk_records, chunk_info = jax.tree.map(
                    lambda a, real=real: a[real], records
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
        steps=plan.record_every * np.arange(1, plan.num_bins + 1),
        squared_error=squared_error.astype(float_dtype),
        records=learner_records,
        info=info,
        diverged_at=diverged_at,
        parameters={"steps": plan.steps, "record_every": plan.record_every,
                    "divergence_threshold": plan.threshold},
    )


def _sweep_program(make_learner, problem, grid_values: dict[str, np.ndarray],
                   plan: _Plan) -> _Program:
    """The plan's validation of the grid (every configuration built with Python numbers) and
    the cached lane program that builds each lane's learner (and problem) from its grid row."""
    names = list(grid_values)
    learner_names = keyword_names(make_learner)
    # With a fixed problem, the lanes of one seed read the same stream: it is drawn once per seed
    # and shared by all configurations (as run alone, each lane sees the stream of its seed).
    shared_stream = isinstance(problem, Problem)
    problem_names = None if shared_stream else keyword_names(problem)
    if not shared_stream and not callable(problem):
        check_problem(problem)
    for name in names:
        used_by_learner = learner_names is None or name in learner_names
        used_by_problem = not shared_stream and (problem_names is None or name in problem_names)
        if not (used_by_learner or used_by_problem):
            raise ValueError(f"grid parameter {name!r} is accepted neither by `make_learner` nor "
                             "by `problem`")

    def build_problem(values: dict[str, Any]):
        if shared_stream:
            return problem
        built = problem(**select(values, problem_names))
        check_problem(built)
        return built

    def build_learner(values: dict[str, Any]):
        return make_learner(**select(values, learner_names))

    learner0, problem0 = check_configurations(
        len(next(iter(grid_values.values()))),
        lambda index: {name: values[index].item() for name, values in grid_values.items()},
        build_learner, build_problem, learner_names, {} if shared_stream else problem_names,
    )
    spec = _LaneSpec(
        build_learner=lambda row: build_learner(dict(zip(names, row))),
        build_problem=lambda row: build_problem(dict(zip(names, row))),
        config_axis=0, shared_stream=shared_stream,
    )
    # A fixed problem's floats are compiled in (by value, as when it is built in make_learner).
    problem_key = split(problem, trace_floats=False)[0] if shared_stream else Identity(problem)
    key = ("sweep", Identity(make_learner), problem_key, tuple(names), plan.record_every,
           plan.block_steps, jnp.result_type(float))
    return _cached_program(key, lambda: _lane_program(spec, learner0, problem0, plan.record_every,
                                                      plan.block_steps))
