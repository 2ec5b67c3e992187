"""Summaries of a sweep in which a diverged run cannot pass for a good one.

A diverged lane's records hold NaN from the bin where it diverged on (see :mod:`metastep.engine`),
and pandas' ``mean`` skips NaN: averaging the tidy table of :meth:`SweepResult.to_pandas` by
configuration ranks a configuration by its surviving seeds alone, and one whose every seed
diverged by its records from before the divergence. Here a diverged lane's error is ``inf``
instead, and configurations are ranked by how many of their seeds diverged first::

    error(c, s) = mean of squared_error[c, s, -last:]     (inf if lane (c, s) diverged)
    final_error(c) = mean over seeds s of error(c, s)     (inf if any seed diverged)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metastep.results import SweepResult


def _check_result(result: Any) -> None:
    if not isinstance(result, SweepResult):
        raise ValueError(f"`result` must be a SweepResult (from ms.sweep), got "
                         f"{type(result).__name__}")


def _check_last(last: Any, num_records: int) -> int:
    if last is None:
        return num_records
    if isinstance(last, bool) or not isinstance(last, (int, np.integer)) or not (
        1 <= last <= num_records
    ):
        raise ValueError(f"`last` must be an integer in [1, {num_records}] (records) or None, "
                         f"got {last!r}")
    return int(last)


def lane_errors(result: SweepResult, last: int | None = None) -> np.ndarray:
    """[C, S] each lane's mean squared error over its last ``last`` records (default: all of
    them), ``inf`` for a lane that diverged."""
    _check_result(result)
    last = _check_last(last, result.squared_error.shape[2])
    errors = result.squared_error[:, :, -last:].astype(np.float64).mean(axis=2)
    return np.where(result.diverged, np.inf, errors)


def summarize(result: SweepResult, last: int | None = None):
    """One row per configuration of a sweep, the best first and diverged ones last.

    Args:
      result: what :func:`metastep.sweep` returned.
      last: the number of final records to average (default: all of them).

    Returns:
      A pandas DataFrame indexed by configuration (``config``, as in ``result.config(i)``) with
      one column per grid parameter and:

      * ``final_error``: the mean squared error over the last ``last`` records, averaged over
        seeds; ``inf`` when any seed diverged;
      * ``standard_error``: its standard error over seeds (NaN with one seed or a divergence);
      * ``diverged_seeds``: how many seeds diverged, of ``seeds``.

      Rows are sorted by ``diverged_seeds``, then ``final_error``.
    """
    try:
        import pandas as pd
    except ImportError as error:  # pragma: no cover - depends on the environment
        message = "summarize needs pandas: pip install 'metastep[experiments]'"
        raise ImportError(message) from error
    errors = lane_errors(result, last)
    num_seeds = errors.shape[1]
    diverged_seeds = result.diverged.sum(axis=1)
    healthy = diverged_seeds == 0
    final_error = np.where(healthy, np.where(healthy[:, None], errors, 0.0).mean(axis=1), np.inf)
    if num_seeds > 1:
        spread = np.where(healthy[:, None], errors, 0.0).std(axis=1, ddof=1)
        standard_error = np.where(healthy, spread / np.sqrt(num_seeds), np.nan)
    else:
        standard_error = np.full(len(errors), np.nan)
    table = pd.DataFrame({
        **{name: values for name, values in result.grid.items()},
        "final_error": final_error,
        "standard_error": standard_error,
        "diverged_seeds": diverged_seeds,
        "seeds": num_seeds,
    })
    table.index.name = "config"
    return table.sort_values(["diverged_seeds", "final_error"], kind="stable")


def best(result: SweepResult, last: int | None = None) -> dict[str, Any]:
    """The parameter values of the configuration with the lowest ``final_error`` (see
    :func:`summarize`) among those where no seed diverged.

    Raises:
      ValueError: when some seed diverged in every configuration.
    """
    table = summarize(result, last)
    index = table.index[0]
    if table.loc[index, "diverged_seeds"] > 0:
        raise ValueError("some seed diverged in every configuration of the sweep: no best one")
    return result.config(index)


__all__ = ["best", "lane_errors", "summarize"]
