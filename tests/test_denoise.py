"""A tiny denoising sweep on the mnist_sample digits, with a blind model beside the per-level ones,
through the CLI, then resumed in-process."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT, cli, write_config

from autoencoder.config import load_config
from autoencoder.errors import UserError
from autoencoder.plots.figure import DPI

# The sweep's own config, not conftest's TINY: 400 digits, wider blocks, no dense code.
SWEEP = [
    "name=sweep",
    "data.dataset=mnist_sample",
    "data.limit=400",
    "model.encoder=[{filters: 8, strides: 2}, {filters: 16, strides: 2}]",
    "model.decoder=mirror",
    "train.epochs=2",
    "train.batch_size=16",
    "train.optimizer.learning_rate=0.005",
    "train.tensorboard=false",
    "denoise.train_levels=[0.2, 0.5]",
    "denoise.eval_levels=[0.1, 0.2, 0.5]",
    "denoise.eval_images=500",
    "denoise.blind=[0.0, 0.7]",
    "denoise.blind_epochs=3",
]
MODELS = ("level-0.2", "level-0.5", "blind-0-0.7")
FIGURES = ("triplets", "psnr_vs_level", "robustness")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps")
    config = write_config(out / "tiny.yaml", load_config(None, [*SWEEP, f"output={out}"]))
    result = cli("denoise", config, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (out / "sweep").iterdir()
    return sweep_dir


def test_models_are_named_by_level_range_and_draw():
    from autoencoder.denoise import level_name, model_label

    assert model_label(0.4) == "0.4" and level_name(0.4) == "level-0.4"
    assert model_label((0.0, 0.7)) == "blind 0-0.7" and level_name((0.0, 0.7)) == "blind-0-0.7"
    assert model_label((0.0, 0.7), "triangular") == "blind 0-0.7 triangular"
    assert model_label(0.4, "triangular") == "0.4"  # a per-level model has no draw


def test_sweep_writes_every_file(sweep):
    for name in (
        "config.yaml",
        "results.csv",
        "results.md",
        *(f"figures/{f}.png" for f in FIGURES),
    ):
        assert (sweep / name).is_file(), name
    levels, epochs = {}, {}
    for name in MODELS:
        (run,) = (sweep / "models" / name).iterdir()
        assert (run / "model.keras").is_file() and (run / "metrics.json").is_file()
        levels[name] = load_config(run / "config.yaml").data.noise.level
        epochs[name] = json.loads((run / "metrics.json").read_text())["epochs_run"]
    assert levels == {"level-0.2": 0.2, "level-0.5": 0.5, "blind-0-0.7": (0.0, 0.7)}
    # denoise.blind_epochs: the blind model trains 3 epochs, the per-level ones train.epochs 2.
    assert epochs == {"level-0.2": 2, "level-0.5": 2, "blind-0-0.7": 3}


def test_results_have_a_row_per_train_and_eval_level_with_sane_values(sweep):
    from autoencoder.denoise import read_results

    rows = read_results(sweep)
    assert [(r["model"], r["train_level"], r["eval_level"]) for r in rows] == [
        (f"level-{t:g}" if t else "blind-0-0.7", t, e)
        for t in (0.2, 0.5, None)
        for e in (0.1, 0.2, 0.5)
    ]
    # Each model's epochs, read from its run: the blind one's from denoise.blind_epochs.
    assert [r["epochs"] for r in rows] == [2] * 6 + [3] * 3
    by_eval = {r["eval_level"]: r for r in rows if r["train_level"] == 0.2}
    # Noisy input: ~20 dB at 0.1 down to ~9 dB at 0.5 (clipped Gaussian on MNIST digits).
    assert 19 < by_eval[0.1]["noisy_psnr"] < 24 and 8 < by_eval[0.5]["noisy_psnr"] < 11
    assert by_eval[0.5]["filter_psnr"] > by_eval[0.5]["noisy_psnr"] + 2
    assert by_eval[0.5]["filter"] == "median 3x3" or by_eval[0.5]["filter"].startswith("gaussian")
    for r in rows:
        assert r["images"] == 500 and r["kind"] == "gaussian"
        if r["eval_level"] == 0.5:  # even two tiny epochs beat the noisiest input
            assert r["model_psnr"] > r["noisy_psnr"] + 1, r
            assert r["filter_ssim"] > r["noisy_ssim"], r  # the best filter smooths the noise
    # The noisy input's SSIM falls as the noise grows, the same for every model.
    noisy = [r["noisy_ssim"] for r in rows]
    assert noisy[0] > noisy[1] > noisy[2] and noisy == noisy[:3] * 3
    table = (sweep / "results.md").read_text()
    assert table.count("\n| ") == 1 + len(rows) and "| model PSNR |" in table


def test_the_blind_model_is_scored_at_every_level_beside_the_per_level_models(sweep):
    import math

    from autoencoder.denoise import read_results

    rows = read_results(sweep)
    blind = {r["eval_level"]: r for r in rows if r["model"] == "blind-0-0.7"}
    own = {r["eval_level"]: r for r in rows if r["train_level"] == r["eval_level"]}
    assert sorted(blind) == [0.1, 0.2, 0.5] and sorted(own) == [0.2, 0.5]
    for level, r in blind.items():
        assert math.isfinite(r["model_psnr"]) and r["model_psnr"] > 10, r
        # The same noisy inputs and baselines as the per-level models' rows at this level.
        assert r["noisy_psnr"] == next(x["noisy_psnr"] for x in rows if x["eval_level"] == level)
        if level in own:  # blind minus the model trained at this level
            diff = r["model_psnr"] - own[level]["model_psnr"]
            assert r["blind_minus_level_psnr"] == pytest.approx(diff, abs=2e-4)
        else:
            assert r["blind_minus_level_psnr"] is None
    # Only blind rows carry the difference; the report's table shows it in its last column.
    assert all(r["blind_minus_level_psnr"] is None for r in rows if r["train_level"] is not None)
    table = (sweep / "results.md").read_text()
    assert "| blind - level (dB) |" in table
    assert "drawn uniformly from 0-0.7, for 3 epochs (the per-level models 2 each);" in table
    # One label names each model in results.csv, results.md and the figures.
    assert [r["label"] for r in rows] == ["0.2"] * 3 + ["0.5"] * 3 + ["blind 0-0.7"] * 3
    (line,) = [x for x in table.splitlines() if x.startswith("| blind 0-0.7 | 0.5 |")]
    assert line.endswith(f" {blind[0.5]['blind_minus_level_psnr']:+.2f} |")


def test_figures_are_readable_pngs(sweep):
    import matplotlib.image as mpimg

    for name in FIGURES:
        img = mpimg.imread(sweep / "figures" / f"{name}.png")
        assert img.shape[0] >= 300 and img.shape[1] >= 400, (name, img.shape)
        assert img[..., :3].std() > 0.05, name
    # A denoiser's worst images are drawn with their noisy inputs: four rows, not three.
    (level,) = (sweep / "models" / "level-0.2").iterdir()
    worst = mpimg.imread(level / "figures" / "worst.png")
    assert worst.shape[0] == round((1.5 * 4 + 0.4) * DPI)  # 3 rows: round(4.9 * DPI)


def test_resume_reuses_finished_models_and_finishes_the_rest(sweep):
    from autoencoder.denoise import read_results, run_sweep
    from autoencoder.runs import read_history

    (done,) = (sweep / "models" / "level-0.2").iterdir()
    (blind,) = (sweep / "models" / "blind-0-0.7").iterdir()
    (unfinished,) = (sweep / "models" / "level-0.5").iterdir()
    stamp = (done / "model.keras").stat().st_mtime_ns
    blind_stamp = (blind / "model.keras").stat().st_mtime_ns
    (unfinished / "model.keras").unlink()  # as if killed before the end of training
    before = read_results(sweep)
    run_sweep(load_config(sweep / "config.yaml"), resume=sweep)
    assert (done / "model.keras").stat().st_mtime_ns == stamp  # not retrained
    assert (blind / "model.keras").stat().st_mtime_ns == blind_stamp  # nor the blind model
    assert (unfinished / "model.keras").is_file()
    assert len(list((sweep / "models" / "level-0.5").iterdir())) == 1  # resumed, not restarted
    assert [r["epoch"] for r in read_history(unfinished)] == [1, 2]
    after = read_results(sweep)
    # Same models, same fixed evaluation noise: the same numbers.
    assert [r["model_psnr"] for r in after] == pytest.approx([r["model_psnr"] for r in before])


@pytest.mark.parametrize(
    "setting, message",
    [
        ("denoise.train_levels=[]", "denoise.train_levels: must list at least 1 entry, got []"),
        ("denoise.eval_levels=[0.1, 0.1]", "denoise.eval_levels: lists a level twice: [0.1, 0.1]"),
        (
            "denoise.kind=blur",
            "denoise.kind: must be 'gaussian', 'salt_pepper', 'speckle' or 'mask', got 'blur'",
        ),
        ("denoise.blind=[0.7, 0.2]", "denoise.blind: the range [0.7, 0.2] must go up"),
    ],
)
def test_bad_denoise_config_exits_2_with_one_line(setting, message):
    result = cli("denoise", "configs/denoise_gaussian.yaml", "--set", setting)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    # The line names the --set that is wrong, then the key and what would be right.
    assert result.stderr.startswith(f"error: --set {setting}: {message}"), result.stderr


def test_data_that_cannot_be_found_stops_the_sweep_before_its_folder_is_made(tmp_path):
    empty = tmp_path / "images"
    empty.mkdir()
    result = cli(
        "denoise",
        "configs/denoise_gaussian.yaml",
        "--set",
        "data.dataset=folder",
        "--set",
        f"data.path={empty}",
        "--set",
        f"output={tmp_path / 'out'}",
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: data.path {empty}: ")
    assert not (tmp_path / "out").exists()


def test_a_sweep_without_a_blind_model_has_no_blind_column():
    from autoencoder.denoise import COLUMNS, results_markdown

    row = dict.fromkeys(COLUMNS, 0.5) | {"kind": "gaussian", "filter": "median 3x3"}
    row |= {"images": 10, "model": "level-0.5", "blind_minus_level_psnr": None, "label": "0.5"}
    table = results_markdown([row], load_config(None))
    assert "blind" not in table and table.splitlines()[-1].endswith("| 0.50 | 0.500 |")


def test_script_wrapper_shows_help():
    result = subprocess.run(
        [sys.executable, "scripts/denoise.py", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0 and "--resume SWEEP_DIR" in result.stdout


def test_agreement_script_splits_the_runs_error_into_the_average_and_the_spread(sweep, tmp_path):
    """scripts/agreement.py on the sweep's 0.5 model and its blind one, both given 0.5 inputs:
    each run's MSE is its own metrics.json's, and mean MSE = average's MSE + spread exactly."""
    import shutil

    sys.path.insert(0, str(ROOT / "scripts"))
    from agreement import agreement

    (level,) = (sweep / "models" / "level-0.5").iterdir()
    (blind,) = (sweep / "models" / "blind-0-0.7").iterdir()
    result = agreement([str(level), str(blind)], shifts=True)
    metrics = json.loads((level / "metrics.json").read_text())
    assert result["mse"][0] == pytest.approx(metrics["test/mse"], rel=1e-5)
    assert result["mse"][0] != pytest.approx(result["mse"][1], rel=1e-3)  # two models
    mean = sum(result["mse"]) / 2
    assert result["spread"] > 0 and result["average_mse"] < mean
    assert mean == pytest.approx(result["average_mse"] + result["spread"], rel=1e-9)
    assert result["pairs"]["0 1"] == pytest.approx(4 * result["spread"], rel=1e-9)
    for alone, shifted in zip(result["mse"], result["shifted_mse"]):
        assert 0.5 * alone < shifted < 1.5 * alone  # four predictions of one model, averaged
    # A run of other images is refused in one line, exit status 2.
    other = tmp_path / "other"
    shutil.copytree(level, other)
    config = other / "config.yaml"
    config.write_text(config.read_text().replace("limit: 400", "limit: 300"))
    refused = subprocess.run(
        [sys.executable, "scripts/agreement.py", str(level), str(other)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2, refused.stderr[-2000:]
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {other}: its data section")
    assert "'s in data.limit; compare runs of the same images" in last  # the key named


def test_agreement_limit_scores_whole_chunks_and_predicts_no_more(sweep, monkeypatch):
    """--limit 20 with chunks of 16 images: two chunks scored, each model asked for two."""
    from autoencoder import runs as runs_module
    from autoencoder.data import splits as splits_module

    sys.path.insert(0, str(ROOT / "scripts"))
    import agreement as script

    calls = []

    def counted(model, inputs, patches=None):
        calls.append(len(inputs))
        return predict(model, inputs, patches)

    predict = runs_module.predict_images
    monkeypatch.setattr(splits_module, "chunk_size", lambda shape: 16)
    monkeypatch.setattr(runs_module, "predict_images", counted)
    monkeypatch.setattr(script, "predict_images", counted)
    (level,) = (sweep / "models" / "level-0.5").iterdir()
    (blind,) = (sweep / "models" / "blind-0-0.7").iterdir()
    result = script.agreement([str(level), str(blind)], limit=20)
    assert result["images"] == 32
    assert calls == [16, 16, 16, 16]


def test_agreement_edges_split_each_error_by_distance_from_the_ink(sweep, monkeypatch):
    """--edges: the rings' shares of pixels and of error sum to 1, and the rings' MSEs weighted
    by their pixels give back each run's MSE; an image without one channel is refused."""
    from types import SimpleNamespace

    import numpy as np

    sys.path.insert(0, str(ROOT / "scripts"))
    import agreement as script

    (level,) = (sweep / "models" / "level-0.5").iterdir()
    (blind,) = (sweep / "models" / "blind-0-0.7").iterdir()
    result = script.agreement([str(level), str(blind)], edges=True)
    table = result["edges"]
    shares = np.array(table["pixel_share"])
    assert shares.sum() == pytest.approx(1.0) and (shares > 0).sum() >= 5
    assert len(table["mse"]) == 3  # the noisy input, then the two runs
    for share in table["error_share"]:
        assert sum(share) == pytest.approx(1.0)
    for mse, total in zip(table["mse"][1:], result["mse"]):
        assert float(shares @ np.array(mse)) == pytest.approx(total, rel=1e-6)
    noisy, run = np.array(table["mse"][0]), np.array(table["mse"][1])
    # The tiny model has learned the background first: far from the ink it beats its input.
    assert run[-1] < 0.2 * noisy[-1]
    monkeypatch.setattr(
        script, "load_splits", lambda config: SimpleNamespace(image_shape=(8, 8, 3))
    )
    with pytest.raises(script.UserError, match="3-channel images"):
        script.agreement([str(level), str(blind)], edges=True)


def test_edge_rings_of_a_square_of_ink():
    """A 3x3 square of ink in a 7x7 image: its centre 2 deep, its other 8 pixels 1 deep, 16
    background pixels touch it (diagonals included) and the 24 of the border lie 2 away."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "scripts"))
    from agreement import RINGS, edge_errors

    clean = np.zeros((1, 7, 7, 1))
    clean[0, 2:5, 2:5] = 1.0
    output = clean.copy()
    output[0, 3, 3] = 0.5  # an error of 0.25 at the centre, ring -2
    table = edge_errors(clean, output[None])
    counts = dict(zip(RINGS, table[0]))
    assert counts == {-3: 0, -2: 1, -1: 8, 1: 16, 2: 24, 3: 0, 4: 0}
    assert dict(zip(RINGS, table[1]))[-2] == pytest.approx(0.25) and table[1].sum() == 0.25


def test_the_shift_average_of_the_identity_is_the_image(keras):
    import numpy as np

    sys.path.insert(0, str(ROOT / "scripts"))
    from agreement import shift_average

    images = np.random.default_rng(0).random((3, 6, 5, 1)).astype("float32")
    identity = keras.Sequential([keras.Input((6, 5, 1)), keras.layers.Identity()])
    np.testing.assert_allclose(shift_average(identity, images), images, atol=1e-7)


def test_a_sweep_is_not_taken_for_a_run_nor_a_run_for_a_sweep(sweep, tmp_path):
    import autoencoder as ae
    from autoencoder.denoise import run_sweep
    from autoencoder.evaluate import evaluate_run

    (model,) = (sweep / "models" / "level-0.2").iterdir()
    (first,) = (sweep / "models" / "blind-0-0.7").iterdir()  # sorted first, named as an example
    said = (
        f"{sweep}: a denoising sweep, not a run; pass one of its models (e.g. {first}), or go on "
        f"with the sweep: autoencoder denoise CONFIG --resume {sweep}"
    )
    with pytest.raises(UserError) as refused:
        evaluate_run(sweep)
    assert str(refused.value) == said
    # The API's caller is told the API's call, not the command's.
    with pytest.raises(UserError) as refused:
        ae.load_run(sweep)
    assert str(refused.value) == said.replace(
        f"autoencoder denoise CONFIG --resume {sweep}",
        f"ae.denoise_sweep(CONFIG, resume='{sweep}')",
    )
    result = cli("resume", sweep, "--set", "train.epochs=3")
    assert result.returncode == 2 and result.stderr == f"error: {said}\n"
    assert not (sweep / "checkpoints").exists()  # nothing of a run written into the sweep
    # And the other way: a model's own run folder is no sweep to resume.
    config = load_config(sweep / "config.yaml")
    with pytest.raises(UserError, match=r"a training run, not a denoising sweep; pass the"):
        run_sweep(config, resume=model)
    assert not (model / "models").exists()
    # Nothing there, or a folder that is no sweep's: said as a sweep's, not a run's, mistake.
    for folder, what in [
        (sweep / "nothing", "no such folder"),
        (sweep / "models", "a folder without the config.yaml a sweep writes"),
    ]:
        with pytest.raises(UserError) as refused:
            run_sweep(config, resume=folder)
        assert str(refused.value) == (
            f"--resume {folder}: {what}; pass the folder `autoencoder denoise` printed (results "
            f"and figures: ...), or leave --resume out to start a sweep"
        )


def test_going_on_with_a_sweep_names_its_own_command_and_keeps_its_models(sweep, monkeypatch):
    from autoencoder import denoise
    from autoencoder.denoise import run_sweep

    saved = (sweep / "config.yaml").read_text()
    go_on = f"autoencoder denoise {sweep / 'config.yaml'} --resume {sweep}"
    with pytest.raises(UserError) as refused:
        run_sweep(load_config(sweep / "config.yaml", ["seed=5"]), resume=sweep)
    assert str(refused.value) == (
        f"{sweep}: cannot go on with the sweep: the config differs from the sweep's in seed; "
        f"only train.epochs, train.minutes, denoise.blind_epochs and data.path may change "
        f"(`{go_on}`, with --set for those); start a new sweep for others"
    )
    (first,) = (sweep / "models" / "level-0.2").iterdir()
    with pytest.raises(UserError) as fewer:
        run_sweep(load_config(sweep / "config.yaml", ["train.epochs=1"]), resume=sweep)
    assert str(fewer.value) == (
        f"{first}: this model of the sweep has trained 2 epochs, more than train.epochs=1; give "
        f"at least 2 to go on with the sweep"
    )

    def stopped(*args, **kwargs):  # Ctrl-C while the first model trains on
        raise KeyboardInterrupt("after 2 completed epoch(s); the run is kept: ...")

    monkeypatch.setattr(denoise, "train", stopped)
    with pytest.raises(KeyboardInterrupt) as interrupted:
        run_sweep(load_config(sweep / "config.yaml", ["train.epochs=3"]), resume=sweep)
    assert str(interrupted.value) == (
        f"the sweep is kept, each model at its last completed epoch: go on with `{go_on}`"
    )
    assert (sweep / "config.yaml").read_text() == saved  # nothing of the refused calls written
    result = cli("denoise", sweep)
    assert result.returncode == 2 and result.stderr == (
        f"error: {sweep}: a denoising sweep's folder, not a config file; `{go_on}` goes on with it\n"
    )


def test_more_epochs_on_going_on_train_the_finished_model_on(sweep):
    from autoencoder.denoise import run_sweep
    from autoencoder.runs import read_history

    (done,) = (sweep / "models" / "level-0.2").iterdir()
    (blind,) = (sweep / "models" / "blind-0-0.7").iterdir()
    stamp = (done / "model.keras").stat().st_mtime_ns
    assert len(read_history(blind)) == 3
    run_sweep(load_config(sweep / "config.yaml", ["denoise.blind_epochs=4"]), resume=sweep)
    assert [r["epoch"] for r in read_history(blind)] == [1, 2, 3, 4]  # on, not anew
    assert (done / "model.keras").stat().st_mtime_ns == stamp  # its epochs unchanged: reused
    assert load_config(sweep / "config.yaml").denoise.blind_epochs == 4
    assert "for 4 epochs (the per-level models 2 each)" in (sweep / "results.md").read_text()


def test_a_moved_sweep_goes_on_where_it_now_is(sweep, tmp_path):
    import shutil

    from autoencoder.denoise import run_sweep
    from autoencoder.runs import read_history

    moved = tmp_path / "moved"
    shutil.copytree(sweep, moved)  # a copy: the fixture's sweep stays for the other tests
    (here,) = (moved / "models" / "level-0.5").iterdir()
    (there,) = (sweep / "models" / "level-0.5").iterdir()
    stamp = (there / "model.keras").stat().st_mtime_ns
    (here / "model.keras").unlink()  # as if killed before the end of training
    # Each model's config.yaml names the sweep's old folder as its output.
    run_sweep(load_config(moved / "config.yaml"), resume=moved)
    assert (here / "model.keras").is_file()
    assert [r["epoch"] for r in read_history(here)] == [1, 2]
    assert [p.name for p in (moved / "models" / "level-0.5").iterdir()] == [here.name]
    assert (there / "model.keras").stat().st_mtime_ns == stamp


@pytest.mark.parametrize(
    "where, said",
    [
        ("evaluate_sweep", "the sweep is kept, each model at its last completed epoch"),
        ("load_splits", "while reading the data; the sweep is as it was"),  # no model touched
    ],
)
def test_ctrl_c_while_a_sweep_scores_or_reads_says_how_to_go_on(sweep, monkeypatch, where, said):
    from autoencoder import denoise

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(denoise, where, stopped)
    with pytest.raises(KeyboardInterrupt) as interrupted:
        denoise.run_sweep(load_config(sweep / "config.yaml"), resume=sweep)
    assert str(interrupted.value) == (
        f"{said}: go on with `autoencoder denoise {sweep / 'config.yaml'} --resume {sweep}`"
    )


def test_data_noise_a_sweep_replaces_is_named(caplog):
    from autoencoder.denoise import warn_unused_noise

    caplog.set_level("WARNING")
    warn_unused_noise(load_config(ROOT / "configs/denoise_gaussian.yaml"))
    assert caplog.records == []  # a sweep's preset leaves data.noise out
    config = load_config(
        ROOT / "configs/unet_denoise.yaml", ["data.noise.kind=salt_pepper", "denoise.kind=mask"]
    )
    warn_unused_noise(config)
    assert [r.getMessage() for r in caplog.records] == [
        "data.noise (salt_pepper, level 0.4) is not used by `autoencoder denoise`: each model "
        "trains on mask noise at denoise.train_levels 0.2, 0.4, 0.6; set denoise.kind, "
        "denoise.clip, denoise.train_levels or denoise.blind instead"
    ]
