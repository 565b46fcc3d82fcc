"""Untrusted text in a report renders as text: HTML and script in image paths, class labels,
a program's file name and a spec's description, checked in headless Chromium.

A run directory can come from anyone (a colleague's experiment, a downloaded result), so
every string the report shows from it is data. Each payload would write "PWNED-..." to the
console (or add an image) if the page ran it; the page must show each one verbatim instead.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pandas as pd

from emolog.data.artefacts import record
from emolog.data.index import ImageIndex
from emolog.report.browser import check_page
from emolog.runs.writer import run_files
from world import TRAIN, run_cli

PATH = "\"'</table><img src=x onerror=\"console.error('PWNED-path')\">.jpg"
LABEL = "surprise<svg onload=console.error('PWNED-label')>"
PROGRAM = "seed'\"<img src=x onerror=console.error('PWNED-program')>.pl"
DESCRIPTION = "</script><script>console.error('PWNED-spec')</script>"


def _relabel(run: Path) -> None:
    """The run as its author's label set would have it: class 'surprise' named LABEL."""
    for name in ("results.json", "changes.json"):
        d = json.loads((run / name).read_text())
        text = json.dumps(d).replace('"surprise"', json.dumps(LABEL)).replace('"p_surprise"', json.dumps("p_" + LABEL))
        (run / name).write_text(text)
    pred = pd.read_csv(run / "predictions.csv", dtype={"image_id": str})
    pred = pred.replace("surprise", LABEL).rename(columns={"p_surprise": "p_" + LABEL})
    pred.to_csv(run / "predictions.csv", index=False)


def test_html_and_script_in_paths_labels_programs_specs_render_as_text(world, tmp_path):
    shutil.copytree(world / "D", tmp_path / "D")
    shutil.copy(Path(__file__).resolve().parents[2] / "emolog" / "logic" / "programs" / "seed.pl", tmp_path / PROGRAM)
    with contextlib.chdir(tmp_path):
        index = ImageIndex.load("D/index.csv")
        index.df["rel_path"] = [f"{k}{PATH}" for k in range(len(index.df))]
        index.save("D/index.csv")
        assert run_cli(["train", "--data", "D", "--out", "R", "--set", f"program={PROGRAM}", *TRAIN]).code == 0
    run = tmp_path / "R"
    _relabel(run)
    results = json.loads((run / "results.json").read_text())
    # a run of real photos (the gallery names each photo by its path), with a spec description
    results.update(
        data={**results["data"], "kind": "real"}, spec={"description": DESCRIPTION}, files=record(run, run_files(run))
    )
    (run / "results.json").write_text(json.dumps(results))
    got = run_cli(["report", run])
    assert got.code == 0, got.err

    check = check_page(run / "report.html")
    assert check.errors == []  # no payload ran: nothing wrote to the console
    assert [i for i in check.images if not i["alt"] or i["naturalWidth"] <= 0] == []  # no injected <img>
    page = (run / "report.html").read_text()
    for payload in (PATH, LABEL, PROGRAM):
        assert payload not in page  # never raw HTML
    shown = " ".join(check.notes)
    assert f"0{PATH}" in shown  # the photo's path, verbatim, as text
    md = (run / "report.md").read_text()
    assert LABEL in md and PROGRAM in md  # the label and the program, verbatim
    assert "PWNED-path" in page and "PWNED-label" in page and "PWNED-program" in page  # escaped, present
