"""`autoencoder export`: each format the environment supports, reloaded with its own runtime.

The LiteRT and ONNX tests skip only when their package is absent (pip install '.[export]',
which `make test` installs); the SavedModel needs nothing beyond TensorFlow.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, assert_error, cli, tiny

from autoencoder import export
from autoencoder.errors import UserError
from autoencoder.export import PARTS, TOLERANCE, export_run, format_export

SKIP_LITERT = "ai-edge-litert is not installed: pip install '.[export]'"
SKIP_ONNX = "tf2onnx and onnxruntime are not installed: pip install '.[export]'"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from autoencoder.pipeline import train_run

    # conftest's tiny model: two strided convolutions down to a Dense code of 8 numbers.
    return train_run(tiny(tmp_path_factory.mktemp("runs"), "train.epochs=1"))[0]


def float32_keras_models(run):
    """The run's float32 Keras models, as export compares against, and test images."""
    from autoencoder.data import load_splits
    from autoencoder.model import load_model
    from autoencoder.runs import load_run_config

    config = load_run_config(run)
    trained = load_model(run / "model.keras")
    models = export.float32_models(config, trained, run)
    images = load_splits(config).images("test")[40:56]  # not the images export checked on
    return models, trained, images


@pytest.fixture(scope="module")
def keras_models(run):
    return float32_keras_models(run)


def expected(keras_models):
    models, _, images = keras_models
    code = models["encoder"].predict(images, verbose=0)
    outputs = {
        "autoencoder": models["autoencoder"].predict(images, verbose=0),
        "encoder": code,
        "decoder": models["decoder"].predict(code, verbose=0),
    }
    return {"autoencoder": images, "encoder": images, "decoder": code}, outputs


def served(target, fmt, manifest, part, x):
    """`part`'s output for x from the exported file, run in its own runtime (not Keras)."""
    (name,) = [i["name"] for i in manifest["models"][part]["inputs"]]
    if fmt == "saved_model":
        import tensorflow as tf

        serve = tf.saved_model.load(str(target / part / "1")).signatures["serving_default"]
        return serve(**{name: tf.constant(x)})["output_0"].numpy()
    if fmt == "litert":
        from ai_edge_litert.interpreter import Interpreter

        runner = Interpreter(model_path=str(target / f"{part}.tflite")).get_signature_runner()
        return runner(**{name: x})["output_0"]
    import onnxruntime

    session = onnxruntime.InferenceSession(str(target / f"{part}.onnx"))
    assert session.get_inputs()[0].name == name
    return session.run(None, {name: x})[0]


def check_manifest(target, fmt, files):
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["format"] == fmt and manifest["precision"] == "float32"
    assert [manifest["models"][p]["path"] for p in PARTS] == files
    for part in PARTS:
        entry = manifest["models"][part]
        assert 0 <= entry["max_difference"] <= entry["tolerance"] <= 2 * TOLERANCE
        assert entry["inputs"][0]["dtype"] == entry["outputs"][0]["dtype"] == "float32"
    shapes = {
        p: (m["inputs"][0]["shape"], m["outputs"][0]["shape"])
        for p, m in manifest["models"].items()
    }
    assert shapes == {
        "autoencoder": ([None, 28, 28, 1], [None, 28, 28, 1]),
        "encoder": ([None, 28, 28, 1], [None, 8]),
        "decoder": ([None, 8], [None, 28, 28, 1]),
    }
    return manifest


def test_saved_model_export_serves_the_models_outputs(run, keras_models):

    result = cli("export", run)  # saved_model is the default
    assert result.returncode == 0, result.stderr[-3000:]
    target = run / "export" / "saved_model"
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "saved_model export (float32), each checked on 32 test images against the Keras model:"
    )
    assert lines[1].split() == (
        "autoencoder/1 input 'input' (None, 28, 28, 1) float32 -> "
        "output 'output_0' (None, 28, 28, 1) float32".split()
    )
    assert lines[3].split()[:2] == ["encoder/1", "input"] and "(None, 8)" in lines[3]
    assert lines[5].split()[:3] == ["decoder/1", "input", "'code'"]
    assert lines[2].split()[:2] == ["largest", "difference"]
    assert lines[-1] == f"manifest: {target / 'manifest.json'}"
    check_manifest(target, "saved_model", [f"{p}/1" for p in PARTS])
    # TensorFlow Serving's layout: <model>/<version>/saved_model.pb and variables/.
    for part in PARTS:
        assert (target / part / "1" / "saved_model.pb").is_file()
        assert (target / part / "1" / "variables" / "variables.index").is_file()
    manifest = json.loads((target / "manifest.json").read_text())
    names = [manifest["models"][p]["inputs"][0]["name"] for p in PARTS]
    assert names == ["input", "image", "code"]
    inputs, outputs = expected(keras_models)
    for part in PARTS:
        got = served(target, "saved_model", manifest, part, inputs[part])
        np.testing.assert_allclose(got, outputs[part], atol=1e-5)


def test_litert_export_runs_in_the_litert_interpreter(run, keras_models):
    pytest.importorskip("ai_edge_litert", reason=SKIP_LITERT)
    target, manifest = export_run(run, "litert")
    assert target == run / "export" / "litert"
    check_manifest(target, "litert", [f"{p}.tflite" for p in PARTS])
    inputs, outputs = expected(keras_models)
    for part in PARTS:
        got = served(target, "litert", manifest, part, inputs[part])
        np.testing.assert_allclose(got, outputs[part], atol=1e-5)


def test_onnx_export_runs_in_onnxruntime(run, keras_models):
    pytest.importorskip("tf2onnx", reason=SKIP_ONNX)
    pytest.importorskip("onnxruntime", reason=SKIP_ONNX)
    target, manifest = export_run(run, "onnx")
    check_manifest(target, "onnx", [f"{p}.onnx" for p in PARTS])
    inputs, outputs = expected(keras_models)
    for part in PARTS:
        got = served(target, "onnx", manifest, part, inputs[part])
        np.testing.assert_allclose(got, outputs[part], atol=1e-5)


def test_the_float32_export_stays_close_to_the_model_as_trained(run, keras_models):
    models, trained, images = keras_models
    # Trained in mixed precision on a CPU with bfloat16 units, in float32 elsewhere.
    drift = np.abs(trained.predict(images, verbose=0) - models["autoencoder"].predict(images))
    assert drift.max() < 0.05


def test_the_printed_drift_says_it_is_the_autoencoders_output(tmp_path):
    manifest = {
        "format": "onnx",
        "checked_on": "32 test images",
        "models": {},
        "trained_precision": "mixed_bfloat16",
        "float32_vs_trained_max_difference": 0.0123,
    }
    lines = format_export(manifest, tmp_path).splitlines()
    assert lines[-2] == (
        "trained in mixed_bfloat16: the float32 autoencoder's output differs from the model as "
        "trained by at most 0.0123 (a pixel value)"
    )


# ---------------------------------------------------------------------------------------------
# Refusals: one line, nothing left behind


def test_the_manifest_says_what_the_export_was_checked_on(tmp_path):
    found = tiny(tmp_path)
    images, text = export.check_images(found, (28, 28, 1))
    assert images.shape == (32, 28, 28, 1) and text == "32 test images"
    (tmp_path / "empty").mkdir()
    gone = tiny(tmp_path, "data.dataset=folder", f"data.path={tmp_path / 'empty'}")
    images, text = export.check_images(gone, (28, 28, 1))
    assert images.shape == (32, 28, 28, 1) and 0 <= images.min() < images.max() <= 1
    assert text == "32 random images (the run's test data was not found)"


def test_an_existing_export_is_refused_and_overwrite_replaces_it(run, tmp_path):
    target = run / "export" / "saved_model"
    if not target.exists():
        export_run(run)
    (target / "mine.txt").write_text("keep")
    with pytest.raises(UserError) as e:
        export_run(run)
    assert str(e.value) == f"{target}: already exists; pass --overwrite to replace it"
    assert (target / "mine.txt").read_text() == "keep"
    # An export killed (SIGKILL) mid-way left its staging folder: the next export clears it.
    (run / "export" / ".tmp-onnx-99999" / "autoencoder.onnx").mkdir(parents=True)
    export_run(run, overwrite=True)
    assert not (target / "mine.txt").exists() and (target / "manifest.json").is_file()
    assert [p.name for p in (run / "export").iterdir() if p.name.startswith(".")] == []


def test_an_export_beyond_the_tolerance_is_refused(run, monkeypatch):
    load = export.LOADERS["saved_model"]

    def off_by_a_little(path):
        call, inputs, outputs = load(path)
        return (lambda x: call(x) + 1e-3), inputs, outputs

    monkeypatch.setitem(export.LOADERS, "saved_model", off_by_a_little)
    target = run / "export" / "saved_model"
    before = sorted(p.relative_to(run) for p in target.rglob("*")) if target.exists() else None
    with pytest.raises(UserError) as e:
        export_run(run, overwrite=True)
    assert str(e.value).startswith(
        "--format saved_model: the exported autoencoder differs from the Keras model by 0.001 on "
        "32 test images, above the tolerance 0.0001; nothing was written"
    )
    after = sorted(p.relative_to(run) for p in target.rglob("*")) if target.exists() else None
    assert after == before  # an earlier export is kept as it was
    assert [p.name for p in (run / "export").iterdir() if p.name.startswith(".")] == []


def test_a_layer_the_converter_cannot_express_is_named(run, monkeypatch):
    import keras

    pytest.importorskip("ai_edge_litert", reason=SKIP_LITERT)  # checked before converting

    def refuse(self, filepath, format, **kwargs):
        raise ValueError(
            f"'Conv2DTranspose' op of node autoencoder/decoder/dec1_convT_1 in {format}"
        )

    monkeypatch.setattr(keras.Model, "export", refuse)
    with pytest.raises(UserError) as e:
        export_run(run, "litert", overwrite=True)
    assert str(e.value) == (
        "--format litert: the converter cannot express layer dec1_convT of the autoencoder "
        "(ValueError: 'Conv2DTranspose' op of node autoencoder/decoder/dec1_convT_1 in litert); "
        "export --format saved_model instead"
    )


def test_an_export_its_runtime_cannot_load_is_one_line(run, monkeypatch):
    def cannot_load(path):
        raise RuntimeError("Load model failed: node decoder/dec1_convT_1 has negative pads")

    monkeypatch.setitem(export.LOADERS, "saved_model", cannot_load)
    with pytest.raises(UserError) as e:
        export_run(run, overwrite=True)
    assert str(e.value) == (
        "--format saved_model: the converter cannot express layer dec1_convT of the autoencoder "
        "(RuntimeError: Load model failed: node decoder/dec1_convT_1 has negative pads); "
        "report this with --debug"
    )
    assert [p.name for p in (run / "export").iterdir() if p.name.startswith(".")] == []


def test_a_missing_converter_is_one_line_naming_the_package(run, tmp_path):
    # sys.modules[name] = None makes `import name` fail, as if the package were not installed.
    code = (
        "import sys\nsys.modules['tf2onnx'] = None\nfrom autoencoder.cli import main\n"
        f"sys.exit(main(['export', {str(run)!r}, '--format', 'onnx']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert_error(
        result,
        "--format onnx needs tf2onnx (the converter), which is not installed; pip install "
        "tf2onnx onnxruntime, or pip install '.[export]' in this project's folder",
    )


def test_not_a_run_or_no_model_is_one_line(run, tmp_path):
    result = cli("export", tmp_path, timeout=60)
    assert_error(
        result,
        f"{tmp_path}: not a run directory (no config.yaml); pass a directory made by "
        f"`autoencoder train`, e.g. outputs/<name>/<timestamp>",
    )
    (tmp_path / "config.yaml").write_bytes((run / "config.yaml").read_bytes())
    with pytest.raises(UserError, match="model.keras: model file not found"):
        export_run(tmp_path)
    assert not (tmp_path / "export").exists()


def one_epoch_run(tmp_path_factory, folder: str, *sets):
    from autoencoder.pipeline import train_run

    return train_run(tiny(tmp_path_factory.mktemp(folder), *sets, "train.epochs=1"))[0]


def require_runtime(fmt: str) -> None:
    """Skip where the format's converter or runtime is not installed."""
    if fmt == "litert":
        pytest.importorskip("ai_edge_litert", reason=SKIP_LITERT)
    if fmt == "onnx":
        pytest.importorskip("tf2onnx", reason=SKIP_ONNX)
        pytest.importorskip("onnxruntime", reason=SKIP_ONNX)


@pytest.fixture(scope="module")
def folding_run(tmp_path_factory):
    # Pixels folded into channels and back: Reshape and Permute layers of five dimensions.
    encoder = "model.encoder=[{type: space_to_depth}, {filters: 8, strides: 2}]"
    return one_epoch_run(tmp_path_factory, "folding", encoder)


@pytest.mark.parametrize("fmt", ["saved_model", "litert", "onnx"])
def test_a_model_that_folds_pixels_exports_to_every_format(folding_run, fmt):
    require_runtime(fmt)
    target, manifest = export_run(folding_run, fmt)
    # Run here too, each file in its own runtime, on images export did not check on.
    inputs, outputs = expected(float32_keras_models(folding_run))
    for part in PARTS:
        got = served(target, fmt, manifest, part, inputs[part])
        np.testing.assert_allclose(got, outputs[part], atol=1e-5)
    assert manifest["models"]["decoder"]["outputs"][0]["shape"] == [None, 28, 28, 1]
    assert manifest["models"]["encoder"]["outputs"][0]["shape"] == [None, 8]


@pytest.fixture(scope="module")
def skips_run(tmp_path_factory):
    # A small U-Net: the decoder reads the encoder's feature maps, so there is no decoder alone.
    sets = ("model.skips=concat", "model.latent_dim=null", "data.noise={level: 0.3}")
    return one_epoch_run(tmp_path_factory, "skips", *sets)


@pytest.mark.parametrize("fmt", ["saved_model", "litert", "onnx"])
def test_a_model_with_skips_exports_its_autoencoder_and_encoder(skips_run, fmt):
    require_runtime(fmt)
    target, manifest = export_run(skips_run, fmt)
    assert list(manifest["models"]) == ["autoencoder", "encoder"]
    # The whole model is the encoder's graph: its input still named as every autoencoder's.
    assert manifest["models"]["autoencoder"]["inputs"][0]["name"] == "input"
    assert not any(p.name.startswith("decoder") for p in target.iterdir())
    models, _, images = float32_keras_models(skips_run)
    assert models["decoder"] is None
    got = served(target, fmt, manifest, "autoencoder", images)
    np.testing.assert_allclose(got, models["autoencoder"].predict(images, verbose=0), atol=1e-5)
    code = served(target, fmt, manifest, "encoder", images)
    np.testing.assert_allclose(code, models["encoder"].predict(images, verbose=0), atol=1e-5)
    assert (
        "no decoder: with skips or a residual head the output is made from more than the code"
        in format_export(manifest, target).splitlines()
    )


@pytest.fixture(scope="module")
def patch_run(tmp_path_factory):
    # Trained on 16x16 crops of 28x28 digits, as photo_denoise trains on crops of photos.
    sets = ("data.patches={size: [16, 16]}", "model.input_shape=[16, 16, 1]")
    return one_epoch_run(tmp_path_factory, "patches", *sets)


def test_a_model_of_patches_is_checked_on_tiles_of_the_test_images(patch_run):
    from autoencoder.data import load_splits, to_tiles
    from autoencoder.runs import load_run_config

    target, manifest = export_run(patch_run, "saved_model")
    assert manifest["checked_on"] == f"{export.CHECK_IMAGES} 16x16 tiles of test images"
    images = load_splits(load_run_config(patch_run)).images("test")[:2]
    tiles = to_tiles(images, (16, 16))  # four tiles an image, overlapping
    models, _, _ = float32_keras_models(patch_run)
    got = served(target, "saved_model", manifest, "autoencoder", tiles)
    np.testing.assert_allclose(got, models["autoencoder"].predict(tiles, verbose=0), atol=1e-5)
    assert manifest["models"]["autoencoder"]["inputs"][0]["shape"] == [None, 16, 16, 1]


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    # A subclassed model (encoder -> mean, log_var -> sampled code -> decoder).
    sets = ("model.kind=vae", "model.latent_dim=4", "train.loss=bce")
    return one_epoch_run(tmp_path_factory, "vae", *sets)


@pytest.mark.parametrize("fmt", ["saved_model", "onnx"])
def test_a_vae_exports_the_decoding_of_its_mean_and_its_mean(vae_run, fmt):
    from autoencoder.model import load_model

    require_runtime(fmt)
    target, manifest = export_run(vae_run, fmt)
    names = {p: manifest["models"][p]["inputs"][0]["name"] for p in PARTS}
    assert names == {"autoencoder": "input", "encoder": "image", "decoder": "code"}
    trained = load_model(vae_run / "model.keras")
    _, _, images = float32_keras_models(vae_run)
    mean, _ = trained.encoder.predict(images, verbose=0)
    code = served(target, fmt, manifest, "encoder", images)
    np.testing.assert_allclose(code, mean, atol=1e-3)  # bfloat16 as trained, float32 exported
    got = served(target, fmt, manifest, "autoencoder", images)
    np.testing.assert_allclose(got, trained.predict(images, verbose=0), atol=1e-2)
    decoded = served(target, fmt, manifest, "decoder", code)
    np.testing.assert_allclose(decoded, got, atol=1e-5)


def test_a_vae_predicts_files(vae_run, tmp_path):
    from autoencoder.data import load_sample
    from autoencoder.data.images import write_png
    from autoencoder.predict import predict_files

    folder = tmp_path / "digits"
    folder.mkdir()
    for i, digit in enumerate(load_sample().x_test[:3]):
        write_png(folder / f"d{i}.png", digit[..., None])
    summary = predict_files(vae_run, [folder], tmp_path / "out")
    assert summary["images"] == 3
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [
        "d0.png",
        "d1.png",
        "d2.png",
    ]


@pytest.fixture(scope="module")
def residual_run(tmp_path_factory):
    # A strided residual block: its mirror has a 1x1 stride-2 transposed shortcut, which
    # tf2onnx writes with a negative pad that onnxruntime refuses to load.
    encoder = "model.encoder=[{filters: 4, strides: 2}, {type: residual, filters: 8, strides: 2}]"
    return one_epoch_run(tmp_path_factory, "residual", encoder)


def test_a_residual_model_exports_to_onnx(residual_run):
    require_runtime("onnx")
    target, manifest = export_run(residual_run, "onnx")
    inputs, outputs = expected(float32_keras_models(residual_run))
    for part in PARTS:
        got = served(target, "onnx", manifest, part, inputs[part])
        np.testing.assert_allclose(got, outputs[part], atol=1e-5)
