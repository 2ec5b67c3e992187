"""IDX files, the Fashion-MNIST loader and input-permuted Fashion-MNIST, on files made here."""

import gzip
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metastep.problems.fashion as fashion
from metastep.problems import load_fashion_mnist, permuted_fashion, read_idx, task_permutation

CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}
CODES[np.float64] = 0x0E
NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST_NAMES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
STEPS, SWITCH, BLOCK = 60, 7, 20  # blocks start at offsets 0, 6 and 5 into a task


def idx_bytes(array):
    """The IDX encoding of ``array``: magic number, big-endian dimensions and values."""
    array = np.asarray(array)
    header = bytes([0, 0, CODES[array.dtype.type], array.ndim])
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    return header + dims + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, gzipped=False):
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return path


def make_fashion(directory, num=40, rows=3, cols=4, names=NAMES, gzip_images=True, seed=0):
    """A small Fashion-MNIST look-alike: images gzipped (as Debian ships them), labels plain."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (num, rows, cols), dtype=np.uint8)
    images[0, 0, 0], labels = 255, np.arange(num, dtype=np.uint8) % 10
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gzip_images else ""
    write_idx(directory / f"{names[0]}{suffix}", images, gzipped=gzip_images)
    write_idx(directory / names[1], labels)
    return images, labels


@pytest.fixture(autouse=True)
def no_installed_data(monkeypatch, tmp_path):
    """Neither the environment variable nor Debian's files: each test says where the data are."""
    monkeypatch.delenv(fashion.FASHION_MNIST_ENV, raising=False)
    monkeypatch.setattr(fashion, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "debian")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fashion")
    return directory, *make_fashion(directory)


@pytest.fixture(scope="module")
def problem(data_dir):
    return permuted_fashion(switch_every=SWITCH, path=data_dir[0])


# --- IDX ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(CODES))
@pytest.mark.parametrize("gzipped", [False, True])
def test_read_idx_round_trips_every_type(tmp_path, dtype, gzipped):
    array = (np.arange(2 * 3 * 5).reshape(2, 3, 5) * 37 - 200).astype(dtype)
    result = read_idx(write_idx(tmp_path / "a.idx", array, gzipped))
    assert result.dtype == np.dtype(dtype) and result.dtype.isnative
    np.testing.assert_array_equal(result, array)


def test_read_idx_big_endian_dimensions_and_one_dimension(tmp_path):
    array = np.arange(300, dtype=np.int16)  # 300 > 255: the dimension's high byte matters
    path = write_idx(tmp_path / "labels", array)
    assert path.read_bytes()[:8] == bytes([0, 0, 0x0B, 1, 0, 0, 1, 44])
    np.testing.assert_array_equal(read_idx(str(path)), array)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00\x01\x08\x01" + struct.pack(">I", 1) + b"\x07", "not an IDX file"),
        (b"\x00", "not an IDX file"),
        (b"\x00\x00\x0a\x01" + struct.pack(">I", 1) + b"\x07", "type code 0x0A"),
        (b"\x00\x00\x08\x02" + struct.pack(">I", 2), "truncated IDX header"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"\x01\x02", "2 bytes of data"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x01\x02", "2 bytes of data"),
    ],
)
def test_read_idx_rejects_malformed_files(tmp_path, data, message):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(data))
    with pytest.raises(ValueError, match=message):
        read_idx(path)


# --- Loading -----------------------------------------------------------------------------------


def test_load_from_path_flattens_the_images(data_dir):
    directory, images, labels = data_dir
    loaded_images, loaded_labels = load_fashion_mnist(directory)
    assert loaded_images.dtype == loaded_labels.dtype == np.uint8
    np.testing.assert_array_equal(loaded_images, images.reshape(40, 12))
    np.testing.assert_array_equal(loaded_labels, labels)


def test_load_looks_in_the_first_location_given(tmp_path, monkeypatch):
    env_images, _ = make_fashion(tmp_path / "env", seed=1, gzip_images=False)
    debian_images, _ = make_fashion(tmp_path / "debian", seed=2)
    path_images, _ = make_fashion(tmp_path / "path", seed=3)
    np.testing.assert_array_equal(load_fashion_mnist()[0], debian_images.reshape(40, -1))
    monkeypatch.setenv(fashion.FASHION_MNIST_ENV, str(tmp_path / "env"))
    np.testing.assert_array_equal(load_fashion_mnist()[0], env_images.reshape(40, -1))
    loaded = load_fashion_mnist(path=tmp_path / "path")[0]
    np.testing.assert_array_equal(loaded, path_images.reshape(40, -1))


def test_load_the_test_split(tmp_path):
    images, labels = make_fashion(tmp_path, num=15, names=TEST_NAMES)
    loaded_images, loaded_labels = load_fashion_mnist(tmp_path, split="test")
    np.testing.assert_array_equal(loaded_images, images.reshape(15, -1))
    np.testing.assert_array_equal(loaded_labels, labels)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_fashion_mnist(tmp_path)


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_fashion_mnist()
    message = str(error.value)
    for expected in (
        str(tmp_path / "debian"),
        "apt-get install dataset-fashion-mnist",
        "path=",
        "$METASTEP_FASHION_MNIST",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        ".gz",
    ):
        assert expected in message
    (tmp_path / "partial").mkdir()
    write_idx(tmp_path / "partial" / NAMES[1], np.zeros(3, np.uint8))
    with pytest.raises(FileNotFoundError, match="missing train-images-idx3-ubyte \\("):
        load_fashion_mnist(tmp_path / "partial")
    with pytest.raises(FileNotFoundError, match="Fashion-MNIST"):
        permuted_fashion(path=tmp_path / "nowhere")


@pytest.mark.parametrize(
    "images, labels",
    [
        (np.zeros((4, 2, 2), np.uint8), np.zeros(5, np.uint8)),  # different N
        (np.zeros((4, 4), np.uint8), np.zeros(4, np.uint8)),  # images not [N, rows, cols]
        (np.zeros((4, 2, 2), np.float32), np.zeros(4, np.uint8)),  # not uint8
    ],
)
def test_mismatched_files_raise(tmp_path, images, labels):
    write_idx(tmp_path / NAMES[0], images)
    write_idx(tmp_path / NAMES[1], labels)
    with pytest.raises(ValueError, match="do not match"):
        load_fashion_mnist(tmp_path)


def test_bad_arguments_raise(data_dir):
    with pytest.raises(ValueError, match="`split`"):
        load_fashion_mnist(data_dir[0], split="validation")
    for switch_every in (0, 1.5):
        with pytest.raises(ValueError, match="`switch_every`"):
            permuted_fashion(switch_every=switch_every, path=data_dir[0])


# --- The stream --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stream(problem, blocks):
    return blocks(problem, jax.random.key(0), [STEPS])


def test_stream_is_permuted_examples_scaled_to_one(data_dir, problem, stream):
    _, images, labels = data_dir
    state, samples = stream
    assert problem.num_features == 12 and problem.params["switch_every"] == SWITCH
    assert samples.x.shape == (STEPS, 12) and samples.x.dtype == np.float32
    assert samples.y.dtype == np.int32 and samples.info["task"].dtype == np.int32
    np.testing.assert_array_equal(samples.info["task"], np.arange(STEPS) // SWITCH)
    flat = images.reshape(40, 12)
    tasks = jnp.arange(STEPS // SWITCH + 1, dtype=jnp.uint32)
    perms = np.asarray(jax.vmap(lambda k: task_permutation(state.permutation_key, k, 12))(tasks))
    for t in range(STEPS):
        pixels = np.empty(12)
        pixels[perms[t // SWITCH]] = samples.x[t] * 255  # x_j = pixel[π(j)] / 255
        matches = np.flatnonzero((np.rint(pixels) == flat).all(axis=1))
        assert len(matches) == 1 and samples.y[t] == labels[matches[0]]
    assert 0 <= samples.x.min() and samples.x.max() <= 1


def test_stream_does_not_depend_on_block_sizes(problem, stream, blocks, streams_equal):
    streams_equal(stream, blocks(problem, jax.random.key(0), [BLOCK] * 3))
    assert not np.array_equal(stream[1].x, blocks(problem, jax.random.key(1), [STEPS])[1].x)


@pytest.mark.skipif(
    not (fashion.DEBIAN_FASHION_MNIST_DIR / f"{NAMES[0]}.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_debians_fashion_mnist(monkeypatch):
    monkeypatch.undo()
    # The real Debian location, whatever another test directory's fixtures point the variable at.
    monkeypatch.delenv(fashion.FASHION_MNIST_ENV, raising=False)
    images, labels = load_fashion_mnist()
    assert images.shape == (60_000, 784) and images.max() == 255
    np.testing.assert_array_equal(np.bincount(labels), np.full(10, 6_000))
    problem = permuted_fashion()
    samples = jax.eval_shape(lambda s: problem.generate(s, 5), problem.init(jax.random.key(0)))[1]
    assert samples.x.shape == (5, 784) and samples.y.shape == (5,)
