"""The Python API, `import autoencoder as ae`: configs, training, and runs as objects.

The command line is a thin layer over these functions; a notebook calls them directly:

    run = ae.train("configs/quickstart.yaml", epochs=5)
    recon = run.reconstruct(images)          # (N, H, W, C) floats in [0, 1]
    again = ae.load_run(run.path)            # the same run, read back from its directory
"""

from __future__ import annotations

import difflib
import logging
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autoencoder import listing, runs
from autoencoder.config import Config
from autoencoder.config import load_config as _load_yaml
from autoencoder.config.messages import models_in
from autoencoder.data import resolve_input_shape
from autoencoder.errors import UserError, named, python_api
from autoencoder.shapes import Plan, plan_model

log = logging.getLogger("autoencoder")

# Sections of the config, searched for a keyword's field: ae.train(..., epochs=5) is train.epochs.
SECTIONS = ("data", "model", "train", "denoise", "anomaly")


# ---------------------------------------------------------------------------------------------
# Configs


@python_api
def load_config(
    source: str | Path | Mapping | Config | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    **fields: Any,
) -> Config:
    """A validated config: defaults, then the file or mapping, then overrides, then keywords.

    Args:
      source: a YAML file, a mapping shaped like one, a Config, or None for the defaults.
      overrides: dotted keys and values, {"train.epochs": 5}, or `--set` strings
        ["train.epochs=5"].
      **fields: a config field by its own name when only one section has it (epochs=5,
        dataset="mnist_sample", latent_dim=16), or a top-level key (name, output, seed).
    Raises:
      UserError: unknown keys, wrong types or values, one line each, as the CLI reports them.
    """
    sets = [*_as_sets(overrides), *_as_sets({_field_key(k): v for k, v in fields.items()})]
    if isinstance(source, Config) and not sets:
        return source
    if isinstance(source, Config):
        # What was set, not the defaults: a left-out model.input_shape stays "the data's".
        source = source.model_dump(mode="json", exclude_unset=True)
    elif isinstance(source, Mapping):
        source = _plain(dict(source))
    elif isinstance(source, Run):
        raise UserError(
            "config: a Run; pass its config (run.config) to train that config again, or "
            "ae.resume(run) to go on with it"
        )
    elif source is not None and not isinstance(source, (str, Path)):
        raise UserError(
            f"config: a {type(source).__name__}; pass a YAML file, a mapping shaped like one or a "
            f"Config (images in memory train from a folder: save them as image files and set "
            f"data.dataset: folder)"
        )
    return _load_yaml(source, sets)


def _as_sets(overrides: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """Overrides as `--set` strings."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        pairs = [pair for key, value in overrides.items() for pair in _merged(str(key), value)]
        return [f"{key}={_yaml_text(value)}" for key, value in pairs]
    if isinstance(overrides, str):
        raise UserError(
            f"overrides: {overrides!r} is one string; pass a list of 'key=value' strings or a "
            f"mapping such as {{'train.epochs': 5}}"
        )
    return list(overrides)


def _merged(key: str, value: Any) -> list[tuple[str, Any]]:
    """(dotted key, value) pairs: a mapping given for a section is merged into it key by key."""
    # {"train": {"epochs": 5}} or schedule={"min_lr": 0} edits the source's section, as the
    # YAML file edits the defaults; set whole it would put back every other key's default.
    if isinstance(value, Mapping) and value and _is_section(key):
        return [pair for k, v in value.items() for pair in _merged(f"{key}.{k}", v)]
    return [(key, value)]


def _is_section(key: str) -> bool:
    """True where a dotted key names a section of the config (not a field, list or free dict)."""
    models: list[type] = [Config]
    for part in key.split("."):
        fields = [m.model_fields[part] for m in models if part in m.model_fields]
        models = [m for field in fields for m in models_in(field.annotation)]
    return bool(models)


def _yaml_text(value: Any) -> str:
    """A value as one line of YAML that reads back as the same value."""
    import yaml

    # Not JSON: PyYAML reads JSON's 1e-05 as a string (YAML 1.1 floats need a dot).
    text = yaml.safe_dump(_plain(value), default_flow_style=True, width=1 << 30)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _plain(value: Any) -> Any:
    """Tuples, NumPy arrays and scalars as JSON has them."""
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def _field_key(name: str) -> str:
    """A keyword's dotted key: a top-level field, or the one section that has a field so named."""
    if "." in name or name in Config.model_fields:
        return name
    defaults = Config()
    fields = {s: type(getattr(defaults, s)).model_fields for s in SECTIONS}
    owners = [s for s in SECTIONS if name in fields[s]]
    if len(owners) == 1:
        return f"{owners[0]}.{name}"
    if owners:
        choices = " or ".join(f"{s}.{name}" for s in owners)
        raise UserError(
            f"{name}=: several sections have it ({choices}); pass overrides={{'{owners[0]}."
            f"{name}': ...}} instead"
        )
    known = {f for names in fields.values() for f in names} | set(Config.model_fields)
    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f"did you mean {close[0]}=? " if close else ""
    raise UserError(
        f"{name}=: no config section has a field of that name; {hint}pass dotted keys in"
        f" overrides, e.g. overrides={{'train.epochs': 5}} (every key: docs/config.md)"
    )


@python_api
def plan(config: str | Path | Mapping | Config, **fields: Any) -> Plan:
    """The model's shape plan, without TensorFlow: plan.layers[i].output_shape, .params, ...

    A left-out model.input_shape is the data's, as in training.
    """
    config = load_config(config, **fields) if fields or not isinstance(config, Config) else config
    if "input_shape" not in config.model.model_fields_set:
        config = resolve_input_shape(config)
    return plan_model(config.model)


# ---------------------------------------------------------------------------------------------
# Training


@python_api
def train(
    config: str | Path | Mapping | Config,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    *,
    resume: str | Path | Run | None = None,
    **fields: Any,
) -> Run | None:
    """Train a config into a new run directory; evaluate and plot it, as `autoencoder train`.

    Args:
      config: a YAML file, a mapping, or a Config (load_config).
      overrides, **fields: as load_config's.
      resume: continue this earlier run of the same config instead of starting a new one.
    Returns:
      The Run, its trained models kept in memory (None on a worker of a cluster that is not its
      chief: the chief writes the run).
    Raises:
      UserError: a mistake in the config, shapes, data or memory, before anything is written.
    """
    from autoencoder import pipeline

    config = load_config(config, overrides, **fields)
    resume = resume.path if isinstance(resume, Run) else resume
    with _caller_state():
        trained = pipeline.train(config, resume=resume, command=_command("train"))
    return _from_trained(trained)


@python_api
def resume(
    run_dir: str | Path | Run,
    epochs: int | None = None,
    minutes: float | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
) -> Run | None:
    """Continue a run from its last completed epoch; `epochs` or `minutes` trains it further.

    `overrides` may change only train.epochs, train.minutes, train.worker_timeout and data.path; anything else is refused,
    as the CLI does. A Run given is brought up to date (its config and models) and returned.
    """
    from autoencoder import pipeline

    path = run_dir.path if isinstance(run_dir, Run) else run_dir
    sets = _as_sets(overrides)
    sets += [] if epochs is None else [f"train.epochs={_yaml_text(epochs)}"]
    sets += [] if minutes is None else [f"train.minutes={_yaml_text(minutes)}"]
    before = _record(path)
    with _caller_state():
        trained = pipeline.resume(path, sets, command=_command("resume"))
        if trained.run_dir is not None:
            _after_resume(Path(trained.run_dir), before, trained.models)
    resumed = _from_trained(trained)
    if isinstance(run_dir, Run) and resumed is not None:
        # Not left describing the run as it was: its config and models are the resumed ones.
        run_dir._config, run_dir._models = None, resumed._models
        run_dir._seen = run_dir._written()
        return run_dir
    return resumed


def _record(path: str | Path) -> tuple[dict, int]:
    """(metrics.json, epochs trained) of a run about to be resumed; ({}, 0) if unreadable."""
    try:
        return runs.read_metrics(path), len(runs.read_history(path))
    except (OSError, ValueError, UserError):
        return {}, 0  # resume itself says what is wrong with the folder


def _after_resume(run_dir: Path, before: tuple[dict, int], models) -> None:
    """What a resume changes besides the model: anomaly scores redone, stale results named."""
    metrics, epochs = before
    from autoencoder.anomaly import format_report, rescore_run, stopped_before_scoring

    scored = any(key.startswith("anomaly/") for key in metrics)
    stopped = not scored and stopped_before_scoring(runs.load_run_config(run_dir))
    if stopped:
        log.info(
            "%s: made by `autoencoder anomaly` and stopped before its scoring; scoring it now "
            "against every class of its data",
            run_dir,
        )
    if scored or stopped:
        # The threshold and scores belong to the model that made them: chosen again, as
        # `autoencoder anomaly` did, so predict keeps flagging with this model's threshold.
        log.info("%s", format_report(rescore_run(run_dir, metrics, models)))
    if len(runs.read_history(run_dir)) == epochs:
        return  # nothing trained: the model is the one the results were made with
    if (run_dir / "export").is_dir():
        log.warning(
            "%s holds models exported before this training; export again with %s",
            run_dir / "export",
            named("--overwrite", "overwrite=True"),
        )
    if any(key.startswith("embed/") for key in metrics):
        log.warning(
            "embed's figures and codes.npy are of the model before this training; run "
            "autoencoder embed %s again",
            run_dir,
        )


@python_api
def denoise_sweep(
    config: str | Path | Mapping | Config,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    *,
    resume: str | Path | None = None,
    **fields: Any,
) -> tuple[Path, list[dict]]:
    """A denoising sweep, as `autoencoder denoise`: (its folder, the rows of results.csv)."""
    from autoencoder.denoise import run_sweep

    with _caller_state():
        return run_sweep(load_config(config, overrides, **fields), resume=resume)


@python_api
def detect_anomalies(
    config: str | Path | Mapping | Config,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    **fields: Any,
) -> tuple[Run, dict]:
    """Anomaly detection, as `autoencoder anomaly`: (the trained Run, its report)."""
    from autoencoder.anomaly import anomaly_run

    with _caller_state():
        run_dir, report = anomaly_run(load_config(config, overrides, **fields))
    return Run(run_dir), report


@python_api
def one_class_benchmark(
    config: str | Path | Mapping | Config, dataset: str, **fields: Any
) -> tuple[Path, list[dict]]:
    """The one-class benchmark, as `autoencoder anomaly --benchmark`: (its folder, one row a class)."""
    from autoencoder.anomaly_benchmark import run_benchmark

    config = load_config(config, **fields)
    load_config(config, {"data.dataset": dataset})  # an unknown dataset refused as a key is
    with _caller_state():
        return run_benchmark(config, dataset)


@python_api
def load_run(run_dir: str | Path) -> Run:
    """A run directory made by train; nothing is loaded until it is used."""
    path = runs.check_is_run(_path("run_dir", run_dir))
    runs.check_not_sweep(path)
    return Run(path)


def _path(name: str, value: Any) -> str | Path:
    """value if it can name a file or folder; else one line saying what was given."""
    if isinstance(value, Run):
        return value.path
    if not isinstance(value, (str, Path)):
        raise UserError(f"{name}: expected a path (str or Path), got {type(value).__name__}")
    return value


@python_api
def list_runs(root: str | Path = "outputs", sort: str = "started", reverse: bool = False):
    """One dict per run under root (`autoencoder runs`): status, epochs, best val/loss, metrics.

    A dict's keys: name, started, status, epochs, epochs_configured, val_loss (the best), psnr,
    ssim, sse (test, per image), path, problem (why a "damaged" run cannot be read); None where
    a run has no value. `sort` is one of them, psnr and ssim largest first, the others smallest
    first; `reverse` turns it round; missing values come last either way.
    """
    if sort not in listing.COLUMNS:
        raise UserError(f"sort={sort!r}: not a column; choose one of {', '.join(listing.COLUMNS)}")
    return listing.sort_rows(listing.list_runs(_path("root", root)), sort, reverse)


@python_api
def compare(run_dirs: Sequence[str | Path | Run], out: str | Path | None = None):
    """Finished runs side by side, as `autoencoder compare`: (the folder, a compare.Comparison).

    The folder (`out`, or outputs/compare/<timestamp>/) gets curves.png, reconstructions.png and
    compare.md; Comparison.keys are the config keys in which the runs differ.
    """
    from autoencoder.comparison import compare_runs

    if isinstance(run_dirs, (str, Path, Run)):
        raise UserError("run_dirs: one run given; pass a list of two or more runs to compare")
    paths = [_path("run_dirs", run) for run in run_dirs]
    with _caller_state():
        return compare_runs(paths, out)


def _batch(batch_size: int) -> int:
    whole = isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, bool)
    if not whole or batch_size < 1:
        raise UserError(f"batch_size={batch_size!r}: pass a positive whole number")
    return int(batch_size)


def _numbers(name: str, value: Any, what: str) -> np.ndarray:
    """value as a real-valued array; one line for strings, objects or complex numbers."""
    try:
        array = np.asarray(value)
    except ValueError:  # NumPy refuses a list of lists of different lengths
        raise UserError(f"{name}: rows of different lengths; pass one array of {what}") from None
    real = np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array)
    if not (real or array.dtype == bool):
        raise UserError(f"{name}: an array of {array.dtype}, not of {what}")
    return array


def _flags(**flags: Any) -> None:
    """True or False for each flag: overwrite="no" is no reason to replace earlier outputs."""
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise UserError(f"{name}={value!r}: pass True or False")


def _is_level(value: Any) -> bool:
    """A finite number, 0 or more (True and False are not levels)."""
    number = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    return number and 0 <= value < math.inf


def _level(name: str, value: Any) -> float | None:
    """A threshold or noise level, or None."""
    if value is not None and not _is_level(value):
        raise UserError(f"{name}={value!r}: pass a number, 0 or more, or None")
    return None if value is None else float(value)


def _split(split: str) -> str:
    if split not in ("train", "val", "test"):
        raise UserError(f"split={split!r}: choose 'train', 'val' or 'test'")
    return split


def _from_trained(trained) -> Run | None:
    if trained.run_dir is None:  # a worker of a cluster that is not its chief: no run here
        return None
    run = Run(trained.run_dir)
    run._models = dict(zip(("model", "encoder", "decoder"), trained.models))
    return run


def _command(verb: str) -> str:
    """What a run's lock says its writer is: the CLI's command, or this API's function."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return f"autoencoder {verb}" if program in ("autoencoder", "__main__.py") else f"ae.{verb}"


class _caller_state:
    """What a call leaves of the caller's session as it was: logging, and the random states.

    INFO messages and progress bars go to stderr for callers who set up no logging (a
    notebook). Training seeds Python's and NumPy's global generators (keras.utils.
    set_random_seed) for its own shuffling and noise; the caller's draws continue afterwards as
    if no training had happened.
    """

    def __enter__(self):
        import random

        package, root = logging.getLogger("autoencoder"), logging.getLogger()
        self.handler = None
        if not package.handlers and not root.handlers:
            self.handler = logging.StreamHandler(sys.stderr)
            self.handler.setFormatter(logging.Formatter("%(message)s"))
            self.level = package.level
            package.addHandler(self.handler)
            package.setLevel(logging.INFO)
        self.random = random.getstate(), np.random.get_state()
        return self

    def __exit__(self, *exc):
        import random

        if self.handler is not None:
            package = logging.getLogger("autoencoder")
            package.removeHandler(self.handler)
            package.setLevel(self.level)
        random.setstate(self.random[0])
        np.random.set_state(self.random[1])


# ---------------------------------------------------------------------------------------------
# A run


class Run:
    """One run directory: its record (config, history, metrics, state) and its models.

    The record is read from disk at each access, so it is current while another process trains
    the run; the models load on first use (safe mode) unless training left them in memory.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._config: Config | None = None
        self._models: dict[str, Any] = {}
        self._seen = self._written()

    def _written(self) -> tuple:
        """When config.yaml and model.keras were last written: a resume elsewhere changes them."""
        times = []
        for name in ("config.yaml", "model.keras"):
            try:
                times.append((self.path / name).stat().st_mtime_ns)
            except OSError:
                times.append(None)
        return tuple(times)

    def _current(self) -> Path:
        """The run's folder, its cached config and models dropped if the run changed on disk."""
        runs.check_is_run(self.path)
        written = self._written()
        if written != self._seen:
            self._config, self._models, self._seen = None, {}, written
        return self.path

    def __repr__(self) -> str:
        return f"Run('{self.path}', {self.status})"

    def __fspath__(self) -> str:
        return str(self.path)

    # The record

    @property
    def config(self) -> Config:
        """The resolved config it was trained with (config.yaml)."""
        self._current()
        if self._config is None:
            self._config = runs.load_run_config(self.path)
        return self._config

    @property
    def history(self) -> list[dict]:
        """One dict per completed epoch: epoch, train/loss, val/loss, lr, seconds, ..."""
        return runs.checked_history(self._current())

    @property
    def metrics(self) -> dict:
        """metrics.json: test metrics, and what evaluate, embed and anomaly added."""
        return runs.read_metrics(self._current())

    @property
    def state(self) -> dict | None:
        """The last completed epoch and its checkpoint (None before the first one)."""
        return runs.read_state(self._current())

    @property
    def status(self) -> str:
        """ "finished", "unfinished", "failed" or "in use" (another process writes it)."""
        return runs.status(self._current())

    # The models

    @property
    def model(self):
        """The trained autoencoder (a Keras model)."""
        return self._model("model")

    @property
    def encoder(self):
        """Image -> code (a VAE's gives [mean, log_var])."""
        return self._model("encoder")

    @property
    def decoder(self):
        """Code -> image; None for a model with skips or a residual head (the image bypasses the
        code)."""
        return self._model("decoder")

    def _model(self, name: str):
        config = self.config  # drops models another process has trained since
        if name not in self._models:
            from autoencoder.model import load_model

            path = self.path / f"{name}.keras"
            one_graph = config.model.skips != "none" or config.model.output.residual
            if name == "decoder" and not path.is_file() and one_graph:
                self._models[name] = None
            else:
                if name == "model":
                    runs.check_run_shapes(self.path, config, data=False)
                with _caller_state():  # Keras draws from Python's random for initializers
                    self._models[name] = load_model(path)
        return self._models[name]

    # Using them

    @python_api
    def reconstruct(self, x, noise: bool | float = False, batch_size: int = 256) -> np.ndarray:
        """The model's output for images, as float32 (N, H, W, C) in [0, 1].

        Args:
          x: images as (N, H, W, C), (N, H, W) or (H, W[, C]); uint8 (0-255) or floats in [0, 1];
            RGB for a grey model becomes its luma, grey for a colour model is repeated.
          noise: True adds the run's own noise first (a denoiser's training noise, seeded; a
            blind run's gives each image its own level from the range), a number adds the run's
            noise kind (else denoise.kind, as predict --noise) at that level; False feeds x as
            it is (already noisy, say).
          batch_size: images per predict call.
        """
        from autoencoder.noise import model_inputs

        images = self._images(x)
        inputs = images
        if noise is not False:
            inputs = model_inputs(images, self._noisy_config(noise))
        patches = self.config.data.patches
        return np.asarray(
            runs.predict_images(self.model, inputs, patches, _batch(batch_size)), np.float32
        ).clip(0, 1)

    @python_api
    def encode(self, x, batch_size: int = 256) -> np.ndarray:
        """The codes of images (a VAE's: the mean), one row per image."""
        images = self._images(x)
        want = tuple(self.encoder.input_shape[1:3])
        if images.shape[1:3] != want:  # a patch model's encoder: one code a patch
            raise UserError(
                f"x: images are {images.shape[1]}x{images.shape[2]}, but the encoder takes the "
                f"{want[0]}x{want[1]} patches the run trained on (data.patches); pass patches "
                f"of that size"
            )
        out = runs.predict(self.encoder, images, _batch(batch_size))
        return np.asarray(out[0] if self.config.model.kind == "vae" else out, np.float32)

    @python_api
    def decode(self, z, batch_size: int = 256) -> np.ndarray:
        """Images decoded from codes, float32 (N, H, W, C) in [0, 1]."""
        if self.decoder is None and self.config.model.output.residual:
            raise UserError(
                f"{self.path}: the model has a residual head (model.output.residual: true): it "
                f"returns its input minus what it predicts, so no decoder makes images from the "
                f"code alone; use reconstruct(x)"
            )
        if self.decoder is None:
            raise UserError(
                f"{self.path}: the model has skips (model.skips: {self.config.model.skips}), so "
                f"its decoder reads the encoder's activations, not the code alone; use "
                f"reconstruct(x)"
            )
        z = _numbers("z", z, "codes")
        if not np.isfinite(z).all():
            raise UserError("z: holds NaN or infinite values")
        want = tuple(self.decoder.input_shape[1:])
        z = z[None] if z.shape == want else z
        if z.shape[1:] != want:
            shown = ", ".join(map(str, want))
            raise UserError(
                f"z: codes of shape {z.shape}, but the decoder takes (N, {shown}) codes, as "
                f"encode gives them"
            )
        if not len(z):  # Keras's predict fails on an empty batch with a traceback
            raise UserError(f"z: no codes (shape {z.shape}); pass one code or more")
        return np.asarray(runs.predict(self.decoder, z, _batch(batch_size)), np.float32)

    @python_api
    def anomaly_scores(self, x, threshold: float | None = None, batch_size: int = 256) -> dict:
        """Each image's anomaly score, as `predict` and anomaly_scores.csv give it.

        Args:
          x: images, as reconstruct takes them.
          threshold: flag images scoring above it, instead of the run's own (that `autoencoder
            anomaly` chose, else anomaly.threshold.value); None with neither: no flags.
        Returns:
          {"score": (N,) float64, "kind": the run's anomaly score (mse, mae, ssim or knn),
          "threshold": the one applied or None, "flagged": (N,) bool or None}.
        """
        from autoencoder.evaluate import per_image_score
        from autoencoder.predict.files import config_score, run_threshold

        threshold = _level("threshold", threshold)
        images = self._images(x)
        held = run_threshold(self.path, self.config, given=threshold is not None)
        kind = held[1] if held else config_score(self.path, self.config)
        if kind == "knn":
            from autoencoder.neighbors import CodeNeighbors, flat_codes

            reference = CodeNeighbors.load(self.path)  # its missing file is one line
            score = reference.distances(flat_codes(self.encode(images, batch_size)))
        else:
            score = per_image_score(kind, images, self.reconstruct(images, batch_size=batch_size))
        limit = threshold if threshold is not None else held[0] if held else None
        flagged = None if limit is None else np.asarray(score) > limit
        return {
            "score": np.asarray(score, np.float64),
            "kind": kind,
            "threshold": limit,
            "flagged": flagged,
        }

    @python_api
    def evaluate(self, split: str = "test") -> dict:
        """A split's metrics (MSE, PSNR, SSIM, ...), merged into metrics.json."""
        from autoencoder.evaluate import evaluate_run

        with _caller_state():
            return evaluate_run(self.path, split=_split(split))

    @python_api
    def plot(self) -> list[Path]:
        """Redraw figures/ (reconstructions, loss, worst, error by class, an anomaly run's
        scores); their paths."""
        from autoencoder.anomaly import redraw_figures
        from autoencoder.plots import plot_run

        with _caller_state():
            paths = plot_run(self.path)
            try:
                anomaly = any(key.startswith("anomaly/") for key in self.metrics)
            except UserError as exc:  # the run's own figures are drawn; say what is left
                log.warning("%s; anomaly figures, if the run had any, are not redrawn", exc)
                return paths
            if not anomaly:
                return paths
            with runs.writing(self.path, "autoencoder plot"):
                return paths + redraw_figures(self.path, self.model, self.encoder)

    @python_api
    def predict(
        self,
        inputs,
        out: str | Path,
        *,
        overwrite: bool = False,
        noise: float | None = None,
        threshold: float | None = None,
        skip_bad: bool = False,
    ) -> dict:
        """Reconstruct image files, folders or .npy/.npz files into `out`, as `predict` does.

        noise: add the run's noise kind at this level first; threshold: an anomaly score above
        which an image is flagged (else the run's own); skip_bad: leave out unreadable images.
        """
        from autoencoder.predict import predict_files

        if isinstance(inputs, np.ndarray):
            raise UserError(
                "inputs: an array; predict reads files, folders and .npy/.npz files: for arrays "
                "use run.reconstruct(x), or save them with np.save first"
            )
        noise, threshold = _level("noise", noise), _level("threshold", threshold)
        _flags(overwrite=overwrite, skip_bad=skip_bad)
        paths = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
        if not paths:  # not an empty scores.csv and an MSE of 0 for nothing
            raise UserError("inputs: none given; pass image files, folders or .npy/.npz files")
        paths = [_path("inputs", path) for path in paths]
        with _caller_state():
            return predict_files(
                self.path,
                paths,
                _path("out", out),
                overwrite=overwrite,
                noise=noise,
                threshold=threshold,
                skip_bad=skip_bad,
            )

    @python_api
    def export(self, format: str = "saved_model", overwrite: bool = False) -> tuple[Path, dict]:
        """The autoencoder, encoder and decoder as SavedModel, LiteRT or ONNX; (folder, manifest)."""
        from autoencoder.export import export_run

        _flags(overwrite=overwrite)
        with _caller_state():
            return export_run(self.path, format, overwrite=overwrite)

    @python_api
    def embed(self, probe_limit: int | None = None) -> dict:
        """Linear probes on the codes, codes.npy, the latent map and interpolations."""
        from autoencoder.embed import PROBE_LIMIT, embed_run

        whole = isinstance(probe_limit, (int, np.integer)) and not isinstance(probe_limit, bool)
        if probe_limit is not None and (not whole or probe_limit < 100):
            raise UserError(
                f"probe_limit={probe_limit!r}: pass a number of images, 100 or more, or None for "
                f"{PROBE_LIMIT:,}"
            )
        with _caller_state():
            return embed_run(self.path, probe_limit=probe_limit or PROBE_LIMIT)

    @python_api
    def resume(self, epochs: int | None = None, minutes: float | None = None) -> Run:
        """Continue this run (resume); this Run then holds the resumed config and models."""
        return resume(self, epochs, minutes)

    @python_api
    def images(
        self, split: str = "test", count: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of the run's own data: float32 (N, H, W, C) in [0, 1], int labels.

        A split's first `count` images (all when None), as evaluate sees them (clean).
        """
        from autoencoder.data import load_splits, scaled

        _split(split)
        if count is not None and (not isinstance(count, (int, np.integer)) or count < 1):
            raise UserError(f"count={count!r}: pass a positive number of images, or None for all")
        splits = load_splits(self.config)
        pixels = splits.pixels(split)[: count if count is not None else None]
        labels = splits.labels(split)[: len(pixels)]
        return scaled(np.asarray(pixels)), np.asarray(labels)

    # Helpers

    def _images(self, x) -> np.ndarray:
        """x as float32 (N, H, W, C) in [0, 1], checked against the model's input."""
        try:
            array = np.asarray(x)
        except ValueError:  # NumPy refuses a list of arrays of different shapes
            raise UserError(
                "x: images of different sizes; pass one size at a time, or files with "
                "run.predict(paths, out), which takes each at its own size"
            ) from None
        height, width, channels = tuple(self.config.model.input_shape)
        patches = self.config.data.patches
        array = _numbers("x", array, "pixel values")
        if array.ndim == 2:
            array = array[None, ..., None]
        elif array.ndim == 3:
            # One (H, W, C) image, or a batch of grey (N, H, W) ones: a last axis of 1, 3 or 4
            # is channels unless the model's images are that narrow.
            one = array.shape[-1] in (1, 3, 4) and (
                patches is not None or array.shape[:2] == (height, width) or width > 4
            )
            array = array[None] if one else array[..., None]
        if array.ndim != 4:
            raise UserError(
                f"x: shape {array.shape} is not images; pass (N, H, W, C), (N, H, W), (H, W, C) "
                f"or (H, W) arrays, or files with run.predict(paths, out)"
            )
        if not len(array):
            raise UserError(f"x: no images (shape {array.shape})")
        given = array.shape[-1]
        if given != channels and not {given, channels} == {1, 3}:
            hint = "; drop the alpha channel: x[..., :3]" if given == 4 else ""
            raise UserError(
                f"x: images of {given} channels, but the run's model takes {channels}{hint}"
            )
        if patches is None and array.shape[1:3] != (height, width):
            raise UserError(
                f"x: images are {array.shape[1]}x{array.shape[2]} but the run's model takes "
                f"{height}x{width}; resize them, or use run.predict(paths, out), which tiles "
                f"larger images and pads smaller ones"
            )
        if patches is not None and (array.shape[1] < height or array.shape[2] < width):
            raise UserError(
                f"x: images are {array.shape[1]}x{array.shape[2]}, smaller than the model's "
                f"{height}x{width} patches; use run.predict(paths, out), which pads them"
            )
        if array.dtype == np.uint8:
            array = array.astype(np.float32) / 255
        array = array.astype(np.float32)
        if not np.isfinite(array).all():
            raise UserError("x: holds NaN or infinite values")
        if array.min() < 0 or array.max() > 1:
            raise UserError(
                f"x: values run from {array.min():g} to {array.max():g}; pass uint8 images "
                f"(0-255) or floats in [0, 1]"
            )
        if given != channels:
            from autoencoder.predict.files import to_channels

            # As predict converts files: luma for a grey model, grey repeated for a colour one.
            log.info("x: %d-channel images converted to the model's %d", given, channels)
            array = to_channels(array, channels)
        return array

    def _noisy_config(self, noise: bool | float) -> Config:
        """The run's config with the noise to add: its own, or its kind at another level."""
        if noise is True:
            if self.config.data.noise is None:
                raise UserError(
                    f"{self.path}: the run was trained without data.noise, so it has no noise of "
                    f"its own; pass a level (noise=0.3 adds denoise.kind's noise) or noise=False"
                )
            return self.config
        if not _is_level(noise):
            raise UserError(
                f"noise={noise!r}: pass True (the run's own noise), a level such as 0.3 (0 or "
                f"more), or False"
            )
        from autoencoder.predict.files import noise_settings

        # The run's noise kind, else its denoise section's: what `predict --noise` adds.
        kind, clip = noise_settings(self.config)
        noise = {"kind": kind, "level": float(noise), "clip": clip}
        return load_config(self.config, [f"data.noise={_yaml_text(noise)}"])
