"""Label sets and mappings (emolog.labels)."""

import json

import pytest

from emolog.labels import (
    BASIC7,
    EMO8,
    FINDINGEMO_TO_BASIC7,
    PLUTCHIK24,
    LabelError,
    LabelMapping,
    class_index,
    get_mapping,
)


def test_label_sets_have_the_documented_sizes_and_order():
    assert BASIC7 == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert len(EMO8) == 8 and len(set(EMO8)) == 8
    assert len(PLUTCHIK24) == 24 and len(set(PLUTCHIK24)) == 24


def test_findingemo_basic7_covers_all_plutchik_labels_but_anticipation_and_vigilance():
    assert set(PLUTCHIK24) - set(FINDINGEMO_TO_BASIC7) == {"Anticipation", "Vigilance"}
    assert set(FINDINGEMO_TO_BASIC7.values()) == set(BASIC7)


def test_default_mapping_drops_and_counts():
    m = get_mapping("findingemo-basic7")
    mapped, rep = m.map_many(["Joy", "rage", " Anticipation ", "Vigilance", "happy", "Anticipation"])
    assert mapped == ["happy", "angry", None, None, "happy", None]
    assert rep.kept == {"happy": 2, "angry": 1}
    assert rep.dropped == {" Anticipation ": 1, "Vigilance": 1, "Anticipation": 1}
    assert rep.n_in == 6
    assert "3 dropped (50.0%)" in rep.summary()


def test_unmapped_policy_map_to_a_class_is_counted_as_redirected():
    m = get_mapping("findingemo-basic7", unmapped="map:neutral")
    mapped, rep = m.map_many(["Anticipation", "Joy"])
    assert mapped == ["neutral", "happy"]
    assert rep.redirected == {"Anticipation": 1}
    assert rep.kept == {"neutral": 1, "happy": 1}
    assert "mapped unmapped 'Anticipation': 1" in rep.summary()


def test_bad_unmapped_policy_and_bad_table_are_refused():
    with pytest.raises(LabelError, match="unmapped policy"):
        get_mapping("findingemo-basic7", unmapped="map:joyful")
    with pytest.raises(LabelError, match="outside its target set"):
        LabelMapping({"Joy": "joyful"}, BASIC7)


def test_mapping_from_json_file(tmp_path):
    spec = {"target": "basic7", "table": {"Glee": "happy", "Fury": "angry"}, "unmapped": "map:neutral"}
    p = tmp_path / "m.json"
    p.write_text(json.dumps(spec))
    m = get_mapping(p)
    mapped, rep = m.map_many(["glee", "FURY", "Meh", "sad"])
    assert mapped == ["happy", "angry", "neutral", "sad"]
    assert rep.redirected == {"Meh": 1}


def test_mapping_from_json_file_with_explicit_target_list(tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"target": ["pos", "neg"], "table": {"Joy": "pos", "Grief": "neg"}}))
    mapped, rep = get_mapping(p).map_many(["Joy", "Grief", "Trust"])
    assert mapped == ["pos", "neg", None]
    assert rep.dropped == {"Trust": 1}


def test_bad_mapping_files_give_clear_errors(tmp_path):
    with pytest.raises(LabelError, match="unknown mapping"):
        get_mapping(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LabelError, match="not valid JSON"):
        get_mapping(bad)
    notable = tmp_path / "notable.json"
    notable.write_text(json.dumps({"target": "basic7"}))
    with pytest.raises(LabelError, match="table"):
        get_mapping(notable)
    badtarget = tmp_path / "badtarget.json"
    badtarget.write_text(json.dumps({"target": "basic9", "table": {}}))
    with pytest.raises(LabelError, match="unknown target label set"):
        get_mapping(badtarget)


def test_plutchik_to_emo8_maps_everything():
    mapped, rep = get_mapping("plutchik24-emo8").map_many(PLUTCHIK24)
    assert None not in mapped and not rep.dropped
    assert set(mapped) == set(EMO8)


def test_class_index():
    assert class_index("neutral") == 6
    with pytest.raises(LabelError, match="unknown label"):
        class_index("joyful")


def test_mapping_file_that_is_not_an_object_is_refused(tmp_path):
    p = tmp_path / "list.json"
    p.write_text("[1, 2]")
    with pytest.raises(LabelError, match="JSON object"):
        get_mapping(p)


def test_unknown_labels_are_told_from_labels_the_mapping_drops():
    m = get_mapping("findingemo-basic7")
    mapped, rep = m.map_many(["Joy", "Zzyzx", "Anticipation", "sad"])
    assert mapped == ["happy", None, None, "sad"]
    assert rep.unknown == {"Zzyzx": 1} and rep.dropped == {"Anticipation": 1}
    assert m.is_known("anticipation") and m.is_known("Happy") and not m.is_known("Zzyzx")
    assert "unknown 'Zzyzx': 1" in rep.summary()
    # redirecting unmapped labels never turns a typo into a class
    mapped, rep = get_mapping("findingemo-basic7", unmapped="map:neutral").map_many(["Zzyzx", "Vigilance"])
    assert mapped == [None, "neutral"] and rep.unknown == {"Zzyzx": 1}


def test_a_mapping_file_may_declare_its_source_labels(tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"target": "basic7", "source": ["Glee", "Meh"], "table": {"Glee": "happy"}}))
    mapped, rep = get_mapping(p).map_many(["Glee", "Meh", "Typo"])
    assert mapped == ["happy", None, None] and rep.dropped == {"Meh": 1} and rep.unknown == {"Typo": 1}
    p.write_text(json.dumps({"target": "basic7", "table": {"Glee": "happy"}}))  # no source: all unmapped
    assert get_mapping(p).map_many(["Typo"])[1].dropped == {"Typo": 1}
