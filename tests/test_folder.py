"""A folder of image files as a dataset: layouts, classes, sizes, colour, bad files, cache, stream."""

import json
import logging

import numpy as np
import pytest
from conftest import assert_error, cli, write_config, write_digits, write_photo_crops

from autoencoder import data
from autoencoder.config import load_config
from autoencoder.data import folder, images
from autoencoder.errors import UserError


def folder_config(path, *extra):
    return load_config(None, ["data.dataset=folder", f"data.path={path}", *extra])


def error_of(cfg):
    with pytest.raises(UserError) as info:
        data.load_splits(cfg)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------
# Layouts and labels


def test_class_folders_of_png_and_jpeg_digits(tmp_path, digits):
    x, y = digits
    root = write_digits(tmp_path / "d", x, y, jpeg_every=5)
    s = data.load_splits(folder_config(root))
    assert s.source == f"data.path: 300 image files in {root}"
    assert s.class_names == tuple(str(d) for d in range(10))
    assert (s.count("train"), s.count("val"), s.count("test")) == (243, 27, 30)
    assert s.image_shape == (28, 28, 1) and s.pixels("train").dtype == np.uint8
    assert not s.streamed  # 300 small images fit the cache budget
    # Every image, PNG exactly and JPEG nearly, is the digit of its file, labelled by its folder.
    by_name = {}
    for split in ("train", "val", "test"):
        for pixels, label in zip(s.pixels(split), s.labels(split)):
            by_name.setdefault(int(label), []).append(pixels[..., 0])
    assert sorted(by_name) == sorted(set(y.tolist()))
    assert sum(len(v) for v in by_name.values()) == 300
    for label, found in by_name.items():
        expected = x[y == label].astype(int)
        best = [np.abs(expected - f).mean(axis=(1, 2)).min() for f in found]
        assert max(best) < 3 and np.median(best) == 0  # PNGs exact, JPEGs within a few levels
    # The test split is drawn with a fixed seed: another config.seed moves validation only.
    other = data.load_splits(folder_config(root, "seed=5"))
    assert sorted(other.pixels("test").sum(axis=(1, 2, 3))) == sorted(
        s.pixels("test").sum(axis=(1, 2, 3))
    )
    assert not np.array_equal(np.sort(other.y_val), np.sort(s.y_val)) or not np.array_equal(
        other.pixels("val"), s.pixels("val")
    )


def test_train_val_test_folders_are_the_splits(tmp_path, digits):
    x, y = digits
    for split, part in (
        ("train", slice(0, 200)),
        ("val", slice(200, 240)),
        ("Test", slice(240, 300)),
    ):
        write_digits(tmp_path / "d" / split, x[part], y[part])
    s = data.load_splits(folder_config(tmp_path / "d"))
    assert (s.count("train"), s.count("val"), s.count("test")) == (200, 40, 60)
    np.testing.assert_array_equal(
        np.bincount(s.y_test, minlength=10), np.bincount(y[240:], minlength=10)
    )
    assert s.report["splits"] == "val/ folder, test/ folder"


def test_train_and_test_folders_cut_validation_from_train(tmp_path, digits):
    x, y = digits
    write_digits(tmp_path / "d" / "train", x[:250], y[:250])
    write_digits(tmp_path / "d" / "test", x[250:], y[250:])
    (tmp_path / "d" / "README.txt").write_text("not an image")
    s = data.load_splits(folder_config(tmp_path / "d", "data.validation_split=0.2"))
    assert (s.count("train"), s.count("val"), s.count("test")) == (200, 50, 50)
    assert s.report["splits"] == "validation_split 0.2 (seed 0), test/ folder"


def test_images_beside_the_split_folders_are_named_not_dropped_silently(tmp_path, digits, caplog):
    x, y = digits
    write_digits(tmp_path / "d" / "train", x[:100], y[:100])
    write_digits(tmp_path / "d" / "valid", x[100:120], y[100:120])  # not val/ nor validation/
    images.write_png(tmp_path / "d" / "loose.png", x[120][..., None])
    (tmp_path / "d" / "notes.txt").write_text("not an image")
    s = data.load_splits(folder_config(tmp_path / "d", "data.validation_split=0.2"))
    assert s.count("train") + s.count("val") + s.count("test") == 100
    warned = [
        r.getMessage() for r in caplog.records if "beside its split folders" in r.getMessage()
    ]
    assert warned == [
        f"data.path {tmp_path / 'd'}: loose.png, valid/ (20 images) beside its split folders, "
        f"left out: only train/, val/ (or validation/) and test/ are read; move the images into "
        f"one, or rename the folder"
    ]


def test_images_without_class_folders_are_one_class(tmp_path, digits):
    x, _ = digits
    root = tmp_path / "plain"
    root.mkdir()
    for i in range(20):
        images.write_png(root / f"{i}.png", x[i][..., None])
    s = data.load_splits(folder_config(root))
    assert s.class_names == ("plain",)
    assert set(np.concatenate([s.y_train, s.y_val, s.y_test]).tolist()) == {0}
    assert s.count("train") + s.count("val") + s.count("test") == 20


def test_classes_by_name_and_limit(tmp_path, digits):
    x, y = digits
    root = write_digits(tmp_path / "d", x, y)
    s = data.load_splits(folder_config(root, "data.classes=['3', '7']", "data.limit=40"))
    assert s.count("train") + s.count("val") == 40
    assert set(np.concatenate([s.y_train, s.y_val, s.y_test]).tolist()) == {3, 7}
    assert error_of(folder_config(root, "data.classes=[cat]")) == (
        f"data.classes: 'cat' is not a class of data.path {root}; its classes: "
        "0, 1, 2, 3, 4, 5, 6, 7, 8, 9"
    )


# ---------------------------------------------------------------------------------------------
# Sizes and colour


def write_mixed(root, x, photos):
    """20 grey digits of 28x28 in digits/ and 10 colour photo crops of 30x25 in photos/."""
    (root / "digits").mkdir(parents=True)
    (root / "photos").mkdir()
    for i in range(20):
        images.write_png(root / "digits" / f"{i:02d}.png", x[i][..., None])
    for i in range(10):
        images.write_png(root / "photos" / f"{i:02d}.png", photos[0][i * 30 : i * 30 + 30, :25])
    return root


def test_mixed_sizes_are_refused_naming_two_files_and_the_key(tmp_path, digits, photos):
    root = write_mixed(tmp_path / "m", digits[0], photos)
    assert error_of(folder_config(root)) == (
        f"data.path {root}: images differ in size (H x W): {root}/digits/00.png is 28x28, "
        f"{root}/photos/00.png is 30x25; set data.image_size: [H, W] (with data.fit: resize, crop "
        f"or pad) to bring them to one size"
    )


def test_mixed_colour_is_refused_and_color_reads_them_alike(tmp_path, digits, photos):
    root = write_mixed(tmp_path / "m", digits[0], photos)
    assert error_of(folder_config(root, "data.image_size=[28, 28]")) == (
        f"data.path {root}: images differ in colour: {root}/digits/00.png is greyscale, "
        f"{root}/photos/00.png is RGB; set data.color: rgb (or grayscale) to read them all alike"
    )
    for fit in ("resize", "crop", "pad"):
        cfg = folder_config(root, "data.image_size=[28, 28]", "data.color=rgb", f"data.fit={fit}")
        s = data.load_splits(cfg)
        assert s.image_shape == (28, 28, 3)
        assert cfg.model.input_shape == (28, 28, 3)  # known from the config: no file read
        found = s.report["stored"]
        assert found[(28, 28, 3)] == 20 and found[(30, 25, 3)] == 10  # grey read as RGB


def test_fit_modes_follow_keras(photos):
    tile = photos[0][:60, :90]  # 60x90, aspect 2:3
    # crop: the centred 60x60 window, then resized; pad: 90x90 with black bands, then resized.
    cropped = images.fit_image(tile, (30, 30), "crop")
    np.testing.assert_allclose(
        cropped.astype(int), images.fit_image(tile[:, 15:75], (30, 30), "resize"), atol=0
    )
    padded = images.fit_image(tile, (30, 30), "pad")
    assert padded.shape == (30, 30, 3) and padded[:4].max() == 0 and padded[-4:].max() == 0
    assert images.fit_image(tile, (30, 45), "crop").shape == (30, 45, 3)
    assert images.fit_image(tile, (60, 90), "pad") is tile  # already that size: untouched


def test_rgb_to_grayscale_is_pillows_luma(photos):
    from PIL import Image

    from autoencoder.data.splits import luma

    crop = photos[1][:50, :50]
    expected = np.asarray(Image.fromarray(crop).convert("L"))
    np.testing.assert_array_equal(luma(crop)[..., 0], expected)


# ---------------------------------------------------------------------------------------------
# Bad input: one line each, before anything is written


def test_unreadable_files_are_refused_with_the_first_and_the_count(tmp_path, digits, caplog):
    x, y = digits
    root = write_digits(tmp_path / "d", x[:60], y[:60])
    cut = sorted(root.glob("*/*.png"))
    for path in cut[:3]:
        path.write_bytes(path.read_bytes()[:40])
    assert error_of(folder_config(root)).startswith(f"{cut[0]}: not a readable image (")
    assert error_of(folder_config(root)).endswith(
        "(3 of 60 image files cannot be read; fix or remove them, or set data.skip_bad: true to "
        "skip them)"
    )
    with caplog.at_level(logging.WARNING, logger="autoencoder"):
        s = data.load_splits(folder_config(root, "data.skip_bad=true"))
    assert s.count("train") + s.count("val") + s.count("test") == 57
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"data.skip_bad: skipped 3 of 60 image files that cannot be read; the first: {cut[0]}: "
    )


def test_each_bad_folder_is_one_line(tmp_path, digits, monkeypatch):
    from PIL import Image

    x, _ = digits
    empty = tmp_path / "empty"
    empty.mkdir()
    assert error_of(folder_config(empty)) == (
        f"data.path {empty}: the folder is empty; put image files (PNG, JPEG, BMP or GIF) in it, "
        f"in class sub-folders if they have classes"
    )
    texts = tmp_path / "texts"
    (texts / "a").mkdir(parents=True)
    (texts / "a" / "notes.txt").write_text("x")
    (texts / "b.csv").write_text("1,2")
    assert error_of(folder_config(texts)) == (
        f"data.path {texts}: 2 files but no images among them (images end in .png, .jpg, .jpeg, "
        f".bmp, .gif)"
    )
    a_file = tmp_path / "one.png"
    images.write_png(a_file, x[0][..., None])
    assert error_of(folder_config(a_file)) == (
        f"data.path {a_file}: a file, not a folder; data.dataset folder reads every image in a "
        f"folder: point data.path at the folder (e.g. {tmp_path})"
    )
    assert error_of(folder_config(tmp_path / "nope")) == (
        f"data.path {tmp_path / 'nope'}: no such folder; point data.path at the folder that holds "
        f"the images"
    )
    odd = tmp_path / "odd"
    odd.mkdir()
    for i in range(5):
        images.write_png(odd / f"{i}.png", x[i][..., None])
    Image.fromarray(x[8].astype(np.uint16) * 257).save(odd / "8-deep.png")
    assert error_of(folder_config(odd)).startswith(
        f"{odd / '8-deep.png'}: I;16 images are not read (16-bit or float pixels); save it with 8 "
        f"bits per channel (1 of 6"
    )
    (odd / "8-deep.png").unlink()
    monkeypatch.setattr(images, "MAX_MEGAPIXELS", 0.0005)  # 500 pixels: a digit has 784
    assert error_of(folder_config(odd)) == (
        f"{odd / '0.png'}: 28x28 is 0 megapixels, above the 0.0005 megapixel limit (a "
        f"decompression bomb, or a photo to cut into tiles first) (none of the 5 image files can "
        f"be read)"
    )


def test_an_image_smaller_than_the_patch_is_refused(tmp_path, digits):
    x, y = digits
    root = write_digits(tmp_path / "d", x[:30], y[:30])
    first = sorted(root.glob("*/*.png"))[0]
    assert error_of(folder_config(root, "data.patches={size: [32, 32]}")) == (
        f"{first}: 28x28 is smaller than data.patches.size 32x32; use smaller patches, or "
        f"data.image_size to enlarge the images"
    )


def test_cli_refuses_a_bad_folder_and_writes_nothing(tmp_path, digits):
    x, y = digits
    root = write_digits(tmp_path / "d", x[:40], y[:40])
    bad = sorted(root.glob("*/*.png"))[5]
    bad.write_text("not a PNG\n")
    out = tmp_path / "runs"
    cfg = write_config(tmp_path / "c.yaml", folder_config(root, f"output={out}"))
    result = cli("train", cfg, timeout=120)
    assert_error(
        result,
        f"{bad}: not a readable image (cannot identify image file) (1 of 40 image files cannot "
        f"be read; fix or remove it, or set data.skip_bad: true to skip it)",
    )
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# Cached or streamed: the same batches


def test_streamed_and_cached_folders_give_the_same_batches(tmp_path, digits, photos):
    x, y = digits
    root = write_digits(tmp_path / "d", x[:120], y[:120], jpeg_every=3)
    common = ["data.image_size=[20, 24]", "data.fit=crop", "data.color=rgb"]
    cached = data.load_splits(folder_config(root, *common, "data.cache=memory"))
    streamed = data.load_splits(folder_config(root, *common, "data.cache=none"))
    assert not cached.streamed and streamed.streamed
    assert isinstance(streamed.pixels("train"), data.ImageFiles)
    assert streamed.pixels("train").shape == cached.pixels("train").shape == (97, 20, 24, 3)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(streamed.images(split), cached.images(split))
        np.testing.assert_array_equal(streamed.labels(split), cached.labels(split))
    batches = [
        [
            b[0].numpy()
            for b in data.make_dataset(s.pixels("train"), batch_size=16, shuffle=True, seed=4)
        ]
        for s in (cached, streamed)
    ]
    assert len(batches[0]) == len(batches[1]) == 7
    for a, b in zip(*batches):
        np.testing.assert_array_equal(a, b)


def test_auto_cache_streams_above_its_budget(tmp_path, digits, monkeypatch):
    x, y = digits
    root = write_digits(tmp_path / "d", x[:50], y[:50])
    monkeypatch.setattr(folder, "CACHE_BUDGET", 50 * 784 - 1)
    s = data.load_splits(folder_config(root))
    assert s.streamed
    assert s.report["cache"] == (
        "streamed from the files (0 MB decoded: above the 0 MB data.cache: auto keeps)"
    )
    monkeypatch.setattr(folder, "CACHE_BUDGET", 50 * 784)
    assert not data.load_splits(folder_config(root)).streamed


def test_describe_says_the_channels_of_a_converted_folder_are_as_read(tmp_path, digits):
    x, y = digits
    root = write_digits(tmp_path / "d", x[:20], y[:20])
    images.write_png(root / "0" / "colour.png", np.repeat(x[20][..., None], 3, axis=-1))
    text = data.describe(folder_config(root, "data.color=grayscale"))
    assert "found       21 images, all 28x28 as stored (read as grayscale)" in text.splitlines()


def test_describe_a_folder(tmp_path, digits):
    from autoencoder.cli import main

    x, y = digits
    root = write_digits(tmp_path / "d", x[:100], y[:100])
    (root / "notes.txt").write_text("ignored")
    cut = sorted(root.glob("*/*.png"))[0]
    cut.write_bytes(cut.read_bytes()[:30])
    text = data.describe(folder_config(root, "data.skip_bad=true"))
    lines = text.splitlines()
    assert lines[:3] == [
        "dataset     folder",
        f"source      data.path: 100 image files in {root}",
        "images      28 x 28 x 1 (grayscale), float32 in [0, 1]",
    ]
    assert lines[4:10] == [
        "found       99 images, all 28x28x1 as stored; 1 other file ignored",
        "classes     10 class folders",
        "splits      validation_split 0.1 (seed 0), test_split 0.1 (fixed seed)",
        "held        in memory (0 MB decoded; data.cache: auto keeps up to 1,024 MB)",
        "skipped     1 file that cannot be read (data.skip_bad):",
        f"              {cut}: not a readable image (cannot identify image file)",
    ]
    assert lines[11].split() == ["split", "images", *map(str, range(10))]
    counts = [int(v) for v in lines[14].split()[1:]]
    assert counts[0] == 10 and sum(counts[1:]) == 10  # test: 10 images
    cfg = write_config(tmp_path / "c.yaml", folder_config(root, "data.skip_bad=true"))
    assert main(["data", str(cfg)]) == 0


# ---------------------------------------------------------------------------------------------
# Training on a folder


@pytest.mark.slow
def test_a_folder_of_25x25_rgb_images_trains_through_the_planner(tmp_path, photos):
    import json

    from conftest import tiny

    root = write_photo_crops(tmp_path / "crops", photos)
    config = tiny(tmp_path / "runs", "data.dataset=folder", f"data.path={root}", "train.epochs=1")
    cfg = write_config(tmp_path / "c.yaml", config)
    assert "input_shape" not in cfg.read_text()  # left out: the planner plans from the data
    shapes = cli("shapes", cfg, timeout=120)
    assert shapes.returncode == 0 and "25x25x3 -> 13x13x4" in shapes.stdout
    result = cli("train", cfg)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "runs" / "tiny").iterdir()
    assert "input_shape: [25, 25, 3]\n" in (run / "config.yaml").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test/psnr_by_channel"]) == {"R", "G", "B"}
    assert set(metrics["test/mse_by_class"]) == {"china", "flower"}
    assert metrics["test/images"] == 16  # 160 images: test_split 0.1
    assert "PSNR by channel: R " in result.stdout and "MSE by class: china: " in result.stdout
    for name in ("reconstructions", "worst", "error_by_class", "loss"):
        assert (run / "figures" / f"{name}.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_streamed_patch_denoiser_trains_and_resumes(tmp_path, photos):
    from conftest import tiny

    from autoencoder.pipeline import resume_run, train_run
    from autoencoder.runs import read_history

    root = write_photo_crops(tmp_path / "crops", photos, n=40, size=40)
    config = tiny(
        tmp_path / "runs",
        "data.dataset=folder",
        f"data.path={root}",
        "data.cache=none",
        "data.patches={size: [16, 16], per_image: 3}",
        "data.noise={kind: gaussian, level: 0.2}",
        "train.epochs=1",
    )
    assert "input_shape" not in config.model.model_fields_set  # the colour is the files' own
    run_dir, metrics = train_run(config)
    assert metrics["test/images"] == 8 and metrics["test/noisy_psnr"] > 10
    assert data.load_splits(config).streamed
    run_dir, metrics = resume_run(run_dir, ["train.epochs=2"])
    assert [r["epoch"] for r in read_history(run_dir)] == [1, 2]
    assert "input_shape: [16, 16, 3]\n" in (run_dir / "config.yaml").read_text()
    assert (run_dir / "figures" / "reconstructions.png").stat().st_size > 10_000


def test_png_jpeg_bmp_and_gif_are_read_any_case(tmp_path, digits):
    from PIL import Image

    x, _ = digits
    root = tmp_path / "kinds"
    root.mkdir()
    for i, suffix in enumerate((".png", ".JPG", ".jpeg", ".bmp", ".gif", ".Png")):
        Image.fromarray(x[i]).save(
            root / f"{i}{suffix}", format={".jpg": "JPEG", ".jpeg": "JPEG"}.get(suffix.lower())
        )
    (root / "6.tiff").write_bytes(b"II*\x00")  # not among the kinds read: left out
    s = data.load_splits(folder_config(root))
    assert s.count("train") + s.count("val") + s.count("test") == 6
    assert s.report["ignored"] == 1 and s.image_shape == (28, 28, 1)
    decoded = sorted(int(p.sum()) for split in ("train", "val", "test") for p in s.pixels(split))
    exact = sorted(int(x[i].sum()) for i in (0, 3, 4, 5))  # PNG, BMP, GIF: lossless
    assert all(v in decoded for v in exact)


def test_a_run_knows_its_folders_files_when_they_move_or_change(tmp_path, digits, caplog):
    import shutil

    from conftest import tiny

    from autoencoder.evaluate import evaluate_run
    from autoencoder.pipeline import train_run
    from autoencoder.runs import DATA_FILES, load_run_config

    x, y = digits
    root = write_digits(tmp_path / "digits", x[:120], y[:120])
    config = tiny(tmp_path / "runs", "data.dataset=folder", f"data.path={root}", "train.epochs=1")
    run, _ = train_run(config)
    files = json.loads((run / DATA_FILES).read_text())
    assert {s: files[s]["files"] for s in files} == {"train": 81, "val": 27, "test": 12}
    # Moved: evaluate says where to give the new folder; resume takes it and goes on.
    moved = tmp_path / "moved"
    shutil.move(root, moved)
    with pytest.raises(UserError) as refused:
        evaluate_run(run)
    assert str(refused.value) == (
        f"{run}: its images are no longer in {root} (data.path); if they moved, give data.path "
        f"their new folder in {run / 'config.yaml'}, or resume with --set data.path=NEW_FOLDER"
    )
    train_run(load_run_config(run, [f"data.path={moved}", "train.epochs=2"]), resume=run)
    assert load_run_config(run).data.path == str(moved)
    # Changed: one image more moves others between the splits; resume refuses, evaluate warns.
    write_digits(moved, x[120:121], y[120:121], start=120)
    before = (run / "history.csv").read_text()
    with pytest.raises(UserError) as refused:
        train_run(load_run_config(run, ["train.epochs=3"]), resume=run)
    assert str(refused.value) == (
        f"{run}: the files under data.path are not those the run was trained on (train: 81 "
        f"files then, 82 now; val: 27 files then, 27 now, other names; test: 12 files then, 12 "
        f"now, other names), so its splits would mix: resuming would train on images it was "
        f"tested on; put back the files, or train a new run on this data"
    )
    assert (run / "history.csv").read_text() == before
    caplog.set_level(logging.WARNING, logger="autoencoder")
    evaluate_run(run)
    assert "the files under data.path are not those the run was trained on" in caplog.text


def test_a_number_that_names_a_class_folder_means_that_folder(tmp_path, digits):
    from autoencoder.anomaly import normal_classes
    from autoencoder.data.splits import class_indices

    x, y = digits
    root = tmp_path / "ids"
    for name, label in (("1", 1), ("2", 2), ("10", 0)):
        write_digits(root / name, x[y == label][:10], [0] * 10)  # root/<name>/0/*.png
    names = ("1", "10", "2")  # the folders in sorted order: 1 is the first, 10 the second
    assert class_indices([1, 10, 2], names, "ids") == [0, 1, 2]
    assert class_indices(["10", 1], names, "ids") == [1, 0]
    with pytest.raises(UserError, match=r"^data.classes: 3 is not a class number of ids \(0 to 2"):
        class_indices([3], names, "ids")
    with pytest.raises(UserError, match=r"^data.classes: -1 is not a class number"):
        class_indices([-1], names, "ids")
    # Names that are not numbers: a number is a position, as before.
    assert class_indices([1], ("cat", "dog"), "pets") == [1]
    config = load_config(
        None,
        ["data.dataset=folder", f"data.path={root}", "data.classes=[1, 10]", "anomaly.normal=[10]"],
    )
    splits = data.load_splits(config)
    assert splits.class_names == names
    assert sorted(set(splits.labels("train"))) == [0, 1]  # folders 1 and 10
    assert normal_classes(config, names) == [1]


def test_a_class_folder_without_images_is_named_not_lost(tmp_path, digits, caplog):
    x, y = digits
    root = write_digits(tmp_path / "d", x[:60], y[:60])
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("to do")
    caplog.set_level(logging.WARNING, logger="autoencoder")
    splits = data.load_splits(folder_config(root))
    assert "empty" not in splits.class_names and len(splits.class_names) == 10
    assert f"data.path {root}: 1 class folder(s) without images, left out: empty" in caplog.text
    with pytest.raises(UserError) as refused:
        data.load_splits(folder_config(root, "data.classes=[empty, '3']"))
    assert str(refused.value) == (
        f"data.classes: 'empty' is a folder under data.path {root} without a single image, so no "
        f"class; add images to it, or leave it out of data.classes"
    )


def test_a_split_folder_without_the_kept_classes_is_named(tmp_path, digits):
    x, y = digits
    root = tmp_path / "d"
    write_digits(root / "train", x[:200], y[:200])
    write_digits(root / "validation", x[200:250][y[200:250] != 3], y[200:250][y[200:250] != 3])
    write_digits(root / "test", x[250:], y[250:])
    assert error_of(folder_config(root, "data.classes=['3']")) == (
        f"data.path {root}: its validation/ folder holds no image of 3 (the classes data.classes "
        f"or anomaly.normal keep); add images to it, or remove validation/ to hold out "
        f"data.validation_split of the training images instead"
    )
    s = data.load_splits(folder_config(root, "data.classes=['3', '4']"))
    assert set(s.y_val.tolist()) == {4} and set(s.y_train.tolist()) == {3, 4}
