"""Input-permuted Fashion-MNIST, read from IDX files on disk (no download).

Reference: Elsayed & Mahmood, "Addressing loss of plasticity and catastrophic forgetting in
continual learning" (UPGD), ICLR 2024: input-permuted MNIST, a new pixel permutation every 5,000
steps, batch 1; docs/problems.md#permuted_fashion. Fashion-MNIST (Xiao, Rasul & Vollgraf 2017:
70,000 grey 28×28 images of ten kinds of clothing) stands in for MNIST because Debian ships it:
``apt-get install dataset-fashion-mnist`` puts the four IDX files, gzipped, in
``/usr/share/datasets/fashion-mnist/``. The data are looked for in the first location that is
given: the ``path`` argument, else the directory named by ``$METASTEP_FASHION_MNIST``, else
Debian's directory; each file may be plain or gzipped (``.gz``).

The IDX format (LeCun et al., the MNIST distribution): two zero bytes, a type code (0x08 uint8,
0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, each
dimension as a big-endian uint32, then the values, big-endian, in row-major order.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from metastep._structure import recorded
from metastep.problems._base import Problem
from metastep.problems.permuted import permuted_classification

FASHION_MNIST_ENV = "METASTEP_FASHION_MNIST"
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in an IDX file, gzipped or not (told by its first bytes), native byte order.

    Raises:
      ValueError: the file is not a well-formed IDX file (bad magic number, unknown type code, or
        a size that does not match its dimensions).
    """
    path = Path(path)
    with open(path, "rb") as file:
        gzipped = file.read(2) == _GZIP_MAGIC
    with (gzip.open if gzipped else open)(path, "rb") as file:
        data = file.read()
    if len(data) < 4 or data[:2] != b"\0\0":
        raise ValueError(f"{path} is not an IDX file (its magic number must start with 0x0000)")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02X}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{path}: {len(data) - header} bytes of data, but shape {shape} of {dtype} needs "
            f"{expected}"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(directory: Path, name: str) -> Path | None:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load_fashion_mnist(
    path: str | os.PathLike | None = None, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST's ``split`` (``"train"``: 60,000 examples, ``"test"``: 10,000).

    Looks in ``path`` if given, else in ``$METASTEP_FASHION_MNIST`` if set, else in Debian's
    ``/usr/share/datasets/fashion-mnist/``; only that one directory is searched.

    Returns:
      ``(images [N, rows × cols] uint8, labels [N] uint8)``.

    Raises:
      FileNotFoundError: the directory lacks the split's files; the message says how to get them.
      ValueError: a bad ``split``, malformed files, or images and labels that do not match.
    """
    if split not in FASHION_MNIST_FILES:
        raise ValueError(f"`split` must be one of {tuple(FASHION_MNIST_FILES)}, got {split!r}")
    if path is not None:
        directory, origin = Path(path), "the `path` argument"
    elif os.environ.get(FASHION_MNIST_ENV):
        directory, origin = Path(os.environ[FASHION_MNIST_ENV]), f"${FASHION_MNIST_ENV}"
    else:
        directory, origin = DEBIAN_FASHION_MNIST_DIR, "Debian's location"
    names = FASHION_MNIST_FILES[split]
    files = [_find(directory, name) for name in names]
    if None in files:
        missing = ", ".join(name for name, file in zip(names, files, strict=True) if file is None)
        raise FileNotFoundError(
            f"Fashion-MNIST ({split}) not found in {directory} ({origin}): missing {missing} "
            f"(plain or .gz). Get the data with `apt-get install dataset-fashion-mnist` (Debian; "
            f"it installs {DEBIAN_FASHION_MNIST_DIR}/), or put the IDX files "
            f"{' and '.join(names)} (plain or .gz) in a directory and pass path=... or set "
            f"${FASHION_MNIST_ENV} to it."
        )
    images, labels = (read_idx(file) for file in files)
    if (
        images.ndim != 3
        or labels.ndim != 1
        or images.shape[0] != labels.shape[0]
        or images.dtype != np.uint8
        or labels.dtype != np.uint8
    ):
        raise ValueError(
            f"Fashion-MNIST files in {directory} do not match: images {images.shape} "
            f"{images.dtype} (want [N, rows, cols] uint8), labels {labels.shape} {labels.dtype} "
            f"(want [N] uint8)"
        )
    return images.reshape(images.shape[0], -1), labels


@recorded
def permuted_fashion(
    switch_every: int = 5_000, path: str | os.PathLike | None = None, split: str = "train"
) -> Problem:
    """Input-permuted Fashion-MNIST (UPGD's protocol): a new pixel permutation every 5,000 steps.

    ``x`` is the 784 pixels scaled to [0, 1] (divided by 255; UPGD standardizes instead), ``y``
    the class as an int32 index; one example drawn uniformly at random per step, as
    :func:`~metastep.problems.permuted.permuted_classification`. The 47 MB of training images
    become a constant of the compiled stream (about 2 s more to compile per block size).

    Args:
      switch_every: ``K`` ≥ 1, the steps of a task.
      path, split: where to find the data and which split to use, as :func:`load_fashion_mnist`.
    """
    images, labels = load_fashion_mnist(path, split)
    return permuted_classification(
        images,
        labels,
        switch_every=switch_every,
        permute="inputs",
        pixel_max=255,
        num_classes=10,
        name="permuted_fashion",
        description=f"Fashion-MNIST, a new pixel permutation every {switch_every} steps",
    )
