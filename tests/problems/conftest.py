"""Helpers for the problem tests: reading a stream in blocks, comparing streams.

A stream compiles once per problem instance and block size (about half a second), so the tests
share one instance per module and a few block sizes.
"""

import jax
import numpy as np
import pytest


def read_in_blocks(problem, key, sizes):
    """The stream from ``key`` read in blocks of ``sizes``: (final state, samples as NumPy)."""
    generate = jax.jit(problem.generate, static_argnums=1)
    state, parts = problem.init(key), []
    for size in sizes:
        state, samples = generate(state, size)
        parts.append(samples)
    return state, jax.tree.map(lambda *blocks: np.concatenate(blocks), *parts)


def assert_streams_equal(a, b):
    """Bit-for-bit equality of two pytrees of arrays (samples or states)."""
    a_leaves, b_leaves = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for left, right in zip(a_leaves, b_leaves, strict=True):
        if jax.dtypes.issubdtype(left.dtype, jax.dtypes.prng_key):
            left, right = jax.random.key_data(left), jax.random.key_data(right)
        np.testing.assert_array_equal(np.asarray(left), np.asarray(right))


@pytest.fixture(scope="session")
def blocks():
    return read_in_blocks


@pytest.fixture(scope="session")
def streams_equal():
    return assert_streams_equal
