"""The perception pipeline the feature cache is built from.

``Perception.perceive_batch(images)`` returns exactly the per-image tensors of the cache
format (docs/architecture.md, section 2), as numpy arrays with a leading batch axis n:

=============== ============== ======== ==============================================
key             shape          dtype    meaning
=============== ============== ======== ==============================================
scene           [n, D]         float32  backbone features (input of Scene2EmotionNet)
face_probs      [n, K, 7]      float32  per-face softmax, BASIC7 order; 0 where no face
face_logits     [n, K, 7]      float32  per-face logits, BASIC7 order; 0 where no face
face_boxes      [n, K, 4]      float32  x1, y1, x2, y2, pixels of the original image
face_area       [n, K]         float32  box area / image area
face_conf       [n, K]         float32  detector confidence
face_mask       [n, K]         bool     slot holds a real face
n_faces         [n]            int64    faces detected (may exceed K)
image_size      [n, 2]         int64    width, height
scene_prelast   [n, C, H, W]   float16  only with prelast=True
face_features   [n, K, F]      float32  only with face_features=True: each face's recogniser
                                        embedding (F = recogniser.feature_dim); 0 where no face
=============== ============== ======== ==============================================

Each face gets its own softmax (the original pushed all 21 scores through one softmax), and
an image without faces gets zeros and a False mask (the original padded grey dummy faces).

Batching: ``perceive_batch`` = ``perceive_prepared`` of ``preparer()`` applied to each image.
The preparer (RGB conversion + the backbone's resize/crop/normalise) is a small picklable
object, so the cache builder runs it in its DataLoader workers, next to JPEG decoding, and the
networks see whole batches: the scene backbone one [n, 3, 224, 224] tensor, the recogniser
every face crop of the n images in one call. Both paths run the same code on the same
inputs, so a row does not depend on where it was prepared (tests/perception/test_scale_batching.py).
The expression recogniser module is imported only when a recogniser is built (it needs
h5py for mini-Xception), so a GPU machine without it can still run a custom recogniser.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from PIL import Image

import emolog
from emolog.data.images import ImageRejected, to_rgb
from emolog.labels import BASIC7
from emolog.perception.common import PerceptionError
from emolog.runtime import resolve_device
from emolog.perception.faces import DEFAULT_DETECTOR, Face, build_detector, crop_face
from emolog.perception.scene import DEFAULT_BACKBONE, build_backbone

# The grey the original thesis filled missing faces with (uniform mid-grey RGB).
GREY_FACE_VALUE = 128
GREY_FACE_SIZE = 224


def check_image(image: object) -> str | None:
    """Why ``image`` cannot be perceived, or None when it can."""
    if not isinstance(image, Image.Image):
        return f"not a PIL image but {type(image).__name__}"
    if image.width < 1 or image.height < 1:
        return f"empty image ({image.width}x{image.height})"
    return None


@dataclass
class Prepared:
    """One image made ready for the networks: its RGB version and the backbone's input."""

    image: Image.Image  # RGB, original size (detection and crops use it)
    scene_input: torch.Tensor  # [3, 224, 224] float32, the backbone's preprocessing applied


class Preparer:
    """``image -> Prepared`` with a backbone's transform; picklable, so DataLoader workers run it.

    Raises PerceptionError with the reason when the image cannot be perceived.
    """

    def __init__(self, transform: Callable[[Image.Image], torch.Tensor]) -> None:
        self.transform = transform

    def __call__(self, image: object) -> Prepared:
        reason = check_image(image)
        if reason is None:
            try:
                # Same mode rules as image loading: alpha on white, 16-bit grey scaled.
                rgb = to_rgb(image)
            except ImageRejected as e:
                reason = e.reason
            except OSError as e:  # a lazily decoded, truncated file
                reason = f"cannot decode: {e}"
        if reason is not None:
            raise PerceptionError(reason)
        return Prepared(rgb, self.transform(rgb))


@dataclass(frozen=True)
class PerceptionOptions:
    """The settings of ``Perception`` that rarely leave their defaults: where the weights are,
    and how faces are found and cropped (the face settings are in the fingerprint; of the
    weights, their sha256)."""

    backbone_weights: str | os.PathLike | None = None  # file (None: the backbone's default)
    places365_names: str | os.PathLike | None = None  # class names file, resnet18-places365 only
    recogniser_weights: str | os.PathLike | None = None  # file or HF folder (None: the default)
    min_face_size: int = 20  # px, smallest face the detector reports
    face_threshold: float = 0.9  # MTCNN probability a face must reach
    detect_max_side: int | None = None  # px, long side downscaled to before detection (None: never)
    face_margin: float = 0.1  # crop margin, fraction of the box side


class Perception:
    """Frozen scene backbone + face detector + expression recogniser.

    ``K`` face slots per image; ``prelast`` also returns the backbone's activations before its
    last block; ``face_features`` also returns each face's recogniser embedding
    (``face_feature_dim`` is its length F, None when off); ``options``: weights paths and face
    detection / cropping settings (``PerceptionOptions``).
    """

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        detector: str = DEFAULT_DETECTOR,
        recogniser: str | None = None,
        K: int = 3,
        device: str | torch.device | None = None,
        prelast: bool = False,
        face_features: bool = False,
        options: PerceptionOptions = PerceptionOptions(),
    ) -> None:
        if K < 1:
            raise ValueError(f"K must be >= 1, got {K}")
        self.K, self.prelast, self.face_margin = K, prelast, options.face_margin
        self.device = resolve_device(device)
        extra = {"class_names": options.places365_names} if backbone == "resnet18-places365" else {}
        self.backbone = build_backbone(backbone, options.backbone_weights, self.device, **extra)
        self.detector = build_detector(
            detector,
            device=self.device,
            min_face_size=options.min_face_size,
            threshold=options.face_threshold,
            max_side=options.detect_max_side,
        )
        from emolog.perception.expression import DEFAULT_RECOGNISER, build_recogniser

        self.recogniser = build_recogniser(recogniser or DEFAULT_RECOGNISER, options.recogniser_weights, self.device)
        self.face_feature_dim = self.recogniser.feature_dim if face_features else None

    @classmethod
    def from_parts(
        cls,
        backbone,
        detector,
        recogniser,
        K: int = 3,
        prelast: bool = False,
        face_margin: float = 0.1,
        face_features: bool = False,
    ) -> "Perception":
        """A pipeline from built components (a ``SceneBackbone``, a detector with
        ``detect``/``config``, an ``ExpressionRecogniser``), all on the backbone's device:
        for networks outside the registries, e.g. the GPU throughput benchmark's."""
        if K < 1:
            raise ValueError(f"K must be >= 1, got {K}")
        self = cls.__new__(cls)
        self.K, self.prelast, self.face_margin = K, prelast, face_margin
        self.device = next(backbone.parameters()).device
        self.backbone, self.detector, self.recogniser = backbone, detector, recogniser
        self.face_feature_dim = recogniser.feature_dim if face_features else None
        return self

    @property
    def scene_dim(self) -> int:
        """D, the length of a scene feature vector."""
        return self.backbone.feature_dim

    def fingerprint(self) -> dict:
        """Everything that determines the tensors (JSON-able)."""
        fp = {
            "backbone": {
                "name": self.backbone.name,
                "weights_sha256": self.backbone.weights_sha256,
                "preprocessing": self.backbone.preprocessing,
                "feature_dim": self.scene_dim,
                "prelast": self.prelast,
            },
            "detector": self.detector.config(),
            "recogniser": {
                "name": self.recogniser.name,
                "weights_sha256": self.recogniser.weights_sha256,
                "own_classes": list(self.recogniser.own_classes),
                "preprocessing": self.recogniser.preprocessing,
                "face_margin": self.face_margin,
            },
            "classes": list(BASIC7),
            "K": self.K,
            "emolog_version": emolog.__version__,
        }
        if self.face_feature_dim is not None:
            # Only when on: a cache built without the field keeps the fingerprint it always had.
            fp["recogniser"]["face_features"] = {"dim": self.face_feature_dim, "layer": self.recogniser.feature_layer}
        return json.loads(json.dumps(fp, default=str))  # plain JSON types only

    def grey_face_logits(self) -> np.ndarray:
        """Logits [7] (BASIC7 order) the recogniser gives a uniform grey face crop: what the
        original's dummy padding faces contributed (the logic layer's 'original' mode)."""
        grey = Image.new("RGB", (GREY_FACE_SIZE, GREY_FACE_SIZE), (GREY_FACE_VALUE,) * 3)
        return self.recogniser.logits([grey])[0].numpy().astype(np.float32)

    def preparer(self) -> Preparer:
        """The per-image preparation step, to run where the images are decoded."""
        return Preparer(self.backbone._transform)

    def perceive_batch(self, images: list[Image.Image]) -> dict[str, np.ndarray]:
        """Per-image cache tensors for ``images`` (see the module docstring for shapes).

        Raises PerceptionError naming *every* bad item (index and reason) before doing any
        work, so the caller can reject exactly those and rerun the good ones.
        """
        prep, bad, items = self.preparer(), [], []
        for i, im in enumerate(images):
            try:
                items.append(prep(im))
            except PerceptionError as e:
                bad.append((i, str(e)))
        if bad:
            raise PerceptionError("cannot perceive: " + "; ".join(f"image {i}: {r}" for i, r in bad))
        return self.perceive_prepared(items)

    @torch.no_grad()
    def perceive_prepared(self, items: list[Prepared]) -> dict[str, np.ndarray]:
        """``perceive_batch`` for images already prepared by ``preparer()``: one backbone
        pass over the whole batch, one recogniser pass over every face of the batch."""
        n, K = len(items), self.K
        out = _empty(n, K, self.scene_dim, self.face_feature_dim)
        if n == 0:
            if self.prelast:
                out["scene_prelast"] = np.zeros((0, *self.backbone.prelast_shape), np.float16)
            return out
        rgb = [p.image for p in items]
        x = torch.stack([p.scene_input for p in items]).to(self.device, non_blocking=True)
        pre = self.backbone.prelast(x)
        out["scene"] = self.backbone.last_block(pre).float().cpu().numpy()
        if self.prelast:
            out["scene_prelast"] = pre.half().cpu().numpy()

        faces = self.detector.detect(rgb)
        crops, slots = [], []
        for i, (im, found) in enumerate(zip(rgb, faces)):
            out["image_size"][i] = im.size
            out["n_faces"][i] = len(found)
            for k, f in enumerate(found[:K]):
                _fill_face(out, i, k, f)
                crops.append(crop_face(im, f.box, self.face_margin))
                slots.append((i, k))
        if crops:
            self._read_expressions(out, crops, slots)
        return out

    def _read_expressions(
        self, out: dict[str, np.ndarray], crops: list[Image.Image], slots: list[tuple[int, int]]
    ) -> None:
        """Each face's logits and own softmax into its (image, slot); with face features, also
        its embedding, from the same recogniser pass."""
        if self.face_feature_dim is None:
            logits = self.recogniser.logits(crops)
        else:
            logits, features = self.recogniser.logits_and_features(crops)
            for (i, k), ft in zip(slots, features.numpy()):
                out["face_features"][i, k] = ft
        probs = torch.softmax(logits, dim=1)  # one distribution per face
        for (i, k), lg, pr in zip(slots, logits.numpy(), probs.numpy()):
            out["face_logits"][i, k] = lg
            out["face_probs"][i, k] = pr


def _empty(n: int, K: int, D: int, F: int | None) -> dict[str, np.ndarray]:
    """Zero tensors of a batch; ``face_features`` [n, K, F] only when F is given."""
    features = {} if F is None else {"face_features": np.zeros((n, K, F), np.float32)}
    return {
        "scene": np.zeros((n, D), np.float32),
        "face_probs": np.zeros((n, K, 7), np.float32),
        "face_logits": np.zeros((n, K, 7), np.float32),
        "face_boxes": np.zeros((n, K, 4), np.float32),
        "face_area": np.zeros((n, K), np.float32),
        "face_conf": np.zeros((n, K), np.float32),
        "face_mask": np.zeros((n, K), bool),
        "n_faces": np.zeros(n, np.int64),
        "image_size": np.zeros((n, 2), np.int64),
        **features,
    }


def _fill_face(out: dict[str, np.ndarray], i: int, k: int, f: Face) -> None:
    out["face_boxes"][i, k] = f.box
    out["face_area"][i, k] = f.area
    out["face_conf"][i, k] = f.confidence
    out["face_mask"][i, k] = True
