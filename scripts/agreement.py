"""How far apart trained runs' outputs are on the same test inputs, and what their average scores.

    python scripts/agreement.py RUN_DIR RUN_DIR [RUN_DIR ...] [--limit N] [--shifts] [--edges]

For denoisers (or autoencoders) trained to minimise squared error on the same task. Each run's
test MSE per pixel, the MSE of the runs' average output, and the mean squared difference of
every pair. For squared error the mean of the runs' MSEs is exactly the average output's MSE
plus the runs' mean squared distance from that average (their spread): an ensemble of such
runs gains its spread and no more. Runs that agree closely, reached from different layouts,
widths and minutes, have learned nearly the same function, and the error they share is what
none of them gains by more of the same: the noise's own ambiguity plus a bias common to all.
--shifts also scores each run with its outputs for the input moved by a pixel averaged (a
test-time ensemble of one model). --edges says where each run's error lies: by each pixel's
distance from the edge of the clean image's ink (one-channel images; ink is above 0.5).

Every model is given the first run's test inputs (its noise at its denoise.eval_seed): a blind
denoiser can be set beside one of a single level. The runs must share the rest of the data
section (the same clean test images); outputs are clipped to [0, 1] as the tool scores them.
"""

import itertools
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoencoder import api  # noqa: E402
from autoencoder.cli import Parser, count  # noqa: E402
from autoencoder.comparison import check_runs  # noqa: E402
from autoencoder.data import load_splits  # noqa: E402
from autoencoder.errors import UserError, exit_on_user_error  # noqa: E402
from autoencoder.evaluate import psnr  # noqa: E402
from autoencoder.runs import config_diff, predict_images, reconstruct_chunks  # noqa: E402


def agreement(
    run_dirs: list[str], limit: int | None = None, shifts: bool = False, edges: bool = False
) -> dict:
    """Each run's test MSE, the average output's, the spread and every pair's squared difference;
    with `shifts`, also each run's MSE when its output is averaged over one-pixel shifts; with
    `edges`, the squared error of the noisy input and of each run by distance from the ink's edge."""
    # Finished runs, each once, of one data source and image shape (as `compare` wants them),
    # and here also of the same clean images.
    checked = check_runs(run_dirs)
    runs = [api.load_run(path) for path, _ in checked]
    config = runs[0].config
    for run in runs[1:]:
        differ = _test_data_diff(config, run.config)
        if differ:
            raise UserError(
                f"{run.path}: its data section (beyond noise and augment) differs from"
                f" {runs[0].path}'s in {differ}; compare runs of the same images"
            )
    splits = load_splits(config)
    if edges and splits.image_shape[-1] != 1:
        raise UserError(
            f"--edges: {runs[0].path} has {splits.image_shape[-1]}-channel images; the ink's"
            " edge is drawn on one-channel images (digits, garments): leave --edges out"
        )
    models = [run.model for run in runs]
    count = images = 0
    errors, shifted = np.zeros(len(runs)), np.zeros(len(runs))
    mean_error = spread = 0.0
    pairs = {pair: 0.0 for pair in itertools.combinations(range(len(runs)), 2)}
    rings = np.zeros((len(runs) + 2, len(RINGS)))  # pixels, the noisy input's error, each run's
    for _, clean, inputs, first in reconstruct_chunks(config, models[0], splits):
        others = [predict_images(m, inputs, splits.patches) for m in models[1:]]
        outputs = np.stack([first, *others]).astype(np.float64)
        average = outputs.mean(axis=0)
        errors += ((outputs - clean) ** 2).sum(axis=tuple(range(1, outputs.ndim)))
        mean_error += float(((average - clean) ** 2).sum())
        spread += float(((outputs - average) ** 2).sum()) / len(runs)
        for i, j in pairs:
            pairs[(i, j)] += float(((outputs[i] - outputs[j]) ** 2).sum())
        if shifts:
            for i, model in enumerate(models):
                shifted[i] += float(
                    ((shift_average(model, inputs, splits.patches) - clean) ** 2).sum()
                )
        if edges:
            rings += edge_errors(clean, np.concatenate([[inputs], outputs]))
        count, images = count + clean.size, images + len(clean)
        # Stop before the generator predicts another chunk with the first model.
        if limit is not None and images >= limit:
            break
    return {
        "runs": [str(run.path) for run in runs],
        "images": images,
        "mse": (errors / count).tolist(),
        "average_mse": mean_error / count,
        "spread": spread / count,
        "pairs": {f"{i} {j}": value / count for (i, j), value in pairs.items()},
        **({"shifted_mse": (shifted / count).tolist()} if shifts else {}),
        **({"edges": _edge_table(rings)} if edges else {}),
    }


# Chessboard distance from the ink's edge: -1 is ink touching background (diagonals included),
# +1 background touching ink; the far ends are pooled.
RINGS = (-3, -2, -1, 1, 2, 3, 4)


def edge_errors(clean: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Rows: pixel counts, then each output's summed squared error, by ring of RINGS."""
    from scipy import ndimage

    ink = clean[..., 0] > 0.5
    rings = np.zeros(ink.shape, int)
    for i, mask in enumerate(ink):
        inside = ndimage.distance_transform_cdt(mask, metric="chessboard")
        outside = ndimage.distance_transform_cdt(~mask, metric="chessboard")
        rings[i] = np.clip(np.where(mask, -inside, outside), RINGS[0], RINGS[-1])
    squared = ((np.clip(outputs, 0.0, 1.0) - clean) ** 2)[..., 0]
    table = np.zeros((1 + len(outputs), len(RINGS)))
    for k, ring in enumerate(RINGS):
        where = rings == ring
        table[0, k] = where.sum()
        table[1:, k] = squared[:, where].sum(axis=1)
    return table


def _edge_table(rings: np.ndarray) -> dict:
    """Per ring: its share of the pixels, and each output's MSE there and share of its error."""
    pixels, errors = rings[0], rings[1:]
    return {
        "rings": list(RINGS),
        "pixel_share": (pixels / pixels.sum()).tolist(),
        "mse": (errors / np.maximum(pixels, 1)).tolist(),
        "error_share": (errors / errors.sum(axis=1, keepdims=True)).tolist(),
    }


def shift_average(model, inputs: np.ndarray, patches=None) -> np.ndarray:
    """The model's output averaged over its outputs for the input moved by 0 or 1 pixel down and
    right (the row and column moved in are zeros, MNIST's background), each moved back."""
    # Strided layers see a moved image on another grid: the outputs differ, and their mean is
    # a test-time ensemble that costs four predictions and no training.
    height, width = inputs.shape[1:3]
    total = np.zeros(inputs.shape, np.float64)
    counts = np.zeros((1, height, width, 1))
    for dy, dx in itertools.product((0, 1), (0, 1)):
        moved = np.zeros_like(inputs)
        moved[:, dy:, dx:] = inputs[:, : height - dy, : width - dx]
        output = predict_images(model, moved, patches)
        total[:, : height - dy, : width - dx] += output[:, dy:, dx:]
        counts[:, : height - dy, : width - dx] += 1
    return total / counts


def _test_data_diff(a, b) -> str:
    """The keys fixing the clean test images (data's, bar noise and augment) that differ."""
    keys = sorted(
        key
        for key in config_diff(a, b)
        if key.startswith("data.") and key.split(".")[1] not in ("noise", "augment")
    )
    return ", ".join(keys)


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument(
        "--limit",
        type=count(1),
        help="score the first N test images only, rounded up to whole chunks of 1,000",
    )
    parser.add_argument(
        "--shifts", action="store_true", help="also each run averaged over one-pixel shifts"
    )
    parser.add_argument(
        "--edges", action="store_true", help="each run's error by distance from the ink's edge"
    )
    args = parser.parse_args()
    if len(args.runs) < 2:
        parser.error("name at least two run directories")
    result = agreement(args.runs, args.limit, args.shifts, args.edges)
    print(f"{result['images']:,} test images; MSE per pixel against the clean images, and PSNR")
    for i, (path, mse) in enumerate(zip(result["runs"], result["mse"])):
        print(f"  run {i}: {mse:.6f}  {psnr(mse):.2f} dB  {path}")
    mean = float(np.mean(result["mse"]))
    average = result["average_mse"]
    print(f"  the runs' mean MSE: {mean:.6f}  {psnr(mean):.2f} dB")
    print(f"  their average output: {average:.6f}  {psnr(average):.2f} dB")
    print(
        f"spread (mean squared distance of a run's output from the average): "
        f"{result['spread']:.6f} = {result['spread'] / mean:.1%} of the mean MSE"
    )
    for pair, value in result["pairs"].items():
        i, j = pair.split()
        print(f"  run {i} against run {j}: mean squared difference {value:.6f}")
    for i, mse in enumerate(result.get("shifted_mse", [])):
        print(f"run {i} averaged over 4 one-pixel shifts: {mse:.6f}  {psnr(mse):.2f} dB")
    if "edges" in result:
        _print_edges(result["edges"])


def _print_edges(table: dict) -> None:
    """The edge table: a row per ring, the noisy input's and each run's MSE and share of error."""
    names = ["noisy input"] + [f"run {i}" for i in range(len(table["mse"]) - 1)]
    print("MSE per pixel (share of the squared error) by chessboard distance from the ink's edge")
    print("(ink: clean pixels above 0.5; -1 the ink's outer pixels, +1 the background around it)")
    print(f"{'distance':>9} {'pixels':>7}" + "".join(f" {name:>18}" for name in names))
    for k, ring in enumerate(table["rings"]):
        label = {table["rings"][0]: f"<={ring}", table["rings"][-1]: f">={ring}"}.get(ring, ring)
        cells = "".join(
            f" {mse[k]:9.5f} ({share[k]:5.1%})"
            for mse, share in zip(table["mse"], table["error_share"])
        )
        print(f"{label!s:>9} {table['pixel_share'][k]:7.1%}" + cells)


if __name__ == "__main__":
    exit_on_user_error(main)
