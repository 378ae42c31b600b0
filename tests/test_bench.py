"""The benchmark: analytic FLOP counts, and one tiny three-contender run through the CLI."""

import json
import os
import statistics
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, cli

from autoencoder.bench.parent import format_bench
from autoencoder.config import load_config
from autoencoder.shapes import forward_flops, plan_model


def test_seed_tutorial_flops_by_hand():
    plan = plan_model(load_config(ROOT / "configs" / "seed_tutorial.yaml").model)
    # Conv2D: out_h*out_w*cout*k*k*cin; Conv2DTranspose: in_h*in_w*cin*k*k*cout; x2 per multiply-add.
    by_hand = (
        2
        * 9
        * (
            26 * 26 * 32 * 1
            + 24 * 24 * 16 * 32
            + 22 * 22 * 8 * 16  # encoder
            + 22 * 22 * 8 * 8
            + 24 * 24 * 8 * 16
            + 26 * 26 * 16 * 32  # decoder
            + 28 * 28 * 1 * 32
        )
    )  # output conv
    assert sum(forward_flops(layer) for layer in plan.layers) == by_hand == 15_379_200


def test_dense_and_pooling_flops():
    plan = plan_model(
        load_config(
            None,
            [
                "model.encoder=[{filters: 4, strides: 2}, {type: maxpool, pool_size: 2}]",
                "model.latent_dim=10",
            ],
        ).model
    )
    by_kind = {layer.kind: forward_flops(layer) for layer in plan.layers}
    assert by_kind["MaxPooling2D"] == 0 and by_kind["Flatten"] == 0
    dense = [layer for layer in plan.layers if layer.kind == "Dense"]
    # 7x7x4 = 196 values -> 10 (the code) -> 196.
    assert [forward_flops(layer) for layer in dense] == [2 * 196 * 10, 2 * 10 * 196]


def bench(config: str, sets: list[str], output: Path, epochs: int):
    """`autoencoder bench` through the CLI into output: (its result, bench.json, its folder)."""
    args = [a for s in [*sets, f"output={output}"] for a in ("--set", s)]
    result = cli("bench", config, *args, "--epochs", str(epochs), "--warmup", "0", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    [bench_dir] = (output / f"{Path(config).stem}-bench").iterdir()
    return result, json.loads((bench_dir / "bench.json").read_text()), bench_dir


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    """A tiny benchmark through the CLI: (the command's result, bench.json, its directory)."""
    tmp_path = tmp_path_factory.mktemp("bench")
    sets = ["data.dataset=mnist_sample", "data.limit=300", "train.batch_size=100"]
    return bench("configs/seed_tutorial.yaml", sets, tmp_path, epochs=2)


def test_tiny_bench_writes_its_table(tiny_bench):
    result, report, bench_dir = tiny_bench
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == f"A/B = {report['A/B']:.2f}"
    assert report["images"] == 240  # 300 minus the 20% validation split
    assert report["train_flops_per_image"] == 3 * 15_379_200
    assert 1 < report["matmul_gflops"] < 100_000
    for key in "ABC":
        c = report["contenders"][key]
        assert len(c["epoch_seconds"]) == 2 and len(c["losses"]) == 2
        assert c["images_per_second"] == pytest.approx(240 / c["median_epoch_seconds"])
        # 240 images at batch 100: steps of 100, 100, 40 per epoch; the 40s are left out.
        assert len(c["step_seconds"]) == 6
        full = c["step_seconds"][:2] + c["step_seconds"][3:5]
        assert c["median_step_seconds"] == pytest.approx(statistics.median(full))
        assert c["images_per_second_steps"] == pytest.approx(100 / c["median_step_seconds"])
        assert sum(c["step_seconds"][:3]) < c["epoch_seconds"][0]
        assert len(c["epochs"]) == 2
        for epoch, seconds in zip(c["epochs"], c["epoch_seconds"]):
            assert 0 < epoch["outside_steps"] < seconds and 0 <= epoch["start_gap"] < seconds
            assert 0 < epoch["cpu_seconds"] and epoch["minor_faults"] >= 0
        assert 0.0 < c["losses"][-1] < 0.7  # BCE on [0, 1] pixels, below log(2)
        assert 100 * 2**20 < c["peak_rss_bytes"] < 8 * 2**30
        assert 0.0 < c["test_mse"] < 0.25  # sigmoid outputs against [0, 1] pixels
        assert f"{key}  {c['label']}" in result.stdout
    # The headline is by median training step; the epoch medians stay beside it.
    steps = {k: report["contenders"][k]["images_per_second_steps"] for k in "AB"}
    assert report["A/B"] == pytest.approx(steps["A"] / steps["B"])
    epochs = {k: report["contenders"][k]["images_per_second"] for k in "AB"}
    assert report["A/B epochs"] == pytest.approx(epochs["A"] / epochs["B"])
    assert f"median epochs: A/B = {report['A/B epochs']:.2f}" in result.stdout
    assert f"A/C = {report['A/C']:.2f}" in lines
    assert load_config(bench_dir / "config.yaml").data.limit == 300
    # The contenders' own stderr (TensorFlow's start-up lines) in files, not on the terminal;
    # no empty folders of a run the bench does not train in.
    assert "oneDNN" not in result.stderr and "cuInit" not in result.stderr
    assert sorted(p.name for p in bench_dir.iterdir()) == [
        "bench.json",
        "config.yaml",
        *(f"contender-{k}.log" for k in "ABCM"),
    ]


@pytest.mark.slow
def test_one_timed_epoch_is_one_epoch_in_the_table(tiny_bench):
    report = {**tiny_bench[1], "timed_epochs": 1, "warmup_epochs": 0}
    text = format_bench(report)
    assert "images/s: median of 1 timed epoch each; best: " in text  # no "after 0 warm-up"
    assert "test MSE after 1 trained epoch\n" in text
    text = format_bench({**report, "warmup_epochs": 2})
    assert "median of 1 timed epoch each, after 2 warm-up epochs; best" in text
    assert "test MSE after 3 trained epochs\n" in text


def test_a_split_smaller_than_a_batch_is_timed_by_its_own_images():
    from autoencoder.bench.parent import _figures, _Turns

    turns = _Turns(images=80)  # one short step an epoch at batch 100
    turns.times["A"], turns.steps["A"], turns.details["A"] = [1.0, 1.0], [0.5, 0.4], [{}, {}]
    turns.finals["A"] = {"peak_rss_bytes": 1, "test_mse": 0.1, "precision": "float32"}
    turns.losses["A"] = [0.5, 0.4]
    figures = _figures(turns, "A", batch=100, flops=1e6, matmul=100.0)
    assert figures["images_per_second_steps"] == pytest.approx(80 / 0.45)


@pytest.mark.slow
def test_contender_a_trains_through_train_fit(tiny_bench):
    _, report, _ = tiny_bench
    run = report["contenders"]["A"]["scratch_run"]
    # trainer.fit's RunRecorder wrote a history.csv row for each of the 0 + 2 epochs, and fit saved
    # the models at its end: files only the trainer `autoencoder train` runs writes.
    assert run["history_epochs"] == report["warmup_epochs"] + report["timed_epochs"] == 2
    assert {"checkpoints", "history.csv", "model.keras", "encoder.keras"} <= set(run["files"])
    for key in "BC":
        assert "scratch_run" not in report["contenders"][key]


def test_plain_contenders_hold_per_image_crops_of_each_image():
    from autoencoder.bench.contender import plain_patches, training_samples

    config = load_config(None, ["data.patches={size: [4, 5], per_image: 3}"])
    x = np.arange(2 * 8 * 9, dtype=np.float32).reshape(2, 8, 9, 1)
    crops = plain_patches(x, config.data.patches, seed=0)
    assert crops.shape == (6, 4, 5, 1)
    for i, crop in enumerate(crops):  # each a window of its own image, in image order
        top, left = np.argwhere(x[i // 3, :, :, 0] == crop[0, 0, 0])[0]
        np.testing.assert_array_equal(crop, x[i // 3, top : top + 4, left : left + 5])
    assert training_samples(config, 2) == 6
    assert training_samples(load_config(None, []), 2) == 2


@pytest.mark.parametrize("patches", [None, "{size: [8, 8], per_image: 2}"])
def test_plain_contenders_of_a_denoiser_fit_noisy_inputs_to_clean_targets(patches):
    from autoencoder.bench.contender import plain_pairs

    sets = ["data.noise={kind: gaussian, level: 0.3, clip: false}"]
    config = load_config(None, sets + ([f"data.patches={patches}"] if patches else []))
    x = np.random.default_rng(0).uniform(0.2, 0.8, (20, 12, 12, 1)).astype(np.float32)
    given, target = plain_pairs(config, x)
    size = (8, 8) if patches else (12, 12)
    assert given.shape == target.shape == (40 if patches else 20, *size, 1)
    if not patches:
        np.testing.assert_array_equal(target, x)
    # The run's Gaussian noise, at the same windows as the clean targets.
    assert np.std(given - target) == pytest.approx(0.3, rel=0.1)
    plain, _ = plain_pairs(load_config(None, []), x)
    np.testing.assert_array_equal(plain, x)  # no noise: the images themselves


@pytest.mark.slow
def test_a_patch_model_is_benched_on_its_patches(tmp_path):
    sets = [
        "data.dataset=mnist_sample",
        "data.limit=100",
        "data.patches={size: [16, 16], per_image: 2}",
        "model.input_shape=[16, 16, 1]",
        "model.encoder=[{filters: 4, strides: 2}]",
        "model.latent_dim=null",
        "train.batch_size=40",
        "train.tensorboard=false",
    ]
    result, report, _ = bench("configs/quickstart.yaml", sets, tmp_path, epochs=1)
    assert report["images"] == 180 and report["samples"] == "16x16 patches"  # 90 images x 2
    assert "180 training 16x16 patches, batch 40" in result.stdout
    for key in "ABC":
        assert 0.0 < report["contenders"][key]["test_mse"] < 0.25


def test_layer_profile_has_a_row_per_layer_and_precision():
    from autoencoder.bench import layer_profile

    config = load_config(None, ["model.encoder=[{filters: 4, strides: 2}]", "train.batch_size=8"])
    text = layer_profile(config, repeats=2)
    plan = plan_model(config.model)
    rows = [
        line
        for line in text.splitlines()
        if line.split()[:1] in (["float32"], ["mixed_bfloat16"], ["mixed_float16"])
    ]
    policies = {row.split()[0] for row in rows}
    assert len(rows) == len(plan.layers) * len(policies)
    conv_rows = [row for row in rows if " Conv2D " in row]
    assert all(float(row.split()[-1]) > 0 for row in conv_rows)  # GFLOP/s of a convolution
    assert text.splitlines()[-1].startswith(f"{sorted(policies)[-1]}: layers alone add up to")


def test_data_that_cannot_be_found_is_one_line_before_anything_is_written(tmp_path):
    # MNIST nowhere: no $AUTOENCODER_DATA, an empty Keras cache, no download.
    env = {k: v for k, v in os.environ.items() if k != "AUTOENCODER_DATA"}
    env |= {"AUTOENCODER_OFFLINE": "1", "KERAS_HOME": str(tmp_path / "keras")}
    out = tmp_path / "out"
    result = cli(
        "bench",
        "configs/bottleneck32_4min.yaml",
        "--epochs",
        "1",
        "--set",
        f"output={out}",
        env=env,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: no mnist data found; searched: ")
    assert not out.exists()  # and no contender started: their tracebacks would be above
