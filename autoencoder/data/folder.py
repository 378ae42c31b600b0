"""A folder of image files: its classes and splits, the scan before training, cached or streamed."""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autoencoder.data.images import (
    SUFFIXES,
    Decode,
    decode_image,
    fit_image,
    is_image,
    load_image,
)
from autoencoder.errors import UserError

log = logging.getLogger(__name__)

# Sub-folders that are splits, when train/ is among them (any case).
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation"), "test": ("test",)}
# The class of images lying directly in a folder whose other images are in class sub-folders.
UNSORTED = "(no folder)"
# data.cache: auto keeps the decoded images in memory up to this many bytes, else streams.
CACHE_BUDGET = 1 << 30
# A folder without test/ gives its test split with this seed, not config.seed: the test images
# stay the same whatever seed a run trains with.
TEST_SEED = 20140101
# Images this large (pixels) are decoded by several threads: Pillow releases the GIL while it
# decodes, which pays only when decoding, not Python's per-file work, is most of the time.
THREADED_PIXELS = 256 * 256
KINDS = "PNG, JPEG, BMP or GIF"


class ImageFiles:
    """A split held as image files, decoded when read: it stands in for its uint8 array."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, paths: list[str], decode: Decode, image_shape: tuple[int, int, int]):
        self.paths, self.spec, self.image_shape = list(paths), decode, tuple(image_shape)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.paths), *self.image_shape)

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self.load([int(index)])[0]
        return self.load(np.arange(len(self.paths))[index])

    def take(self, indices) -> ImageFiles:
        """The files at `indices`, in that order, still unread."""
        return ImageFiles([self.paths[i] for i in indices], self.spec, self.image_shape)

    @staticmethod
    def join(parts: list[ImageFiles]) -> ImageFiles:
        """The files of several parts one after another, still unread, decoded as the first's."""
        paths = [path for part in parts for path in part.paths]
        return ImageFiles(paths, parts[0].spec, parts[0].image_shape)

    def decode(self, indices, blobs) -> np.ndarray:
        """The files' bytes, already read, decoded: uint8 (k, H, W, C); indices name them."""
        out = np.empty((len(blobs), *self.image_shape), np.uint8)
        for j, (i, blob) in enumerate(zip(indices, blobs)):
            out[j] = decode_image(blob, self.paths[i], self.spec)
        return out

    def load(self, indices) -> np.ndarray:
        """The images at `indices`, decoded: uint8 (k, H, W, C)."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        out = np.empty((len(indices), *self.image_shape), np.uint8)
        for j, i in enumerate(indices):
            out[j] = load_image(self.paths[i], self.spec)
        return out


@dataclass
class Listing:
    """What a folder holds: (path, class or None) per split folder ("all" without train/)."""

    root: Path
    parts: dict[str, list[tuple[str, str | None]]]
    classes: tuple[str, ...]
    ignored: int  # files that are not images (by suffix)
    class_folders: bool
    empty: tuple[str, ...] = ()  # class folders without a single image: no class
    outside: tuple[str, ...] = ()  # beside train/: images in no split folder, left out

    def label_of(self, name: str | None) -> int:
        if not self.class_folders:
            return 0
        return self.classes.index(UNSORTED if name is None else name)


def list_folder(root: Path) -> Listing:
    """The image files under root (recursive, sorted, hidden files left out), split and labelled."""
    if not root.exists():
        # A relative path is read from the folder the command runs in, not the config's.
        where = "" if root.is_absolute() else f" (from {Path.cwd()})"
        raise UserError(
            f"data.path {root}{where}: no such folder; point data.path at the folder that holds "
            f"the images"
        )
    if not root.is_dir():
        raise UserError(
            f"data.path {root}: a file, not a folder; data.dataset folder reads every image in a "
            f"folder: point data.path at the folder (e.g. {root.parent})"
        )
    subfolders = {p.name.lower(): p for p in _entries(root) if p.is_dir()}
    split_dirs = {
        split: next((subfolders[n] for n in names if n in subfolders), None)
        for split, names in SPLIT_FOLDERS.items()
    }
    if split_dirs["train"] is None:
        found = {"all": root}
    else:
        found = {split: folder for split, folder in split_dirs.items() if folder is not None}
    parts, ignored = {}, 0
    for split, folder in found.items():
        parts[split], others = _walk(folder)
        ignored += len(others)
    total = sum(len(files) for files in parts.values())
    if total == 0:
        if ignored == 0:
            raise UserError(
                f"data.path {root}: the folder is empty; put image files ({KINDS}) in it, in "
                f"class sub-folders if they have classes"
            )
        raise UserError(
            f"data.path {root}: {ignored:,} files but no images among them (images end in "
            f"{', '.join(SUFFIXES)})"
        )
    for split, files in parts.items():
        if not files:
            raise UserError(
                f"data.path {found[split]}: no image files ({KINDS}) in this split folder; add "
                f"some, or remove the folder"
            )
    names = sorted({c for files in parts.values() for _, c in files if c is not None})
    class_folders = bool(names)
    if class_folders and any(c is None for files in parts.values() for _, c in files):
        names.append(UNSORTED)
    classes = tuple(names) if class_folders else (root.resolve().name or "images",)
    tops = list(found.values())
    splits = {folder.resolve() for folder in split_dirs.values() if folder is not None}
    empty = sorted(
        {
            d.name
            for top in tops
            for d in _entries(top)
            if d.is_dir() and d.resolve() not in splits and d.name not in names
        }
    )
    outside = () if split_dirs["train"] is None else _outside(root, splits)
    return Listing(root, parts, classes, ignored, class_folders, tuple(empty), outside)


def _outside(root: Path, splits: set[Path]) -> tuple[str, ...]:
    """Beside the split folders: each other folder holding images ("valid/ (20 images)") and
    each image file, which no split reads."""
    found = []
    for entry in _entries(root):
        if entry.resolve() in splits:
            continue
        if entry.is_dir():
            count = len(_walk(entry)[0])
            if count:
                found.append(f"{entry.name}/ ({count:,} image{'s' * (count > 1)})")
        elif is_image(entry):
            found.append(entry.name)
    return tuple(found)


def _entries(folder: Path) -> list[Path]:
    """A folder's entries, hidden ones (.DS_Store, .ipynb_checkpoints) left out."""
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise UserError(f"data.path {folder}: cannot list: {exc.strerror or exc}") from None


def image_files(folder: Path) -> tuple[list[str], list[str]]:
    """The image files under folder as training reads them (sorted, hidden ones left out, links
    followed), and the other files."""
    files, others = _walk(folder)
    return [path for path, _ in files], others


def _walk(folder: Path) -> tuple[list[tuple[str, str | None]], list[str]]:
    """(path, first-level sub-folder or None) of every image under folder, and the other files."""
    files, ignored, seen = [], [], set()
    for top, dirs, names in os.walk(folder, followlinks=True):
        stat = os.stat(top)
        if (stat.st_dev, stat.st_ino) in seen:  # a link back up the tree
            dirs[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        relative = Path(top).relative_to(folder).parts
        label = relative[0] if relative else None
        for name in names:
            if name.startswith("."):
                continue
            if is_image(Path(name)):
                files.append((os.path.join(top, name), label))
            else:
                ignored.append(os.path.join(top, name))
    return sorted(files), sorted(ignored)


def first_image(data) -> np.ndarray:
    """The first readable image of data.path as training decodes it (for the input shape)."""
    listing = list_folder(Path(data.path).expanduser())
    split = "train" if "train" in listing.parts else "all"
    decode = Decode(data.color, data.image_size, data.fit)
    errors = []
    for path, _ in listing.parts[split]:
        try:
            return load_image(path, decode)
        except UserError as exc:
            errors.append(str(exc))
    total = len(listing.parts[split])
    raise UserError(f"{errors[0]} (all {total:,} image files there cannot be read)")


# ---------------------------------------------------------------------------------------------
# The scan: every file decoded once before training


@dataclass
class Scan:
    """What decoding every file found: the pixels (when kept), the bad files, sizes and sums."""

    shape: tuple[int, int, int]
    ok: np.ndarray  # bool per file
    bad: list[tuple[str, str]]  # (path, message)
    sizes: Counter  # (h, w, c) as stored -> files
    first_of: dict  # (h, w, c) as stored -> its first file
    sums: np.ndarray  # per-channel sums of the first `pool` images (int64)
    pixels: np.ndarray | None = None
    seconds: float = 0.0


def scan(paths: list[str], decode: Decode, keep: bool, pool: int) -> Scan:
    """Decode every file: count the bad ones, find the sizes, keep the pixels if asked."""
    started = time.perf_counter()
    reference = None
    bad, sizes, first_of = [], Counter(), {}
    ok = np.zeros(len(paths), bool)
    pixels = sums = None
    plain = Decode(decode.color)  # as stored: the size is fitted after it is recorded
    for i, result in enumerate(_decoded(paths, plain)):
        if isinstance(result, str):
            bad.append((paths[i], result))
            continue
        stored = result.shape
        sizes[stored] += 1
        first_of[stored] = min(first_of.get(stored, paths[i]), paths[i])
        image = result if decode.size is None else fit_image(result, decode.size, decode.fit)
        if reference is None:
            reference = image.shape
            sums = np.zeros(reference[2], np.int64)
            if keep:
                pixels = np.zeros((len(paths), *reference), np.uint8)
        if image.shape != reference:
            continue  # refused after the scan, which first counts the bad files
        ok[i] = True
        if i < pool:
            sums += image.reshape(-1, image.shape[2]).sum(axis=0, dtype=np.int64)
        if keep:
            pixels[i] = image
    shape = reference or (0, 0, 0)
    # Reported in the order of the paths, not of the splits the scan went through.
    seconds = time.perf_counter() - started
    return Scan(shape, ok, sorted(bad), sizes, first_of, sums, pixels, seconds)


def _decoded(paths: list[str], decode: Decode):
    """Each file's pixels, or its one-line error, in order."""

    def one(path):
        try:
            return load_image(path, decode)
        except UserError as exc:
            return str(exc)

    if not paths:
        return
    first = one(paths[0])
    yield first
    large = not isinstance(first, str) and first.shape[0] * first.shape[1] >= THREADED_PIXELS
    if large and (os.cpu_count() or 1) > 1:
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            yield from pool.map(one, paths[1:], chunksize=8)
    else:
        for path in paths[1:]:
            yield one(path)


def check_scan(result: Scan, root: Path, data, total: int) -> None:
    """Refuse what the scan found wrong, one line each; warn about skipped files."""
    if result.bad:
        first, count = result.bad[0][1], len(result.bad)
        if len(result.bad) == total:
            raise UserError(f"{first} (none of the {total:,} image files can be read)")
        if not data.skip_bad:
            raise UserError(
                f"{first} ({count:,} of {total:,} image files cannot be read; fix or remove "
                f"{'it' if count == 1 else 'them'}, or set data.skip_bad: true to skip "
                f"{'it' if count == 1 else 'them'})"
            )
        log.warning(
            "data.skip_bad: skipped %s of %s image files that cannot be read; the first: %s",
            f"{count:,}",
            f"{total:,}",
            first,
        )
    # The sizes by their first file in path order: the files named are the first that differ.
    stored = sorted(result.first_of, key=result.first_of.get)
    if data.image_size is None and len({s[:2] for s in stored}) > 1:
        a = stored[0]
        b = next(s for s in stored if s[:2] != a[:2])
        raise UserError(
            f"data.path {root}: images differ in size (H x W): {result.first_of[a]} is {a[0]}x{a[1]}, "
            f"{result.first_of[b]} is {b[0]}x{b[1]}; set data.image_size: [H, W] (with "
            f"data.fit: resize, crop or pad) to bring them to one size"
        )
    if data.color is None and len({s[2] for s in stored}) > 1:
        grey = next(s for s in stored if s[2] == 1)
        rgb = next(s for s in stored if s[2] != 1)
        raise UserError(
            f"data.path {root}: images differ in colour: {result.first_of[grey]} is greyscale, "
            f"{result.first_of[rgb]} is RGB; set data.color: rgb (or grayscale) to read them "
            f"all alike"
        )
    if data.patches is not None:
        h, w = result.shape[:2]
        ph, pw = data.patches.size
        if h < ph or w < pw:
            example = result.first_of[stored[0]]
            raise UserError(
                f"{example}: {h}x{w} is smaller than data.patches.size {ph}x{pw}; use smaller "
                f"patches, or data.image_size to enlarge the images"
            )


def cache_choice(data, count: int, shape: tuple[int, ...]) -> tuple[bool, str]:
    """(keep the decoded images in memory?, the reason, for the report)."""
    nbytes = count * int(np.prod(shape))
    size = f"{nbytes / 2**20:,.0f} MB decoded"
    budget = f"{CACHE_BUDGET / 2**20:,.0f} MB"
    if data.cache == "memory":
        return True, f"in memory ({size}; data.cache: memory)"
    if data.cache == "none":
        return False, f"streamed from the files ({size} if held; data.cache: none)"
    if nbytes <= CACHE_BUDGET:
        return True, f"in memory ({size}; data.cache: auto keeps up to {budget})"
    return False, f"streamed from the files ({size}: above the {budget} data.cache: auto keeps)"
