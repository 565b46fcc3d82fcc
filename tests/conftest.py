"""Suite-wide guards.

A test (or the code under test) that changes torch's process-wide default dtype and does not
restore it silently changes every later test in the same process, as float64 weights meeting
float32 inputs. The guard restores float32 after every test and fails the test that leaked.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _default_dtype_is_restored():
    yield
    leaked = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    assert leaked == torch.float32, f"the test left torch's default dtype at {leaked}"


# ----------------------------------------------------------------------------- offline perception


@pytest.fixture(scope="module")
def perception():
    """The offline perception (EfficientNet-Lite0, MTCNN, mini-Xception) on the CPU, one thread
    (tests/cache/test_cache_build.py, tests/perception/test_scale_batching.py)."""
    from emolog.perception.pipeline import Perception

    # One intra-op thread: on a shared, oversubscribed CPU OpenMP's spinning threads made these
    # small forward passes ~8x slower (measured: 1.2 s vs 9.4 s for the six photos).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Perception(device="cpu")
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- real-photo research data

RESEARCH_LABELS = ("Joy", "Sadness", "Anger", "Fear")  # FindingEmo's spellings (Plutchik-24)
RESEARCH_FACES = (0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 1, 3, 5, 2)  # faces pasted into photo k


def _research_photo(k: int):
    """Photo k: a scene (coffee or chelsea, 640 px wide) with RESEARCH_FACES[k] LFW faces."""
    import numpy as np
    from PIL import Image
    from skimage import data as skd

    from helpers.photos import LFW_FACES

    scene = (skd.coffee, skd.chelsea)[k % 2]()
    im = Image.fromarray(scene).convert("RGB")
    im = im.resize((640, round(im.height * 640 / im.width)), Image.BICUBIC)
    faces = skd.lfw_subset()
    for j in range(RESEARCH_FACES[k]):
        face = faces[LFW_FACES[(k + 5 * j) % len(LFW_FACES)]]
        im.paste(
            Image.fromarray((face * 255).astype(np.uint8)).convert("RGB").resize((96, 96), Image.BICUBIC),
            (12 + j * 124, im.height - 108),
        )
    return im


@pytest.fixture(scope="session")
def research_data(tmp_path_factory):
    """16 real photos with 0-5 faces, their FindingEmo-style labels (Joy, Sadness, Anger, Fear)
    indexed twice, as Emo8 (``emo8``) and as basic-7 (``basic7``), with a stratified 50/25/25
    split, and one feature cache (K = 5, face_features) from a Places365-format ResNet18, real
    MTCNN and a Hugging Face ViT folder, both written here. Returns {"emo8": D, "basic7": D}."""
    import pandas as pd

    from emolog.cache.build import BuildOptions, build_cache
    from emolog.data.index import build_index
    from emolog.data.readers import RECORD_COLUMNS
    from emolog.data.split import make_split, write_split
    from emolog.labels import get_mapping
    from emolog.perception.pipeline import Perception, PerceptionOptions
    from helpers.networks import write_places_checkpoint, write_vit_folder

    base = tmp_path_factory.mktemp("research")
    root = base / "images"
    recs = []
    for k in range(len(RESEARCH_FACES)):
        label = RESEARCH_LABELS[k % len(RESEARCH_LABELS)]
        rel = f"{label.lower()}/photo{k:02d}.jpg"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        _research_photo(k).save(root / rel, quality=92)
        recs.append({"path": rel, "label_raw": label, "source": rel})
    recs = pd.DataFrame(recs).reindex(columns=RECORD_COLUMNS, fill_value="")
    out = {}
    for name, mapping in (("emo8", "plutchik24-emo8"), ("basic7", "findingemo-basic7")):
        d = base / name
        d.mkdir()
        res = build_index(recs, get_mapping(mapping), root=root, progress=False)
        res.index.save(d / "index.csv")
        write_split(
            make_split(res.index.ids, res.index.df["label"].tolist(), seed=42, fractions=(0.5, 0.25, 0.25)),
            d / "split.json",
        )
        out[name] = d
    weights = base / "weights"
    weights.mkdir()
    write_places_checkpoint(weights / "resnet18_places365.pth.tar")
    options = PerceptionOptions(
        backbone_weights=weights / "resnet18_places365.pth.tar", recogniser_weights=write_vit_folder(weights / "vit")
    )
    perception = Perception(
        backbone="resnet18-places365",
        recogniser="vit-face-expression",
        device="cpu",
        K=5,
        face_features=True,
        options=options,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small forward passes on a shared CPU: one thread is faster
    try:
        build_cache(
            perception,
            res.index,
            res.index.ids,
            root,
            out["emo8"] / "cache",
            options=BuildOptions(batch_size=8, progress=False),
        )
    finally:
        torch.set_num_threads(threads)
    (out["basic7"] / "cache").symlink_to(out["emo8"] / "cache")
    return out
