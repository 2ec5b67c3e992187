"""The roster of the continual benchmarks, and the learner that trains it side by side.

The roster (:func:`roster`), in three families (:data:`FAMILIES`):

* ``tuned``: SGD, Adam and RMSprop (``ms.sgd``, ``ms.adam``, ``ms.rmsprop``), their step size
  swept around a centre that each experiment chooses; reported at their best step size.
* ``meta``: IDBD, Autostep, SMD, MetaOptimize, Adam-HD and normalized IDBD (the candidate for one
  default, ``ms.normalized_idbd``, in its two forms: over RMSprop-normalized gradients, the
  default, and over plain gradients, ``normalize_gradients=False``), every hyperparameter at the
  library's default (their meta step size is swept around it, to measure the sensitivity); IDBD,
  Autostep, SMD and normalized IDBD read the Gauss-Newton curvature (``ms.deep.extra_args``), the
  others only the gradient.
* ``free``: the learning-rate-free peers of ``optax.contrib``: Prodigy (its learning-rate
  factor), Mechanic around ``optax.adam`` (the base learning rate) and schedule-free AdamW (its
  learning rate), at optax's defaults and swept around them. Schedule-free predicts with the point
  where it takes the gradient (``y``), as every other method does; its average ``x`` is not used.

Each method's grid is ``centre × 10^(spacing × k)`` for ``k = −(P − 1)/2 .. (P − 1)/2`` (``P`` =
``points``, odd, so the default is on it). All the methods train side by side in **one** compiled
program (:class:`RosterLearner`): on a CPU the compilation of a program (5–20 s) costs more than
running it at the small budgets, and one program for the whole roster compiles about four times
faster than one per method. In a lane every method starts from the same initial weights and reads
the same stream: a paired comparison.

Divergence: a method whose squared error (``2 ×`` its loss) is not finite or exceeds
``metastep.engine.DEFAULT_DIVERGENCE_THRESHOLD`` stops counting; its metrics and step sizes are
NaN from the record bin where that happened onwards (the engine's convention); the others go on.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import metastep as ms
from metastep._learner_protocol import StepOutput, diverges, log10_step_sizes
from metastep.experiments._base import SweptMethod

FAMILIES = {
    "tuned": ("sgd", "adam", "rmsprop"),
    "meta": ("idbd", "autostep", "smd", "metaoptimize", "adam-hd", "normalized-idbd",
             "normalized-idbd-plain"),
    "free": ("prodigy", "mechanic", "schedule-free-adamw"),
}
ROSTER = tuple(name for names in FAMILIES.values() for name in names)  # every method, in order
FAMILY = {name: family for family, names in FAMILIES.items() for name in names}
# The methods that read the curvature.
GAUSS_NEWTON = ("idbd", "autostep", "smd", "normalized-idbd", "normalized-idbd-plain")
FEATURED_METHODS = ("idbd", "autostep", "normalized-idbd")  # in the step-size heatmaps
# Mechanic's documentation: "base learning rate set to 1.0 (or any other constant)".
MECHANIC_BASE_LEARNING_RATE = 1.0


def library_default(function: Callable, parameter: str) -> float:
    """The default of ``parameter`` in ``function``'s signature: the "one default setting"."""
    return float(inspect.signature(function).parameters[parameter].default)


def mechanic_adam(base_learning_rate=MECHANIC_BASE_LEARNING_RATE):
    """Mechanic (Cutkosky et al. 2023) learning the scale of ``optax.adam``'s updates."""
    return optax.contrib.mechanize(optax.adam(base_learning_rate))


def curvature(method: SweptMethod) -> str:
    """The curvature signals that ``method`` reads in the roster (``ms.deep.DeepLearner``)."""
    return "gauss_newton" if method.name in GAUSS_NEWTON else "none"


def centred_grid(centre: float, spacing: float, points: int) -> tuple[float, ...]:
    """``points`` values (odd), ``spacing`` decades apart, ``centre`` in the middle."""
    if points < 1 or points % 2 == 0:
        raise ValueError(f"`points` must be odd and >= 1, got {points}")
    offsets = np.arange(points) - (points - 1) // 2
    return tuple((centre * 10.0 ** (spacing * offsets)).tolist())


def roster(names: Sequence[str], points: int,
           centres: Mapping[str, float]) -> tuple[SweptMethod, ...]:
    """The methods ``names``, in that order, each swept over ``points`` values around its
    centre: where ``centres`` says (the ``tuned`` ones), else its default."""
    unknown = set(names) - set(ROSTER)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; known: {', '.join(ROSTER)}")

    def grid(name: str, spacing: float, function: Callable, parameter: str) -> tuple[float, ...]:
        centre = centres.get(name, library_default(function, parameter))
        return centred_grid(centre, spacing, points)

    def tuned(name: str, function: Callable) -> tuple[float, ...]:
        return grid(name, 0.5, function, "learning_rate")

    def meta(name: str, function: Callable) -> tuple[float, ...]:
        return grid(name, 1.0, function, "meta_step_size")

    contrib = optax.contrib
    methods = (
        SweptMethod("sgd", "SGD", "learning_rate", "α", tuned("sgd", ms.sgd), ms.sgd,
                    color="0.45", linestyle=":"),
        SweptMethod("adam", "Adam", "learning_rate", "η", tuned("adam", ms.adam), ms.adam),
        SweptMethod("rmsprop", "RMSprop", "learning_rate", "η", tuned("rmsprop", ms.rmsprop),
                    ms.rmsprop, color="0.45", linestyle="--"),
        SweptMethod("idbd", "IDBD", "meta_step_size", "θ", meta("idbd", ms.idbd), ms.idbd,
                    color="tab:red"),
        SweptMethod("autostep", "Autostep", "meta_step_size", "μ",
                    meta("autostep", ms.autostep), ms.autostep, color="tab:orange"),
        SweptMethod("smd", "SMD", "meta_step_size", "μ", meta("smd", ms.smd), ms.smd,
                    color="tab:purple"),
        SweptMethod("metaoptimize", "MetaOptimize", "meta_step_size", "η",
                    meta("metaoptimize", ms.metaoptimize),
                    functools.partial(ms.metaoptimize, "adam", "adam"), color="tab:brown"),
        SweptMethod("adam-hd", "Adam-HD", "meta_step_size", "β",
                    meta("adam-hd", ms.adam_hypergradient), ms.adam_hypergradient,
                    color="tab:pink"),
        SweptMethod("normalized-idbd", "Normalized IDBD", "meta_step_size", "μ",
                    meta("normalized-idbd", ms.normalized_idbd), ms.normalized_idbd,
                    color="black"),
        SweptMethod("normalized-idbd-plain", "Normalized IDBD, plain gradients",
                    "meta_step_size", "μ", meta("normalized-idbd-plain", ms.normalized_idbd),
                    functools.partial(ms.normalized_idbd, normalize_gradients=False),
                    color="0.3", linestyle="--"),
        SweptMethod("prodigy", "Prodigy", "learning_rate", "factor",
                    grid("prodigy", 0.5, contrib.prodigy, "learning_rate"),
                    contrib.prodigy, color="tab:green", linestyle="-."),
        SweptMethod("mechanic", "Mechanic (Adam)", "base_learning_rate", "η",
                    grid("mechanic", 1.0, mechanic_adam, "base_learning_rate"), mechanic_adam,
                    color="tab:olive", linestyle="-."),
        SweptMethod("schedule-free-adamw", "Schedule-free AdamW", "learning_rate", "η",
                    grid("schedule-free-adamw", 0.5, contrib.schedule_free_adamw,
                         "learning_rate"),
                    contrib.schedule_free_adamw, color="tab:cyan", linestyle="-."),
    )
    by_name = {method.name: method for method in methods}
    return tuple(by_name[name] for name in names)


class RosterState(NamedTuple):
    learners: dict[str, Any]  # method -> DeepLearnerState
    diverged_at: dict[str, jax.Array]  # method -> int32 step count at divergence, 0 while healthy
    step: jax.Array  # int32 steps done


class RosterLearner:
    """The methods of a roster, each training its own copy of ``model``, on one stream.

    A learner for the engine: ``step`` steps every method on the same example and reports, per
    method, its metrics as ``"<method>/<metric>"`` (NaN once it diverged); the error that the
    engine watches is 0, so one method's divergence does not stop the others. ``record`` gives
    ``"<method>/log10_step_size"`` ``[L]``, the mean ``log₁₀ α`` of each parameter array.

    Args:
      model: a :class:`metastep.deep.Model`.
      loss: ``"squared"`` or ``"cross_entropy"``.
      methods: the roster.
      values: method name -> the value of its main parameter (possibly traced).
    """

    def __init__(self, model: ms.deep.Model, loss: str, methods: Sequence[SweptMethod],
                 values: Mapping[str, Any]):
        self.learners = {
            method.name: ms.deep.DeepLearner(
                model, method.transformation(values[method.name]), loss=loss,
                curvature=curvature(method))
            for method in methods
        }
        self.with_step_sizes = [method.name for method in methods
                                if FAMILY[method.name] != "free"]
        first = next(iter(self.learners.values()))
        self.num_features = first.num_features
        self.layer_names = first.layer_names
        self.metrics = ("accuracy", "loss") if loss == "cross_entropy" else ("squared_error",)

    def init(self, key: jax.Array) -> RosterState:
        zero = jnp.zeros((), jnp.int32)
        return RosterState({name: learner.init(key) for name, learner in self.learners.items()},
                           {name: zero for name in self.learners}, zero)

    def step(self, state: RosterState, x: jax.Array, y: jax.Array):
        step = state.step + 1
        learners, diverged_at, metrics = {}, {}, {}
        for name, learner in self.learners.items():
            learners[name], output = learner.step(state.learners[name], x, y)
            squared_error = jnp.square(output.error)
            previous = state.diverged_at[name]
            diverged_at[name] = jnp.where((previous == 0) & diverges(squared_error), step,
                                          previous)
            values = {"squared_error": squared_error, **output.metrics}
            for metric in self.metrics:
                metrics[f"{name}/{metric}"] = jnp.where(diverged_at[name] == 0, values[metric],
                                                        jnp.nan)
        zero = jnp.zeros((), squared_error.dtype)
        return RosterState(learners, diverged_at, step), StepOutput(zero, zero, zero, metrics)

    def record(self, state: RosterState) -> dict[str, jax.Array]:
        # The mean of log α only: DeepLearner.record's quantiles cost seconds of compilation.
        record = {}
        for name in self.with_step_sizes:
            step_sizes = self.learners[name].step_sizes(state.learners[name])
            means = jnp.stack([jnp.mean(logs) for logs in log10_step_sizes(step_sizes)])
            record[f"{name}/log10_step_size"] = jnp.where(state.diverged_at[name] == 0, means,
                                                          jnp.nan)
        return record
