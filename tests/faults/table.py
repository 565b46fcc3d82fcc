"""The fault table: every artefact emolog writes x every fault x every command that reads it.

``ARTEFACTS`` names each file (relative to the world of ``world.build_world``), the commands
that read it, and how to give it "a wrong field" (valid JSON / CSV / TOML / tensors with one
field renamed or of the wrong type) and "a future format version" (files with a format tag).
``run_cell`` damages a fresh copy of the world and runs one command on it; ``classify`` says
what happened: ``refused`` (one error line naming the file, an exit code of the fault's
kind), ``recomputed`` (the command succeeded and its result equals the undamaged world's),
``same result`` (the same, without a word: a missing file the command does not need, or a
missing derived file, a cache miss), ``noted`` (a report rendered, saying the file is absent),
or one of the outcomes the suite
never accepts: ``TRACEBACK``, ``WRONG`` (exit 0 with another result than the undamaged
world's), ``UNNAMED`` (a refusal that does not name the file or its fault).

``python tests/faults/table.py`` rewrites the table in docs/reliability.md from a run of the
whole matrix (tests/faults/test_fault_table.py checks the document matches).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from world import TRAIN, analysis_digest, experiment_digest, predictions_digest, run_api, run_cli, run_digest  # noqa: E402,E501

FAULTS = ("missing", "empty", "truncated", "random bytes", "wrong field", "future version")
DOC = HERE.parents[1] / "docs" / "reliability.md"
BEGIN, END = "<!-- fault table: begin (tests/faults/table.py writes it) -->", "<!-- fault table: end -->"

# what a refusal's message must say for each fault (besides the file's name)
SAYS = {
    "missing": ("missing", "no such", "has no", "does not exist", "not found", "no manifest.json", "have not finished"),
    "content": (
        "empty",
        "not valid",
        "not a readable",
        "not UTF-8",
        "truncated",
        "incomplete",
        "lacks",
        "sha256",
        "newer emolog",
        "expected",
        "unreadable",
        "corrupt",
        "is required",
        "does not fit",
        "not an emolog",
        "holds a",
        "fields",
    ),
}


# ----------------------------------------------------------------------------- damage


def _json(fn: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        d = json.loads(path.read_text())
        fn(d)
        path.write_text(json.dumps(d, indent=1))

    return damage


def _set(key: str, value: object) -> Callable[[Path], None]:
    return _json(lambda d: d.__setitem__(key, value))


def _future(d: dict) -> None:
    d["format"] = d["format"].split("/")[0] + "/99"


def _rename_column(old: str, new: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        head, _, rest = path.read_text().partition("\n")
        cols = head.split(",")
        assert old in cols, (path, old)
        path.write_text(",".join(new if c == old else c for c in cols) + "\n" + rest)

    return damage


def _rename_tensor(path: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    tensors["scenery"] = tensors.pop("scene")
    save_file(tensors, str(path), metadata=meta)


def _torch(fn: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        fn(blob)
        torch.save(blob, path)

    return damage


def _rename_first_key(d: dict) -> None:
    k = next(iter(d))
    d["renamed." + k] = d.pop(k)


def _text(old: str, new: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        text = path.read_text()
        assert re.search(old, text), (path, old)
        path.write_text(re.sub(old, new, text, count=1))

    return damage


@dataclass(frozen=True)
class Artefact:
    """A file of the world, the commands that read it, how to give it a wrong field and (for
    files with a format tag) a future format version."""

    path: str
    consumers: tuple[str, ...]
    wrong_field: Callable[[Path], None]
    future: Callable[[Path], None] | None = None

    def file(self, root: Path) -> Path:
        matches = sorted(root.glob(self.path))
        assert len(matches) == 1, (self.path, matches)
        return matches[0]


# a finished run's outputs: `train --resume` rewrites them without reading them (their cells
# of "resume" come from one run per fault with all of them damaged at once)
REWRITTEN = {
    f"R/{n}"
    for n in (
        "config.json",
        "results.json",
        "history.csv",
        "predictions.csv",
        "changes.json",
        "logic.pt",
        "scene_net.pt",
        "program.pl",
    )
}
DATA = ("cache verify", "train")
RUN = ("resume", "load_run", "predict", "report", "analyse")
ARTEFACTS: tuple[Artefact, ...] = (
    Artefact("D/cache/manifest.json", (*DATA, "predict", "analyse"), _set("K", "three"), _json(_future)),
    Artefact("D/cache/shard-00000.safetensors", (*DATA, "predict", "analyse"), _rename_tensor),
    Artefact("D/index.csv", (*DATA, "predict", "analyse"), _rename_column("label", "labl")),
    Artefact("D/split.json", (*DATA, "experiment merge"), _set("train", "all")),
    Artefact("D/rejects.csv", ("predict",), _rename_column("reason", "why")),
    Artefact("D/index_summary.json", ("predict",), _set("root", 42)),
    Artefact("D/truth.json", ("train",), _set("source_weights", "high")),
    Artefact("D/pretrained/scene_net-*.pt", ("train",), _torch(lambda b: b.pop("state"))),
    Artefact("spec.toml", ("train",), _text(r'labels = "basic7"', "labels = 42")),
    Artefact("R/config.json", RUN, _json(lambda d: d["train"].__setitem__("epochs", "twelve"))),
    Artefact("R/results.json", RUN, _set("metrics", []), _json(_future)),
    Artefact("R/history.csv", ("resume", "load_run", "report"), _rename_column("epoch", "epk")),
    Artefact("R/predictions.csv", ("resume", "report", "analyse"), _rename_column("pred", "prediction")),
    Artefact("R/changes.json", ("resume", "load_run", "report"), _set("layers", {})),
    Artefact("R/checkpoint.pt", ("resume",), _torch(lambda b: b.pop("nets")), _torch(_future)),
    Artefact("R/logic.pt", ("resume", "load_run", "predict", "analyse"), _torch(_rename_first_key)),
    Artefact("R/scene_net.pt", ("resume", "load_run", "predict", "analyse"), _torch(_rename_first_key)),
    Artefact("R/program.pl", ("resume",), _text(r"t\([0-9.e-]+", "t(high")),
    Artefact("E/experiment.json", ("report", "experiment merge"), _set("runs", "all"), _json(_future)),
    Artefact("E/comparison.csv", ("report",), _rename_column("system", "row")),
    Artefact("E/bootstrap.csv", ("report",), _rename_column("metric", "measure")),
    Artefact("E/memorisation.csv", ("report",), _rename_column("regime", "arm")),
    Artefact("E/baselines/majority-s0.csv", ("experiment merge",), _rename_column("p_happy", "p_joy")),
    Artefact("E/shards/shard-0-of-2.json", ("experiment merge",), _set("runs", "all"), _json(_future)),
    Artefact("E/runs/logic-only-s0/results.json", ("report", "experiment merge"), _set("metrics", []), _json(_future)),
    Artefact("E/runs/logic-only-s0/predictions.csv", ("report", "experiment merge"), _rename_column("label", "truth")),
)


def inject(path: Path, fault: str, art: Artefact, rng: random.Random) -> None:
    """Damage ``path`` with ``fault`` (the random ones seeded by ``rng``)."""
    data = path.read_bytes()
    if fault == "missing":
        path.unlink()
    elif fault == "empty":
        path.write_bytes(b"")
    elif fault == "truncated":
        path.write_bytes(data[: rng.randrange(1, len(data))])
    elif fault == "random bytes":
        path.write_bytes(rng.randbytes(len(data)))
    elif fault == "wrong field":
        art.wrong_field(path)
    else:
        art.future(path)


# ----------------------------------------------------------------------------- consumers


def _load_run() -> tuple:
    from emolog import load_run

    run = load_run("R")
    pred = run.predict("D/cache")
    return pred.probs.tobytes(), run.history.to_csv(index=False), json.dumps(run.layers)


def consume(name: str, art: Artefact) -> tuple:
    """Run command ``name`` in the world (the current directory); (Outcome, what it computed)."""
    spec = ["--spec", "spec.toml"] if art.path == "spec.toml" else []
    if name == "cache verify":
        got = run_cli(["cache", "verify", "D/cache", "--index", "D"])
        return got, got.out.splitlines()[0] if got.code == 0 else None
    if name == "train":
        got = run_cli(["train", "--data", "D", "--out", "T", *spec, *TRAIN])
        return got, run_digest(Path("T")) if got.code == 0 else None
    if name == "resume":
        got = run_cli(["train", "--data", "D", "--out", "R", "--resume", *TRAIN])
        return got, run_digest(Path("R")) if got.code == 0 else None
    if name == "load_run":
        return run_api(_load_run)
    if name == "predict":
        got = run_cli(["predict", "R", "--index", "D", "--out", "P", "--quiet"])
        return got, (predictions_digest(Path("P")), Path("P/rejects.csv").read_text()) if got.code == 0 else None
    if name == "report":
        target = "E" if art.path.startswith("E/") else "R"
        got = run_cli(["report", target])
        return got, Path(target, "report.md").read_text() if got.code == 0 else None
    if name == "analyse":
        got = run_cli(["analyse", "R", "--out", "A"])
        return got, analysis_digest(Path("A")) if got.code == 0 else None
    if name == "experiment merge":
        got = run_cli(["experiment", "merge", "E", "--quiet"])
        return got, experiment_digest(Path("E")) if got.code == 0 else None
    raise ValueError(name)


@dataclass
class Cell:
    artefact: str
    fault: str
    consumer: str
    outcome: str
    code: int
    message: str

    @property
    def label(self) -> str:
        return f"{self.outcome} ({self.code})" if self.outcome == "refused" else self.outcome


def classify(art: Artefact, fault: str, consumer: str, got, value, reference) -> Cell:
    """Which outcome ``got`` (and what it computed, ``value``) is, against the undamaged world's."""
    name = Path(art.path).name.replace("*", "")
    if got.traceback:
        return Cell(art.path, fault, consumer, "TRACEBACK", got.code, got.traceback.strip().splitlines()[-1])
    if got.code == 0:
        if value == reference:  # recomputed (and said so on stderr), or not needed at all
            said = "recomput" in got.err or "rewritten" in got.err
            return Cell(art.path, fault, consumer, "recomputed" if said else "same result", 0, got.err.strip())
        if consumer == "report" and (f"{name} is absent" in value or f"{name} is not read" in value):
            return Cell(art.path, fault, consumer, "noted", 0, "the report notes the absent file")
        return Cell(art.path, fault, consumer, "WRONG", 0, "exit 0 with a result that differs from the undamaged one")
    message = got.out if consumer == "cache verify" and not got.last_error_line else got.last_error_line
    stem = name.split("-")[0] if art.path.endswith(".pt") and "pretrained" in art.path else name
    says = SAYS["missing" if fault == "missing" else "content"]
    named = stem in message and any(w in message for w in says)
    return Cell(art.path, fault, consumer, "refused" if named else "UNNAMED", got.code, message.strip()[:300])


def run_cell(world: Path, work: Path, art: Artefact, fault: str, consumer: str, reference) -> Cell:
    """Copy the world to ``work``, damage the artefact, run the consumer there."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(world, work, symlinks=True)
    rng = random.Random(f"{art.path}|{fault}|{consumer}")
    with contextlib.chdir(work):
        inject(art.file(Path(".")), fault, art, rng)
        got, value = consume(consumer, art)
    return classify(art, fault, consumer, got, value, reference)


def _reference(world: Path, work: Path, k: int, consumer: str) -> object:
    """What ``consumer`` computes in the undamaged world (for artefact ``k``'s variant of it)."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(world, work, symlinks=True)
    with contextlib.chdir(work):
        got, value = consume(consumer, ARTEFACTS[k])
    assert got.code == 0 and not got.traceback, (consumer, got.err, got.traceback)
    return value


def _pair(world: Path, work: Path, k: int, consumer: str, reference: object) -> list[Cell]:
    art = ARTEFACTS[k]
    return [
        run_cell(world, work, art, fault, consumer, reference)
        for fault in FAULTS
        if fault != "future version" or art.future is not None
    ]


def _together(world: Path, work: Path, ks: list[int], fault: str, consumer: str, reference: object) -> list[Cell]:
    """``fault`` in every artefact of ``ks`` at once, one run of ``consumer``: a cell per artefact."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(world, work, symlinks=True)
    arts = [ARTEFACTS[k] for k in ks if fault != "future version" or ARTEFACTS[k].future is not None]
    with contextlib.chdir(work):
        for art in arts:
            inject(art.file(Path(".")), fault, art, random.Random(f"{art.path}|{fault}|{consumer}"))
        got, value = consume(consumer, arts[0])
    return [classify(art, fault, consumer, got, value, reference) for art in arts]


def _key(art: Artefact, consumer: str) -> tuple[str, str]:
    """Consumers whose undamaged result differs by artefact: train with a spec, report of E."""
    return consumer, "spec" if art.path == "spec.toml" else "E" if art.path.startswith("E/") else ""


def run_matrix(world: Path, scratch: Path) -> list[Cell]:
    """Every (artefact, fault, consumer) cell that applies (a fault "future version" only to
    files with a format tag), two processes at a time."""
    from procs import pool_map

    pairs = [(k, c) for k, art in enumerate(ARTEFACTS) for c in art.consumers]
    keys = {_key(ARTEFACTS[k], c): (k, c) for k, c in pairs}
    refs = dict(
        zip(keys, pool_map(_reference, [(world, scratch / f"ref{n}", k, c) for n, (k, c) in enumerate(keys.values())]))
    )
    together = [k for k, art in enumerate(ARTEFACTS) if art.path in REWRITTEN]
    jobs = [
        (_pair, (world, scratch / f"cell{n}", k, c, refs[_key(ARTEFACTS[k], c)]))
        for n, (k, c) in enumerate(pairs)
        if not (c == "resume" and k in together)
    ]
    jobs += [
        (_together, (world, scratch / f"all{n}", together, fault, "resume", refs[("resume", "")]))
        for n, fault in enumerate(FAULTS)
    ]
    done = pool_map(_call, jobs)
    order = {
        (a.path, c, f): n
        for n, (a, c, f) in enumerate((a, c, f) for a in ARTEFACTS for c in a.consumers for f in FAULTS)
    }
    return sorted(
        (cell for cells in done for cell in cells), key=lambda cell: order[(cell.artefact, cell.consumer, cell.fault)]
    )


def _call(fn: Callable, args: tuple) -> list[Cell]:
    return fn(*args)


# ----------------------------------------------------------------------------- the document


def counts(cells: list[Cell]) -> dict[str, int]:
    out = {
        "artefacts": len(ARTEFACTS),
        "faults": len(FAULTS),
        "consumers": len({c for a in ARTEFACTS for c in a.consumers}),
        "cells": len(cells),
    }
    for c in cells:
        out[c.outcome] = out.get(c.outcome, 0) + 1
    return out


def render(cells: list[Cell]) -> str:
    """The Markdown table docs/reliability.md holds: one row per (artefact, command), one
    column per fault."""
    by = {(c.artefact, c.consumer, c.fault): c for c in cells}
    lines = ["| file | read by | " + " | ".join(FAULTS) + " |", "|---|---|" + "---|" * len(FAULTS)]
    for art in ARTEFACTS:
        for consumer in art.consumers:
            row = [by[(art.path, consumer, f)].label if (art.path, consumer, f) in by else "n/a" for f in FAULTS]
            lines.append(f"| `{art.path}` | {consumer} | " + " | ".join(row) + " |")
    n = counts(cells)
    bad = sum(n.get(k, 0) for k in ("TRACEBACK", "WRONG", "UNNAMED"))
    lines += [
        "",
        f"{n['artefacts']} files x {n['faults']} faults x {n['consumers']} commands: {n['cells']} cells "
        f"injected (a fault only where it applies: a format version only to files that carry one; a "
        f"command only for the files it reads): {n.get('refused', 0)} refused with one line naming the file, "
        f"{n.get('recomputed', 0)} succeeded with the undamaged result, saying the file was recomputed, "
        f"{n.get('same result', 0)} succeeded with the undamaged result without a word (a missing file "
        f"not needed, or a cache miss), "
        f"{n.get('noted', 0)} rendered with the file noted as absent; {n.get('TRACEBACK', 0)} tracebacks, "
        f"{n.get('WRONG', 0)} wrong results, {n.get('UNNAMED', 0)} refusals that do not name the file "
        f"({bad} unacceptable).",
    ]
    return "\n".join(lines)


def doc_table() -> str:
    text = DOC.read_text()
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()


def write_doc(cells: list[Cell]) -> None:
    text = DOC.read_text()
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    DOC.write_text(f"{head}{BEGIN}\n{render(cells)}\n{END}{tail}")


def main() -> None:
    import tempfile

    from world import build_world

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):
        root = Path(tmp)
        world = build_world(root / "world")
        cells = run_matrix(world, root)
    write_doc(cells)
    print(render(cells).splitlines()[-1])


if __name__ == "__main__":
    main()
