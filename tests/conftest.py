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


# ----------------------------------------------------------------------------- real-photo research data

RESEARCH_LABELS = ("Joy", "Sadness", "Anger", "Fear")   # FindingEmo's spellings (Plutchik-24)
RESEARCH_FACES = (0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 1, 3, 5, 2)   # faces pasted into photo k
# LFW faces MTCNN finds with p >= 0.998 at 96 px on a scene background (tests/test_end_to_end.py)
RESEARCH_LFW = (0, 3, 12, 18, 24, 33, 39, 45, 60, 63, 66, 75, 93)


def write_places365_checkpoint(path):
    """A Places365-format ResNet18 checkpoint (``state_dict`` with ``module.`` keys), seeded."""
    import torchvision
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=365)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    return path


def write_vit_folder(folder):
    """A tiny Hugging Face ViT face-expression folder in trpakov/vit-face-expression's format and
    class order, with a seeded random classifier (so faces get different distributions)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor
    labels = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    torch.manual_seed(1)
    config = ViTConfig(image_size=32, patch_size=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=37, num_labels=len(labels), id2label=dict(enumerate(labels)),
                       label2id={lab: i for i, lab in enumerate(labels)})
    model = ViTForImageClassification(config).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(20.0)
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def _research_photo(k: int):
    """Photo k: a scene (coffee or chelsea, 640 px wide) with RESEARCH_FACES[k] LFW faces."""
    import numpy as np
    from PIL import Image
    from skimage import data as skd
    scene = (skd.coffee, skd.chelsea)[k % 2]()
    im = Image.fromarray(scene).convert("RGB")
    im = im.resize((640, round(im.height * 640 / im.width)), Image.BICUBIC)
    faces = skd.lfw_subset()
    for j in range(RESEARCH_FACES[k]):
        face = faces[RESEARCH_LFW[(k + 5 * j) % len(RESEARCH_LFW)]]
        im.paste(Image.fromarray((face * 255).astype(np.uint8)).convert("RGB").resize((96, 96), Image.BICUBIC),
                 (12 + j * 124, im.height - 108))
    return im


@pytest.fixture(scope="session")
def research_data(tmp_path_factory):
    """16 real photos with 0-5 faces, their FindingEmo-style labels (Joy, Sadness, Anger, Fear)
    indexed twice, as Emo8 (``emo8``) and as basic-7 (``basic7``), with a stratified 50/25/25
    split, and one feature cache (K = 5, face_features) from a Places365-format ResNet18, real
    MTCNN and a Hugging Face ViT folder, both written here. Returns {"emo8": D, "basic7": D}."""
    import pandas as pd

    from emolog.cache.build import build_cache
    from emolog.data.index import build_index
    from emolog.data.readers import RECORD_COLUMNS
    from emolog.data.split import make_split, write_split
    from emolog.labels import get_mapping
    from emolog.perception.pipeline import Perception
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
        write_split(make_split(res.index.ids, res.index.df["label"].tolist(), seed=42, fractions=(0.5, 0.25, 0.25)),
                    d / "split.json")
        out[name] = d
    weights = base / "weights"
    perception = Perception(backbone="resnet18-places365",
                            backbone_weights=write_places365_checkpoint(weights / "resnet18_places365.pth.tar"),
                            recogniser="vit-face-expression", recogniser_weights=write_vit_folder(weights / "vit"),
                            device="cpu", K=5, face_features=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # small forward passes on a shared CPU: one thread is faster
    try:
        build_cache(perception, res.index, res.index.ids, root, out["emo8"] / "cache", batch_size=8, progress=False)
    finally:
        torch.set_num_threads(threads)
    (out["basic7"] / "cache").symlink_to(out["emo8"] / "cache")
    return out
