"""The measured inputs of docs/scaling.md: per preset, the model's size and what one step moves.

    python scripts/scaling_figures.py [CONFIG ...]

(default: configs/seed_tutorial.yaml, bottleneck32.yaml and denoise_gaussian.yaml)

Prints, per config: parameters, training FLOPs per image (3 x forward, from the shape plan),
activation values per image, the bytes a ring all-reduce moves per step and replica, and,
measured on this machine, how many images/s the in-memory tf.data pipeline and PNG decoding
deliver on their own (no model).
"""

import io
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoencoder.cli import Parser  # noqa: E402
from autoencoder.config import load_config  # noqa: E402
from autoencoder.data import make_dataset  # noqa: E402
from autoencoder.errors import exit_on_user_error  # noqa: E402
from autoencoder.shapes import forward_flops, plan_model  # noqa: E402

PRESETS = ["seed_tutorial.yaml", "bottleneck32.yaml", "denoise_gaussian.yaml"]


def model_figures(path: Path, config) -> dict:
    """The config's size and per-step figures, from its shape plan."""
    plan = plan_model(config.model)
    activations = sum(int(np.prod(layer.output_shape)) for layer in plan.layers)
    return {
        "config": path.name,
        "batch": config.train.batch_size,
        "params": plan.total_params,
        "train MFLOP/image": 3 * sum(forward_flops(layer) for layer in plan.layers) / 1e6,
        "activations/image": activations,
        # Ring all-reduce of float32 gradients: each replica sends and receives 2 (N-1)/N of
        # the gradient bytes per step, which tends to 2 x for large N.
        "all-reduce MB/step (N large)": 2 * 4 * plan.total_params / 1e6,
    }


def pipeline_rate(batch: int, images: int = 60_000, seconds: float = 3.0) -> float:
    """Images/s the in-memory pipeline (uint8 gather + scale) yields alone, one epoch's worth."""
    pixels = np.random.default_rng(0).integers(0, 256, (images, 28, 28, 1), dtype=np.uint8)
    ds = make_dataset(pixels, batch_size=batch, shuffle=True, seed=0)
    count, start = 0, time.perf_counter()
    for x, _ in ds:
        count += int(x.shape[0])
        if time.perf_counter() - start > seconds:
            break
    return count / (time.perf_counter() - start)


def png_decode_rate(seconds: float = 2.0) -> float:
    """28x28 grey PNG files decoded per second on one core (Pillow), from bytes in memory."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)).save(
        buffer, format="PNG"
    )
    data, count, start = buffer.getvalue(), 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        np.asarray(Image.open(io.BytesIO(data)))
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = Parser(
        description=__doc__.splitlines()[0],
        epilog="Every config is loaded and checked before anything is measured.",
    )
    parser.add_argument(
        "configs",
        nargs="*",
        metavar="CONFIG",
        help=f"YAML configs (default: {', '.join(PRESETS)} in configs/)",
    )
    args = parser.parse_args()
    paths = [Path(p) for p in args.configs] or [ROOT / "configs" / name for name in PRESETS]
    configs = [load_config(path) for path in paths]
    for path, config in zip(paths, configs):
        figures = model_figures(path, config)
        figures["tf.data in-memory images/s"] = pipeline_rate(figures["batch"])
        print(
            "  ".join(
                f"{k}: {v:,.1f}" if isinstance(v, float) else f"{k}: {v}"
                for k, v in figures.items()
            )
        )
    print(f"PNG decode, 28x28 grey, one core: {png_decode_rate():,.0f} images/s")


if __name__ == "__main__":
    exit_on_user_error(main)
