"""emolog.data.images: decoding real-world files into upright RGB, rejecting broken ones."""

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from helpers.data_files import BOMB_LIMIT, BOMB_SIDE, exif_rotated_jpeg, small
from emolog.data.images import ImageRejected, decode_image, load_image, reason_category


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _garble_middle(data: bytes) -> bytes:
    """Overwrite 64 bytes in the middle of the compressed data (a damaged download)."""
    m = len(data) // 2
    return data[:m] + b"\xff" * 64 + data[m + 64 :]


def _rgb(arr_img: Image.Image) -> np.ndarray:
    return np.asarray(arr_img, dtype=np.int16)


def test_rgb_png_is_returned_unchanged():
    cat = small(skdata.chelsea())
    out = decode_image(_encode(cat, "PNG"))
    assert out.mode == "RGB" and out.size == cat.size
    assert np.array_equal(np.asarray(out), np.asarray(cat))


def test_cmyk_tiff_round_trips_and_cmyk_jpeg_is_close():
    coffee = small(skdata.coffee())
    tif = decode_image(_encode(coffee.convert("CMYK"), "TIFF"))
    assert tif.mode == "RGB"
    assert np.array_equal(np.asarray(tif), np.asarray(coffee))
    jpg = decode_image(_encode(coffee.convert("CMYK"), "JPEG", quality=95))
    # JPEG is lossy; an inverted-CMYK mistake would give a mean error near 128.
    assert np.abs(_rgb(jpg) - _rgb(coffee)).mean() < 6


def test_sixteen_bit_grey_is_scaled_not_clipped():
    cam = np.asarray(small(skdata.camera()))
    img16 = Image.fromarray(cam.astype(np.uint16) * 257)
    raw = _encode(img16, "PNG")
    assert Image.open(io.BytesIO(raw)).mode.startswith("I")
    out = np.asarray(decode_image(raw))
    assert out.shape == cam.shape + (3,)
    assert np.array_equal(out[..., 0], cam) and np.array_equal(out[..., 2], cam)
    # What a plain convert("RGB") does: nearly everything saturates to white.
    naive = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
    assert (naive == 255).mean() > 0.9


def test_palette_image_gives_its_colours():
    pal = small(skdata.astronaut()).quantize(32)
    out = decode_image(_encode(pal, "PNG"))
    assert np.array_equal(np.asarray(out), np.asarray(pal.convert("RGB")))


def test_transparent_pixels_become_white_in_la_rgba_and_p():
    cam = small(skdata.camera())
    alpha = np.full((cam.height, cam.width), 255, np.uint8)
    alpha[:, : cam.width // 2] = 0  # left half fully transparent
    la = Image.merge("LA", (cam, Image.fromarray(alpha)))
    out = np.asarray(decode_image(_encode(la, "PNG")))
    assert (out[:, : cam.width // 2] == 255).all()
    assert np.array_equal(out[:, cam.width // 2 :, 1], np.asarray(cam)[:, cam.width // 2 :])

    rgba = np.zeros((8, 8, 4), np.uint8)  # black, fully transparent ...
    rgba[4:, :, :] = (200, 10, 10, 255)  # ... except an opaque red bottom half
    out = np.asarray(decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG")))
    assert (out[:4] == 255).all() and (out[4:] == (200, 10, 10)).all()

    p = Image.new("P", (4, 4), 0)
    p.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    p.putpixel((0, 0), 1)
    out = np.asarray(decode_image(_encode(p, "PNG", transparency=0)))
    assert tuple(out[0, 0]) == (0, 255, 0) and (out[1:] == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rot.jpg"
    upright = exif_rotated_jpeg(path)
    stored = Image.open(path)
    assert stored.size == (upright.height, upright.width)  # stored landscape, shown portrait
    out = load_image(path)
    assert out.size == upright.size
    err_right = np.abs(_rgb(out) - _rgb(upright)).mean()
    err_wrong = np.abs(_rgb(out) - _rgb(upright.transpose(Image.Transpose.ROTATE_180))).mean()
    assert err_right < 6 < err_wrong


@pytest.mark.parametrize(
    "make,category",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("hello, not an image"), "not an image"),
        (lambda p: p.write_bytes(_encode(small(skdata.astronaut(), 256), "JPEG")[:3000]), "truncated image"),
        (lambda p: p.write_bytes(_garble_middle(_encode(small(skdata.chelsea()), "PNG"))), "corrupt image"),
        (lambda p: p.mkdir(), "not a file"),
        (lambda p: None, "missing file"),
    ],
)
def test_bad_files_are_rejected_with_a_reason(tmp_path, make, category):
    path = tmp_path / "x.jpg"
    make(path)
    with pytest.raises(ImageRejected) as ei:
        load_image(path)
    assert ei.value.category == category, ei.value.reason


def test_decompression_bomb_is_rejected_from_the_header_only(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("L", (BOMB_SIDE, BOMB_SIDE)).save(path)
    assert path.stat().st_size < 50_000  # tiny file, 4 megapixels
    with pytest.raises(ImageRejected, match=r"decompression bomb: 2000x2000 = 4000000 pixels > limit") as ei:
        load_image(path, max_pixels=BOMB_LIMIT)
    assert ei.value.category == "decompression bomb"
    assert load_image(path).size == (BOMB_SIDE, BOMB_SIDE)  # under the default limit it is fine


def test_reason_category():
    assert reason_category("corrupt image: broken PNG file") == "corrupt image"
    assert reason_category("missing file") == "missing file"


def test_float_tiff_is_rejected_as_unsupported_mode_not_guessed():
    f32 = Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8))
    with pytest.raises(ImageRejected, match="unsupported image mode: F"):
        decode_image(_encode(f32, "TIFF"))


def test_bilevel_image_converts():
    bw = small(skdata.camera()).point(lambda v: 255 if v > 128 else 0).convert("1")
    out = np.asarray(decode_image(_encode(bw, "PNG")))
    assert set(np.unique(out)) == {0, 255}
    assert np.array_equal(out[..., 0] == 255, np.asarray(bw))
