"""`autoencoder compare`: curves, the same test images by each run, the config keys that differ."""

import re
import shutil
from pathlib import Path

import pytest
from conftest import assert_error, cli, cli_without_tensorflow, tiny
from PIL import Image
from test_lock import hold_in_subprocess

from autoencoder import api, comparison
from autoencoder.errors import UserError
from autoencoder.pipeline import train_run
from autoencoder.plots.figure import DPI


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two tiny runs that differ in the learning rate, and one on 16x16 images."""
    out = tmp_path_factory.mktemp("compare") / "outputs"
    slow, _ = train_run(tiny(out, "train.epochs=2"))
    fast, _ = train_run(tiny(out, "train.epochs=2", "train.optimizer.learning_rate=0.003"))
    small, _ = train_run(tiny(out, "train.epochs=1", "data.image_size=[16, 16]"))
    return slow, fast, small


@pytest.fixture(scope="module")
def compared(trained, tmp_path_factory):
    slow, fast, _ = trained
    out = tmp_path_factory.mktemp("compared") / "new"
    return api.compare([slow, api.load_run(fast)], out)


def test_the_diff_names_exactly_the_key_that_differs(compared):
    out_dir, result = compared
    assert result.keys == ["train.optimizer.learning_rate"]
    assert result.labels == ["learning_rate=0.001", "learning_rate=0.003"]
    assert result.table.splitlines() == [
        "| key | learning_rate=0.001 | learning_rate=0.003 |",
        "|---|---|---|",
        "| train.optimizer.learning_rate | 0.001 | 0.003 |",
    ]
    text = (out_dir / "compare.md").read_text()
    assert result.table in text
    assert "![validation curves](curves.png)" in text


def test_the_figures_exist_at_their_sizes(compared, trained):
    out_dir, _ = compared
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "compare.md",
        "curves.png",
        "reconstructions.png",
    ]
    with Image.open(out_dir / "curves.png") as image:
        assert image.size == (12 * DPI, round(4.2 * DPI))
    # A row for the input and one per run, a column for each of the first 8 test images:
    # 1.3 inches a 28x28 column and 2.2 for the labels, 1.4 a row and 0.6 for the title.
    assert comparison.EXAMPLES == 8
    with Image.open(out_dir / "reconstructions.png") as image:
        assert image.size == (round((1.3 * 8 + 2.2) * DPI), round((1.4 * 3 + 0.6) * DPI))
        assert image.mode in ("RGB", "RGBA")


def test_the_command_prints_the_table_and_where_the_figures_are(trained, tmp_path):
    slow, fast, _ = trained
    result = cli("compare", slow, fast, "--out", tmp_path / "cmp", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [
        "| key | learning_rate=0.001 | learning_rate=0.003 |",
        "|---|---|---|",
        "| train.optimizer.learning_rate | 0.001 | 0.003 |",
        f"figures and compare.md: {tmp_path / 'cmp'}",
    ]
    assert (tmp_path / "cmp" / "curves.png").stat().st_size > 10_000


def test_compare_md_links_each_runs_own_figures(compared, trained):
    out_dir, _ = compared
    links = re.findall(r"\]\(([^)]+)\)", (out_dir / "compare.md").read_text())
    # Relative links, so that compare.md shows them from its own folder.
    resolved = {(out_dir / link).resolve() for link in links}
    for run_dir in trained[:2]:
        for name in comparison.RUN_FIGURES:
            assert (run_dir / "figures" / name).resolve() in resolved, (run_dir, name)


def test_the_default_folder_is_new_under_outputs_compare(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(comparison, "reconstructions", lambda *_: (None, [], []))
    monkeypatch.setattr(
        comparison, "plot_compare_reconstructions", lambda path, *_: path.write_bytes(b"")
    )
    first, _ = api.compare(trained[:2])
    second, _ = api.compare(trained[:2])
    assert first.parent == second.parent == Path("outputs/compare")  # relative to the cwd
    assert first != second and (first / "compare.md").is_file()


def test_ae_compare_stays_the_function_once_its_module_is_imported(compared):
    import autoencoder as ae

    # A module named like an API function would replace it as the package's attribute.
    assert ae.compare is api.compare and ae.list_runs is api.list_runs


def refused(*args):
    """`autoencoder compare *args` without TensorFlow; its result, once nothing was written."""
    result, loaded = cli_without_tensorflow("compare", *args)
    assert not loaded
    return result


def test_refusals_say_what_and_write_nothing(trained, tmp_path):
    slow, fast, small = trained
    out = tmp_path / "out"
    assert_error(
        refused(slow, "--out", out),
        "compare: 1 run given; pass two or more run directories, e.g. autoencoder compare "
        "outputs/<name>/<timestamp> outputs/<name>/<timestamp>",
    )
    assert_error(
        refused(slow, tmp_path, "--out", out),
        f"{tmp_path}: not a run directory (no config.yaml); pass a directory made by "
        f"`autoencoder train`, e.g. outputs/<name>/<timestamp>",
    )
    assert_error(refused(slow, slow, "--out", out), f"{slow}: given twice; pass each run once")
    assert_error(
        refused(slow, small, "--out", out),
        f"{small}: trained on mnist_sample, 16x16x1 images, but {slow} on mnist_sample, "
        f"28x28x1 images; compare runs trained on the same data",
    )
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert_error(
        refused(slow, fast, "--out", tmp_path / "full"),
        f"--out {tmp_path / 'full'}: already exists and is not an empty folder; name a new "
        f"folder, or leave --out out to write under outputs/compare/<timestamp>",
    )
    assert not out.exists()


def test_a_model_that_cannot_be_read_stops_it_before_anything_is_written(trained, tmp_path):
    slow, fast, _ = trained
    run = tmp_path / "tiny" / "20990101-000000"
    shutil.copytree(fast, run, ignore=shutil.ignore_patterns(".lock"))
    (run / "model.keras").write_bytes(b"not a zip")
    out = tmp_path / "out"
    assert_error(
        cli("compare", slow, run, "--out", out, "--quiet"),
        f"{run / 'model.keras'}: cannot load model (ValueError); the file is corrupt or "
        f"truncated: train a new run to replace it",
    )
    assert not out.exists()  # so the same command, the model fixed, can write it


@pytest.mark.parametrize("given", ["new/nested/out", "empty"])
def test_a_write_that_fails_leaves_no_folder_it_made_and_keeps_the_users(
    given, trained, tmp_path, monkeypatch
):
    def full(path, *_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(comparison, "reconstructions", lambda *_: (None, [], []))
    monkeypatch.setattr(comparison, "plot_compare_reconstructions", full)
    (tmp_path / "empty").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(OSError, match="No space"):
        api.compare(trained[:2], out=tmp_path / given)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # "new/" gone, "empty/" kept
    assert not any((tmp_path / "empty").iterdir())


def test_an_unfinished_failed_or_busy_run_is_refused(trained, tmp_path):
    slow, fast, _ = trained
    run = tmp_path / "tiny" / "20990101-000000"
    shutil.copytree(fast, run, ignore=shutil.ignore_patterns(".lock", "model.keras"))
    for status in ("unfinished", "failed"):
        assert_error(
            refused(slow, run, "--out", tmp_path / "out"),
            f"{run}: {status} at epoch 2 of 2, so it has no final model to reconstruct with; "
            f"finish it with `autoencoder resume {run}`, or leave it out",
        )
        (run / "error.log").write_text("Traceback ...\n")
    holder = hold_in_subprocess(run)
    try:
        result = refused(slow, run, "--out", tmp_path / "out")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {run} is in use by process {holder.pid} (")
    assert not (tmp_path / "out").exists()


def test_block_lists_of_different_lengths_are_summed_up_block_by_block(tmp_path):
    folded = tiny(
        tmp_path,
        "model.encoder=[{type: space_to_depth}, {type: conv, filters: 8, batch_norm: true}, "
        "{type: conv, filters: 16, strides: [2, 1], kernel_size: 5, activation: silu}]",
    )
    plain = tiny(tmp_path)
    assert comparison.value_text(folded, "model.encoder") == (
        "space_to_depth 2x2; conv 8 relu bn; conv 16 5x5 /2x1 silu"
    )
    # Lists of one length differ key by key, each short; the summary is only for whole lists.
    assert comparison.value_text(plain, "model.encoder[0].filters") == "4"
    assert "..." not in comparison.value_text(folded, "model.encoder", width=20)


def test_runs_tested_on_other_classes_or_another_share_are_not_compared(tmp_path):
    base = tiny(tmp_path)
    for sets, said in (
        (["data.classes=[1, 7]"], "mnist_sample (classes 1, 7), 28x28x1 images"),
        (["data.test_split=0.2"], "mnist_sample (test_split 0.2), 28x28x1 images"),
    ):
        other = tiny(tmp_path, *sets)
        with pytest.raises(UserError) as refused:
            comparison.check_same_data((Path("a"), base), (Path("b"), other))
        assert str(refused.value) == (
            f"b: trained on {said}, but a on mnist_sample, 28x28x1 images; compare runs trained "
            f"on the same data"
        )
    # One folder brought to one size by resize and by pad: other test pixels, so not compared.
    sized = ["data.image_size=[32, 32]", "model.input_shape=[32, 32, 1]"]
    with pytest.raises(UserError) as refused:
        comparison.check_same_data(
            (Path("a"), tiny(tmp_path, *sized)), (Path("b"), tiny(tmp_path, *sized, "data.fit=pad"))
        )
    assert str(refused.value) == (
        "b: trained on mnist_sample (fit pad), 32x32x1 images, but a on mnist_sample, 32x32x1 "
        "images; compare runs trained on the same data"
    )
    # A smaller training pool tests on the same images: compared (a learning curve).
    comparison.check_same_data((Path("a"), base), (Path("b"), tiny(tmp_path, "data.limit=100")))


@pytest.mark.parametrize(
    "keys, metric",
    [
        (["model.kind"], "val/mse"),
        (["train.loss"], "val/mse"),
        (["train.optimizer.learning_rate"], "val/loss"),
    ],
)
def test_curves_of_runs_whose_losses_differ_in_kind_are_drawn_by_mse(
    tmp_path, monkeypatch, keys, metric
):
    drawn = {}
    monkeypatch.setattr(comparison, "plot_compare_curves", lambda p, h, m: drawn.update(m=m))
    checked = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "history.csv").write_text(
            "epoch,train/loss,val/loss,val/mse,lr,seconds\n1,0.3,0.3,0.05,0.001,1.0\n"
        )
        checked.append((tmp_path / name, None))
    comparison.curves(tmp_path / "curves.png", checked, ["a", "b"], keys)
    assert drawn["m"] == metric


@pytest.mark.parametrize("keys", [["model.kind"], ["train.optimizer.learning_rate"]])
def test_the_table_ranks_runs_by_mse_when_their_losses_differ_in_kind(tmp_path, keys):
    checked = []
    for name, rows in (
        ("a", "1,400.0,390.0,0.05\n2,380.0,370.0,0.04\n"),
        ("b", "1,0.3,0.2,0.03\n"),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "history.csv").write_text("epoch,train/loss,val/loss,val/mse\n" + rows)
        checked.append((tmp_path / name, None))
    (tmp_path / "a" / "checkpoints").mkdir()
    (tmp_path / "a" / "checkpoints" / "precision.json").write_text('{"policy": "mixed_bfloat16"}')
    text = comparison.report(tmp_path, checked, ["a", "b"], "", keys)
    head, _, a, b = text.splitlines()[2:6]
    # The precision each trained in (b: a run from before it was recorded).
    assert (a.split(" | ")[3], b.split(" | ")[3]) == ("mixed_bfloat16", "-")
    if keys == ["model.kind"]:  # a VAE's nats beside a per-pixel BCE: not one scale
        assert "| best val/mse (the losses differ in kind) |" in head
        assert (a.split(" | ")[4], b.split(" | ")[4]) == ("0.04", "0.03")
    else:
        assert "| best val/loss |" in head


def test_a_patch_model_is_compared_by_the_whole_images_it_is_tested_on(tmp_path):
    whole = tiny(tmp_path)
    patches = tiny(tmp_path, "data.patches={size: [16, 16]}", "model.input_shape=[16, 16, 1]")
    assert comparison.data_text(patches) == "mnist_sample, 28x28x1 images"
    comparison.check_same_data((Path("a"), whole), (Path("b"), patches))  # not refused
    # A folder's patch model has no image size in its config: its source and channels decide.
    folder = ["data.dataset=folder", f"data.path={tmp_path}"]
    sized = tiny(tmp_path, *folder, "model.input_shape=[64, 64, 3]")
    tiles = tiny(
        tmp_path, *folder, "data.patches={size: [16, 16]}", "model.input_shape=[16, 16, 3]"
    )
    assert comparison.data_text(tiles) == f"{tmp_path}, 3-channel images"
    comparison.check_same_data((Path("a"), sized), (Path("b"), tiles))
    grey = tiny(tmp_path, *folder, "data.patches={size: [16, 16]}", "model.input_shape=[16, 16, 1]")
    with pytest.raises(UserError, match=r"trained on .*, 1-channel images, but a on"):
        comparison.check_same_data((Path("a"), sized), (Path("b"), grey))


def test_a_damaged_metrics_json_is_said_not_a_silent_row_of_dashes(trained, tmp_path):
    slow, fast, _ = trained
    copy = shutil.copytree(slow, tmp_path / "slow")
    (copy / "metrics.json").write_text("[1]")
    result = cli("compare", copy, fast, "--out", tmp_path / "cmp")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        f"{copy / 'metrics.json'}: damaged (not a JSON object); `autoencoder evaluate "
        f"{copy}` writes the run's test metrics again; compare.md shows '-' for that run's figures"
    ) in result.stderr.splitlines()


def test_beside_a_denoiser_each_row_says_which_input_its_run_was_given(trained):
    from autoencoder.config import load_config
    from autoencoder.runs import load_run_config

    slow, fast, _ = trained
    denoiser = load_config(slow / "config.yaml", ["data.noise={kind: gaussian, level: 0.3}"])
    checked = [(slow, denoiser), (fast, load_run_config(fast))]
    x, inputs, outputs = comparison.reconstructions(checked, ["a", "b"])
    assert [label for label, _ in inputs] == ["noisy input (gaussian 0.3)"]
    assert [label for label, _ in outputs] == ["a (given gaussian 0.3)", "b (given clean)"]
    assert outputs[0][1].shape == x.shape
    # Without a denoiser every run is given the same clean images: the labels say no more.
    _, inputs, outputs = comparison.reconstructions([checked[1]], ["b"])
    assert inputs == [] and [label for label, _ in outputs] == ["b"]
