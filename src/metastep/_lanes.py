"""The engine's compiled core: the lane program and its cache (see :mod:`metastep.engine`).

A *lane* is one learner on one problem's stream from one seed. The lane program runs
configurations × seeds of them as one ``vmap``ped computation: :func:`init_lanes` draws their
initial states, :func:`run_lane_bins` scans a chunk of record bins, each fed to the learners
block by block (:func:`feed_bin`) and closed by :func:`end_bin` (the bin's records, the last
healthy state). :func:`lane_program` wraps both in ``jax.jit`` for one :class:`LaneSpec`, with
what the shapes fix (metric names, bytes per lane, the unrolling of a cheap single lane's scan
and whether it runs in small slices: :func:`scan_unroll`, :func:`sliced_scan`), and
:func:`cached_program` keeps programs across calls, keyed by the callers (see the engine's
module docstring).
"""

from __future__ import annotations

import collections
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from metastep._learner_protocol import diverges
from metastep.problems._base import Problem

# Compiled lane programs kept (least recently used forgotten first).
CACHED_PROGRAMS = 64
# The most steps per loop iteration of a single lane's scan when its step is cheap (a power of
# two; see scan_unroll).
SINGLE_LANE_UNROLL = 4
CHEAP_STEP_OPERATIONS = 100  # a linear learner: 16 to 70; a small network: 120 and more
# XLA's CPU runtime runs a computation's kernels in order, without handing them to other threads,
# when none touches a buffer larger than this (see sliced_scan).
SMALL_BUFFER_BYTES = 512

# ---------------------------------------------------------------------------------------------
# One lane, one record bin


class Carry(NamedTuple):
    problem_state: Any
    learner_state: Any
    diverged_at: jax.Array  # uint32, 0 while healthy
    step: jax.Array  # uint32 steps done


class Lane(NamedTuple):
    """What one lane carries through a record bin, block after block."""

    learner_state: Any
    diverged_at: jax.Array
    step: jax.Array
    sums: dict[str, jax.Array]  # over the bin's healthy steps: squared error, step metrics


def metric_names_of(learner, learner_state, x, y) -> tuple[str, ...]:
    """The per-step values the engine sums per bin: the squared error and the step metrics."""
    output = jax.eval_shape(learner.step, learner_state, x, y)[1]
    return ("squared_error", *getattr(output, "metrics", {}))


def zero_sums(names, shape=()) -> dict[str, jax.Array]:
    return {name: jnp.zeros(shape, jnp.result_type(float)) for name in names}


def learner_scan(learner, lane: Lane, xs, ys, threshold, unroll: int = 1):
    """Scan ``learner.step`` over a block; notes the step at which the error first diverges.

    Adds to ``lane.sums`` the healthy steps' squared errors and the entries of the step output's
    optional ``metrics`` dict (e.g. a classifier's accuracy). A diverged lane's state is not
    frozen here (its NaNs stay in its own lane); :func:`end_bin` restores the last healthy
    bin-end state, which costs one select per bin, not per step. ``unroll``: steps per loop
    iteration (the same operations, fewer iterations; see :func:`scan_unroll`).
    """

    def body(lane: Lane, xy):
        x, y = xy
        state, output = learner.step(lane.learner_state, x, y)
        values = {"squared_error": jnp.square(output.error), **getattr(output, "metrics", {})}
        diverged_at = jnp.where(
            (lane.diverged_at == 0) & diverges(values["squared_error"], threshold),
            lane.step + 1, lane.diverged_at,
        )
        sums = {name: total + jnp.where(diverged_at == 0, values[name], 0.0)
                for name, total in lane.sums.items()}
        return Lane(state, diverged_at, lane.step + 1, sums), output

    return jax.lax.scan(body, lane, (xs, ys), unroll=unroll)


def learner_loop(learner, lane: Lane, xs, ys, threshold, unroll: int = 1,
                 sliced: bool = False) -> Lane:
    """:func:`learner_scan` without the step outputs: the lane after the block.

    With ``sliced`` (see :func:`sliced_scan`), the block is cut into slices of ``unroll`` steps,
    each scanned in a loop of its own whose trip count (1) XLA cannot see, so that it keeps the
    loop: the kernels of that loop's body then touch small buffers only (the slice and the
    learner's state), not the block. The same operations are compiled, into other kernels,
    where XLA may round a few differently (fusing a multiply and an add or not): the lanes of
    SwiftTD, TIDBD, AutoTIDBD, TD(λ), IDBD, Autostep and SGD came out bit for bit the same on
    the random walk and weight flipping, those of true online TD(λ) within 1e-8.
    """
    if not sliced:
        return learner_scan(learner, lane, xs, ys, threshold, unroll)[0]
    one = jax.lax.optimization_barrier(jnp.ones((), jnp.int32))

    def slice_body(lane: Lane, xy_slice):
        def steps(_, carry):
            lane, xy_slice = carry
            # Opaque to XLA: what depends on the slice is not hoisted out of the inner loop.
            xy_slice = jax.lax.optimization_barrier(xy_slice)
            return learner_scan(learner, lane, *xy_slice, threshold, unroll)[0], xy_slice

        return jax.lax.fori_loop(0, one, steps, (lane, xy_slice))[0], None

    slices = jax.tree.map(lambda a: a.reshape(-1, unroll, *a.shape[1:]), (xs, ys))
    return jax.lax.scan(slice_body, lane, slices)[0]


def split_seed(seed):
    """The keys of a run: the problem's stream and the learner's initialization.

    ``seed`` is a uint32 (see :func:`check_seed`): ``PRNGKey`` of a seed below 2³¹ is the same
    whether the seed is given as int32, int64 or uint32.
    """
    return jax.random.split(jax.random.PRNGKey(seed))


def feed_bin(generate, learn, problem_state, lane, record_every: int, block_steps: int,
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


def end_bin(learner, start_state, lane: Lane, record_every):
    """The end of one lane's bin: the last healthy state, and the bin's record (NaN once
    diverged)."""
    healthy = lane.diverged_at == 0
    learner_state = jax.tree.map(lambda new, old: jnp.where(healthy, new, old),
                                 lane.learner_state, start_state)
    means = {name: total / record_every for name, total in lane.sums.items()}
    # An optional hook: e.g. a TD learner records the root of a mean squared value error.
    bin_records = getattr(learner, "bin_records", None)
    if callable(bin_records):
        means = bin_records(means)
    record = {**learner.record(learner_state), **means}
    record = jax.tree.map(
        lambda a: jnp.where(healthy, a, jnp.nan) if jnp.issubdtype(a.dtype, jnp.floating) else a,
        record,
    )
    return learner_state, (record.pop("squared_error"), record)


# ---------------------------------------------------------------------------------------------
# The lane program: configurations × seeds in one compiled computation, cached by structure


class LaneSpec(NamedTuple):
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


class Program(NamedTuple):
    """A lane program (compiled by ``jax.jit`` on first use) and what its structure fixes."""

    init: Callable  # (parameters, seeds [S]) -> Carry with leading [configurations, seeds]
    run_bins: Callable  # (parameters, carry, threshold, num_bins) -> (carry, records)
    metric_names: tuple[str, ...]
    state_bytes: int  # one lane's learner and problem states
    block_bytes: int  # one block of one lane's samples
    record_bytes: int  # one lane's records of one bin

    def lane_bytes(self, num_bins: int) -> int:
        return self.state_bytes + self.block_bytes + num_bins * self.record_bytes


def map_lanes(function, in_axes, axis_size=None, single: bool = False):
    """``jax.vmap`` over an axis of lanes, or with ``single`` (one lane) ``function`` itself on
    the inputs' only lane: the same operations without a batch axis of size one (which XLA
    compiles into slower loops). ``in_axes``: 0 or None per argument."""
    if not single:
        return jax.vmap(function, in_axes=in_axes, axis_size=axis_size)

    def one_lane(*args):
        args = [arg if axis is None else jax.tree.map(lambda a: a[0], arg)
                for arg, axis in zip(args, in_axes)]
        return jax.tree.map(lambda a: a[None], function(*args))

    return one_lane


def over_configs_and_seeds(function, config_axes, seed_axes, num_configs=None,
                           single: bool = False):
    return map_lanes(map_lanes(function, seed_axes, single=single), config_axes, num_configs,
                     single)


def init_lanes(spec: LaneSpec, parameters, seeds) -> Carry:
    """The carry of configurations × ``seeds``: lane ``(c, s)`` from ``PRNGKey(seeds[s])``."""
    axis = spec.config_axis
    num_configs = 1 if axis is None else jax.tree.leaves(parameters)[0].shape[axis]
    single = axis is None and len(seeds) == 1
    problem_keys, learner_keys = map_lanes(split_seed, (0,), single=single)(seeds).swapaxes(0, 1)
    learner_states = over_configs_and_seeds(
        lambda p, key: spec.build_learner(p).init(key), (axis, None), (None, 0), num_configs,
        single,
    )(parameters, learner_keys)
    if spec.shared_stream:
        problem_init = spec.build_problem(parameters).init
        problem_states = map_lanes(problem_init, (0,), single=single)(problem_keys)
    else:
        problem_states = over_configs_and_seeds(
            lambda p, key: spec.build_problem(p).init(key), (axis, None), (None, 0), num_configs,
            single,
        )(parameters, problem_keys)
    lane_zeros = jnp.zeros((num_configs, len(seeds)), jnp.uint32)
    return Carry(problem_states, learner_states, lane_zeros, lane_zeros)


def run_lane_bins(spec: LaneSpec, record_every: int, block_steps: int, metric_names,
                  parameters, carry: Carry, threshold, num_bins: int, unroll: int = 1,
                  sliced: bool = False):
    """``num_bins`` record bins of every lane: the carry, and records [bins, configs, seeds, ...]
    (the mean squared error, the learner's records and the problem's info). ``unroll`` and
    ``sliced``: as for :func:`learner_loop`."""
    axis = spec.config_axis
    single = axis is None and carry.step.shape == (1, 1)
    sample_config_axis = None if spec.shared_stream else 0
    time_axis = 1 if spec.shared_stream else 2

    def generate(problem_states, num_steps):
        if spec.shared_stream:
            problem = spec.build_problem(parameters)
            return map_lanes(lambda state: problem.generate(state, num_steps), (0,),
                             single=single)(problem_states)
        return over_configs_and_seeds(
            lambda p, state: spec.build_problem(p).generate(state, num_steps),
            (axis, 0), (None, 0), single=single,
        )(parameters, problem_states)

    def learn(lanes: Lane, samples):
        def lane_scan(p, lane, x, y):
            return learner_loop(spec.build_learner(p), lane, x, y, threshold, unroll,
                                sliced)

        return over_configs_and_seeds(
            lane_scan, (axis, 0, sample_config_axis, sample_config_axis), (None, 0, 0, 0),
            single=single,
        )(parameters, lanes, samples.x, samples.y)

    def end_lane_bin(p, start_state, lane):
        return end_bin(spec.build_learner(p), start_state, lane, record_every)

    def bin_body(carry: Carry, _):
        lanes = Lane(carry.learner_state, carry.diverged_at, carry.step,
                      zero_sums(metric_names, carry.step.shape))
        problem_states, lanes, info = feed_bin(
            generate, learn, carry.problem_state, lanes, record_every, block_steps,
            lambda info: jax.tree.map(lambda a: jnp.take(a, -1, axis=time_axis), info),
        )
        learner_states, (mean_squared_error, record) = over_configs_and_seeds(
            end_lane_bin, (axis, 0, 0), (None, 0, 0), single=single
        )(parameters, carry.learner_state, lanes)
        info = jax.tree.map(
            lambda a: jnp.broadcast_to(a, mean_squared_error.shape + a.shape[time_axis:]), info,
        )
        new_carry = Carry(problem_states, learner_states, lanes.diverged_at, lanes.step)
        return new_carry, (mean_squared_error, record, info)

    return jax.lax.scan(bin_body, carry, None, length=num_bins)


def nbytes(tree) -> int:
    return sum(math.prod(a.shape) * np.dtype(a.dtype).itemsize for a in jax.tree.leaves(tree))


def unroll_for(record_every: int) -> int:
    """The steps per iteration of an unrolled scan in bins of ``record_every`` steps: the largest
    power of two up to :data:`SINGLE_LANE_UNROLL` that divides it (every block is a multiple)."""
    unroll = SINGLE_LANE_UNROLL
    while record_every % unroll:
        unroll //= 2
    return unroll


def scan_unroll(spec: LaneSpec, learner, learner_state, x, y, record_every: int) -> int:
    """Steps per loop iteration of the learner's scan: :func:`unroll_for` for a single lane whose
    step is cheap (at most :data:`CHEAP_STEP_OPERATIONS` operations), where the loop's own cost
    per iteration would otherwise dominate (about a third of a linear learner's run); else 1 (a
    costly step, or many lanes, hide it, and unrolling multiplies compile time). Unrolling may
    round differently (XLA may fuse operations of consecutive steps)."""
    if spec.config_axis is not None:
        return 1
    operations = count_operations(jax.make_jaxpr(learner.step)(learner_state, x, y).jaxpr)
    return unroll_for(record_every) if operations <= CHEAP_STEP_OPERATIONS else 1


def sliced_scan(learner_state, x, y, unroll: int) -> bool:
    """Whether an unrolled scan runs in slices of ``unroll`` steps (:func:`learner_loop`): when
    each slice of the samples and each array of the learner's state fit in
    :data:`SMALL_BUFFER_BYTES`.

    XLA's CPU runtime runs the kernels of a loop body one after another only when every buffer
    that they touch is that small; otherwise it hands the kernels that are ready to other
    threads, which, for the many tiny kernels of a cheap step, costs more than the kernels
    (SwiftTD on 19 features: its single lane three times as fast in slices, on 2 CPU cores).
    A block of samples is large; a slice of a few steps is small.
    """
    if unroll == 1:
        return False
    rows = jax.tree.leaves((x, y))
    state_bytes = max((nbytes(leaf) for leaf in jax.tree.leaves(learner_state)), default=0)
    return (state_bytes <= SMALL_BUFFER_BYTES
            and max(unroll * nbytes(row) for row in rows) <= SMALL_BUFFER_BYTES)


def count_operations(jaxpr) -> int:
    """The equations of ``jaxpr``, those of the jaxprs nested in them included."""
    count = 0
    for equation in jaxpr.eqns:
        count += 1
        for value in equation.params.values():
            for inner in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(inner, "jaxpr", inner)
                if hasattr(inner, "eqns"):
                    count += count_operations(inner)
    return count


def lane_program(spec: LaneSpec, learner, problem, record_every: int,
                 block_steps: int) -> Program:
    """The program of ``spec``'s lanes; ``learner`` and ``problem`` (one configuration's, built
    with Python numbers) give the shapes, from ``jax.eval_shape``: nothing is compiled here."""
    key = jax.random.PRNGKey(0)
    learner_state = jax.eval_shape(learner.init, key)
    problem_state = jax.eval_shape(problem.init, key)
    block = jax.eval_shape(lambda state: problem.generate(state, block_steps)[1], problem_state)
    # One step's x and y (y may be a pytree: a TD stream's reward, discount and true value).
    x, y = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), (block.x, block.y))
    metric_names = metric_names_of(learner, learner_state, x, y)
    record = jax.eval_shape(learner.record, learner_state)
    float_bytes = jnp.zeros((), jnp.result_type(float)).dtype.itemsize
    unroll = scan_unroll(spec, learner, learner_state, x, y, record_every)
    return Program(
        init=jax.jit(functools.partial(init_lanes, spec)),
        run_bins=jax.jit(
            functools.partial(run_lane_bins, spec, record_every, block_steps, metric_names,
                              unroll=unroll, sliced=sliced_scan(learner_state, x, y, unroll)),
            static_argnums=3,
        ),
        metric_names=metric_names,
        state_bytes=nbytes((learner_state, problem_state)),
        block_bytes=nbytes(block),
        record_bytes=nbytes(record) + nbytes(block) // block_steps
        + len(metric_names) * float_bytes,
    )


# Compiled lane programs, least recently used first; a key holds the structures (and so keeps
# alive the objects that it compares by identity, whose ids cannot then be reused).
PROGRAMS: collections.OrderedDict[Any, Program] = collections.OrderedDict()
# Keys whose floats could not be traced (a factory needed a concrete value).
UNTRACEABLE: set = set()
CONCRETIZATION_ERRORS = (jax.errors.ConcretizationTypeError,
                          jax.errors.TracerArrayConversionError,
                          jax.errors.TracerIntegerConversionError)


def cached_program(key, make: Callable[[], Program]) -> Program:
    program = PROGRAMS.get(key)
    if program is None:
        program = PROGRAMS[key] = make()
        while len(PROGRAMS) > CACHED_PROGRAMS:
            PROGRAMS.popitem(last=False)
    PROGRAMS.move_to_end(key)
    return program


def clear_cache() -> None:
    """Forget every compiled lane program (the next calls compile again)."""
    PROGRAMS.clear()
    UNTRACEABLE.clear()
