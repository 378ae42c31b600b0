"""predict_files: a run's model over the inputs, image by image; each padded to the model's
size or cut into tiles blended back (autoencoder.data.patches, as evaluate does)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autoencoder import runs, runtime
from autoencoder.config import Config
from autoencoder.data.images import read_image
from autoencoder.data.patches import Blend, tile_origins, window
from autoencoder.data.splits import scaled
from autoencoder.errors import UserError, named
from autoencoder.evaluate import SCORE_CHOICES, SCORE_NAMES
from autoencoder.model import load_model
from autoencoder.neighbors import CodeNeighbors, flat_codes
from autoencoder.noise import apply_noise
from autoencoder.predict.inputs import (
    Source,
    arrays_of,
    collect_inputs,
    one_image,
    planned_outputs,
    refuse_existing,
    stack_length,
)
from autoencoder.predict.outputs import Outputs, Scores, array_writer, image_writer, output_shape
from autoencoder.runs import open_run

log = logging.getLogger(__name__)

BATCH = 256  # tiles per model call
# Where a run keeps its anomaly threshold and the score it applies to: metrics.json keys in the
# '<split>/<metric>' style, written by `autoencoder anomaly` (else anomaly.threshold.value and
# anomaly.score in its config). The columns appear when a run holds one, or --threshold is given.
THRESHOLD_KEY = "anomaly/threshold"
SCORE_KEY = "anomaly/score"
# Pillow's "L" conversion: ITU-R 601-2 luma.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def run_config(run_dir: Path) -> Config:
    """The config of the run that holds the model; one line for a model without its run."""
    if run_dir.is_file() and run_dir.suffix == ".keras":
        raise UserError(
            f"{run_dir}: a model file, not a run directory; pass the run directory made by "
            f"`autoencoder train` that holds it (with its config.yaml)"
        )
    return open_run(run_dir, data=False)


def run_threshold(run_dir: Path, config: Config, given: bool = False) -> tuple[float, str] | None:
    """(threshold, score kind) the run holds: metrics.json's, else its config's fixed value.
    `given`: the caller brings its own threshold, so a damaged metrics.json costs only the kind."""
    try:
        metrics = runs.read_metrics(run_dir)
    except UserError:
        if given:
            metrics = {}
        else:  # not a silent run without flags: an anomaly run's threshold was in it
            raise UserError(
                f"{run_dir / 'metrics.json'}: damaged (not a JSON object), and it held the "
                f"run's anomaly threshold, if it had one; pass {named('--threshold', 'threshold=')}"
                f", or choose it anew "
                f"with `autoencoder anomaly` (`autoencoder evaluate {run_dir}` writes the test "
                f"metrics again)"
            ) from None
    value, kind = metrics.get(THRESHOLD_KEY), metrics.get(SCORE_KEY)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        value, kind = config.anomaly.threshold.value, None
    if value is None:
        return None
    return float(value), kind if kind in SCORE_NAMES else config_score(run_dir, config)


def _threshold_source(run_dir: Path, config: Config, held, given: float | None) -> str:
    """Where predict's threshold comes from; a warning when config.yaml's value is not it."""
    if given is not None:
        return "--threshold"
    mine = config.anomaly.threshold.value
    if held is None or held[0] == mine:
        return f"anomaly.threshold.value in {run_dir / 'config.yaml'}"
    if mine is not None:
        log.warning(
            "%s sets anomaly.threshold.value %g, but the run's threshold is %g, chosen by "
            "autoencoder anomaly (metrics.json); predict uses %g: pass %s%g for yours",
            *(run_dir / "config.yaml", mine, held[0], held[0], named("--threshold ", "threshold=")),
            mine,
        )
    return f"chosen by autoencoder anomaly, in {run_dir / 'metrics.json'}"


def config_score(run_dir: Path, config: Config) -> str:
    """The score kind the run's config names; auto, which only `anomaly` resolves, is one line."""
    if config.anomaly.score == "auto":
        raise UserError(
            f"{run_dir}: its anomaly.score is auto and it holds no chosen score (metrics.json "
            f"{SCORE_KEY}); train it with `autoencoder anomaly`, which chooses and saves one, "
            f"or set anomaly.score in its config.yaml to {SCORE_CHOICES}"
        )
    return config.anomaly.score


def noise_settings(config: Config) -> tuple[str, bool]:
    """(kind, clip) of the noise --noise adds: the run's own, else its denoise section's."""
    noise = config.data.noise
    return (noise.kind, noise.clip) if noise else (config.denoise.kind, config.denoise.clip)


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


def _pixels(array: np.ndarray, where: str) -> np.ndarray:
    """uint8 or float pixels (H, W, C) -> float32 in [0, 1]; float values outside are refused."""
    if array.dtype == np.uint8:
        return scaled(array)
    image = np.asarray(array, np.float32)
    low, high = float(image.min()), float(image.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        bad = int(np.count_nonzero(~np.isfinite(image)))
        raise UserError(
            f"{where}: {bad} of its {image.size} values are NaN or infinite; float pixels are "
            f"read as [0, 1]: replace those values, or leave the image out"
        )
    if low < 0 or high > 1:
        raise UserError(
            f"{where}: float values from {low:g} to {high:g}; float pixels are read as [0, 1]: "
            f"divide 0-255 values by 255, or save uint8"
        )
    return image


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
    blend: Blend | None = None
    left: int = 0
    code_distance: float = 0.0  # the knn score: the farthest of its tiles' codes

    def prepare(self, height: int, width: int) -> None:
        """Pad to the model's size and list the tiles."""
        seen = self.clean if self.noisy is None else self.noisy
        self.padded, self.offset = pad_to(seen, height, width)
        self.starts = tile_origins(*self.padded.shape[:2], (height, width))
        self.left = len(self.starts)

    def add(self, start: tuple, tile: np.ndarray, weights: np.ndarray) -> None:
        """Blend in one tile's reconstruction."""
        if self.blend is None:
            self.blend = Blend(self.padded.shape[:2] + tile.shape[-1:], weights)
        self.blend.add(start, tile)
        self.left -= 1

    def result(self) -> np.ndarray:
        """The blended reconstruction, cropped to the input's size."""
        (top, left), (h, w) = self.offset, self.clean.shape[:2]
        return self.blend.result()[top : top + h, left : left + w]


class Batcher:
    """Tiles of consecutive images batched together; finish(item, result) once all of an item's."""

    def __init__(self, model, size: tuple, batch_size: int, finish: Callable, codes=None):
        self.model, self.size, self.batch_size, self.finish = model, size, batch_size, finish
        self.codes = codes  # (encoder, CodeNeighbors) for the knn score, else None
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
        # Clipped as runs.predict_images clips: a linear head's output can leave [0, 1].
        recon = np.clip(np.asarray(self.model.predict_on_batch(tiles), np.float32), 0.0, 1.0)
        distances = np.zeros(len(tiles))
        if self.codes is not None:
            encoder, reference = self.codes
            distances = reference.distances(flat_codes(encoder.predict_on_batch(tiles)))
        for (item, start), tile, distance in zip(batch, recon, distances):
            item.code_distance = max(item.code_distance, float(distance))
            item.add(start, tile, self.weights)
            if item.left == 0:
                self.finish(item, item.result())


def predict_files(
    run_dir: str | Path,
    inputs: list[str | Path],
    out: str | Path,
    overwrite: bool = False,
    noise: float | None = None,
    batch_size: int = BATCH,
    threshold: float | None = None,
    skip_bad: bool = False,
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
      skip_bad: leave out image files that cannot be read (else the first is refused).
    Returns:
      A summary for format_summary: images, mean MSE (and of the noisy inputs), anomalies.
    Raises:
      UserError: not a run, no model, unreadable or empty inputs, outputs that exist.
    """
    from tqdm.auto import tqdm

    run_dir, out = Path(run_dir), Path(out)
    config = run_config(run_dir)
    sources = collect_inputs(inputs, out)
    refuse_existing(out, planned_outputs(sources, noise is not None), overwrite, sources)
    runtime.gpus()  # CUDA's start-up line goes to a muted stderr here, not to the user's
    model = load_model(run_dir / "model.keras")
    height, width, channels = model.input_shape[1:]
    held = run_threshold(run_dir, config, given=threshold is not None)
    source = _threshold_source(run_dir, config, held, threshold)
    if threshold is not None:  # the user's own, always used as given
        held = (float(threshold), held[1] if held else config_score(run_dir, config))
    threshold = held
    codes = None
    if threshold is not None and threshold[1] == "knn":  # refused before any output is made
        reference = CodeNeighbors.load(run_dir)
        codes = load_model(run_dir / "encoder.keras"), reference
    if threshold is not None:
        log.info(
            "anomaly threshold %g (%s): images whose %s is above it are flagged",
            *(threshold[0], source, SCORE_NAMES[threshold[1]]),
        )
    if noise is not None:
        log.info(
            "adding %s noise at level %g to every input first", noise_settings(config)[0], noise
        )
    outputs, converted, tiled = Outputs(out), [0], [0]
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
                tiled[0] += len(item.starts) > 1
                scores.add(item, result)
                item.write(result, item.noisy)
                bar.update(1)

            batcher = Batcher(model, (height, width), batch_size, finish, codes)
            skipped: list[str] | None = [] if skip_bad else None
            items = _items(sources, channels, outputs, converted, skipped)
            if noise is not None:
                items = _with_noise(items, config, noise)
            with bar:
                for item in items:
                    batcher.add(item)
                batcher.flush()
            if skipped and not scores.images:
                raise UserError(f"{skipped[0]}: no input could be read ({len(skipped)} tried)")
        others = outputs.commit()
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
    if others:
        log.warning(
            "%s holds %d other file(s), left as they were: scores.csv lists this prediction's "
            "images only",
            *(out, others),
        )
    if skipped:
        log.warning(
            "left out %d unreadable input(s) (--skip-bad): %s%s",
            *(len(skipped), ", ".join(skipped[:3]), " ..." if len(skipped) > 3 else ""),
        )
    if tiled[0] and config.data.patches is None:
        log.warning(
            "%d input(s) larger than the model's %dx%d were cut into tiles, and this model was "
            "trained on whole %dx%d images: it takes each tile for a whole image, which can show "
            "as a grid at the tile step and darkened edges; for large images train on crops "
            "(data.patches, docs/images.md)",
            *(tiled[0], height, width, height, width),
        )
    summary = scores.summary(out)
    if "threshold" in summary and source == "--threshold":
        summary["given"] = True  # the summary line says whose threshold flagged them
    return summary


def _items(
    sources: list[Source], channels: int, outputs: Outputs, converted: list, skipped=None
) -> Iterator:
    """The inputs as Items, one image at a time, each with the writer of its output.

    skipped: a list that collects unreadable image files, which are then left out; None
    refuses the first.
    """

    def item(label, output, pixels, write):
        if pixels.shape[-1] != channels:
            converted[0] += 1
        return Item(label, output, to_channels(pixels, channels), pixels.shape[-1], write)

    for source in sources:
        relative = source.name + source.suffix
        if source.kind == "image":
            try:
                pixels = read_image(source.path)
            except UserError as exc:
                if skipped is None:
                    raise UserError(
                        f"{exc}; fix or remove it, or pass {named('--skip-bad', 'skip_bad=True')} "
                        f"to leave unreadable images "
                        f"out (nothing was written)"
                    ) from None
                skipped.append(str(source.path))
                continue
            write = image_writer(outputs, relative)
            yield item(str(source.path), relative, scaled(pixels), write)
            continue
        with arrays_of(source) as arrays:
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
                for i in range(stack_length(shape)):
                    index = None if one_image(shape) else i
                    image = stack if index is None else stack[i]
                    image = image if image.ndim == 3 else image[..., None]
                    write = array_writer(outputs, relative, member, out_shape, index)
                    label = where if index is None else f"{where}[{i}]"
                    output = name if index is None else f"{name}[{i}]"
                    yield item(label, output, _pixels(image, label), write)


def _with_noise(items: Iterator, config: Config, level: float) -> Iterator:
    """The items with the run's noise kind added: the same inputs give the same noise."""
    tf = runtime.tensorflow()
    kind, clip = noise_settings(config)
    for index, item in enumerate(items):
        seed = tf.constant([config.denoise.eval_seed, index], tf.int64)
        item.noisy = apply_noise(item.clean[None], kind, level, clip, seed).numpy()[0]
        yield item
