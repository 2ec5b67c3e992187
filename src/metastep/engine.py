"""The engine: compiled streaming runs (``lax.scan`` over time) and vectorized sweeps (``vmap``).

A run reads the problem's stream in blocks of at most ``block_steps`` steps (by default up to
:data:`BLOCK_STEPS`) and scans the learner over each; the steps of a record bin (``record_every``)
are summed block by block, and a compiled chunk holds many bins, so memory grows with the number of
records, neither with the number of steps nor with ``record_every``. Each step is *predict, then
update*: the recorded squared error is the one made before that step's update. Seeds are integers
in [0, 2³²) and the step counters are uint32: a run has fewer than 2³² steps.

A sweep runs configurations × seeds as lanes of one ``vmap``ped computation, in chunks of lanes to
bound memory (sized from ``jax.eval_shape`` of a lane's states, one block of its samples and its
records, against :func:`chunk_memory_bytes`: 256 MiB on a CPU, a quarter of an accelerator's
memory). Lane ``(configuration, seed)`` draws its data from ``PRNGKey(seed)`` exactly as
:func:`run` does and computes the same operations, but within a batched program that XLA compiles
on its own terms: it may round differently (it may, say, fuse a multiply and an add into one
rounding in one program and not in the other). A lane therefore matches the configuration run alone
up to rounding, amplified by the run's dynamics, not to the bit, whether the grid sweeps learner or
problem parameters: relative differences of the records up to about 100 ε of the float type (ε =
1.2e-7 in float32, 2.2e-16 in float64), and typically a few ε (4e-7 in float32, 0 to 4e-16 in
float64, over 2,000 steps of the test streams). Each configuration is built once with Python
numbers before anything runs, so that the constructors' checks see every value.

Compiled once: :func:`run` and :func:`sweep` build one *lane program* (the lanes' init, then
their record bins, ``vmap``ped over configurations × seeds; a run is the one lane of a sweep of
one configuration and one seed) and keep it in a cache of :data:`CACHED_PROGRAMS` programs
(least recently used dropped first; :func:`clear_cache` empties it).

- :func:`run` keys it by the *structure* of the learner and the problem: the factories that
  built them (``ms.idbd``, ``ms.LinearLearner``, ``ms.problems.weight_flipping``,
  ``ms.deep.DeepLearner``, ``ms.deep.mlp``, ...), their int, bool and string arguments, and by
  identity every other object in them (a user's loss function, a schedule, an optax
  transformation). Their float arguments are inputs of the program, as are the seed and the
  divergence threshold: a loop over seeds or hyperparameter values compiles once.
- :func:`sweep` keys it by ``make_learner`` (the same function object: define it once rather
  than as a new ``lambda`` per call), the problem (a Problem by its structure, its floats
  compiled in; a function by identity) and the grid's parameter names; the grid values and the
  seeds are inputs.

A call compiles again when a structure differs (another method or granularity, another
``num_features`` or ``flip_every``, an optional argument given or not, an int where there was
a float), ``record_every`` or ``block_steps`` differ, the bins per compiled chunk or the lanes per
chunk differ (they are shapes: another number of steps or of configurations may change them),
or an object that no recorded factory built is new (it is compared by identity: reuse it). A
factory that needs a concrete float (it branches on the value in Python) has its floats
compiled in: each value compiles once. Built objects are taken to be immutable. A float that is
an input of the program rather than a constant in it may round differently (XLA folds
constants), by a few ε per operation, amplified by the run's dynamics as below.

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
from metastep import _checkpoints, _lanes
from metastep._checks import as_count
from metastep._learner_protocol import DEFAULT_DIVERGENCE_THRESHOLD
from metastep._lanes import clear_cache as clear_cache
from metastep._structure import Identity, rebuild, split
from metastep.problems._base import Problem
from metastep.results import RunResult, SweepResult, RunArraysResult

# Work (lane-steps) above which a progress bar is shown when ``progress=None``.
PROGRESS_MIN_WORK = 20_000_000
# Bytes of one compiled chunk's stream blocks and records that a sweep aims to stay under on a
# CPU; on an accelerator, DEVICE_MEMORY_FRACTION of its memory (it runs many more lanes at once).
CHUNK_MEMORY_BYTES = 256 * 2**20
DEVICE_MEMORY_FRACTION = 0.25
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
# The plan of a call and the host loop that runs a lane program's chunks


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


def _run_lanes(program: _lanes.Program, plan: _Plan, parameters, seeds, bar, real_lanes: int,
               part: str):
    """The host loop: init the lanes, run their bins chunk by chunk, collect the records as
    NumPy arrays [configs, seeds, bins, ...]. Returns the final carry and the records. ``part``
    names these lanes within the engine call (for its checkpoint)."""
    carry = program.init(parameters, seeds)
    parts, bins_done = [], 0
    # Inside _checkpoints.checkpointing (a run directory's shard): resume, and save as it goes.
    checkpoint = _checkpoints.for_call(part, plan, parameters, seeds, carry)
    if checkpoint is not None:
        carry, records, bins_done = checkpoint.restore(carry, lambda: jax.eval_shape(
            program.run_bins, parameters, carry, plan.threshold, 1)[1])
        parts = [] if records is None else [records]
        if bins_done:
            _report_progress(bar, real_lanes * bins_done * plan.record_every)
    for first_bin in range(bins_done, plan.num_bins, plan.bins_per_chunk):
        bins = min(plan.bins_per_chunk, plan.num_bins - first_bin)
        carry, records = program.run_bins(parameters, carry, plan.threshold, bins)
        parts.append(_to_numpy(records))
        if checkpoint is not None and (checkpoint.due() or first_bin + bins == plan.num_bins):
            parts = [_concatenate(parts, axis=0)]
            checkpoint.save(carry, parts[0], first_bin + bins)
        _report_progress(bar, real_lanes * bins * plan.record_every)
    # Records come time-major: [bins, configs, seeds, ...].
    return carry, jax.tree.map(lambda a: np.moveaxis(a, 0, 2), _concatenate(parts, axis=0))


# ---------------------------------------------------------------------------------------------
# Planning (block and chunk sizes) and host-side helpers


def chunk_memory_bytes(device=None) -> int:
    """The memory a sweep's chunk of lanes may use on ``device`` (default: JAX's first):
    :data:`CHUNK_MEMORY_BYTES` on a CPU, :data:`DEVICE_MEMORY_FRACTION` of an accelerator's
    memory (if larger)."""
    stats = (device or jax.devices()[0]).memory_stats() or {}
    limit = stats.get("bytes_limit")
    if not limit:
        return CHUNK_MEMORY_BYTES
    return max(CHUNK_MEMORY_BYTES, int(DEVICE_MEMORY_FRACTION * limit))


def _block_plan(record_every: int, block_steps: int | None) -> int:
    """The steps generated and scanned at a time inside a record bin.

    By default ``record_every`` up to :data:`BLOCK_STEPS`; above, the largest divisor of
    ``record_every`` between a quarter of :data:`BLOCK_STEPS` and :data:`BLOCK_STEPS` (a bin is
    then one compiled block repeated), else :data:`BLOCK_STEPS` and a shorter last block. Either
    is rounded down to a multiple of the steps that an unrolled scan takes per iteration
    (:func:`metastep._lanes.unroll_for`), so that each step's place in an iteration, and so its
    rounding, does not depend on the blocks.
    """
    if block_steps is not None:
        block_steps = min(as_count("block_steps", block_steps), record_every)
    elif record_every <= BLOCK_STEPS:
        block_steps = record_every
    else:
        divisors = (d for d in range(BLOCK_STEPS, BLOCK_STEPS // 4 - 1, -1)
                    if record_every % d == 0)
        block_steps = next(divisors, BLOCK_STEPS)
    unroll = _lanes.unroll_for(record_every)
    return max(unroll, block_steps - block_steps % unroll)


def _bins_per_chunk(num_bins: int, record_every: int, chunk_steps: int | None) -> int:
    # Without a request, a chunk covers about 1/20 of the run (so a progress bar moves), at
    # least 100,000 steps (so the per-call overhead is negligible).
    if chunk_steps is None:
        chunk_steps = max(100_000, math.ceil(num_bins * record_every / 20))
    chunk_steps = as_count("chunk_steps", chunk_steps)
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
        which bounds memory whatever ``record_every`` (default: up to :data:`BLOCK_STEPS`;
        rounded down to a multiple of the steps of an unrolled loop iteration, at most 4); the
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
    ) as bar, _checkpoints.engine_call(
        f"run {type(learner).__qualname__} {problem.name} {problem.params!r}"
    ):
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
        if key in _lanes.UNTRACEABLE:
            continue

        def build_learner(parameters, structure=learner_structure):
            return rebuild(structure, parameters[0])

        def build_problem(parameters, structure=problem_structure):
            return rebuild(structure, parameters[1])

        spec = _lanes.LaneSpec(build_learner, build_problem, config_axis=None, shared_stream=True)
        program = _lanes.cached_program(key, lambda spec=spec: _lanes.lane_program(
            spec, learner, problem, plan.record_every, plan.block_steps))
        try:
            return _run_lanes(program, plan, (learner_leaves, problem_leaves), seeds, bar, 1,
                              "lane")
        except _lanes.CONCRETIZATION_ERRORS:
            if not (trace_learner or trace_problem):
                raise
            _lanes.UNTRACEABLE.add(key)
            _lanes.PROGRAMS.pop(key, None)
    raise AssertionError("unreachable: the last attempt compiles every float in")

# ---------------------------------------------------------------------------------------------
# run_arrays


def feature_rows(learner, xs) -> jax.Array:
    """``xs`` as [T, n] real features, n the learner's ``num_features`` when it has one."""
    xs = real_array("xs", xs)
    if xs.ndim != 2:
        raise ValueError(f"`xs` must have shape [T, num_features], got shape {xs.shape}")
    num_features = getattr(learner, "num_features", None)
    if num_features is not None and xs.shape[1] != num_features:
        raise ValueError(
            f"`xs` has {xs.shape[1]} features per row but the learner expects {num_features}"
        )
    check_finite_rows("xs", xs)
    return xs


def check_finite_rows(name: str, array: jax.Array) -> None:
    """Raises, naming ``name`` and the first row, when ``array`` holds a NaN or an infinity."""
    if not bool(jnp.all(jnp.isfinite(array))):
        finite_rows = np.isfinite(np.asarray(array)).reshape(len(array), -1).all(axis=1)
        raise ValueError(f"`{name}` holds non-finite values (first at row "
                         f"{int(np.argmin(finite_rows))})")


def run_arrays(
    learner, xs, ys, *, key: jax.Array | None = None,
    divergence_threshold: float = DEFAULT_DIVERGENCE_THRESHOLD,
) -> RunArraysResult:
    """Run ``learner`` over explicit data, recording every step.

    Args:
      learner: as for :func:`run`.
      xs: inputs, [T, n] with n the learner's ``num_features``; or what the learner's
        ``check_inputs(xs, name)`` takes (``ms.td.SparseSwiftTD``: the active features' indices).
      ys: targets, [T].
      key: passed to ``learner.init`` (default ``PRNGKey(0)``).

    Raises:
      ValueError: on shape mismatches, data that are not finite real numbers, or targets the
        learner cannot take (e.g. labels out of a classifier's range), naming the argument.
    """
    check_learner(learner)
    threshold = check_threshold(divergence_threshold)
    # An optional hook: a learner whose inputs are not feature rows (e.g. the indices of the
    # active features of ms.td.SparseSwiftTD) checks and converts them itself.
    check_inputs = getattr(learner, "check_inputs", None)
    xs = check_inputs(xs, "xs") if callable(check_inputs) else feature_rows(learner, xs)
    ys = real_array("ys", ys)
    num_steps = len(jax.tree.leaves(xs)[0])
    if ys.shape != (num_steps,):
        raise ValueError(f"`ys` must have shape [T] = [{num_steps}], got shape {ys.shape}")
    check_finite_rows("ys", ys)
    # An optional hook: e.g. a classifier checks that the labels fit its outputs.
    check_targets = getattr(learner, "check_targets", None)
    if callable(check_targets):
        check_targets(ys, "ys")
    key = jax.random.PRNGKey(0) if key is None else key

    @jax.jit
    def scan(xs, ys):
        state = learner.init(key)
        zero = jnp.zeros((), jnp.uint32)
        first_x = jax.tree.map(lambda a: a[0], xs)
        sums = _lanes.zero_sums(_lanes.metric_names_of(learner, state, first_x, ys[0]))
        lane = _lanes.Lane(state, zero, zero, sums)
        lane, outputs = _lanes.learner_scan(learner, lane, xs, ys, threshold)
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
    if lanes_per_chunk is None:
        lanes_per_chunk = max(1, chunk_memory_bytes() // program.lane_bytes(plan.num_bins))
    lanes_per_chunk = as_count("lanes_per_chunk", lanes_per_chunk)
    work = len(configs) * len(seed_values) * plan.steps
    described = (f"{problem.name} {problem.params!r}" if isinstance(problem, Problem)
                 else getattr(problem, "__qualname__", type(problem).__qualname__))
    with tqdm(total=work, unit="lane-step", unit_scale=True, desc="sweep",
              disable=not _show_progress(progress, work), leave=False) as bar, \
            _checkpoints.engine_call(f"sweep {names} {described}"):
        squared_error, records, info, diverged_at = _sweep_lanes(
            program, plan, configs, seed_values, lanes_per_chunk, bar)
    return SweepResult(
        grid=grid_values,
        seeds=seed_values,
        steps=plan.record_every * np.arange(1, plan.num_bins + 1),
        squared_error=squared_error.astype(jnp.result_type(float)),
        records=records,
        info=info,
        diverged_at=diverged_at,
        parameters={"steps": plan.steps, "record_every": plan.record_every,
                    "divergence_threshold": plan.threshold},
    )


def _padded(values, start, size):
    """``values[start:start + size]``, padded by repeating the last (one compilation), and the
    count of real values."""
    index = np.minimum(np.arange(start, start + size), len(values) - 1)
    return values[index], min(size, len(values) - start)


def _sweep_lanes(program: _lanes.Program, plan: _Plan, configs, seed_values,
                 lanes_per_chunk: int, bar):
    """The sweep's host loop: chunks of configurations × seeds (the last ones padded), each run
    by :func:`_run_lanes`; returns the squared error, records, info and ``diverged_at`` of all
    lanes, [configs, seeds, ...]."""
    num_configs, num_seeds = len(configs), len(seed_values)
    seeds_per_chunk = min(num_seeds, lanes_per_chunk)
    configs_per_chunk = min(num_configs, max(1, lanes_per_chunk // seeds_per_chunk))
    squared_error = np.empty((num_configs, num_seeds, plan.num_bins))
    diverged_at = np.zeros((num_configs, num_seeds), np.int64)
    records = info = None
    for first_config in range(0, num_configs, configs_per_chunk):
        chunk_configs, real_configs = _padded(configs, first_config, configs_per_chunk)
        hyperparameters = jnp.asarray(chunk_configs, jnp.result_type(float))
        for first_seed in range(0, num_seeds, seeds_per_chunk):
            chunk_seeds, real_seeds = _padded(seed_values, first_seed, seeds_per_chunk)
            carry, chunk = _run_lanes(program, plan, hyperparameters,
                                      jnp.asarray(chunk_seeds, jnp.uint32), bar,
                                      real_configs * real_seeds,
                                      f"lanes-{first_config}-{first_seed}")
            real = (slice(real_configs), slice(real_seeds))
            chunk_squared_error, chunk_records, chunk_info = jax.tree.map(
                lambda a, real=real: a[real], chunk)
            if records is None:
                records, info = jax.tree.map(
                    lambda a: np.empty((num_configs, num_seeds) + a.shape[2:], a.dtype),
                    (chunk_records, chunk_info),
                )
            lanes = (slice(first_config, first_config + real_configs),
                     slice(first_seed, first_seed + real_seeds))
            squared_error[lanes] = chunk_squared_error
            diverged_at[lanes] = np.asarray(carry.diverged_at)[real]
            for target, part in zip(jax.tree.leaves((records, info)),
                                    jax.tree.leaves((chunk_records, chunk_info))):
                target[lanes] = part
    return squared_error, records, info, diverged_at


def _sweep_program(make_learner, problem, grid_values: dict[str, np.ndarray],
                   plan: _Plan) -> _lanes.Program:
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
    spec = _lanes.LaneSpec(
        build_learner=lambda row: build_learner(dict(zip(names, row))),
        build_problem=lambda row: build_problem(dict(zip(names, row))),
        config_axis=0, shared_stream=shared_stream,
    )
    # A fixed problem's floats are compiled in (by value, as when it is built in make_learner).
    problem_key = split(problem, trace_floats=False)[0] if shared_stream else Identity(problem)
    key = ("sweep", Identity(make_learner), problem_key, tuple(names), plan.record_every,
           plan.block_steps, jnp.result_type(float))
    return _lanes.cached_program(key, lambda: _lanes.lane_program(
        spec, learner0, problem0, plan.record_every, plan.block_steps))
