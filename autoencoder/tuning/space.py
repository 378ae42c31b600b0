"""A search space: config keys and their distributions, checked before any trial; the objective.

No Optuna here: the space is parsed into plain tuples, each value tried through the config, and
every mistake reported at once, so a bad space costs neither TensorFlow nor a study folder.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from autoencoder.config import TuneConfig
from autoencoder.errors import UserError, named

RANGES = ("log", "uniform", "int")
# Trials with train.minutes are compared at every 1/CHECKPOINTS of their minutes, not by epoch.
CHECKPOINTS = 20
EXAMPLE = "train.optimizer.learning_rate: {log: [1e-4, 1e-2]}"
# YAML 1.1 (PyYAML) reads 1e-4 as a string: it wants a dot in a float. Taken as the number meant.
_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


@dataclass(frozen=True)
class Param:
    """One key of the space: kind "log", "uniform", "int" (low, high) or "choice" (values)."""

    key: str
    kind: str
    values: tuple


def parse_space(tune: TuneConfig, where: str, apply: Callable[[str, Any], None]) -> list[Param]:
    """The space's params, each value tried with `apply(key, value)` (which raises UserError).

    Args:
      tune: the tune section (of the config, or the --space file's).
      where: the prefix of each message: the space file, or "CONFIG: tune.space".
      apply: loads the config with one key set; raises UserError for an unknown key or value.
    Raises:
      UserError: every mistake, one line each: an empty space, a malformed distribution,
        bounds out of order, a log range reaching 0, an empty list, a value the config refuses.
    """
    if not tune.space:
        raise UserError(
            f"{where}: the space is empty; name config keys with a distribution, e.g. {EXAMPLE},"
            f" under the config's tune.space or in a file given with "
            f"{named('--space SPACE.yaml', 'space=')}"
        )
    params, lines = [], []
    for key, spec in tune.space.items():
        try:
            param = parse_param(key, spec)
        except ValueError as exc:
            lines.append(f"{where}: {key}: {exc}")
            continue
        params.append(param)
        for value in param.values:  # both bounds, or every choice
            problem = _refused(apply, key, value)
            if problem:
                if param.kind != "int" and "must be an integer" in problem:
                    low, high = (int(v) for v in param.values)  # log and uniform draw floats
                    problem += f"; a whole-number key is searched by {{int: [{low}, {high}]}}"
                lines.append(f"{where}: {problem}")
                break  # an unknown key once, not per choice
    if lines:
        raise UserError("\n".join(lines))
    return params


def _refused(apply: Callable[[str, Any], None], key: str, value: Any) -> str | None:
    """The config's message for key=value, without its `--set key=value: ` prefix; None if fine."""
    try:
        apply(key, value)
    except UserError as exc:
        line = str(exc).splitlines()[0]
        # Values are scalars, whose YAML has no ": ", so the first one ends the --set prefix.
        return line.split(": ", 1)[1] if line.startswith("--set ") else line
    return None


def parse_param(key: str, spec: Any) -> Param:
    """A Param from `{log: [a, b]}`, `{uniform: [a, b]}`, `{int: [a, b]}` or a list; ValueError."""
    if isinstance(spec, list):
        if not spec:
            raise ValueError("the list of choices is empty; give at least one value")
        values = tuple(_number(v) for v in spec)
        if any(not isinstance(v, (int, float, str, bool, type(None))) for v in values):
            raise ValueError(
                f"{spec}: each choice must be a number, a word, true/false or null (lists and "
                f"mappings are not choices: name their inner keys, e.g. model.encoder.0.filters)"
            )
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"{spec}: lists a choice twice")
        return Param(key, "choice", values)
    if not (isinstance(spec, Mapping) and len(spec) == 1 and next(iter(spec)) in RANGES):
        raise ValueError(
            f"{_flow(spec)} is not a distribution; write {{log: [a, b]}}, {{uniform: [a, b]}}, {{int: [a, b]}} or a list of choices"
        )
    kind, bounds = next(iter(spec.items()))
    return Param(key, kind, _bounds(kind, bounds))


def _bounds(kind: str, bounds: Any) -> tuple:
    """(low, high) of a range, checked: numbers (whole for int), in order, above 0 for log."""
    shown = _flow({kind: [_number(b) for b in bounds] if isinstance(bounds, list) else bounds})
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise ValueError(f"{shown}: expected two bounds [low, high]")
    low, high = (_number(b) for b in bounds)
    numbers = all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in (low, high))
    if not numbers or not all(math.isfinite(b) for b in (low, high)):
        raise ValueError(f"{shown}: the bounds must be numbers")
    if kind == "int" and not all(isinstance(b, int) for b in (low, high)):
        raise ValueError(f"{shown}: int bounds must be whole numbers")
    if low >= high:
        raise ValueError(f"{shown}: the low bound must be below the high one; write [low, high]")
    if kind == "log" and low <= 0:
        raise ValueError(f"{shown}: a log range must be above 0; use uniform to include {low}")
    return (low, high) if kind == "int" else (float(low), float(high))


def _flow(value: Any) -> str:
    """A value as one line of YAML, as the space file writes it: {log: [0, 0.01]}."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30).strip()
    return text.removesuffix("\n...")  # a scalar's document end marker


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, str) and _EXPONENT.fullmatch(value) else value


def parse_timeout(text: str | None) -> float | None:
    """Seconds of "90s", "60m", "2h" (None: no limit); UserError otherwise."""
    if text is None:
        return None
    where = named(f"--timeout {text}", f"timeout={text!r}")
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([smh])", str(text).strip())
    if not found:
        raise UserError(f"{where}: expected a duration such as 90s, 60m or 2h")
    seconds = float(found.group(1)) * {"s": 1, "m": 60, "h": 3600}[found.group(2)]
    if seconds <= 0:
        raise UserError(
            f"{where}: must be longer than 0 (no trial starts after it); leave it out "
            f"to run every trial"
        )
    return seconds


# ---------------------------------------------------------------------------------------------
# The objective


def logs_row(logs: Mapping) -> dict:
    """Keras's epoch logs named as history.csv names them: val_loss -> val/loss, mse -> train/mse."""
    return {
        (f"val/{k[4:]}" if k.startswith("val_") else f"train/{k}"): float(v)
        for k, v in logs.items()
    }


def metric_value(row: Mapping, metric: str, pixels: int) -> float | None:
    """The objective metric of one epoch's row; psnr and sse derived from mse. None if absent."""
    split, name = metric.split("/")
    if name in ("psnr", "sse"):
        mse = row.get(f"{split}/mse")
        if mse is None:
            return None
        if name == "sse":
            return float(mse) * pixels
        return 10 * math.log10(1 / float(mse)) if mse > 0 else math.inf
    value = row.get(metric)
    return None if value is None else float(value)


def objective_value(history: list[dict], objective, pixels: int) -> float | None:
    """The trial's value: its best epoch's metric (by the direction), or its last epoch's."""
    values = [metric_value(row, objective.metric, pixels) for row in history]
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None
    if objective.epoch == "last":
        return values[-1]
    return min(values) if objective.goal() == "minimize" else max(values)
