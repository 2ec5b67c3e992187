"""metastep: meta-learned step sizes for structural credit assignment, in JAX and optax."""

from metastep import deep, methods, problems
from metastep.engine import run, run_arrays, sweep
from metastep.learner import LinearLearner, LinearLearnerState, StepOutput
from metastep.methods import (
    adam,
    adam_hypergradient,
    autostep,
    delta_delta,
    hypergradient,
    idbd,
    metaoptimize,
    rmsprop,
    sgd,
    smd,
    step_sizes,
)
from metastep.results import RunResult, SweepResult, Trace
from metastep.summary import best, summarize

__version__ = "0.1.0"

__all__ = [
    "LinearLearner",
    "LinearLearnerState",
    "RunResult",
    "StepOutput",
    "SweepResult",
    "Trace",
    "adam",
    "adam_hypergradient",
    "autostep",
    "best",
    "deep",
    "delta_delta",
    "hypergradient",
    "idbd",
    "metaoptimize",
    "methods",
    "problems",
    "rmsprop",
    "run",
    "run_arrays",
    "sgd",
    "smd",
    "step_sizes",
    "summarize",
    "sweep",
]
