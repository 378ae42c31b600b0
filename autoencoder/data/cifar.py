"""CIFAR-10's binary version: fixed-size records read straight from the archive (no pickle)."""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path

import numpy as np

from autoencoder.data.formats import Raw, first_line
from autoencoder.errors import UserError

ARCHIVE = "cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"  # what the archive unpacks to
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
# 170,052,171 bytes; the MD5 the CIFAR page lists is c32a1d4ab5d03f1284b67883e8d87530.
SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
META_FILE = "batches.meta.txt"
NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
SIDE = 32
# One record: the label byte, then the 1,024 red, 1,024 green and 1,024 blue bytes, each
# plane row by row.
RECORD = 1 + 3 * SIDE * SIDE


class Missing(Exception):
    """A place without CIFAR-10's files; the message says what is lacking."""


def read_records(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One .bin file's records -> uint8 images (N, 32, 32, 3) and int64 labels (N,)."""
    if len(data) == 0 or len(data) % RECORD:
        raise UserError(
            f"{name}: {len(data):,} bytes is not a whole number of CIFAR-10 records ({RECORD:,} "
            f"bytes each: a label byte, then 1,024 red, 1,024 green and 1,024 blue bytes); the "
            f"file is truncated, or not CIFAR-10's binary version"
        )
    records = np.frombuffer(data, np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise UserError(
            f"{name}: record {bad[0]} has label {labels[bad[0]]}; CIFAR-10's labels are 0..9 "
            f"({bad.size:,} out of range; CIFAR-100's binary version has two label bytes)"
        )
    planes = records[:, 1:].reshape(-1, 3, SIDE, SIDE)
    return np.ascontiguousarray(planes.transpose(0, 2, 3, 1)), labels


def load(path: Path, source: str) -> Raw:
    """CIFAR-10 from its archive, the folder it unpacks to, or a folder holding either."""
    if path.is_file():
        return _from_archive(path, source)
    if not path.is_dir():
        raise Missing("missing")
    if (path / ARCHIVE).is_file():
        return _from_archive(path / ARCHIVE, source)
    for folder in (path / FOLDER, path):
        if (folder / TRAIN_FILES[0]).is_file():
            return _from_folder(folder, source)
    raise Missing(f"no {ARCHIVE} or {FOLDER}/")


def _from_folder(folder: Path, source: str) -> Raw:
    names = (*TRAIN_FILES, TEST_FILE)
    lacking = [n for n in names if not (folder / n).is_file()]
    if lacking:
        raise UserError(
            f"{folder}: lacks {', '.join(lacking)}; CIFAR-10's binary version has "
            f"{', '.join(names)} (unpack {ARCHIVE} again)"
        )
    files = {n: (folder / n).read_bytes() for n in names}
    meta = folder / META_FILE
    files[META_FILE] = meta.read_bytes() if meta.is_file() else None
    return _raw(files, str(folder), f"{source}: {folder}")


def _from_archive(path: Path, source: str) -> Raw:
    """Read the records from the .tar.gz in memory: nothing is unpacked onto the disk."""
    wanted = (*TRAIN_FILES, TEST_FILE, META_FILE)
    files: dict[str, bytes | None] = dict.fromkeys(wanted)
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                name = Path(member.name).name
                if member.isfile() and name in files and files[name] is None:
                    files[name] = archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise UserError(
            f"{path}: not a readable {ARCHIVE} ({first_line(exc)}); delete it and download it again"
        ) from None
    lacking = [n for n in wanted[:-1] if files[n] is None]
    if lacking:
        raise UserError(
            f"{path}: lacks {', '.join(lacking)}; expected CIFAR-10's binary version "
            f"({ARCHIVE}, not the python or matlab version)"
        )
    return _raw(files, str(path), f"{source}: {path}")


def _raw(files: dict, where: str, source: str) -> Raw:
    parts = [read_records(files[n], f"{where}: {n}") for n in TRAIN_FILES]
    x_train = np.concatenate([x for x, _ in parts])
    y_train = np.concatenate([y for _, y in parts])
    x_test, y_test = read_records(files[TEST_FILE], f"{where}: {TEST_FILE}")
    return Raw(
        x_train, y_train, x_test, y_test, source=source, class_names=_names(files[META_FILE])
    )


def _names(meta: bytes | None) -> tuple[str, ...]:
    """The class names batches.meta.txt lists, else CIFAR-10's own."""
    if meta:
        names = tuple(line.strip() for line in meta.decode("ascii", "replace").splitlines())
        names = tuple(n for n in names if n)
        if len(names) == 10:
            return names
    return NAMES
