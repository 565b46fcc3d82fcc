"""End to end: simulate -> train -> report, then open the page in headless Chromium.

Asserts what a reader would notice: the page loads without console errors, every figure
decodes, the screenshot is not blank, and the numbers shown are those in results.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emolog.cli import main
from emolog.report.browser import check_page
from emolog.report.sections import slug


@pytest.fixture(scope="module")
def sim_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("report-e2e") / "data"
    assert main(["simulate", "--out", str(data), "--n", "400"]) == 0
    return data


@pytest.fixture(scope="module")
def sim_run(sim_data) -> Path:
    run = sim_data.parent / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(sim_data),
                "--regime",
                "logic-only",
                "--set",
                "train.epochs=3",
                "--out",
                str(run),
                "--quiet",
            ]
        )
        == 0
    )
    assert main(["report", str(run), "--out", str(sim_data.parent / "page" / "report.html")]) == 0
    return run


def _value(check, id_: str) -> float:
    assert id_ in check.values, f"no element #{id_} with data-value in the page"
    return float(check.values[id_]["value"])


def test_report_of_a_real_run_renders_in_chromium(sim_run):
    html = sim_run.parent / "page" / "report.html"
    results = json.loads((sim_run / "results.json").read_text())
    config = json.loads((sim_run / "config.json").read_text())
    check = check_page(html)

    assert check.errors == []
    assert len(check.images) >= 8
    undecoded = [i["alt"] for i in check.images if i["naturalWidth"] <= 0]
    assert undecoded == []
    assert check.pixel_std > 10  # a blank (all white or all one colour) page has ~0

    # first line: what the data is
    assert check.about.startswith("About: simulated data")
    assert config["provenance"]["cache_fingerprint_hash"] in check.about
    assert results["data"]["dataset"] in check.about

    # key numbers equal results.json, shown rounded to 3 decimals
    test, before = results["metrics"]["test"], results["metrics_before"]["test"]
    for key in ("accuracy", "macro_f1", "weighted_f1", "average_precision", "uar", "nll", "ece"):
        assert _value(check, f"m-test-{key}") == pytest.approx(test[key], rel=1e-12)
        assert check.values[f"m-test-{key}"]["text"] == f"{test[key]:.3f}"
        assert _value(check, f"m-before-test-{key}") == pytest.approx(before[key], rel=1e-12)
    assert _value(check, "m-test-n") == test["n"]
    for s, w in results["source_weights"].items():
        assert _value(check, f"w-{s}") == pytest.approx(w, rel=1e-12)
        assert _value(check, f"wtrue-{s}") == pytest.approx(results["true_source_weights"][s], rel=1e-12)

    for c, v in test["per_class"].items():
        assert _value(check, f"pc-{slug(c)}-average_precision") == pytest.approx(v["average_precision"], rel=1e-12)

    # every run section is there (no empty experiment sections); those without input say so
    assert check.sections == [
        "summary",
        "weights",
        "confusion",
        "f1",
        "changes",
        "flips",
        "trust",
        "gallery",
        "analysis",
    ]
    assert any("no error analysis in" in n for n in check.notes)  # `emolog analyse` has not run
    assert any("Data is simulated" in n for n in check.notes)
    assert not any(n.startswith("section failed") for n in check.notes)
    # the logic parameter by its t() atoms, not its tensor path
    md = html.with_name("report.md").read_text()
    assert "t(source(scene)), t(source(face1))" in md and "tparams.values" not in md

    assert md.splitlines()[0] == check.about
    assert f"| accuracy | {test['accuracy']:.3f} |" in md


def test_report_of_a_real_experiment_renders_in_chromium(sim_data):
    exp = sim_data.parent / "exp"
    assert (
        main(
            [
                "experiment",
                "--data",
                str(sim_data),
                "--regimes",
                "logic-only,joint",
                "--seeds",
                "0",
                "--memorisation",
                "100",
                "--baselines",
                "majority",
                "--set",
                "train.epochs=2",
                "--out",
                str(exp),
                "--quiet",
            ]
        )
        == 0
    )
    # --screenshot runs the same browser check and fails on console errors or broken figures
    assert main(["report", str(exp), "--screenshot", str(exp / "shot.png")]) == 0
    from PIL import Image

    assert Image.open(exp / "shot.png").width == 1280
    check = check_page(exp / "report.html")

    assert check.errors == []
    assert len(check.images) >= 8
    assert [i["alt"] for i in check.images if i["naturalWidth"] <= 0] == []
    assert check.pixel_std > 10
    assert check.about.startswith("About: simulated data")
    assert check.sections[0] == "comparison"
    assert not any(n.startswith("section failed") for n in check.notes)
    assert not any("memorisation.csv is absent" in n for n in check.notes)
    assert any(i["alt"] == "memorisation curve" for i in check.images)

    import pandas as pd

    cmp = pd.read_csv(exp / "comparison.csv")
    for _, row in cmp.iterrows():
        for metric in ("accuracy", "macro_f1", "weighted_f1", "average_precision", "nll"):
            cell = f"cmp-{slug(row['system'])}-{metric}"
            assert _value(check, cell) == pytest.approx(row[f"{metric}_mean"], rel=1e-12)
    boot = pd.read_csv(exp / "bootstrap.csv")
    for _, row in boot.iterrows():
        assert _value(check, f"boot-{slug(row['system'])}-{slug(row['metric'])}") == pytest.approx(
            row["diff"], rel=1e-12
        )
    for regime in ("logic-only", "joint"):
        res = json.loads((exp / "runs" / f"{regime}-s0" / "results.json").read_text())
        for s, w in res["source_weights"].items():
            assert _value(check, f"wmean-{regime}-{s}") == pytest.approx(w, rel=1e-12)
