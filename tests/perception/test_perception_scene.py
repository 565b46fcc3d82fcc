"""Scene backbones and Scene2EmotionNet: real weights where they ship, checkpoints written in
the official formats where they don't."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
import torchvision
from PIL import Image

from emolog.perception.common import WeightsError, sha256_file
from emolog.perception.scene import BACKBONES, PLACES365_URL, RESNET18_IMAGENET_URL, build_backbone
from emolog.perception.scene2emotion import Scene2EmotionNet
from helpers.networks import write_places_checkpoint


@pytest.fixture(scope="module")
def lite():
    return build_backbone("efficientnet-lite0-imagenet", device="cpu")


def _img(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)())


def test_efficientnet_lite0_recognises_real_photos(lite):
    x = lite.preprocess([_img("chelsea"), _img("coffee")])
    assert x.shape == (2, 3, 224, 224)
    with torch.no_grad():
        logits = lite.classifier(lite(x))
    top1 = logits.argmax(1).tolist()
    assert 281 <= top1[0] <= 285, lite.class_names[top1[0]]  # a cat class
    assert top1[1] in (967, 968), lite.class_names[top1[1]]  # espresso / cup
    assert lite.class_names[285] == "Egyptian cat"


def test_features_deterministic_and_batch_independent(lite):
    ims = [_img("astronaut"), _img("coffee")]
    with torch.no_grad():
        a = lite(lite.preprocess(ims))
        b = lite(lite.preprocess(ims))
        single = lite(lite.preprocess(ims[1:]))
    assert a.shape == (2, 1280)
    assert torch.equal(a, b)
    torch.testing.assert_close(a[1:], single, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a[0], a[1])  # different images, different features


def test_lite_last_block_has_parameters_and_splits_exactly(lite):
    n_params = sum(p.numel() for p in lite.last_block.parameters())
    assert n_params > 0  # the original fine-tuned a parameter-free pooling layer
    assert all(not p.requires_grad for p in lite.parameters())  # frozen by default
    x = lite.preprocess([_img("chelsea")])
    with torch.no_grad():
        pre = lite.prelast(x)
        assert pre.shape == (1, 192, 7, 7) == (1, *lite.prelast_shape)
        torch.testing.assert_close(lite.last_block(pre), lite(x))


def test_places365_checkpoint_in_official_format(tmp_path):
    ckpt = tmp_path / "resnet18_places365.pth.tar"
    ref = write_places_checkpoint(ckpt)
    names = tmp_path / "categories_places365.txt"
    names.write_text("".join(f"/{chr(97 + i % 26)}/place_{i} {i}\n" for i in range(365)))
    bb = build_backbone("resnet18-places365", ckpt, device="cpu", class_names=names)
    assert bb.feature_dim == 512 and bb.class_names[7] == "place_7"
    assert bb.weights_sha256 == sha256_file(ckpt)
    x = bb.preprocess([_img("coffee")])
    ref_features = torch.nn.Sequential(*list(ref.children())[:-1])
    with torch.no_grad():
        feats = bb(x)
        torch.testing.assert_close(feats, ref_features(x).flatten(1))
        torch.testing.assert_close(bb.classifier(feats), ref(x))
        assert bb.prelast(x).shape == (1, 256, 14, 14) == (1, *bb.prelast_shape)
    assert sum(p.numel() for p in bb.last_block.parameters()) > 0
    assert bb.preprocessing["resize"] == [256, 256] and bb.preprocessing["crop"] == 224


def test_places365_missing_file_says_where_to_get_it(tmp_path):
    missing = tmp_path / "resnet18_places365.pth.tar"
    with pytest.raises(WeightsError) as e:
        build_backbone("resnet18-places365", missing)
    assert str(missing) in str(e.value) and PLACES365_URL in str(e.value)
    with pytest.raises(WeightsError, match="no weights file given"):
        build_backbone("resnet18-places365")


def test_places365_mismatched_files_are_named(tmp_path):
    wrong_classes = tmp_path / "imagenet_shaped.pth.tar"
    net = torchvision.models.resnet18(num_classes=1000)
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, wrong_classes)
    with pytest.raises(WeightsError, match="does not match the architecture") as e:
        build_backbone("resnet18-places365", wrong_classes)
    assert str(wrong_classes) in str(e.value)
    no_state = tmp_path / "bare.pth.tar"
    torch.save(net.state_dict(), no_state)  # a bare state dict is not the official format
    with pytest.raises(WeightsError, match="'state_dict'"):
        build_backbone("resnet18-places365", no_state)
    garbage = tmp_path / "garbage.pth.tar"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read weights file") as e:
        build_backbone("resnet18-places365", garbage)
    assert str(garbage) in str(e.value)


def test_resnet18_imagenet_from_path_and_missing(tmp_path, monkeypatch):
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.manual_seed(1)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    bb = build_backbone("resnet18-imagenet", path, device="cpu")
    assert bb.feature_dim == 512 and len(bb.class_names) == 1000
    assert sum(p.numel() for p in bb.last_block.parameters()) > 0
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_hub"))  # no cached weights there
    with pytest.raises(WeightsError, match="resnet18-imagenet") as e:
        build_backbone("resnet18-imagenet")
    assert RESNET18_IMAGENET_URL in str(e.value)


def test_registry_lists_feature_sizes_and_rejects_unknown():
    assert BACKBONES["efficientnet-lite0-imagenet"].feature_dim == 1280
    assert BACKBONES["resnet18-places365"].feature_dim == 512
    for name, spec in BACKBONES.items():
        assert spec.preprocessing["crop"] == 224 and spec.weights_source, name
    with pytest.raises(ValueError, match="unknown scene backbone 'vgg'"):
        build_backbone("vgg")


def test_scene2emotion_net_returns_logits_with_kaiming_init():
    torch.manual_seed(0)
    net = Scene2EmotionNet(in_dim=1280, hidden=64, n_classes=7, dropout=0.5).eval()
    x = torch.randn(8, 1280)
    out = net(x)
    assert out.shape == (8, 7)
    assert not torch.allclose(out.sum(1), torch.ones(8))  # logits, not probabilities
    assert torch.all(net.fc1.bias == 0) and torch.all(net.fc2.bias == 0)
    # He init: std sqrt(2 / fan_in) for the ReLU layer (64*1280 samples: within 5%)
    assert abs(net.fc1.weight.std().item() / np.sqrt(2 / 1280) - 1) < 0.05
    small = Scene2EmotionNet(in_dim=512, hidden=16, n_classes=8)
    assert small(torch.randn(2, 512)).shape == (2, 8)
    with pytest.raises(ValueError, match=r"\[B, 512\]"):
        small(torch.randn(2, 1280))
    net.train()
    torch.manual_seed(1)
    a = net(x)
    assert not torch.allclose(a, out)  # dropout active in training
