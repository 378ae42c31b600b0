"""predict's outputs: staged in a hidden folder of --out and moved into place at the end; the
writers of images and arrays; scores.csv and the summary printed."""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from autoencoder.data.images import write_png
from autoencoder.errors import UserError, named
from autoencoder.evaluate import SCORE_NAMES, per_image_mse, per_image_score, psnr
from autoencoder.predict.inputs import one_image

COLUMNS = ("input", "output", "height", "width", "channels", "tiles", "mse", "psnr")
NOISY_COLUMNS = ("noisy_mse", "noisy_psnr")
ANOMALY_COLUMNS = ("score", "score_kind", "threshold", "anomaly")


class Outputs:
    """A hidden folder of --out that receives every output; commit() moves them into place."""

    def __init__(self, out: Path):
        self.out, self.created = out, not out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
            self.dir = Path(tempfile.mkdtemp(prefix=".predict-", dir=out))
        except OSError as exc:
            raise UserError(
                f"{named(f'--out {out}', f'out={str(out)!r}')}: cannot write there ({exc.strerror or exc}); choose a writable folder"
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

    def commit(self) -> int:
        """Move every output into --out, replacing files of the same name; return how many
        other files --out holds (an earlier prediction's, say), left as they were."""
        written = set()
        for path in sorted(p for p in self.dir.rglob("*") if p.is_file()):
            written.add(path.relative_to(self.dir))
            target = self.out / path.relative_to(self.dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        shutil.rmtree(self.dir)
        return sum(1 for p in _visible_files(self.out) if p.relative_to(self.out) not in written)

    def discard(self) -> None:
        """Remove everything written; --out is left as it was."""
        self.arrays.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.created:
            shutil.rmtree(self.out, ignore_errors=True)


def _visible_files(folder: Path) -> Iterator[Path]:
    """Files under folder, hidden files and folders (.venv, .git) neither listed nor entered."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        yield from (Path(root) / f for f in files if not f.startswith("."))


def output_shape(shape: tuple, channels: int) -> tuple:
    """An output array's shape: the input's axes, with the model's channels."""
    if len(shape) == 4 or (one_image(shape) and len(shape) == 3):  # a channel axis
        return (*shape[:-1], channels)
    return shape if channels == 1 else (*shape, channels)


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

    def add(self, item, result: np.ndarray) -> None:
        """One image's row; `item` is a files.Item (not imported here: files imports this module)."""
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
            if self.kind == "knn":
                score = item.code_distance
            elif self.kind != "mse":
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


def image_writer(outputs: Outputs, relative: str) -> Callable:
    """write(result, noisy) for an image input: a PNG, and the noisy input's under noisy/."""

    def write(result: np.ndarray, noisy: np.ndarray | None) -> None:
        outputs.image(relative, result)
        if noisy is not None:
            outputs.image(f"noisy/{relative}", noisy)

    return write


def array_writer(outputs: Outputs, relative: str, member: str, shape: tuple, index) -> Callable:
    """write(result, noisy) for one image of an array input, at its place in the output array."""

    def write(result: np.ndarray, noisy: np.ndarray | None) -> None:
        outputs.array(relative, member, shape, index, result)
        if noisy is not None:
            outputs.array(f"noisy/{relative}", member, shape, index, noisy)

    return write


def format_summary(summary: dict) -> str:
    """What `autoencoder predict` prints."""
    mse = summary["mse"]
    lines = [f"{summary['images']:,} image(s): MSE {mse:.5f} per pixel (PSNR {psnr(mse):.2f} dB)"]
    if "noisy_mse" in summary:
        noisy = summary["noisy_mse"]
        lines.append(f"the noisy inputs: MSE {noisy:.5f} (PSNR {psnr(noisy):.2f} dB)")
    if "threshold" in summary:
        lines.append(
            f"{summary['anomalies']:,} above the anomaly threshold {summary['threshold']:.5g} "
            f"({SCORE_NAMES[summary['kind']]} per image"
            f"{', --threshold' if summary.get('given') else ''})"
        )
    out = summary["out"]
    lines.append(f"outputs: {out}  scores: {out / 'scores.csv'}")
    return "\n".join(lines)
