"""Photo sets shared by several test modules: small real photos from scikit-image (with LFW
faces pasted in) and the data directories ``emolog index`` would write for them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from skimage import data as skd

from emolog.data.index import build_index
from emolog.data.readers import RECORD_COLUMNS
from emolog.data.split import make_split, write_split
from emolog.labels import get_mapping

# test_cache_build's six photos (also tests/faults, test_cache_cli, test_scale_*)


def six_photos() -> dict[str, tuple[Image.Image, str]]:
    """Small real photos, every one a different size, with 0, 1, 2 or 3 faces."""
    astro = Image.fromarray(skd.astronaut())
    face = astro.crop((140, 20, 300, 200))
    pair = Image.new("RGB", (300, 150), (90, 120, 150))
    pair.paste(face.resize((110, 125)), (10, 12))
    pair.paste(face.resize((80, 90)).transpose(Image.FLIP_LEFT_RIGHT), (190, 30))
    crowd = Image.fromarray(skd.coffee()).resize((280, 187))
    for k, f in enumerate(skd.lfw_subset()[:3]):
        crowd.paste(Image.fromarray((f * 255).astype(np.uint8)).convert("RGB").resize((60, 60)), (15 + 90 * k, 50))
    # Keep them small: MTCNN's cost grows with the pixel count and the suite has ~60 s.
    return {
        "a/astronaut.jpg": (astro.resize((160, 160)), "Joy"),
        "a/chelsea.jpg": (Image.fromarray(skd.chelsea()).resize((150, 100)), "Sadness"),
        "b/crowd.jpg": (crowd, "Anger"),
        "b/pair.jpg": (pair, "Fear"),
        "b/camera.jpg": (Image.fromarray(skd.camera()).convert("RGB").resize((144, 144)), "Surprise"),
        "c/rocket.jpg": (Image.fromarray(skd.rocket()).resize((120, 80)), "Trust"),
    }


def write_data_dir(d: Path) -> dict[str, tuple[str, tuple[int, int]]]:
    """Write a data directory as ``emolog index`` writes it into ``d`` (photos under
    ``d/images``, index.csv, rejects.csv, split.json); rocket.jpg is damaged *after* indexing and
    notes.jpg (not an image) is rejected by the index. Returns rel_path -> (label, size)."""
    root = d / "images"
    truth = {}
    for rel, (im, lab) in six_photos().items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        im.save(root / rel, quality=92)
        truth[rel] = (lab, im.size)
    (root / "c/notes.jpg").write_text("not an image")
    recs = [{"path": rel, "label_raw": lab, "source": rel} for rel, (lab, _) in truth.items()]
    recs.append({"path": "c/notes.jpg", "label_raw": "Joy", "source": "notes"})
    recs = pd.DataFrame(recs).reindex(columns=RECORD_COLUMNS, fill_value="")
    res = build_index(recs, get_mapping(), root=root, progress=False)
    res.index.save(d / "index.csv")
    res.rejects.to_csv(d / "rejects.csv", index=False)
    write_split(make_split(res.index.ids, res.index.df["label"].tolist(), seed=42), d / "split.json")
    raw = (root / "c/rocket.jpg").read_bytes()
    (root / "c/rocket.jpg").write_bytes(raw[: len(raw) // 2])  # truncated after indexing
    return truth


# test_train_unfreeze's eight photos, two classes (also test_train_rebuild, test_cache_face_features)


def eight_photos() -> dict[str, tuple[Image.Image, str]]:
    """Eight small real photos, four Joy and four Sadness, with 0, 1, 2 or 3 faces."""
    astro = Image.fromarray(skd.astronaut())
    face = astro.crop((140, 20, 300, 200))
    pair = Image.new("RGB", (300, 150), (90, 120, 150))
    pair.paste(face.resize((110, 125)), (10, 12))
    crowd = Image.fromarray(skd.coffee()).resize((280, 187))
    for k, f in enumerate(skd.lfw_subset()[:3]):
        crowd.paste(Image.fromarray((f * 255).astype(np.uint8)).convert("RGB").resize((60, 60)), (15 + 90 * k, 50))
    grey = lambda a: Image.fromarray(a).convert("RGB")  # noqa: E731
    return {  # 4 + 4 images so that a stratified 50/25/25 split fills train, val and test
        "joy/astronaut.jpg": (astro.resize((160, 160)), "Joy"),
        "joy/pair.jpg": (pair, "Joy"),
        "joy/coffee.jpg": (Image.fromarray(skd.coffee()).resize((150, 100)), "Joy"),
        "joy/rocket.jpg": (Image.fromarray(skd.rocket()).resize((120, 80)), "Joy"),
        "sad/chelsea.jpg": (Image.fromarray(skd.chelsea()).resize((150, 100)), "Sadness"),
        "sad/crowd.jpg": (crowd, "Sadness"),
        "sad/camera.jpg": (grey(skd.camera()).resize((144, 144)), "Sadness"),
        "sad/coins.jpg": (grey(skd.coins()).resize((150, 120)), "Sadness"),
    }


def write_indexed_photos(d: Path):
    """The eight photos under ``d/images``, their index.csv and a stratified 50/25/25 split.json;
    returns the index result (``.index``)."""
    root = d / "images"
    for rel, (im, _) in eight_photos().items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        im.save(root / rel, quality=92)
    recs = pd.DataFrame([{"path": rel, "label_raw": lab, "source": rel} for rel, (_, lab) in eight_photos().items()])
    res = build_index(recs.reindex(columns=RECORD_COLUMNS, fill_value=""), get_mapping(), root=root, progress=False)
    res.index.save(d / "index.csv")
    split = make_split(res.index.ids, res.index.df["label"].tolist(), seed=42, fractions=(0.5, 0.25, 0.25))
    write_split(split, d / "split.json")
    return res


# test_end_to_end's twenty scene photos (also test_walkthrough)

SCENES = ("astronaut", "chelsea", "coffee", "camera")
OWN_FACES = {"astronaut": 1, "camera": 1}  # faces already in the scene photo
# LFW faces that MTCNN finds with p >= 0.998 at 96 and 128 px on a scene background: the test
# checks the pipeline, not the detector's recall on low-resolution (25 px) faces.
LFW_FACES = (0, 3, 12, 18, 24, 33, 39, 45, 60, 63, 66, 75, 93)
LONG_SIDE = 480


def scene_photo(k: int) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """Photo number ``k`` (0-19) and the boxes (x1, y1, x2, y2, px) of the faces pasted into it.

    Faces go along the bottom edge, clear of the astronaut's and the cameraman's own faces;
    at most 3 faces per photo in all, so every face has a slot (K = 3).
    """
    scene = SCENES[k % len(SCENES)]
    im = Image.fromarray(getattr(skd, scene)()).convert("RGB")
    scale = LONG_SIDE / max(im.size)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC)
    n = min((k // 4) % 4, 3 - OWN_FACES.get(scene, 0))
    side = 112 - 8 * (k % 3)
    faces = skd.lfw_subset()
    boxes = []
    for j in range(n):
        x, y = 10 + j * (side + 30), im.height - side - 10
        face = faces[LFW_FACES[(k + 5 * j) % len(LFW_FACES)]]
        im.paste(
            Image.fromarray((face * 255).astype(np.uint8)).convert("RGB").resize((side, side), Image.BICUBIC), (x, y)
        )
        boxes.append((x, y, x + side, y + side))
    return im, boxes
