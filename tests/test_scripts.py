"""The scripts/ folder's mistakes: each is one `error:` line and exit status 2, found before any
training, data writing or waiting (every test here runs in seconds)."""

import os
import sys

import pytest
from conftest import ROOT, script, tiny, write_config

SCRIPTS = sorted(path.name for path in (ROOT / "scripts").glob("*.py"))


def assert_one_error(result, *words):
    """Exit status 2 and stderr one line, `error: ...` with each of `words` in it."""
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    for word in words:
        assert word in lines[0]


def assert_usage_error(result, *words):
    """argparse's refusal, as the CLI's own: exit status 2, one line `error: prog: ...`."""
    assert_one_error(result, *words, "--help` lists the options")


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_runs_this_checkouts_package(name, tmp_path):
    # A decoy package on PYTHONPATH, as an installed copy would be: the script must not import it.
    (tmp_path / "autoencoder").mkdir()
    (tmp_path / "autoencoder" / "__init__.py").write_text("raise ImportError('the decoy')\n")
    result = script(name, "--help", env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip()


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    out = tmp_path_factory.mktemp("scripts")
    return write_config(out / "tiny.yaml", tiny(out / "runs"))


# memory_vs_peak


def test_memory_vs_peak_without_configs_gives_its_usage():
    assert_one_error(script("memory_vs_peak.py"), "no config given; usage: python scripts/memory")


@pytest.mark.parametrize(
    "args, words",
    [
        (["nope.yaml"], ["nope.yaml", "not found"]),
        (["configs"], ["configs", "a folder"]),
        (["{config}", "--set", "train.epochs=0"], ["--set train.epochs=0", "positive"]),
        (["{config}", "--set", "foo"], ["--set foo", "KEY=VALUE"]),
        (["{config}", "--set"], ["--set after", "no KEY=VALUE"]),
        (["--quiet"], ["--quiet", "CONFIG"]),
        (["{config}", "--quiet"], ["--quiet after", "only --set KEY=VALUE"]),
    ],
)
def test_memory_vs_peak_mistakes_are_one_line(config, args, words):
    result = script("memory_vs_peak.py", *(a.format(config=config) for a in args))
    assert_one_error(result, *words)


def test_memory_vs_peak_checks_every_config_before_training_any(config, tmp_path):
    result = script("memory_vs_peak.py", config, "--", config, "--set", "train.epoch=2")
    assert_one_error(result, "--set train.epoch=2", "unknown key")
    assert result.stdout == ""  # not even the table's header: nothing was trained
    assert not (config.parent / "runs").exists()


def test_memory_vs_peak_help_is_its_docstring():
    result = script("memory_vs_peak.py", "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("The memory plan against the peak RSS of real runs")


# scaling_figures


@pytest.mark.parametrize(
    "path, words", [("nope.yaml", ["nope.yaml", "not found"]), ("configs", ["a folder"])]
)
def test_scaling_figures_bad_configs_are_one_line(path, words):
    assert_one_error(script("scaling_figures.py", "configs/quickstart.yaml", path), *words)


# training_rate


def test_training_rate_refuses_no_rounds_and_an_unknown_dtype(config):
    assert_usage_error(
        script("training_rate.py", config, "--rounds", "0"), "--rounds", "at least 1"
    )
    assert_usage_error(
        script("training_rate.py", config, "--dtype", "bogus"), "--dtype", "mixed_bfloat16"
    )


def test_training_rate_splits_sets_only_before_a_key_and_names_the_variant(config):
    noise = "data.noise={kind: gaussian, level: [0.1, 0.3]}"
    result = script("training_rate.py", config, "--variant", "v", f"{noise},train.epochs=0")
    assert_one_error(result, "--variant v: --set train.epochs=0: train.epochs")


# images_benchmark


@pytest.mark.parametrize(
    "table, words",
    [
        ("nope.json", ["nope.json", "No such file"]),
        ("configs", ["configs", "directory"]),
        ("configs/quickstart.yaml", ["not a result of this script"]),
    ],
)
def test_images_benchmark_table_mistakes_are_one_line(table, words):
    assert_one_error(script("images_benchmark.py", "--table", table), "--table", *words)


def test_images_benchmark_checks_its_data_before_writing_anything(tmp_path):
    work = tmp_path / "work"
    result = script("images_benchmark.py", "--mnist", tmp_path / "none", "--work", work)
    assert_one_error(result, "--mnist", "missing")
    assert not work.exists()
    result = script("images_benchmark.py", "--config", "nope.yaml", "--work", work)
    assert_one_error(result, "nope.yaml", "not found")
    assert not work.exists()


def test_images_benchmark_counts(tmp_path):
    work = tmp_path / "work"
    assert_usage_error(script("images_benchmark.py", "--epochs", "0", "--work", work), "--epochs")
    assert_usage_error(script("images_benchmark.py", "--warmup", "-1", "--work", work), "--warmup")
    assert not work.exists()


def test_images_benchmark_reads_mnist_from_autoencoder_data(tmp_path):
    env = {**os.environ, "AUTOENCODER_DATA": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    result = script("images_benchmark.py", "--help", env=env)
    assert f"here {tmp_path / 'mnist'}" in result.stdout.replace("\n", " ").replace("  ", "")


# check_schema_in_editor


def test_schema_check_refuses_what_is_not_a_language_server(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("")
    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\nexec sleep 60\n")
    silent.chmod(0o755)
    cases = [
        ([tmp_path / "none"], ["No such file"]),
        ([plain], ["Permission denied"]),
        (["/bin/true"], ["exited with status 0", "yaml-language-server"]),
        ([silent, "--timeout", "0.5"], ["did not answer within 0.5 s"]),
    ]
    for args, words in cases:
        assert_one_error(script("check_schema_in_editor.py", *args, timeout=30), *words)


# agreement, stress_resume


def test_agreement_limit_is_at_least_one():
    result = script("agreement.py", "a", "b", "--limit", "0")
    assert_usage_error(result, "--limit", "at least 1")
    assert "chunks of 1,000" in script("agreement.py", "--help").stdout


def test_stress_resume_kills_at_least_one():
    assert_usage_error(script("stress_resume.py", "--kills", "-1"), "--kills", "at least 1")


def test_scripts_import_no_tensorflow_at_import_time():
    code = (
        "import sys, runpy\n"
        f"sys.path.insert(0, {str(ROOT / 'scripts')!r})\n"
        "for name in ('memory_vs_peak', 'training_rate', 'images_benchmark', 'agreement'):\n"
        "    __import__(name)\n"
        "print('tensorflow' in sys.modules)"
    )
    import subprocess

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "False", result.stderr[-2000:]
