"""`autoencoder embed`: codes, linear probes and figures of a tiny real run, and its refusals."""

import json
import shutil

import numpy as np
import pytest
from conftest import assert_error, cli, cli_without_tensorflow, tiny, write_config

from autoencoder.config import load_config
from autoencoder.data import load_splits
from autoencoder.embed import embed_run, interpolation_pairs, probe_all, probe_subsample

# 600 digits (450 to train, 150 to validate; the sample's 1,000 test digits), 3 epochs at a high
# learning rate: a code that is poor but clearly knows the digits.
SETTINGS = ["data.limit=600", "train.epochs=3", "train.optimizer.learning_rate=0.005"]
KEYS = {
    "embed/probe_code",
    "embed/probe_pixels",
    "embed/probe_pca",
    "embed/probe_shuffled",
    "embed/majority",
    "embed/code_size",
    "embed/probe_train_images",
    "embed/test_images",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from autoencoder.pipeline import train_run

    return train_run(tiny(tmp_path_factory.mktemp("embed"), *SETTINGS))[0]


@pytest.fixture(scope="module")
def embedded(run):
    return embed_run(run)


@pytest.fixture(scope="module")
def splits(run):
    return load_splits(load_config(run / "config.yaml"))


def test_codes_are_the_encoders_and_labels_the_test_splits(run, embedded, splits, keras):
    codes, labels = np.load(run / "codes.npy"), np.load(run / "labels.npy")
    assert codes.shape == (1000, 8) and codes.dtype == np.float32
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, splits.labels("test"))
    # Batched as embed batches them: a bfloat16 model's outputs depend a little on the batch.
    encoder = keras.models.load_model(run / "encoder.keras")
    expected = encoder.predict(splits.images("test"), batch_size=512, verbose=0)
    np.testing.assert_allclose(codes, expected, atol=1e-5)


def test_the_code_probe_beats_chance_and_the_shuffled_labels(run, embedded):
    metrics = embedded["metrics"]
    assert set(metrics) == KEYS
    for key in ("probe_code", "probe_pixels", "probe_pca", "probe_shuffled", "majority"):
        assert 0 <= metrics[f"embed/{key}"] <= 1, key
    # Ten digit classes of about 10% each: chance is near 0.1, a code that knows them far above.
    assert metrics["embed/majority"] < 0.2
    assert metrics["embed/probe_shuffled"] < 0.25
    assert metrics["embed/probe_code"] > metrics["embed/majority"] + 0.2
    assert metrics["embed/probe_code"] > metrics["embed/probe_shuffled"] + 0.2
    # The pixels hold everything the code does: a linear probe on them does well on digits.
    assert metrics["embed/probe_pixels"] > 0.7
    assert metrics["embed/code_size"] == 8
    assert metrics["embed/probe_train_images"] == 450 and metrics["embed/test_images"] == 1000
    written = json.loads((run / "metrics.json").read_text())
    assert {k: written[k] for k in KEYS} == metrics
    assert "test/mse" in written  # merged into the run's metrics, not replacing them
    assert [row[0] for row in embedded["rows"]] == [
        "code",
        "raw pixels",
        "PCA of the pixels, 8 components",
        "code, shuffled labels",
        "majority class",
    ]


def test_figures_are_real_images(run, embedded):
    import matplotlib.image as mpimg

    for name, (height, width) in (("latent", (500, 1400)), ("latent_interpolation", (700, 1400))):
        image = mpimg.imread(run / "figures" / f"{name}.png")
        assert image.shape[0] >= height and image.shape[1] >= width, (name, image.shape)
        assert image[..., :3].std() > 0.05, name


def test_decoded_lines_start_and_end_at_the_images_codes(run, keras):
    from autoencoder.model import decode_lines

    decoder = keras.models.load_model(run / "decoder.keras")
    codes = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    steps = decode_lines(decoder, codes[:2], codes[1:], 5)
    assert steps.shape == (2, 5, 28, 28, 1)
    ends = decoder(codes).numpy()
    np.testing.assert_allclose(steps[:, 0], ends[:2], atol=1e-5)
    np.testing.assert_allclose(steps[:, -1], ends[1:], atol=1e-5)


def test_interpolation_pairs_join_different_classes():
    labels = np.array([0, 1, 2, 0, 1, 2, 0])
    pairs = interpolation_pairs(labels, rows=4)
    assert len(pairs) == 4
    assert all(labels[a] != labels[b] for a, b in pairs)
    assert len(set(pairs)) == 4  # a class's next image when it comes back


def test_probe_subsample_is_fixed_and_capped():
    assert list(probe_subsample(5, 10)) == [0, 1, 2, 3, 4]
    picked = probe_subsample(1000, 100)
    assert len(picked) == len(set(picked)) == 100 and list(picked) == sorted(picked)
    np.testing.assert_array_equal(picked, probe_subsample(1000, 100))


def test_a_vae_is_embedded_by_its_mean_code(tmp_path, keras):
    from autoencoder.pipeline import train_run

    config = tiny(tmp_path, *SETTINGS, "model.kind=vae", "train.kl={weight: 1.0, warmup_epochs: 1}")
    vae = train_run(config)[0]
    result = embed_run(vae, probe_limit=200)
    codes = np.load(vae / "codes.npy")
    assert codes.shape == (1000, 8)
    images = load_splits(config).images("test")
    encoder = keras.models.load_model(vae / "encoder.keras")
    mean, log_var = encoder.predict(images, batch_size=512, verbose=0)
    np.testing.assert_allclose(codes, mean, atol=1e-5)
    assert not np.allclose(codes, log_var, atol=0.1)
    assert result["metrics"]["embed/probe_train_images"] == 200
    assert 0 <= result["metrics"]["embed/probe_code"] <= 1
    assert (vae / "figures" / "latent.png").is_file()


# ---------------------------------------------------------------------------------------------
# Refusals: one line, exit 2, before TensorFlow, nothing written


def run_dir_of(tmp_path, *extra):
    """A run directory holding only the config.yaml of the tiny config with `extra`."""
    run = tmp_path / "run"
    run.mkdir()
    write_config(run / "config.yaml", tiny(tmp_path / "out", *extra))
    return run


def assert_refused(run, message):
    before = sorted(p for p in run.rglob("*") if p.name != ".lock")
    result, loaded = cli_without_tensorflow("embed", run)
    assert_error(result, message)
    assert not loaded
    assert sorted(p for p in run.rglob("*") if p.name != ".lock") == before


def test_a_model_with_skips_is_refused(tmp_path):
    run = run_dir_of(tmp_path, "model.skips=concat", "data.noise={kind: gaussian, level: 0.3}")
    assert_refused(
        run,
        f"{run}: model.skips is concat: its code is bypassed by skips (the decoder also reads "
        f"the encoder's earlier activations), so the code alone does not describe an image; "
        f"to embed, train a run with `model.skips: none`",
    )


def test_a_model_without_a_bottleneck_is_refused(tmp_path):
    # As configs/seed_tutorial.yaml: valid convolutions, no Dense code; 24x24x8 > 28x28.
    run = run_dir_of(
        tmp_path,
        "model.latent_dim=null",
        "model.encoder=[{filters: 4, padding: valid}, {filters: 8, padding: valid}]",
    )
    assert_refused(
        run,
        f"{run}: the model has no bottleneck: its code (24x24x8, 4,608 numbers) is as large as "
        f"the image (784 numbers) or larger, so it need not learn what the images have in "
        f"common; train a run with model.latent_dim set (e.g. 32) or more strided encoder layers",
    )


def test_an_unfinished_run_is_refused(tmp_path):
    run = run_dir_of(tmp_path)
    assert_refused(
        run,
        f"{run}: no encoder.keras: the run is not finished (training saves it at the end); "
        f"finish it with `autoencoder resume {run}`",
    )


def test_a_patch_model_is_refused(tmp_path):
    run = run_dir_of(tmp_path, "data.patches={size: [16, 16]}")
    assert_refused(
        run,
        f"{run}: the model was trained on 16x16 patches (data.patches), so its code describes a "
        f"patch, not an image; embed a run trained on whole images",
    )


def test_one_class_is_refused(tmp_path):
    run = run_dir_of(tmp_path, "data.classes=[3]")
    for name in ("encoder.keras", "decoder.keras"):
        (run / name).write_bytes(b"")  # never opened: the classes are checked first
    assert_refused(
        run,
        f"{run}: the training split holds one class (3), so there is nothing for a probe to "
        f"tell apart and no classes to colour a map by; embed needs labelled data with two or "
        f"more classes (for data.dataset: folder, one sub-folder per class)",
    )


def test_a_directory_that_is_not_a_run_is_refused(tmp_path):
    assert_refused(
        tmp_path,
        f"{tmp_path}: not a run directory (no config.yaml); pass a directory made by "
        f"`autoencoder train`, e.g. outputs/<name>/<timestamp>",
    )


# ---------------------------------------------------------------------------------------------
# The command


def test_cli_prints_the_probe_table(run, embedded, tmp_path):
    copy = shutil.copytree(run, tmp_path / "copy")
    result = cli("embed", copy, "--probe-limit", "200", "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "Linear probe (logistic regression on standardised features), fitted on 200 of the 450 "
        "train-split images (a fixed-seed subsample; --probe-limit), scored on 1,000 test images:"
    )
    assert lines[2].split() == ["what", "features", "test", "accuracy"]
    rows = {line[:34].strip(): line[34:].split() for line in lines[3:8]}
    assert list(rows) == [
        "code",
        "raw pixels",
        "PCA of the pixels, 8 components",
        "code, shuffled labels",
        "majority class",
    ]
    metrics = json.loads((copy / "metrics.json").read_text())
    assert rows["code"] == ["8", f"{metrics['embed/probe_code']:.4f}"]
    assert rows["raw pixels"] == ["784", f"{metrics['embed/probe_pixels']:.4f}"]
    assert rows["majority class"][:2] == ["-", f"{metrics['embed/majority']:.4f}"]
    assert metrics["embed/probe_train_images"] == 200
    assert f"codes: {copy / 'codes.npy'} (1,000 x 8, float32)" in result.stdout
    assert (copy / "figures" / "latent_interpolation.png").is_file()


def test_variance_shares_are_never_rounded_to_0_or_100_percent():
    from autoencoder.embed import share_text

    shares = [0.9984, 0.0007, 0.00001, 0.42, 0.95, 0.05, 0.99999]
    assert [share_text(r) for r in shares] == [
        "99.8%",
        "<0.1%",
        "<0.1%",
        "42%",
        "95.0%",
        "5.0%",
        ">99.9%",
    ]


def test_pca_is_skipped_when_the_code_has_as_many_numbers_as_probe_images():
    from types import SimpleNamespace

    rng = np.random.default_rng(0)
    labels, test_labels = np.arange(20) % 2, np.arange(10) % 2
    codes, pixels = rng.normal(size=(20, 24)), rng.random((20, 64))
    splits = SimpleNamespace(image_shape=(8, 8, 1), class_names=("a", "b"))
    rows, metrics = probe_all(
        (codes, labels), (codes[:10], test_labels), pixels, pixels[:10], splits
    )
    pca = next(row for row in rows if row[0].startswith("PCA"))
    assert pca == (
        "PCA of the pixels, 24 components",
        24,
        None,
        "skipped: 24 components need more than 20 images",
    )
    assert "embed/probe_pca" not in metrics and "embed/probe_pixels" in metrics
