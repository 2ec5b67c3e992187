"""metastep: meta-learned step sizes for structural credit assignment, in JAX and optax."""

from metastep import methods, problems
from metastep.engine import RunResult, SweepResult, Trace, run, run_arrays, sweep
from metastep.learner import LinearLearner, LinearLearnerState, StepOutput
from metastep.methods import idbd, step_sizes

__version__ = "0.1.0"

__all__ = [
    "LinearLearner",
    "LinearLearnerState",
    "RunResult",
    "StepOutput",
    "SweepResult",
    "Trace",
    "idbd",
    "methods",
    "problems",
    "run",
    "run_arrays",
    "step_sizes",
    "sweep",
]
