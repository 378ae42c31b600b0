"""`autoencoder predict` on real digits, tiled larger images, arrays, colour, and bad inputs."""

import csv
import json
import logging
import shutil
import weakref

import numpy as np
import pytest
from conftest import assert_error, cli, cli_without_tensorflow, tiny, write_config

from autoencoder.data import load_sample
from autoencoder.data.images import read_image, write_png
from autoencoder.data.patches import tile_starts, window
from autoencoder.errors import UserError
from autoencoder.evaluate import per_image_mse
from autoencoder.predict import (
    COLUMNS,
    Batcher,
    Item,
    format_summary,
    predict_files,
)

LEVEL = 0.5  # the denoiser's training noise, and --noise in the tests
# A denoiser small enough to train in seconds that clearly beats its noisy inputs: 800 digits,
# no dense code, a high learning rate (as tests/test_denoise.py's sweep), three epochs.
DENOISER = [
    "name=denoiser",
    "data.limit=800",
    "model.encoder=[{filters: 8, strides: 2}, {filters: 16, strides: 2}]",
    "model.latent_dim=null",
    "train.epochs=3",
    "train.batch_size=16",
    "train.optimizer.learning_rate=0.005",
    f"data.noise={{kind: gaussian, level: {LEVEL}}}",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from autoencoder.pipeline import train_run

    return train_run(tiny(tmp_path_factory.mktemp("runs"), *DENOISER))[0]


@pytest.fixture(scope="module")
def model(run):
    from autoencoder.model import load_model

    return load_model(run / "model.keras")


@pytest.fixture(scope="module")
def digits():
    return load_sample().x_test[:27]  # real MNIST digits, uint8 (27, 28, 28)


def grid(digits, rows, cols):
    """A (28 rows, 28 cols) mosaic of digits, uint8 (H, W)."""
    return np.block([[digits[r * cols + c] for c in range(cols)] for r in range(rows)])


def read_scores(out):
    with open(out / "scores.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


class Identity:
    """A stand-in model that returns its input: blending must then give the image back."""

    def predict_on_batch(self, x):
        return np.array(x)


def blend(model, image, batch_size=256):
    got = []
    batcher = Batcher(model, (28, 28), batch_size, lambda item, result: got.append(result))
    batcher.add(Item("x", "x", image, image.shape[-1], None))
    batcher.flush()
    return got[0]


# ---------------------------------------------------------------------------------------------
# Real digits through the CLI: names, shapes, scores against a direct computation


def test_real_digits_keep_their_names_and_scores_match_a_direct_computation(
    tmp_path, run, model, digits
):
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, digit in enumerate(digits[:12]):
        write_png(folder / f"digit{i:02d}.png", digit[..., None])
    out = tmp_path / "out"
    result = cli("predict", run, folder, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "12/12" in result.stderr  # the progress bar, on stderr

    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"digit{i:02d}.png" for i in range(12)] + ["scores.csv"])
    header, rows = read_scores(out)
    assert header == list(COLUMNS)  # no noise, no anomaly threshold: no such columns
    assert [r["output"] for r in rows] == [f"digit{i:02d}.png" for i in range(12)]
    assert {(r["height"], r["width"], r["channels"], r["tiles"]) for r in rows} == {
        ("28", "28", "1", "1")
    }

    x = digits[:12, ..., None].astype(np.float32) / 255
    direct = model.predict(x, verbose=0)
    expected = per_image_mse(x, direct)
    got = np.array([float(r["mse"]) for r in rows])
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    np.testing.assert_allclose(
        [float(r["psnr"]) for r in rows], 10 * np.log10(1 / expected), rtol=1e-3
    )
    assert 0.002 < expected.mean() < 0.06  # a trained model, not noise nor a copy
    for i in (0, 11):  # the PNGs hold the reconstructions, rounded to 8 bits
        png = read_image(out / f"digit{i:02d}.png").astype(np.float32) / 255
        assert png.shape == (28, 28, 1)
        assert np.abs(png - direct[i]).max() <= 0.5 / 255 + 1e-6
    assert f"12 image(s): MSE {expected.mean():.5f} per pixel" in result.stdout


# ---------------------------------------------------------------------------------------------
# Tiles


def test_an_image_three_times_the_model_size_is_tiled_to_its_own_shape(
    tmp_path, run, digits, caplog
):
    write_png(tmp_path / "grid.png", grid(digits, 3, 3)[..., None])  # 84 x 84
    write_png(tmp_path / "strip.png", grid(digits, 2, 3)[:50, :80, None])  # 50 x 80
    out = tmp_path / "out"
    summary = predict_files(run, [tmp_path / "grid.png", tmp_path / "strip.png"], out)
    assert read_image(out / "grid.png").shape == (84, 84, 1)
    assert read_image(out / "strip.png").shape == (50, 80, 1)
    _, rows = read_scores(out)
    per_axis = {84: len(tile_starts(84, 28)), 50: len(tile_starts(50, 28))}
    assert int(rows[0]["tiles"]) == per_axis[84] ** 2
    assert int(rows[1]["tiles"]) == per_axis[50] * len(tile_starts(80, 28))
    # The tiled mosaic is reconstructed about as well as single digits, not as a blur.
    assert summary["images"] == 2 and summary["mse"] < 0.08
    # A model of whole digits takes each tile for a digit: one warning says so.
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [w for w in warned if w.startswith("2 input(s) larger than the model's 28x28 were cut")]


def test_a_denoiser_lowers_the_error_of_noisy_inputs(tmp_path, run, digits):
    folder = tmp_path / "in"
    folder.mkdir()
    write_png(folder / "grid.png", grid(digits, 3, 3)[..., None])
    for i in range(9, 19):
        write_png(folder / f"d{i}.png", digits[i][..., None])
    out = tmp_path / "out"
    summary = predict_files(run, [folder], out, noise=LEVEL)
    header, rows = read_scores(out)
    assert header == [*COLUMNS, "noisy_mse", "noisy_psnr"]
    assert len(rows) == 11 and (out / "noisy" / "grid.png").is_file()
    for row in rows:  # every image, the 84 x 84 tiled one among them
        assert float(row["mse"]) < float(row["noisy_mse"]), row
    assert summary["mse"] < 0.7 * summary["noisy_mse"]
    # The noisy image written is the one the scores measured.
    clean = grid(digits, 3, 3)[..., None].astype(np.float32) / 255
    noisy = read_image(out / "noisy" / "grid.png").astype(np.float32) / 255
    grid_row = next(r for r in rows if r["output"] == "grid.png")
    assert per_image_mse(clean[None], noisy[None])[0] == pytest.approx(
        float(grid_row["noisy_mse"]), rel=0.02
    )
    # Same inputs, same noise: a second run scores identically.
    predict_files(run, [folder], tmp_path / "again", noise=LEVEL)
    assert read_scores(tmp_path / "again")[1] == rows


def test_blending_an_identity_gives_the_image_back_exactly():
    rng = np.random.default_rng(0)
    for shape in ((84, 84, 1), (61, 95, 3), (20, 20, 1), (20, 90, 1)):
        image = rng.random(shape, dtype=np.float32)
        np.testing.assert_allclose(blend(Identity(), image), image, atol=1e-6)
    # Every pixel of a large image is covered, with weights that never reach zero.
    assert window(28, 28).min() > 0 and tile_starts(84, 28)[-1] == 56


class Vignette:
    """A stand-in whose reconstruction of a flat tile has what conv decoders give it: darker
    edges (zero padding) and a faint stride-2 checkerboard; fixed, unlike a trained model's."""

    def __init__(self):
        d = np.minimum(np.arange(28), 27 - np.arange(28))
        edge = np.exp(-np.minimum.outer(d, d) / 2.0)
        checker = np.indices((28, 28)).sum(axis=0) % 2
        self.profile = (1 - 0.4 * edge + 0.05 * checker)[..., None].astype(np.float32)

    def predict_on_batch(self, x):
        return np.array(x) * self.profile

    def predict(self, x, verbose=0):
        return self.predict_on_batch(x)


def seams(model, value):
    """(largest step, row/column banding) of a blended flat 84 x 84 image, over pasted tiles."""

    def steepest(a):  # the largest step between neighbouring pixels
        return max(np.abs(np.diff(a, axis=0)).max(), np.abs(np.diff(a, axis=1)).max())

    def banding(a):  # how far the means of rows (or columns) spread
        return max(np.ptp(a.mean(axis=0)), np.ptp(a.mean(axis=1)))

    image = np.full((84, 84, 1), value, np.float32)
    # Every tile of a flat image is the same, so pasting one reconstruction 3 x 3 is what
    # tiling without blending would give; its seams are where that tile's edges meet.
    pasted = np.tile(model.predict(image[None, :28, :28], verbose=0)[0], (3, 3, 1))
    inner = slice(14, 70)  # away from the image's own border, which one tile sees alone
    a, b = blend(model, image)[inner, inner], pasted[inner, inner]
    assert steepest(b) > 0.05  # the reconstruction of a flat tile is not flat
    return steepest(a) / steepest(b), banding(a) / banding(b)


def test_blending_hides_the_seams_and_bands_of_pasted_tiles():
    """Hann weights and an odd tile step: edges fade out, checkerboards of neighbours cancel."""
    for value in (0.3, 0.6):
        step, bands = seams(Vignette(), value)
        assert step < 0.1 and bands < 0.1, (value, step, bands)


def test_a_trained_denoiser_shows_no_seams(model):
    # Six trainings (seeds 0-2, float32 and bfloat16) gave ratios of 0.06-0.14 for mid grey; a
    # trained model's flat-tile output varies with the host's numerics, hence the wide margin.
    step, bands = seams(model, 0.6)
    assert step < 0.35 and bands < 0.35, (step, bands)


def test_evaluate_and_predict_give_a_patch_model_the_same_pixels(
    tmp_path, keras, caplog, monkeypatch
):
    from autoencoder.runs import predict_images

    # A hand-made model beside the tiny config: its parameters are not the config's plan,
    # which a run's own check would refuse (test_runs), and beside the point here.
    monkeypatch.setattr("autoencoder.runs.saved_parameter_count", lambda path: None)

    config = tiny(tmp_path, "data.patches={size: [16, 16]}")
    # Random convolutions whose 'same' padding makes a tile's border pixels differ from the
    # whole image's: the two paths agree only if they cut and blend the same tiles.
    layers = [
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid"),
    ]

    def build(shape):
        given = outputs = keras.Input(shape)
        for layer in layers:
            outputs = layer(outputs)
        return keras.Model(given, outputs)

    model = build((16, 16, 1))
    whole = build((None, None, 1))  # the same weights over the image at once, without tiles
    run = tmp_path / "run"
    run.mkdir()
    write_config(run / "config.yaml", config)
    model.save(run / "model.keras")
    image = np.random.default_rng(0).random((50, 37), dtype=np.float32)
    np.save(tmp_path / "image.npy", image)

    predict_files(run, [tmp_path / "image.npy"], tmp_path / "out")
    assert not [r for r in caplog.records if "cut into tiles" in r.getMessage()]  # made for tiles
    predicted = np.load(tmp_path / "out" / "image.npy")
    evaluated = predict_images(model, image[None, ..., None], config.data.patches)[0, ..., 0]
    np.testing.assert_allclose(predicted, evaluated, rtol=1e-5, atol=1e-6)
    untiled = keras.ops.convert_to_numpy(whole(image[None, ..., None]))[0, ..., 0]
    assert np.abs(predicted - untiled).max() > 1e-3  # the tiling shows, so the check can fail


def test_memory_holds_one_batch_of_images_whatever_their_number():
    live, most = weakref.WeakSet(), [0]

    def finish(item, result):
        most[0] = max(most[0], len(live))

    batcher = Batcher(Identity(), (28, 28), 16, finish)
    for i in range(500):
        item = Item(str(i), str(i), np.zeros((28, 28, 1), np.float32), 1, None)
        live.add(item)
        batcher.add(item)
        del item
    batcher.flush()
    assert most[0] <= 17  # the batch being finished and the one image being read


# ---------------------------------------------------------------------------------------------
# Arrays, colour, anomaly thresholds


def test_arrays_keep_their_names_shapes_and_other_members(tmp_path, run, model, digits):
    np.save(tmp_path / "stack.npy", digits[:5])  # (5, 28, 28) uint8
    np.savez(tmp_path / "set.npz", x=digits[5:8, ..., None] / 255.0, y=np.arange(3))
    out = tmp_path / "out"
    predict_files(run, [tmp_path / "stack.npy", tmp_path / "set.npz"], out)
    stack = np.load(out / "stack.npy")
    assert stack.shape == (5, 28, 28) and stack.dtype == np.float32
    direct = model.predict(digits[:8, ..., None].astype(np.float32) / 255, verbose=0)
    np.testing.assert_allclose(stack, direct[:5, ..., 0], atol=1e-5)
    with np.load(out / "set.npz") as archive:
        assert sorted(archive.files) == ["x", "y"]
        assert archive["x"].shape == (3, 28, 28, 1)
        np.testing.assert_array_equal(archive["y"], np.arange(3))
        np.testing.assert_allclose(archive["x"], direct[5:8], atol=1e-5)
    _, rows = read_scores(out)
    assert [r["input"] for r in rows] == [
        *(f"{tmp_path / 'stack.npy'}[{i}]" for i in range(5)),
        *(f"{tmp_path / 'set.npz'}:x[{i}]" for i in range(3)),
    ]
    assert rows[6]["output"] == "set.npz:x[1]"


def test_an_array_of_one_image_with_channels_is_one_image(tmp_path, run, model, digits):
    # x[0] of an (N, H, W, 1) stack, or one colour picture: (H, W, C), not H images H x C.
    rgb = np.stack([digits[1], digits[1] // 2, np.zeros_like(digits[1])], axis=-1)
    np.save(tmp_path / "grey.npy", digits[0][..., None])  # (28, 28, 1)
    np.save(tmp_path / "rgb.npy", rgb)  # (28, 28, 3)
    out = tmp_path / "out"
    predict_files(run, [tmp_path / "grey.npy", tmp_path / "rgb.npy"], out)
    grey = np.load(out / "grey.npy")
    assert grey.shape == (28, 28, 1)
    direct = model.predict(digits[:1, ..., None].astype(np.float32) / 255, verbose=0)[0]
    np.testing.assert_allclose(grey, direct, atol=1e-5)
    assert np.load(out / "rgb.npy").shape == (28, 28, 1)  # the model's channels
    _, rows = read_scores(out)
    assert [(r["input"], r["height"], r["width"], r["channels"]) for r in rows] == [
        (str(tmp_path / "grey.npy"), "28", "28", "1"),
        (str(tmp_path / "rgb.npy"), "28", "28", "3"),
    ]


def test_colour_is_converted_to_the_models_channels_with_one_line(tmp_path, run, digits, caplog):
    for i in range(2):
        rgb = np.stack([digits[i], digits[i] // 2, np.zeros_like(digits[i])], axis=-1)
        write_png(tmp_path / f"colour{i}.png", rgb)
    write_png(tmp_path / "grey.png", digits[2][..., None])
    with caplog.at_level(logging.INFO, logger="autoencoder"):
        predict_files(run, [tmp_path], tmp_path / "out")
    lines = [r.getMessage() for r in caplog.records if "convert" in r.getMessage()]
    assert lines == ["converted 2 input(s) to greyscale: the model takes 1 channel(s)"]
    assert read_image(tmp_path / "out" / "colour0.png").shape == (28, 28, 1)
    _, rows = read_scores(tmp_path / "out")
    assert [r["channels"] for r in rows] == ["3", "3", "1"]


def test_a_run_with_an_anomaly_threshold_flags_images_above_it(tmp_path, run, digits, caplog):
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoints", "figures", "logs"))
    for i in range(6):
        write_png(tmp_path / f"d{i}.png", digits[i][..., None])
    predict_files(copy, [tmp_path / f"d{i}.png" for i in range(6)], tmp_path / "first")
    errors = sorted(float(r["mse"]) for r in read_scores(tmp_path / "first")[1])
    threshold = (errors[2] + errors[3]) / 2
    metrics = json.loads((copy / "metrics.json").read_text())
    (copy / "metrics.json").write_text(json.dumps({**metrics, "anomaly/threshold": threshold}))
    caplog.set_level(logging.INFO, logger="autoencoder")
    summary = predict_files(copy, [tmp_path / f"d{i}.png" for i in range(6)], tmp_path / "out")
    assert f"(chosen by autoencoder anomaly, in {copy / 'metrics.json'})" in caplog.text
    header, rows = read_scores(tmp_path / "out")
    assert len(rows) == 6
    assert header == [*COLUMNS, "score", "score_kind", "threshold", "anomaly"]
    assert [r["anomaly"] for r in rows] == [str(int(float(r["mse"]) > threshold)) for r in rows]
    assert {r["score_kind"] for r in rows} == {"mse"} and all(r["score"] == r["mse"] for r in rows)
    assert summary["anomalies"] == 3 and float(rows[0]["threshold"]) == pytest.approx(
        threshold, rel=1e-5
    )
    # A threshold given on the command line is the one used, whatever the run holds.
    mine = (errors[4] + errors[5]) / 2
    summary = predict_files(
        copy, [tmp_path / f"d{i}.png" for i in range(6)], tmp_path / "mine", threshold=mine
    )
    assert summary["anomalies"] == 1 and summary["threshold"] == mine and summary["given"]
    # A damaged metrics.json held the run's threshold: refused, not predicted without flags;
    # with a threshold of one's own the run's score kind (config.yaml's) serves.
    damaged = tmp_path / "damaged"
    shutil.copytree(copy, damaged)
    (damaged / "metrics.json").write_text('{"test/mse": 0.1,')
    with pytest.raises(UserError) as refused:
        predict_files(damaged, [tmp_path / "d0.png"], tmp_path / "none")
    assert str(refused.value) == (
        f"{damaged / 'metrics.json'}: damaged (not a JSON object), and it held the run's anomaly "
        f"threshold, if it had one; pass --threshold, or choose it anew with `autoencoder "
        f"anomaly` (`autoencoder evaluate {damaged}` writes the test metrics again)"
    )
    assert not (tmp_path / "none").exists()
    summary = predict_files(
        damaged, [tmp_path / f"d{i}.png" for i in range(6)], tmp_path / "own", threshold=mine
    )
    assert summary["anomalies"] == 1 and summary["kind"] == "mse"
    # A value of one's own in config.yaml, beside the threshold anomaly chose: said, not hidden.
    from autoencoder.config import dump_config
    from autoencoder.runs import load_run_config

    edited = load_run_config(copy, [f"anomaly.threshold={{value: {mine}}}"])
    (copy / "config.yaml").write_text(dump_config(edited))
    caplog.clear()
    summary = predict_files(copy, [tmp_path / f"d{i}.png" for i in range(6)], tmp_path / "again")
    assert summary["threshold"] == pytest.approx(threshold)
    assert (
        f"{copy / 'config.yaml'} sets anomaly.threshold.value {mine:g}, but the run's threshold "
        f"is {threshold:g}, chosen by autoencoder anomaly (metrics.json); predict uses "
        f"{threshold:g}: pass --threshold {mine:g} for yours"
    ) in caplog.text


def test_a_run_scored_by_mae_flags_by_mae(tmp_path, run, digits):
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoints", "figures", "logs"))
    inputs = []
    for i in range(6):
        write_png(tmp_path / f"d{i}.png", digits[i][..., None])
        inputs.append(tmp_path / f"d{i}.png")
    metrics = json.loads((copy / "metrics.json").read_text())
    held = {**metrics, "anomaly/threshold": 0.05, "anomaly/score": "mae"}
    (copy / "metrics.json").write_text(json.dumps(held))
    predict_files(copy, inputs, tmp_path / "out")
    _, rows = read_scores(tmp_path / "out")
    assert len(rows) == len(inputs) == 6
    for row, path in zip(rows, inputs):
        clean = read_image(path).astype(np.float64) / 255
        recon = read_image(tmp_path / "out" / row["output"]).astype(np.float64) / 255
        # The output PNG is 8-bit: its MAE is within half a grey level of the model's.
        assert float(row["score"]) == pytest.approx(np.abs(clean - recon).mean(), abs=0.5 / 255)
        assert row["score_kind"] == "mae" and row["anomaly"] == str(int(float(row["score"]) > 0.05))


@pytest.mark.parametrize("kind, name", [("mse", "MSE"), ("mae", "MAE"), ("ssim", "1 - SSIM")])
def test_the_summary_names_the_score_the_threshold_is_on(tmp_path, kind, name):
    summary = {"images": 6, "mse": 0.01, "threshold": 0.25, "kind": kind, "anomalies": 2}
    lines = format_summary({**summary, "out": tmp_path}).splitlines()
    assert lines[1] == f"2 above the anomaly threshold 0.25 ({name} per image)"
    # With --quiet the summary is all one sees: it says the threshold was the user's.
    lines = format_summary({**summary, "out": tmp_path, "given": True}).splitlines()
    assert lines[1] == f"2 above the anomaly threshold 0.25 ({name} per image, --threshold)"


# ---------------------------------------------------------------------------------------------
# Mistakes: one line, exit status 2, nothing written


def test_an_existing_output_is_refused_and_overwrite_replaces_it(tmp_path, run, digits, caplog):
    write_png(tmp_path / "a.png", digits[0][..., None])
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"mine")
    result = cli("predict", run, tmp_path / "a.png", "--out", out)
    assert_error(
        result,
        f"{out / 'a.png'}: already exists; pass --overwrite to replace, or choose another --out",
    )
    assert (out / "a.png").read_bytes() == b"mine" and sorted(out.iterdir()) == [out / "a.png"]
    predict_files(run, [tmp_path / "a.png"], out, overwrite=True)
    assert read_image(out / "a.png").shape == (28, 28, 1)
    assert not [r for r in caplog.records if "other file(s)" in r.getMessage()]
    # Files of an earlier prediction that this one does not write are kept, and said so.
    write_png(tmp_path / "b.png", digits[1][..., None])
    predict_files(run, [tmp_path / "b.png"], out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "scores.csv"]
    assert f"{out} holds 1 other file(s), left as they were: scores.csv lists" in caplog.text


def test_an_unreadable_file_stops_with_one_line_and_leaves_nothing(tmp_path, run, digits):
    folder = tmp_path / "in"
    folder.mkdir()
    write_png(folder / "a.png", digits[0][..., None])  # read and predicted first
    (folder / "b.png").write_bytes(b"not a png at all")
    out = tmp_path / "out"
    result = cli("predict", run, folder, "--out", out, "--quiet")
    bad = folder / "b.png"
    assert_error(
        result,
        f"{bad}: not a readable image (cannot identify image file); fix or remove it, or pass "
        f"--skip-bad to leave unreadable images out (nothing was written)",
    )
    assert not out.exists()  # made by this run, removed with what it held
    result = cli("predict", run, folder, "--out", out, "--skip-bad")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("1 image(s): MSE ")
    assert f"left out 1 unreadable input(s) (--skip-bad): {bad}" in result.stderr
    assert [r["input"] for r in read_scores(out)[1]] == [str(folder / "a.png")]
    (folder / "a.png").unlink()
    with pytest.raises(UserError, match=rf"^{bad}: no input could be read \(1 tried\)$"):
        predict_files(run, [folder], tmp_path / "none", skip_bad=True)
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d.mkdir(), "{p}: no image files (.png, .jpg, .jpeg, .bmp, .gif) in this folder"),
        (lambda d: None, "{p}: no such file or folder; check the path"),
        (lambda d: d.write_text("x"), "{p}: not an image (.png, .jpg, .jpeg, .bmp, .gif) nor"),
        (
            lambda d: (d.mkdir(), (d / "notes.txt").write_text("x")),
            "{p}: no image files (.png, .jpg, .jpeg, .bmp, .gif) in this folder",
        ),
    ],
    ids=["empty folder", "missing", "text file", "folder of text"],
)
def test_bad_inputs_are_one_line_before_tensorflow_loads(tmp_path, run, make, message):
    given = tmp_path / "given"
    make(given)
    out = tmp_path / "out"
    result = cli("predict", run, given, "--out", out, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: " + message.format(p=given))
    assert not out.exists()


def test_arrays_of_the_wrong_kind_are_refused(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros(10))
    np.save(tmp_path / "wide.npy", np.zeros((2, 28, 28, 5), np.uint8))
    np.save(tmp_path / "deep.npy", np.zeros((2, 28, 28), np.uint16))
    (tmp_path / "junk.npz").write_bytes(b"PK not a zip")
    np.save(tmp_path / "cut.npy", np.zeros((2, 28, 28), np.uint8))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "cut.npy").read_bytes()[:100])
    np.savez(tmp_path / "labels.npz", y=np.arange(3))
    np.save(tmp_path / "none.npy", np.zeros((0, 28, 28), np.uint8))
    from autoencoder.predict import collect_inputs

    shapes = "arrays of images are (H, W), (H, W, C), (N, H, W) or (N, H, W, C) with C = 1 or 3"
    for name, message in [
        ("flat.npy", f"a 1-D array; {shapes}"),
        ("wide.npy", f"shape (2, 28, 28, 5); {shapes}"),
        ("deep.npy", "uint16 pixels; save uint8 (0-255) or float pixels in [0, 1]"),
        ("junk.npz", "not a readable .npz archive (File is not a zip file); save it again"),
        ("cut.npy", "not a readable .npy array (EOF: reading array header, expected"),
        ("labels.npz", f"holds no images; {shapes}"),
        ("none.npy", f"holds no images; {shapes}"),
    ]:
        with pytest.raises(UserError, match=r"^" + str(tmp_path / name).replace(".", r"\.")) as e:
            collect_inputs([tmp_path / name])
        assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "where, value, said",
    [
        (
            (0, 0, 0),
            200.0,
            "[0]: float values from 0.5 to 200; float pixels are read as [0, 1]: divide 0-255 "
            "values by 255, or save uint8",
        ),
        (
            (1, 3, slice(0, 4)),
            [np.nan, np.inf, -np.inf, np.nan],
            "[1]: 4 of its 784 values are NaN or infinite; float pixels are read as [0, 1]: "
            "replace those values, or leave the image out",
        ),
    ],
)
def test_float_pixels_outside_0_1_or_not_numbers_are_refused(tmp_path, run, where, value, said):
    image = np.full((2, 28, 28), 0.5, np.float32)
    image[where] = value
    np.save(tmp_path / "raw.npy", image)
    with pytest.raises(UserError) as e:
        predict_files(run, [tmp_path / "raw.npy"], tmp_path / "out")
    assert str(e.value) == f"{tmp_path / 'raw.npy'}{said}"
    assert not (tmp_path / "out").exists()


def test_a_model_without_its_run_directory_is_refused(tmp_path, run, digits):
    write_png(tmp_path / "a.png", digits[0][..., None])
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(run / "model.keras", lone / "model.keras")
    result = cli("predict", lone / "model.keras", tmp_path / "a.png", "--out", tmp_path / "o")
    assert_error(
        result,
        f"{lone / 'model.keras'}: a model file, not a run directory; pass the run directory made "
        f"by `autoencoder train` that holds it (with its config.yaml)",
    )
    result = cli("predict", lone, tmp_path / "a.png", "--out", tmp_path / "o")
    assert_error(
        result,
        f"{lone}: not a run directory (no config.yaml); pass a directory made by "
        f"`autoencoder train`, e.g. outputs/<name>/<timestamp>",
    )
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(run / "config.yaml", unfinished / "config.yaml")
    with pytest.raises(UserError, match="model.keras: model file not found; was the run finished"):
        predict_files(unfinished, [tmp_path / "a.png"], tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_a_folder_holding_out_is_read_without_the_outputs(tmp_path, run, digits):
    write_png(tmp_path / "a.png", digits[0][..., None])
    predict_files(run, [tmp_path], tmp_path / "out")
    predict_files(run, [tmp_path], tmp_path / "out", overwrite=True)  # out/a.png is no input
    assert [r["input"] for r in read_scores(tmp_path / "out")[1]] == [str(tmp_path / "a.png")]


def test_noise_is_the_runs_kind_or_the_denoise_sections(tmp_path):
    from autoencoder.predict import noise_settings

    assert noise_settings(tiny(tmp_path, "data.noise={kind: speckle, clip: false}")) == (
        "speckle",
        False,
    )
    assert noise_settings(tiny(tmp_path, "denoise.kind=mask")) == ("mask", True)


def test_two_inputs_with_one_output_name_are_refused(tmp_path, run, digits):
    write_png(tmp_path / "a.png", digits[0][..., None])
    (tmp_path / "sub").mkdir()
    write_png(tmp_path / "sub" / "a.png", digits[1][..., None])
    with pytest.raises(UserError) as e:
        predict_files(run, [tmp_path / "a.png", tmp_path / "sub"], tmp_path / "o")
    assert str(e.value) == (
        f"{tmp_path / 'a.png'} and {tmp_path / 'sub' / 'a.png'} would both be written as a.png; "
        f"rename one, or predict them into separate --out folders"
    )


def test_outputs_never_replace_their_inputs(tmp_path, run, digits):
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(3):
        write_png(folder / f"digit_{i}.png", digits[i][..., None])
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(UserError) as refused:
        predict_files(run, [folder], folder, overwrite=True)
    assert str(refused.value) == (
        f"--out {folder}: is the input folder {folder} itself, whose images the outputs would "
        f"replace; choose another folder, e.g. {folder / 'reconstructed'}"
    )
    with pytest.raises(UserError) as refused:
        predict_files(run, [folder / "digit_0.png"], folder, overwrite=True)
    assert str(refused.value) == (
        f"{folder / 'digit_0.png'}: an input, which its output would replace; choose another --out"
    )
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_earlier_predictions_inside_an_input_folder_are_not_read_again(
    tmp_path, run, digits, caplog
):
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(3):
        write_png(folder / f"digit_{i}.png", digits[i][..., None])
    predict_files(run, [folder], folder / "first")
    caplog.set_level(logging.INFO, logger="autoencoder")
    predict_files(run, [folder], folder / "second")
    _, rows = read_scores(folder / "second")
    assert sorted(r["input"] for r in rows) == [str(folder / f"digit_{i}.png") for i in range(3)]
    assert f"{folder}: left out 1 earlier prediction folder(s) inside it ({folder / 'first'})" in (
        caplog.text
    )


@pytest.mark.parametrize(
    "level, message",
    [("-0.1", "must be 0 or more, got -0.1"), ("high", "expected a number, got 'high'")],
)
def test_a_noise_level_that_is_no_level_is_refused_by_the_parser(tmp_path, run, level, message):
    result, loaded = cli_without_tensorflow(
        "predict", run, tmp_path, "--out", tmp_path / "o", "--noise", level
    )
    assert result.returncode == 2 and not loaded
    assert f"argument --noise: {message}" in result.stderr
    assert not (tmp_path / "o").exists()


def test_a_folder_is_read_as_training_reads_it(tmp_path, digits, caplog):
    from autoencoder.predict import collect_inputs

    given, elsewhere = tmp_path / "given", tmp_path / "elsewhere"
    for path in [given / "a.png", given / ".ipynb_checkpoints" / "a-checkpoint.png"]:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_png(path, digits[0][..., None])
    elsewhere.mkdir()
    write_png(elsewhere / "b.png", digits[1][..., None])
    (given / "linked").symlink_to(elsewhere)
    (given / "loop").symlink_to(given)
    np.save(given / "codes.npy", np.zeros((2, 28, 28), np.uint8))
    (given / "notes.txt").write_text("x")
    with caplog.at_level(logging.WARNING):
        sources = collect_inputs([given])
    assert [s.name for s in sources] == ["a", "linked/b"]
    assert caplog.messages == [
        f"{given}: left out 2 file(s) that are not images (codes.npy, notes.txt); name "
        f".npy/.npz arrays on the command line to predict them"
    ]
