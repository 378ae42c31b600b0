"""`autoencoder embed RUN_DIR`: what a finished run's code knows about the classes.

The encoder (a VAE's: its mean) gives every image of the train and test splits a code. A linear
probe, logistic regression on standardised features, is fitted on the train split's codes and
scored on the test split's; beside it the same probe on the raw pixels, on PCA of the pixels
with as many components as the code has numbers, and on the codes with shuffled labels (what a
probe gets by chance). The test codes and labels are saved as codes.npy and labels.npy, the
probe's accuracies go into metrics.json, and two figures into figures/: latent.png (PCA and
t-SNE maps of the test codes) and latent_interpolation.png (images decoded between test codes).
Method notes: docs/latent.md.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from autoencoder import atomic, runs, runtime
from autoencoder.config import Config
from autoencoder.data import chunk_size, load_splits, scaled
from autoencoder.errors import UserError
from autoencoder.model import decode_lines, load_model
from autoencoder.plots import plot_interpolations, plot_latent
from autoencoder.runs import open_run
from autoencoder.shapes import Plan, plan_model

log = logging.getLogger(__name__)

SEED = 0  # the probe's subsample, the shuffled labels, the map's points, t-SNE, the pairs
PROBE_LIMIT = 20_000  # training images of each probe: full MNIST's probes in about a minute
# No pixel or PCA probe past this many numbers an image: both hold the probe's training images
# as float32 pixels (20,000 x 4,096 is 330 MB) and the logistic regression slows with them.
PIXEL_LIMIT = 4096
MAP_POINTS = 3000  # t-SNE's cost grows as N log N with a large constant: 3,000 take ~15 s here
PAIRS, STEPS = 6, 10  # latent_interpolation.png: rows, and decoded points along each line
BATCH = 512


def embed_run(run_dir: str | Path, probe_limit: int = PROBE_LIMIT) -> dict:
    """Codes, linear probes and figures of a finished run; merge the probes into metrics.json.

    Args:
      run_dir: a directory written by `autoencoder train`, with encoder.keras and decoder.keras.
      probe_limit: at most this many train-split images fit each probe (a fixed-seed subsample).
    Returns:
      {"metrics": the metrics.json keys written, "rows": (what, features, accuracy or None,
      note) for format_embed, "files": what was written, "train_images": the train
      split's size}.
    Raises:
      UserError: not a finished run, skips, no bottleneck, patches, or fewer than two classes;
        before TensorFlow is imported and before anything is written; another process
        writing the run.
    """
    with runs.writing(run_dir, "autoencoder embed"):
        return _embed(Path(run_dir), probe_limit)


def _embed(run_dir: Path, probe_limit: int) -> dict:
    config = open_run(run_dir)
    plan = plan_model(config.model)
    check_embeddable(run_dir, config, plan)
    splits = load_splits(config)
    check_classes(run_dir, splits)

    runtime.gpus()  # CUDA's start-up line goes to a muted stderr here
    encoder = load_model(run_dir / "encoder.keras")
    decoder = load_model(run_dir / "decoder.keras")
    vae = config.model.kind == "vae"
    pixels = int(np.prod(splits.image_shape)) <= PIXEL_LIMIT
    pick = probe_subsample(splits.count("train"), probe_limit)
    train_codes, train_pixels = encode_split(encoder, splits, "train", vae, pixels, pick)
    test_codes, test_pixels = encode_split(encoder, splits, "test", vae, pixels)
    train_labels, test_labels = splits.labels("train")[pick], splits.labels("test")

    files = [run_dir / "codes.npy", run_dir / "labels.npy"]
    _save_npy(files[0], test_codes)
    _save_npy(files[1], test_labels.astype(np.int64))
    rows, metrics = probe_all(
        (train_codes, train_labels), (test_codes, test_labels), train_pixels, test_pixels, splits
    )
    metrics.update(
        {
            "embed/code_size": int(plan.code_size),
            "embed/probe_train_images": len(pick),
            "embed/test_images": len(test_labels),
        }
    )
    runs.merge_metrics(run_dir, metrics)

    figures = run_dir / "figures"
    figures.mkdir(exist_ok=True)
    files += [figures / "latent.png", figures / "latent_interpolation.png"]
    draw_latent(files[2], test_codes, test_labels, splits.class_names, plan, vae)
    draw_interpolation(files[3], decoder, test_codes, test_labels, splits, vae)
    return {
        "metrics": metrics,
        "rows": rows,
        "files": files,
        "train_images": splits.count("train"),
    }


# ---------------------------------------------------------------------------------------------
# Refusals, before TensorFlow


def check_embeddable(run_dir: Path, config: Config, plan: Plan) -> None:
    """Refuse a run whose code does not describe its images alone, or that is not finished."""
    if plan.skips != "none":
        raise UserError(
            f"{run_dir}: model.skips is {plan.skips}: its code is bypassed by skips (the decoder "
            f"also reads the encoder's earlier activations), so the code alone does not describe "
            f"an image; to embed, train a run with `model.skips: none`"
        )
    if plan.residual:
        raise UserError(
            f"{run_dir}: model.output.residual is true: the model returns its input minus what it "
            f"predicts, so the image bypasses the code; to embed, train a run with "
            f"`model.output.residual: false`"
        )
    if plan.code_size >= plan.input_size:
        raise UserError(
            f"{run_dir}: the model has no bottleneck: its code ({_shape(plan.code_shape)}, "
            f"{plan.code_size:,} numbers) is as large as the image "
            f"({plan.input_size:,} numbers) or larger, so it need not learn what the images have "
            f"in common; train a run with model.latent_dim set (e.g. 32) or more strided encoder "
            f"layers"
        )
    if config.data.patches is not None:
        ph, pw = config.data.patches.size
        raise UserError(
            f"{run_dir}: the model was trained on {ph}x{pw} patches (data.patches), so its code "
            f"describes a patch, not an image; embed a run trained on whole images"
        )
    for name in ("encoder.keras", "decoder.keras"):
        if not (run_dir / name).is_file():
            raise UserError(
                f"{run_dir}: no {name}: the run is not finished (training saves it at the end); "
                f"finish it with `autoencoder resume {run_dir}`"
            )


def _shape(shape: tuple) -> str:
    return "x".join(map(str, shape))


def check_classes(run_dir: Path, splits) -> None:
    """Refuse data whose train split has fewer than two classes: no probe can be fitted."""
    found = np.unique(splits.labels("train"))
    if len(found) < 2:
        name = splits.class_names[int(found[0])] if len(found) else "none"
        raise UserError(
            f"{run_dir}: the training split holds one class ({name}), so there is nothing for a "
            f"probe to tell apart and no classes to colour a map by; embed needs labelled data "
            f"with two or more classes (for data.dataset: folder, one sub-folder per class)"
        )


# ---------------------------------------------------------------------------------------------
# Codes


def probe_subsample(n: int, limit: int) -> np.ndarray:
    """Sorted indices of at most `limit` of n images, the same for the same n and limit."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(SEED).choice(n, limit, replace=False))


def encode_split(encoder, splits, split: str, vae: bool, pixels: bool, keep=None):
    """(codes (N, code numbers) float32, pixels (N, values) float32 or None) of a split.

    keep: sorted indices of the images wanted (None: all). Chunk by chunk, as runs.py reads a
    split, so a streamed folder is never whole in memory as float32.
    """
    codes, flat = [], []
    for chunk in _chunks(splits, split, keep):
        images = scaled(chunk)
        out = runs.predict(encoder, images, BATCH)
        code = out[0] if vae else out  # a VAE's encoder gives [mean, log_var]
        codes.append(np.asarray(code, np.float32).reshape(len(images), -1))
        if pixels:
            flat.append(images.reshape(len(images), -1))
    return np.concatenate(codes), (np.concatenate(flat) if pixels else None)


def _chunks(splits, split: str, keep):
    """uint8 chunks of the split's images at `keep`, of the split's chunk size but the last."""
    # Gathered again into full chunks: a chunk of each size makes predict() trace anew.
    size, held, count = chunk_size(splits.image_shape), [], 0
    for start, chunk in splits.chunks(split):
        if keep is not None:
            chunk = chunk[keep[(keep >= start) & (keep < start + len(chunk))] - start]
        held.append(chunk)
        count += len(chunk)
        if count >= size:
            joined = np.concatenate(held)
            yield joined[:size]
            held, count = [joined[size:]], count - size
    if count:
        yield np.concatenate(held)


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp):
        with open(tmp, "wb") as handle:
            np.save(handle, array)

    atomic.write_with(path, write)


# ---------------------------------------------------------------------------------------------
# Probes


def linear_probe(train_x, train_y, test_x, test_y) -> float:
    """Test accuracy of logistic regression on standardised features, fitted on the train set."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Standardised, because the code's numbers have any scale: without it the one penalty
    # would weigh its dimensions unequally, and lbfgs converges slowly on badly scaled features.
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=SEED))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        probe.fit(train_x, train_y)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        log.warning("a probe did not converge in 2,000 iterations; its accuracy is a lower bound")
    return float(probe.score(test_x, test_y))


def probe_all(train, test, train_pixels, test_pixels, splits) -> tuple[list, dict]:
    """(table rows, metrics) of the code, pixel, PCA and shuffled-label probes and the majority."""
    (codes, labels), (test_codes, test_labels) = train, test
    size, values = codes.shape[1], int(np.prod(splits.image_shape))
    rows, metrics = [], {}

    def add(key, what, features, accuracy, note=""):
        rows.append((what, features, accuracy, note))
        if accuracy is not None:
            metrics[f"embed/{key}"] = accuracy

    log.info("probing the %s-number code (%s training images)", f"{size:,}", f"{len(labels):,}")
    add("probe_code", "code", size, linear_probe(codes, labels, test_codes, test_labels))
    if train_pixels is None:
        skipped = f"skipped: {values:,} numbers an image (more than {PIXEL_LIMIT:,})"
        add("probe_pixels", "raw pixels", values, None, skipped)
        add("probe_pca", f"PCA of the pixels, {size} components", size, None, skipped)
    else:
        from sklearn.decomposition import PCA

        log.info("probing the raw pixels and PCA of them")
        add(
            "probe_pixels",
            "raw pixels",
            values,
            linear_probe(train_pixels, labels, test_pixels, test_labels),
        )
        if size >= len(labels):  # PCA has at most as many components as images
            skipped = f"skipped: {size:,} components need more than {len(labels):,} images"
            add("probe_pca", f"PCA of the pixels, {size} components", size, None, skipped)
        else:
            pca = PCA(size, random_state=SEED).fit(train_pixels)
            accuracy = linear_probe(
                pca.transform(train_pixels), labels, pca.transform(test_pixels), test_labels
            )
            add("probe_pca", f"PCA of the pixels, {size} components", size, accuracy)
    # The same code with its labels permuted: whatever this scores is what chance gives.
    shuffled = np.random.default_rng(SEED).permutation(labels)
    add(
        "probe_shuffled",
        "code, shuffled labels",
        size,
        linear_probe(codes, shuffled, test_codes, test_labels),
    )
    # A probe that always answers the training split's most common class.
    classes, counts = np.unique(labels, return_counts=True)
    common = int(classes[np.argmax(counts)])
    majority = float(np.mean(test_labels == common))
    add("majority", "majority class", None, majority, f"always '{splits.class_names[common]}'")
    return rows, metrics


# ---------------------------------------------------------------------------------------------
# Figures


def map_points(n: int) -> np.ndarray:
    """Indices of the test codes the maps show: all of them, or MAP_POINTS at random."""
    return probe_subsample(n, MAP_POINTS)


def draw_latent(path: Path, codes, labels, names, plan: Plan, vae: bool) -> None:
    """latent.png: PCA and t-SNE maps of the test codes (the code itself when it has 2 numbers)."""
    total, pick = len(codes), map_points(len(codes))
    codes, labels = codes[pick], labels[pick]
    size = codes.shape[1]
    what = f"{size:,}-number code" + (" (means)" if vae else "")
    if size == 2:
        panels = [(f"The {what}", codes, "code number 1", "code number 2")]
    else:
        panels = [pca_panel(codes, what), tsne_panel(codes, what)]
    shape = "" if len(plan.code_shape) == 1 else f", a {_shape(plan.code_shape)} feature map"
    shown = f"{len(codes):,}" if len(codes) == total else f"{len(codes):,} of the {total:,}"
    plot_latent(
        path,
        panels,
        labels,
        names,
        f"Test images by their code{shape} ({shown} images, coloured by class)",
    )


def pca_panel(codes, what: str) -> tuple:
    """(title, points, x label, y label) of the codes' first two principal components."""
    from sklearn.decomposition import PCA

    pca = PCA(2, random_state=SEED).fit(codes)
    first, second = (share_text(r) for r in pca.explained_variance_ratio_)
    return (
        f"PCA of the {what}",
        pca.transform(codes),
        f"principal component 1 ({first} of variance)",
        f"principal component 2 ({second} of variance)",
    )


def share_text(ratio: float) -> str:
    """A share of the variance as a percentage that is never rounded to 0% or 100%."""
    percent = 100 * float(ratio)
    if percent < 0.1:
        return "<0.1%"
    if percent > 99.9:
        return ">99.9%"
    return f"{percent:.0f}%" if 10 <= percent <= 90 else f"{percent:.1f}%"


def tsne_panel(codes, what: str) -> tuple:
    """(title, points, x label, y label) of a 2-D t-SNE of the codes."""
    from sklearn.manifold import TSNE

    # Perplexity 30 (sklearn's default; below a third of the points for small sets), PCA
    # initialisation, which keeps the global layout more faithful than a random start.
    perplexity = min(30.0, (len(codes) - 1) / 3)
    log.info("t-SNE of %s codes", f"{len(codes):,}")
    points = TSNE(
        2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=SEED
    ).fit_transform(codes)
    return (f"t-SNE of the {what}", points, "t-SNE dimension 1", "t-SNE dimension 2")


def interpolation_pairs(labels: np.ndarray, rows: int = PAIRS) -> list[tuple[int, int]]:
    """(start, end) indices of test images of different classes, `rows` pairs."""
    classes = [int(c) for c in np.unique(labels)]
    k = len(classes)
    # Neighbouring classes two by two (0-1, 2-3, ...), then the pairs between (1-2, 3-4, ...),
    # then classes further apart: each class comes in turn, and no pair repeats before it must.
    order = [
        (classes[i], classes[(i + d) % k])
        for d in range(1, k)
        for first in (0, 1)
        for i in range(first, k, 2)
    ]
    members = {c: np.flatnonzero(labels == c) for c in classes}
    used = dict.fromkeys(classes, 0)
    pairs = []
    for r in range(rows):
        ends = []
        for c in order[r % len(order)]:
            ends.append(int(members[c][used[c] % len(members[c])]))  # the class's next image
            used[c] += 1
        pairs.append(tuple(ends))
    return pairs


def draw_interpolation(path: Path, decoder, codes, labels, splits, vae: bool) -> None:
    """latent_interpolation.png: images decoded along lines between test image pairs' codes."""
    pairs = interpolation_pairs(labels)
    starts, ends = (np.array([p[k] for p in pairs]) for k in (0, 1))
    steps = decode_lines(decoder, codes[starts], codes[ends], STEPS)
    pixels = splits.pixels("test")  # an array, or ImageFiles: both take a list of indices
    plot_interpolations(
        path,
        scaled(pixels[starts]),
        steps,
        scaled(pixels[ends]),
        [(int(labels[a]), int(labels[b])) for a, b in pairs],
        names=splits.class_names,
        title=(
            f"Decoded along straight lines between the codes{' (means)' if vae else ''} of two "
            f"test images of different classes (t=0 and t=1: the images' own codes)"
        ),
    )


# ---------------------------------------------------------------------------------------------
# What the CLI prints


def format_embed(result: dict) -> str:
    """A table of the probes, and where the codes and figures went."""
    metrics = result["metrics"]
    used, total = metrics["embed/probe_train_images"], result["train_images"]
    sampled = (
        f"{used:,} of the {total:,} train-split images (a fixed-seed subsample; --probe-limit)"
        if used < total
        else f"all {used:,} train-split images"
    )
    lines = [
        "Linear probe (logistic regression on standardised features), fitted on "
        f"{sampled}, scored on {metrics['embed/test_images']:,} test images:",
        "",
        f"{'what':<34} {'features':>8}  {'test accuracy':>13}",
    ]
    for what, features, accuracy, note in result["rows"]:
        shown = f"{accuracy:.4f}" if accuracy is not None else "-"
        count = f"{features:,}" if features is not None else "-"
        extra = f"  ({note})" if note else ""
        lines.append(f"{what:<34} {count:>8}  {shown:>13}{extra}")
    codes, labels, latent, interpolation = result["files"]
    n, size = metrics["embed/test_images"], metrics["embed/code_size"]
    lines += [
        "",
        f"codes: {codes} ({n:,} x {size:,}, float32), labels: {labels}",
        f"figures: {latent}, {interpolation}",
    ]
    return "\n".join(lines)
