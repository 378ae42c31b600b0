"""Fuzzing the readers of user input: config files, --set strings, IDX files and .npz archives.

Whatever the input, each reader returns a valid result or raises UserError with one line per
mistake (at most five, then a count of the rest); never another exception, never a hang.
"""

import gzip
import io
import os
import re
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT
from hypothesis import HealthCheck, Phase, assume, example, given, settings
from hypothesis import strategies as st

from autoencoder import data
from autoencoder.config import Config, load_config, valid_keys
from autoencoder.errors import UserError

PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]  # no slow "explain"
# FUZZ_EXAMPLES=5000 for a deeper search than the suite's quick, repeatable one.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", 60)),
    deadline=None,
    derandomize="FUZZ_EXAMPLES" not in os.environ,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow],
)
# A hang fails the test instead of stalling the suite.
SECONDS_PER_TEST = int(os.environ.get("FUZZ_SECONDS", 120))


@pytest.fixture(autouse=True)
def time_cap():
    def hang(signum, frame):
        raise TimeoutError(f"a fuzz test ran over {SECONDS_PER_TEST} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(SECONDS_PER_TEST)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def outcome(call):
    """Run a reader: its result, or the UserError's message, checked by `refusal_lines`."""
    try:
        return call()
    except UserError as exc:
        refusal_lines(str(exc))
        return str(exc)


def refusal_lines(message: str) -> list[str]:
    """The mistake lines of a refusal: 1 to 5 single lines, then at most "... and N more"."""
    lines = message.split("\n")
    assert 1 <= len(lines) <= 6, message
    for line in lines:  # no empty line, none that a terminal would break (\r, \u2028, ...)
        assert line.strip() and line.splitlines() == [line], message
    if len(lines) == 6:
        assert re.fullmatch(r"\.\.\. and [1-9]\d* more mistakes?", lines[-1]), message
        return lines[:-1]
    assert not lines[-1].startswith("... and "), message
    return lines


def refused_by(result, *sources: str) -> bool:
    """Whether `result` is a refusal whose every mistake line starts with one of `sources`."""
    return isinstance(result, str) and all(
        line.startswith(sources) for line in refusal_lines(result)
    )


def in_tmp(name: str, content: bytes):
    """A fresh temporary folder holding one file; returns (folder handle, path)."""
    folder = tempfile.TemporaryDirectory()
    path = Path(folder.name) / name
    path.write_bytes(content)
    return folder, path


# ---------------------------------------------------------------------------------------------
# Config loader

# Real key names (so that examples reach deep into the sections) mixed with made-up ones.
KEYS = sorted(
    {
        k
        for loc in [
            (),
            ("data",),
            ("model",),
            ("train",),
            ("train", "optimizer"),
            ("model", "encoder"),
            ("model", "output"),
            ("data", "noise"),
        ]
        for k in valid_keys(loc)
    }
    | {"type", "filters", "strides", "padding"}
)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats()
    | text
    | st.sampled_from(
        [
            "mirror",
            "conv",
            "conv_transpose",
            "maxpool",
            "relu",
            "mnist",
            "same",
            "valid",
            "adam",
            "bce",
        ]
    )
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | text, inner, max_size=4)
    ),
    max_leaves=20,
)
sections = st.dictionaries(st.sampled_from(KEYS) | text, values, max_size=6)


@FUZZ
@given(sections)
def test_config_from_random_nested_yaml(raw):
    folder, path = in_tmp("c.yaml", yaml.safe_dump(raw, allow_unicode=True).encode())
    with folder:
        result = outcome(lambda: load_config(path))
    assert isinstance(result, Config) or refused_by(result, f"{path}: ")


@FUZZ
@given(st.binary(max_size=300) | text.map(str.encode))
def test_config_from_random_bytes(content):
    folder, path = in_tmp("c.yaml", content)
    with folder:
        result = outcome(lambda: load_config(path))
    assert isinstance(result, Config) or refused_by(result, f"{path}: ")


PRESET = (ROOT / "configs" / "quickstart.yaml").read_text()


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(PRESET)), st.integers(0, 8), text), max_size=4))
def test_config_from_a_mutated_preset(edits):
    content = PRESET
    for at, cut, insert in edits:
        content = content[:at] + insert + content[at + cut :]
    folder, path = in_tmp("c.yaml", content.encode())
    with folder:
        result = outcome(lambda: load_config(path))
    assert isinstance(result, Config) or refused_by(result, f"{path}: ")


dotted = st.lists(
    st.sampled_from(KEYS) | st.integers(0, 5).map(str) | text, min_size=1, max_size=4
).map(".".join)
overrides = (
    st.tuples(
        dotted,
        st.sampled_from(["=", ""]),
        text | values.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip()),
    ).map("".join)
    | text
)


@FUZZ
@given(st.lists(overrides, min_size=1, max_size=3))
def test_config_with_random_set_strings(items):
    result = outcome(lambda: load_config(None, items))
    assert isinstance(result, Config) or refused_by(result, "--set ", "defaults: ")


# ---------------------------------------------------------------------------------------------
# IDX reader


def idx_bytes(array):
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return (0x800 | array.ndim).to_bytes(4, "big") + dims + array.tobytes()


VALID_IDX = {
    "images": idx_bytes(np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)),
    "labels": idx_bytes(np.array([3, 1, 4], dtype=np.uint8)),
}


def mutate(content: bytes, edits) -> bytes:
    """Apply (position, bytes removed, bytes inserted) edits; positions wrap around."""
    for at, cut, insert in edits:
        at = at % (len(content) + 1)
        content = content[:at] + insert + content[at + cut :]
    return content


edits = st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(0, 16), st.binary(max_size=8)),
    min_size=1,
    max_size=4,
)


def check_idx(content: bytes):
    folder, path = in_tmp("train-images-idx3-ubyte", content)
    with folder:
        result = outcome(lambda: data.read_idx(path))
    if isinstance(result, str):
        assert result.startswith(f"{path}: ")
    else:
        assert isinstance(result, np.ndarray) and result.dtype == np.uint8


@FUZZ
@given(st.binary(max_size=200))
def test_idx_random_bytes(content):
    check_idx(content)
    check_idx(gzip.compress(content))


@FUZZ
@given(st.sampled_from(sorted(VALID_IDX)), st.booleans(), edits)
def test_idx_mutated_valid_file(kind, gz, changes):
    content = VALID_IDX[kind]
    check_idx(mutate(gzip.compress(content), changes) if gz else mutate(content, changes))
    if gz:
        check_idx(gzip.compress(mutate(content, changes)))


@FUZZ
@given(st.integers(0, 3), st.booleans(), edits)
def test_idx_set_with_one_mutated_file(which, gz, changes):
    """The four files together: images and labels checked against each other."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        contents = [VALID_IDX["images"], VALID_IDX["labels"]] * 2
        paths = []
        for i, (stem, content) in enumerate(zip(data.IDX_FILES, contents)):
            if i == which:
                content = mutate(content, changes)
            path = folder / (stem + (".gz" if gz else ""))
            path.write_bytes(gzip.compress(content) if gz else content)
            paths.append(path)
        result = outcome(lambda: data.load_idx(paths, "fuzz"))
    if isinstance(result, str):
        # Refused naming the mutated file, or its partner of the split it spoils.
        pair = {str(paths[which]), str(paths[which ^ 1])}
        assert any(name in result for name in pair), result
    else:
        assert isinstance(result, data.Raw)
        assert len(result.x_train) == len(result.y_train) and len(result.x_test) == len(
            result.y_test
        )


# ---------------------------------------------------------------------------------------------
# .npz reader


def npz_bytes(compressed=False, **arrays):
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


RNG = np.random.default_rng(0)
VALID_NPZ = {
    compressed: npz_bytes(
        compressed,
        x_train=RNG.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        y_train=np.array([0, 1, 2]),
        x_test=RNG.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        y_test=np.array([3, 9]),
    )
    for compressed in (False, True)
}


def check_npz(content: bytes):
    folder, path = in_tmp("d.npz", content)
    with folder:
        result = outcome(lambda: data.load_npz(path, "fuzz"))
    if isinstance(result, str):
        assert result.startswith(f"{path}"), result
    else:
        assert isinstance(result, data.Raw) and result.x_train.dtype == np.uint8


def test_valid_npz_files_load():
    for content in VALID_NPZ.values():
        folder, path = in_tmp("d.npz", content)
        with folder:
            assert len(data.load_npz(path, "fuzz").x_train) == 3


@FUZZ
@given(st.binary(max_size=300))
def test_npz_random_bytes(content):
    check_npz(content)
    check_npz(b"PK\x03\x04" + content)


@FUZZ
@given(st.booleans(), edits)
def test_npz_mutated_valid_file(compressed, changes):
    check_npz(mutate(VALID_NPZ[compressed], changes))


@FUZZ
@given(st.booleans(), st.integers(0, 10**6), st.integers(0, 255))
def test_npz_one_byte_changed(compressed, at, value):
    content = bytearray(VALID_NPZ[compressed])
    at %= len(content)
    assume(content[at] != value)
    content[at] = value
    check_npz(bytes(content))


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["x_train", "y_train", "x_test", "y_test", "other"]),
        st.sampled_from(["u1", "i8", "f4", "f8", "b1", "U3", "c8"]).flatmap(
            lambda dtype: st.lists(st.integers(0, 30), min_size=0, max_size=3).map(
                lambda shape: np.zeros(shape, dtype=dtype)
            )
        ),
        max_size=5,
    )
)
def test_npz_with_random_arrays(arrays):
    check_npz(npz_bytes(**arrays))


# ---------------------------------------------------------------------------------------------
# What fuzzing found, kept as plain cases


@pytest.mark.parametrize(
    "content, message",
    [
        ("train: " + "[" * 3000 + "]" * 3000, "not valid YAML: nested too deeply"),
        ("seed: 1" + "0" * 5000, "not valid YAML: a number with too many digits"),
        ("name: 2001-13-01", "not valid YAML: a value cannot be read: month must be in 1..12"),
        ("? [1]\n: 2\n", "line 1: found unhashable key"),
        ('train: [{"\\n": 1}]', "train: must be a mapping of keys, got [{'\\n': 1}]"),
        (
            '"\\n": 1',
            "\\n: unknown key; valid keys here: name, seed, data, model, train, denoise, anomaly, tune, output",
        ),
    ],
)
def test_config_found_by_fuzzing(tmp_path, content, message):
    path = tmp_path / "c.yaml"
    path.write_text(content)
    assert outcome(lambda: load_config(path)) == f"{path}: {message}"


@pytest.mark.parametrize(
    "item, message",
    [
        (
            "activation=\n",
            "--set activation=\\n: activation: unknown key; valid keys here: name, "
            "seed, data, model, train, denoise, anomaly, tune, output",
        ),
        (
            "\u00b2=1",
            "--set \u00b2=1: \u00b2: unknown key; valid keys here: name, seed, data, model, "
            "train, denoise, anomaly, tune, output",
        ),
    ],
)
def test_set_found_by_fuzzing(item, message):
    assert outcome(lambda: load_config(None, [item])) == message


def test_npz_claiming_an_unknown_compression_method(tmp_path):
    content = bytearray(VALID_NPZ[False])
    # The first central directory entry's compression method: 99 (AES), which zipfile lacks.
    content[content.index(b"PK\x01\x02") + 10] = 99
    path = tmp_path / "d.npz"
    path.write_bytes(bytes(content))
    assert outcome(lambda: data.load_npz(path, "fuzz")) == (
        f"{path}: not a readable .npz file (That compression method is not supported)"
    )


# ---------------------------------------------------------------------------------------------
# Config and data shape pairs: agreement is checked before anything is written


shapes = st.tuples(st.integers(8, 40), st.integers(8, 40), st.sampled_from([1, 3]))


@FUZZ
@given(planned=shapes, images=shapes)
@example(planned=(25, 25, 3), images=(25, 25, 3))  # agreeing pairs are rare among random ones
@example(planned=(28, 28, 1), images=(28, 28, 3))
def test_a_config_and_data_shape_pair_is_planned_or_refused_before_a_run_exists(
    tmp_path_factory, planned, images
):
    from autoencoder.data.images import write_png
    from autoencoder.pipeline import train_run

    root = tmp_path_factory.mktemp("pair")
    folder = root / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        write_png(folder / f"{k}.png", rng.integers(0, 256, images, dtype=np.uint8))
    h, w, c = planned
    config = load_config(
        None,
        [
            "data.dataset=folder",
            f"data.path={folder}",
            f"model.input_shape=[{h}, {w}, {c}]",
            "model.encoder=[{filters: 2}]",
            f"output={root / 'out'}",
        ],
    )
    resolved = None
    try:
        resolved = data.resolve_input_shape(config)
    except UserError as exc:
        message = str(exc)
        assert message.count("\n") == 0 and message.startswith("model.input_shape is ")
        assert f"{h}x{w}x{c}" in message and "x".join(map(str, images)) in message
        with pytest.raises(UserError, match="model.input_shape is "):
            train_run(config)  # refused first: no run directory, nothing written
        assert not (root / "out").exists()
    assert (resolved is None) == (tuple(planned) != tuple(images))
