"""Train / validation / test splits of a dataset, their float conversion, and their report."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autoencoder.config import level_text
from autoencoder.config.schema import augment_too_far
from autoencoder.data import folder
from autoencoder.data.folder import ImageFiles
from autoencoder.data.formats import DIGITS
from autoencoder.data.images import Decode, fit_image, load_image
from autoencoder.data.sources import load_raw, offline
from autoencoder.errors import UserError, named

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")
SKIPPED_LISTED = 20  # unreadable files `autoencoder data` names one by one
# Evaluation, float conversion and evaluation noise go over a split a chunk at a time: at most
# CHUNK_IMAGES images and CHUNK_VALUES values, whatever the split's size or its images' size.
CHUNK_IMAGES = 1000
CHUNK_VALUES = 1 << 23
COLOR_NAMES = {1: "grayscale", 3: "RGB"}


def chunk_size(image_shape: tuple[int, ...]) -> int:
    """Images per chunk for images of this (H, W, C)."""
    return max(1, min(CHUNK_IMAGES, CHUNK_VALUES // max(1, int(np.prod(image_shape)))))


@dataclass
class Splits:
    """uint8 pixels (N, H, W, C) and int64 labels of each split, and where they came from."""

    # A split's pixels are an array in memory, or ImageFiles (decoded when read) for a folder
    # that is streamed; pixels(), chunks(), count() and images() work for both.

    # Held as bytes, a quarter of the memory of float32, for the whole run; images() converts.
    train_pixels: Any
    y_train: np.ndarray
    val_pixels: Any
    y_val: np.ndarray
    test_pixels: Any
    y_test: np.ndarray
    source: str
    class_names: tuple[str, ...] = DIGITS
    patches: Any = None  # data.patches: the model sees crops of size (h, w) of these images
    report: dict = field(default_factory=dict)  # what the loader found, for describe()

    def pixels(self, split: str):
        """The uint8 pixels of "train", "val" or "test", as held (not a copy)."""
        return getattr(self, f"{_checked(split)}_pixels")

    def labels(self, split: str) -> np.ndarray:
        """The int64 labels of "train", "val" or "test"."""
        return getattr(self, f"y_{_checked(split)}")

    def images(self, split: str) -> np.ndarray:
        """The split as float32 in [0, 1]: a new array on each call, so keep the result."""
        pixels = self.pixels(split)
        return scaled(pixels if isinstance(pixels, np.ndarray) else pixels[:])

    def count(self, split: str) -> int:
        """The number of images in the split (nothing converted)."""
        return len(self.pixels(split))

    def chunks(self, split: str):
        """(index of the first image, uint8 pixels) of the split, chunk by chunk, in order."""
        pixels, step = self.pixels(split), chunk_size(self.image_shape)
        for start in range(0, len(pixels), step):
            yield start, pixels[start : start + step]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the whole images."""
        return tuple(self.train_pixels.shape[1:])

    @property
    def streamed(self) -> bool:
        """True when the images are decoded from their files as they are read."""
        return isinstance(self.train_pixels, ImageFiles)


def take_images(pixels, indices):
    """The images at `indices` of a split as held: a uint8 array, or ImageFiles (still unread)."""
    indices = np.asarray(indices, np.int64)
    return pixels.take(indices) if isinstance(pixels, ImageFiles) else pixels[indices]


def join_images(parts: list):
    """Several splits' images one after another, held as they are: an array, or ImageFiles."""
    return ImageFiles.join(parts) if isinstance(parts[0], ImageFiles) else np.concatenate(parts)


def subset_splits(splits: Splits, picks: dict[str, np.ndarray], source: str, into: str = "val"):
    """A Splits whose `into` split holds the images at picks[split] of each split in turn, with
    their labels; its other splits are empty, so what reads it reaches no other image."""
    together = join_images([take_images(splits.pixels(s), index) for s, index in picks.items()])
    labels = np.concatenate([splits.labels(s)[np.asarray(i, np.int64)] for s, i in picks.items()])
    # Empty splits held as the images are, so a streamed subset still says it is streamed.
    empty, none = take_images(together, []), labels[:0]
    held = {}
    for split in SPLIT_NAMES:
        pixels, y = (together, labels) if split == _checked(into) else (empty, none)
        held |= {f"{split}_pixels": pixels, f"y_{split}": y}
    return Splits(**held, source=source, class_names=splits.class_names, patches=splits.patches)


def _checked(split: str) -> str:
    """The split name if it is one of SPLIT_NAMES, else ValueError."""
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; expected 'train', 'val' or 'test'")
    return split


def load_splits(config, *, download: bool | None = None) -> Splits:
    """Train / validation / test splits for a Config (uses config.data and config.seed).

    Keeps the configured classes, caps the training pool at data.limit, then cuts it into
    train / validation with a shuffle seeded by config.seed; the test set is the dataset's own
    (a folder's test/, else data.test_split with a fixed seed). A folder is scanned first: every
    file decoded once, its bad files refused (or skipped), its images kept in memory or streamed
    as data.cache says.

    Args:
      config: the whole run Config.
      download: allow the last-resort download; None means "unless $AUTOENCODER_OFFLINE is set".
    Raises:
      UserError: no data found, a corrupt file, or classes/limit that leave no images.
    """
    data = config.data
    if data.dataset == "folder":
        return _folder_splits(config)
    _warn_folder_only_keys(data)
    if download is None:
        skip = "AUTOENCODER_OFFLINE is set" if offline() else None
    else:
        skip = None if download else "download=False"
    raw = load_raw(data, skip)
    keep = class_indices(data.classes, raw.class_names, data.dataset)
    x_pool, y_pool = _keep_classes(raw.x_train, raw.y_train, keep)
    x_test, y_test = _keep_classes(raw.x_test, raw.y_test, keep)
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
    x_pool, x_test = conform(x_pool, data), conform(x_test, data)
    splits = Splits(
        x_pool[train],
        y_pool[train],
        x_pool[val],
        y_pool[val],
        x_test,
        y_test,
        source=raw.source,
        class_names=raw.class_names,
        patches=data.patches,
    )
    _check_patches(splits, data, data.dataset)
    _check_augment(splits, data)
    return splits


# Keys a built-in dataset has no use for: its images are arrays, not files, and all but the
# photos come with a test set of their own.
FOLDER_ONLY_KEYS = {"cache": "data.cache", "skip_bad": "data.skip_bad"}
OWN_TEST_SET = ("mnist", "fashion_mnist", "mnist_sample", "cifar10")


def _warn_folder_only_keys(data) -> None:
    """Say so when a key the config changes has no effect on its built-in dataset."""
    # Changed from its default, not merely present: a run's saved config.yaml holds every key.
    default = type(data)()
    changed = {
        f for f in (*FOLDER_ONLY_KEYS, "test_split") if getattr(data, f) != getattr(default, f)
    }
    unused = [key for field, key in FOLDER_ONLY_KEYS.items() if field in changed]
    if unused:
        log.warning(
            "%s: set, but %s's images are arrays, not files, so %s no effect; they are for "
            "data.dataset folder",
            " and ".join(unused),
            data.dataset,
            "it has" if len(unused) == 1 else "they have",
        )
    if "test_split" in changed and data.dataset in OWN_TEST_SET:
        log.warning(
            "data.test_split %g: set, but %s has a test set of its own, which it uses whole "
            "(data.classes alone narrows it)",
            data.test_split,
            data.dataset,
        )


def _keep_classes(x: np.ndarray, y: np.ndarray, classes: list[int] | None):
    """Only the images whose label is in `classes` (all when None)."""
    if classes is None:
        return x, y
    keep = np.isin(y, classes)
    return x[keep], y[keep]


def class_index(key: int | str, names: tuple[str, ...]) -> int | None:
    """A class given by name or number as its label number; None if the data has no such class.

    A number that is a class's name means that class (folders 1/, 2/, 10/: 1 is folder 1, not
    the second folder in sorted order, 10/); any other number is a position in `names`.
    """
    if isinstance(key, bool):
        return None
    if str(key) in names:
        return names.index(str(key))
    if isinstance(key, str):
        return None
    return key if 0 <= key < len(names) else None


def class_indices(keys: list | None, names: tuple[str, ...], where: str) -> list[int] | None:
    """data.classes (numbers or names) as label numbers; None keeps every class."""
    if keys is None:
        return None
    shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    out = []
    for key in keys:
        index = class_index(key, names)
        if index is None and isinstance(key, str):
            raise UserError(
                f"data.classes: '{key}' is not a class of {where}; its classes: {shown}"
            )
        if index is None:
            raise UserError(
                f"data.classes: {key} is not a class number of {where} (0 to {len(names) - 1}: "
                f"{shown})"
            )
        out.append(index)
    return out


def conform(x: np.ndarray, data) -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, C) -> (N, H, W, C) in data.color and data.image_size."""
    if x.ndim == 3:
        x = x[..., None]
    if data.color == "rgb" and x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    elif data.color == "grayscale" and x.shape[-1] == 3:
        x = luma(x)
    if data.image_size is not None and tuple(x.shape[1:3]) != tuple(data.image_size):
        out = np.empty((len(x), *data.image_size, x.shape[-1]), np.uint8)
        for i, image in enumerate(x):
            out[i] = fit_image(image, data.image_size, data.fit)
        x = out
    return x


def luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) -> grey (..., 1), exactly as Pillow's convert("L") computes it."""
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    # ITU-R 601-2 luma in 16-bit fixed point, rounded: Pillow's Convert.c.
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[..., None]


def _check_patches(splits: Splits, data, where: str) -> None:
    """Patches must fit inside the images they are cut from."""
    if data.patches is None:
        return
    (h, w, _), (ph, pw) = splits.image_shape, data.patches.size
    if h < ph or w < pw:
        raise UserError(
            f"data.patches.size {ph}x{pw} is larger than the {h}x{w} images of {where}; use "
            f"smaller patches, or data.image_size to enlarge the images"
        )


def _check_augment(splits: Splits, data) -> None:
    """A shift must be smaller than what the model sees: the mirrored edge fills it."""
    size = data.patches.size if data.patches is not None else splits.image_shape[:2]
    if data.augment is not None and data.augment.shift >= min(size):
        raise UserError(augment_too_far(data.augment.shift, size))


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded shuffle of range(n) cut into (train, validation); both keep at least one item."""
    n_val = min(max(1, round(n * fraction)), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return order[n_val:], order[:n_val]


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1], a new array."""
    return scaled(x.reshape(*x.shape, 1))


def scaled(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1] of the same shape, a new array."""
    out = pixels.astype(np.float32)
    out /= 255.0  # in place: dividing into a new array would hold a second float32 copy
    return out


# ---------------------------------------------------------------------------------------------
# A folder of images


@dataclass
class _Part:
    """The files and labels of one split of a folder."""

    paths: list[str]
    labels: list[int]

    def take(self, indices) -> _Part:
        return _Part([self.paths[i] for i in indices], [self.labels[i] for i in indices])

    def keep(self, classes: list[int] | None) -> _Part:
        if classes is None:
            return self
        return self.take([i for i, y in enumerate(self.labels) if y in classes])

    def __len__(self) -> int:
        return len(self.paths)


def _folder_splits(config) -> Splits:
    """Splits of data.path: listed, split, scanned; in memory or streamed."""
    data = config.data
    root = Path(data.path).expanduser()
    listing = folder.list_folder(root)
    for key in data.classes or []:
        if str(key) in listing.empty:
            raise UserError(
                f"data.classes: {key!r} is a folder under data.path {root} without a single "
                f"image, so no class; add images to it, or leave it out of data.classes"
            )
    if listing.empty:
        log.warning(
            "data.path %s: %d class folder(s) without images, left out: %s",
            *(root, len(listing.empty), ", ".join(listing.empty[:5])),
        )
    if listing.outside:
        shown = ", ".join(listing.outside[:5]) + (" ..." if len(listing.outside) > 5 else "")
        log.warning(
            "data.path %s: %s beside its split folders, left out: only train/, val/ (or "
            "validation/) and test/ are read; move the images into one, or rename the folder",
            *(root, shown),
        )
    keep = class_indices(data.classes, listing.classes, f"data.path {root}")
    parts, how = _folder_parts(config, listing, keep)
    paths = [p for split in SPLIT_NAMES for p in parts[split].paths]
    decode = Decode(data.color, data.image_size, data.fit)
    shape = _first_shape(paths, decode)
    cached, cache_text = folder.cache_choice(data, len(paths), shape)
    pool = len(parts["train"]) + len(parts["val"])
    scan = folder.scan(paths, decode, cached, pool)
    folder.check_scan(scan, root, data, len(paths))
    log.info("scanned %s image files in %.1f s", f"{len(paths):,}", scan.seconds)
    held, start = {}, 0
    for split in SPLIT_NAMES:
        part, stop = parts[split], start + len(parts[split])
        ok = scan.ok[start:stop]
        if not ok.any():
            raise UserError(
                f"data.path {root}: every image of the {split} split is a file that cannot be "
                f"read (data.skip_bad skipped them); fix some of them, or add images"
            )
        labels = np.asarray(part.labels, np.int64)[ok]
        if cached:
            pixels = scan.pixels[start:stop]
            pixels = pixels if ok.all() else pixels[ok]
        else:
            pixels = ImageFiles([p for p, good in zip(part.paths, ok) if good], decode, scan.shape)
        held[split] = (pixels, labels)
        if split == "test":  # which file each test image is, for the reports that list them
            test_files = [
                Path(p).relative_to(root).as_posix() for p, good in zip(part.paths, ok) if good
            ]
        start = stop
    listed = sum(len(files) for files in listing.parts.values())
    pool_ok = int(scan.ok[:pool].sum())
    files = {split: file_digest(root, parts[split].paths) for split in SPLIT_NAMES}
    splits = Splits(
        *held["train"],
        *held["val"],
        *held["test"],
        source=f"data.path: {listed:,} image files in {root}",
        class_names=listing.classes,
        patches=data.patches,
        report={
            "ignored": listing.ignored,
            "used": len(paths),
            "skipped": scan.bad if data.skip_bad else [],
            "stored": scan.sizes,
            "splits": how,
            "classes": (
                f"{len(listing.classes)} class folders"
                if listing.class_folders
                else "no class folders (one class)"
            ),
            "cache": cache_text,
            "files": files,
            "test_files": test_files,
            "pool_mean": scan.sums / max(1, pool_ok * scan.shape[0] * scan.shape[1]) / 255.0,
        },
    )
    _check_augment(splits, data)
    return splits


def file_digest(root: Path, paths: list[str]) -> dict:
    """{files, sha256} of a split's files named relative to root: the same after a move."""
    import hashlib

    names = "\n".join(Path(p).relative_to(root).as_posix() for p in paths)
    return {"files": len(paths), "sha256": hashlib.sha256(names.encode()).hexdigest()}


def _first_shape(paths: list[str], decode: Decode) -> tuple[int, int, int]:
    """(H, W, C) of the first file that decodes (the scan reports the others)."""
    for path in paths:
        try:
            return load_image(path, decode).shape
        except UserError:
            continue
    return (0, 0, 0)


def _folder_parts(config, listing, keep) -> tuple[dict[str, _Part], str]:
    """train / val / test files of a folder: its split folders, else the seeded splits."""
    data = config.data

    def part(name):
        files = listing.parts[name]
        return _Part([p for p, _ in files], [listing.label_of(c) for _, c in files])

    pool = part("train" if "train" in listing.parts else "all")
    how = []
    if "val" in listing.parts:
        how.append("val/ folder")
    else:
        how.append(f"validation_split {data.validation_split:g} (seed {config.seed})")
    if "test" in listing.parts:
        test = part("test")
        how.append("test/ folder")
    else:
        if len(pool) < 3:
            raise UserError(
                f"data.path {listing.root}: {len(pool)} image file(s); a folder without a test/ "
                f"folder needs at least 3 (to train, validate and test)"
            )
        kept, held = split_indices(len(pool), data.test_split, folder.TEST_SEED)
        pool, test = pool.take(np.sort(kept)), pool.take(np.sort(held))
        how.append(f"test_split {data.test_split:g} (fixed seed)")
    pool, test = pool.keep(keep), test.keep(keep)
    val = part("val").keep(keep) if "val" in listing.parts else None
    if data.limit is not None:
        pool = pool.take(range(min(data.limit, len(pool))))
    if keep is not None:
        _refuse_a_split_folder_without_the_classes(listing, keep, pool, val, test)
    if len(pool) < (1 if val is not None else 2) or len(test) == 0 or (val is not None and not val):
        raise UserError(
            f"data.path {listing.root}: data.classes/limit leave too few images (classes "
            f"{data.classes}, limit {data.limit}: {len(pool)} in the training pool, "
            f"{len(val) if val is not None else 'no val/ folder'} to validate, {len(test)} to "
            f"test); list classes the folder holds, or raise data.limit"
        )
    if val is None:
        train, held = split_indices(len(pool), data.validation_split, config.seed)
        pool, val = pool.take(train), pool.take(held)
    return {"train": pool, "val": val, "test": test}, ", ".join(how)


def _refuse_a_split_folder_without_the_classes(listing, keep, pool, val, test) -> None:
    """One line naming the split folder that holds none of the kept classes, and its fixes."""
    names = [listing.classes[i] for i in keep]
    shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
    splits = {"train": pool, "val": val, "test": test}
    for split, part in splits.items():
        if split not in listing.parts or (part is not None and len(part)):
            continue
        # The folder as the user named it (Test/, validation/).
        where = next(
            p.name for p in listing.root.iterdir() if p.name.lower() in folder.SPLIT_FOLDERS[split]
        )
        fix = {
            "train": f"add images to it, or keep classes {where}/ holds",
            "val": f"add images to it, or remove {where}/ to hold out data.validation_split of "
            "the training images instead",
            "test": f"add images to it, or keep classes {where}/ holds",
        }[split]
        raise UserError(
            f"data.path {listing.root}: its {where}/ folder holds no image of {shown} (the "
            f"classes data.classes or anomaly.normal keep); {fix}"
        )


# ---------------------------------------------------------------------------------------------
# The model's input shape


def data_shape(config) -> tuple[int, int, int]:
    """(H, W, C) the data gives the model: a patch's or a whole image's."""
    data = config.data
    shape = data.input_shape()
    if shape is None:  # a folder without image_size and color: its first readable image says
        image = folder.first_image(data)
        shape = (*(data.patches.size if data.patches else image.shape[:2]), image.shape[2])
    return tuple(shape)


def resolve_input_shape(config):
    """The config with model.input_shape the data's (H, W, C) if it was left out.

    Args:
      config: a Config; reads at most a folder's first readable image, nothing for the
        built-in datasets.
    Raises:
      UserError: a given model.input_shape that differs from what the data gives the model.
    """
    data = config.data
    shape = data_shape(config)
    what = "patches" if data.patches is not None else "images"
    given = tuple(config.model.input_shape)
    if "input_shape" not in config.model.model_fields_set:
        model = config.model.model_copy(update={"input_shape": tuple(shape)})
        return config.model_copy(update={"model": model})
    if given != tuple(shape):
        where = data.path if data.dataset == "folder" else data.dataset
        wanted = f"[{', '.join(map(str, shape))}]"
        setting = named(f'--set "model.input_shape={wanted}"', f"input_shape={wanted}")
        unset = named("model.input_shape=null", "input_shape=None")
        raise UserError(
            f"model.input_shape is {'x'.join(map(str, given))} but the data gives the model "
            f"{'x'.join(map(str, shape))} {what} ({where}); pass {setting} (or {unset}) "
            f"to plan from the data, or set data.image_size, data.color or data.patches to "
            f"match it"
        )
    return config


# ---------------------------------------------------------------------------------------------
# Report


def describe(config) -> str:
    """What `autoencoder data CONFIG` prints: source, sizes, channels, classes, skipped files."""
    splits = load_splits(config)
    report = splits.report
    pool = splits.count("train") + splits.count("val")
    shape = splits.image_shape
    mean = report.get("pool_mean")
    if mean is None:
        # Summed as integers from the bytes, so no float copy of the pool is made.
        total = sum(
            splits.pixels(s).reshape(-1, shape[2]).sum(axis=0, dtype=np.int64)
            for s in ("train", "val")
        )
        mean = total / (pool * shape[0] * shape[1] * 255.0)
    mean_text = f"{float(np.mean(mean)):.4f} (training pool: train + validation, {pool:,} images)"
    if shape[2] == 3:
        mean_text += "; by channel: R {:.4f}, G {:.4f}, B {:.4f}".format(*mean)
    color = COLOR_NAMES.get(shape[2], f"{shape[2]} channels")
    lines = [
        f"dataset     {config.data.dataset}",
        f"source      {splits.source}",
        f"images      {' x '.join(map(str, shape))} ({color}), float32 in [0, 1]",
        f"mean pixel  {mean_text}",
    ]
    if "stored" in report:
        ignored = report["ignored"]
        lines += [
            f"found       {_stored_text(report['stored'], config.data.color)}"
            + (f"; {ignored:,} other file{'s' * (ignored > 1)} ignored" if ignored else ""),
            f"classes     {report['classes']}",
            f"splits      {report['splits']}",
            f"held        {report['cache']}",
        ]
        skipped = report["skipped"]
        if skipped:
            lines.append(
                f"skipped     {len(skipped):,} file{'s' * (len(skipped) > 1)} that cannot be read "
                f"(data.skip_bad):"
            )
            lines += [f"              {reason}" for _, reason in skipped[:SKIPPED_LISTED]]
            if len(skipped) > SKIPPED_LISTED:
                lines.append(f"              ... and {len(skipped) - SKIPPED_LISTED:,} more")
    if splits.patches is not None:
        ph, pw = splits.patches.size
        lines.append(
            f"patches     {ph} x {pw}, {splits.patches.per_image} per image and epoch (what the "
            f"model sees; evaluated on whole images)"
        )
    augment = config.data.augment
    if augment is not None and (augment.shift or augment.flip):
        changes = [f"shifted up to {augment.shift} px"] * bool(augment.shift)
        changes += ["half mirrored left to right"] * augment.flip
        lines.append(f"augment     training images {' and '.join(changes)}, anew each epoch")
    noise = config.data.noise
    if noise is not None:
        drawn = f", drawn {noise.draw} per image" if isinstance(noise.level, tuple) else ""
        lines.append(
            f"noise       {noise.kind}, level {level_text(noise.level)}{drawn}"
            f"{' (clipped to [0, 1])' if noise.clip else ''}: the model's inputs, clean targets"
        )
    rows = [("train", "train"), ("validation", "val"), ("test", "test")]
    table = class_table([(name, splits.labels(split)) for name, split in rows], splits.class_names)
    return "\n".join([*lines, "", *table])


def _stored_text(stored, color: str | None = None) -> str:
    """Sizes as stored: '25x25x3 (all 1,000)', or the commonest few with their counts.

    With data.color the scan counted channels as read (converted), so only H x W are as stored.
    """
    total = sum(stored.values())
    counts = Counter()
    for (h, w, c), n in stored.items():
        counts[(h, w) if color else (h, w, c)] += n
    common = counts.most_common(3)
    how = f"as stored (read as {color})" if color else "as stored"
    if len(counts) == 1:
        return f"{total:,} images, all {'x'.join(map(str, common[0][0]))} {how}"
    sizes = ", ".join(f"{'x'.join(map(str, size))} ({n:,})" for size, n in common)
    more = f", and {len(counts) - 3} more sizes" if len(counts) > 3 else ""
    return f"{total:,} images in {len(counts)} sizes {how}: {sizes}{more}"


def class_table(rows: list[tuple[str, np.ndarray]], names: tuple[str, ...] = DIGITS) -> list[str]:
    """Aligned lines: one row per split with its size and the count of each class."""
    # Many classes, or long names, turn the table: one row per class, a column per split.
    counts = [np.bincount(y, minlength=len(names))[: len(names)] for _, y in rows]
    widths = [max(6, len(n)) for n in names]
    if len(names) <= 10 and sum(widths) + len(names) <= 90:
        header = f"{'split':<10} {'images':>7} " + " ".join(
            f"{n:>{w}}" for n, w in zip(names, widths)
        )
        body = [
            f"{name:<10} {len(y):>7,} " + " ".join(f"{c:>{w},}" for c, w in zip(count, widths))
            for (name, y), count in zip(rows, counts)
        ]
        return [header, *body]
    width = max(5, *(len(n) for n in names))
    header = f"{'class':<{width}} " + " ".join(f"{name:>10}" for name, _ in rows)
    body = [
        f"{n:<{width}} " + " ".join(f"{count[i]:>10,}" for count in counts)
        for i, n in enumerate(names)
    ]
    total = f"{'images':<{width}} " + " ".join(f"{len(y):>10,}" for _, y in rows)
    return [header, *body, total]
