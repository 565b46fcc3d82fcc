"""Face detection on real photos that ship offline (skimage)."""

from __future__ import annotations

import pytest
import skimage.data
from PIL import Image

from emolog.perception.faces import build_detector, crop_face

ASTRO_FACE = (181, 62, 268, 172)  # MTCNN's box on skimage's astronaut (x1, y1, x2, y2)


@pytest.fixture(scope="module")
def mtcnn():
    return build_detector("mtcnn", device="cpu")


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skimage.data.astronaut())


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_astronaut_has_one_face_and_coffee_none(mtcnn, astronaut):
    coffee = Image.fromarray(skimage.data.coffee())
    faces, none = mtcnn.detect([astronaut, coffee])
    assert none == []  # no dummy face
    assert len(faces) == 1
    f = faces[0]
    assert f.confidence > 0.99
    assert _iou(f.box, ASTRO_FACE) > 0.9
    w, h = astronaut.size
    assert f.area == pytest.approx((f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) / (w * h))
    assert f.centre == pytest.approx(((f.box[0] + f.box[2]) / 2 / w, (f.box[1] + f.box[3]) / 2 / h))


def test_haar_fallback_finds_the_same_face(astronaut):
    haar = build_detector("haar", min_face_size=30)
    faces, none = haar.detect([astronaut, Image.fromarray(skimage.data.coffee())])
    assert none == []
    assert len(faces) == 1 and _iou(faces[0].box, ASTRO_FACE) > 0.6
    assert haar.config()["name"] == "haar"


def test_faces_sorted_by_area_largest_first(mtcnn, astronaut):
    # The astronaut at full and at half size, side by side: the big face must come first,
    # even though the small copy is placed left (MTCNN itself orders by score, not size).
    canvas = Image.new("RGB", (768, 512), (255, 255, 255))
    canvas.paste(astronaut.resize((256, 256)), (0, 0))
    canvas.paste(astronaut, (256, 0))
    faces = mtcnn.detect([canvas])[0]
    assert len(faces) == 2
    assert faces[0].area > faces[1].area
    assert faces[0].area / faces[1].area == pytest.approx(4, rel=0.25)
    assert faces[0].centre[0] > 0.5 > faces[1].centre[0]


def test_downscaled_detection_maps_boxes_back(astronaut):
    big = astronaut.resize((768, 768))
    full = build_detector("mtcnn", device="cpu").detect([big])[0]
    small = build_detector("mtcnn", device="cpu", max_side=384).detect([big])[0]
    assert len(full) == len(small) == 1
    assert _iou(full[0].box, small[0].box) > 0.85
    assert _iou(small[0].box, [1.5 * v for v in ASTRO_FACE]) > 0.85
    assert small[0].area == pytest.approx(full[0].area, rel=0.15)


def test_thresholds_are_configurable(astronaut):
    strict = build_detector("mtcnn", device="cpu", min_face_size=200)  # face is ~100 px
    assert strict.detect([astronaut]) == [[]]
    assert strict.config()["min_face_size"] == 200
    picky = build_detector("mtcnn", device="cpu", threshold=0.999999)  # astronaut: 0.999998
    assert picky.detect([astronaut]) == [[]]
    with pytest.raises(ValueError, match="unknown face detector 'yolo'"):
        build_detector("yolo")


def test_crop_face_is_square_with_margin_and_clipped(astronaut):
    crop = crop_face(astronaut, (100, 100, 200, 180), margin=0.1)
    assert crop.size == (120, 120) and crop.mode == "RGB"
    edge = crop_face(astronaut, (0, 0, 50, 50), margin=0.2)
    assert edge.size == (60, 60)  # side 70 centred at 25: clipped at the image border, never padded with grey
