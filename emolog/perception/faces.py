"""Face detectors behind one registry, and face crops.

``detect(images)`` returns, per image, *all* faces found, sorted by area (largest first);
the caller keeps the first K but still knows how many there were. An image without faces
gives an empty list: never a dummy face.

=========  ======================================================================
name       detector
=========  ======================================================================
mtcnn      MTCNN from facenet-pytorch (default; weights ship inside the package).
           ``confidence`` is its face probability in [0, 1].
haar       OpenCV's frontal-face Haar cascade (cv2.data.haarcascades), a fallback.
           ``confidence`` is the cascade's level weight: a score, *not* a probability.
=========  ======================================================================
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from emolog.perception.common import WeightsError, sha256_file
from emolog.runtime import resolve_device


@dataclass(frozen=True)
class Face:
    """One detected face.

    ``box``: (x1, y1, x2, y2) in pixels of the original image, clipped to it;
    ``area``: box area / image area; ``confidence``: detector score;
    ``centre``: box centre (x, y) as fractions of image width/height, in [0, 1].
    """

    box: tuple[float, float, float, float]
    area: float
    confidence: float
    centre: tuple[float, float]


class FaceDetector(Protocol):
    name: str

    def detect(self, images: list[Image.Image]) -> list[list[Face]]: ...

    def config(self) -> dict: ...


def _faces_from_boxes(boxes: np.ndarray, scores: np.ndarray, scale: float, width: int, height: int) -> list[Face]:
    faces = []
    for (x1, y1, x2, y2), s in zip(np.asarray(boxes, dtype=np.float64), np.asarray(scores, dtype=np.float64)):
        # Boxes found on a downscaled copy are mapped back; MTCNN boxes may overshoot the edge.
        x1, x2 = np.clip([x1 * scale, x2 * scale], 0, width)
        y1, y2 = np.clip([y1 * scale, y2 * scale], 0, height)
        if x2 <= x1 or y2 <= y1:
            continue
        faces.append(
            Face(
                box=(float(x1), float(y1), float(x2), float(y2)),
                area=float((x2 - x1) * (y2 - y1) / (width * height)),
                confidence=float(s),
                centre=(float((x1 + x2) / 2 / width), float((y1 + y2) / 2 / height)),
            )
        )
    faces.sort(key=lambda f: -f.area)
    return faces


def _downscaled(image: Image.Image, max_side: int | None) -> tuple[Image.Image, float]:
    """RGB copy with its long side at most ``max_side`` and the factor to map boxes back."""
    image = image.convert("RGB")
    long_side = max(image.size)
    if max_side is None or long_side <= max_side:
        return image, 1.0
    s = max_side / long_side
    small = image.resize((max(1, round(image.width * s)), max(1, round(image.height * s))), Image.BILINEAR)
    return small, image.width / small.width


class MTCNNDetector:
    """MTCNN (facenet-pytorch). ``min_face_size``: shorter box side in pixels of the
    (downscaled) detection image; ``threshold``: minimum final face probability; ``max_side``: downscale images whose
    long side exceeds it before detecting (boxes are mapped back)."""

    name = "mtcnn"

    def __init__(
        self,
        min_face_size: int = 20,
        threshold: float = 0.9,
        max_side: int | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        try:
            from facenet_pytorch import MTCNN
        except ImportError as e:
            raise WeightsError(
                "mtcnn: package facenet-pytorch (which ships the MTCNN weights "
                "pnet.pt/rnet.pt/onet.pt) is not installed; "
                "pip install --no-deps facenet-pytorch"
            ) from e
        self.min_face_size, self.threshold, self.max_side = min_face_size, threshold, max_side
        self.device = resolve_device(device)
        self._mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, device=self.device)
        # The weights ship inside the package; their hashes go into the cache fingerprint so
        # that another facenet-pytorch release means another cache.
        data = Path(sys.modules[MTCNN.__module__].__file__).parent.parent / "data"
        self.weights_sha256 = {n: sha256_file(data / f"{n}.pt") for n in ("pnet", "rnet", "onet")}

    def config(self) -> dict:
        return {
            "name": self.name,
            "min_face_size": self.min_face_size,
            "threshold": self.threshold,
            "max_side": self.max_side,
            "stage_thresholds": list(self._mtcnn.thresholds),
            "factor": self._mtcnn.factor,
            "weights_sha256": self.weights_sha256,
        }

    def detect(self, images: list[Image.Image]) -> list[list[Face]]:
        out = []
        for im in images:
            small, scale = _downscaled(im, self.max_side)
            with torch.no_grad():
                boxes, probs = self._mtcnn.detect(small)
            if boxes is None:
                out.append([])
                continue
            # MTCNN's min_face_size only sets its smallest pyramid scale and still lets
            # smaller boxes through; filter so the parameter means what it says.
            side = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
            keep = (probs >= self.threshold) & (side >= self.min_face_size)
            out.append(_faces_from_boxes(boxes[keep], probs[keep], scale, im.width, im.height))
        return out


class HaarDetector:
    """OpenCV's frontal-face Haar cascade. ``min_face_size`` in pixels; ``min_neighbors`` is
    its acceptance threshold; ``confidence`` is the level weight (not a probability)."""

    name = "haar"

    def __init__(
        self, min_face_size: int = 20, min_neighbors: int = 5, scale_factor: float = 1.1, max_side: int | None = None
    ) -> None:
        import cv2  # here, not at the top: only this detector needs OpenCV

        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            # OpenCV 5 no longer has the cascades in its main module (seen: cv2 5.0.0 on a GPU machine)
            raise WeightsError(
                f"haar: this OpenCV build (cv2 {getattr(cv2, '__version__', '?')}) has no "
                "CascadeClassifier / cv2.data; install opencv-python-headless<5"
            )
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        self.weights_sha256 = sha256_file(path) if not self._cascade.empty() else None
        if self._cascade.empty():
            raise WeightsError(
                f"haar: cannot load the cascade {path!r} (expected OpenCV's "
                "haarcascade_frontalface_default.xml; opencv-python-headless<5 "
                "ships it)"
            )
        self.min_face_size, self.min_neighbors = min_face_size, min_neighbors
        self.scale_factor, self.max_side = scale_factor, max_side

    def config(self) -> dict:
        return {
            "name": self.name,
            "min_face_size": self.min_face_size,
            "min_neighbors": self.min_neighbors,
            "scale_factor": self.scale_factor,
            "max_side": self.max_side,
            "weights_sha256": self.weights_sha256,
        }

    def detect(self, images: list[Image.Image]) -> list[list[Face]]:
        import cv2

        out = []
        for im in images:
            small, scale = _downscaled(im, self.max_side)
            grey = cv2.cvtColor(np.asarray(small), cv2.COLOR_RGB2GRAY)
            rects, _, weights = self._cascade.detectMultiScale3(
                grey,
                scaleFactor=self.scale_factor,
                minNeighbors=self.min_neighbors,
                minSize=(self.min_face_size, self.min_face_size),
                outputRejectLevels=True,
            )
            rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
            boxes = np.c_[rects[:, :2], rects[:, :2] + rects[:, 2:]]
            out.append(_faces_from_boxes(boxes, np.asarray(weights).reshape(-1), scale, im.width, im.height))
        return out


DETECTORS: dict[str, type] = {"mtcnn": MTCNNDetector, "haar": HaarDetector}
DEFAULT_DETECTOR = "mtcnn"


def build_detector(name: str = DEFAULT_DETECTOR, device: str | torch.device | None = None, **options) -> FaceDetector:
    """A registered detector; ``options`` are its constructor's (e.g. ``min_face_size``,
    ``threshold`` for mtcnn, ``min_neighbors`` for haar, ``max_side`` for both)."""
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; choose one of {sorted(DETECTORS)}")
    if name == "mtcnn":
        return MTCNNDetector(device=device, **options)
    options.pop("threshold", None)  # the cascade has no probability threshold
    return HaarDetector(**options)


def crop_face(image: Image.Image, box: tuple[float, float, float, float], margin: float = 0.1) -> Image.Image:
    """Square RGB crop around ``box`` (x1, y1, x2, y2 px), its side the box's longer side
    times (1 + 2 * margin), clipped to the image. Expression models were trained on faces with
    some context around them, which tight detector boxes cut off."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = max(x2 - x1, y2 - y1) * (1 + 2 * margin) / 2
    left, top = max(0, round(cx - half)), max(0, round(cy - half))
    right, bottom = min(image.width, round(cx + half)), min(image.height, round(cy + half))
    return image.convert("RGB").crop((left, top, right, bottom))
