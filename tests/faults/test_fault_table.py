"""Every file emolog writes x every fault x every command that reads it (tests/faults/table.py).

Each command either succeeds with the undamaged world's result (the file was recomputed, or
the command does not need it), renders a report that notes the file as absent, or stops with
one line naming the file and its fault, with the exit code of the fault's kind: 4 for a
missing file, 3 for one that is not what emolog writes, 5 for one that differs from its
recorded sha256 (a cache: fails verification). Never a traceback, never a different result
with exit 0. docs/reliability.md holds the table this run produces.
"""

from __future__ import annotations

import pytest

import table

ACCEPTED = {"refused", "recomputed", "same result", "noted"}


@pytest.fixture(scope="module")
def cells(world, tmp_path_factory) -> list:
    return table.run_matrix(world, tmp_path_factory.mktemp("cells"))


def test_no_traceback_no_wrong_result_every_refusal_named(cells):
    bad = [c for c in cells if c.outcome not in ACCEPTED]
    assert not bad, "\n".join(
        f"{c.artefact} / {c.fault} / {c.consumer}: {c.outcome} {c.code}: {c.message}" for c in bad
    )


def test_exit_codes_follow_the_kind_of_fault(cells):
    for c in cells:
        if c.outcome != "refused":
            continue
        if c.fault == "missing":  # a cache lacking a shard fails verification (exit 5), as `cache verify` says
            allowed = {4, 5} if c.consumer == "cache verify" or "safetensors" in c.artefact else {4}
        else:
            allowed = {3, 5}
        assert c.code in allowed, c


def test_what_is_recomputed_says_so(cells):
    # a damaged (present) file that a command gets past was recomputed, and stderr says so;
    # only a missing one may go without a word (not needed, or a cache miss)
    for c in cells:
        if c.outcome == "same result":
            assert c.fault == "missing", c


def test_the_table_covers_every_artefact_fault_and_consumer(cells):
    n = table.counts(cells)
    assert n["artefacts"] >= 25 and n["consumers"] == 8 and n["cells"] >= 300
    assert {c.fault for c in cells} == set(table.FAULTS)
    assert {c.consumer for c in cells} == {
        "cache verify",
        "train",
        "resume",
        "load_run",
        "predict",
        "report",
        "analyse",
        "experiment merge",
    }


def test_docs_hold_the_table_this_run_produced(cells):
    assert table.doc_table() == table.render(cells), "docs/reliability.md is stale: python tests/faults/table.py"
