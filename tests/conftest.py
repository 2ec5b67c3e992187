"""Shared fixtures: float64 mode and random non-stationary data for step-by-step checks.

The tests run on three pytest-xdist workers, a test file on one worker (``--dist=loadfile``: its
module fixtures are computed once); the experiment tests share one smoke run across the workers
(tests/experiments/conftest.py)."""

import os
import shutil
import tempfile

import jax
import numpy as np
import pytest

# A compilation cache shared by the session's processes (the pytest-xdist workers compile many of
# the same programs): made by the first process, inherited by the workers it starts, removed at
# the end. JAX keys each entry by the program, the compiler options and the versions.
COMPILATION_CACHE = "METASTEP_TEST_COMPILATION_CACHE"


def pytest_configure(config):
    if COMPILATION_CACHE not in os.environ:
        os.environ[COMPILATION_CACHE] = tempfile.mkdtemp(prefix="metastep-jax-cache-")
        config.add_cleanup(lambda: shutil.rmtree(os.environ.pop(COMPILATION_CACHE), True))
    jax.config.update("jax_compilation_cache_dir", os.environ[COMPILATION_CACHE])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


# The longest files first (pytest-xdist hands out whole files in this order: addopts sets
# --no-loadscope-reorder), so that the workers finish together. The Ray tests (slow) mostly
# wait for their cluster's processes: first, that wait overlaps the other worker's tests.
RUN_FIRST = (
    "tests/report/test_ray_executor.py",
    "tests/experiments/test_every_experiment.py",
    "tests/test_engine.py",
    "tests/methods/test_optax_conformance.py",
    "tests/deep/test_learner.py",
    "tests/test_readme.py",
)


def pytest_collection_modifyitems(items):
    def rank(item):
        path = item.nodeid.split("::")[0]
        return RUN_FIRST.index(path) if path in RUN_FIRST else len(RUN_FIRST)

    items.sort(key=rank)  # stable: the order within a file and among the others is kept


@pytest.fixture
def x64():
    """Run the test with JAX in float64 (restored afterwards)."""
    with jax.enable_x64(True):
        yield


def make_nonstationary_data(seed: int = 0, steps: int = 1500, num_features: int = 5):
    """Inputs of different scales, a target whose weights drift and flip sign, a little noise.

    Returns float64 NumPy arrays ``xs`` [steps, num_features] and ``ys`` [steps].
    """
    rng = np.random.default_rng(seed)
    scales = np.geomspace(0.3, 3.0, num_features)
    xs = rng.normal(size=(steps, num_features)) * scales
    weights = rng.normal(size=num_features)
    ys = np.empty(steps)
    for t in range(steps):
        if t % 50 == 0:
            weights[rng.integers(num_features)] *= -1.0
        weights += 0.01 * rng.normal(size=num_features)
        ys[t] = xs[t] @ weights + 0.1 * rng.normal()
    return xs, ys


@pytest.fixture
def nonstationary_data():
    return make_nonstationary_data
