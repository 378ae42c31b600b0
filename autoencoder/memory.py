"""The memory plan of a training run: what it will hold, and whether the machine has it.

Pure arithmetic on a shape plan (no TensorFlow). The estimate adds: the runtime's fixed cost
(TensorFlow, Keras, a compiled model), float32 weights with their gradients and optimizer slots,
every layer's activations at the configured batch (kept for the backward pass, in the run's
precision), and the images the run holds in memory. docs/memory.md compares it with measured
peaks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autoencoder.errors import UserError
from autoencoder.shapes import Plan

MB = 2**20
# What a whole run costs beside its model and images: TensorFlow 2.21 and Keras with a fitted
# model, evaluation, matplotlib and TensorBoard. Calibrated on the smallest preset's peak RSS
# (docs/memory.md, with its command).
RUNTIME_BYTES = 870 * MB
# Activations a training step keeps per layer output, in units of that output: the forward
# value and, around it, the pre-activation and a gradient of the same size (calibrated against
# measured peaks in docs/memory.md).
KEPT_PER_OUTPUT = 3
# Images each known dataset holds (train + test), before data.limit.
KNOWN_SIZES = {"mnist": 70_000, "fashion_mnist": 70_000, "mnist_sample": 5_000}


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes by purpose; `layers` is (name, output shape, activation bytes at the batch)."""

    batch: int
    dtype: str
    layers: list
    runtime: int
    weights: int  # float32 variables, their gradients and the optimizer's slots
    activations: int
    data: int | None  # None: not known until the data is read (folders, ...)

    @property
    def total(self) -> int:
        return self.runtime + self.weights + self.activations + (self.data or 0)


def element_bytes(dtype: str) -> int:
    """Bytes per activation value under a Keras dtype policy."""
    return 2 if dtype.startswith("mixed_") else 4


def optimizer_slots(name: str, momentum: float) -> int:
    """Float32 copies of the weights an optimizer keeps (Adam: two moments)."""
    return {"adam": 2, "adamw": 2}.get(name, 1 if momentum else 0)


def plan_memory(plan: Plan, batch: int, dtype: str, slots: int, data: int | None) -> MemoryPlan:
    """The MemoryPlan of training `plan` at `batch` in `dtype` with `slots` optimizer slots."""
    size = element_bytes(dtype)
    layers = [
        (layer.name, layer.output_shape, batch * int(np.prod(layer.output_shape)) * size)
        for layer in plan.layers
    ]
    activations = KEPT_PER_OUTPUT * sum(row[2] for row in layers)
    weights = 4 * plan.total_params * (2 + slots)  # value, gradient, slots
    return MemoryPlan(batch, dtype, layers, RUNTIME_BYTES, weights, activations, data)


def held_data(pixels: int, val_pixels: int, test_pixels: int, noisy: bool) -> int:
    """Bytes of images a run holds at its peak, from the uint8 sizes of its three splits.

    Training holds the splits and the pipeline's copies of train and validation (a denoiser's
    validation inputs as float32 noisy images); evaluation holds the float32 test images and
    their reconstructions (and the noisy inputs). The larger of the two phases counts.
    """
    total = pixels + val_pixels + test_pixels
    training = total + pixels + (4 * val_pixels if noisy else val_pixels)
    evaluation = total + 4 * test_pixels * (3 if noisy else 2)
    return max(training, evaluation)


def known_data(config, plan: Plan) -> int | None:
    """held_data for the datasets whose size is known without reading them, else None."""
    count = KNOWN_SIZES.get(config.data.dataset)
    if count is None:
        return None
    image = int(np.prod(plan.input_shape))
    test = 10_000 if count == 70_000 else 1_000
    pool = count - test if config.data.limit is None else min(config.data.limit, count - test)
    val = round(pool * config.data.validation_split)
    noisy = config.data.noise is not None
    return held_data((pool - val) * image, val * image, test * image, noisy)


def memory_limit() -> tuple[int, str]:
    """(bytes, what) of the memory a process may use: the cgroup limit or physical, the lower."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    found = (physical, "physical memory")
    for path in _cgroup_limit_files():
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < found[0]:
            found = (int(text), f"the cgroup limit ({path})")
    return found


def _cgroup_limit_files(membership: str | None = None) -> list[str]:
    """The memory limit files of the root cgroup and of this process's own (v2 and v1), from
    /proc/self/cgroup (or the text given)."""
    files = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
    try:
        text = Path("/proc/self/cgroup").read_text() if membership is None else membership
    except OSError:
        return files
    for line in text.splitlines():  # "0::/path" (v2) or "N:memory:/path" (v1)
        _, controllers, path = line.split(":", 2)
        if path in ("", "/"):
            continue
        if controllers == "":
            files.append(f"/sys/fs/cgroup{path}/memory.max")
        elif "memory" in controllers.split(","):
            files.append(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
    return files


def largest_batch(plan: Plan, dtype: str, slots: int, data: int | None, limit: int) -> int:
    """The largest batch whose plan fits in `limit` bytes (0 when even batch 1 does not)."""
    fixed = plan_memory(plan, 1, dtype, slots, data)
    per_image = fixed.activations
    room = limit - (fixed.total - per_image)
    return max(0, room // per_image) if per_image else 0


def run_memory(config, plan: Plan, dtype: str, data: int | None = None) -> MemoryPlan:
    """The MemoryPlan of a config's run (data: held bytes if known, else the known sizes)."""
    opt = config.train.optimizer
    held = known_data(config, plan) if data is None else data
    slots = optimizer_slots(opt.name, opt.momentum)
    return plan_memory(plan, config.train.batch_size, dtype, slots, held)


def fits(config, memory: MemoryPlan) -> bool:
    """Whether the estimate fits in the memory this process may use (or the check is off)."""
    return memory.total <= memory_limit()[0] or not config.train.memory_check


def check_fits(config, plan: Plan, memory: MemoryPlan) -> None:
    """Refuse, in one line, a plan whose estimate exceeds the memory this process may use."""
    if fits(config, memory):
        return
    limit, what = memory_limit()
    opt = config.train.optimizer
    slots = optimizer_slots(opt.name, opt.momentum)
    largest = largest_batch(plan, memory.dtype, slots, memory.data, limit)
    # A round number (a multiple of 8 splits over 2, 4 or 8 replicas), not 53,395.
    largest = largest - largest % 8 if largest >= 8 else largest
    fix = (
        f"--set train.batch_size={largest}"
        if largest
        else "a smaller model or data.limit (not even batch 1 fits)"
    )
    raise UserError(
        f"train: the run needs about {memory.total / MB:,.0f} MB at batch {memory.batch} in "
        f"{memory.dtype} (`autoencoder shapes` shows the plan) but {what} is {limit / MB:,.0f} MB; use {fix}, "
        f"or --set train.memory_check=false to try anyway"
    )


def check_lightest(config, plan: Plan, data: int | None = None) -> None:
    """check_fits at the lightest precision the run could get (before TensorFlow picks one)."""
    lightest = "float32" if config.train.mixed_precision == "off" else "mixed_bfloat16"
    check_fits(config, plan, run_memory(config, plan, lightest, data))


def format_memory(memory: MemoryPlan) -> str:
    """The memory table `autoencoder shapes` prints under the shape plan."""
    size = element_bytes(memory.dtype)
    width = max([16, *(len(name) for name, _, _ in memory.layers)])
    lines = [
        f"memory at batch {memory.batch}, {memory.dtype} activations ({size} bytes a value):",
        f"  {'layer':<{width}} {'output':<14} {'activation':>12}",
    ]
    for name, shape, nbytes in memory.layers:
        lines.append(f"  {name:<{width}} {'x'.join(map(str, shape)):<14} {nbytes / MB:>9.1f} MB")
    data = "not known until the data is read" if memory.data is None else _mb(memory.data)
    label = width + 16  # the summary's figures under the activation column
    lines += [
        f"  {'runtime (TensorFlow, Keras)':<{label}}{_mb(memory.runtime)}",
        f"  {'weights, gradients, optimizer':<{label}}{_mb(memory.weights)}",
        f"  {'activations kept for backward':<{label}}{_mb(memory.activations)} "
        f"({KEPT_PER_OUTPUT} x the layer outputs above)",
        f"  {'images held in memory':<{label}}{data}",
        f"  {'total for training':<{label}}{_mb(memory.total)}"
        + ("" if memory.data is not None else " + the images"),
    ]
    limit, what = memory_limit()
    lines.append(f"  available: {_mb(limit)} ({what})")
    return "\n".join(lines)


def _mb(nbytes: int) -> str:
    return f"{nbytes / MB:>9,.0f} MB"
