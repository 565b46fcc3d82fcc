"""Unit tests of the report: statistics, missing / broken inputs, the gallery of real photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import f1_score

from emolog.data.artefacts import ArtefactError
from emolog.labels import BASIC7
from emolog.report.build import build_report
from emolog.report.inputs import ReportInputError, load
from emolog.report.stats import bootstrap_per_class_f1, class_indices, trust_by_face_count, trust_by_face_size
from emolog.metrics.classification import per_class_f1


def assert_no_section_failed(html: Path) -> None:
    """A report written without --allow-partial has no failed section (build_report would
    have raised); this also checks the page says nothing of one."""
    md = html.with_name("report.md").read_text()
    assert not md.startswith("PARTIAL REPORT") and "section failed" not in md


def test_class_indices_accepts_names_and_indices_and_names_bad_values():
    assert class_indices(["happy", "angry"], BASIC7, "x").tolist() == [3, 0]
    assert class_indices([3, 0, 6], BASIC7, "x").tolist() == [3, 0, 6]
    with pytest.raises(ValueError, match=r"predictions.csv column label.*'joyful'"):
        class_indices(["happy", "joyful"], BASIC7, "predictions.csv column label")
    with pytest.raises(ValueError, match="'9'"):
        class_indices([1, 9], BASIC7, "col")


def test_per_class_f1_matches_sklearn_and_marks_unseen_classes_nan():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 6, 200), rng.integers(0, 6, 200)  # class 6 never occurs
    ours = per_class_f1(y, p, 7)
    ref = f1_score(y, p, labels=range(6), average=None)
    np.testing.assert_allclose(ours[:6], ref)
    assert np.isnan(ours[6])


def test_bootstrap_ci_brackets_the_estimate_is_seeded_and_shrinks_with_data():
    rng = np.random.default_rng(1)

    def run(n, acc):
        y = rng.integers(0, 3, n)
        p = np.where(rng.random(n) < acc, y, rng.integers(0, 3, n))
        return np.array([f"{i:05d}" for i in range(n)]), y, p

    small, big = run(60, 0.7), run(2000, 0.7)
    a = bootstrap_per_class_f1([small], 3, n_boot=300, seed=0)
    b = bootstrap_per_class_f1([small], 3, n_boot=300, seed=0)
    np.testing.assert_array_equal(a["lo"], b["lo"])
    assert np.all(a["lo"] <= a["f1"]) and np.all(a["f1"] <= a["hi"])
    wide = bootstrap_per_class_f1([big], 3, n_boot=300, seed=0)
    assert np.all(wide["hi"] - wide["lo"] < a["hi"] - a["lo"])
    # two seeds on the same images: F1 is their mean
    other = (small[0], small[1], np.roll(small[2], 1))
    two = bootstrap_per_class_f1([small, other], 3, n_boot=50, seed=0)
    np.testing.assert_allclose(
        two["f1"], (per_class_f1(small[1], small[2], 3) + per_class_f1(other[1], other[2], 3)) / 2
    )


def test_trust_tables_group_by_face_count_and_size():
    df = pd.DataFrame(
        {
            "n_faces": [0, 1, 1, 5],
            "max_face_area": [0.0, 0.005, 0.2, 0.02],
            "post_scene": [1.0, 0.4, 0.2, 0.1],
            "post_face1": [0, 0.6, 0.8, 0.5],
            "post_face2": [0, 0, 0, 0.3],
            "post_face3": [0, 0, 0, 0.1],
            "w_scene": [0.5] * 4,
            "w_face1": [0.2] * 4,
            "w_face2": [0.2] * 4,
            "w_face3": [0.1] * 4,
        }
    )
    y, p = np.array([0, 1, 2, 3]), np.array([0, 1, 0, 3])
    by_n = trust_by_face_count(df, y, p).set_index("group")
    assert by_n.loc["0", "images"] == 1 and by_n.loc["3+", "images"] == 1
    assert by_n.loc["1", "scene posterior"] == pytest.approx(0.3)
    assert by_n.loc["1", "faces posterior"] == pytest.approx(0.7)
    assert by_n.loc["1", "accuracy"] == pytest.approx(0.5)
    assert by_n.loc["3+", "faces weight"] == pytest.approx(0.5)
    by_s = trust_by_face_size(df, y, p).set_index("group")
    assert by_s["images"].to_dict() == {"no face": 1, "0%-1%": 1, "1%-3%": 1, "10%-100%": 1}


def test_directory_that_is_neither_run_nor_experiment_is_refused(tmp_path):
    with pytest.raises(ReportInputError, match="neither a run directory"):
        load(tmp_path)


def test_every_section_says_when_its_input_is_absent_or_broken(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"regime": "logic-only", "seed": 3}))
    (run / "predictions.csv").write_text("image_id,label\nabc,happy\n")  # lacks column pred
    # an input that is there but unusable: refused, naming it, unless --allow-partial
    with pytest.raises(ArtefactError, match=r"predictions.csv: lacks column\(s\) \['pred'\].*nothing written"):
        build_report(run)
    assert not (run / "report.html").exists()
    html = build_report(run, allow_partial=True)
    md = html.with_name("report.md").read_text()
    assert md.splitlines()[0].startswith("PARTIAL REPORT (--allow-partial): 1 unusable input(s): ")
    assert md.splitlines()[2].startswith("About: unknown kind of data")
    for line in (
        "results.json is absent",
        "history.csv is absent",
        "changes.json is absent",
        "predictions.csv in",
        "is unusable: ",
        "lacks column(s) ['pred']",
    ):
        assert line in md, line
    # a single run has no experiment sections to leave empty
    assert "## Memorisation curve" not in md and "## Comparison of regimes" not in md
    page = html.read_text()
    assert page.count('class="note"') >= 6
    assert "<img" not in page  # nothing to plot: no empty figures either


def _real_photo_run(tmp_path: Path) -> Path:
    """A real-data directory (real photos, index and cache written with emolog's own APIs)
    and a run directory pointing at it, with predictions for those photos."""
    from skimage import data as skdata

    from emolog.cache.writer import CacheWriter
    from emolog.data.index import ImageIndex
    from emolog.data.paths import image_id

    d = tmp_path / "data"
    (d / "img").mkdir(parents=True)
    photos = {
        "img/astronaut.png": skdata.astronaut(),
        "img/coffee.png": skdata.coffee(),
        "img/gone.png": skdata.camera(),
    }
    rows = []
    for rel, arr in photos.items():
        Image.fromarray(arr).save(d / rel)
        h, w = arr.shape[:2]
        rows.append(
            {
                "image_id": image_id(rel),
                "rel_path": rel,
                "label": "happy",
                "label_raw": "Joy",
                "valence": 1,
                "arousal": 1,
                "ambiguity": 0,
                "dec_factors": "",
                "content_hash": "",
                "width": w,
                "height": h,
            }
        )
    (d / "img/gone.png").unlink()  # a photo deleted after indexing: noted, never replaced
    ImageIndex(pd.DataFrame(rows)).save(d / "index.csv")
    ids = [r["image_id"] for r in rows]
    n = len(ids)
    fp = np.zeros((n, 3, 7), np.float32)
    fp[0, 0] = np.eye(7)[3]
    mask = np.zeros((n, 3), bool)
    mask[0, 0] = True
    boxes = np.zeros((n, 3, 4), np.float32)
    boxes[0, 0] = [170, 30, 300, 200]  # the astronaut's face, in original pixels
    w = CacheWriter(d / "cache", {"test": "gallery"}, K=3, scene_dim=8)
    w.write_shard(
        ids,
        {
            "scene": np.zeros((n, 8), np.float32),
            "face_probs": fp,
            "face_logits": np.log(fp + 1e-6),
            "face_boxes": boxes,
            "face_area": mask * 0.08,
            "face_conf": mask * 1.0,
            "face_mask": mask,
            "n_faces": mask.sum(1),
            "image_size": np.array([[512, 512]] * n),
        },
    )
    w.close()
    run = tmp_path / "run"
    run.mkdir()
    data = {
        "kind": "real",
        "dataset": "skimage",
        "cache": str(d / "cache"),
        "index": str(d / "index.csv"),
        "split": str(d / "split.json"),
    }
    (run / "results.json").write_text(json.dumps({"regime": "logic-only", "seed": 0, "data": data}))
    p = np.full((n, 7), 0.1)
    p[:, 3] = 0.4
    pd.DataFrame(
        {
            "image_id": ids,
            "label": ["happy"] * n,
            "pred": ["happy", "sad", "happy"],
            "pred_before": ["sad"] * n,
            "n_faces": mask.sum(1),
            **{f"p_{c}": p[:, k] for k, c in enumerate(BASIC7)},
            "post_scene": [0.2, 1, 1],
            "post_face1": [0.8, 0, 0],
            "post_face2": 0.0,
            "post_face3": 0.0,
            "w_scene": 0.5,
            "w_face1": 0.2,
            "w_face2": 0.2,
            "w_face3": 0.1,
            "max_face_area": mask.max(1) * 0.08,
        }
    ).to_csv(run / "predictions.csv", index=False)
    return run


def test_gallery_draws_real_photos_with_face_boxes_and_notes_missing_ones(tmp_path):
    from emolog.report.gallery import gallery
    from emolog.report.inputs import load_run
    from emolog.report.sections import read_preds

    run_dir = _real_photo_run(tmp_path)
    run = load_run(run_dir)
    pr, why = read_preds(run)
    assert why is None
    items, notes = gallery(run, pr.y, pr.p, list(BASIC7), n=3)
    assert len(items) == 3  # the missing photo still shows its distributions
    assert any("img/gone.png" in n and "photo not shown" in n for n in notes)
    assert any("no scene_net.pt" in n for n in notes)
    astro = next(i for i in items if "astronaut" in i["caption"])
    assert "1 face(s) detected" in astro["caption"] and "face1 0.80" in astro["caption"]
    assert astro["uri"].startswith("data:image/png;base64,")
    # the whole report of real photos renders with no failed section
    md = build_report(run_dir).with_name("report.md").read_text()
    assert "## Example images" in md and "section failed" not in md


def test_experiment_with_missing_runs_and_tables_still_renders_with_notes(tmp_path):
    exp = tmp_path / "exp"
    (exp / "runs" / "joint-s0").mkdir(parents=True)
    (exp / "experiment.json").write_text(
        json.dumps(
            {"config": {}, "runs": ["runs/joint-s0", "runs/joint-s1"], "data": {"kind": "simulated", "dataset": "sim"}}
        )
    )
    (exp / "runs" / "joint-s0" / "results.json").write_text(
        json.dumps(
            {"regime": "joint", "seed": 0, "source_weights": {"scene": 0.7, "face1": 0.1, "face2": 0.1, "face3": 0.1}}
        )
    )
    pd.DataFrame({"regime": ["joint"], "accuracy_mean": [0.4125], "accuracy_std": [0.01]}).to_csv(
        exp / "comparison.csv", index=False
    )
    html = build_report(exp)
    assert_no_section_failed(html)
    page, md = html.read_text(), html.with_name("report.md").read_text()
    assert md.startswith("About: simulated data · data set sim")
    assert 'id="cmp-joint-accuracy" data-value="0.4125">0.412 ± 0.010<' in page
    for line in (
        "runs/joint-s1 listed in experiment.json is absent",
        "bootstrap.csv is absent",
        "memorisation.csv is absent",
        "runs/joint-s0: predictions.csv is absent",
        "runs/joint-s0: history.csv is absent",
        "changes.json is absent",
    ):
        assert line in md, line


def test_relative_data_paths_are_found_from_another_working_directory(tmp_path, monkeypatch):
    from emolog.data.paths import resolve_recorded as resolve

    (tmp_path / "work" / "sim" / "cache").mkdir(parents=True)
    run = tmp_path / "work" / "exp" / "runs" / "joint-s0"
    run.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)  # the run recorded "sim/cache" while working in tmp_path/work
    assert resolve("sim/cache", run).resolve() == (tmp_path / "work" / "sim" / "cache").resolve()
    assert resolve("/abs/elsewhere", run) == Path("/abs/elsewhere")


def test_a_failing_section_fails_emolog_report_unless_allow_partial(tmp_path, monkeypatch, capsys):
    from emolog.cli import main
    from emolog.report import plots

    run = tmp_path / "run"
    run.mkdir()
    cm = np.eye(7, dtype=int).tolist()
    (run / "results.json").write_text(
        json.dumps(
            {
                "regime": "logic-only",
                "seed": 0,
                "metrics": {"test": {"confusion": cm, "classes": list(BASIC7), "accuracy": 1.0}},
            }
        )
    )
    assert main(["report", str(run)]) == 0
    assert_no_section_failed(run / "report.html")
    (run / "report.html").unlink()

    def broken(*args, **kwargs):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(plots, "confusion", broken)
    assert main(["report", str(run)]) == 1
    err = capsys.readouterr().err
    assert "Confusion matrices: RuntimeError: broken on purpose" in err and "--allow-partial" in err
    assert not (run / "report.html").exists()  # nothing written

    assert main(["report", str(run), "--allow-partial"]) == 0
    assert capsys.readouterr().out.startswith("PARTIAL REPORT (--allow-partial): 1 section(s) failed: Confusion")
    md = (run / "report.md").read_text()
    assert md.splitlines()[0].startswith("PARTIAL REPORT") and "section failed: RuntimeError" in md
    assert "## Results" in md  # the other sections are still there


def test_an_emo8_run_shows_eight_classes_and_the_quoted_reference(tmp_path):
    from emolog.labels import EMO8
    from emolog.metrics.classification import evaluate

    rng = np.random.default_rng(0)
    m = evaluate(rng.dirichlet(np.ones(8), size=200), rng.integers(0, 8, 200), EMO8)
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"regime": "logic-only", "seed": 0, "metrics": {"test": m}}))
    html = build_report(run)
    assert_no_section_failed(html)
    md = html.with_name("report.md").read_text()
    per_class = md[md.index("*test set, per class*") :].split("\n\n")[1]
    assert [row.split(" | ")[0].strip("| ") for row in per_class.splitlines()[2:]] == list(EMO8)
    assert "quoted from the original thesis code's results files" in md and "weighted F1 0.356" in md
    assert f"| weighted_f1 | {m['weighted_f1']:.3f} |" in md


def test_an_unreadable_input_fails_the_report_unless_allow_partial(tmp_path, capsys):
    """A run holding only a truncated results.json, and a finished run whose history.csv is
    garbage, used to render with exit 0 (the problem only a note inside the page)."""
    from emolog.cli import main
    from emolog.errors import EXIT_INPUT

    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "results.json").write_text('{"trunc')
    assert main(["report", str(cut)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.startswith(f"emolog: error: {cut / 'results.json'}: not valid JSON") and err.count("\n") == 1
    assert not (cut / "report.html").exists()
    assert main(["report", str(cut), "--allow-partial"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("PARTIAL REPORT (--allow-partial): 1 unusable input(s): ") and "results.json" in first

    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "results.json").write_text(json.dumps({"regime": "logic-only", "seed": 0}))
    (garbage / "history.csv").write_bytes(bytes(range(256)))
    assert main(["report", str(garbage)]) == EXIT_INPUT
    assert "history.csv: not UTF-8 text" in capsys.readouterr().err
