"""The command line: several config mistakes at once, argparse checks, global flags."""

import logging

import pytest

from autoencoder.cli import main


def test_several_config_mistakes_are_one_error_line_each(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: 0, batch_sise: 64}\nmodel: {encoder: [{nb_filter: 8}]}\n")
    assert main(["shapes", str(bad)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == "" and len(lines) == 3 and all(x.startswith("error: ") for x in lines)
    assert {line.split(": ")[2] for line in lines} == {
        "model.encoder[0]",
        "train.batch_sise",
        "train.epochs",
    }


@pytest.mark.parametrize(
    "value, why", [("0", "must be at least 1, got 0"), ("x", "expected a whole number, got 'x'")]
)
def test_bench_epochs_are_checked_by_argparse(capsys, value, why):
    with pytest.raises(SystemExit) as info:
        main(["bench", "configs/seed_tutorial.yaml", "--epochs", value])
    assert info.value.code == 2
    assert f"argument --epochs: {why}" in capsys.readouterr().err


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_quiet_and_debug_work_before_or_after_the_command(capsys, before):
    def argv(flag, *rest):
        return [flag, *rest] if before else [*rest, flag]

    package = logging.getLogger("autoencoder")
    assert main(argv("--quiet", "shapes", "configs/quickstart.yaml")) == 0
    assert package.level == logging.WARNING  # progress and messages off, warnings on
    assert main(["shapes", "configs/quickstart.yaml"]) == 0
    assert package.level == logging.INFO
    assert capsys.readouterr().out.count("parameters:") == 2
    # --debug shows the traceback behind the one line, wherever it is given.
    assert main(argv("--debug", "shapes", "no-such.yaml")) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert (
        err.splitlines()[-1]
        == "error: no-such.yaml: config file not found; check the path (presets are in configs/)"
    )
    assert main(["shapes", "no-such.yaml"]) == 2
    assert (
        capsys.readouterr().err
        == "error: no-such.yaml: config file not found; check the path (presets are in configs/)\n"
    )


def test_shapes_says_when_train_would_refuse_the_given_shape_and_null_plans_the_datas(capsys):
    other = ["--set", "data.image_size=[32, 32]", "--set", "data.color=rgb"]
    assert main(["shapes", "configs/quickstart.yaml", *other]) == 0
    captured = capsys.readouterr()
    assert "28x28x1 ->" in captured.out  # planned as given
    assert captured.err.splitlines() == [
        "note: planned as given, 28x28x1; the data gives the model 32x32x3, so train refuses "
        "this config (--set model.input_shape=null plans the data's)"
    ]
    unset = ["--set", "model.input_shape=null"]
    assert main(["shapes", "configs/quickstart.yaml", *other, *unset]) == 0
    captured = capsys.readouterr()
    assert "32x32x3 ->" in captured.out and "28x28x1 ->" not in captured.out
    assert captured.err == ""


def test_shapes_of_a_folder_says_its_size_is_the_first_images(tmp_path, photos, capsys):
    from conftest import write_photo_crops

    write_photo_crops(tmp_path / "crops", photos, n=4, size=25)
    folder = ["--set", "data.dataset=folder", "--set", f"data.path={tmp_path / 'crops'}"]
    unset = ["--set", "model.input_shape=null"]
    assert main(["shapes", "configs/quickstart.yaml", *folder, *unset]) == 0
    captured = capsys.readouterr()
    assert "25x25x3 ->" in captured.out
    assert captured.err.splitlines()[-1] == (
        "note: 25x25 images, as the folder's first image gives them; train reads every image "
        "and refuses a folder of mixed sizes (data.image_size: [H, W] resizes them all)"
    )
    sized = ["--set", "data.image_size=[24, 24]"]
    assert main(["shapes", "configs/quickstart.yaml", *folder, *unset, *sized]) == 0
    assert "first image" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, said",
    [
        (
            ["trian", "configs/quickstart.yaml"],
            "autoencoder: argument COMMAND: invalid choice: 'trian'; did you mean 'train'? "
            "(`autoencoder --help` lists the options)",
        ),
        (
            ["bench", "configs/quickstart.yaml", "--epochs", "0"],
            "autoencoder bench: argument --epochs: must be at least 1, got 0 (`autoencoder "
            "bench --help` lists the options)",
        ),
        # A flag the subcommand does not take: its own help lists what it does take.
        (
            ["train", "configs/quickstart.yaml", "--epochs", "3"],
            "autoencoder train: unrecognized arguments: --epochs 3 (`autoencoder train --help` "
            "lists the options)",
        ),
    ],
    ids=["misspelt command", "bad value", "unknown flag"],
)
def test_a_mistaken_argument_is_one_line_with_the_closest_choice(capsys, argv, said):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert capsys.readouterr().err == f"error: {said}\n"
