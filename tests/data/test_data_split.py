"""emolog.data.split: seeded, stratified, order-independent splits."""

import json
import random

import pytest

from emolog.data.artefacts import ArtefactMissing
from emolog.data.paths import image_id
from emolog.data.split import SplitError, load_split, make_split, seeded_order, write_split

CLASSES = ["angry", "happy", "sad", "neutral"]


def _data(n=400):
    ids = [image_id(f"img/{k:04d}.jpg") for k in range(n)]
    # Imbalanced on purpose: happy is 40%, angry 10%.
    labels = [CLASSES[0] if k % 10 == 0 else CLASSES[1] if k % 10 < 5 else CLASSES[2 + k % 2] for k in range(n)]
    return ids, labels


def test_split_is_a_partition_with_the_requested_fractions_per_class():
    ids, labels = _data()
    s = make_split(ids, labels, seed=42)
    tr, va, te = set(s["train"]), set(s["val"]), set(s["test"])
    assert tr | va | te == set(ids) and not (tr & va or tr & te or va & te)
    lab = dict(zip(ids, labels))
    for c in CLASSES:
        n = labels.count(c)
        assert sum(lab[i] == c for i in te) == round(0.2 * n)
        assert sum(lab[i] == c for i in va) == round(0.1 * n)
    assert (s["seed"], s["fractions"], s["n_train"]) == (42, [0.7, 0.1, 0.2], None)


def test_split_does_not_depend_on_input_order():
    ids, labels = _data()
    pairs = list(zip(ids, labels))
    random.Random(7).shuffle(pairs)
    a = make_split(ids, labels, seed=3)
    b = make_split([p[0] for p in pairs], [p[1] for p in pairs], seed=3)
    assert a == b


def test_different_seed_gives_a_different_split():
    ids, labels = _data()
    assert make_split(ids, labels, seed=1)["test"] != make_split(ids, labels, seed=2)["test"]


def test_n_train_takes_the_first_n_of_the_seeded_order_and_leaves_val_test_alone():
    ids, labels = _data()
    full = make_split(ids, labels, seed=42)
    cut = make_split(ids, labels, seed=42, n_train=50)
    assert cut["train"] == full["train"][:50]
    assert cut["val"] == full["val"] and cut["test"] == full["test"]
    assert cut["n_train_pool"] == len(full["train"])
    # First N is a shuffle, not a class-sorted block: several classes appear.
    lab = dict(zip(ids, labels))
    assert len({lab[i] for i in cut["train"][:20]}) >= 3
    with pytest.raises(SplitError, match="only"):
        make_split(ids, labels, n_train=10_000)


def test_seeded_order_is_a_fixed_function_of_seed_and_ids():
    # Pinned values: the order must be the same on every machine and library version.
    ids = ["a", "b", "c", "d", "e", "f"]
    assert seeded_order(ids, 42, "train") == ["d", "b", "c", "a", "f", "e"]
    assert seeded_order(ids[::-1], 42, "train") == ["d", "b", "c", "a", "f", "e"]
    assert seeded_order(ids, 43, "train") == ["f", "e", "d", "c", "a", "b"]


def test_bad_requests_are_refused():
    with pytest.raises(SplitError, match="fractions"):
        make_split(["a"], ["x"], fractions=(0.5, 0.5, 0.5))
    with pytest.raises(SplitError, match="not unique"):
        make_split(["a", "a"], ["x", "x"])
    with pytest.raises(SplitError, match="labels"):
        make_split(["a", "b"], ["x"])


def test_write_and_load_round_trip_and_validation(tmp_path):
    ids, labels = _data(60)
    s = make_split(ids, labels, seed=5, n_train=20)
    p = tmp_path / "split.json"
    write_split(s, p)
    first = p.read_bytes()
    write_split(make_split(list(reversed(ids)), list(reversed(labels)), seed=5, n_train=20), p)
    assert p.read_bytes() == first
    got = load_split(p, known_ids=ids)
    assert got == {"train": s["train"], "val": s["val"], "test": s["test"]} and len(got["train"]) == 20
    with pytest.raises(SplitError, match="not in the index"):
        load_split(p, known_ids=ids[:10])
    bad = dict(s, val=s["val"] + s["test"][:1])
    p.write_text(json.dumps(bad))
    with pytest.raises(SplitError, match="in both"):
        load_split(p)
    with pytest.raises(ArtefactMissing, match="none.json: missing"):
        load_split(tmp_path / "none.json")


def test_many_tiny_classes_still_give_val_and_test_images():
    ids = [f"{k:02d}" for k in range(20)]
    labels = [f"class{k // 2}" for k in range(20)]  # 10 classes of 2 images
    s = make_split(ids, labels, seed=42)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (14, 2, 4)
    lab = dict(zip(ids, labels))
    for part in ("val", "test"):  # no class gives more than its share rounded up
        assert max(sum(lab[i] == c for i in s[part]) for c in set(labels)) == 1
