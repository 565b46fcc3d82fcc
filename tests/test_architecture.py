"""The package's imports go one way, along the data flow (docs/architecture.md):
labels/runtime -> data -> perception -> cache -> logic -> simulate -> training -> analysis -> report -> cli/demo.
"""

from __future__ import annotations

import ast
from pathlib import Path

import emolog

LEVEL = {"__init__": 0, "labels": 0, "runtime": 0, "data": 1, "perception": 2, "cache": 3, "logic": 4,
         "simulate": 5, "training": 6, "analysis": 7, "report": 8, "cli": 9, "demo": 9}
ROOT = Path(emolog.__file__).parent


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> list[tuple[str, str, str]]:
    """(importing part, imported part, file) for every emolog import inside the package."""
    out = []
    for f in sorted(ROOT.rglob("*.py")):
        me = _part(".".join(("emolog", *f.relative_to(ROOT).with_suffix("").parts)))
        for node in ast.walk(ast.parse(f.read_text())):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            out += [(me, _part(n), str(f.relative_to(ROOT))) for n in names if n.startswith("emolog")]
    return out


def test_every_part_has_a_level():
    parts = {_part(".".join(("emolog", *f.relative_to(ROOT).with_suffix("").parts))) for f in ROOT.rglob("*.py")}
    assert parts <= set(LEVEL), sorted(parts - set(LEVEL))


def test_imports_go_one_way():
    imports = _imports()
    assert len(imports) > 50  # the walk really saw the package
    backwards = [(f, me, to) for me, to, f in imports if me != to and LEVEL[to] >= LEVEL[me] and to != "__init__"]
    assert backwards == [], backwards
