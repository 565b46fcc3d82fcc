"""`make demo` twice in a row: the second run reuses the simulated data (and the experiment's
finished runs) and says so; other settings replace the demo's own stale folders.

The whole demo takes ~90 s, so the test drives its simulate step (the one that used to refuse
an existing folder) directly; `make demo` twice was run by hand (see the final report).
"""

from __future__ import annotations

import json

from emolog import demo


def test_the_demo_simulate_step_reuses_or_replaces(tmp_path, capsys):
    timings: dict[str, float] = {}
    sim, exp = demo.simulate_step(tmp_path, 60, 0, timings)
    first = json.loads((sim / "truth.json").read_text())
    assert "simulate FindingEmo-like data with known truth" in timings
    capsys.readouterr()
    # the second demo: nothing simulated again, and it says so
    exp.mkdir()
    (exp / "experiment.json").write_text("{}")
    demo.simulate_step(tmp_path, 60, 0, timings := {})
    out = capsys.readouterr().out
    assert "reusing" in out and "resumes" in out and timings == {}
    assert json.loads((sim / "truth.json").read_text()) == first
    # other settings: the old data is replaced (no "already holds ... --force" refusal) and the
    # experiment trained on it is removed
    demo.simulate_step(tmp_path, 80, 0, timings := {})
    assert json.loads((sim / "truth.json").read_text())["config"]["n"] == 80
    assert not exp.exists() and "removing" in capsys.readouterr().out
