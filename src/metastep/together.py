"""Several sweeps side by side, as one compiled program: :func:`sweep_together`.

On a CPU, compiling a sweep's lane program often costs more than running it at small budgets,
and much of a program is the same from one learner to the next: the problem's stream, the loops
over record bins and blocks, the records. :func:`sweep_together` runs the sweeps of several
learners (each with its own ``make_learner`` and grid) side by side in one program: each seed's
stream of a problem is drawn once, for every configuration of every sweep on that problem, and
each sweep's lanes are ``vmap``ped over its own configurations (four one-weight sweeps of noisy
tracking compile in about a third of the time of four programs).

A lane computes exactly what it computes in :func:`metastep.sweep` (its learner, its divergence,
its records; no lane reads another's), within another program that XLA compiles on its own
terms: a result matches the sweep run alone up to rounding (see :mod:`metastep.engine`); on the
tests' streams it is the same bit for bit.

Every configuration of every sweep runs in each chunk; the chunks are blocks of seeds, as many
as fit :func:`metastep.engine.chunk_memory_bytes`.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from metastep import _checkpoints, _lanes
from metastep._engine_arguments import (
    check_configurations,
    check_grid,
    check_problem,
    check_seeds,
    keyword_names,
    select,
)
from metastep._learner_protocol import DEFAULT_DIVERGENCE_THRESHOLD
from metastep._structure import Identity, split
from metastep.engine import _padded, _plan, _run_lanes, _show_progress, chunk_memory_bytes
from metastep.problems._base import Problem, Sample
from metastep.results import SweepResult


def init_together(specs, streams, parameters, seeds) -> _lanes.Carry:
    """The carry of every sweep's configurations × ``seeds`` (learner states, divergence flags
    and step counts: a tuple with one entry per sweep) and of each problem's state per seed (a
    tuple, ``streams[i]`` the index of the first sweep on problem ``i``), as
    :func:`metastep._lanes.init_lanes` makes them; the seeds' keys are split once for all."""
    problem_keys, learner_keys = jax.vmap(_lanes.split_seed)(seeds).swapaxes(0, 1)

    def learner_states(spec, values):
        return _lanes.over_configs_and_seeds(
            lambda p, key: spec.build_learner(p).init(key), (0, None), (None, 0), len(values),
        )(values, learner_keys)

    lane_zeros = tuple(jnp.zeros((len(values), len(seeds)), jnp.uint32) for values in parameters)
    return _lanes.Carry(
        tuple(jax.vmap(specs[first].build_problem(None).init)(problem_keys) for first in streams),
        tuple(map(learner_states, specs, parameters)), lane_zeros, lane_zeros)


def run_together_bins(specs, streams, stream_of, record_every: int, block_steps: int,
                      metric_names, parameters, carry: _lanes.Carry, threshold, num_bins: int):
    """``num_bins`` record bins of every sweep's lanes on the shared streams: the carry, and per
    sweep its records [bins, configurations, seeds, ...] as :func:`metastep._lanes.run_lane_bins`
    gives them (mean squared error, the learner's records, the problem's info). Sweep ``i``
    reads stream ``stream_of[i]``: that of the problem of sweep ``streams[stream_of[i]]``."""
    problems = [specs[first].build_problem(None) for first in streams]

    def generate(problem_states, num_steps):
        states, samples = zip(*(
            jax.vmap(lambda state, problem=problem: problem.generate(state, num_steps))(states)
            for problem, states in zip(problems, problem_states)))
        return states, Sample(*(tuple(field) for field in zip(*samples)))

    def learn(lanes, samples):
        def one_sweep(spec, values, lane, stream):
            def lane_scan(p, lane, x, y):
                return _lanes.learner_scan(spec.build_learner(p), lane, x, y, threshold)[0]

            return _lanes.over_configs_and_seeds(lane_scan, (0, 0, None, None), (None, 0, 0, 0))(
                values, lane, samples.x[stream], samples.y[stream])

        return tuple(map(one_sweep, specs, parameters, lanes, stream_of))

    def end_sweep_bin(spec, values, start_states, lanes):
        def end_lane_bin(p, start_state, lane):
            return _lanes.end_bin(spec.build_learner(p), start_state, lane, record_every)

        return _lanes.over_configs_and_seeds(end_lane_bin, (0, 0, 0), (None, 0, 0))(
            values, start_states, lanes)

    def bin_body(carry: _lanes.Carry, _):
        lanes = tuple(_lanes.Lane(state, diverged_at, step, _lanes.zero_sums(names, step.shape))
                      for state, diverged_at, step, names in zip(
                          carry.learner_state, carry.diverged_at, carry.step, metric_names))
        problem_states, lanes, info = _lanes.feed_bin(
            generate, learn, carry.problem_state, lanes, record_every, block_steps,
            lambda info: jax.tree.map(lambda a: jnp.take(a, -1, axis=1), info),
        )
        ends = tuple(map(end_sweep_bin, specs, parameters, carry.learner_state, lanes))
        records = tuple(
            (mean_squared_error, record, jax.tree.map(
                lambda a, shape=mean_squared_error.shape: jnp.broadcast_to(a, shape + a.shape[1:]),
                info[stream]))
            for (_, (mean_squared_error, record)), stream in zip(ends, stream_of))
        new_carry = _lanes.Carry(problem_states, tuple(state for state, _ in ends),
                                 tuple(lane.diverged_at for lane in lanes),
                                 tuple(lane.step for lane in lanes))
        return new_carry, records

    return jax.lax.scan(bin_body, carry, None, length=num_bins)


def _check_sweep(name: str, make_learner, grid, problem: Problem):
    """The grid of sweep ``name`` as float64 configurations and typed columns, every
    configuration built with Python numbers (as :func:`metastep.sweep` does), and its first
    learner."""
    try:
        columns = check_grid(grid)
        learner_names = keyword_names(make_learner)
        for parameter in columns:
            if learner_names is not None and parameter not in learner_names:
                raise ValueError(f"grid parameter {parameter!r} is not accepted by "
                                 "`make_learner`")
        configs = np.array(list(itertools.product(*columns.values())), dtype=np.float64)
        grid_values = {key: configs[:, i].astype(columns[key].dtype)
                       for i, key in enumerate(columns)}
        learner0, _ = check_configurations(
            len(configs), lambda index: {key: values[index].item()
                                         for key, values in grid_values.items()},
            lambda values: make_learner(**select(values, learner_names)), lambda _: problem,
            learner_names, {})
    except ValueError as error:
        raise ValueError(f"`sweeps[{name!r}]`: {error}") from error
    return configs, grid_values, learner0


def _lane_spec(make_learner, names, problem: Problem) -> _lanes.LaneSpec:
    learner_names = keyword_names(make_learner)
    return _lanes.LaneSpec(
        build_learner=lambda row: make_learner(**select(dict(zip(names, row)), learner_names)),
        build_problem=lambda _: problem, config_axis=0, shared_stream=True,
    )


def sweep_together(
    sweeps: Mapping[str, tuple[Callable[..., Any], dict[str, Any]]],
    problem: Problem | Mapping[str, Problem],
    seeds: int | list[int] = 10,
    steps: int = 10_000,
    record_every: int = 1_000,
    *,
    divergence_threshold: float = DEFAULT_DIVERGENCE_THRESHOLD,
    chunk_steps: int | None = None,
    block_steps: int | None = None,
    progress: bool | None = None,
) -> dict[str, SweepResult]:
    """The sweeps ``name -> (make_learner, grid)``, side by side in one program.

    Each result is that of ``ms.sweep(make_learner, its problem, grid, seeds, steps,
    record_every)`` (see the module docstring); the program is cached by the sweeps' names,
    ``make_learner`` function objects and grid parameter names, and by the problems'
    structures.

    Args:
      sweeps: name -> ``(make_learner, grid)``, each as for :func:`metastep.sweep` (the grid's
        parameters are the learner's).
      problem: the Problem of every sweep, or sweep name -> its Problem; the sweeps given the
        same Problem object read one stream per seed. Their floats are compiled in.
      seeds, steps, record_every, divergence_threshold, chunk_steps, block_steps, progress: as
        for :func:`metastep.sweep`.

    Raises:
      ValueError: on a bad argument, or a configuration that a ``make_learner`` rejects (the
        message names the sweep and the configuration).
    """
    if not isinstance(sweeps, Mapping) or not sweeps:
        raise ValueError("`sweeps` must be a non-empty dict: name -> (make_learner, grid)")
    problems = _problems_of(sweeps, problem)
    seed_values = check_seeds(seeds)
    plan = _plan(steps, record_every, divergence_threshold, chunk_steps, block_steps)
    for name, pair in sweeps.items():
        if not (isinstance(pair, tuple) and len(pair) == 2 and callable(pair[0])):
            raise ValueError(f"`sweeps[{name!r}]` must be a pair (make_learner, grid)")
    checked = {name: _check_sweep(name, *pair, problems[name]) for name, pair in sweeps.items()}
    specs = tuple(_lane_spec(sweeps[name][0], list(grid_values), problems[name])
                  for name, (_, grid_values, _) in checked.items())
    # Bytes per seed: every configuration of every sweep (each lane as ms.sweep sizes it).
    seed_bytes = sum(len(configs) * _lanes.lane_program(
        spec, learner0, problems[name], plan.record_every, plan.block_steps,
    ).lane_bytes(plan.num_bins) for spec, (name, (configs, _, learner0))
        in zip(specs, checked.items()))
    program = _together_program(sweeps, checked, specs, problems, plan)
    seeds_per_chunk = max(1, min(len(seed_values), chunk_memory_bytes() // seed_bytes))
    parameters = tuple(jnp.asarray(configs, jnp.result_type(float))
                       for configs, _, _ in checked.values())
    lanes_per_seed = sum(len(configs) for configs, _, _ in checked.values())
    work = lanes_per_seed * len(seed_values) * plan.steps
    described = {name: f"{problem.name} {problem.params!r}" for name, problem in problems.items()}
    with tqdm(total=work, unit="lane-step", unit_scale=True, desc="sweep_together",
              disable=not _show_progress(progress, work), leave=False) as bar, \
            _checkpoints.engine_call(f"sweep_together {described}"):
        parts = []
        for first_seed in range(0, len(seed_values), seeds_per_chunk):
            chunk_seeds, real_seeds = _padded(seed_values, first_seed, seeds_per_chunk)
            carry, records = _run_lanes(program, plan, parameters,
                                        jnp.asarray(chunk_seeds, jnp.uint32), bar,
                                        lanes_per_seed * real_seeds, f"seeds-{first_seed}")
            parts.append(jax.tree.map(lambda a, real=real_seeds: np.asarray(a)[:, :real],
                                      (carry.diverged_at, records)))
    diverged_at, records = jax.tree.map(lambda *chunks: np.concatenate(chunks, axis=1), *parts)
    return {
        name: SweepResult(
            grid=grid_values, seeds=seed_values,
            steps=plan.record_every * np.arange(1, plan.num_bins + 1),
            squared_error=np.asarray(squared_error, np.float64).astype(jnp.result_type(float)),
            records=sweep_records, info=info, diverged_at=sweep_diverged.astype(np.int64),
            parameters={"steps": plan.steps, "record_every": plan.record_every,
                        "divergence_threshold": plan.threshold},
        )
        for (name, (_, grid_values, _)), sweep_diverged, (squared_error, sweep_records, info)
        in zip(checked.items(), diverged_at, records)
    }


def _problems_of(sweeps, problem) -> dict[str, Problem]:
    """Sweep name -> its problem, checked."""
    if not isinstance(problem, Mapping):
        check_problem(problem)
        return dict.fromkeys(sweeps, problem)
    if set(problem) != set(sweeps):
        raise ValueError(f"`problem` must name the sweeps {sorted(sweeps)}, got "
                         f"{sorted(problem)}")
    for each in problem.values():
        check_problem(each)
    return {name: problem[name] for name in sweeps}


def _together_program(sweeps, checked, specs, problems: dict[str, Problem],
                      plan) -> _lanes.Program:
    """The cached program of the sweeps (compiled by ``jax.jit`` on first use); only its
    ``init`` and ``run_bins`` are used."""
    metric_names = tuple(
        _lanes.metric_names_of(learner0, *_one_step_shapes(learner0, problems[name],
                                                            plan.block_steps))
        for name, (_, _, learner0) in checked.items())
    # The streams: one per distinct Problem object, named by the index of its first sweep.
    first_sweep = {}
    for index, problem in enumerate(problems.values()):
        first_sweep.setdefault(id(problem), index)
    streams = tuple(first_sweep.values())
    stream_of = tuple(streams.index(first_sweep[id(problem)]) for problem in problems.values())
    key = ("sweep_together",
           tuple((name, Identity(sweeps[name][0]), tuple(grid_values))
                 for name, (_, grid_values, _) in checked.items()),
           tuple(split(problems[name], trace_floats=False)[0] for name in checked), stream_of,
           plan.record_every, plan.block_steps, jnp.result_type(float))
    return _lanes.cached_program(key, lambda: _lanes.Program(
        init=jax.jit(functools.partial(init_together, specs, streams)),
        run_bins=jax.jit(functools.partial(run_together_bins, specs, streams, stream_of,
                                           plan.record_every, plan.block_steps, metric_names),
                         static_argnums=3),
        metric_names=metric_names, state_bytes=0, block_bytes=0, record_bytes=0,
    ))


def _one_step_shapes(learner, problem: Problem, block_steps: int):
    """The learner's state and one step's x and y, as shapes."""
    key = jax.random.PRNGKey(0)
    problem_state = jax.eval_shape(problem.init, key)
    block = jax.eval_shape(lambda state: problem.generate(state, block_steps)[1], problem_state)
    x, y = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), (block.x, block.y))
    return jax.eval_shape(learner.init, key), x, y
