"""`autoencoder export RUN_DIR --format saved_model | litert | onnx`: models to take elsewhere.

Keras's own `model.export()` writes the autoencoder, the encoder and the decoder under
RUN_DIR/export/<format>/, each with one serving signature. Every file is loaded again with its
own runtime (tf.saved_model.load, the LiteRT interpreter, onnxruntime) and run on test images;
an export whose outputs differ from the Keras model's by more than TOLERANCE is refused, and
nothing is left in place. manifest.json records the input and output names and shapes.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np

from autoencoder import atomic, runs, runtime
from autoencoder.config import Config
from autoencoder.data import load_splits, to_tiles
from autoencoder.errors import UserError, named
from autoencoder.model import build_models, is_vae, load_model
from autoencoder.noise import model_inputs
from autoencoder.runs import open_run

log = logging.getLogger(__name__)

FORMATS = ("saved_model", "litert", "onnx")
PARTS = ("autoencoder", "encoder", "decoder")
# Largest difference allowed between an export's outputs and the Keras model's, relative to
# the largest Keras output (at least 1): float32 through another runtime differs only by the
# order of its sums, orders of magnitude below this.
TOLERANCE = 1e-4
CHECK_IMAGES = 32
# (import name, pip name, role) of what each format needs beyond TensorFlow.
NEEDS = {
    "saved_model": (),
    "litert": (("ai_edge_litert", "ai-edge-litert", "the LiteRT runtime that checks the export"),),
    "onnx": (
        ("tf2onnx", "tf2onnx", "the converter"),
        ("onnxruntime", "onnxruntime", "the runtime that checks the export"),
    ),
}
# Keras's format names, and how each file is named inside export/<format>/.
KERAS_FORMAT = {"saved_model": "tf_saved_model", "litert": "litert", "onnx": "onnx"}
FILE = {"saved_model": "{}/1", "litert": "{}.tflite", "onnx": "{}.onnx"}


def installed(module: str) -> bool:
    """Whether `module` can be imported (a None entry in sys.modules counts as absent)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def _format(fmt: str) -> str:
    """The format as the reader gave it: --format F on the command line, format='F' in Python."""
    return named(f"--format {fmt}", f"format={fmt!r}")


def _with_debug() -> str:
    return named(" with --debug", "")


def require(fmt: str) -> None:
    """One line naming the package a format needs, when it is not installed."""
    for module, package, role in NEEDS[fmt]:
        if not installed(module):
            everything = " ".join(p for _, p, _ in NEEDS[fmt])
            raise UserError(
                f"{_format(fmt)} needs {package} ({role}), which is not installed; "
                f"pip install {everything}, or pip install '.[export]' in this project's folder"
            )


def export_run(
    run_dir: str | Path, fmt: str = "saved_model", overwrite: bool = False
) -> tuple[Path, dict]:
    """Export a run's autoencoder, encoder and decoder (where it has one); check each against
    Keras; write manifest.json.

    Args:
      run_dir: a directory written by `autoencoder train`.
      fmt: "saved_model", "litert" or "onnx".
      overwrite: replace an earlier export of this format (else it is refused).
    Returns:
      (RUN_DIR/export/<fmt>, its manifest.json as a dict); format_export prints them.
    Raises:
      UserError: not a run, no model, a missing package, a converter that cannot express the
        model, an earlier export without overwrite, outputs beyond TOLERANCE, or another
        process writing the run.
    """
    if fmt not in FORMATS:
        raise UserError(f"{_format(fmt)}: unknown; choose one of {', '.join(FORMATS)}")
    with runs.writing(run_dir, "autoencoder export"):
        return _export(Path(run_dir), fmt, overwrite)


def _export(run_dir: Path, fmt: str, overwrite: bool) -> tuple[Path, dict]:
    config = open_run(run_dir, data=False)
    require(fmt)
    target = run_dir / "export" / fmt
    if target.exists() and not overwrite:
        again = named("--overwrite", "overwrite=True")
        raise UserError(f"{target}: already exists; pass {again} to replace it")
    runtime.gpus()  # CUDA's start-up line goes to a muted stderr here
    trained = load_model(run_dir / "model.keras")
    models = float32_models(config, trained, run_dir)
    images, checked_on = check_images(config, trained.input_shape[1:])
    # A model with skips or a residual head has no decoder of the code alone: two parts.
    parts = [part for part in PARTS if models[part] is not None]
    inputs = {"autoencoder": images, "encoder": images}
    if models["decoder"] is not None:
        inputs["decoder"] = runs.predict(models["encoder"], images)
    # Not mkdtemp: its private permissions would stay on the folder a server is to read.
    staging = target.parent / f".tmp-{fmt}-{os.getpid()}"
    try:
        # Any staging folder here is a killed export's: this process holds the run's lock.
        for stale in target.parent.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging.mkdir(parents=True)
    except OSError as exc:
        raise UserError(
            f"{target.parent}: cannot write there ({exc.strerror or exc}); check its permissions"
        ) from None
    try:
        entries = {
            part: export_part(models[part], part, fmt, staging, inputs[part]) for part in parts
        }
        manifest = _manifest(run_dir, config, fmt, trained, models, images, entries, checked_on)
        atomic.write_json(staging / "manifest.json", manifest)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, manifest


def float32_models(config: Config, trained, run_dir: Path) -> dict:
    """The run's three models rebuilt in float32 and given the trained weights."""
    # A run trained in mixed precision computes in bfloat16 or float16, which Keras's ONNX
    # export refuses (it needs the float32 policy) and many serving machines run slowly or not
    # at all: exports compute in float32, the trained weights (held in float32) unchanged.
    autoencoder, encoder, decoder = build_models(config.model, "float32")
    try:
        autoencoder.set_weights(trained.get_weights())
    except ValueError:
        raise UserError(
            f"{run_dir / 'model.keras'}: its weights do not fit the model its config.yaml "
            f"describes; export a run made by this version of the tool"
        ) from None
    import keras

    shape = encoder.input_shape[1:]
    if is_vae(autoencoder):
        # A subclassed model Keras cannot trace for export. It serves the decoding of the code's
        # mean (as predict does), and its encoder the mean (the code embed reads): functional
        # models of its two parts compute them alike.
        image = keras.Input(shape, name="input")
        mean, _ = encoder(image)
        autoencoder = keras.Model(image, decoder(mean), name="autoencoder")
        image = keras.Input(shape, name="image")
        encoder = keras.Model(image, encoder(image)[0], name="encoder")
    elif autoencoder.inputs[0].name != "input":
        # With skips the whole model is the encoder's graph, whose input is `image`: the
        # autoencoder's input is `input` in every export, as the manifest documents.
        image = keras.Input(shape, name="input")
        autoencoder = keras.Model(image, autoencoder(image), name="autoencoder")
    return {"autoencoder": autoencoder, "encoder": encoder, "decoder": decoder}


def check_images(config: Config, shape: tuple) -> tuple[np.ndarray, str]:
    """CHECK_IMAGES test images as the model sees them (noisy for a denoiser), else random ones;
    and what they are, for the manifest."""
    try:
        images = load_splits(config, download=False).images("test")[:CHECK_IMAGES]
        inputs = model_inputs(images, config)
        if inputs.shape[1:3] != tuple(shape[:2]):  # a patch model: the tiles predict sees
            tiles = to_tiles(inputs, tuple(shape[:2]))[:CHECK_IMAGES]
            return tiles, f"{len(tiles)} {shape[0]}x{shape[1]} tiles of test images"
        return inputs, f"{len(images)} test images"
    except UserError as exc:
        log.warning("checking on random images: the run's test data is not here (%s)", exc)
        images = np.random.default_rng(0).random((CHECK_IMAGES, *shape), dtype=np.float32)
        return images, f"{CHECK_IMAGES} random images (the run's test data was not found)"


def export_part(model, part: str, fmt: str, staging: Path, x: np.ndarray) -> dict:
    """Export one model, load it back with its runtime, compare with Keras: its manifest entry."""
    path = staging / FILE[fmt].format(part)
    path.parent.mkdir(parents=True, exist_ok=True)
    want = runs.predict(model, x)  # first: Keras's ONNX export needs a model called once
    try:
        with warnings.catch_warnings(), runtime.native_stderr_muted():
            # tf2onnx's use of np.object under NumPy 2: Keras patches it, but NumPy still warns.
            warnings.filterwarnings("ignore", message=".*np.object.*", category=FutureWarning)
            model.export(str(path), format=KERAS_FORMAT[fmt], verbose=False)
        if fmt == "onnx":
            _trailing_pads_to_output_padding(path)
    except Exception as exc:
        raise UserError(_cannot_express(fmt, part, model, exc)) from None
    try:
        with runtime.native_stderr_muted():
            call, inputs, outputs = LOADERS[fmt](path)
            got = call(x)
    except Exception as exc:
        # The converter wrote a file its own runtime cannot load or run.
        raise UserError(_cannot_express(fmt, part, model, exc)) from None
    difference = float(np.max(np.abs(got - want)))
    allowed = TOLERANCE * max(1.0, float(np.max(np.abs(want))))
    if not difference <= allowed:
        raise UserError(
            f"{_format(fmt)}: the exported {part} differs from the Keras model by "
            f"{difference:.3g} on {len(x)} test images, above the tolerance {allowed:.3g}; "
            f"nothing was written: export another format, and report this{_with_debug()}"
        )
    return {
        "path": path.relative_to(staging).as_posix(),
        "inputs": inputs,
        "outputs": outputs,
        "max_difference": difference,
        "tolerance": allowed,
    }


def _trailing_pads_to_output_padding(path: Path) -> None:
    """Rewrite an ONNX ConvTranspose's negative end pads as the output_padding they mean."""
    # tf2onnx writes a 1x1 stride-2 'same' transposed convolution (a residual block's mirrored
    # shortcut) with pads [0, 0, -1, -1], which onnxruntime refuses; a negative end pad adds
    # that many rows and columns at the end, as output_padding does.
    import onnx

    model = onnx.load(str(path))
    changed = False
    for node in model.graph.node:
        attributes = {a.name: a for a in node.attribute}
        if node.op_type != "ConvTranspose" or "pads" not in attributes:
            continue
        pads = list(attributes["pads"].ints)
        half = len(pads) // 2
        begin, end = pads[:half], pads[half:]
        if min(begin) < 0 or min(end) >= 0:
            continue
        extra = list(attributes["output_padding"].ints) if "output_padding" in attributes else []
        extra = extra or [0] * half
        for key, value in (
            ("pads", begin + [max(e, 0) for e in end]),
            ("output_padding", [o - min(e, 0) for o, e in zip(extra, end, strict=True)]),
        ):
            if key in attributes:
                node.attribute.remove(attributes[key])
            node.attribute.append(onnx.helper.make_attribute(key, value))
        changed = True
    if changed:
        onnx.save(model, str(path))


def _cannot_express(fmt: str, part: str, model, exc: Exception) -> str:
    """One line naming the layer a converter choked on, when its message names one."""
    text = str(exc)
    # Longest names first, leaves only: "code" would match inside "code_dense", and a nested
    # model's name ("decoder") inside the path of each of its layers.
    leaves = [
        x
        for x in _layers(model)
        if not hasattr(x, "layers") and x.__class__.__name__ != "InputLayer"
    ]
    names = sorted((x.name for x in leaves), key=len, reverse=True)
    layer = next((n for n in names if n in text), None)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    where = f"layer {layer} of the {part}" if layer else f"the {part}"
    instead = (
        f"report this{_with_debug()}"
        if fmt == "saved_model"
        else f"export {named('--format saved_model', 'format=' + repr('saved_model'))} instead"
    )
    return (
        f"{_format(fmt)}: the converter cannot express {where} "
        f"({exc.__class__.__name__}: {first[:200]}); {instead}"
    )


def _layers(model) -> list:
    """Every layer of a model, nested models' layers included."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if hasattr(layer, "layers"):
            found += _layers(layer)
    return found


# ---------------------------------------------------------------------------------------------
# Loading each format back with its own runtime: (call(x) -> array, inputs, outputs).


def _spec(name: str, shape, dtype) -> dict:
    dims = [int(d) if isinstance(d, (int, np.integer)) and d >= 0 else None for d in shape]
    return {"name": name, "shape": dims, "dtype": str(np.dtype(dtype))}


def load_saved_model(path: Path):
    """A SavedModel's serving_default signature."""
    tf = runtime.tensorflow()
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    (name, spec), *_ = signature.structured_input_signature[1].items()
    inputs = [_spec(name, spec.shape.as_list(), spec.dtype.as_numpy_dtype)]
    outputs = [
        _spec(key, s.shape.as_list(), s.dtype.as_numpy_dtype)
        for key, s in signature.structured_outputs.items()
    ]

    def call(x):
        return next(iter(signature(**{name: tf.constant(x)}).values())).numpy()

    return call, inputs, outputs


def load_litert(path: Path):
    """A .tflite file's serving_default signature, in the LiteRT interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    details = runner.get_input_details()
    (name,) = details
    inputs = [_spec(name, details[name]["shape_signature"], details[name]["dtype"])]
    outputs = [
        _spec(key, d["shape_signature"], d["dtype"])
        for key, d in runner.get_output_details().items()
    ]

    def call(x):
        return next(iter(runner(**{name: x}).values()))

    return call, inputs, outputs


def load_onnx(path: Path):
    """An .onnx file in onnxruntime (CPU)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (first,) = session.get_inputs()

    def spec(arg):
        # ONNX types read "tensor(float)"; a dynamic axis has a symbolic name, not a number.
        dtype = {"tensor(float)": "float32", "tensor(double)": "float64"}.get(arg.type, arg.type)
        dims = [d if isinstance(d, int) else None for d in arg.shape]
        return {"name": arg.name, "shape": dims, "dtype": dtype}

    def call(x):
        return session.run(None, {first.name: x})[0]

    return call, [spec(first)], [spec(o) for o in session.get_outputs()]


LOADERS = {"saved_model": load_saved_model, "litert": load_litert, "onnx": load_onnx}


# ---------------------------------------------------------------------------------------------
# The manifest and its report


def _versions(fmt: str) -> dict:
    packages = ["tensorflow", "keras", *(p for _, p, _ in NEEDS[fmt])]
    if fmt == "onnx":
        packages.append("onnx")
    found = {}
    for package in packages:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def _precision(model) -> str:
    policies = {layer.dtype_policy.name for layer in _layers(model)}
    return next((p for p in sorted(policies) if p != "float32"), "float32")


def _manifest(run_dir, config, fmt, trained, models, images, entries, checked_on: str) -> dict:
    shape = images.shape[1:]
    # How far the float32 export is from the model as trained (in its own precision): the
    # cost of exporting in float32, zero for a run trained in float32.
    exported = runs.predict(models["autoencoder"], images)
    drift = float(np.max(np.abs(runs.predict(trained, images) - exported)))
    return {
        "format": fmt,
        "run": str(run_dir),
        "precision": "float32",
        "trained_precision": _precision(trained),
        "float32_vs_trained_max_difference": drift,
        "input": f"float32 pixels in [0, 1], shape (batch, {', '.join(map(str, shape))})"
        + ("; a denoiser: give it the noisy image" if config.data.noise else ""),
        "checked_on": checked_on,
        "versions": _versions(fmt),
        "models": entries,
    }


def format_export(manifest: dict, target: Path) -> str:
    """What `autoencoder export` prints: each model's signature and its largest difference."""
    lines = [
        f"{manifest['format']} export (float32), each checked on {manifest['checked_on']} "
        f"against the Keras model:"
    ]

    def show(specs):
        return ", ".join(f"'{s['name']}' {_shape(s['shape'])} {s['dtype']}" for s in specs)

    for entry in manifest["models"].values():
        lines.append(
            f"  {entry['path']:<24} input {show(entry['inputs'])} -> output {show(entry['outputs'])}"
        )
        lines.append(
            f"  {'':<24} largest difference {entry['max_difference']:.3g} "
            f"(tolerance {entry['tolerance']:.3g})"
        )
    if "decoder" not in manifest["models"]:
        lines.append(
            "no decoder: with skips or a residual head the output is made from more than the code"
        )
    if manifest["trained_precision"] != "float32":
        lines.append(
            f"trained in {manifest['trained_precision']}: the float32 autoencoder's output "
            f"differs from the model as trained by at most "
            f"{manifest['float32_vs_trained_max_difference']:.3g} (a pixel value)"
        )
    lines.append(f"manifest: {target / 'manifest.json'}")
    return "\n".join(lines)


def _shape(dims: list) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in dims) + ")"
