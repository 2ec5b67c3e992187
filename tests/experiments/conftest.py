"""Fixtures of the experiment tests: small Fashion-MNIST files in place of the real data, and one
smoke-budget run directory shared by every test that reads smoke results."""

import fcntl
import os
import struct

import numpy as np
import pytest

from metastep.experiments import EXPERIMENTS, get
from metastep.problems.fashion import FASHION_MNIST_ENV
from metastep.report import RunDirectory, run_experiment

FASHION_IMAGES = 60


def write_idx(path, array):
    """``array`` (uint8) as an IDX file: magic number, big-endian dimensions, values."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


@pytest.fixture(scope="session", autouse=True)
def fashion_mnist_files(tmp_path_factory):
    """60 random 28×28 images and their labels, which ``$METASTEP_FASHION_MNIST`` points to
    during the experiment tests: ``permuted-fashion`` runs the same on every machine, whether
    Debian's data are installed or not."""
    directory = tmp_path_factory.mktemp("fashion-mnist")
    images = np.random.default_rng(0).integers(0, 256, (FASHION_IMAGES, 28, 28), np.uint8)
    write_idx(directory / "train-images-idx3-ubyte", images)
    write_idx(directory / "train-labels-idx1-ubyte", np.arange(FASHION_IMAGES, dtype=np.uint8) % 10)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FASHION_MNIST_ENV, str(directory))
        yield directory


class SmokeRun:
    """A run directory at the smoke budget, filled on demand: an experiment is computed (by the
    runner, as ``metastep run`` does) the first time a test asks for its tables, and stored.
    ``metastep reproduce`` into the same directory then resumes it: each experiment is computed
    once per test session, however many tests read it, on whichever pytest-xdist worker asks
    first (the others wait on its lock, then read what it stored)."""

    def __init__(self, path):
        self.path = path
        self.directory = RunDirectory(path)
        self.built_figures = {}

    def tables(self, name: str) -> dict:
        """The stored smoke tables of experiment ``name``: shard name -> table."""
        experiment = get(name)
        budget = experiment.budget("smoke")
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / f".{name}.computing", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            run_experiment(self.directory, experiment, budget, progress=False)
        return {shard.name: self.directory.read_shard(name, shard.name)
                for shard in experiment.shards(budget)}

    def all_tables(self) -> None:
        """Every experiment computed and stored (each under its lock)."""
        for name in EXPERIMENTS:
            self.tables(name)

    def figures(self, name: str) -> dict:
        """The smoke figures of experiment ``name``, made once per test session."""
        if name not in self.built_figures:
            experiment = get(name)
            self.built_figures[name] = experiment.figures(self.tables(name),
                                                          experiment.budget("smoke"))
        return self.built_figures[name]


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, fashion_mnist_files):
    """The session's smoke run, one directory shared by the pytest-xdist workers (in the base
    temporary directory of the session, which is the parent of each worker's)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    return SmokeRun(base / "smoke-run")
