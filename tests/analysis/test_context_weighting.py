"""Face-weighting baselines: size-, confidence- and learned-importance-weighted face averages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emolog.experiments.face_weighting import (
    FACE_WEIGHTINGS,
    centrality,
    confidence_weighted_probs,
    face_weighting_probs,
    fit_learned_weighting,
    recogniser_confidence,
    size_weighted_probs,
)


def _scene_and_faces():
    scene = np.tile(np.eye(7)[6], (2, 1))  # the scene says neutral
    faces = np.zeros((2, 3, 7))
    faces[:, 0] = np.eye(7)[3]  # face1: happy, certain
    faces[:, 1] = np.full(7, 1 / 7)  # face2: no idea
    mask = np.array([[True, True, False], [False, False, False]])
    faces[1] = 0
    area = np.array([[0.03, 0.01, 0.0], [0, 0, 0]])
    return scene, faces, mask, area


def test_size_weighted_averages_faces_by_area_and_falls_back_to_the_scene() -> None:
    scene, faces, mask, area = _scene_and_faces()
    p = size_weighted_probs(scene, faces, mask, area)
    expected0 = (0.03 * faces[0, 0] + 0.01 * faces[0, 1]) / 0.04
    assert np.allclose(p[0], expected0)
    assert np.allclose(p[1], scene[1])  # no face: the scene, not a dummy
    assert np.allclose(p.sum(1), 1)


def test_confidence_weighted_ignores_a_flat_reading() -> None:
    scene, faces, mask, _ = _scene_and_faces()
    conf = recogniser_confidence(faces)
    assert conf[0, 0] == pytest.approx(1.0) and conf[0, 1] == pytest.approx(0.0, abs=1e-9)
    p = confidence_weighted_probs(scene, faces, mask)
    assert p[0, 3] == pytest.approx(1.0, abs=1e-5)  # the uniform face gets ~0 weight
    assert np.allclose(p[1], scene[1])


def test_centrality_of_boxes() -> None:
    boxes = np.array([[[40.0, 40.0, 60.0, 60.0], [0.0, 0.0, 10.0, 10.0], [0, 0, 0, 0]]])
    c = centrality(boxes, np.array([[100, 100]]))
    assert c[0, 0] == pytest.approx(1.0)
    assert c[0, 1] == pytest.approx(1 - np.sqrt(0.9**2 * 2) / np.sqrt(2))


def _synthetic(n: int, rng: np.random.Generator) -> dict:
    """Labels come from the larger of two faces; the small face and the scene are noise."""
    area = np.stack([10 ** rng.uniform(-1.5, -0.5, n), 10 ** rng.uniform(-3, -2, n), np.zeros(n)], 1)
    labels = rng.integers(0, 7, n)
    faces = np.zeros((n, 3, 7))
    faces[:, 0] = 0.05 / 6
    faces[np.arange(n), 0, labels] = 0.95
    faces[:, 1] = rng.dirichlet(np.ones(7), n)
    return {
        "scene_probs": rng.dirichlet(np.ones(7), n),
        "face_probs": faces,
        "face_mask": np.array([[True, True, False]] * n),
        "face_area": area,
        "face_boxes": np.tile([[[10.0, 10.0, 20.0, 20.0]]], (n, 3, 1)),
        "image_size": np.tile([[100, 100]], (n, 1)),
        "labels": labels,
    }


def test_learned_weighting_finds_the_informative_face() -> None:
    rng = np.random.default_rng(0)
    train, val, test = _synthetic(600, rng), _synthetic(200, rng), _synthetic(300, rng)
    model = fit_learned_weighting(train, val, seed=0)
    assert model.coef[0] > 0  # larger faces matter more
    p = face_weighting_probs("learned-weighting", test, train, val, seed=0)
    y = test["labels"]
    nll_learned = -np.log(p[np.arange(len(y)), y]).mean()
    uniform = (test["scene_probs"] + test["face_probs"][:, 0] + test["face_probs"][:, 1]) / 3
    assert nll_learned < -np.log(uniform[np.arange(len(y)), y]).mean()
    assert np.allclose(p.sum(1), 1)
    with torch.no_grad():
        w = model.weights(torch.tensor(test["face_mask"]), torch.zeros(len(y), 3, 3, dtype=torch.float64))
    assert (w[:, 3] == 0).all()  # the empty slot gets nothing


def test_unknown_weighting_and_missing_arrays_are_named() -> None:
    scene, faces, mask, area = _scene_and_faces()
    with pytest.raises(ValueError, match="unknown face weighting 'median'"):
        face_weighting_probs("median", {"scene_probs": scene})
    with pytest.raises(ValueError, match="pass train and val"):
        face_weighting_probs("learned-weighting", {"scene_probs": scene})
    with pytest.raises(ValueError, match=r"needs arrays \['face_boxes'"):
        fit_learned_weighting({"scene_probs": scene, "face_probs": faces, "face_mask": mask, "face_area": area}, {})
    assert set(FACE_WEIGHTINGS) == {"size-weighted", "confidence-weighted", "learned-weighting"}
