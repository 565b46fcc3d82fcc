"""The cached tensors a binding may read, and which image and face slot an input term reads.

Every feed ``cache.<field>`` names a tensor of the feature cache (docs/cache.md), or one
computed from it per split (``scene_classes``). Its *level* says what one image holds:

* ``image``: one vector per image (``scene`` [D], ``scene_classes`` [C], ``n_faces`` [1], ...);
* ``face``: one vector per face slot (``face_probs`` [K, 7], ``face_mask`` [K, 1], ...).

**Which part an input term reads** (the address of a network input, ``address``): the input
list's ``tensor(S(I, k))`` (integer k; ``Faces`` holds ``tensor(face(I, 1))`` ..
``tensor(face(I, n))``) reads face slot k of image I; an atom named in the binding's
``slots`` table (default ``face1`` .. ``face<K>``: the seed programs' ``[X, F]``) reads that
slot; otherwise the input reads the image as a whole: a face-level field then gives its K
slots side by side (slot-major: slot 1's values, then slot 2's, ...; absent slots are 0).
Slot k is the k-th largest detected face: the cache fills the first min(n_faces, K) slots.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from problog.logic import Constant, Term, term2list

from emolog.labels import BASIC7
from emolog.logic.bindings import PLACEHOLDER


@dataclass(frozen=True)
class Field:
    """One readable field: ``level`` image | face; ``kind`` distribution (rows sum to 1),
    probability (values in [0, 1], for nn/2 facts) or features (a head's or function's input);
    ``classes`` a distribution's class names (None: the cache's backbone names them)."""

    level: str
    kind: str
    what: str
    classes: tuple[str, ...] | None = None


FIELDS: dict[str, Field] = {
    "scene": Field("image", "features", "the scene backbone's feature vector [D]"),
    "scene_classes": Field(
        "image",
        "distribution",
        "the scene backbone's own class distribution from its "
        "classifier head, e.g. the 365 Places365 categories (needs a real backbone)",
    ),
    "face_probs": Field("face", "distribution", "the recogniser's expression distribution (basic-7 order)", BASIC7),
    "face_logits": Field("face", "features", "the recogniser's logits (basic-7 order)"),
    "face_features": Field("face", "features", "the recogniser's embedding of each face (cache build --face-features)"),
    "face_mask": Field("face", "probability", "1 where the slot holds a detected face"),
    "face_conf": Field("face", "probability", "the detector's confidence"),
    "face_area": Field("face", "probability", "the face box's area / the image's area"),
    "face_boxes": Field("face", "features", "x1, y1, x2, y2 in pixels"),
    "n_faces": Field("image", "features", "the number of detected faces (may exceed K)"),
    "image_size": Field("image", "features", "width, height in pixels"),
}
# per-face facts computed from the cache (context_rules.pl's large/confident faces)
EVIDENCE: dict[str, Field] = {
    "evidence.large_face": Field("face", "probability", "1 where the face covers >= 2% of the image"),
    "evidence.confident_face": Field("face", "probability", "1 where the recogniser's top probability is >= 0.5"),
}
# the earlier spelling of a head's inputs (still read)
OLD_HEAD_INPUTS = {
    "scene_features": "cache.scene",
    "scene_classes": "cache.scene_classes",
    "face_probs": "cache.face_probs",
    "face_mask": "cache.face_mask",
}
MASK = "cache.face_mask"  # every batch carries it: the face counts of ``Faces``
LARGE_FACE_AREA = 0.02  # box area / image area; the simulator's small/large boundary
CONFIDENT_PROB = 0.5  # recogniser top probability for the rules' confident(F)


def field_of(source: str) -> Field | None:
    """The Field of a feed name (``cache.face_probs``, ``evidence.large_face``), else None."""
    if source.startswith("cache."):
        return FIELDS.get(source[len("cache.") :])
    return EVIDENCE.get(source)


def row_values(s, source: str, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` of split ``s`` (a SplitData) for a cache or evidence feed, as float
    [B, w] (image level) or [B, K, w] (face level)."""
    if source.startswith("evidence."):
        m = s.face_mask[idx].bool()
        on = (
            s.face_area[idx] >= LARGE_FACE_AREA
            if source == "evidence.large_face"
            else s.face_probs[idx].amax(-1) >= CONFIDENT_PROB
        )
        return (m & on).float().unsqueeze(-1)
    name = source[len("cache.") :]
    x = s.derived[name] if name in s.derived else getattr(s, name)
    x = x[idx].float()
    level = FIELDS[name].level
    return x.unsqueeze(-1) if x.dim() == (2 if level == "face" else 1) else x


def address(term: Term, slots: dict[str, int]) -> tuple[str, int] | None:
    """What an input list reads: ("face", k) the k-th present face (``tensor(S(I, k))``),
    ("slot", k) face slot k (an atom of ``slots``), None the image as a whole; raises
    ValueError when it names two different faces."""
    found: set[tuple[str, int]] = set()
    for a in term2list(term, False):
        if isinstance(a, Term) and a.functor == "tensor" and a.arity == 1 and isinstance(a.args[0], Term):
            inner = a.args[0].args
            if (
                len(inner) == 2
                and inner[0] == PLACEHOLDER
                and isinstance(inner[1], Constant)
                and isinstance(inner[1].value, int)
            ):
                found.add(("face", int(inner[1].value)))
        elif isinstance(a, Term) and not isinstance(a, Constant) and a.arity == 0 and str(a) in slots:
            found.add(("slot", slots[str(a)]))
    if len(found) > 1:
        raise ValueError(f"it names faces {sorted(found)}")
    return found.pop() if found else None


def read(
    x: torch.Tensor, level: str, addr: tuple[str, int] | None, rows: torch.Tensor, present: torch.Tensor
) -> torch.Tensor:
    """[n, w]: a field's rows [B, w] / [B, K, w] read at ``addr`` (``address``; None: the
    whole image); ``present`` [B, K]: each row's slots, present faces first (``present_order``)."""
    if level != "face":
        return x[rows]
    if addr is None:
        return x[rows].flatten(1)
    kind, k = addr
    if k > x.shape[1]:
        raise IndexError(k)
    slot = present[rows, k - 1] if kind == "face" else torch.full_like(rows, k - 1)
    return x[rows, slot]


def present_order(mask: torch.Tensor) -> torch.Tensor:
    """[B, K] slot indices, each row's present faces first in slot order (the cache already
    stores them so; a mask of any order is read the same way)."""
    m = mask.reshape(mask.shape[0], -1) > 0.5
    return torch.argsort((~m).to(torch.int8), dim=1, stable=True)


def default_slots(k: int) -> dict[str, int]:
    """``face1`` .. ``face<K>`` -> 1 .. K: the seed programs' face atoms."""
    return {f"face{j}": j for j in range(1, k + 1)}


@torch.no_grad()
def add_scene_classes(s, classifier: torch.nn.Module) -> None:
    """``s.derived["scene_classes"]`` (s a SplitData): the backbone's own class distribution
    [N, C] of every row, from its classifier head on the cached scene features."""
    s.derived["scene_classes"] = torch.softmax(classifier.to(s.scene.device)(s.scene.float()), 1)
