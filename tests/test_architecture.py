"""The package's imports go one way, along the data flow (docs/architecture.md):
errors (imported by all), labels/runtime -> data -> perception -> cache -> logic -> simulate -> metrics -> config
-> model -> learn -> runs -> experiments -> analysis -> report -> cli -> demo (it runs the CLI).
Inside each package, modules import each other without cycles; inside logic, its sub-packages go
one way too: logic (reading a program) -> logic.engine (circuits) -> logic.check (references, CLI).
"""

from __future__ import annotations

import ast
from pathlib import Path

import emolog

LEVEL = {
    "__init__": 0,
    "_aliases": 0,
    "errors": 0,
    "labels": 0,
    "runtime": 0,
    "data": 1,
    "perception": 2,
    "cache": 3,
    "logic": 4,
    "simulate": 5,
    "metrics": 6,
    "config": 7,
    "model": 8,
    "learn": 9,
    "runs": 10,
    "experiments": 11,
    "analysis": 12,
    "report": 13,
    "cli": 14,
    "demo": 15,
    "__main__": 15,
    "training": 16,
}  # the old module paths, kept one release (emolog/training/__init__.py)
LOGIC_LEVEL = {"logic": 0, "engine": 1, "check": 2}  # emolog.logic's own modules, then its sub-packages
ROOT = Path(emolog.__file__).parent


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module(f: Path) -> str:
    parts = f.relative_to(ROOT).with_suffix("").parts
    return ".".join(("emolog", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def _lazy_reexports(tree: ast.Module) -> set[int]:
    """Node ids of imports inside a module-level ``__getattr__`` (PEP 562 lazy re-exports, such
    as ``emolog.load_run``): they run on attribute access, never on import."""
    return {
        id(n) for fn in tree.body if isinstance(fn, ast.FunctionDef) and fn.name == "__getattr__" for n in ast.walk(fn)
    }


def _module_imports() -> list[tuple[str, str, str]]:
    """(importing module, imported emolog module, file) for every emolog import, top-level or
    inside a function (a deferred import still couples two modules), lazy re-exports excepted."""
    out = []
    known = {_module(f) for f in ROOT.rglob("*.py")}
    for f in sorted(ROOT.rglob("*.py")):
        me = _module(f)
        tree = ast.parse(f.read_text())
        skip = _lazy_reexports(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.ImportFrom) and node.level:  # from .x import y
                base = me.split(".") if f.name == "__init__.py" else me.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                names = [".".join(base + ([node.module] if node.module else []))]
                names += [f"{names[0]}.{a.name}" for a in node.names]  # from . import module
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            # ``from emolog.x import y``: y counts when it is a module itself
            names = names[:1] + [n for n in names[1:] if n in known]
            out += [(me, n, str(f.relative_to(ROOT))) for n in names if n.startswith("emolog")]
    return out


def _imports() -> list[tuple[str, str, str]]:
    """(importing part, imported part, file) for every emolog import inside the package."""
    return [(_part(me), _part(to), f) for me, to, f in _module_imports()]


def test_every_part_has_a_level():
    parts = {_part(".".join(("emolog", *f.relative_to(ROOT).with_suffix("").parts))) for f in ROOT.rglob("*.py")}
    assert parts <= set(LEVEL), sorted(parts - set(LEVEL))


def test_imports_go_one_way():
    imports = _imports()
    assert len(imports) > 50  # the walk really saw the package
    backwards = [
        (f, me, to) for me, to, f in imports if me != to and LEVEL[to] >= LEVEL[me] and to not in ("__init__", "errors")
    ]
    assert backwards == [], backwards


def _logic_part(module: str) -> str:
    """``logic`` for emolog.logic and its own modules, else the sub-package's name."""
    parts = module.split(".")
    return parts[2] if len(parts) > 3 else "logic"


def test_logic_sub_packages_import_one_way():
    """Reading a program knows nothing of circuits, circuits nothing of the checks against
    ProbLog/DeepProbLog (``emolog.logic``'s lazy public names excepted, as everywhere)."""
    inside = [
        (me, to, f)
        for me, to, f in _module_imports()
        if me.startswith("emolog.logic") and to.startswith("emolog.logic")
    ]
    assert len(inside) > 30  # the walk really saw the logic package
    parts = {_logic_part(me) for me, _, _ in inside}
    assert parts == set(LOGIC_LEVEL), parts
    backwards = [(f, me, to) for me, to, f in inside if LOGIC_LEVEL[_logic_part(to)] > LOGIC_LEVEL[_logic_part(me)]]
    assert backwards == [], backwards


MAX_MODULES = 12  # per package: a package that needs more holds two jobs (split it by what each module is)
MAX_LINES = 420  # per module: "about 400" lines, one job read top to bottom


def test_no_package_holds_more_than_twelve_modules():
    """Each package (and sub-package) is one job: at most MAX_MODULES modules besides ``__init__``."""
    packages = [d for d in [ROOT, *ROOT.rglob("*")] if d.is_dir() and (d / "__init__.py").is_file()]
    assert len(packages) > 10  # the walk really saw the package
    crowded = {
        str(d.relative_to(ROOT.parent)): n
        for d in packages
        if (n := len([p for p in d.glob("*.py") if p.name != "__init__.py"])) > MAX_MODULES
    }
    assert crowded == {}


def test_no_module_is_longer_than_about_four_hundred_lines():
    long = {
        str(f.relative_to(ROOT.parent)): n
        for f in ROOT.rglob("*.py")
        if (n := len(f.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_errors_is_a_leaf():
    """Every part may import emolog.errors (its error classes inherit EmologError), so it imports no part."""
    assert [to for me, to, _ in _imports() if me == "errors"] == []


def test_no_import_cycles_between_modules():
    """Inside a package too, modules import each other one way: no cycle of any length (a
    package's ``__init__`` may re-export its own modules, which is not a dependency back)."""
    known = {_module(f) for f in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in known}
    for me, to, _ in _module_imports():
        if to != me and to in known and not me.startswith(to + "."):  # not a module's own package
            graph[me].add(to)
    cycles, state = [], {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(path[path.index(n) :] + [n] if n in path else [m, n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == [], cycles


def _moved(package: str) -> dict[str, str]:
    """A package's table of old module names -> new module paths (emolog/_aliases.py)."""
    import importlib

    return importlib.import_module(package).MOVED


def _import_old_path(package: str, old: str):
    """The module ``<package>.<old>`` imports as, and the warnings that import gave. The
    package's attribute of that name is put back after: importing a submodule sets it, and
    ``emolog.logic.evaluate`` is a function as well as an old module path."""
    import importlib
    import sys
    import warnings

    pkg = importlib.import_module(package)
    before = vars(pkg).get(old, KeyError)
    sys.modules.pop(f"{package}.{old}", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mod = importlib.import_module(f"{package}.{old}")
    if before is KeyError:
        vars(pkg).pop(old, None)
    else:
        setattr(pkg, old, before)
    return mod, caught


def test_old_module_paths_import_the_moved_modules_with_a_deprecation_warning():
    """Code and pickles written against ``emolog.training.<module>`` or ``emolog.logic.<module>``
    keep working for one release: the old path is the very module at its new place, and the
    warning names that place."""
    import importlib
    import pickle
    import warnings

    for package in ("emolog.training", "emolog.logic"):
        moved = _moved(package)
        assert moved, package
        for old, new in moved.items():
            mod, caught = _import_old_path(package, old)
            assert mod is importlib.import_module(new), old
            assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught), old
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from emolog.training.bindings.schema import NetBinding  # a submodule of a moved package
        from emolog.model.bindings.schema import NetBinding as moved
        from emolog.logic.dnnf import Structure

        # a structure pickled before the move names the old module (protocol 0: no length prefix)
        old_pickle = pickle.dumps(Structure, protocol=0).replace(b"emolog.logic.engine.dnnf", b"emolog.logic.dnnf")
        assert b"emolog.logic.dnnf" in old_pickle and pickle.loads(old_pickle) is Structure
    assert NetBinding is moved
    from emolog.logic import evaluate  # the public function, not the old module of that name

    assert callable(evaluate) and evaluate.__module__ == "emolog.logic.engine.evaluate"


def test_both_packages_old_paths_go_through_the_one_alias_finder():
    """Both packages' old paths go through the one finder of emolog/_aliases.py, installed once
    per package however often its ``__init__`` runs."""
    import importlib
    import sys

    import emolog.training  # noqa: F401 - installs its finder
    from emolog._aliases import MovedModules

    importlib.reload(importlib.import_module("emolog.logic"))
    finders = [f.package for f in sys.meta_path if isinstance(f, MovedModules)]
    assert sorted(finders) == ["emolog.logic", "emolog.training"]


def test_the_public_names_are_the_defining_modules_own_and_import_emolog_stays_light():
    """``emolog.Model / load_cache / train_run / load_run`` are the objects themselves (one
    definition each), and ``import emolog`` alone loads neither torch nor any sub-package."""
    import subprocess
    import sys

    from emolog.cache.store import load_cache
    from emolog.runs.model import Model, load_run
    from emolog.runs.train import train_run

    assert (emolog.Model, emolog.load_cache, emolog.load_run, emolog.train_run) == (
        Model,
        load_cache,
        load_run,
        train_run,
    )
    assert sorted(emolog.__all__) == ["Model", "__version__", "load_cache", "load_run", "train_run"]
    loaded = subprocess.run(
        [sys.executable, "-c", "import emolog, sys; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "'torch'" not in loaded and "'emolog.cache'" not in loaded and "'emolog.runs'" not in loaded
