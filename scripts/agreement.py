"""How far apart trained runs' outputs are on the same test inputs, and what their average scores.

    python scripts/agreement.py RUN_DIR RUN_DIR [RUN_DIR ...] [--limit N] [--shifts]

For denoisers (or autoencoders) trained to minimise squared error on the same task. Each run's
test MSE per pixel, the MSE of the runs' average output, and the mean squared difference of
every pair. For squared error the mean of the runs' MSEs is exactly the average output's MSE
plus the runs' mean squared distance from that average (their spread): an ensemble of such
runs gains its spread and no more. Runs that agree closely, reached from different layouts,
widths and minutes, have learned nearly the same function, and the error they share is what
none of them gains by more of the same: the noise's own ambiguity plus a bias common to all.
--shifts also scores each run with its outputs for the input moved by a pixel averaged (a
test-time ensemble of one model).

Every model is given the first run's test inputs (its noise at its denoise.eval_seed): a blind
denoiser can be set beside one of a single level. The runs must share the rest of the data
section (the same clean test images); outputs are clipped to [0, 1] as the tool scores them.
"""

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoencoder import api  # noqa: E402
from autoencoder.comparison import check_runs  # noqa: E402
from autoencoder.data import load_splits  # noqa: E402
from autoencoder.errors import UserError  # noqa: E402
from autoencoder.evaluate import psnr  # noqa: E402
from autoencoder.runs import predict_images, reconstruct_chunks  # noqa: E402


def agreement(run_dirs: list[str], limit: int | None = None, shifts: bool = False) -> dict:
    """Each run's test MSE, the average output's, the spread and every pair's squared difference;
    with `shifts`, also each run's MSE when its output is averaged over one-pixel shifts."""
    # Finished runs, each once, of one data source and image shape (as `compare` wants them),
    # and here also of the same clean images.
    checked = check_runs(run_dirs)
    runs = [api.load_run(path) for path, _ in checked]
    config = runs[0].config
    for run in runs[1:]:
        if _test_data(run.config) != _test_data(config):
            raise UserError(
                f"{run.path}: its data section (beyond noise and augment) differs"
                f" from {runs[0].path}'s; compare runs of the same images"
            )
    splits = load_splits(config)
    models = [run.model for run in runs]
    count = images = 0
    errors, shifted = np.zeros(len(runs)), np.zeros(len(runs))
    mean_error = spread = 0.0
    pairs = {pair: 0.0 for pair in itertools.combinations(range(len(runs)), 2)}
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


def _test_data(config) -> dict:
    """What fixes the clean test images: the data section apart from noise and augmentation."""
    return config.data.model_dump(exclude={"noise", "augment"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--limit", type=int, help="score about the first N test images only")
    parser.add_argument(
        "--shifts", action="store_true", help="also each run averaged over one-pixel shifts"
    )
    args = parser.parse_args()
    if len(args.runs) < 2:
        parser.error("name at least two run directories")
    try:
        result = agreement(args.runs, args.limit, args.shifts)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
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


if __name__ == "__main__":
    main()
