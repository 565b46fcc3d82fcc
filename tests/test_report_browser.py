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


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report-e2e")
    data, run = root / "data", root / "run"
    assert main(["simulate", "--out", str(data), "--n", "400"]) == 0
    assert main(["train", "--data", str(data), "--regime", "logic-only", "--set", "epochs=3",
                 "--out", str(run), "--quiet"]) == 0
    assert main(["report", str(run), "--out", str(root / "page" / "report.html")]) == 0
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
    for key in ("accuracy", "macro_f1", "uar", "nll", "ece"):
        assert _value(check, f"m-test-{key}") == pytest.approx(test[key], rel=1e-12)
        assert check.values[f"m-test-{key}"]["text"] == f"{test[key]:.3f}"
        assert _value(check, f"m-before-test-{key}") == pytest.approx(before[key], rel=1e-12)
    assert _value(check, "m-test-n") == test["n"]
    for s, w in results["source_weights"].items():
        assert _value(check, f"w-{s}") == pytest.approx(w, rel=1e-12)
        assert _value(check, f"wtrue-{s}") == pytest.approx(results["true_source_weights"][s], rel=1e-12)

    # every section is there; those without input say so in a note
    assert check.sections == ["summary", "weights", "confusion", "f1", "changes", "flips", "trust",
                              "memorisation", "comparison", "gallery"]
    assert any(n.startswith("memorisation.csv is absent") for n in check.notes)
    assert any("Data is simulated" in n for n in check.notes)

    md = html.with_name("report.md").read_text()
    assert md.splitlines()[0] == check.about
    assert f"| accuracy | {test['accuracy']:.3f} |" in md
