"""What the engine returns: a run recorded per bin, a sweep of configurations × seeds, and a run
over explicit arrays recorded every step (see :mod:`metastep.engine`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np


@dataclass
class RunResult:
    """One run, recorded every ``record_every`` steps.

    Attributes:
      steps: [R] steps done at the end of each bin.
      squared_error: [R] mean squared error over each bin (NaN from the diverging bin on).
      step_sizes: per-weight step sizes that the last update of each bin used, [R, n] for the
        linear learner (what ``learner.record`` returns under ``"step_sizes"``).
      records: everything ``learner.record`` returned at the end of each bin, and the bin mean
        of each entry of the step outputs' optional ``metrics`` dict (e.g. ``accuracy``).
      info: what the problem knew at the end of each bin (true weights, σ, α*, ...).
      diverged_at: the (1-based) count of steps done when divergence was detected, 0 if the
        run did not diverge.
      final_state: the learner state at the end (of the last healthy bin if it diverged).
    """

    steps: np.ndarray
    squared_error: np.ndarray
    records: dict[str, Any]
    info: dict[str, np.ndarray]
    diverged_at: int
    final_state: Any = None

    @property
    def step_sizes(self):
        return self.records.get("step_sizes")

    @property
    def diverged(self) -> bool:
        """Whether the run diverged."""
        return self.diverged_at > 0


@dataclass
class SweepResult:
    """A grid of configurations × seeds.

    Attributes:
      grid: parameter name -> [C] value of each configuration (the flattened Cartesian product,
        first parameter varying slowest).
      seeds: [S].
      steps: [R] steps done at the end of each bin.
      squared_error: [C, S, R].
      records: name -> [C, S, R, ...] (for the linear learner ``step_sizes`` and ``weights``).
      info: name -> [C, S, R, ...].
      diverged_at: [C, S] the (1-based) step count at which each lane diverged, 0 if it did not.
    """

    grid: dict[str, np.ndarray]
    seeds: np.ndarray
    steps: np.ndarray
    squared_error: np.ndarray
    records: dict[str, Any]
    info: dict[str, np.ndarray]
    diverged_at: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def step_sizes(self):
        return self.records.get("step_sizes")

    @property
    def diverged(self) -> np.ndarray:
        """[C, S] whether each lane diverged."""
        return self.diverged_at > 0

    @property
    def num_configs(self) -> int:
        return self.squared_error.shape[0]

    def config(self, index: int) -> dict[str, Any]:
        """The parameter values of configuration ``index``."""
        return {name: values[index].item() for name, values in self.grid.items()}

    def to_pandas(self):
        """Tidy table: one row per (configuration, seed, record).

        Columns: one per grid parameter, ``seed``, ``step`` (steps done at the end of the bin),
        ``squared_error`` (NaN once diverged), ``diverged`` (whether the lane had diverged by the
        end of that bin) and ``mean_step_size`` (mean over weights, when step sizes are recorded).

        pandas' ``mean`` skips NaN, so averaging ``squared_error`` per configuration hides the
        seeds that diverged: rank configurations with :func:`metastep.summarize` or
        :func:`metastep.best`, which count a diverged run as an infinite error.
        """
        try:
            import pandas as pd
        except ImportError as error:  # pragma: no cover - depends on the environment
            message = "to_pandas needs pandas: pip install 'metastep[experiments]'"
            raise ImportError(message) from error
        num_configs, num_seeds, num_records = self.squared_error.shape
        index = np.indices((num_configs, num_seeds, num_records)).reshape(3, -1)
        config_index, seed_index, record_index = index
        columns: dict[str, Any] = {
            name: values[config_index] for name, values in self.grid.items()
        }
        columns["seed"] = self.seeds[seed_index]
        columns["step"] = self.steps[record_index]
        columns["squared_error"] = self.squared_error.reshape(-1)
        diverged_at = self.diverged_at[config_index, seed_index]
        step_count = self.steps[record_index]
        columns["diverged"] = (diverged_at > 0) & (diverged_at <= step_count)
        step_sizes = self.step_sizes
        if isinstance(step_sizes, np.ndarray):
            axes = tuple(range(3, step_sizes.ndim))
            columns["mean_step_size"] = step_sizes.mean(axis=axes).reshape(-1)
        return pd.DataFrame(columns)


class RunArraysResult(NamedTuple):
    """A run over explicit arrays, every step recorded (the fields that :class:`RunResult` also
    has mean the same, per step instead of per bin)."""

    predictions: np.ndarray  # [T] y, made before each update
    errors: np.ndarray  # [T] δ = y* − y
    step_sizes: Any  # [T, n] for the linear learner
    diverged_at: int  # the (1-based) step at which divergence was detected, 0 if none
    final_state: Any

    @property
    def squared_error(self) -> np.ndarray:
        """[T] δ², the squared error of each step."""
        return np.square(self.errors)

    @property
    def diverged(self) -> bool:
        """Whether the run diverged."""
        return self.diverged_at > 0
