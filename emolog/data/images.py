"""Image loading that survives real-world files.

``load_image`` returns a fully decoded RGB ``PIL.Image`` (EXIF orientation applied) or raises
``ImageRejected`` with a short reason. A reason reads ``"<category>: <detail>"`` (or just the
category); summaries group rejects by the category, the part before the first colon.

What is handled, and how:

* EXIF orientation: the pixels are rotated/flipped so the image is upright; ``size`` is the
  upright size.
* Modes: ``L``/``1``/``RGBX``/``YCbCr``/``CMYK`` convert directly; modes with alpha (``LA``,
  ``RGBA``, ``RGBa``, ``PA`` and ``P`` with a transparency key) are composited onto white,
  because a transparent pixel's stored colour is arbitrary (often black) and would otherwise
  show up as dark blotches; 16-bit grey (``I;16*`` and ``I``, which is how 16-bit PNGs open) is
  scaled by 1/257 instead of clipped, so the full 0..65535 range maps onto 0..255.
* Rejected: missing, 0-byte, non-image, truncated or corrupt files, and images with more than
  ``max_pixels`` pixels (decompression bombs: a small file that would expand to gigabytes).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from emolog.errors import InputError

# Pillow's own default limit (about 89.5 megapixels = a 1 GiB 24-bit image / 4 / 3).
DEFAULT_MAX_PIXELS: int = 89_478_485

_ALPHA_MODES = {"LA", "RGBA", "RGBa", "PA"}
_DIRECT_MODES = {"1", "L", "RGB", "RGBX", "YCbCr", "CMYK"}
_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}


class ImageRejected(InputError):
    """An image file that cannot be used; ``reason`` says why (``"category: detail"``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def category(self) -> str:
        return reason_category(self.reason)


def reason_category(reason: str) -> str:
    """The part of a reject reason before the first colon (used to group counts)."""
    return reason.split(":", 1)[0].strip()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data`` (the ``content_hash`` of the index)."""
    return hashlib.sha256(data).hexdigest()


def read_image_bytes(path: str | Path) -> bytes:
    """The raw bytes of an image file; ``ImageRejected`` for missing, unreadable or empty files."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ImageRejected("missing file") from None
    except IsADirectoryError:
        raise ImageRejected("not a file: is a directory") from None
    except OSError as e:
        raise ImageRejected(f"unreadable file: {e.strerror or e}") from None
    if not data:
        raise ImageRejected("empty file: 0 bytes")
    return data


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode encoded image bytes into an upright RGB image.

    Args:
        data: the file's bytes (JPEG, PNG, GIF, TIFF, WebP, BMP, ... whatever Pillow reads).
        max_pixels: largest accepted width*height, checked from the header *before* decoding.
            (Pillow's own hard limit, twice its default, applies on top of a larger value.)

    Returns:
        a loaded ``PIL.Image`` in mode ``RGB``, size (width, height) in pixels after EXIF
        orientation.

    Raises:
        ImageRejected: not an image, too many pixels, truncated/corrupt, or an unsupported mode.
    """
    if not data:
        raise ImageRejected("empty file: 0 bytes")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageRejected("not an image: format not recognised") from None
    except Image.DecompressionBombError as e:
        raise ImageRejected(f"decompression bomb: {e}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageRejected(f"corrupt image: {e}") from None
    with img:
        w, h = img.size
        if w * h > max_pixels:
            raise ImageRejected(f"decompression bomb: {w}x{h} = {w * h} pixels > limit {max_pixels}")
        if w == 0 or h == 0:
            raise ImageRejected(f"corrupt image: size {w}x{h}")
        try:
            img.load()  # decodes everything now: truncation shows up here, not later in a worker
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            msg = str(e)
            cat = "truncated image" if "truncated" in msg.lower() else "corrupt image"
            raise ImageRejected(f"{cat}: {msg}") from None
        try:
            upright = ImageOps.exif_transpose(img)
        except Exception as e:  # malformed EXIF blocks raise many different types
            raise ImageRejected(f"bad EXIF orientation: {e}") from None
        return to_rgb(upright)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any supported Pillow mode to RGB (see the module docstring for the rules)."""
    try:
        return _to_rgb(img)
    except (ValueError, OSError) as e:  # Pillow lacks a conversion for some exotic modes
        raise ImageRejected(f"unsupported image mode: {img.mode} ({e})") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "P":
        mode_to = "RGBA" if "transparency" in img.info else "RGB"
        img, mode = img.convert(mode_to), mode_to
    if mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode in _SIXTEEN_BIT_MODES:
        arr = np.asarray(img).astype(np.float64)
        grey = np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if mode in _DIRECT_MODES:
        return img.convert("RGB")
    raise ImageRejected(f"unsupported image mode: {mode}")


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Load an image file as an upright RGB ``PIL.Image`` (size = (width, height) pixels).

    Raises ``ImageRejected`` with a reason for missing, empty, non-image, truncated, corrupt or
    oversized files; never returns a placeholder.
    """
    return decode_image(read_image_bytes(path), max_pixels=max_pixels)
