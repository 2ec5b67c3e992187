"""Checks of the arguments of the engine's entry points (:func:`metastep.run`,
:func:`metastep.run_arrays`, :func:`metastep.sweep`): each error names the argument."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metastep._checks import as_count, check_real
from metastep.problems._base import Problem

# The step counters (the engine's and the problems') are uint32.
MAX_STEPS = 2**32 - 1


def check_schedule(steps, record_every) -> tuple[int, int, int]:
    steps = as_count("steps", steps)
    record_every = as_count("record_every", record_every)
    if steps > MAX_STEPS:
        raise ValueError(
            f"`steps` must be < 2**32 (the step counters are 32-bit unsigned), got {steps}"
        )
    if steps % record_every:
        raise ValueError(
            f"`steps` ({steps}) must be a multiple of `record_every` ({record_every})"
        )
    return steps, record_every, steps // record_every


def check_seed(seed, name: str = "seed") -> np.uint32:
    """A seed in [0, 2³²), as the uint32 that ``PRNGKey`` takes (never wrapped)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        what = "be an integer" if name == "seed" else "hold integers"
        raise ValueError(f"`{name}` must {what} in [0, 2**32), got {seed!r}")
    return np.uint32(seed)


def check_problem(problem):
    if not isinstance(problem, Problem):
        raise ValueError(
            f"`problem` must be a metastep Problem (e.g. ms.problems.weight_flipping()), "
            f"got {type(problem).__name__}"
        )


def check_learner(learner, problem=None):
    for name in ("init", "step", "record"):
        if not callable(getattr(learner, name, None)):
            raise ValueError(f"`learner` must have init, step and record methods; missing {name!r}")
    expected = getattr(learner, "num_features", None)
    if problem is not None and expected is not None and expected != problem.num_features:
        raise ValueError(
            f"`learner` expects {expected} features but `problem` {problem.name!r} gives "
            f"{problem.num_features}"
        )
    # An optional hook: e.g. a classifier checks that the problem's labels fit its outputs.
    check_problem = getattr(learner, "check_problem", None)
    if problem is not None and callable(check_problem):
        check_problem(problem)


def check_threshold(threshold) -> float:
    if isinstance(threshold, (str, bytes)) or np.iscomplexobj(threshold):
        raise ValueError(f"`divergence_threshold` must be a real number, got {threshold!r}")
    threshold = float(threshold)
    if not threshold > 0:
        raise ValueError(f"`divergence_threshold` must be > 0, got {threshold}")
    return threshold


def real_array(name: str, values) -> jax.Array:
    """``values`` as a JAX array of real numbers (bool, integer or float)."""
    check_real(name, values)
    return jnp.asarray(values)


def keyword_names(function: Callable) -> set[str] | None:
    """Names ``function`` accepts by keyword, or None when it takes ``**kwargs``."""
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {
        p.name for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


def select(values: dict[str, Any], accepted: set[str] | None) -> dict[str, Any]:
    return dict(values) if accepted is None else {k: v for k, v in values.items() if k in accepted}


def check_grid(grid) -> dict[str, np.ndarray]:
    if not isinstance(grid, dict) or not grid:
        raise ValueError("`grid` must be a non-empty dict: parameter name -> list of values")
    columns = {}
    for name, values in grid.items():
        values = np.asarray(values)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"`grid[{name!r}]` must be a non-empty 1-D list of numbers")
        if values.dtype.kind not in "biuf":
            raise ValueError(
                f"`grid[{name!r}]` must hold real numbers (a sweep vmaps over them); run one sweep "
                f"per structural choice instead, got {values.dtype}"
            )
        columns[name] = values
    return columns


def check_seeds(seeds) -> np.ndarray:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return np.arange(as_count("seeds", seeds))
    seeds = np.asarray(seeds)
    if seeds.ndim != 1 or seeds.size == 0 or not np.issubdtype(seeds.dtype, np.integer):
        raise ValueError("`seeds` must be a count or a non-empty list of integers")
    for seed in seeds:
        check_seed(seed, "seeds")
    return seeds.astype(np.int64)


def check_configurations(num_configs, config, build_learner, build_problem, learner_names,
                          problem_names):
    """Build the learner and the problem of every configuration from concrete numbers, so that
    their constructors check every value (inside ``vmap`` they see tracers, which they cannot
    check); each distinct learner and problem is built once.

    Returns the first configuration's learner and problem (they size the chunks).

    Raises:
      ValueError: naming the first configuration that a constructor rejects.
    """
    learners, problems = {}, {}
    for index in range(num_configs):
        values = config(index)
        learner_key = tuple(select(values, learner_names).items())
        problem_key = tuple(select(values, problem_names).items())
        try:
            if problem_key not in problems:
                problems[problem_key] = build_problem(values)
            if learner_key not in learners:
                learners[learner_key] = build_learner(values)
            check_learner(learners[learner_key], problems[problem_key])
        except ValueError as error:
            raise ValueError(f"grid configuration {index} {values}: {error}") from error
    return next(iter(learners.values())), next(iter(problems.values()))
