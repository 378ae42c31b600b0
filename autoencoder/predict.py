"""`autoencoder predict RUN_DIR INPUT... --out DIR`: a trained model on the user's own files.

Inputs are image files, folders of them, or .npy / .npz arrays. Each image is converted to the
model's channels, padded when smaller than the model's input, cut into overlapping tiles when
larger, and the tiles' reconstructions are blended back with a window that falls towards the
tile edges, so no seams show. Outputs keep the input names under --out, with scores.csv: per
image, the reconstruction error (and the anomaly flag when the run holds a threshold).

Everything is written into a hidden folder of --out first and moved into place only when every
input has gone through: a failed or interrupted prediction leaves --out as it was.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autoencoder import runtime
from autoencoder.config import Config
from autoencoder.data.images import SUFFIXES, is_image, read_image, write_png
from autoencoder.data.splits import scaled
from autoencoder.errors import UserError
from autoencoder.evaluate import per_image_mse, per_image_score, psnr
from autoencoder.model import load_model
from autoencoder.noise import apply_noise
from autoencoder.runs import open_run

log = logging.getLogger(__name__)

ARRAY_SUFFIXES = (".npy", ".npz")
BATCH = 256  # tiles per model call
# Where a run keeps its anomaly threshold and the score it applies to: metrics.json keys in the
# '<split>/<metric>' style, written by `autoencoder anomaly` (else anomaly.threshold.value and
# anomaly.score in its config). The columns appear when a run holds one, or --threshold is given.
THRESHOLD_KEY = "anomaly/threshold"
SCORE_KEY = "anomaly/score"
COLUMNS = ("input", "output", "height", "width", "channels", "tiles", "mse", "psnr")
NOISY_COLUMNS = ("noisy_mse", "noisy_psnr")
ANOMALY_COLUMNS = ("score", "score_kind", "threshold", "anomaly")
# Pillow's "L" conversion: ITU-R 601-2 luma.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass
class Source:
    """One input file and the name its output keeps (relative to --out, without suffix)."""

    path: Path
    name: str
    kind: str  # "image", "npy" or "npz"
    # Arrays: member ("" for .npy) -> (shape, dtype), read from the headers alone.
    members: dict = field(default_factory=dict)

    @property
    def suffix(self) -> str:
        return ".png" if self.kind == "image" else f".{self.kind}"

    def count(self) -> int:
        """How many images the file holds."""
        if self.kind == "image":
            return 1
        return sum(_stack_length(shape) for shape, _ in self.images())

    def images(self) -> list:
        """(shape, dtype) of the members that hold images (2-D to 4-D arrays)."""
        return [m for m in self.members.values() if len(m[0]) >= 2]


def _stack_length(shape: tuple) -> int:
    return 1 if len(shape) == 2 else shape[0]


def collect_inputs(inputs: list[str | Path], out: Path | None = None) -> list[Source]:
    """The files named on the command line, folders expanded to the images inside them."""
    # A folder's images, but not those under --out: its earlier outputs are not new inputs.
    skip = out.resolve() if out is not None else None
    sources = []
    for given in map(Path, inputs):
        if given.is_dir():
            found = sorted(
                p
                for p in given.rglob("*")
                if p.is_file() and is_image(p) and (skip is None or skip not in p.resolve().parents)
            )
            if not found:
                raise UserError(
                    f"{given}: no image files ({', '.join(SUFFIXES)}) in this folder or its "
                    f"subfolders; pass image files, a folder of them, or an .npy/.npz array"
                )
            for path in found:
                name = path.relative_to(given).with_suffix("").as_posix()
                sources.append(Source(path, name, "image"))
        elif given.is_file():
            sources.append(_file_source(given))
        else:
            raise UserError(f"{given}: no such file or folder; check the path")
    _refuse_clashes(sources)
    return sources


def _file_source(path: Path) -> Source:
    if is_image(path):
        return Source(path, path.stem, "image")
    suffix = path.suffix.lower()
    if suffix not in ARRAY_SUFFIXES:
        raise UserError(
            f"{path}: not an image ({', '.join(SUFFIXES)}) nor an .npy/.npz array; "
            f"convert it to PNG first"
        )
    members = _npy_header(path) if suffix == ".npy" else _npz_headers(path)
    source = Source(path, path.stem, suffix[1:], members)
    for member, (shape, dtype) in members.items():
        where = f"{path}:{member}" if member else str(path)
        if suffix == ".npy" and len(shape) < 2:
            raise UserError(f"{where}: a {len(shape)}-D array; {ARRAY_SHAPES}")
        if len(shape) > 4 or (len(shape) == 4 and shape[-1] not in (1, 3)):
            raise UserError(f"{where}: shape {shape}; {ARRAY_SHAPES}")
        if len(shape) >= 2 and not (dtype == np.uint8 or np.issubdtype(dtype, np.floating)):
            raise UserError(
                f"{where}: {dtype} pixels; save uint8 (0-255) or float pixels in [0, 1]"
            )
    if not source.count():
        raise UserError(f"{path}: holds no images; {ARRAY_SHAPES}")
    return source


ARRAY_SHAPES = "arrays of images are (H, W), (N, H, W) or (N, H, W, C) with C = 1 or 3, uint8 or float in [0, 1]"


def _npy_header(path: Path) -> dict:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npy array ({_first_line(exc)})") from None
    return {"": (tuple(array.shape), array.dtype)}


def _npz_headers(path: Path) -> dict:
    """Member -> (shape, dtype) of an .npz, from each member's header (nothing decompressed)."""
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as handle:
                    version = np.lib.format.read_magic(handle)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(handle)
                if dtype.hasobject:
                    raise ValueError(f"'{info.filename}' is an object array")
                headers[info.filename.removesuffix(".npy")] = (tuple(shape), dtype)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npz archive ({_first_line(exc)})") from None
    return headers


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _refuse_clashes(sources: list[Source]) -> None:
    seen: dict[str, Path] = {}
    for source in sources:
        key = source.name + source.suffix
        if key in seen:
            raise UserError(
                f"{seen[key]} and {source.path} would both be written as {key}; rename one, "
                f"or predict them into separate --out folders"
            )
        seen[key] = source.path


def planned_outputs(sources: list[Source], noisy: bool) -> list[str]:
    """Every file predict writes, relative to --out."""
    names = [s.name + s.suffix for s in sources]
    return [*names, *(f"noisy/{n}" for n in names if noisy), "scores.csv"]


def _refuse_existing(out: Path, outputs: list[str], overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file; give a folder for the outputs")
    existing = [out / name for name in outputs if (out / name).exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more outputs)" if len(existing) > 1 else ""
        raise UserError(
            f"{existing[0]}: already exists{more}; pass --overwrite to replace, or choose "
            f"another --out"
        )


# ---------------------------------------------------------------------------------------------
# The run


def run_config(run_dir: Path) -> Config:
    """The config of the run that holds the model; one line for a model without its run."""
    if run_dir.is_file() and run_dir.suffix == ".keras":
        raise UserError(
            f"{run_dir}: a model file, not a run directory; pass the run directory made by "
            f"`autoencoder train` that holds it (with its config.yaml)"
        )
    return open_run(run_dir, data=False)


def run_threshold(run_dir: Path, config: Config) -> tuple[float, str] | None:
    """(threshold, score kind) the run holds: metrics.json's, else its config's fixed value."""
    path = run_dir / "metrics.json"
    try:
        metrics = json.loads(path.read_text()) if path.is_file() else {}
        value, kind = metrics.get(THRESHOLD_KEY), metrics.get(SCORE_KEY)
    except (ValueError, OSError, AttributeError):
        value = kind = None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        value, kind = config.anomaly.threshold.value, None
    if value is None:
        return None
    return float(value), kind if kind in ("mse", "mae", "ssim") else config.anomaly.score


def noise_settings(config: Config) -> tuple[str, bool]:
    """(kind, clip) of the noise --noise adds: the run's own, else its denoise section's."""
    noise = config.data.noise
    return (noise.kind, noise.clip) if noise else (config.denoise.kind, config.denoise.clip)


# ---------------------------------------------------------------------------------------------
# Tiles


def tile_step(tile: int) -> int:
    """Pixels between neighbouring tiles: about a quarter of a tile, and odd."""
    # A model's reconstruction of a flat patch is not flat (zero padding at its borders, the
    # texture of strided layers); blending identical tiles repeats that residue with the tile
    # step, a faint grid on a smooth image. Four tiles per pixel and axis average more of it
    # away than two, and an odd step is never in phase with a stride-2 or stride-4 texture.
    return max(1, tile // 4) | 1


def tile_starts(size: int, tile: int) -> list[int]:
    """Offsets of tiles covering `size` pixels, tile_step apart, the last flush with the end."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, tile_step(tile)))
    return [*starts, size - tile]


def window(height: int, width: int) -> np.ndarray:
    """Blending weights of a tile (H, W): a Hann window, small but never zero at the edges."""
    # A tile's edge pixels, where its reconstruction is worst, count least; the blend divides by
    # the summed weights, so any tile step gives weights that sum to one.
    rows = np.sin(np.pi * (np.arange(height) + 0.5) / height) ** 2
    cols = np.sin(np.pi * (np.arange(width) + 0.5) / width) ** 2
    return np.outer(rows, cols).astype(np.float32)


def pad_to(image: np.ndarray, height: int, width: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The image padded (centred, edge pixels repeated) to at least height x width; its offset."""
    h, w = image.shape[:2]
    top, left = max(0, height - h) // 2, max(0, width - w) // 2
    pad = ((top, max(0, height - h) - top), (left, max(0, width - w) - left), (0, 0))
    return np.pad(image, pad, mode="edge"), (top, left)


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """An (H, W, C) float image with `channels` channels: luma for grey, repeated grey for RGB."""
    if image.shape[-1] == channels:
        return image
    if channels == 1:
        return (image @ LUMA)[..., None].astype(np.float32)
    return np.repeat(image, channels, axis=-1)


# ---------------------------------------------------------------------------------------------
# Reading and writing


def _pixels(array: np.ndarray, where: str) -> np.ndarray:
    """uint8 or float pixels (H, W, C) -> float32 in [0, 1]; float values outside are refused."""
    if array.dtype == np.uint8:
        return scaled(array)
    image = np.asarray(array, np.float32)
    low, high = float(image.min()), float(image.max())
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high > 1:
        raise UserError(
            f"{where}: float values from {low:g} to {high:g}; float pixels are read as [0, 1]: "
            f"divide 0-255 values by 255, or save uint8"
        )
    return image


class Outputs:
    """A hidden folder of --out that receives every output; commit() moves them into place."""

    def __init__(self, out: Path):
        self.out, self.created = out, not out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
            self.dir = Path(tempfile.mkdtemp(prefix=".predict-", dir=out))
        except OSError as exc:
            raise UserError(
                f"--out {out}: cannot write there ({exc.strerror or exc}); choose a writable folder"
            ) from None
        # Output arrays being filled: relative path -> (members, copied members, images to come).
        self.arrays: dict[str, list] = {}

    def path(self, relative: str) -> Path:
        path = self.dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def image(self, relative: str, pixels: np.ndarray) -> None:
        write_png(self.path(relative), pixels)

    def expect(self, relative: str, images: int, copied: dict) -> None:
        """An output array file of `images` images; `copied`: members kept as they were."""
        self.arrays[relative] = [{}, copied, images]

    def array(self, relative: str, member: str, shape: tuple, index, pixels: np.ndarray) -> None:
        """Image `index` (None: the only one) of a member; the file is written with its last."""
        entry = self.arrays[relative]
        members = entry[0]
        if member not in members:
            # .npy outputs go to disk as they come; .npz members are held until the file ends.
            members[member] = (
                np.lib.format.open_memmap(
                    self.path(relative), mode="w+", dtype=np.float32, shape=shape
                )
                if relative.endswith(".npy")
                else np.zeros(shape, np.float32)
            )
        target = members[member]
        if index is None:
            target[...] = pixels.reshape(target.shape)
        else:
            target[index] = pixels.reshape(target.shape[1:])
        entry[2] -= 1
        if entry[2] == 0:
            members, copied, _ = self.arrays.pop(relative)
            if relative.endswith(".npy"):
                members[""].flush()
            else:
                np.savez(self.path(relative), **copied, **members)

    def commit(self) -> None:
        """Move every output into --out, replacing files of the same name."""
        for path in sorted(p for p in self.dir.rglob("*") if p.is_file()):
            target = self.out / path.relative_to(self.dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        shutil.rmtree(self.dir)

    def discard(self) -> None:
        """Remove everything written; --out is left as it was."""
        self.arrays.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.created:
            shutil.rmtree(self.out, ignore_errors=True)


def output_shape(shape: tuple, channels: int) -> tuple:
    """An output array's shape: the input's axes, with the model's channels."""
    if len(shape) == 4 or channels != 1:
        return (*shape[: min(len(shape), 3)], channels)
    return shape


# ---------------------------------------------------------------------------------------------
# Prediction


@dataclass(eq=False)  # items are told apart by identity, as the batch holds them
class Item:
    """One image on its way through the model."""

    label: str  # the input, as scores.csv names it
    output: str  # its output, relative to --out
    clean: np.ndarray  # float32 (H, W, C) in [0, 1], in the model's channels
    channels: int  # the input's own channels
    write: Callable  # write(result, noisy): stores the output (and the noisy input)
    noisy: np.ndarray | None = None
    padded: np.ndarray | None = None
    offset: tuple = (0, 0)
    starts: list = field(default_factory=list)
    acc: np.ndarray | None = None
    weight: np.ndarray | None = None
    left: int = 0

    def prepare(self, height: int, width: int) -> None:
        """Pad to the model's size and list the tiles."""
        seen = self.clean if self.noisy is None else self.noisy
        self.padded, self.offset = pad_to(seen, height, width)
        ph, pw = self.padded.shape[:2]
        self.starts = [(y, x) for y in tile_starts(ph, height) for x in tile_starts(pw, width)]
        self.left = len(self.starts)

    def add(self, start: tuple, tile: np.ndarray, weights: np.ndarray) -> None:
        """Blend in one tile's reconstruction."""
        if len(self.starts) == 1:  # one tile: its reconstruction as it is, not a weighted copy
            self.acc = tile
        else:
            if self.acc is None:
                self.acc = np.zeros(self.padded.shape[:2] + tile.shape[-1:], np.float32)
                self.weight = np.zeros(self.padded.shape[:2], np.float32)
            (y, x), (h, w) = start, weights.shape
            self.acc[y : y + h, x : x + w] += weights[..., None] * tile
            self.weight[y : y + h, x : x + w] += weights
        self.left -= 1

    def result(self) -> np.ndarray:
        """The blended reconstruction, cropped to the input's size."""
        out = self.acc if self.weight is None else self.acc / self.weight[..., None]
        (top, left), (h, w) = self.offset, self.clean.shape[:2]
        return out[top : top + h, left : left + w]


class Batcher:
    """Tiles of consecutive images batched together; finish(item, result) once all of an item's."""

    def __init__(self, model, size: tuple, batch_size: int, finish: Callable):
        self.model, self.size, self.batch_size, self.finish = model, size, batch_size, finish
        self.weights = window(*size)
        self.batch: list = []

    def add(self, item: Item) -> None:
        item.prepare(*self.size)
        for start in item.starts:
            self.batch.append((item, start))
            if len(self.batch) == self.batch_size:
                self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        (h, w), batch, self.batch = self.size, self.batch, []
        tiles = np.stack([item.padded[y : y + h, x : x + w] for item, (y, x) in batch])
        recon = np.asarray(self.model.predict_on_batch(tiles), np.float32)
        for (item, start), tile in zip(batch, recon):
            item.add(start, tile, self.weights)
            if item.left == 0:
                self.finish(item, item.result())


class Scores:
    """scores.csv, a row per image as it is finished, and the totals of the summary."""

    def __init__(self, handle, noisy: bool, threshold: tuple[float, str] | None):
        columns = [*COLUMNS, *(NOISY_COLUMNS if noisy else ())]
        columns += ANOMALY_COLUMNS if threshold is not None else ()
        self.writer = csv.DictWriter(handle, columns)
        self.threshold, self.kind = threshold if threshold is not None else (None, None)
        self.writer.writeheader()
        self.images = self.anomalies = 0
        self.mse = self.noisy_mse = 0.0

    def add(self, item: Item, result: np.ndarray) -> None:
        mse = float(per_image_mse(item.clean[None], result[None])[0])
        h, w = item.clean.shape[:2]
        row = {
            "input": item.label,
            "output": item.output,
            "height": h,
            "width": w,
            "channels": item.channels,
            "tiles": len(item.starts),
            "mse": f"{mse:.6g}",
            "psnr": f"{psnr(mse):.4g}",
        }
        if item.noisy is not None:
            noisy = float(per_image_mse(item.clean[None], item.noisy[None])[0])
            row.update(noisy_mse=f"{noisy:.6g}", noisy_psnr=f"{psnr(noisy):.4g}")
            self.noisy_mse += noisy
        if self.threshold is not None:
            score = mse
            if self.kind != "mse":
                score = float(per_image_score(self.kind, item.clean[None], result[None])[0])
            flagged = score > self.threshold
            row.update(
                score=f"{score:.6g}",
                score_kind=self.kind,
                threshold=f"{self.threshold:.6g}",
                anomaly=int(flagged),
            )
            self.anomalies += flagged
        self.writer.writerow(row)
        self.images += 1
        self.mse += mse

    def summary(self, out: Path) -> dict:
        n = max(self.images, 1)
        summary = {"images": self.images, "mse": self.mse / n, "out": out}
        if "noisy_mse" in self.writer.fieldnames:
            summary["noisy_mse"] = self.noisy_mse / n
        if self.threshold is not None:
            summary.update(threshold=self.threshold, kind=self.kind, anomalies=self.anomalies)
        return summary


def predict_files(
    run_dir: str | Path,
    inputs: list[str | Path],
    out: str | Path,
    overwrite: bool = False,
    noise: float | None = None,
    batch_size: int = BATCH,
    threshold: float | None = None,
) -> dict:
    """Reconstruct every input with a run's model; write the outputs and scores.csv under out.

    Args:
      run_dir: a directory written by `autoencoder train`.
      inputs: image files, folders of images, .npy or .npz arrays.
      out: the folder for the outputs; made if missing.
      overwrite: replace outputs that exist (else they are refused before anything runs).
      noise: add the run's noise kind at this level to each input first (for demonstrations).
      batch_size: tiles per model call.
      threshold: flag images whose score is above this, instead of the run's own threshold.
    Returns:
      A summary for format_summary: images, mean MSE (and of the noisy inputs), anomalies.
    Raises:
      UserError: not a run, no model, unreadable or empty inputs, outputs that exist.
    """
    from tqdm.auto import tqdm

    run_dir, out = Path(run_dir), Path(out)
    config = run_config(run_dir)
    sources = collect_inputs(inputs, out)
    _refuse_existing(out, planned_outputs(sources, noise is not None), overwrite)
    runtime.gpus()  # CUDA's start-up line goes to a muted stderr here, not to the user's
    model = load_model(run_dir / "model.keras")
    height, width, channels = model.input_shape[1:]
    held = run_threshold(run_dir, config)
    if threshold is not None:  # the user's own, always used as given
        held = (float(threshold), held[1] if held else config.anomaly.score)
    threshold = held
    if threshold is not None:
        log.info(
            "anomaly threshold %g: images whose %s is above it are flagged",
            *(threshold[0], threshold[1].upper() if threshold[1] != "ssim" else "1 - SSIM"),
        )
    if noise is not None:
        log.info(
            "adding %s noise at level %g to every input first", noise_settings(config)[0], noise
        )
    outputs, converted = Outputs(out), [0]
    try:
        with open(outputs.path("scores.csv"), "w", newline="") as handle:
            scores = Scores(handle, noise is not None, threshold)
            bar = tqdm(
                total=sum(s.count() for s in sources),
                desc="predict",
                unit="image",
                dynamic_ncols=True,
                disable=not log.isEnabledFor(logging.INFO),
            )

            def finish(item: Item, result: np.ndarray) -> None:
                scores.add(item, result)
                item.write(result, item.noisy)
                bar.update(1)

            batcher = Batcher(model, (height, width), batch_size, finish)
            items = _items(sources, channels, outputs, converted)
            if noise is not None:
                items = _with_noise(items, config, noise)
            with bar:
                for item in items:
                    batcher.add(item)
                batcher.flush()
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
    if converted[0]:
        kind = "greyscale" if channels == 1 else "RGB"
        log.info(
            "converted %d input(s) to %s: the model takes %d channel(s)",
            converted[0],
            kind,
            channels,
        )
    return scores.summary(out)


def _items(sources: list[Source], channels: int, outputs: Outputs, converted: list) -> Iterator:
    """The inputs as Items, one image at a time, each with the writer of its output."""

    def item(label, output, pixels, write):
        if pixels.shape[-1] != channels:
            converted[0] += 1
        return Item(label, output, to_channels(pixels, channels), pixels.shape[-1], write)

    for source in sources:
        relative = source.name + source.suffix
        if source.kind == "image":
            write = _image_writer(outputs, relative)
            yield item(str(source.path), relative, scaled(read_image(source.path)), write)
            continue
        with _arrays(source) as arrays:
            copied = {
                k: np.asarray(arrays[k]) for k, (s, _) in source.members.items() if len(s) < 2
            }
            noisy = f"noisy/{relative}"
            for name in (relative, noisy):
                outputs.expect(name, source.count(), copied)
            for member, (shape, _) in source.members.items():
                if len(shape) < 2:
                    continue
                stack, out_shape = arrays[member], output_shape(shape, channels)
                where = f"{source.path}:{member}" if member else str(source.path)
                name = f"{relative}:{member}" if member else relative
                for i in range(_stack_length(shape)):
                    index = None if len(shape) == 2 else i
                    image = stack if index is None else stack[i]
                    image = image if image.ndim == 3 else image[..., None]
                    write = _array_writer(outputs, relative, member, out_shape, index)
                    label = where if index is None else f"{where}[{i}]"
                    output = name if index is None else f"{name}[{i}]"
                    yield item(label, output, _pixels(image, label), write)


@contextlib.contextmanager
def _arrays(source: Source):
    """The arrays of an .npy (memory-mapped) or .npz (each member read when asked for)."""
    if source.kind == "npy":
        yield {"": np.load(source.path, mmap_mode="r", allow_pickle=False)}
        return
    with np.load(source.path, allow_pickle=False) as archive:
        yield archive


def _image_writer(outputs: Outputs, relative: str) -> Callable:
    def write(result: np.ndarray, noisy: np.ndarray | None) -> None:
        outputs.image(relative, result)
        if noisy is not None:
            outputs.image(f"noisy/{relative}", noisy)

    return write


def _array_writer(outputs: Outputs, relative: str, member: str, shape: tuple, index) -> Callable:
    def write(result: np.ndarray, noisy: np.ndarray | None) -> None:
        outputs.array(relative, member, shape, index, result)
        if noisy is not None:
            outputs.array(f"noisy/{relative}", member, shape, index, noisy)

    return write


def _with_noise(items: Iterator, config: Config, level: float) -> Iterator:
    """The items with the run's noise kind added: the same inputs give the same noise."""
    tf = runtime.tensorflow()
    kind, clip = noise_settings(config)
    for index, item in enumerate(items):
        seed = tf.constant([config.denoise.eval_seed, index], tf.int64)
        item.noisy = apply_noise(item.clean[None], kind, level, clip, seed).numpy()[0]
        yield item


def format_summary(summary: dict) -> str:
    """What `autoencoder predict` prints."""
    mse = summary["mse"]
    lines = [f"{summary['images']:,} image(s): MSE {mse:.5f} per pixel (PSNR {psnr(mse):.2f} dB)"]
    if "noisy_mse" in summary:
        noisy = summary["noisy_mse"]
        lines.append(f"the noisy inputs: MSE {noisy:.5f} (PSNR {psnr(noisy):.2f} dB)")
    if "threshold" in summary:
        kind = "1 - SSIM" if summary["kind"] == "ssim" else summary["kind"].upper()
        lines.append(
            f"{summary['anomalies']:,} above the anomaly threshold {summary['threshold']:.5g} "
            f"({kind} per image)"
        )
    out = summary["out"]
    lines.append(f"outputs: {out}  scores: {out / 'scores.csv'}")
    return "\n".join(lines)
