"""Image files: decode one (PNG, JPEG, BMP, GIF's first frame) to uint8 (H, W, C); write PNG."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autoencoder.errors import UserError

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# Pillow's own bomb guard warns at 89 megapixels and refuses at twice that; a stated, lower
# limit refuses before any pixel is decoded, with a line that says how to go past it.
MAX_MEGAPIXELS = 64
# Pillow modes this tool reads, and how many channels each gives.
ORIENTATION = 0x0112  # the EXIF tag of how a photo is turned for viewing
CHANNELS = {"L": 1, "LA": 1, "RGB": 3, "RGBA": 3, "CMYK": 3, "YCbCr": 3, "1": 1}


@dataclass(frozen=True)
class Decode:
    """How a file becomes pixels: its colour, then an optional size reached by `fit`."""

    color: str | None = None  # "grayscale", "rgb", or None: the file's own
    size: tuple[int, int] | None = None  # (H, W)
    # As Keras's image_dataset_from_directory: "resize" stretches; "crop" and "pad" first bring
    # the image to the size's aspect ratio (a centred window, or centred on black), then resize.
    fit: str = "resize"


def is_image(path: Path) -> bool:
    """True for a file whose suffix is one of SUFFIXES (any case)."""
    return path.suffix.lower() in SUFFIXES


def read_image(path: str | Path, color: str | None = None) -> np.ndarray:
    """Decode an image file to uint8 (H, W, C), C = 1 (grey) or 3 (RGB).

    Args:
      path: the file.
      color: "grayscale" or "rgb" converts; None keeps the file's own (grey stays 1 channel,
        colour and alpha images give 3 channels, alpha dropped).
    Raises:
      UserError: unreadable or truncated, 16-bit, or larger than MAX_MEGAPIXELS.
    """
    return load_image(path, Decode(color))


def load_image(path: str | Path, decode: Decode) -> np.ndarray:
    """read_image, then fitted to decode.size: uint8 (H, W, C)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: not a readable image ({exc.strerror or exc})") from None
    return decode_image(data, path, decode)


def decode_image(data: bytes, name: str | Path, decode: Decode) -> np.ndarray:
    """An image file's bytes to uint8 (H, W, C) as `decode` says; `name` is for messages."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    # From bytes already read: one read() instead of Pillow's many small ones, and the callers
    # (tf.data's read_file, the scan) read files outside the GIL.
    try:
        with warnings.catch_warnings():
            # Pillow warns from 89 megapixels; the limit below refuses with one line instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            width, height = image.size
            if width * height > MAX_MEGAPIXELS * 1e6:
                raise UserError(
                    f"{name}: {height}x{width} is {width * height / 1e6:.0f} megapixels, above "
                    f"the {MAX_MEGAPIXELS} megapixel limit (a decompression bomb, or a photo to "
                    f"cut into tiles first)"
                )
            # A phone's photo is stored as its sensor read it; the EXIF orientation says how
            # a viewer turns it, and so does the tool (the tag is read only where there is one).
            if image.getexif().get(ORIENTATION, 1) != 1:
                image = ImageOps.exif_transpose(image)
            # An opened GIF (or APNG) is at its first frame; seek(0) would parse a PNG again.
            mode = image.mode
            if mode == "P":
                # Palette images (every GIF frame, optimised PNGs): decoded through the palette;
                # one whose colours are all greys stays one channel.
                image = image.convert("RGB")
                mode = "L" if _all_grey(np.asarray(image)) else "RGB"
            if mode not in CHANNELS:
                raise UserError(
                    f"{name}: {mode} images are not read (16-bit or float pixels); save it with "
                    f"8 bits per channel"
                )
            target = {"grayscale": "L", "rgb": "RGB"}.get(decode.color or "")
            if target is None:
                target = "L" if CHANNELS[mode] == 1 else "RGB"
            if image.mode != target:
                image = image.convert(target)
            if decode.size is not None:
                image = _fit(image, decode.size, decode.fit)
            pixels = np.asarray(image, dtype=np.uint8)
    except UserError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard, at twice its 89 MP
        raise UserError(
            f"{name}: above the {MAX_MEGAPIXELS} megapixel limit ({exc}); cut it into tiles first"
        ) from None
    except UnidentifiedImageError:
        raise UserError(f"{name}: not a readable image (cannot identify image file)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow raises OSError for truncated data, SyntaxError for some broken headers.
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{name}: not a readable image ({why})") from None
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _all_grey(rgb: np.ndarray) -> bool:
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def fit_image(pixels: np.ndarray, size: tuple[int, int], fit: str = "resize") -> np.ndarray:
    """uint8 (H, W, C) brought to size (H, W) as Decode.fit says; unchanged if already that size."""
    if tuple(pixels.shape[:2]) == tuple(size):
        return pixels
    from PIL import Image

    grey = pixels.shape[-1] == 1
    image = Image.fromarray(pixels[..., 0] if grey else pixels)
    out = np.asarray(_fit(image, size, fit), dtype=np.uint8)
    return out[..., None] if out.ndim == 2 else out


def _fit(image, size: tuple[int, int], fit: str):
    """A PIL image at size (H, W): stretched, centre-cropped or zero-padded to the aspect, resized."""
    from PIL import Image

    height, width = size
    w, h = image.size
    if (h, w) == (height, width):
        return image
    if fit == "crop":
        # The largest window of the target's aspect ratio, centred.
        cw, ch = min(w, round(h * width / height)), min(h, round(w * height / width))
        left, top = (w - cw) // 2, (h - ch) // 2
        image = image.crop((left, top, left + cw, top + ch))
    elif fit == "pad":
        pw, ph = max(w, round(h * width / height)), max(h, round(w * height / width))
        canvas = Image.new(image.mode, (pw, ph))  # black
        canvas.paste(image, ((pw - w) // 2, (ph - h) // 2))
        image = canvas
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.Resampling.BILINEAR)


def write_png(path: str | Path, pixels: np.ndarray) -> None:
    """Write uint8 (H, W, 1 or 3) or float [0, 1] pixels as a PNG file."""
    from PIL import Image

    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        array = np.clip(np.round(array * 255.0), 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    Image.fromarray(array).save(path, format="PNG")
