"""Atomic writes: a file that exists is complete; an interrupted write leaves nothing behind."""

import json

import pandas as pd
import pytest

from metastep.report import storage
from metastep.report.storage import RunDirectory


def files_in(directory):
    return sorted(path.name for path in directory.rglob("*") if path.is_file())


def test_atomic_write_creates_and_replaces(tmp_path):
    path = tmp_path / "sub" / "file.txt"
    storage.write_text(path, "first")
    storage.write_text(path, "second")
    assert path.read_text() == "second"
    assert files_in(tmp_path) == ["file.txt"]


def test_written_files_get_the_usual_permissions(tmp_path):
    path = storage.write_text(tmp_path / "file.txt", "x")
    assert path.stat().st_mode & 0o044  # readable by others, unlike a mkstemp file


@pytest.mark.parametrize("interruption", [RuntimeError, KeyboardInterrupt])
def test_interrupted_write_leaves_no_file(tmp_path, interruption):
    path = tmp_path / "file.bin"

    def write_half_then_fail(temporary):
        temporary.write_bytes(b"half of it")
        raise interruption()

    with pytest.raises(interruption):
        storage.atomic_write(path, write_half_then_fail)
    assert files_in(tmp_path) == []


def test_interrupted_shard_write_keeps_the_previous_version(tmp_path, monkeypatch):
    run_dir = RunDirectory(tmp_path).open()
    table = pd.DataFrame({"method": ["lms"], "seed": [0], "step": [1], "value": [1.0]})
    run_dir.write_shard("exp", "shard", table)

    def to_parquet_half(self, path, **kwargs):
        with open(path, "wb") as file:
            file.write(b"PAR1 and no more")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet_half)
    with pytest.raises(KeyboardInterrupt):
        run_dir.write_shard("exp", "shard", table.assign(value=2.0))
    with pytest.raises(KeyboardInterrupt):
        run_dir.write_shard("exp", "other", table)
    monkeypatch.undo()
    assert files_in(tmp_path) == ["shard.parquet"]
    assert not run_dir.has_shard("exp", "other")
    pd.testing.assert_frame_equal(run_dir.read_shard("exp", "shard"), table)


def test_open_removes_what_a_killed_run_left(tmp_path):
    leftover = tmp_path / "results" / "exp" / f".shard.parquet.123{storage.TEMPORARY_SUFFIX}"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"partial")
    kept = tmp_path / "notes.txt"
    kept.write_text("mine")
    RunDirectory(tmp_path).open()
    assert files_in(tmp_path) == ["notes.txt"]


def test_json_has_no_nan(tmp_path):
    import numpy as np

    path = storage.write_json(tmp_path / "s.json", {"a": np.float32(1.5), "b": float("nan"),
                                                    "c": [np.inf, np.int64(2)]})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": None, "c": [None, 2]}
