"""The run directory, and atomic writes.

Layout::

    DIR/config.json                           every resolved parameter, seeds, versions, device
    DIR/summary.json                          headline numbers: summary[experiment][...]
    DIR/results/<experiment>/<shard>.parquet  one tidy table per shard
    DIR/figures/<experiment>/<figure>.png     and .svg
    DIR/report.md, DIR/report.html

Every file is written to a temporary file in its own folder, then renamed over its name
(``os.replace``, atomic on POSIX), so a file that exists is complete: a shard is done iff its
Parquet file exists, and a killed process leaves at most a temporary file, which the next run
removes.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

TEMPORARY_SUFFIX = ".partial"


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Create or replace ``path`` all at once: ``write(temporary_path)``, then rename.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path`` is
    left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fresh name, created by ``write`` itself so that the file gets the usual permissions.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}{TEMPORARY_SUFFIX}")
    try:
        write(temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda temporary: temporary.write_bytes(data))


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def to_json_value(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays as Python values, and non-finite floats as None
    (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(key): to_json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [to_json_value(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike, value: Any) -> Path:
    text = json.dumps(to_json_value(value), indent=2, allow_nan=False, ensure_ascii=False)
    return write_text(path, text + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


class RunDirectory:
    """A run directory (see the module docstring for its layout)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    def shard_path(self, experiment: str, shard: str) -> Path:
        return self.path / "results" / experiment / f"{shard}.parquet"

    def figure_path(self, experiment: str, figure: str, extension: str) -> Path:
        return self.path / "figures" / experiment / f"{figure}.{extension}"

    def open(self) -> RunDirectory:
        """Create the directory, and remove temporary files that a killed run left behind."""
        self.path.mkdir(parents=True, exist_ok=True)
        for leftover in self.path.rglob(f".*{TEMPORARY_SUFFIX}"):
            leftover.unlink(missing_ok=True)
        return self

    def read_config(self) -> dict[str, Any]:
        """The stored configuration, ``{}`` when there is none yet."""
        return read_json(self.config_path) if self.config_path.exists() else {}

    def write_config(self, config: Mapping[str, Any]) -> None:
        write_json(self.config_path, config)

    def has_shard(self, experiment: str, shard: str) -> bool:
        return self.shard_path(experiment, shard).exists()

    def write_shard(self, experiment: str, shard: str, table) -> None:
        atomic_write(self.shard_path(experiment, shard),
                     lambda temporary: table.to_parquet(temporary, index=False))

    def read_shard(self, experiment: str, shard: str):
        import pandas as pd

        return pd.read_parquet(self.shard_path(experiment, shard))
