"""Checks on the literature overview (docs/literature.md) and the Scallop page (docs/scallop.md).

Two kinds of checks:

* bibliography hygiene: every reference entry carries a link or DOI, every cited key resolves,
  every reference has a verification-log entry, unverified fields say why, and the README and
  the two pages link each other;
* the worked example in docs/scallop.md: the exact rows are recomputed with ProbLog (the
  semantics emolog implements), the other rows by brute-force weighted model counting over the
  program's proofs, so a wrong number or a wrong claim about which encoding is exact fails here.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import pytest
import torch
from problog import get_evaluatable
from problog.program import PrologString

from emolog.labels import BASIC7

ROOT = Path(__file__).resolve().parents[1]
LITERATURE = ROOT / "docs" / "literature.md"
SCALLOP = ROOT / "docs" / "scallop.md"
README = ROOT / "README.md"

KEY = r"[A-Za-z][A-Za-z]*\d{4}|ScallopSrc"
SOURCES = ("scene", "face1", "face2", "face3")
# Rows of the worked-example table: label prefix -> short name used below.
ROWS = {
    "exact": "exact",
    "add-mult ratio": "addmult",
    "top-k proofs ratio": "topk_ratio",
    "top-k proofs numerators renormalised": "topk_renorm",
    "min-max ratio": "minmax",
    "no conditioning": "fail",
}
TOL = 6e-4  # the document rounds to 3 decimals


def _section(text: str, heading: str) -> str:
    """Body of a '## heading' section, up to the next '## ' heading."""
    start = text.index(f"## {heading}\n")
    nxt = text.find("\n## ", start + 3)
    return text[start : nxt if nxt != -1 else len(text)]


def _reference_entries() -> dict[str, str]:
    """Key -> full entry line of the References section of docs/literature.md."""
    refs = _section(LITERATURE.read_text(encoding="utf-8"), "References")
    entries: dict[str, str] = {}
    for line in refs.splitlines():
        m = re.match(rf"- \[({KEY})\] ", line)
        if m:
            assert m.group(1) not in entries, f"duplicate reference key [{m.group(1)}]"
            entries[m.group(1)] = line
    return entries


def test_every_reference_has_a_link_or_doi() -> None:
    entries = _reference_entries()
    assert len(entries) >= 25, f"only {len(entries)} reference entries found"
    missing = [k for k, line in entries.items() if not re.search(r"https?://\S+|\bDOI 10\.\d{4,}/\S+", line)]
    assert not missing, f"reference entries without a link or DOI: {missing}"


def test_unverified_fields_give_a_reason() -> None:
    # Inside reference entries, every 'unverified' must read '(unverified: <reason>)'.
    bad = []
    for key, line in _reference_entries().items():
        for paren in re.findall(r"\([^()]*unverified[^()]*\)", line):
            if not re.match(r"\(unverified: \S", paren):
                bad.append(f"[{key}] {paren}")
    assert not bad, "unverified fields without '(unverified: reason)': " + "; ".join(bad)


def test_every_cited_key_resolves_and_every_reference_is_logged() -> None:
    entries = _reference_entries()
    lit = LITERATURE.read_text(encoding="utf-8")
    body = lit[: lit.index("## References\n")] + SCALLOP.read_text(encoding="utf-8")
    cited = set(re.findall(rf"\[({KEY})\]", body))
    assert cited, "no citations found in the documents"
    unresolved = sorted(cited - set(entries))
    assert not unresolved, f"cited but not in References: {unresolved}"
    log = _section(lit, "Verification log")
    logged = set(re.findall(rf"^- \[({KEY})\]:", log, flags=re.M))
    assert not sorted(set(entries) - logged), (
        f"references without a verification-log entry: {sorted(set(entries) - logged)}"
    )
    uncited = sorted(set(entries) - cited)
    assert not uncited, f"references never cited in the text: {uncited}"


def test_docs_and_readme_link_each_other() -> None:
    assert "](scallop.md)" in LITERATURE.read_text(encoding="utf-8"), "docs/literature.md does not link docs/scallop.md"
    assert "](literature.md)" in SCALLOP.read_text(encoding="utf-8"), "docs/scallop.md does not link docs/literature.md"
    assert README.is_file(), f"{README} is missing (it must link docs/literature.md)"
    assert "docs/literature.md" in README.read_text(encoding="utf-8"), "README.md has no link to docs/literature.md"


# --------------------------------------------------------------------------- worked example


def _worked_example() -> tuple[dict[str, float], dict[str, list[float]], dict[str, list[float]], str]:
    """Parse the inputs and the result table of the worked example in docs/scallop.md.

    Returns (source weights, per-source emotion distributions in BASIC7 order,
    table rows by short name [7 values + sum], the section text).
    """
    text = SCALLOP.read_text(encoding="utf-8")
    sec = text[text.index("### Worked example") : text.index("## 4.")]
    weights = {s: float(v) for s, v in re.findall(r"\b(scene|face1|face2|face3) (0\.\d+)[,;]", sec.split("\n\n")[1])}
    assert set(weights) == set(SOURCES), f"could not parse the source weights: {weights}"
    dists = {
        s: [float(x) for x in vals.split(",")]
        for s, vals in re.findall(r"^\* (scene|face1|face2): ([0-9., ]+)$", sec, flags=re.M)
    }
    assert set(dists) == {"scene", "face1", "face2"}, f"could not parse the distributions: {dists}"
    header = next(line for line in sec.splitlines() if line.startswith("| Quantity"))
    assert [c.strip() for c in header.strip("|").split("|")][1:8] == list(BASIC7), (
        "worked-example columns are not in emolog.labels.BASIC7 order"
    )
    rows: dict[str, list[float]] = {}
    for line in sec.splitlines():
        if not line.startswith("| ") or line.startswith("| Quantity"):
            continue
        # split on unescaped pipes: labels such as "P(e \| ok)" escape theirs
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))]
        for prefix, name in ROWS.items():
            if cells[0].startswith(prefix):
                rows[name] = [float(c) for c in cells[1:9]]
    assert set(rows) == set(ROWS.values()), f"missing rows: {set(ROWS.values()) - set(rows)}"
    return weights, dists, rows, sec


def _problog_posterior(weights: dict[str, float], dists: dict[str, list[float]], condition: bool) -> list[float]:
    """P(emotion(e) [| chosen source available]) by ProbLog, the semantics emolog implements."""

    def ad(head: str, probs: list[float]) -> str:
        return "; ".join(f"{p}::{head.format(e)}" for p, e in zip(probs, BASIC7)) + "."

    lines = [
        "; ".join(f"{weights[s]}::choose({s})" for s in SOURCES) + ".",
        ad("se({})", dists["scene"]),
        ad("fe(face1, {})", dists["face1"]),
        ad("fe(face2, {})", dists["face2"]),
        "available(scene). available(face1). available(face2).",
        "src(scene, E) :- se(E).",
        "src(F, E) :- fe(F, E).",
        "emotion(E) :- choose(S), available(S), src(S, E).",
        "ok :- choose(S), available(S).",
        "query(emotion(E)).",
    ]
    if condition:
        lines.append("evidence(ok).")
    result = get_evaluatable().create_from(PrologString("\n".join(lines))).evaluate()
    by_name = {str(term): p for term, p in result.items()}
    return [by_name[f"emotion({e})"] for e in BASIC7]


def _wmc(proofs: list[dict[str, bool]], prob: dict[str, float]) -> float:
    """Weighted model count of a DNF with independent Boolean variables, by enumeration.

    This is what a WMC over the kept proofs computes when every fact is its own independent
    variable (top-k proofs' read-out, by our reading of Scallop's source).
    """
    variables = sorted({v for proof in proofs for v in proof})
    total = 0.0
    for values in itertools.product((False, True), repeat=len(variables)):
        world = dict(zip(variables, values))
        if any(all(world[v] == sign for v, sign in proof.items()) for proof in proofs):
            total += math.prod(prob[v] if world[v] else 1.0 - prob[v] for v in variables)
    return total


def _proofs(e: str, encoding: str) -> tuple[list[dict[str, bool]], list[dict[str, bool]]]:
    """Proofs of emotion_and_ok(e) and chosen_ok() for the two encodings of the choice.

    'naive': choose(s) are separate facts (the annotated disjunction).
    'stick': choose(s) derived from independent c1, c2, c3 with negation (docs/scallop.md §4).
    """
    available = ("scene", "face1", "face2")
    if encoding == "naive":
        choice = {s: {f"choose_{s}": True} for s in SOURCES}
    else:
        choice = {
            "scene": {"c1": True},
            "face1": {"c1": False, "c2": True},
            "face2": {"c1": False, "c2": False, "c3": True},
            "face3": {"c1": False, "c2": False, "c3": False},
        }
    numerator = [{**choice[s], f"emo_{s}_{e}": True} for s in available]
    denominator = [dict(choice[s]) for s in available]
    return numerator, denominator


def _fact_probs(weights: dict[str, float], dists: dict[str, list[float]]) -> dict[str, float]:
    w = weights
    prob = {f"choose_{s}": w[s] for s in SOURCES}
    prob["c1"] = w["scene"]
    prob["c2"] = w["face1"] / (1.0 - w["scene"])
    prob["c3"] = w["face2"] / (1.0 - w["scene"] - w["face1"])
    for s, dist in dists.items():
        for e, p in zip(BASIC7, dist):
            prob[f"emo_{s}_{e}"] = p
    return prob


def test_worked_example_exact_rows_match_problog() -> None:
    weights, dists, rows, _ = _worked_example()
    conditioned = _problog_posterior(weights, dists, condition=True)
    unconditioned = _problog_posterior(weights, dists, condition=False)
    assert sum(conditioned) == pytest.approx(1.0, abs=1e-9)
    for name, expected in (("exact", conditioned), ("addmult", conditioned), ("fail", unconditioned)):
        got = rows[name]
        assert got[:7] == pytest.approx(expected, abs=TOL), f"row {name}: {got[:7]} vs {expected}"
        assert got[7] == pytest.approx(sum(expected), abs=2e-3), f"row {name}: sum"
    # add-mult: Σ w_s p_s(e) / Σ w_s, computed independently of ProbLog
    avail = ("scene", "face1", "face2")
    addmult = [sum(weights[s] * dists[s][i] for s in avail) / sum(weights[s] for s in avail) for i in range(7)]
    assert addmult == pytest.approx(conditioned, abs=1e-9)


def test_worked_example_topk_and_minmax_rows() -> None:
    weights, dists, rows, sec = _worked_example()
    prob = _fact_probs(weights, dists)
    exact = _problog_posterior(weights, dists, condition=True)

    num_naive = [_wmc(_proofs(e, "naive")[0], prob) for e in BASIC7]
    den_naive = _wmc(_proofs(BASIC7[0], "naive")[1], prob)
    assert f"denominator {den_naive:.3f}" in sec
    ratio = [n / den_naive for n in num_naive]
    assert rows["topk_ratio"][:7] == pytest.approx(ratio, abs=TOL)
    assert rows["topk_ratio"][7] == pytest.approx(sum(ratio), abs=2e-3)
    assert rows["topk_renorm"][:7] == pytest.approx([n / sum(num_naive) for n in num_naive], abs=TOL)
    # the naive encoding really is not exact (the page's central claim) ...
    assert max(abs(a - b) for a, b in zip(ratio, exact)) > 0.05

    # ... and the stick-breaking encoding with independent facts is (docs/scallop.md §4)
    num_stick = [_wmc(_proofs(e, "stick")[0], prob) for e in BASIC7]
    den_stick = _wmc(_proofs(BASIC7[0], "stick")[1], prob)
    assert [n / den_stick for n in num_stick] == pytest.approx(exact, abs=1e-9)

    avail = ("scene", "face1", "face2")
    mm_den = max(weights[s] for s in avail)
    assert f"denominator {mm_den}" in sec
    minmax = [max(min(weights[s], dists[s][i]) for s in avail) / mm_den for i in range(7)]
    assert rows["minmax"][:7] == pytest.approx(minmax, abs=TOL)


def test_worked_example_gradient_claim() -> None:
    """∂ log P(happy | ok) / ∂ w_scene (other weights fixed): exact vs noisy-or ratio."""
    weights, dists, _, _ = _worked_example()
    text = SCALLOP.read_text(encoding="utf-8")
    m = re.search(r"is (\d\.\d{3}) exactly\s+and (\d\.\d{3}) under the noisy-or", text)
    assert m, "gradient sentence not found in docs/scallop.md"
    avail = ("scene", "face1", "face2")
    happy = BASIC7.index("happy")

    def grad(noisy_or: bool) -> float:
        w = {s: torch.tensor(weights[s], dtype=torch.float64, requires_grad=(s == "scene")) for s in avail}
        p = {s: torch.tensor(dists[s][happy], dtype=torch.float64) for s in avail}
        if noisy_or:
            num = 1 - math.prod(1 - w[s] * p[s] for s in avail)
            den = 1 - math.prod(1 - w[s] for s in avail)
        else:
            num = sum(w[s] * p[s] for s in avail)
            den = sum(w[s] for s in avail)
        torch.log(num / den).backward()
        return float(w["scene"].grad)

    assert grad(noisy_or=False) == pytest.approx(float(m.group(1)), abs=6e-4)
    assert grad(noisy_or=True) == pytest.approx(float(m.group(2)), abs=6e-4)
