"""The public API page (docs/api.md) lists exactly what ``emolog`` and ``emolog.logic`` export,
and every exported name says what it is in a docstring."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import emolog
import emolog.logic

API = Path(__file__).parent.parent / "docs" / "api.md"


def _listed(section: str) -> set[str]:
    """The names in the first column of the table under ``## `<section>```."""
    body = API.read_text().split(f"## `{section}`\n", 1)[1].split("\n## ", 1)[0]
    firsts = [row.split("|")[1] for row in body.splitlines() if row.startswith("| `")]
    return {m.group(1) for cell in firsts for m in re.finditer(r"`([A-Za-z_]+)[(`.]", cell)}


@pytest.mark.parametrize("module", [emolog, emolog.logic], ids=lambda m: m.__name__)
def test_the_page_lists_exactly_the_exported_names(module):
    exported = {n for n in module.__all__ if not n.startswith("__")}
    assert _listed(module.__name__) == exported


@pytest.mark.parametrize("module", [emolog, emolog.logic], ids=lambda m: m.__name__)
def test_every_exported_callable_has_a_docstring(module):
    undocumented = [
        n
        for n in module.__all__
        if not n.startswith("__")
        and callable(getattr(module, n))
        and not (inspect.getdoc(getattr(module, n)) or "").strip()
    ]
    assert undocumented == []
