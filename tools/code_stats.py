"""Structure figures of the code base, the ones docs/architecture.md keeps goals for.

    .venv/bin/python tools/code_stats.py [-v] [ROOT]    (ROOT: a checkout, default this one;
                                                         -v lists every function counted)

Prints one line per figure:

* functions with more than 8 parameters (``self`` / ``cls`` not counted);
* functions of cyclomatic complexity above 20 (radon's count: branches, loops, boolean
  operators, comprehensions), and the worst one;
* string comparisons of program kinds (``kind == "global"``, ``kind in ("gate", "rules")``, ...);
* the public names the README's "Use from Python" section imports, and from how many modules;
* imports of one test module by another;
* modules in the largest package.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from radon.complexity import cc_visit

KINDS = {"global", "gate", "rules", "none"}
MAX_PARAMS, MAX_COMPLEXITY = 8, 20


def _python_files(root: Path, folder: str) -> list[Path]:
    return sorted(p for p in (root / folder).rglob("*.py") if "__pycache__" not in p.parts)


def _functions(tree: ast.AST):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def many_parameters(files: list[Path]) -> list[str]:
    out = []
    for f in files:
        for fn in _functions(ast.parse(f.read_text())):
            a = fn.args
            names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
            n = len([x for x in names if x not in ("self", "cls")]) + bool(a.vararg) + bool(a.kwarg)
            if n > MAX_PARAMS:
                out.append(f"{f}:{fn.lineno} {fn.name} ({n})")
    return out


def complexities(files: list[Path]) -> list[tuple[int, str]]:
    out = set()
    for f in files:
        for block in cc_visit(f.read_text()):  # functions, and classes holding their methods
            for b in getattr(block, "methods", None) or ([] if hasattr(block, "methods") else [block]):
                out.add((b.complexity, f"{f}:{b.lineno} {b.fullname}"))
    return sorted(out, reverse=True)


def kind_comparisons(files: list[Path]) -> list[str]:
    """Comparisons of a value with the string literals of the program kinds."""
    out = []
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            parts = [node.left, *node.comparators]
            lits = [
                c.value
                for p in parts
                for c in (
                    [p]
                    if isinstance(p, ast.Constant)
                    else p.elts
                    if isinstance(p, (ast.Tuple, ast.List, ast.Set))
                    else []
                )
                if isinstance(c, ast.Constant)
            ]
            if any(isinstance(v, str) and v in KINDS for v in lits) and any(
                isinstance(p, (ast.Name, ast.Attribute, ast.Subscript, ast.Call)) for p in parts
            ):
                text = ast.unparse(node)
                if "kind" in text:
                    out.append(f"{f}:{node.lineno} {text}")
    return out


def readme_api(root: Path) -> tuple[set[str], set[str]]:
    """(names, modules) imported by the Python blocks of README.md's "Use from Python" and
    "Your own programs" sections."""
    text = (root / "README.md").read_text()
    names, modules = set(), set()
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("emolog"):
                modules.add(node.module)
                names |= {a.name for a in node.names}
    return names, modules


def test_imports(root: Path) -> list[str]:
    tests = _python_files(root, "tests")
    own = {p.stem for p in tests if p.stem.startswith("test_")}  # helper modules (fixtures' builders) are fine
    out = []
    for f in tests:
        for node in ast.walk(ast.parse(f.read_text())):
            mods = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.module
                else []
            )
            for m in mods:
                if m.split(".")[-1] in own and m.split(".")[-1] != "conftest":
                    out.append(f"{f}:{node.lineno} imports {m}")
    return out


def largest_package(root: Path) -> tuple[int, str]:
    counts = {}
    for d in [p for p in (root / "emolog").rglob("*") if p.is_dir() and "__pycache__" not in p.parts] + [
        root / "emolog"
    ]:
        counts[str(d.relative_to(root))] = len([p for p in d.glob("*.py") if p.name != "__init__.py"])
    return max((n, d) for d, n in counts.items())


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "-v"]
    root = Path(args[0] if args else Path(__file__).resolve().parents[1])
    code = _python_files(root, "emolog")
    params = many_parameters(code)
    cc = complexities(code)
    over = [c for c in cc if c[0] > MAX_COMPLEXITY]
    kinds = kind_comparisons(code)
    names, modules = readme_api(root)
    imports = test_imports(root)
    n_pkg, pkg = largest_package(root)
    print(f"functions with > {MAX_PARAMS} parameters: {len(params)}")
    print(f"functions of cyclomatic complexity > {MAX_COMPLEXITY}: {len(over)} (worst {cc[0][0]}: {cc[0][1]})")
    print(f"string comparisons of program kinds: {len(kinds)}")
    print(
        f"public names the README's Python sections import: {len(names)} from {len(modules)} module(s) "
        f"({', '.join(sorted(modules))})"
    )
    print(f"test-to-test imports: {len(imports)}")
    print(f"modules in the largest package: {n_pkg} ({pkg})")
    if "-v" in sys.argv:
        for title, rows in (
            ("parameters", params),
            ("complexity", [f"{c} {w}" for c, w in over]),
            ("kinds", kinds),
            ("test imports", imports),
        ):
            print(f"\n{title}:", *rows, sep="\n  ")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
