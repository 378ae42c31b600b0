"""train.mixed_precision: the static rule, and auto's timing of float32 against bfloat16, cached."""

import dataclasses
import json
import logging
import os
import subprocess
import sys

import pytest
from conftest import tiny

from autoencoder import precision, runtime

BOTH = ("float32", "mixed_bfloat16")


class Timer:
    """A stub of trainer.training_rate: made-up rates, and the policies it was asked to time."""

    def __init__(self, float32=6.0, mixed_bfloat16=4.0):
        self.rates = {"float32": float32, "mixed_bfloat16": mixed_bfloat16}
        self.calls = []

    def __call__(self, policy):
        self.calls.append(policy)
        return self.rates[policy]


@pytest.fixture
def cpu(monkeypatch):
    """No GPU, and a CPU with native bfloat16 (set .native = False for one without)."""

    class Cpu:
        native = True

    monkeypatch.setattr(runtime, "gpus", lambda: [])
    monkeypatch.setattr(runtime, "native_bfloat16", lambda: Cpu.native)
    return Cpu


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache" / "precision.json"


@pytest.fixture
def logged():
    """The messages precision logs during a test."""
    # Not caplog: cli.main sets propagate=False on the package logger, so records miss the root.
    lines = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("autoencoder.precision")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.mark.parametrize(
    "rates, faster",
    [((6.0, 4.0), "float32"), ((4.0, 6.0), "mixed_bfloat16"), ((5.0, 5.0), "float32")],
)
def test_precision_auto_picks_the_faster_of_two_stubbed_timings(
    tmp_path, cpu, cache, logged, rates, faster
):
    timer = Timer(*rates)
    choice = precision.choose(tiny(tmp_path), timer, cache=cache)
    assert (choice.policy, choice.how, timer.calls) == (faster, "measured", list(BOTH))
    assert choice.rates == dict(zip(BOTH, rates))
    line = (
        f"precision auto: float32 {rates[0]:.2f} batches/s, mixed_bfloat16 {rates[1]:.2f} "
        f"batches/s on this CPU: {faster}"
    )
    before = (
        "precision auto: timing float32 against mixed_bfloat16 on this model for a few steps "
        "(once per model and CPU; train.mixed_precision=off skips it)"
    )
    assert logged == [before, line] and choice.reason == line


def test_the_cache_is_written_then_used_and_keyed_by_the_model(tmp_path, cpu, cache, logged):
    config = tiny(tmp_path)
    first = precision.choose(config, Timer(), cache=cache)
    entries = json.loads(cache.read_text())["entries"]
    assert list(entries) == [precision.fingerprint(config)]
    entry = entries[precision.fingerprint(config)]
    assert entry["rates"] == {"float32": 6.0, "mixed_bfloat16": 4.0}
    assert entry["cpu"] == runtime.cpu_name() and entry["cores"] == runtime.cpu_count()
    # The same config again: the cached rates, no timing (a stub that would say otherwise).
    timer = Timer(1.0, 9.0)
    again = precision.choose(config, timer, cache=cache)
    assert timer.calls == [] and (again.policy, again.how) == ("float32", "cached")
    assert again.rates == first.rates
    assert logged[-1] == f"{first.reason} (cached in {cache})"
    # Another model (or batch size): timed again, kept beside the first.
    other = tiny(tmp_path, "model.latent_dim=16")
    assert precision.fingerprint(other) != precision.fingerprint(config)
    assert precision.fingerprint(tiny(tmp_path, "train.batch_size=8")) != precision.fingerprint(
        config
    )
    third = precision.choose(other, timer, cache=cache)
    assert timer.calls == list(BOTH) and third.policy == "mixed_bfloat16"
    assert len(json.loads(cache.read_text())["entries"]) == 2
    # Settings that do not change a training step share the entry.
    same = tiny(tmp_path, "train.epochs=3", "seed=7", "train.optimizer.learning_rate=0.01")
    assert precision.fingerprint(same) == precision.fingerprint(config)


def test_a_corrupt_cache_is_timed_again_and_rewritten(tmp_path, cpu, cache):
    cache.parent.mkdir()
    cache.write_text("{not json")
    timer = Timer()
    assert precision.choose(tiny(tmp_path), timer, cache=cache).how == "measured"
    assert timer.calls == list(BOTH)
    assert len(json.loads(cache.read_text())["entries"]) == 1


def test_an_unwritable_cache_warns_and_still_chooses(tmp_path, cpu, logged):
    blocker = tmp_path / "file"
    blocker.write_text("")
    choice = precision.choose(tiny(tmp_path), Timer(), cache=blocker / "precision.json")
    assert choice.policy == "float32"
    assert logged[1].startswith(f"precision auto: cannot write {blocker / 'precision.json'} (")
    assert logged[1].endswith("); the next run times again")


def test_a_cpu_without_native_bfloat16_takes_float32_untimed(tmp_path, cpu, cache, logged):
    cpu.native = False
    timer = Timer(1.0, 9.0)
    choice = precision.choose(tiny(tmp_path), timer, cache=cache)
    assert (choice.policy, choice.how, timer.calls) == ("float32", "rule", [])
    assert logged == [
        "precision auto: no native bfloat16 on this CPU (AVX512_BF16 or AMX-BF16 with oneDNN "
        "on), and emulated bfloat16 is slower than float32: float32"
    ]
    assert not cache.exists()


@pytest.mark.parametrize("mode, policy", [("on", "mixed_bfloat16"), ("off", "float32")])
def test_on_and_off_never_time(tmp_path, cpu, cache, mode, policy):
    timer = Timer()
    choice = precision.choose(tiny(tmp_path, f"train.mixed_precision={mode}"), timer, cache=cache)
    assert (choice.policy, choice.how, timer.calls) == (policy, "setting", [])
    assert not cache.exists()


def test_a_multi_worker_cluster_takes_the_static_rule_untimed(tmp_path, cpu, cache):
    timer = Timer(9.0, 1.0)
    choice = precision.choose(tiny(tmp_path), timer, multi_worker=True, cache=cache)
    assert (choice.policy, choice.how, timer.calls) == ("mixed_bfloat16", "rule", [])


def test_nothing_to_time_takes_the_static_rule_and_caches_nothing(tmp_path, cpu, cache):
    timer = Timer(9.0, 1.0)
    choice = precision.choose(tiny(tmp_path), timer, [], cache=cache)
    assert (choice.policy, choice.how, timer.calls) == ("mixed_bfloat16", "rule", [])
    assert choice.reason == (
        "precision auto: neither float32 nor mixed_bfloat16 fits in memory, nothing timed: "
        "mixed_bfloat16, native on this CPU"
    )
    assert not cache.exists()


def test_a_policy_whose_memory_plan_does_not_fit_is_not_timed(tmp_path, cpu, cache):
    timer = Timer(9.0, 1.0)
    choice = precision.choose(tiny(tmp_path), timer, ["mixed_bfloat16"], cache=cache)
    assert (choice.policy, choice.how, timer.calls) == ("mixed_bfloat16", "rule", [])
    assert choice.reason == "precision auto: only mixed_bfloat16 fits in memory: mixed_bfloat16"


def test_the_choice_goes_into_metrics_json_keys(tmp_path, cpu, cache):
    record = precision.choose(tiny(tmp_path), Timer(), cache=cache).record()
    assert record == {
        "precision/policy": "float32",
        "precision/how": "measured",
        "precision/reason": "precision auto: float32 6.00 batches/s, mixed_bfloat16 4.00 "
        "batches/s on this CPU: float32",
        "precision/float32_batches_per_s": 6.0,
        "precision/mixed_bfloat16_batches_per_s": 4.0,
    }


def test_shapes_says_what_auto_will_do_without_timing(tmp_path, cpu, cache):
    config = tiny(tmp_path)
    assert precision.planned(config, cache) == (
        "float32",
        "precision auto: float32 or mixed_bfloat16, whichever trains this model faster, timed "
        "when training starts (the memory above is float32's, the larger)",
    )
    precision.choose(config, Timer(4.0, 6.0), cache=cache)
    assert precision.planned(config, cache) == (
        "mixed_bfloat16",
        "precision auto: mixed_bfloat16 (cached: float32 4.00 batches/s, mixed_bfloat16 6.00 "
        "batches/s on this CPU)",
    )
    # A cluster's workers take the static rule, untimed, whatever the cache holds.
    cluster = tiny(tmp_path, "train.distribute=multi_worker")
    assert precision.planned(cluster, cache)[0] == "mixed_bfloat16"
    assert "multi-worker cluster: mixed_bfloat16, not timed" in precision.planned(cluster, cache)[1]
    cpu.native = False
    assert precision.planned(config, cache) == ("float32", None)
    assert precision.planned(tiny(tmp_path, "train.mixed_precision=on"), cache) == (
        "mixed_bfloat16",
        None,
    )


def test_the_cache_file_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENCODER_CACHE", str(tmp_path / "own"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert precision.cache_file() == tmp_path / "own" / "precision.json"
    monkeypatch.delenv("AUTOENCODER_CACHE")
    assert precision.cache_file() == tmp_path / "xdg" / "autoencoder" / "precision.json"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # invalid by the XDG spec: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert precision.cache_file() == tmp_path / "home" / ".cache" / "autoencoder" / "precision.json"


def test_the_test_session_never_writes_the_users_cache(precision_cache):
    assert precision.cache_file() == precision_cache / "precision.json"
    assert os.environ["AUTOENCODER_CACHE"] == str(precision_cache)


CPUINFO = """processor\t: 0
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse2 avx2 avx512f {extra}
"""


@pytest.mark.parametrize("extra, native", [("avx512_bf16", True), ("amx_bf16", True), ("", False)])
def test_cpu_facts_come_from_proc_cpuinfo(tmp_path, monkeypatch, extra, native):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO.format(extra=extra))
    monkeypatch.setattr(runtime, "CPUINFO", str(info))
    assert runtime.cpu_name() == "AMD EPYC 9R14 96-Core Processor"
    assert runtime.cpu_has_bfloat16() is native


def test_cpu_facts_without_proc_cpuinfo(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "CPUINFO", str(tmp_path / "absent"))
    monkeypatch.setattr("platform.processor", lambda: "")
    monkeypatch.setattr("platform.machine", lambda: "arm64")
    assert runtime.cpu_name() == "arm64"
    assert runtime.cpu_has_bfloat16() is False
    assert runtime.cpu_count() == len(os.sched_getaffinity(0))


def test_cpu_facts_leave_tensorflow_unloaded():
    code = (
        "import sys; from autoencoder import runtime; "
        "runtime.cpu_name(), runtime.cpu_count(), runtime.cpu_has_bfloat16(); "
        "print('tensorflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_real_timing_on_a_tiny_model(tmp_path, cpu, cache, monkeypatch):
    from autoencoder import trainer

    # Two steps timed each way after the warm-up: enough to exercise it, not to decide.
    monkeypatch.setattr(trainer, "TIMED_STEPS", (2, 2))
    config = tiny(tmp_path, "train.batch_size=8")
    choice = precision.choose(config, lambda p: trainer.training_rate(config, p), cache=cache)
    assert set(choice.rates) == set(BOTH) and all(r > 0 for r in choice.rates.values())
    assert choice.how == "measured"
    assert choice.policy == max(BOTH, key=choice.rates.get)  # the faster of the two timings


def test_a_run_records_how_its_precision_was_chosen(tmp_path, cpu, monkeypatch):
    from autoencoder import trainer
    from autoencoder.pipeline import train_run

    monkeypatch.setenv("AUTOENCODER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(trainer, "TIMED_STEPS", (2, 2))
    run_dir, metrics = train_run(tiny(tmp_path, "train.epochs=1", "train.batch_size=64"))
    rates = {p: metrics[f"precision/{p}_batches_per_s"] for p in BOTH}
    assert metrics["precision/how"] == "measured" and all(r > 0 for r in rates.values())
    assert metrics["precision/policy"] == max(BOTH, key=rates.get)
    assert (
        json.loads((run_dir / "metrics.json").read_text())["precision/reason"]
        == (metrics["precision/reason"])
    )
    # The run trained in the policy it chose.
    model = trainer.load_model(run_dir / "model.keras")
    enc1 = model.get_layer("encoder").get_layer("enc1_conv")
    assert enc1.dtype_policy.name == metrics["precision/policy"]
    assert (tmp_path / "cache" / "precision.json").is_file()


def test_a_resumed_run_keeps_the_precision_its_first_start_chose(
    tmp_path, cpu, monkeypatch, logged
):
    from autoencoder import runs, trainer
    from autoencoder.pipeline import resume_run, train_run

    def timing(timer):
        monkeypatch.setattr(trainer, "training_rate", lambda config, policy: timer(policy))

    monkeypatch.setenv("AUTOENCODER_CACHE", str(tmp_path / "cache"))
    timing(Timer(6.0, 4.0))
    run_dir, first = train_run(tiny(tmp_path, "train.epochs=1"))
    assert first["precision/policy"] == "float32"
    assert runs.read_precision(run_dir)["policy"] == "float32"
    # The resume misses the cache, and its timing would pick bfloat16: it is not asked.
    monkeypatch.setenv("AUTOENCODER_CACHE", str(tmp_path / "other"))
    timer = Timer(4.0, 6.0)
    timing(timer)
    logged.clear()
    _, resumed = resume_run(run_dir, ["train.epochs=2"])
    assert timer.calls == [] and logged == ["precision: float32 (kept from the run's first start)"]
    assert [r["epoch"] for r in runs.read_history(run_dir)] == [1, 2]
    kept = {key: value for key, value in resumed.items() if key.startswith("precision/")}
    assert kept == {key: value for key, value in first.items() if key.startswith("precision/")}
    assert runs.read_metrics(run_dir)["precision/policy"] == "float32"
    enc1 = trainer.load_model(run_dir / "model.keras").get_layer("encoder").get_layer("enc1_conv")
    assert enc1.dtype_policy.name == "float32"


def test_a_run_without_a_recorded_precision_chooses_again(tmp_path, logged):
    from autoencoder import runs

    # A run made before the record (or with a damaged one): the resume chooses as a new run does.
    assert runs.read_precision(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / runs.PRECISION).write_text("{not json")
    assert runs.read_precision(tmp_path) is None
    for saved in (
        None,
        {"policy": "float32"},
        {"policy": "float8", "how": "", "reason": "", "rates": {}},
    ):
        assert precision.kept(saved) is None
    assert logged == []
    choice = precision.Choice("mixed_bfloat16", "cached", "why", {"float32": 4.0})
    runs.write_precision(tmp_path, dataclasses.asdict(choice))
    assert precision.kept(runs.read_precision(tmp_path)) == choice
    assert logged == ["precision: mixed_bfloat16 (kept from the run's first start)"]


def test_shapes_prints_the_note_and_times_nothing(tmp_path, cpu, monkeypatch, capsys):
    from autoencoder.cli import main

    monkeypatch.setenv("AUTOENCODER_CACHE", str(tmp_path))
    assert main(["shapes", "configs/seed_tutorial.yaml"]) == 0
    out = capsys.readouterr().out
    assert "memory at batch 1000, float32 activations" in out
    assert out.rstrip().endswith(
        "timed when training starts (the memory above is float32's, the larger)"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_policys_name_for_the_setting_says_what_the_setting_takes(tmp_path):
    from autoencoder.errors import UserError

    with pytest.raises(UserError) as refused:
        tiny(tmp_path, "train.mixed_precision=mixed_bfloat16")
    assert str(refused.value).endswith(
        "train.mixed_precision: 'mixed_bfloat16' is a precision policy, not a setting: on "
        "(mixed precision: bfloat16 on a CPU, float16 on a GPU), off (float32) or auto"
    )
