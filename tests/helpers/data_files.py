"""Helpers, no tests: real images in awkward modes and broken files for the data-layer tests.

Built from scikit-image's sample photos; everything is written into a test's tmp_path.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skdata

# A file whose header claims 2000x2000 pixels (4 MP) but is only a few KB on disk; tests set
# the pixel limit to BOMB_LIMIT so it is rejected, as a real gigapixel bomb would be.
BOMB_SIDE = 2000
BOMB_LIMIT = 1_000_000


def small(arr: np.ndarray, size: int = 128) -> Image.Image:
    """A real photo, shrunk so tests stay fast."""
    img = Image.fromarray(arr)
    return img.resize((size, size * img.height // img.width))


def exif_rotated_jpeg(path: Path) -> Image.Image:
    """Save a landscape photo with EXIF orientation 6 (display rotated 90 degrees clockwise).

    Returns the upright image a viewer would show.
    """
    stored = small(skdata.chelsea(), 160)  # 160x105, clearly not square
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, "JPEG", quality=95, exif=exif)
    return stored.transpose(Image.Transpose.ROTATE_270)


def write_good_images(folder: Path) -> dict[str, str]:
    """Write one good image per awkward mode into class folders; returns {rel_path: label}."""
    out: dict[str, str] = {}

    def put(rel: str, label: str, img: Image.Image, fmt: str, **kw) -> None:
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        img.save(p, fmt, **kw)
        out[rel] = label

    astro = small(skdata.astronaut())
    cat = small(skdata.chelsea())
    coffee = small(skdata.coffee())
    camera = small(skdata.camera())
    put("happy/astronaut_rgb.jpg", "happy", astro, "JPEG", quality=90)
    put("happy/chelsea_rgb.png", "happy", cat, "PNG")
    put("sad/coffee_cmyk.jpg", "sad", coffee.convert("CMYK"), "JPEG", quality=90)
    put("sad/camera_l.png", "sad", camera, "PNG")
    cam16 = Image.fromarray(np.asarray(camera).astype(np.uint16) * 257)
    put("angry/camera_i16.png", "angry", cam16, "PNG")
    put("angry/astronaut_p.gif", "angry", astro.quantize(64), "GIF")
    la = Image.merge("LA", (camera, Image.new("L", camera.size, 128)))
    put("neutral/camera_la.png", "neutral", la, "PNG")
    rgba = cat.convert("RGBA")
    rgba.putalpha(200)
    put("neutral/chelsea_rgba.png", "neutral", rgba, "PNG")
    p = folder / "fear/chelsea_exif6.jpg"
    p.parent.mkdir(parents=True, exist_ok=True)
    exif_rotated_jpeg(p)
    out["fear/chelsea_exif6.jpg"] = "fear"
    # A name with ".." inside it is an ordinary file name, not path traversal (FindingEmo has 22).
    put("fear/farrington_03..jpg", "fear", small(skdata.rocket()), "JPEG")
    return out


def write_bad_files(folder: Path) -> dict[str, str]:
    """Write one broken file of each kind into class folders; returns {rel_path: reason category}."""
    out: dict[str, str] = {}
    (folder / "happy").mkdir(parents=True, exist_ok=True)
    (folder / "sad").mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    small(skdata.astronaut(), 256).save(buf, "JPEG", quality=90)
    (folder / "happy/truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    out["happy/truncated.jpg"] = "truncated image"
    (folder / "happy/empty.jpg").write_bytes(b"")
    out["happy/empty.jpg"] = "empty file"
    (folder / "sad/notes.jpg").write_text("this is a text file with an image extension\n")
    out["sad/notes.jpg"] = "not an image"
    Image.new("L", (BOMB_SIDE, BOMB_SIDE)).save(folder / "sad/bomb.png", "PNG")
    out["sad/bomb.png"] = "decompression bomb"
    return out
