"""The memory plan: its arithmetic, the largest batch that fits, and the refusal before a run."""

import numpy as np
import pytest
from conftest import tiny

from autoencoder import memory
from autoencoder.config import load_config
from autoencoder.errors import UserError
from autoencoder.shapes import plan_model


def test_plan_adds_weights_activations_and_data():
    config = tiny("/tmp", "train.batch_size=50")
    plan = plan_model(config.model)
    m = memory.plan_memory(plan, 50, "mixed_bfloat16", slots=2, data=1000)
    outputs = sum(int(np.prod(layer.output_shape)) for layer in plan.layers)
    assert m.activations == memory.KEPT_PER_OUTPUT * 50 * outputs * 2  # bfloat16: 2 bytes
    assert m.weights == 4 * plan.total_params * 4  # value, gradient, two Adam moments
    assert m.total == memory.RUNTIME_BYTES + m.weights + m.activations + 1000
    float32 = memory.plan_memory(plan, 50, "float32", slots=2, data=1000)
    assert float32.activations == 2 * m.activations


def test_known_dataset_sizes_without_reading_them():
    config = tiny("/tmp")  # mnist_sample, limit 320, validation 0.25: 240 / 80 / 1,000 test
    plan = plan_model(config.model)
    assert memory.known_data(config, plan) == memory.held_data(
        240 * 784, 80 * 784, 1000 * 784, False
    )
    # Evaluation holds float32 test images and reconstructions: the larger phase here.
    assert memory.held_data(240, 80, 1000, False) == 1320 + 4 * 1000 * 2
    assert memory.optimizer_slots("sgd", 0.0) == 0 and memory.optimizer_slots("sgd", 0.9) == 1


def test_largest_batch_is_the_edge_of_the_limit():
    plan = plan_model(load_config("configs/seed_tutorial.yaml").model)
    limit = 2 * 2**30
    best = memory.largest_batch(plan, "float32", 2, 10**8, limit)
    assert memory.plan_memory(plan, best, "float32", 2, 10**8).total <= limit
    assert memory.plan_memory(plan, best + 1, "float32", 2, 10**8).total > limit
    assert memory.largest_batch(plan, "float32", 2, 10**8, memory.RUNTIME_BYTES) == 0


def test_a_run_that_cannot_fit_is_refused_before_its_directory(tmp_path, monkeypatch):
    from autoencoder.pipeline import train_run

    monkeypatch.setattr(memory, "memory_limit", lambda: (900 * 2**20, "the cgroup limit (test)"))
    config = tiny(tmp_path, "train.batch_size=4096", "train.mixed_precision=off")
    with pytest.raises(UserError) as info:
        train_run(config)
    message = str(info.value)
    assert message.startswith("train: the run needs about ")
    assert (
        "at batch 4096 in float32 (`autoencoder shapes` shows the plan) but the cgroup limit "
        "(test) is " in message
    )
    suggested = int(message.split("--set train.batch_size=")[1].split(",")[0])
    plan = plan_model(config.model)
    held = memory.known_data(config, plan)
    assert memory.plan_memory(plan, suggested, "float32", 2, held).total <= 900 * 2**20
    # A round number: a multiple of 8, within 8 of the largest that fits.
    largest = memory.largest_batch(plan, "float32", 2, held, 900 * 2**20)
    assert suggested % 8 == 0 and largest - 8 < suggested <= largest
    assert not (tmp_path / "tiny").exists()
    # Asked for, the check is skipped (here the run then trains: the limit was made up).
    skipped = tiny(tmp_path, "train.batch_size=4096", "train.memory_check=false", "train.epochs=1")
    run_dir, metrics = train_run(skipped)
    assert run_dir.is_dir() and metrics["test/images"] == 1000


def test_shapes_prints_the_memory_table(capsys):
    from autoencoder.cli import main

    assert main(["shapes", "configs/seed_tutorial.yaml"]) == 0
    out = capsys.readouterr().out
    assert "memory at batch 1000" in out and "total for training" in out
    assert "enc1_conv        26x26x32" in out


def test_the_limit_of_this_process_own_cgroup_is_read():
    root = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
    v1 = "12:memory:/process_api/abc\n11:cpu,cpuacct:/process_api/abc\n"
    assert memory._cgroup_limit_files(v1) == [
        *root,
        "/sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes",
    ]
    assert memory._cgroup_limit_files("0::/user.slice/job\n") == [
        *root,
        "/sys/fs/cgroup/user.slice/job/memory.max",
    ]
    assert memory._cgroup_limit_files("0::/\n") == root
