"""Permuted 8×8 digits (UPGD's protocols): examples, per-task permutations, the stream protocol."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metastep.problems import (
    label_permuted_digits,
    load_digits_data,
    permuted_classification,
    permuted_digits,
    task_permutation,
)

# Blocks of 1,100 start at offsets 0, 200, 100 into a task of 300: at offset 200 a block meets
# five tasks (the most that one can), and the block at 3,300 starts on a boundary.
STEPS, SWITCH, BLOCK = 6_600, 300, 1_100
IMAGES, LABELS = load_digits_data()
ROWS = {row.tobytes(): index for index, row in enumerate(IMAGES)}  # the 1,797 rows are distinct
PROBLEMS = {
    "inputs": permuted_digits(switch_every=SWITCH),
    "labels": label_permuted_digits(switch_every=SWITCH),
}


@pytest.fixture(scope="module")
def streams(blocks):
    return {name: blocks(problem, jax.random.key(0), [STEPS]) for name, problem in PROBLEMS.items()}


@pytest.fixture(params=["inputs", "labels"])
def kind_and_stream(request, streams):
    return request.param, *streams[request.param]


def permutations(state, size):
    """[tasks, size]: the permutation of each task of the stream."""
    tasks = jnp.arange(STEPS // SWITCH, dtype=jnp.uint32)
    return np.asarray(jax.vmap(lambda k: task_permutation(state.permutation_key, k, size))(tasks))


def source_rows(x, perms, task):
    """The data-set row of each step, undoing its task's pixel permutation (x_j = pixel[π(j)])."""
    pixels = np.empty_like(x)
    np.put_along_axis(pixels, perms[task], x, axis=1)
    return np.array([ROWS.get(np.rint(row * 16).astype(np.uint8).tobytes(), -1) for row in pixels])


def test_the_data_set_is_sklearns_digits():
    assert IMAGES.shape == (1_797, 64) and IMAGES.dtype == np.uint8 and IMAGES.max() == 16
    np.testing.assert_array_equal(np.unique(LABELS), np.arange(10))
    assert len(ROWS) == 1_797
    for problem in PROBLEMS.values():
        assert problem.num_features == 64 and problem.params["num_classes"] == 10
    assert permuted_digits().params["switch_every"] == 5_000
    assert label_permuted_digits().params["switch_every"] == 2_500


def test_shapes_dtypes_and_tasks(kind_and_stream):
    _, _, stream = kind_and_stream
    assert stream.x.shape == (STEPS, 64) and stream.x.dtype == np.float32
    assert stream.y.shape == (STEPS,) and stream.y.dtype == np.int32
    assert 0 <= stream.x.min() and stream.x.max() <= 1 and stream.x.max() == 1
    assert set(np.unique(stream.y)) == set(range(10))
    np.testing.assert_array_equal(stream.info["task"], np.arange(STEPS) // SWITCH)


def test_task_permutations_are_valid_and_differ_between_tasks(kind_and_stream):
    kind, state, _ = kind_and_stream
    size = 64 if kind == "inputs" else 10
    perms = permutations(state, size)
    np.testing.assert_array_equal(
        np.sort(perms, axis=1), np.broadcast_to(np.arange(size), perms.shape)
    )
    assert len({tuple(perm) for perm in perms}) == len(perms)
    assert not (perms == np.arange(size)).all(axis=1).any()  # task 0 is permuted too


def test_input_permuted_steps_are_data_set_examples_under_their_tasks_permutation(streams):
    state, stream = streams["inputs"]
    perms = permutations(state, 64)
    rows = source_rows(stream.x, perms, stream.info["task"])
    assert (rows >= 0).all()  # every step is an example, permuted by its own task's permutation
    np.testing.assert_array_equal(stream.y, LABELS[rows])
    # Under the neighbouring task's permutation the steps are not examples.
    wrong = source_rows(stream.x[:SWITCH], perms, np.ones(SWITCH, int))
    assert (wrong < 0).mean() > 0.99
    # Drawn uniformly with replacement: 6,600 draws over 1,797 rows, Poisson(3.7) counts.
    counts = np.bincount(rows, minlength=1_797)
    assert abs(counts.var() / counts.mean() - 1) < 0.15
    assert abs(np.mean(np.bincount(LABELS[rows]) / STEPS) - 0.1) < 1e-9
    assert np.all(np.abs(np.bincount(LABELS[rows]) / STEPS - 0.1) < 0.02)


def test_label_permuted_steps_are_examples_with_a_bijective_relabelling_per_task(streams):
    state, stream = streams["labels"]
    rows = source_rows(stream.x, np.arange(64)[None], np.zeros(STEPS, int))
    assert (rows >= 0).all()  # the pixels are not permuted
    perms = permutations(state, 10)
    np.testing.assert_array_equal(stream.y, perms[stream.info["task"], LABELS[rows]])
    mappings = []
    for task in range(STEPS // SWITCH):
        steps = stream.info["task"] == task
        pairs = set(zip(LABELS[rows[steps]], stream.y[steps], strict=True))
        assert len(pairs) == 10  # each label maps to one class, and onto all ten
        assert len({y for _, y in pairs}) == 10
        mappings.append(dict(pairs))
    assert all(a != b for a, b in zip(mappings, mappings[1:], strict=False))


def test_stream_does_not_depend_on_block_sizes(blocks, streams_equal, kind_and_stream):
    kind, state, stream = kind_and_stream
    parts_state, parts = blocks(PROBLEMS[kind], jax.random.key(0), [BLOCK] * 6)
    streams_equal(stream, parts)
    streams_equal(state, parts_state)


def test_same_key_same_stream_other_key_other_stream(blocks, streams_equal, streams):
    problem = PROBLEMS["inputs"]
    streams_equal(streams["inputs"], blocks(problem, jax.random.key(0), [STEPS]))
    other_state, other = blocks(problem, jax.random.key(1), [STEPS])
    assert not np.array_equal(streams["inputs"][1].x, other.x)
    assert not np.array_equal(permutations(streams["inputs"][0], 64), permutations(other_state, 64))


@pytest.mark.parametrize("factory", [permuted_digits, label_permuted_digits])
@pytest.mark.parametrize("switch_every", [0, -5, 2.5, True])
def test_bad_switch_every_raises(factory, switch_every):
    with pytest.raises(ValueError, match="`switch_every`"):
        factory(switch_every=switch_every)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"permute": "pixels"}, "permute"),
        ({"pixel_max": 0.0}, "pixel_max"),
        ({"num_classes": 5}, "num_classes"),
        ({"num_classes": 0}, "num_classes"),
        ({"labels": LABELS[:10]}, "labels"),
        ({"labels": LABELS.astype(float)}, "labels"),
        ({"labels": LABELS.astype(int) - 1}, "labels"),
        ({"images": IMAGES[0]}, "images"),
    ],
)
def test_bad_classification_arguments_raise(kwargs, name):
    arguments = {"images": IMAGES, "labels": LABELS, "switch_every": 10} | kwargs
    with pytest.raises(ValueError, match=f"`{name}`"):
        permuted_classification(**arguments)
