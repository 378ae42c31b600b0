"""Image files: decode one (PNG, JPEG, BMP, GIF's first frame) to uint8 (H, W, C); write PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autoencoder.errors import UserError

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# Pillow's own bomb guard warns at 89 megapixels and refuses at twice that; a stated, lower
# limit refuses before any pixel is decoded, with a line that says how to go past it.
MAX_MEGAPIXELS = 64
# Pillow modes this tool reads, and how many channels each gives.
CHANNELS = {"L": 1, "LA": 1, "RGB": 3, "RGBA": 3, "CMYK": 3, "YCbCr": 3, "1": 1}


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
      UserError: unreadable or truncated, 16-bit, palette, or larger than MAX_MEGAPIXELS.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_MEGAPIXELS * 1e6:
                raise UserError(
                    f"{path}: {width}x{height} is {width * height / 1e6:.0f} megapixels, above "
                    f"the {MAX_MEGAPIXELS} megapixel limit (a decompression bomb, or a photo to "
                    f"cut into tiles first)"
                )
            image.seek(0)  # GIF: the first frame
            mode = image.mode
            if mode == "P" and image.format == "GIF":
                # GIF frames are always palette images: decode through the palette; a frame
                # whose colours are all greys stays one channel.
                image = image.convert("RGB")
                mode = "L" if _all_grey(np.asarray(image)) else "RGB"
            if mode == "P":
                raise UserError(
                    f"{path}: a palette image (mode P); save it as RGB or greyscale PNG"
                )
            if mode not in CHANNELS:
                raise UserError(
                    f"{path}: {mode} images are not read (16-bit or float pixels); save it with "
                    f"8 bits per channel"
                )
            target = {"grayscale": "L", "rgb": "RGB"}.get(color or "")
            if target is None:
                target = "L" if CHANNELS[mode] == 1 else "RGB"
            pixels = np.asarray(image.convert(target), dtype=np.uint8)
    except UserError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard, at twice its 89 MP
        raise UserError(
            f"{path}: above the {MAX_MEGAPIXELS} megapixel limit ({exc}); cut it into tiles first"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        # Pillow raises OSError for truncated data, SyntaxError for some broken headers.
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: not a readable image ({why})") from None
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _all_grey(rgb: np.ndarray) -> bool:
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def write_png(path: str | Path, pixels: np.ndarray) -> None:
    """Write uint8 (H, W, 1 or 3) or float [0, 1] pixels as a PNG file."""
    from PIL import Image

    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        array = np.clip(np.round(array * 255.0), 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    Image.fromarray(array).save(path, format="PNG")
