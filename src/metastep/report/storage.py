"""The run directory: atomic writes, a lock for read-modify-write, verified shards.

Layout::

    DIR/config.json                           every resolved parameter, seeds, versions, device
    DIR/summary.json                          headline numbers: summary[experiment][...]
    DIR/results/<experiment>/<shard>.parquet  one tidy table per shard, with its provenance
    DIR/results/<experiment>/<shard>.sha256   the shard file's SHA-256 (``sha256sum -c`` format)
    DIR/figures/<experiment>/<figure>.png     and .svg
    DIR/report.md, DIR/report.html
    DIR/.lock                                 the lock file (empty)

Every file is written to a temporary file in its own folder, named
``.<name>.<host>-<pid>-<random>.partial``, then renamed over its name (``os.replace``, atomic on
POSIX), so a file that exists is complete. A killed process leaves at most a temporary file: the
next :meth:`RunDirectory.open` removes those of dead processes of this host, and any older than
:data:`STALE_AFTER_SECONDS` (a live process's file is left alone).

Several processes may run into one directory at once: every read-modify-write (``config.json``,
``summary.json``) and every store or read of a shard holds the directory's lock, an exclusive
``fcntl.flock`` on ``DIR/.lock``.

A shard is stored, and reused, only when it verifies: its checksum file matches the Parquet
file, which is readable, has the tidy columns and carries, in its key-value metadata
(:data:`PROVENANCE_KEY`), the parameters it was computed with; those must equal the ones asked
for (:func:`shard_provenance`). The runner asks for the shard's parameters, the budget and the
metastep version, so that no experiment mixes results of two versions; the report asks for the
parameters and budget that ``config.json`` records. Parquet pages carry CRC checksums too,
verified when a table is read.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import fcntl
import hashlib
import json
import math
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

TEMPORARY_SUFFIX = ".partial"
# A temporary file this old is a leftover even if its process seems alive (the PID was reused,
# or it belongs to another host sharing the directory): a day is far above any one write.
STALE_AFTER_SECONDS = 24 * 3600
PROVENANCE_KEY = b"metastep.provenance"
TIDY_COLUMNS = ("experiment", "method", "seed", "step")

_TEMPORARY_NAME = re.compile(
    rf"\.(?P<name>.+)\.(?P<host>\w*)-(?P<pid>\d+)-[0-9a-f]{{32}}{re.escape(TEMPORARY_SUFFIX)}"
)


class RunDirectoryError(RuntimeError):
    """The run directory cannot take this run: it holds results of other parameters, a file of
    it is unreadable, ..."""


class ShardError(RunDirectoryError):
    """A stored shard that does not verify; the message names the file and what is wrong."""


def _host() -> str:
    return re.sub(r"\W", "_", socket.gethostname())


def temporary_path(path: Path, pid: int | None = None) -> Path:
    """A fresh temporary name beside ``path`` that says which process (``pid``, default this
    one) of which host owns it."""
    pid = os.getpid() if pid is None else pid
    return path.with_name(f".{path.name}.{_host()}-{pid}-{uuid.uuid4().hex}{TEMPORARY_SUFFIX}")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def is_stale(temporary: Path) -> bool:
    """Whether the temporary file ``temporary`` is a leftover of a process that is gone."""
    try:
        age = time.time() - temporary.stat().st_mtime
    except FileNotFoundError:  # its writer renamed or removed it meanwhile
        return False
    if age > STALE_AFTER_SECONDS:
        return True
    owner = _TEMPORARY_NAME.fullmatch(temporary.name)
    if owner is None or owner["host"] != _host():
        return False  # another host's (or an unknown) writer: only its age tells
    pid = int(owner["pid"])
    return pid != os.getpid() and not _process_alive(pid)


def _named(error: OSError, path: Path) -> OSError:
    """``error`` naming ``path`` (the file meant) instead of its temporary file."""
    return OSError(error.errno, error.strerror or str(error), str(path))


def write_temporary(path: Path, write: Callable[[Path], None]) -> Path:
    """``write(temporary)`` to a fresh temporary file beside ``path``, flushed to disk; returns
    it. On any exception (KeyboardInterrupt included) the temporary file is removed, and an
    OSError names ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created by ``write`` itself so that the file gets the usual permissions.
    temporary = temporary_path(path)
    try:
        write(temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _named(error, path) from error
        raise
    return temporary


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Create or replace ``path`` all at once: ``write(temporary_path)``, then rename.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path`` is
    left as it was; an OSError (disk full, read-only, ...) names ``path``.
    """
    path = Path(path)
    temporary = write_temporary(path, write)
    try:
        _rename(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # nothing to remove once renamed
    return path


def _rename(temporary: Path, path: Path) -> None:
    """``os.replace``; an OSError names ``path``, not the temporary file."""
    try:
        os.replace(temporary, path)
    except OSError as error:
        raise _named(error, path) from error


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


def to_json_text(value: Any, indent: int | None = 2) -> str:
    return json.dumps(to_json_value(value), indent=indent, allow_nan=False, ensure_ascii=False)


def write_json(path: str | os.PathLike, value: Any) -> Path:
    return write_text(path, to_json_text(value) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object stored at ``path``, ``{}`` when there is no such file.

    Raises:
      RunDirectoryError: the file is not a JSON object (truncated, edited, ...).
    """
    try:
        value = read_json(path)
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunDirectoryError(f"{path} is not valid JSON ({error}): repair it or move it "
                                "away") from error
    if not isinstance(value, dict):
        raise RunDirectoryError(f"{path} holds a {type(value).__name__}, not a JSON object: "
                                "repair it or move it away")
    return value


# Per process: the run directories whose lock this process holds, and how deeply (the lock is
# reentrant; a second flock of the same file by one process would wait for itself).
_held_locks: dict[Path, int] = {}


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

    @property
    def lock_path(self) -> Path:
        return self.path / ".lock"

    def shard_path(self, experiment: str, shard: str) -> Path:
        return self.path / "results" / experiment / f"{shard}.parquet"

    def checksum_path(self, experiment: str, shard: str) -> Path:
        return self.path / "results" / experiment / f"{shard}.sha256"

    def figure_path(self, experiment: str, figure: str, extension: str) -> Path:
        return self.path / "figures" / experiment / f"{figure}.{extension}"

    def open(self) -> RunDirectory:
        """Create the directory, and remove the temporary files that killed runs left behind
        (not those of live processes: another run may be writing into this directory)."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryError(f"{self.path} is a file, not a run directory")
        self.path.mkdir(parents=True, exist_ok=True)
        for leftover in self.path.rglob(f".*{TEMPORARY_SUFFIX}"):
            if is_stale(leftover):
                leftover.unlink(missing_ok=True)
        return self

    @contextlib.contextmanager
    def locked(self, reading: bool = False) -> Iterator[None]:
        """Hold the directory's lock (waiting for other processes to release it); reentrant
        within a process. A reader (``reading``) of a directory where the lock file cannot be
        created (read-only) goes on without it: nobody can change that directory."""
        key = self.path.resolve()
        if _held_locks.get(key):
            _held_locks[key] += 1
            try:
                yield
            finally:
                _held_locks[key] -= 1
            return
        try:
            descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            if not (reading and error.errno in (errno.EROFS, errno.EACCES, errno.EPERM)):
                raise _named(error, self.lock_path) from error
            yield
            return
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            _held_locks[key] = 1
            try:
                yield
            finally:
                del _held_locks[key]
        finally:
            os.close(descriptor)  # releases the lock

    def read_config(self) -> dict[str, Any]:
        """The stored configuration, ``{}`` when there is none yet.

        Raises:
          RunDirectoryError: ``config.json`` is not a JSON object.
        """
        return read_json_object(self.config_path)

    def update_config(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Read ``config.json``, ``change`` it in place and store it if it changed, all under
        the lock (so an update by another process in between cannot be lost); returns the new
        configuration."""
        with self.locked():
            config = self.read_config()
            original = copy.deepcopy(config)
            change(config)
            if config != original:
                write_json(self.config_path, config)
        return config

    def write_shard(self, experiment: str, shard: str, table, provenance: Mapping[str, Any]):
        """Store ``table`` (a pandas DataFrame) as the shard, with ``provenance`` (the
        parameters it was computed with) in its metadata, page checksums, and its checksum file.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = pa.Table.from_pandas(table, preserve_index=False)
        arrow = arrow.replace_schema_metadata({
            **(arrow.schema.metadata or {}),
            PROVENANCE_KEY: to_json_text(provenance, indent=None).encode("utf-8"),
        })
        path = self.shard_path(experiment, shard)
        temporary = write_temporary(
            path, lambda temporary: pq.write_table(arrow, temporary, write_page_checksum=True))
        try:
            digest = hashlib.sha256(temporary.read_bytes()).hexdigest()
            with self.locked():  # the pair changes together for a reader holding the lock
                write_text(self.checksum_path(experiment, shard), f"{digest}  {path.name}\n")
                _rename(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)  # nothing to remove once renamed

    def _stored_bytes(self, experiment: str, shard: str) -> tuple[bytes, bytes] | None:
        """The shard file's bytes and its checksum file's, read together; None when there is
        no shard file."""
        with self.locked(reading=True):
            try:
                data = self.shard_path(experiment, shard).read_bytes()
            except FileNotFoundError:
                return None
            try:
                checksum = self.checksum_path(experiment, shard).read_bytes()
            except FileNotFoundError:
                checksum = b""
        return data, checksum

    def _verified(self, experiment: str, shard: str, expected: Mapping[str, Any], read: bool):
        """The verified shard's table (``read``) or True; None when it is not stored.

        Raises:
          ShardError: it is stored but does not verify (names the file and why).
        """
        stored = self._stored_bytes(experiment, shard)
        if stored is None:
            return None
        data, checksum = stored
        path = self.shard_path(experiment, shard)
        if not checksum:
            raise ShardError(f"{path} has no checksum file ({path.stem}.sha256)")
        recorded = checksum.split()[0] if checksum.split() else b""
        if recorded.decode("ascii", "replace") != hashlib.sha256(data).hexdigest():
            raise ShardError(f"{path} does not match its checksum: truncated or corrupt")
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            source = pa.BufferReader(data)
            schema = pq.read_schema(source)
            table = pq.read_table(source, page_checksum_verification=True) if read else None
        except (pa.ArrowException, OSError) as error:
            raise ShardError(f"{path} is unreadable ({type(error).__name__}: {error})") from error
        missing = [column for column in TIDY_COLUMNS if column not in schema.names]
        if missing:
            raise ShardError(f"{path} lacks the columns {missing}")
        recorded = recorded_provenance(schema.metadata or {})
        if expected and recorded is None:
            raise ShardError(f"{path} records no parameters it was computed with")
        wanted = json.loads(to_json_text(expected, indent=None))
        differing = [key for key, value in wanted.items() if recorded.get(key) != value]
        if differing:
            raise ShardError(f"{path} was computed with other parameters (differing: "
                             f"{', '.join(differing)})")
        return table.to_pandas() if read else True

    def check_shard(self, experiment: str, shard: str, expected: Mapping[str, Any]) -> str | None:
        """Why the stored shard cannot be reused for a run of the ``expected`` provenance (each
        of its keys must equal the recorded one, as JSON: see :func:`shard_provenance`):
        ``"missing"``, or what is wrong with it; None when it verifies."""
        try:
            found = self._verified(experiment, shard, expected, read=False)
        except ShardError as error:
            return str(error)
        return None if found else "missing"

    def has_shard(self, experiment: str, shard: str) -> bool:
        """Whether the shard's file exists (verified or not: see :meth:`check_shard`)."""
        return self.shard_path(experiment, shard).exists()

    def read_shard(self, experiment: str, shard: str, expected: Mapping[str, Any] | None = None):
        """The shard's table, verified (and of the ``expected`` provenance, where given).

        Raises:
          FileNotFoundError: the shard is not stored.
          ShardError: it does not verify.
        """
        table = self._verified(experiment, shard, expected or {}, read=True)
        if table is None:
            raise FileNotFoundError(f"{self.shard_path(experiment, shard)} is not stored")
        return table


def recorded_provenance(metadata: Mapping[bytes, bytes]) -> dict[str, Any] | None:
    """The provenance recorded in a shard's Parquet metadata; None when there is none."""
    try:
        recorded = json.loads(metadata[PROVENANCE_KEY])
    except (KeyError, ValueError):
        return None
    return recorded if isinstance(recorded, dict) else None


def shard_provenance(parameters: Mapping[str, Any], budget: Mapping[str, Any],
                     version: str | None = None) -> dict[str, Any]:
    """What a shard is computed from, as stored with it and compared on reuse: the shard's
    parameters, the experiment's budget (steps, seeds, settings; its name is only a label) and,
    where given, the metastep version."""
    provenance = {"parameters": dict(parameters),
                  "budget": {key: value for key, value in budget.items() if key != "name"}}
    if version is not None:
        provenance["metastep_version"] = version
    return provenance
