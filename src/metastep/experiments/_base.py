"""The experiment protocol: what one experiment module declares, and what the runner does with it.

An experiment is one module of :mod:`metastep.experiments` (its file name without a leading
underscore; modules are found automatically) that ends with ``EXPERIMENT = Experiment(...)``.
It declares:

* ``budgets``: a :class:`Budget` for each of ``"smoke"`` (seconds: the tests), ``"quick"`` (the
  default: the whole suite in minutes on a laptop) and ``"full"`` (the papers' budgets);
* ``shards(budget)``: the independent units of work, each a :class:`Shard` whose ``compute()``
  returns one tidy table. Building the list computes nothing; the runner calls ``compute`` for
  the shards not yet stored, and stores each table as it comes, so an interrupted run loses at
  most the shard in progress. :meth:`Shard.of_call` makes a shard of a function and its
  arguments (a :class:`SweptMethod`, a problem, seeds, ...), which ``config.json`` records;
* ``summarize(tables, budget)``: the headline numbers (a nested dict of numbers), from the stored
  tables alone (``tables`` maps shard name -> table); finite at every ``published`` key, at
  every budget (NaN and inf are stored as null);
* ``figures(tables, budget)``: figure name -> ``matplotlib.figure.Figure`` (made without pyplot:
  no display, no global state), from the stored tables alone; the report saves them as PNG and
  SVG in a print style (:data:`metastep.report.build.FIGURE_STYLE`);
* ``published``: the reference numbers (or claims in words) to set beside the measured ones, each
  :class:`Published` with its kind (the paper's number, an independent simulation, theory) and
  how to judge it (a tolerance, or a check of the claim): the report's verdicts come from them;
* ``explanation``: markdown, what the experiment shows and how to read its figures;
* ``availability`` (optional): ``() -> str | None``, why the experiment cannot run on this machine
  (e.g. its data are missing: the text says how to get them), or None when it can. The runner
  then computes nothing and the report marks the experiment as skipped, with that text;
* ``quick_minutes`` (optional): about how many minutes ``metastep run NAME`` (the quick
  budget, report included) takes, as measured on a 2-core CPU (:data:`QUICK_MINUTES_MACHINE`);
  ``metastep list`` shows it. An approximate guide, not a promise: it varies with the machine
  and its load.

Tables are tidy: one row per (method, configuration, seed, record), with at least the columns
``method``, ``seed`` and ``step``; configuration parameters and measured values are further
columns. The runner adds the ``experiment`` column.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metastep.learner import LinearLearner
from metastep.problems import Problem

BUDGET_NAMES = ("smoke", "quick", "full")
# Shard and figure names become file names.
FILE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
EXPERIMENT_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
REQUIRED_COLUMNS = ("method", "seed", "step")
# How the experiments' ``quick_minutes`` were measured: one quick run of each, one after the
# other, its computation plus its part of the report, with other jobs sharing the machine.
QUICK_MINUTES_MACHINE = "a 2-core x86-64 CPU, JAX on CPU, no GPU (shared, under load)"


@dataclass(frozen=True)
class Budget:
    """How much work a run of an experiment does.

    Attributes:
      steps: the length of the experiment's main runs (what ``--steps`` overrides).
      seeds: the number of seeds, ``0 .. seeds - 1`` (what ``--seeds`` overrides).
      settings: the experiment's other sizes (grid points, window lengths, ...), JSON values.
      name: ``"smoke"``, ``"quick"`` or ``"full"``; set by :meth:`Experiment.budget`.
    """

    steps: int
    seeds: int
    settings: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self):
        for attribute in ("steps", "seeds"):
            value = getattr(self, attribute)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"budget `{attribute}` must be an integer >= 1, got {value!r}")

    @property
    def seed_list(self) -> list[int]:
        """The seeds: ``0 .. seeds - 1``."""
        return list(range(self.seeds))

    def record_every(self, records: int, steps: int | None = None, *,
                     period: int | None = None) -> int:
        """The record interval of a run of ``steps`` (default: ``self.steps``) steps: about
        ``records`` records per run, or per ``period`` steps when given (a task, a regime).

        It is the largest divisor of ``steps`` (and of ``period``) not above ``(period or
        steps) // records``: the engine needs ``steps`` to be a multiple of ``record_every``,
        ``--steps`` can be any number, and with ``period`` no record straddles two periods.
        """
        steps = self.steps if steps is None else steps
        span = steps if period is None else period
        common = math.gcd(steps, span)
        interval = max(1, min(common, span // records))
        while common % interval:
            interval -= 1
        return interval

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "steps": self.steps, "seeds": self.seeds,
                "settings": dict(self.settings)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Budget:
        return cls(steps=values["steps"], seeds=values["seeds"],
                   settings=dict(values.get("settings", {})), name=values.get("name", ""))


@dataclass(frozen=True)
class Shard:
    """One independent unit of work of an experiment.

    Attributes:
      name: unique within the experiment and file-safe (``[a-z0-9][a-z0-9_.-]*``): the results
        are stored as ``results/<experiment>/<name>.parquet``.
      compute: ``() -> pandas.DataFrame``, the tidy table (columns ``method``, ``seed``,
        ``step``, configuration parameters, values). Called only when the shard is not stored.
      parameters: every resolved parameter of the shard (problem, grid, seeds, steps, record
        interval, fixed hyperparameters), JSON values: written to ``config.json``.
      work: its cost in lane-steps (configurations × seeds × steps), for the progress bar's ETA.
      engine_lane_steps: the lane-steps that ``compute`` runs in the engine (what
        :func:`metastep.engine.progress_listener` counts), where that differs from ``work``
        (e.g. each lane runs a roster of methods): the progress bar moves by ``work /
        engine_lane_steps`` per engine lane-step. Default: ``work``.
    """

    name: str
    compute: Callable[[], Any]
    parameters: Mapping[str, Any]
    work: float
    engine_lane_steps: float | None = None

    @classmethod
    def of_call(cls, name: str, compute: Callable[..., Any], *, work: float,
                engine_lane_steps: float | None = None, **arguments: Any) -> Shard:
        """The shard that computes ``compute(**arguments)``, with ``arguments`` as its
        ``parameters`` (each in its JSON form, :func:`config_value`): ``config.json`` records
        the very objects that the computation reads."""
        return cls(name, functools.partial(compute, **arguments),
                   {key: config_value(value) for key, value in arguments.items()},
                   work=work, engine_lane_steps=engine_lane_steps)

    def __post_init__(self):
        if not FILE_NAME.fullmatch(self.name):
            raise ValueError(f"shard name {self.name!r} must match {FILE_NAME.pattern}")
        for attribute in ("work", "engine_lane_steps"):
            value = getattr(self, attribute)
            if value is not None and not value > 0:
                raise ValueError(f"shard {self.name!r}: `{attribute}` must be > 0, got {value}")


@dataclass(frozen=True)
class SweptMethod:
    """A method of an experiment and the sweep of its main hyperparameter.

    The learner is built from :meth:`transformation`, and a shard's ``config.json`` from
    :meth:`config`: the settings written down are the ones the run used.

    Attributes:
      name: its key in tables (the ``method`` column), summaries and shard names.
      title: its short name in figures.
      parameter: the swept hyperparameter: the tables' column, the grid's key in ``config.json``.
      symbol: the parameter's symbol in figures, e.g. ``"θ"``.
      grid: the values swept.
      optimizer: ``(value, **constants) -> optax.GradientTransformation``; ``value`` may be a
        traced number (``ms.sweep`` traces the grid).
      constants: the fixed hyperparameters, passed to ``optimizer`` by keyword.
      label: its long name in legends (default: ``title``).
      color, linestyle: its line in figures.
    """

    name: str
    title: str
    parameter: str
    symbol: str
    grid: tuple[float, ...]
    optimizer: Callable[..., Any]
    constants: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    color: str = "black"
    linestyle: str = "-"

    def __post_init__(self):
        if not self.grid:
            raise ValueError(f"method {self.name!r}: `grid` must hold at least one value")
        if not self.label:
            object.__setattr__(self, "label", self.title)

    def transformation(self, value: Any) -> Any:
        """The optax transformation at ``value`` of the swept parameter."""
        return self.optimizer(value, **self.constants)

    def config(self) -> dict[str, Any]:
        """What ``config.json`` records of the method: its name, grid and constants."""
        return {"method": self.name, self.parameter: list(self.grid), **self.constants}

    def linear_learners(self, num_features: int) -> Callable[..., LinearLearner]:
        """``make_learner`` for ``ms.sweep`` over ``{parameter: grid}``: the linear learner of
        ``num_features`` weights at the swept value."""

        def make_learner(**swept: Any) -> LinearLearner:
            return LinearLearner(self.transformation(swept[self.parameter]), num_features)

        return make_learner


# The parameters' symbols spelled out, for summary keys (``best_theta``).
SYMBOL_NAMES = {"α": "alpha", "θ": "theta", "μ": "mu", "η": "eta", "β": "beta"}


# What a reference number is: a paper's or talk's own number ("published"), a number of an
# independent simulation of the protocol ("simulation"), or one derived in closed form ("theory").
REFERENCE_KINDS = ("published", "simulation", "theory")


@dataclass(frozen=True)
class Published:
    """A reference result to set beside the measured one, and how to tell if it is reproduced.

    Attributes:
      key: the dotted path of the measured number in the experiment's summary, e.g.
        ``"lms.best_mse"`` (``summary.json`` holds it as ``weight-flipping.lms.best_mse``).
      value: the reference number, or the claim in words for a qualitative result.
      source: where it comes from, e.g. ``"Sutton 1992, Exp. 1"``.
      kind: one of :data:`REFERENCE_KINDS`: ``"published"`` (the paper's or talk's number),
        ``"simulation"`` (an independent simulation of the protocol) or ``"theory"``.
      tolerance: the measured number reproduces ``value`` when ``|measured − value| ≤
        tolerance`` (how precise the reference is: e.g. a number read off a figure).
      check: for a claim in words or a bound, ``measured -> bool``: whether the measured number
        bears the claim out. A row with neither ``tolerance`` nor ``check`` is not judged.
      short_budget: why the measured number is not expected to reproduce the reference below
        the full budget (e.g. the effect needs the paper's 1,000,000 steps).
      known_deviation: why the measured number is known to differ from the reference at every
        budget (e.g. an independent simulation finds the same deviation).
    """

    key: str
    value: float | str
    source: str
    kind: str = "published"
    tolerance: float | None = None
    check: Callable[[float], bool] | None = None
    short_budget: str | None = None
    known_deviation: str | None = None

    def __post_init__(self):
        if self.kind not in REFERENCE_KINDS:
            raise ValueError(f"{self.key}: `kind` must be one of {REFERENCE_KINDS}, "
                             f"got {self.kind!r}")
        if self.tolerance is not None:
            if isinstance(self.value, str):
                raise ValueError(f"{self.key}: a claim in words takes a `check`, not a "
                                 "`tolerance`")
            if not self.tolerance >= 0:
                raise ValueError(f"{self.key}: `tolerance` must be >= 0, got {self.tolerance}")


@dataclass(frozen=True)
class Experiment:
    """An experiment: see the module docstring for the meaning of each field.

    ``summarize`` must give a finite number at every ``published`` key, at every budget.
    """

    name: str
    description: str
    budgets: Mapping[str, Budget]
    shards: Callable[[Budget], list[Shard]]
    summarize: Callable[[dict[str, Any], Budget], dict[str, Any]]
    figures: Callable[[dict[str, Any], Budget], dict[str, Any]]
    published: list[Published]
    explanation: str
    availability: Callable[[], str | None] | None = None
    quick_minutes: float | None = None

    def __post_init__(self):
        if not EXPERIMENT_NAME.fullmatch(self.name):
            raise ValueError(f"experiment name {self.name!r} must be lowercase words joined by -")
        if "\n" in self.description.strip():
            raise ValueError(f"{self.name}: `description` must be one line")
        missing = set(BUDGET_NAMES) - set(self.budgets)
        if missing:
            raise ValueError(f"{self.name}: `budgets` lacks {sorted(missing)}")
        if self.quick_minutes is not None and not self.quick_minutes > 0:
            raise ValueError(f"{self.name}: `quick_minutes` must be > 0, got "
                             f"{self.quick_minutes}")

    def unavailable(self) -> str | None:
        """Why the experiment cannot run here (with how to fix it), or None when it can."""
        return None if self.availability is None else self.availability()

    def budget(self, name: str = "quick", *, steps: int | None = None,
               seeds: int | None = None) -> Budget:
        """The budget ``name``, with ``steps`` and ``seeds`` overridden where given."""
        if name not in BUDGET_NAMES:
            raise ValueError(f"budget must be one of {BUDGET_NAMES}, got {name!r}")
        budget = dataclasses.replace(self.budgets[name], name=name)
        if steps is not None:
            budget = dataclasses.replace(budget, steps=steps)
        if seeds is not None:
            budget = dataclasses.replace(budget, seeds=seeds)
        return budget


def sweep_table(result, method: str, **constants: Any):
    """A tidy table of a :class:`metastep.SweepResult`: ``method``, the constants given (fixed
    hyperparameters, labels), then the columns of ``result.to_pandas()`` (grid parameters,
    ``seed``, ``step``, ``squared_error``, ``diverged``, ``mean_step_size``)."""
    table = result.to_pandas()
    for position, (name, value) in enumerate({"method": method, **constants}.items()):
        table.insert(position, name, value)
    return table


def config_value(value: Any) -> Any:
    """The JSON form of a shard's argument, for ``config.json``: an object's ``config()``
    (:class:`SweptMethod`, a benchmark), a problem's ``params``, a ``functools.partial``'s
    :func:`call_parameters`, containers element by element, NumPy numbers as Python numbers."""
    if hasattr(value, "config"):
        return value.config()
    if isinstance(value, Problem):
        return dict(value.params)
    if isinstance(value, functools.partial):
        return call_parameters(value)
    if isinstance(value, Mapping):
        return {key: config_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [config_value(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def call_parameters(call: functools.partial) -> dict[str, Any]:
    """What ``config.json`` records of a call to be made later: the function's ``name`` and
    every argument, its defaults included (``call`` is a ``functools.partial`` that binds them
    all)."""
    bound = inspect.signature(call.func).bind(*call.args, **call.keywords)
    bound.apply_defaults()
    return {"name": call.func.__name__, **bound.arguments}


def lookup(summary: Mapping[str, Any], key: str) -> Any:
    """The value at dotted ``key`` of a nested summary; KeyError names the missing part."""
    value: Any = summary
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(f"summary has no {key!r} (missing {part!r})")
        value = value[part]
    return value


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is a real number (bools included) that is finite."""
    try:
        return bool(np.isfinite(float(value))) and not isinstance(value, str)
    except (TypeError, ValueError):
        return False
