"""Image files: decoding to (H, W, C) uint8 and the refusals, on real digits and photographs."""

import numpy as np
import pytest

from autoencoder.data import images, load_sample
from autoencoder.errors import UserError


@pytest.fixture(scope="module")
def digit():
    return load_sample().x_test[0]  # a real 28x28 MNIST digit, uint8


@pytest.fixture(scope="module")
def photo():
    from sklearn.datasets import load_sample_images

    return load_sample_images().images[0][::8, ::8]  # china.jpg, 54x80x3


def test_png_round_trip_keeps_grey_and_colour(tmp_path, digit, photo):
    images.write_png(tmp_path / "d.png", digit[..., None])
    images.write_png(tmp_path / "p.png", photo)
    grey, colour = images.read_image(tmp_path / "d.png"), images.read_image(tmp_path / "p.png")
    assert grey.shape == (28, 28, 1) and grey.dtype == np.uint8
    np.testing.assert_array_equal(grey[..., 0], digit)
    np.testing.assert_array_equal(colour, photo)


def test_color_converts_and_jpeg_is_close(tmp_path, digit, photo):
    from PIL import Image

    Image.fromarray(photo).save(tmp_path / "p.jpg", quality=95)
    rgb = images.read_image(tmp_path / "p.jpg")
    assert rgb.shape == (54, 80, 3)
    assert np.abs(rgb.astype(int) - photo).mean() < 6  # JPEG is lossy, not far off
    assert images.read_image(tmp_path / "p.jpg", color="grayscale").shape == (54, 80, 1)
    images.write_png(tmp_path / "d.png", digit[..., None])
    as_rgb = images.read_image(tmp_path / "d.png", color="rgb")
    assert as_rgb.shape == (28, 28, 3) and (as_rgb[..., 0] == as_rgb[..., 2]).all()


def test_gif_gives_its_first_frame_and_alpha_is_dropped(tmp_path, digit):
    from PIL import Image

    frames = [Image.fromarray(digit), Image.fromarray(255 - digit)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    first = images.read_image(tmp_path / "a.gif")
    assert first.shape == (28, 28, 1) and abs(int(first.mean()) - int(digit.mean())) <= 2
    rgba = np.dstack([np.stack([digit] * 3, -1), np.full_like(digit, 128)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert images.read_image(tmp_path / "a.png").shape == (28, 28, 3)


def test_palette_pngs_are_read_through_their_palette(tmp_path, digit):
    from PIL import Image

    grey = Image.fromarray(digit).convert("P")  # Pillow's web palette: its greys, dithered
    grey.save(tmp_path / "grey.png")
    assert images.read_image(tmp_path / "grey.png").shape == (28, 28, 1)
    np.testing.assert_array_equal(
        images.read_image(tmp_path / "grey.png")[..., 0], np.asarray(grey.convert("L"))
    )
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 200
    Image.fromarray(red).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "red.png")
    read = images.read_image(tmp_path / "red.png")
    assert read.shape == (8, 8, 3) and (read[..., 0] > 150).all() and (read[..., 1:] == 0).all()


def test_a_photos_exif_orientation_is_applied(tmp_path):
    from PIL import Image

    stored = np.zeros((20, 40, 3), np.uint8)  # 40 wide, 20 high, as the sensor read it
    stored[:, :10] = 255  # a white band on the stored image's left
    exif = Image.Exif()
    exif[images.ORIENTATION] = 6  # a viewer turns it 90 degrees clockwise
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    shown = images.read_image(tmp_path / "phone.jpg")
    assert shown.shape == (40, 20, 3)  # upright, as any viewer shows it
    assert shown[:10].mean() > 200 and shown[12:].mean() < 30  # the band now on top
    Image.fromarray(stored).save(tmp_path / "plain.jpg", quality=95)  # no tag: as stored
    assert images.read_image(tmp_path / "plain.jpg").shape == (20, 40, 3)


def test_bad_images_are_one_line_each(tmp_path, digit, monkeypatch):
    from PIL import Image

    Image.fromarray(digit).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(digit.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    images.write_png(tmp_path / "cut.png", digit[..., None])
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_text("not an image\n")
    cases = {
        "deep.png": "I;16 images are not read (16-bit or float pixels); save it with 8 bits",
        "cut.png": "not a readable image (",
        "text.png": "not a readable image (cannot identify image file",
    }
    for name, message in cases.items():
        with pytest.raises(UserError) as info:
            images.read_image(tmp_path / name)
        assert str(info.value).startswith(f"{tmp_path / name}: {message}"), str(info.value)
        assert "\n" not in str(info.value)
    monkeypatch.setattr(images, "MAX_MEGAPIXELS", 0.0005)  # 500 pixels: the digit has 784
    with pytest.raises(UserError, match=r"28x28 is 0 megapixels, above the 0.0005 megapixel"):
        images.read_image(tmp_path / "deep.png")


def test_sizes_in_messages_are_height_by_width_as_data_image_size(tmp_path, monkeypatch):
    images.write_png(tmp_path / "wide.png", np.zeros((20, 50, 1), np.uint8))
    monkeypatch.setattr(images, "MAX_MEGAPIXELS", 0.0005)  # 500 pixels: the image has 1,000
    with pytest.raises(UserError) as info:
        images.read_image(tmp_path / "wide.png")
    assert str(info.value).startswith(f"{tmp_path / 'wide.png'}: 20x50 is 0 megapixels")
