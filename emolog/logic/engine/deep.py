"""``DeepProgram``: a DeepProbLog program with query templates, evaluated for batches of examples.

Queries come from outside the program, as DeepProbLog's ``Query(term, substitution)``: a
template per data set, e.g. ``addition(tensor(mnist(I,0)), tensor(mnist(I,1)), Z)``, filled in
per ``Example``: ``I`` becomes the example's id, ``Faces`` the list
``[tensor(face(I,1)), ..., tensor(face(I,n))]`` (n = ``Example.faces``, ``[]`` for 0), and any
other variable is free (scoring: every ground answer) or bound by ``Example.bind`` (training).
The *structure* of an example is the filled template with ``I`` left as a placeholder; every
structure is grounded by ProbLog and compiled once (``structures.py``), kept in memory and on
disk (keyed by the program's hash and the structure), and each batch evaluates every
structure's examples together, results in the caller's order.

Networks are bound with ``bind(name, x)``: a Tensor (the output for ``tensor(S(I, a...))`` is
``x[I, a...]``), a ``torch.nn.Module`` (called on the inputs, looked up in the tensor sources
given to ``add_tensor_source``; numbers become float tensors), a ``bindings.BatchFeed``, or any
other callable, which gets the ground input lists (problog Terms) and returns Tensor[N, domain].
Each network is called once per batch, on all its distinct ground inputs stacked
(``bindings.call_networks``). Python predicates for grounding: ``register_foreign``.
"""

from __future__ import annotations

import hashlib
import operator
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from problog.engine import DefaultEngine
from problog.errors import ProbLogError
from problog.extern import problog_export
from problog.logic import Clause, Term

from ..bindings import PLACEHOLDER, BatchFeed
from ..ground import load_model, program_error
from ..params import TParams
from ..program import ProgramError
from ..templates import fill_template, parse_template
from ..translate import DET, translate
from .batch import TensorBatch
from .dnnf import MAX_NODES
from .plan import Compiled, make_plan
from .structures import CHUNK_VALUES, cache_file, compile_query, evaluate_groups, read_cached, write_cached

CACHE_VERSION = "3"  # 2: structures compiled by dnnf.py (per-value leaves, no chains); 3: plan.Compiled
_ROUTE_KEY = operator.attrgetter("template", "faces", "bind")
_ID = operator.attrgetter("id")


@dataclass(frozen=True)
class Example:
    """One query: template index, example id, face count, and bound template variables."""

    id: int
    template: int = 0
    faces: int = 0
    bind: tuple[tuple[str, object], ...] = ()

    @staticmethod
    def of(id: int, template: int = 0, faces: int = 0, **bind: object) -> "Example":
        return Example(id, template, faces, tuple(sorted(bind.items())))


@dataclass
class Answers:
    """``probs[b, a]`` = P(answer a | evidence) for example b; answers print ``I`` for the id.
    With ``forward(..., joint=True)``: P(answer a and evidence), and ``evidence[b]`` =
    P(evidence) (1 where a structure has none)."""

    names: list[str]
    probs: torch.Tensor
    evidence: torch.Tensor | None = None


class DeepProgram(torch.nn.Module):
    """See the module docstring. ``parameters()`` are the ``t()`` values (``tparams``)."""

    def __init__(
        self,
        source: str | Path,
        queries: Sequence[str | Term] | None = None,
        *,
        base_dir: str | Path | None = None,
        param: str = "projected",
        cache_dir: str | Path | None | bool = None,
        max_nodes: int | None = None,
        path: str | Path | None = None,
    ):
        super().__init__()
        # formula + circuit nodes one structure may take before it is refused as beyond exact
        # compilation (``dnnf.MAX_NODES``, about 1 GB; EMOLOG_MAX_NODES overrides)
        self.max_nodes = max_nodes or int(os.environ.get("EMOLOG_MAX_NODES", MAX_NODES))
        model, self.path, text = load_model(source, base_dir)
        if path is not None and self.path == "<string>":  # program text read from this file
            self.path = str(path)
        self._lineno = getattr(model, "lineno", None)
        try:
            statements = list(model)
        except ProbLogError as e:
            raise program_error(e, self.path) from None
        tr = translate(statements, self.path, text)
        # The translated copy keeps the source's line table, so ProbLog's errors keep L:C.
        tr.program.line_info, tr.program.source_files = model.line_info, model.source_files
        tr.program.source_root = model.source_root
        self.translated = tr  # the program as ProbLog grounds it (clauses keep their locations)
        self.nets = tr.nets
        self.notes = tr.notes
        self.params_program = tr.params
        self.tparams = TParams(tr.params, param)
        self.engine = DefaultEngine()
        try:
            self.db = self.engine.prepare(tr.program)
        except ProbLogError as e:
            raise program_error(e, self.path, lineno=self._lineno) from None
        for name, net in self.nets.items():
            if net.kind == "det":
                problog_export.database = self.db
                problog_export("+term", "-term")(_det(name), funcname=DET.format(name), modname=None)
        # None: the program's own query/1 (ProbLog reads them, also those generated by rules)
        self.templates = [parse_template(q, self.path) for q in queries] if queries is not None else None
        if (
            queries is not None
            and not self.templates
            or queries is None
            and not tr.queries
            and "query" not in {c.head.functor for c in self.db if isinstance(c, Clause)}
        ):
            raise ProgramError(
                f"{self.path}: Error: no query: give templates (queries=[...]) or add query/1 to the program",
                path=self.path,
                message="no query",
            )
        self.hash = hashlib.sha256((CACHE_VERSION + text + "\n".join(map(str, self.db))).encode()).hexdigest()
        if cache_dir is None:
            cache_dir = os.environ.get("EMOLOG_LOGIC_CACHE", Path.home() / ".cache/emolog/logic")
        self.cache_dir = Path(cache_dir) if cache_dir is not False else None
        self._bindings: dict[str, object] = {}
        self._sources: dict[str, object] = {}
        self._mem: dict[str, Compiled] = {}
        self._routes, self._route_list, self._fast = {}, [], {}  # see prob()
        # filled queries by (template, faces, bind), and ("route", ...) keys: the routes of _route
        self._fill_memo: dict[tuple, Any] = {}
        self._inputs: dict[tuple[str, str], int] = {}
        self._input_terms: list[tuple[str, Term]] = []
        if queries is None:  # the program's own queries: compile now, so errors show now
            self.compiled(Example(0))

    # ---- binding networks and tensor sources ----------------------------------------
    def bind(self, net: str, x: torch.Tensor | torch.nn.Module | Callable) -> None:
        if net not in self.nets:
            raise ProgramError(
                f"{self.path}: Error: no neural predicate {net!r} (declared: {sorted(self.nets)})",
                path=self.path,
                message=f"no network {net}",
            )
        if not isinstance(x, (torch.Tensor, BatchFeed)) and not callable(x):
            raise ProgramError(
                f"{self.path}: Error: bind({net!r}, ...) got a {type(x).__name__}; "
                "give a tensor, a torch module, a BatchFeed or a callable",
                path=self.path,
                message=f"bad binding for {net}",
            )
        # TensorBatch.build only asks whether a network is tensor-bound (each call reads the
        # tensor itself), so a loop rebinding a batch's tensors keeps its merged circuits.
        if isinstance(self._bindings.get(net), torch.Tensor) != isinstance(x, torch.Tensor):
            self._fast.clear()
        self._bindings[net] = x
        if isinstance(x, torch.nn.Module):
            self.add_module(f"net_{net}", x)

    def add_tensor_source(self, name: str, source) -> None:
        """``tensor(name(I, a...))`` is ``source[I, a...]`` (a Tensor or a mapping of tuples)."""
        self._sources[name] = source

    def register_foreign(self, func: Callable, name: str, arity_in: int, arity_out: int, version: str = "") -> None:
        """A Python predicate ``name/(arity_in + arity_out)`` for grounding, as DeepProbLog's
        ``Model.register_foreign``: ``func`` gets the ``arity_in`` ground inputs (problog Terms:
        numbers are Constants) and returns the output Term (a tuple of them for several).

        ``version`` (e.g. the function's source text) enters the program's hash: structures
        compiled with another version of the function are never read from the disk cache.
        """
        if self._mem:
            raise ProgramError(
                f"{self.path}: Error: register_foreign({name!r}) after structures were "
                "compiled; register every foreign predicate first",
                path=self.path,
                message="foreign predicate registered too late",
            )
        problog_export.database = self.db
        problog_export(*(["+term"] * arity_in + ["-term"] * arity_out))(func, funcname=name, modname=None)
        self.hash = hashlib.sha256(
            f"{self.hash}\nforeign {name}/{arity_in}/{arity_out}\n{version}".encode()
        ).hexdigest()

    # ---- structures ----------------------------------------------------------------
    def structure_key(self, ex: Example) -> str:
        return self._fill(ex)[0]

    def _fill(self, ex: Example) -> tuple[str, Term | None]:
        if self.templates is None:
            if ex.template or ex.bind:
                raise ProgramError(
                    f"{self.path}: Error: example {ex.id} gives template "
                    f"{ex.template} / bindings {dict(ex.bind)}, but the program "
                    "answers its own query/1 (give queries=[...] to use templates)",
                    path=self.path,
                    message="no templates to fill",
                )
            return "<the program's queries>", None
        memo_key = (ex.template, ex.faces, ex.bind)
        if memo_key in self._fill_memo:  # the structure does not depend on the id
            return self._fill_memo[memo_key]
        term = fill_template(self.templates, ex.template, ex.faces, ex.bind, self.path)
        self._fill_memo[memo_key] = out = (str(term).replace(str(PLACEHOLDER), "I"), term)
        return out

    def compiled(self, ex: Example) -> Compiled:
        key, term = self._fill(ex)
        c = self._mem.get(key)
        if c is None:
            c = self._load_or_compile(key, term)
            c.load(make_plan(c, self._inputs, self._input_terms, self.nets))
            self._mem[key] = c
        return c

    def _load_or_compile(self, key: str, term: Term) -> Compiled:
        disk = cache_file(self.cache_dir, self.hash, key)
        if disk is not None and disk.is_file():
            return read_cached(disk, self._input_index)
        c = compile_query(
            key,
            term,
            self._input_index,
            engine=self.engine,
            db=self.db,
            path=self.path,
            lineno=self._lineno,
            max_nodes=self.max_nodes,
        )
        if disk is not None:
            write_cached(disk, c)
        return c

    def _input_index(self, net: str, key: str, term: Term) -> int:
        if (net, key) not in self._inputs:
            self._inputs[(net, key)] = len(self._input_terms)
            self._input_terms.append((net, term))
        return self._inputs[(net, key)]

    # ---- evaluation -----------------------------------------------------------------
    def forward(self, examples: Sequence[Example], joint: bool = False) -> Answers:
        """Every answer of every example (0 where an example's structure lacks it). ``joint``:
        unconditioned, P(answer and evidence) with P(evidence) in ``Answers.evidence`` (EM's
        counts and the multilinear forms of training need them apart)."""
        groups: dict[str, tuple] = {}
        for i, ex in enumerate(examples):
            c = self.compiled(ex)
            g = groups.setdefault(c.key, (c, [], [], None))
            g[1].append(i)
            g[2].append(ex.id)
        parts = self._evaluate(groups, joint)
        names = sorted({n for c, _, _ in parts for n in c.names})
        col = {n: i for i, n in enumerate(names)}
        first = parts[0][2] if parts else None
        dtype = (first[0] if isinstance(first, tuple) else first).dtype if parts else torch.float64
        out = torch.zeros(len(examples), len(names), dtype=dtype)
        z = torch.ones(len(examples), dtype=dtype) if joint else None
        for c, pos, vals in parts:
            if joint:
                vals, ev = vals if c.has_evidence else (vals, None)
                z = z if ev is None else z.index_put((torch.tensor(pos),), ev.to(dtype))
            cols = torch.tensor([col[n] for n in c.names], dtype=torch.long)
            out = out.index_put((torch.tensor(pos).unsqueeze(1), cols.unsqueeze(0)), vals)
        return Answers(names, out, z)

    def prob(self, examples: Sequence[Example]) -> torch.Tensor:
        """Tensor[B]: P(query | evidence) of each fully bound example (0 if not derivable).

        A bound example is answered from its template's *free* structure when the bound atom is
        one of its answers (the same probability: ProbLog's semantics do not depend on which
        queries are asked), so training compiles one circuit per face count, not one per face
        count and label; otherwise from its own bound structure. Batches over tensor-bound
        networks without evidence take ``batch.TensorBatch`` (one merged circuit).
        """
        rid: list[Any] = list(map(self._routes.get, map(_ROUTE_KEY, examples)))  # C level: per example
        keys = list(map(_ROUTE_KEY, examples)) if None in rid else []
        for i in [i for i, r in enumerate(rid) if r is None] if keys else []:
            if self._routes.get(keys[i]) is None:
                self._routes[keys[i]] = len(self._route_list)
                self._route_list.append(self._route(examples[i]))
            rid[i] = self._routes[keys[i]]
        structures = tuple(sorted({self._route_list[r][0].key for r in set(rid)}))
        if structures and structures not in self._fast:  # None where TensorBatch does not apply
            self._fast[structures] = TensorBatch.build(
                [self._mem[k] for k in structures], self._bindings, self.nets, self.path
            )
        fast = self._fast.get(structures) and self._fast[structures](
            list(map(_ID, examples)), rid, self._route_list, self._bindings, self.tparams, CHUNK_VALUES
        )
        if fast is not None:
            return fast
        groups: dict[str, tuple] = {}
        for i, (ex, (c, k)) in enumerate(zip(examples, map(self._route_list.__getitem__, rid))):
            g = groups.get(c.key) or groups.setdefault(c.key, (c, [], [], []))
            g[1].append(i), g[2].append(ex.id), g[3].append(k)
        parts = self._evaluate(groups)
        out = torch.zeros(len(examples), dtype=parts[0][2].dtype if parts else torch.float64)
        for (c, pos, vals), g in zip(parts, groups.values()):
            cols = torch.tensor(g[3], dtype=torch.long)
            keep = cols >= 0
            if keep.any():
                rows = torch.arange(len(pos))[keep]
                out = out.index_put((torch.tensor(pos)[keep],), vals[rows, cols[keep]])
        return out

    def _route(self, ex: Example) -> tuple[Compiled, int]:
        """(structure, answer column) for a bound example; column -1: not derivable."""
        memo_key = ("route", ex.template, ex.faces, ex.bind)
        if memo_key not in self._fill_memo:
            key, term = self._fill(ex)
            if term is not None and not term.is_ground():
                raise ProgramError(
                    f"{self.path}: Error: example {ex.id}: {key} is not fully "
                    f"bound (free: {sorted(map(str, term.variables()))}); prob() "
                    "needs every variable bound (forward() scores all answers)",
                    path=self.path,
                    message="query not fully bound",
                )
            free = self.compiled(Example(ex.id, ex.template, ex.faces)) if ex.bind else None
            if free is not None and key in free.names:
                route = (free, free.names.index(key))
            else:
                c = self.compiled(ex)
                if len(c.names) > 1:
                    raise ProgramError(
                        f"{self.path}: Error: {c.key} has {len(c.names)} answers; "
                        "bind its free variables to train on it",
                        path=self.path,
                        message="query not fully bound",
                    )
                route = (c, 0 if c.names else -1)
            self._fill_memo[memo_key] = route
        c, col = self._fill_memo[memo_key]
        return self._mem[c.key], col

    def _evaluate(self, groups: dict[str, tuple], joint: bool = False) -> list[tuple]:
        """``structures.evaluate_groups`` with this program's networks and ``t()`` values."""
        return evaluate_groups(
            groups,
            joint,
            input_terms=self._input_terms,
            bindings=self._bindings,
            sources=self._sources,
            nets=self.nets,
            path=self.path,
            tparams=self.tparams,
        )

    def compile_stats(self) -> dict[str, dict]:
        """Per compiled structure: ground/compile seconds, SDD size, circuit nodes, peak RSS."""
        return {k: c.stats for k, c in self._mem.items()}


def _det(name: str):
    def det(inputs):
        return Term("tensor", Term("nn", Term(name), inputs))

    return det
