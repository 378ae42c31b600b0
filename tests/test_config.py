"""Config loading, validation messages, --set overrides and the saved-config round trip."""

import subprocess
import sys

import pytest
from conftest import ROOT, assert_error, cli

from autoencoder.config import Config, dump_config, load_config
from autoencoder.errors import UserError


def write(tmp_path, text, name="x.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path, overrides=()):
    with pytest.raises(UserError) as info:
        load_config(path, overrides)
    return str(info.value)


def test_defaults_live_in_one_place():
    c = load_config(None)
    assert c.name == "run" and c.seed == 0 and c.output == "outputs"
    assert c.data.dataset == "mnist_sample" and c.data.validation_split == 0.1
    assert c.model.input_shape == (28, 28, 1)
    assert [b.filters for b in c.model.encoder] == [32, 16, 8]
    assert c.model.decoder == "mirror"
    assert c.train.loss == "bce" and c.train.optimizer.name == "adam"


def test_yaml_overrides_defaults_and_set_overrides_yaml(tmp_path):
    path = write(tmp_path, "name: a\ntrain: {epochs: 3, batch_size: 32}\ndata: {limit: 500}\n")
    c = load_config(path, ["train.epochs=5", "data.classes=[1, 7]", "name=b"])
    assert (c.name, c.train.epochs, c.train.batch_size) == ("b", 5, 32)
    assert c.data.limit == 500 and c.data.classes == [1, 7]


def test_set_into_list_item_keeps_the_rest(tmp_path):
    c = load_config(None, ["model.encoder.1.filters=64"])
    assert [b.filters for b in c.model.encoder] == [32, 64, 8]


def test_kernel_size_int_or_pair():
    c = load_config(None, ["model.encoder.0.kernel_size=[3, 5]", "model.encoder.1.kernel_size=5"])
    assert c.model.encoder[0].kernel_size == (3, 5)
    assert c.model.encoder[1].kernel_size == (5, 5)


def test_a_noise_level_is_a_number_or_a_range(tmp_path):
    c = load_config(None, ["data.noise={level: 0.3}", "denoise.blind=[0, 0.7]"])
    assert c.data.noise.level == 0.3 and c.denoise.blind == (0.0, 0.7)
    c = load_config(None, ["data.noise={kind: mask, level: [0.1, 1]}"])
    assert c.data.noise.level == (0.1, 1.0)
    assert load_config(None).denoise.blind is None  # no blind model unless asked
    path = write(tmp_path, dump_config(c))
    assert "level: [0.1, 1.0]" in path.read_text()
    assert load_config(path) == c


def test_minutes_take_whole_or_decimal_numbers():
    assert load_config(None, ["train.minutes=20"]).train.minutes == 20
    assert load_config(None, ["train.minutes=0.5"]).train.minutes == 0.5
    assert Config().train.minutes is None


def test_dump_round_trips(tmp_path):
    c = load_config(None, ["train.epochs=7", "model.latent_dim=16", "data.classes=[3]"])
    again = load_config(write(tmp_path, dump_config(c)))
    assert again == c


def test_a_dict_is_a_config_like_a_file():
    raw = {"train": {"epochs": 3}, "model": {"encoder": [{"filters": 4}]}}
    c = load_config(raw, ["model.encoder.0.filters=6"])
    assert (c.train.epochs, c.model.encoder[0].filters) == (3, 6)
    assert raw["model"]["encoder"][0]["filters"] == 4  # the caller's dict is left as it was


def test_a_dict_s_mistakes_name_config_where_a_file_would_be():
    assert error_of({"train": {"epoch": 3}}) == (
        "config: train.epoch: unknown key; did you mean 'epochs'?"
    )
    assert error_of({"train": {"epochs": 2}}, ["train.epochs=0"]) == (
        "--set train.epochs=0: train.epochs: must be a positive integer, got 0"
    )


# The message after "<file>: " (or "--set <item>: " when the case is an override).
def test_a_folder_given_for_a_config_says_which_file_to_give(tmp_path):
    run_dir = tmp_path / "outputs" / "tiny" / "20990101-000000"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("name: tiny\n")
    assert error_of(run_dir) == (
        f"{run_dir}: a run directory, not a config file; `autoencoder resume {run_dir}` "
        f"continues the run, or pass {run_dir / 'config.yaml'} to start a new one from its config"
    )
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "b.yaml").write_text("name: b\n")
    (tmp_path / "configs" / "a.yml").write_text("name: a\n")
    assert error_of(tmp_path / "configs") == (
        f"{tmp_path / 'configs'}: a folder, not a config file; pass a YAML file, e.g. "
        f"{tmp_path / 'configs' / 'a.yml'}"
    )


@pytest.mark.parametrize(
    "text, overrides, expected",
    [
        ("train: {epochs: -3}", [], "train.epochs: must be a positive integer, got -3"),
        ("train: {epoch: 3}", [], "train.epoch: unknown key; did you mean 'epochs'?"),
        ("trian: {epochs: 3}", [], "trian: unknown key; did you mean 'train'?"),
        ("train: {epochs: five}", [], "train.epochs: must be an integer, got 'five'"),
        ("train: {epochs: 2.5}", [], "train.epochs: must be an integer, got 2.5"),
        (
            "data: {validation_split: 1.5}",
            [],
            "data.validation_split: must be less than 1, got 1.5",
        ),
        ("data: {validation_split: 1}", [], "data.validation_split: must be less than 1, got 1"),
        (
            "data: {validation_split: 0.0}",
            [],
            "data.validation_split: must be greater than 0, got 0.0",
        ),
        (
            "data: {validation_split: -0.1}",
            [],
            "data.validation_split: must be greater than 0, got -0.1",
        ),
        (
            "data: {dataset: mnst}",
            [],
            "data.dataset: must be 'mnist', 'fashion_mnist', 'mnist_sample', 'cifar10', 'photos' "
            "or 'folder', got 'mnst'",
        ),
        (
            "data: {classes: [1, 12]}",
            [],
            "data.classes: class 12 is not one of mnist_sample's classes 0 to 9",
        ),
        (
            "data: {classes: []}",
            [],
            "data.classes: must list at least one class, or be left out for all",
        ),
        (
            "model: {encoder: [{filters: 0}]}",
            [],
            "model.encoder[0].filters: must be a positive integer, got 0",
        ),
        (
            "model: {encoder: [{filters: 8, activation: relux}]}",
            [],
            "model.encoder[0].activation: unknown activation 'relux'; did you mean 'relu'?",
        ),
        (
            "model: {encoder: [{filters: 8, kernel_size: [1, 2, 3]}]}",
            [],
            "model.encoder[0].kernel_size: must be a positive integer or a pair [h, w] of them, got "
            "[1, 2, 3]",
        ),
        (
            "model: {encoder: [{nb_filter: 8}]}",
            [],
            "model.encoder[0]: 'nb_filter' is Keras 1 (Deconvolution2D era); use 'filters'",
        ),
        (
            "model: {decoder: [{filters: 8, border_mode: same}]}",
            [],
            "model.decoder[0]: 'border_mode' is Keras 1 (Deconvolution2D era); use 'padding'",
        ),
        (
            "model: {decoder: [{type: Deconvolution2D, filters: 8}]}",
            [],
            "model.decoder: block 0: type 'Deconvolution2D' is the old Keras layer name; use type: "
            "conv_transpose",
        ),
        (
            "model: {encoder: [{type: pool, filters: 8}]}",
            [],
            "model.encoder[0]: unknown encoder block type; use conv, residual, maxpool, avgpool "
            "or space_to_depth, got type 'pool'",
        ),
        ("model: {decoder: mirrror}", [], "model.decoder: must be 'mirror', got 'mirrror'"),
        # A block field named like a union tag keeps its place in the path.
        (
            "model: {encoder: [{type: maxpool, mirror: x}]}",
            [],
            "model.encoder[0].mirror: must be 'conv_transpose' or 'upsample', got 'x'",
        ),
        (
            "model: {conv: 3}",
            [],
            "model.conv: unknown key; valid keys here: kind, input_shape, encoder, latent_dim, "
            "skips, decoder, output",
        ),
        # Keras 1 words are looked for in encoder and decoder blocks only.
        (
            "model: {output: {border_mode: same}}",
            [],
            "model.output.border_mode: unknown key; valid keys here: activation, kernel_size, residual",
        ),
        (
            "model: {encoder: [{filters: 8, strides: 2, dilation_rate: 2}]}",
            [],
            "model.encoder[0]: strides [2, 2] together with dilation_rate [2, 2] is not supported by "
            "Keras; set one of them to 1",
        ),
        (
            "model: {decoder: [{filters: 8, strides: 2, output_padding: 2}]}",
            [],
            "model.decoder[0]: output_padding [2, 2] must be smaller than strides [2, 2] on every axis "
            "(Keras rule: output_padding < stride)",
        ),
        (
            "name: 'my run'",
            [],
            "name: must be a plain name (letters, digits, '_', '.', '-'), got 'my run'",
        ),
        (
            "tune: {timeout: 90 minutes}",
            [],
            "tune.timeout: must be a number and a unit, s, m or h (90s, 60m, 2h), got '90 minutes'",
        ),
        (
            "model: {encoder: []}",
            [],
            "model.encoder: must list at least 1 entry, got []",
        ),
        (
            "data: {noise: {level: [0.7, 0.2]}}",
            [],
            "data.noise.level: the range [0.7, 0.2] must go up: write [0.2, 0.7]",
        ),
        (
            "data: {noise: {level: [0.3, 0.3]}}",
            [],
            "data.noise.level: the range [0.3, 0.3] is empty: give low < high, or the number 0.3 "
            "for one level",
        ),
        (
            "data: {noise: {level: [-0.1, 0.5]}}",
            [],
            "data.noise.level: must be a number >= 0, or a range [low, high] of them with "
            "0 <= low < high, got [-0.1, 0.5]",
        ),
        (
            "data: {noise: {level: [0.1, 0.2, 0.3]}}",
            [],
            "data.noise.level: must be a number >= 0, or a range [low, high] of them with "
            "0 <= low < high, got [0.1, 0.2, 0.3]",
        ),
        (
            "data: {noise: {kind: salt_pepper, level: [0.2, 1.5]}}",
            [],
            "data.noise.level: salt_pepper levels are fractions (at most 1), got [0.2, 1.5]; give "
            "levels from 0 to 1",
        ),
        (
            "",
            ["denoise.blind=0.7"],
            "denoise.blind: must be a range [low, high] with 0 <= low < high, got 0.7",
        ),
        (
            "denoise: {kind: mask}",
            ["denoise.blind=[0, 1.2]"],
            "denoise.blind: mask levels are fractions (at most 1), got [0.0, 1.2]; give levels "
            "from 0 to 1",
        ),
        (
            "data: {noise: {level: 0.4, draw: triangular}}",
            [],
            "data.noise: draw triangular needs a range of levels, got level 0.4; give level as "
            "[low, high] or leave draw out",
        ),
        (
            "",
            ["denoise.blind_draw=triangular"],
            "denoise: blind_draw triangular needs a blind model: set denoise.blind to a range "
            "[low, high] or leave blind_draw out",
        ),
        (
            "",
            ["denoise.blind_epochs=24"],
            "denoise: blind_epochs 24 needs a blind model: set denoise.blind to a range "
            "[low, high] or leave blind_epochs out",
        ),
        ("", ["train.minutes=0"], "train.minutes: must be greater than 0, got 0.0"),
        (
            "train: {distribute: multi_worker}",
            ["train.minutes=20"],
            "train: minutes 20 cannot stop a multi_worker run (each worker's clock would stop it "
            "at a different step); leave minutes out and set train.epochs",
        ),
        ("", ["train.epochz=3"], "train.epochz: unknown key; did you mean 'epochs'?"),
        ("", ["trainx.epochs=3"], "trainx: unknown key; did you mean 'train'?"),
        ("", ["train.epochs.x=3"], "train.epochs is not a section"),
        ("", ["model.encoder.9.filters=3"], "model.encoder[9]: no such list item (the list has 3)"),
        ("", ["train.epochs=abc"], "train.epochs: must be an integer, got 'abc'"),
        ("", ["train.epochs"], "expected KEY=VALUE, e.g. --set train.epochs=5"),
        (
            "",
            ["train.epochs=[1"],
            "value '[1' is not valid YAML (expected ',' or ']', but got "
            "'<stream end>'); quote strings, e.g. --set name=my_run",
        ),
    ],
)
def test_bad_configs_give_one_line(tmp_path, text, overrides, expected):
    path = write(tmp_path, text)
    where = f"--set {overrides[0]}" if overrides else str(path)
    assert error_of(path, overrides) == f"{where}: {expected}"


def lines_of(path, overrides=()):
    """The refusal's lines, each checked to be a single line."""
    lines = error_of(path, overrides).split("\n")
    assert all(line and line.splitlines() == [line] for line in lines), lines
    return lines


def test_mistakes_in_two_sections_give_two_lines(tmp_path):
    path = write(tmp_path, "train: {epoch: 3}\nmodel: {latent_dim: 0}\n")
    assert lines_of(path) == [
        f"{path}: model.latent_dim: must be a positive integer, got 0",
        f"{path}: train.epoch: unknown key; did you mean 'epochs'?",
    ]


def test_each_line_names_its_own_source(tmp_path):
    path = write(tmp_path, "train: {epoch: 3}\n")
    assert lines_of(path, ["seed=-1"]) == [
        "--set seed=-1: seed: must be greater than or equal to 0, got -1",
        f"{path}: train.epoch: unknown key; did you mean 'epochs'?",
    ]


def test_every_keras1_word_is_its_own_line(tmp_path):
    text = (
        "model:\n"
        "  encoder: [{nb_filter: 8, subsample: 2}]\n"
        "  decoder: [{type: Deconvolution2D, filters: 8}]\n"
    )
    path = write(tmp_path, text)
    # Nothing more for these blocks: not the unknown keys, the missing filters, the unknown type.
    assert lines_of(path) == [
        f"{path}: model.encoder[0]: 'nb_filter' is Keras 1 (Deconvolution2D era); use 'filters'",
        f"{path}: model.encoder[0]: 'subsample' is Keras 1 (Deconvolution2D era); use 'strides'",
        f"{path}: model.decoder: block 0: type 'Deconvolution2D' is the old Keras layer name; "
        "use type: conv_transpose",
    ]


def test_other_mistakes_in_a_keras1_block_are_still_reported(tmp_path):
    path = write(tmp_path, "model: {encoder: [{nb_filter: 8, filtres: 8, activation: relux}]}\n")
    assert lines_of(path) == [
        f"{path}: model.encoder[0]: 'nb_filter' is Keras 1 (Deconvolution2D era); use 'filters'",
        f"{path}: model.encoder[0].activation: unknown activation 'relux'; did you mean 'relu'?",
        f"{path}: model.encoder[0].filtres: unknown key; did you mean 'filters'?",
    ]


def test_more_than_five_mistakes_end_with_a_count(tmp_path):
    text = (
        "name: 'a b'\nseed: -1\n"
        "train: {epochs: 0, batch_size: 0, loss: x, tensorboard: 3, mixed_precision: fast}\n"
    )
    path = write(tmp_path, text)
    assert lines_of(path) == [
        f"{path}: name: must be a plain name (letters, digits, '_', '.', '-'), got 'a b'",
        f"{path}: seed: must be greater than or equal to 0, got -1",
        f"{path}: train.epochs: must be a positive integer, got 0",
        f"{path}: train.batch_size: must be a positive integer, got 0",
        f"{path}: train.loss: must be 'bce', 'mse', 'mae', 'l1', 'charbonnier' or 'ssim_l1', got 'x'",
        "... and 2 more mistakes",
    ]


def test_six_mistakes_end_with_one_more(tmp_path):
    path = write(tmp_path, "data: {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6}\n")
    lines = lines_of(path)
    assert len(lines) == 6 and lines[-1] == "... and 1 more mistake"
    assert [line.split(": ")[1] for line in lines[:5]] == [f"data.{k}" for k in "abcde"]


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "a: 1\nb: [\n",
            "not valid YAML: line 3: expected the node content, but found '<stream end>'",
        ),
        (
            "- 1\n- 2\n",
            "a config must be a YAML mapping with sections such as name, seed, data, "
            "model, train; got a list",
        ),
        (
            "just words\n",
            "a config must be a YAML mapping with sections such as name, seed, data, "
            "model, train; got a str",
        ),
        # yaml.safe_load knows no Python tags, so nothing is ever imported or called.
        (
            "name: !!python/object/apply:os.system ['echo hi']\n",
            "line 1: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system'; configs are plain YAML and Python "
            "object tags are refused (yaml.safe_load)",
        ),
        (
            "seed: !!python/name:os.system\n",
            "line 1: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/name:os.system'; configs are plain YAML and Python object tags "
            "are refused (yaml.safe_load)",
        ),
    ],
    ids=["not_yaml", "list", "scalar", "python_object_apply", "python_name"],
)
def test_not_yaml_not_a_mapping_and_python_tags(tmp_path, text, expected):
    path = write(tmp_path, text)
    assert error_of(path) == f"{path}: {expected}"


def test_missing_config_file(tmp_path):
    path = tmp_path / "missing.yaml"
    assert (
        error_of(path) == f"{path}: config file not found; check the path (presets are in configs/)"
    )


@pytest.mark.parametrize(
    "text, overrides, expected",
    [
        (
            "a: 1\nb: [\n",
            [],
            "{path}: not valid YAML: line 3: expected the node content, but found '<stream end>'",
        ),
        (
            "- 1\n",
            [],
            "{path}: a config must be a YAML mapping with sections such as name, seed, "
            "data, model, train; got a list",
        ),
        ("train: {epoch: 3}\n", [], "{path}: train.epoch: unknown key; did you mean 'epochs'?"),
        ("train: {epochs: five}\n", [], "{path}: train.epochs: must be an integer, got 'five'"),
        (
            "model: {encoder: [{filters: 0}]}\n",
            [],
            "{path}: model.encoder[0].filters: must be a positive integer, got 0",
        ),
        (
            "",
            ["data.validation_split=1.0"],
            "--set data.validation_split=1.0: data.validation_split: must be less than 1, got 1.0",
        ),
        (
            "",
            ["train.epochz=3"],
            "--set train.epochz=3: train.epochz: unknown key; did you mean 'epochs'?",
        ),
        (
            "",
            ["train.epochs=[1"],
            "--set train.epochs=[1: value '[1' is not valid YAML (expected "
            "',' or ']', but got '<stream end>'); quote strings, e.g. --set "
            "name=my_run",
        ),
        (
            "name: !!python/object/apply:os.system ['echo hi']\n",
            [],
            "{path}: line 1: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system'; configs are plain YAML and Python "
            "object tags are refused (yaml.safe_load)",
        ),
    ],
    ids=[
        "not_yaml",
        "not_a_mapping",
        "unknown_key",
        "wrong_type",
        "zero_filters",
        "set_out_of_range",
        "set_unknown_path",
        "set_unparsable",
        "python_tag",
    ],
)
def test_train_cli_refuses_bad_configs_with_one_line_and_status_2(
    tmp_path, capsys, text, overrides, expected
):
    """`autoencoder train` checks the config before TensorFlow loads and before any run dir."""
    from autoencoder.cli import main

    path = write(tmp_path, text)
    sets = [arg for item in overrides for arg in ("--set", item)]
    status = main(["train", str(path), *sets, "--set", f"output={tmp_path / 'out'}"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err == f"error: {expected.format(path=path)}\n" and captured.out == ""
    assert not (tmp_path / "out").exists()


def test_presets_load_and_plan_a_model_that_gives_back_its_input():
    from autoencoder.api import plan

    for path in sorted((ROOT / "configs").glob("*.yaml")):
        text = path.read_text()
        assert text.startswith("#"), f"{path.name} must open with a comment"
        config = load_config(path)
        assert config.name == path.stem, path.name  # its runs are found under its own name
        layers = plan(config).layers
        assert layers[-1].output_shape == layers[0].input_shape, path.name
        assert layers[0].input_shape in {(28, 28, 1), (32, 32, 3)}, path.name


def test_cli_bad_config_exits_2_with_one_line(tmp_path):
    path = write(tmp_path, "train: {epochs: -3}\n")
    assert_error(cli("train", path), f"{path}: train.epochs: must be a positive integer, got -3")


def test_cli_debug_shows_traceback(tmp_path):
    path = write(tmp_path, "train: {epochs: -3}\n")
    result = cli("train", path, "--debug")
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_help_does_not_import_tensorflow():
    code = (
        "import sys; from autoencoder.cli import build_parser; build_parser(); "
        "import autoencoder.config; print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
    for cmd in (
        ["--help"],
        ["train", "--help"],
        ["shapes", "--help"],
        ["data", "--help"],
        ["evaluate", "--help"],
        ["plot", "--help"],
    ):
        result = cli(*cmd)
        assert result.returncode == 0 and "usage: autoencoder" in result.stdout


def test_mixed_precision_on_off_survive_yaml(tmp_path):
    """YAML 1.1 reads bare on/off as booleans; the words are what the user meant."""
    path = tmp_path / "c.yaml"
    path.write_text("train: {mixed_precision: off}\n")
    assert load_config(path).train.mixed_precision == "off"
    assert load_config(path, ["train.mixed_precision=on"]).train.mixed_precision == "on"
    assert load_config(None, ["train.mixed_precision=auto"]).train.mixed_precision == "auto"
    with pytest.raises(UserError, match="must be 'auto', 'on' or 'off', got 'fast'"):
        load_config(None, ["train.mixed_precision=fast"])


def test_a_null_input_shape_is_left_out_so_the_data_gives_it():
    base = ["data.image_size=[32, 32]", "data.color=rgb"]
    given = load_config("configs/quickstart.yaml", base)
    assert given.model.input_shape == (28, 28, 1)  # the preset's own, kept
    unset = load_config("configs/quickstart.yaml", [*base, "model.input_shape=null"])
    assert unset.model.input_shape == (32, 32, 3)
    assert load_config({"model": {"input_shape": None}}).model.input_shape == (28, 28, 1)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("[32, 32, 3, 1]", "model.input_shape: must list at most 3 entries, got [32, 32, 3, 1]"),
        ("[32, 32]", "model.input_shape[2]: is missing: the list needs at least 3 entries"),
    ],
)
def test_a_shape_of_the_wrong_length_is_said_in_plain_words(value, expected):
    with pytest.raises(UserError) as refused:
        load_config(None, [f"model.input_shape={value}"])
    assert str(refused.value) == f"--set model.input_shape={value}: {expected}"


def test_one_value_where_a_list_is_wanted_shows_the_list():
    with pytest.raises(UserError) as refused:
        load_config(None, ["anomaly.normal=3"])
    assert str(refused.value) == (
        "--set anomaly.normal=3: anomaly.normal: must be a list, e.g. [3], got 3"
    )


@pytest.mark.parametrize(
    ("kind", "effect"),
    [
        ("cosine", "cosine would raise the rate to it"),
        ("plateau", "plateau would never lower the rate"),
    ],
)
def test_min_lr_above_the_learning_rate_is_refused(kind, effect):
    sets = [f"train.schedule.kind={kind}", "train.schedule.min_lr=0.01"]
    assert error_of(None, sets) == (
        f"--set train.schedule.min_lr=0.01: train: schedule.min_lr 0.01 is above "
        f"optimizer.learning_rate 0.001, so {effect}; give min_lr below the learning rate "
        f"(e.g. 0.00001)"
    )
    # The constant rate has no use for min_lr, and a min_lr below the rate is what it is for.
    assert load_config(None, sets[1:]).train.schedule.min_lr == 0.01
    below = load_config(None, [sets[0], "train.schedule.min_lr=0.0001"])
    assert below.train.schedule.min_lr == 0.0001


@pytest.mark.parametrize("fit", ["crop", "pad"])
def test_fit_without_an_image_size_is_refused(fit):
    assert error_of(None, [f"data.fit={fit}"]) == (
        f"--set data.fit={fit}: data: data.fit {fit} brings images to data.image_size, which is "
        f"left out, so the images keep their own size; set data.image_size: [H, W] or leave fit "
        f"out"
    )
    sized = load_config(None, [f"data.fit={fit}", "data.image_size=20"])
    assert (sized.data.fit, sized.model.input_shape) == (fit, (20, 20, 1))
