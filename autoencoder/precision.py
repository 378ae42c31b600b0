"""The precision a run trains in: the static rule, or where it is unsure a timing, cached.

On a CPU with native bfloat16 units mixed_bfloat16 is not always the faster policy, so
`train.mixed_precision: auto` trains the run's own model a few steps in each candidate and keeps
the faster. The rates are cached by CPU model, core count, library versions and what a training
step computes (model section, batch size, loss, optimizer), in precision.json under
$AUTOENCODER_CACHE, else $XDG_CACHE_HOME/autoencoder, else ~/.cache/autoencoder. No TensorFlow
here: the timer comes from the caller (trainer.training_rate), the GPU check from runtime.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autoencoder import atomic, runtime
from autoencoder.config import Config

log = logging.getLogger(__name__)

CANDIDATES = ("float32", "mixed_bfloat16")  # in order of preference on a tie
POLICIES = (*CANDIDATES, "mixed_float16")  # all a run may train in (float16 on a GPU)
CACHE_FILE = "precision.json"
CACHE_ENTRIES = 200  # the newest measurements kept; the file stays a few tens of kB


@dataclass(frozen=True)
class Choice:
    """The dtype policy a run trains in, and how it was chosen."""

    policy: str
    how: str  # "setting" (on / off), "rule" (not timed), "measured", "cached" or "given" (tune)
    reason: str  # the log line
    rates: dict[str, float] = field(default_factory=dict)  # training batches/s, when timed

    def record(self) -> dict:
        """The choice as metrics.json keys."""
        out = {"precision/policy": self.policy, "precision/how": self.how}
        out["precision/reason"] = self.reason
        for policy, rate in self.rates.items():
            out[f"precision/{policy}_batches_per_s"] = round(rate, 3)
        return out


def choose(
    config: Config,
    timer: Callable[[str], float],
    candidates: Sequence[str] = CANDIDATES,
    multi_worker: bool = False,
    cache: Path | None = None,
) -> Choice:
    """The policy for a run's train.mixed_precision; auto times the candidates where it matters.

    Args:
      config: the resolved config.
      timer: policy name -> training batches per second of the config's model in it; called
        only on a CPU with native bfloat16 when the cache has no rates for this config.
      candidates: the policies auto may pick on such a CPU (those whose memory plan fits).
      multi_worker: a cluster of several workers: all must train in one policy, and each would
        time its own machine, so auto takes the static rule there untimed.
      cache: the cache file; default cache_file().
    Returns:
      A Choice; its reason is also logged.
    """
    mode = config.train.mixed_precision
    if mode != "auto":
        policy = runtime.choose_precision(mode)
        return Choice(policy, "setting", f"precision: train.mixed_precision {mode}: {policy}")
    if runtime.gpus():
        policy = runtime.choose_precision(mode)
        return _rule(policy, f"precision auto on a GPU: {policy}")
    if not runtime.native_bfloat16():
        return _rule(
            "float32",
            "precision auto: no native bfloat16 on this CPU (AVX512_BF16 or AMX-BF16 with oneDNN "
            "on), and emulated bfloat16 is slower than float32: float32",
        )
    timed = [p for p in CANDIDATES if p in candidates]
    if not timed:
        # Nothing to time: the static rule, and memory.check_fits says what does not fit.
        return _rule(
            "mixed_bfloat16",
            "precision auto: neither float32 nor mixed_bfloat16 fits in memory, nothing timed: "
            "mixed_bfloat16, native on this CPU",
        )
    if len(timed) == 1:
        return _rule(timed[0], f"precision auto: only {timed[0]} fits in memory: {timed[0]}")
    if multi_worker:
        return _rule(
            "mixed_bfloat16",
            "precision auto in a multi-worker cluster: not timed (every worker must train in "
            "the same precision): mixed_bfloat16, native on this CPU",
        )
    path = cache or cache_file()
    key = fingerprint(config)
    entries = _read(path)
    rates = _rates(entries.get(key), timed)
    how = "cached" if rates else "measured"
    if not rates:
        # Seconds to a minute or more on large images: said before, not after.
        log.info(
            "precision auto: timing %s on this model for a few steps (once per model and CPU; "
            "train.mixed_precision=off skips it)",
            " against ".join(timed),
        )
        rates = {policy: float(timer(policy)) for policy in timed}
        _write(path, entries, key, rates)
    policy, measured = _fastest(rates, timed)
    reason = f"precision auto: {measured} on this CPU: {policy}"
    if how == "cached":
        reason += f" (cached in {path})"
    log.info("%s", reason)
    return Choice(policy, how, reason, rates)


def kept(saved: dict | None) -> Choice | None:
    """The choice a run's first start recorded (runs.read_precision); None for none or a bad one."""
    try:
        rates = {str(p): float(r) for p, r in saved["rates"].items()}
        choice = Choice(saved["policy"], str(saved["how"]), str(saved["reason"]), rates)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if choice.policy not in POLICIES:
        return None
    log.info("precision: %s (kept from the run's first start)", choice.policy)
    return choice


def planned(config: Config, cache: Path | None = None) -> tuple[str, str | None]:
    """What training would pick without a GPU, for `autoencoder shapes`: (policy, note or None).

    Times nothing and needs no TensorFlow: where auto would time, the policy is the cached
    winner, else float32 (the larger memory plan of the two), and the note says so.
    """
    mode = config.train.mixed_precision
    if mode != "auto" or not runtime.native_bfloat16():
        return runtime.cpu_precision(mode), None
    if config.train.distribute == "multi_worker":  # as choose(): the static rule, untimed
        return "mixed_bfloat16", (
            "precision auto in a multi-worker cluster: mixed_bfloat16, not timed (every worker "
            "trains in the same precision)"
        )
    rates = _rates(_read(cache or cache_file()).get(fingerprint(config)), CANDIDATES)
    if not rates:
        return "float32", (
            "precision auto: float32 or mixed_bfloat16, whichever trains this model faster, "
            "timed when training starts (the memory above is float32's, the larger)"
        )
    policy, measured = _fastest(rates, CANDIDATES)
    return policy, f"precision auto: {policy} (cached: {measured} on this CPU)"


def cache_file() -> Path:
    """precision.json in $AUTOENCODER_CACHE, else in $XDG_CACHE_HOME/autoencoder or ~/.cache's."""
    own = os.environ.get("AUTOENCODER_CACHE")
    if own:
        return Path(own).expanduser() / CACHE_FILE
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec: a relative path is invalid and is ignored.
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "autoencoder" / CACHE_FILE


def fingerprint(config: Config) -> str:
    """The cache key: this machine's CPU, the libraries, and what one training step computes."""
    what = {
        "cpu": runtime.cpu_name(),
        "cores": runtime.cpu_count(),
        "versions": _versions(),
        "model": config.model.model_dump(mode="json"),
        "batch_size": config.train.batch_size,
        "loss": config.train.loss,
        "optimizer": config.train.optimizer.name,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:24]


def _fastest(rates: dict[str, float], policies: Sequence[str]) -> tuple[str, str]:
    """The policy with the highest rate (the first of equals: float32), and the rates as text."""
    policy = max(policies, key=lambda p: rates[p])
    return policy, ", ".join(f"{p} {rates[p]:.2f} batches/s" for p in policies)


def _rule(policy: str, reason: str) -> Choice:
    log.info("%s", reason)
    return Choice(policy, "rule", reason)


def _versions() -> str:
    """TensorFlow's and Keras's versions, from their package metadata (no import)."""
    from importlib import metadata

    found = []
    for dist in ("tensorflow", "tensorflow-cpu", "keras"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def _rates(entry, policies: Sequence[str]) -> dict[str, float] | None:
    """A cache entry's rates for exactly these policies, or None for a miss or a bad entry."""
    rates = entry.get("rates") if isinstance(entry, dict) else None
    if not isinstance(rates, dict):
        return None
    try:
        found = {p: float(rates[p]) for p in policies}
    except (KeyError, TypeError, ValueError):
        return None
    return found if all(math.isfinite(r) and r > 0 for r in found.values()) else None


def _read(path: Path) -> dict:
    """The cache's entries by key; {} for a missing, unreadable or foreign file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        return {}
    return {key: entry for key, entry in entries.items() if isinstance(entry, dict)}


def _write(path: Path, entries: dict, key: str, rates: dict[str, float]) -> None:
    """Add one measurement to the cache (the newest CACHE_ENTRIES kept); warn if it cannot."""
    entries = {**entries}
    entries[key] = {
        "cpu": runtime.cpu_name(),
        "cores": runtime.cpu_count(),
        "versions": _versions(),
        "rates": rates,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    newest = sorted(entries, key=lambda k: str(entries[k].get("measured", "")), reverse=True)
    kept = {k: entries[k] for k in newest[:CACHE_ENTRIES]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(path, {"version": 1, "entries": kept})
    except OSError as exc:
        # A cache that cannot be written costs the next run the same few seconds, no more.
        log.warning("precision auto: cannot write %s (%s); the next run times again", path, exc)
