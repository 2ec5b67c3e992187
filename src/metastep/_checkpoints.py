"""Checkpoints inside a long computation, so that a killed process loses minutes, not hours.

Within :func:`checkpointing`, the engine's host loop (every :func:`metastep.run` and, chunk of
lanes by chunk of lanes, every :func:`metastep.sweep`) saves what it has computed so far (the
carry of its lanes: learner states, stream states, divergence flags, step counts; and the
records of the bins done) every ``every_seconds`` of work, and once more when it finishes. The
public engine calls made in the block are numbered in order (:func:`engine_call`), and a call's
chunk of lanes saves to ``<directory>/call-<number>-<chunk>.npz``. Run again in a new block on
the same directory (the same code, e.g. a shard computed again after its process was killed), the
calls come in the same order and each finds its file and continues from it: the bins done are not
computed again, and since the same compiled chunks then run from the same carry, the results are
the same, bit for bit, as those of an uninterrupted run.

A file is used only if its fingerprint also matches: a description of the call (its learner's
type, its problem's name and parameters), its schedule, its lanes' parameters and seeds, the
structure, shapes and dtypes of its carry, and the versions of metastep and JAX; else it is
ignored and overwritten. Files are written to a temporary name and renamed into place, so a kill
while saving leaves the previous file.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import itertools
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

# The default interval between two saves: a few minutes of work lost at most, and the cost of
# writing a carry (tens of MB for the continual benchmarks' roster) spread over it.
DEFAULT_EVERY_SECONDS = 300.0


@dataclass
class _Session:
    directory: Path
    every_seconds: float
    calls: Iterator[int] = field(default_factory=itertools.count)


_SESSION: contextvars.ContextVar[_Session | None] = contextvars.ContextVar(
    "metastep_checkpoints", default=None)
# The public engine call in progress: its number in the session and its description.
_CALL: contextvars.ContextVar[tuple[int, str] | None] = contextvars.ContextVar(
    "metastep_checkpoint_call", default=None)


@contextlib.contextmanager
def checkpointing(directory: str | os.PathLike, every_seconds: float = DEFAULT_EVERY_SECONDS):
    """Within the block, the engine's calls save and resume their work in ``directory``."""
    if not every_seconds >= 0:
        raise ValueError(f"`every_seconds` must be >= 0, got {every_seconds!r}")
    token = _SESSION.set(_Session(Path(directory), float(every_seconds)))
    try:
        yield
    finally:
        _SESSION.reset(token)


@contextlib.contextmanager
def engine_call(description: str):
    """Number one public engine call (``ms.run``, ``ms.sweep``) within :func:`checkpointing`;
    ``description`` (stable across processes) enters its fingerprint."""
    session = _SESSION.get()
    if session is None:
        yield
        return
    token = _CALL.set((next(session.calls), description))
    try:
        yield
    finally:
        _CALL.reset(token)


def _array_bytes(value: Any) -> bytes:
    array = np.asarray(value)
    return array.dtype.str.encode() + str(array.shape).encode() + array.tobytes()


def _tree_signature(tree: Any) -> str:
    shapes = [(tuple(np.shape(leaf)), np.asarray(leaf).dtype.str) for leaf in
              jax.tree.leaves(tree)]
    return f"{jax.tree.structure(tree)}|{shapes}"


def fingerprint(description: str, schedule: tuple, parameters: Any, seeds: Any,
                carry: Any) -> str:
    """What a saved call must match: see the module docstring."""
    import metastep

    digest = hashlib.sha256()
    digest.update(description.encode())
    digest.update(repr(schedule).encode())
    for leaf in jax.tree.leaves(parameters):
        digest.update(_array_bytes(leaf))
    digest.update(_array_bytes(seeds))
    digest.update(_tree_signature(carry).encode())
    digest.update(f"{metastep.__version__}|{jax.__version__}".encode())
    return digest.hexdigest()


class CallCheckpoint:
    """The checkpoint of one engine call: restore it, save it."""

    def __init__(self, path: Path, every_seconds: float, fingerprint: str):
        self.path = path
        self.every_seconds = every_seconds
        self.fingerprint = fingerprint
        self.last_save = time.monotonic()

    def restore(self, carry: Any, records_template: Callable[[], Any]):
        """``(carry, records so far or None, bins done)`` from the file if it matches, else
        the given ``carry``, None and 0. ``records_template()`` gives the structure of the
        records (e.g. from ``jax.eval_shape``), asked only when there are records to restore."""
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                meta = json.loads(saved["meta"].item())
                if meta["fingerprint"] != self.fingerprint:
                    return carry, None, 0
                carry_leaves = [saved[f"carry_{i}"] for i in range(meta["carry_leaves"])]
                record_leaves = [saved[f"records_{i}"] for i in range(meta["record_leaves"])]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # absent, damaged
            return carry, None, 0
        template = records_template() if record_leaves else None
        if template is not None and len(jax.tree.leaves(template)) != len(record_leaves):
            return carry, None, 0
        restored = jax.tree.unflatten(jax.tree.structure(carry), carry_leaves)
        records = (jax.tree.unflatten(jax.tree.structure(template), record_leaves)
                   if record_leaves else None)
        return restored, records, meta["bins_done"]

    def due(self) -> bool:
        return time.monotonic() - self.last_save >= self.every_seconds

    def save(self, carry: Any, records: Any, bins_done: int) -> None:
        """Write the call's state atomically: ``records`` holds every bin done so far."""
        carry_leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(carry)]
        record_leaves = [] if records is None else jax.tree.leaves(records)
        meta = {"fingerprint": self.fingerprint, "bins_done": bins_done,
                "carry_leaves": len(carry_leaves), "record_leaves": len(record_leaves)}
        arrays = {f"carry_{i}": leaf for i, leaf in enumerate(carry_leaves)}
        arrays.update({f"records_{i}": leaf for i, leaf in enumerate(record_leaves)})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.path.parent, prefix=f".{self.path.stem}-",
                                         suffix=".npz", delete=False) as file:
            temporary = Path(file.name)
            try:
                np.savez(file, meta=np.asarray(json.dumps(meta)), **arrays)
                file.flush()
                os.fsync(file.fileno())
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
        os.replace(temporary, self.path)
        self.last_save = time.monotonic()


def for_call(part: str, schedule: tuple, parameters: Any, seeds: Any,
             carry: Any) -> CallCheckpoint | None:
    """The checkpoint of ``part`` (a chunk of lanes) of the engine call in progress, or None
    outside :func:`checkpointing`."""
    session, call = _SESSION.get(), _CALL.get()
    if session is None or call is None:
        return None
    number, description = call
    return CallCheckpoint(session.directory / f"call-{number}-{part}.npz", session.every_seconds,
                          fingerprint(description, schedule, parameters, seeds, carry))
