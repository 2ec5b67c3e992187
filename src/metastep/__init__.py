"""metastep: meta-learned step sizes for structural credit assignment, in JAX and optax.

The map, from data to report:

- a **Problem** (``ms.problems``): a pure JAX stream of examples;
- a **method** (``ms.idbd``, ``ms.autostep``, ``ms.adam``, ...): an optax
  ``GradientTransformation`` that meta-learns its step sizes;
- a **learner** (``ms.LinearLearner``, ``ms.deep.DeepLearner``, or any object that follows the
  protocol ``ms.Learner``): the model that the method updates, predicting before each update;
- **run / sweep** (``ms.run``, ``ms.sweep``): the engine that streams a problem through a learner,
  one run or a grid of lanes at once, into a ``RunResult`` or ``SweepResult``
  (``ms.sweep_together``: several learners' sweeps on one stream, in one compiled program);
- an **Experiment** (``metastep.experiments``): one paper's experiment, declared as shards, each
  computing one tidy table (from ``run``/``sweep``) at a budget (smoke, quick, full);
- a **run directory** (``metastep.report.run_experiment``, ``RunDirectory``): the shards' tables
  stored as they come, with configuration, provenance and checksums, resumable;
- the **report** (``metastep.report.build_report``): headline numbers, figures and one page,
  rebuilt from the run directory alone.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _package_version

from metastep import deep, methods, problems, td
from metastep.engine import run, run_arrays, sweep
from metastep.together import sweep_together
from metastep._learner_protocol import Learner, StepOutput
from metastep.learner import LinearLearner, LinearLearnerState
from metastep.methods import (
    adam,
    adam_hypergradient,
    autostep,
    delta_delta,
    hypergradient,
    idbd,
    metaoptimize,
    normalized_idbd,
    rmsprop,
    sgd,
    smd,
    step_sizes,
)
from metastep.results import RunArraysResult, RunResult, SweepResult
from metastep.summary import best, summarize

try:
    __version__ = _package_version("metastep")
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Learner",
    "LinearLearner",
    "LinearLearnerState",
    "RunArraysResult",
    "RunResult",
    "StepOutput",
    "SweepResult",
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
    "normalized_idbd",
    "problems",
    "rmsprop",
    "run",
    "run_arrays",
    "sgd",
    "smd",
    "step_sizes",
    "summarize",
    "sweep",
    "sweep_together",
    "td",
]
