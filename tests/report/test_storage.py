"""The run directory's storage: atomic writes, other processes' temporary files left alone,
shards stored with their provenance and checksums and verified when read."""

import errno
import hashlib
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from metastep.report import storage
from metastep.report.storage import RunDirectory

PROVENANCE = {"parameters": {"steps": 5, "seeds": [0, 1]}, "budget": {"steps": 5, "seeds": 2}}


def files_in(directory):
    """The files under ``directory``, the lock file aside."""
    return sorted(path.name for path in directory.rglob("*") if path.is_file()
                  and path.name != ".lock")


def tidy_table(value=1.0, rows=1):
    return pd.DataFrame({"experiment": "exp", "method": "lms", "seed": np.arange(rows) % 2,
                         "step": np.arange(rows), "value": value + np.arange(rows) / 7})


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
    import pyarrow.parquet as pq

    run_dir = RunDirectory(tmp_path).open()
    table = tidy_table()
    run_dir.write_shard("exp", "shard", table, PROVENANCE)

    def write_table_half(arrow, path, **kwargs):
        with open(path, "wb") as file:
            file.write(b"PAR1 and no more")
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", write_table_half)
    with pytest.raises(KeyboardInterrupt):
        run_dir.write_shard("exp", "shard", table.assign(value=2.0), PROVENANCE)
    with pytest.raises(KeyboardInterrupt):
        run_dir.write_shard("exp", "other", table, PROVENANCE)
    monkeypatch.undo()
    assert files_in(tmp_path) == ["shard.parquet", "shard.sha256"]
    assert run_dir.check_shard("exp", "other", PROVENANCE) == "missing"
    pd.testing.assert_frame_equal(run_dir.read_shard("exp", "shard", PROVENANCE), table)


@pytest.fixture
def other_process():
    """The PID of a live process other than this one."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process.pid
    process.kill()
    process.wait()


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_open_removes_only_the_temporary_files_of_dead_processes(tmp_path, other_process):
    shard = tmp_path / "results" / "exp" / "shard.parquet"
    shard.parent.mkdir(parents=True)
    live = storage.temporary_path(shard, pid=other_process)
    dead = storage.temporary_path(shard, pid=dead_pid())
    for temporary in (live, dead):
        temporary.write_bytes(b"partial")
    kept = tmp_path / "notes.txt"
    kept.write_text("mine")
    RunDirectory(tmp_path).open()
    assert live.exists(), "another live process's temporary file was removed"
    assert not dead.exists()
    assert kept.exists()


def test_open_removes_temporary_files_of_any_owner_once_old(tmp_path, other_process):
    live = storage.temporary_path(tmp_path / "config.json", pid=other_process)
    unknown = tmp_path / f".summary.json.123{storage.TEMPORARY_SUFFIX}"  # no owner in its name
    for temporary in (live, unknown):
        temporary.write_bytes(b"partial")
    RunDirectory(tmp_path).open()
    assert live.exists() and unknown.exists()
    old = time.time() - storage.STALE_AFTER_SECONDS - 60
    for temporary in (live, unknown):
        os.utime(temporary, (old, old))
    RunDirectory(tmp_path).open()
    assert not live.exists() and not unknown.exists()


def test_an_existing_file_is_not_a_run_directory(tmp_path):
    path = tmp_path / "results.txt"
    path.write_text("precious")
    with pytest.raises(storage.RunDirectoryError, match=f"{path} is a file"):
        RunDirectory(path).open()
    assert path.read_text() == "precious"


def test_shard_carries_its_provenance_and_page_checksums(tmp_path):
    import pyarrow.parquet as pq

    run_dir = RunDirectory(tmp_path)
    run_dir.write_shard("exp", "shard", tidy_table(rows=40), PROVENANCE)
    path = run_dir.shard_path("exp", "shard")
    metadata = pq.read_schema(path).metadata
    assert json.loads(metadata[storage.PROVENANCE_KEY]) == PROVENANCE
    digest, name = run_dir.checksum_path("exp", "shard").read_text().split()
    assert (digest, name) == (hashlib.sha256(path.read_bytes()).hexdigest(), "shard.parquet")
    assert run_dir.check_shard("exp", "shard", PROVENANCE) is None
    # A flipped bit in a data page, with a checksum file made to match: the page's CRC catches it.
    column = pq.ParquetFile(path).metadata.row_group(0).column(4)
    start = column.dictionary_page_offset or column.data_page_offset
    data = bytearray(path.read_bytes())
    data[start + column.total_compressed_size - 2] ^= 0x01
    path.write_bytes(bytes(data))
    run_dir.checksum_path("exp", "shard").write_text(
        f"{hashlib.sha256(bytes(data)).hexdigest()}  shard.parquet\n")
    with pytest.raises(storage.ShardError, match="unreadable .*CRC checksum"):
        run_dir.read_shard("exp", "shard", PROVENANCE)


def truncate(run_dir):
    path = run_dir.shard_path("exp", "shard")
    path.write_bytes(path.read_bytes()[:-100])


def flip_a_byte(run_dir):
    path = run_dir.shard_path("exp", "shard")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def replace_with_another_table(run_dir):
    """A valid Parquet file with the same checksum file: say, copied from another run."""
    path = run_dir.shard_path("exp", "shard")
    tidy_table(value=5.0).to_parquet(path, index=False)
    run_dir.checksum_path("exp", "shard").write_text(
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  shard.parquet\n")


@pytest.mark.parametrize("damage, why", [
    (truncate, "does not match its checksum"),
    (flip_a_byte, "does not match its checksum"),
    (lambda run_dir: run_dir.checksum_path("exp", "shard").unlink(), "has no checksum file"),
    (lambda run_dir: run_dir.checksum_path("exp", "shard").write_text(""), "has no checksum"),
    (replace_with_another_table, "records no parameters it was computed with"),
])
def test_a_damaged_shard_is_named_and_not_used(tmp_path, damage, why):
    run_dir = RunDirectory(tmp_path)
    run_dir.write_shard("exp", "shard", tidy_table(rows=30), PROVENANCE)
    damage(run_dir)
    problem = run_dir.check_shard("exp", "shard", PROVENANCE)
    assert problem is not None and problem.startswith(str(run_dir.shard_path("exp", "shard")))
    assert re.search(why, problem), problem
    with pytest.raises(storage.ShardError, match=why):
        run_dir.read_shard("exp", "shard", PROVENANCE)


def test_a_shard_of_other_parameters_or_version_is_not_reused(tmp_path):
    run_dir = RunDirectory(tmp_path)
    provenance = storage.shard_provenance({"steps": 5}, {"name": "smoke", "steps": 5,
                                                         "seeds": 2}, version="1.0")
    run_dir.write_shard("exp", "shard", tidy_table(), provenance)
    same_but_named = storage.shard_provenance({"steps": 5}, {"name": "quick", "steps": 5,
                                                             "seeds": 2}, version="1.0")
    assert run_dir.check_shard("exp", "shard", same_but_named) is None
    for other, differing in [
        (storage.shard_provenance({"steps": 6}, {"steps": 5, "seeds": 2}, "1.0"), "parameters"),
        (storage.shard_provenance({"steps": 5}, {"steps": 5, "seeds": 3}, "1.0"), "budget"),
        (storage.shard_provenance({"steps": 5}, {"steps": 5, "seeds": 2}, "1.1"),
         "metastep_version"),
    ]:
        problem = run_dir.check_shard("exp", "shard", other)
        assert problem.endswith(f"other parameters (differing: {differing})"), problem
    # The report checks parameters only: a newer metastep reports an older run's results.
    assert run_dir.read_shard("exp", "shard", {"parameters": {"steps": 5}}).shape == (1, 5)


def test_a_read_only_directory_is_read_without_its_lock(tmp_path, monkeypatch):
    run_dir = RunDirectory(tmp_path)
    run_dir.write_shard("exp", "shard", tidy_table(), PROVENANCE)
    original_open = os.open

    def read_only_open(path, flags, *args):
        if os.fspath(path) == str(run_dir.lock_path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return original_open(path, flags, *args)

    monkeypatch.setattr(storage.os, "open", read_only_open)
    pd.testing.assert_frame_equal(run_dir.read_shard("exp", "shard", PROVENANCE), tidy_table())
    with pytest.raises(OSError, match="Read-only file system") as raised:
        run_dir.update_config(lambda config: config.update(created="now"))
    assert raised.value.filename == str(run_dir.lock_path)


@pytest.mark.parametrize("text", ["", '{"experiments": {', "[1, 2]", "\xff\xfe"])
def test_a_corrupt_config_is_named_and_kept(tmp_path, text):
    path = tmp_path / "config.json"
    path.write_bytes(text.encode("latin-1"))
    run_dir = RunDirectory(tmp_path)
    with pytest.raises(storage.RunDirectoryError, match=f"{path} .*repair it or move it away"):
        run_dir.update_config(lambda config: config.update(experiments={}))
    assert path.read_bytes() == text.encode("latin-1")


def test_json_has_no_nan(tmp_path):
    path = storage.write_json(tmp_path / "s.json", {"a": np.float32(1.5), "b": float("nan"),
                                                    "c": [np.inf, np.int64(2)]})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": None, "c": [None, 2]}
