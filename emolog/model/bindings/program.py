"""A spec's compiled program behind the interface ``Network`` uses, however emolog compiles it.

Every spec goes through ``open_program`` (parse and translate, foreign predicates registered,
the networks checked against the bindings: nothing compiled yet) and ``build_logic``, which
picks the compilation itself:

* a program in the seed's shape (every ``nn`` input starts with the image, a query
  ``f(X, E)``, bindings the seed's feeds: scene head, recogniser distribution in its own
  order, face mask, gate, evidence facts, heads over whole-image features) is compiled once
  for every image (``emolog.logic.compile_program``: the fastest for these programs);
* every other program is a ``ProgramLogic``: ``emolog.logic.DeepProgram`` with the spec's
  query template, one structure per face count, compiled when first met, the networks fed by
  ``feeds``. Both give the same answers (tests/model/test_train_bindings.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from emolog.model.bindings.feeds import Batch, FeedSite, FunctionFeed, HeadFeed, HeadMLP, RowFeed
from emolog.model.bindings.fields import MASK
from emolog.model.bindings.maps import short, suggest_table
from emolog.model.bindings.schema import SpecError, check_nets, function_version, resolve_function
from emolog.model.bindings.seed import CANONICAL, check_seed_domain, seed_module, seed_shaped

# an evidence/1 atom over a variable in the seed programs' shape: evidence(ok(X))
_IMAGE_EVIDENCE = re.compile(r"^(\s*evidence\(\s*[a-z]\w*\(\s*)([A-Z_]\w*)", re.MULTILINE)


@dataclass
class BuildContext:
    """What building the feeds needs from the data and the run."""

    k: int = 3  # face slots of the cache
    seed: int = 0
    dropout: float = 0.5  # a head's default dropout (net_dropout)
    maps: dict[str, tuple] = field(default_factory=dict)  # net -> (M, renorm, table): schema.check_data
    heads: dict[str, HeadMLP] = field(default_factory=dict)  # a finished run's heads (load_run)


def program_text(spec) -> tuple[str, str]:
    """(text, display path) of the spec's program."""
    from emolog.logic.program import resolve_program

    try:
        return resolve_program(spec.program)
    except Exception as e:  # ProgramError: an unknown shipped name
        raise SpecError(f"{spec.where}: program {spec.program!r}: {e}") from None


def open_program(spec, param: str):
    """The spec's program as a DeepProgram (parsed, translated, foreign predicates registered;
    no structure compiled) with its networks checked against the spec's bindings."""
    from emolog.logic import DeepProgram

    text, path = program_text(spec)
    # the seed programs' evidence(ok(X)) is about the image: its variable is the image
    prog = DeepProgram(
        _IMAGE_EVIDENCE.sub(r"\1emolog_I", text), [spec.template], base_dir=Path(path).parent, param=param, path=path
    )
    prog.source_text = text
    check_nets(spec.where, spec.nets, prog.nets, path)
    for f in spec.foreign.values():
        fn = resolve_function(f.function, spec.base, f"{spec.where}: [foreign.{f.name}]")
        prog.register_foreign(
            _foreign(fn, spec.where, f.name), f.name, f.arity_in, f.arity_out, version=function_version(fn)
        )
    return prog


def _foreign(fn, where: str, name: str):
    def call(*args):
        try:
            return fn(*args)
        except Exception as e:  # the user's code, called while grounding: one line naming it
            shown = ", ".join(map(str, args))
            raise SpecError(
                f"{where}: [foreign.{name}] {name}({shown}) raised {type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}"
            ) from None

    return call


def own_names(spec) -> dict[str, str]:
    """{emolog's role for a network (scene_net, gate_net, ...): the program's own name}: the
    names its parameter groups, layer tables and checkpoints carry."""
    return {CANONICAL[b.bind]: n for n, b in spec.nets.items() if b.bind in CANONICAL} if spec else {}


def scene_domain(lm) -> list[str] | None:
    """The declared domain of the program's network bound to the scene head (None: none)."""
    if getattr(lm, "general", False):
        decl = lm.prog.nets.get(lm.scene_head) if lm.scene_head else None
    else:
        decl = lm.program.neural.get("scene_net")
    return [str(d).strip("'") for d in decl.domain] if decl is not None and decl.domain else None


def build_logic(spec, prog, semantics: str, param: str, ctx: BuildContext | None) -> nn.Module | None:
    """The compiled program of a run (see the module docstring); ``prog`` from ``open_program``.
    Without ``ctx`` (the data not read yet): the seed-shaped compilation, or None where the
    program needs the data's context (``prepare_spec``) first."""
    if seed_shaped(spec, prog.nets):
        lm = seed_module(spec, *program_text(spec), semantics, param)
        if lm is not None:
            lm.output_functor = spec.functor
            check_seed_domain(spec, lm)
            return lm
    if ctx is None:
        return None
    if semantics != "condition":
        raise SpecError(
            f"{spec.where}: semantics {semantics!r} (regime original forces 'original') needs a program "
            "in the seed's shape: every nn input starting with the image, a query f(X, E) and the "
            "seed's evidence(ok(X)); this program conditions on its evidence ('condition')"
        )
    return ProgramLogic(spec, prog, ctx)


class ProgramLogic(nn.Module):
    """A spec's program through ``DeepProgram``: ``forward(rows)`` -> [B, classes] (P(the
    label's value | evidence) for each label, in the spec's class order), ``rows`` the batch's
    feed tensors (``Network.program_io``)."""

    general = True
    semantics = "condition"
    sources: list[str] = []
    fact_keys: dict = {}

    def __init__(self, spec, prog, ctx: BuildContext) -> None:
        super().__init__()
        from emolog.logic import Example
        from emolog.logic.templates import as_term

        self.prog, self._example, self.where, self._base = prog, Example, spec.where, spec.base
        self.program = replace(prog.params_program, source=prog.source_text)  # the file as written
        self.classes, self.label_values = spec.classes, spec.label_values
        self.output_functor = spec.functor
        self.query_names = [f"{spec.functor}({as_term(c, 'a label', 'the label set')})" for c in spec.classes]
        self._col = {str(as_term(spec.value_of(c), "a label value", spec.where)): j for j, c in enumerate(spec.classes)}
        self.uses_faces = "Faces" in spec.template
        self.input_sizes = {n: len(d.domain) for n, d in prog.nets.items() if d.kind == "ad"}
        self.scene_head = next((n for n, b in spec.nets.items() if b.bind == "scene_head"), None)
        self.batch = Batch()
        # heads seeded by their rank among the spec's heads, as the seed-shaped compilation seeds them
        rank = {n: i for i, n in enumerate(sorted(n for n, b in spec.nets.items() if b.bind == "head"))}
        self.feeds = {n: self._feed(b, prog.nets[n], ctx, rank.get(n, 0)) for n, b in spec.nets.items()}
        for n, f in self.feeds.items():
            prog.bind(n, f)
        self.row_sources = sorted(
            {MASK}
            | {
                s
                for b in spec.nets.values()
                for s in (b.bind, *b.inputs)
                if s != "args" and not s.startswith(("head", "function"))
            }
        )
        self.values_seen: set[str] = set()
        self._names: dict[tuple, tuple] = {}
        self._value: dict[str, str] = {}

    def _feed(self, b, decl, ctx: BuildContext, i: int):
        ad = decl.kind == "ad"
        width = len(decl.domain) if ad else 1
        site = FeedSite(b, width, ad, self.batch, self.where, ctx.k)
        if b.bind == "head":
            return HeadFeed(
                site,
                seed=ctx.seed * 1009 + 500 + i,
                dropout=b.dropout if b.dropout is not None else ctx.dropout,
                module=ctx.heads.get(b.name),
            )
        if b.bind == "function":
            return FunctionFeed(site, fn=resolve_function(b.function, self._base, self.where))
        if b.bind == "gate":
            raise SpecError(
                f'{self.where}: [nets.{b.name}] bind = "gate" chooses the seed program\'s source per '
                "image: it needs the program in the seed's shape (gated.pl: nn(gate_net, [X], S, [scene, "
                "face1, face2, face3]) :: source(X, S), a query f(X, E)); for any other network use "
                'bind = "head" with inputs = [...]'
            )
        m, renorm, _ = ctx.maps.get(b.name, (None, False, None))
        return RowFeed(site, cmap=m, renorm=renorm)

    @property
    def tparams(self):
        return self.prog.tparams

    def __setattr__(self, name: str, value) -> None:
        # training swaps ``lm.tparams`` (EM's logits, the fast path's corners): the program's own
        if name == "tparams":
            self.prog.tparams = value
        else:
            super().__setattr__(name, value)

    def heads(self) -> dict[str, HeadMLP]:
        """The heads built so far (at their first batch), by network name."""
        return {n: f.module for n, f in self.feeds.items() if isinstance(f, HeadFeed) and f.module is not None}

    def _examples(self, rows: dict) -> list:
        mask = rows[MASK]
        n = (mask[..., 0] > 0.5).sum(1).tolist() if self.uses_faces else [0] * mask.shape[0]
        return [self._example(b, 0, k) for b, k in enumerate(n)]

    def forward(self, inputs: dict, facts: dict | None = None) -> torch.Tensor:
        return self._classes(self._answers(inputs, joint=False))

    def _answers(self, inputs: dict, joint: bool):
        from emolog.logic import ProgramError
        from emolog.logic.engine.module import LogicInputError

        self.batch.set(inputs)
        try:
            return self.prog(self._examples(inputs), joint=joint)
        except ProgramError as e:
            if e.message == "evidence impossible":  # an image the program cannot score
                raise LogicInputError(f"the evidence has probability 0 for some images ({e})") from None
            raise

    def _classes(self, ans) -> torch.Tensor:
        """[B, classes] from every answer: a label's value's answer, in the class order."""
        src, dst = self._columns(ans.names)
        out = torch.zeros(ans.probs.shape[0], len(self.classes), dtype=ans.probs.dtype, device=ans.probs.device)
        # answers of different structures (face counts) name one class: each example has its own
        return out.index_add(1, dst, ans.probs[:, src]) if len(src) else out

    def _columns(self, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        key = tuple(names)
        if key not in self._names:
            vals = [self._answer_value(n) for n in names]
            self.values_seen.update(vals)
            keep = [(a, self._col[v]) for a, v in enumerate(vals) if v in self._col]
            self._names[key] = (
                torch.tensor([a for a, _ in keep], dtype=torch.long),
                torch.tensor([c for _, c in keep], dtype=torch.long),
            )
        return self._names[key]

    def _answer_value(self, name: str) -> str:
        if name not in self._value:
            from problog.program import PrologString

            self._value[name] = str(list(PrologString(f"emolog_a({name}).", source_root="."))[0].args[0].args[-1])
        return self._value[name]

    def raw_outputs(self, inputs: dict, facts: dict | None = None) -> torch.Tensor:
        """[B, classes + 1]: P(class and evidence) and P(evidence) (1 without evidence)."""
        ans = self._answers(inputs, joint=True)
        return torch.cat([self._classes(ans), ans.evidence.to(ans.probs).unsqueeze(1)], 1)

    def groundings(self, inputs: dict) -> torch.Tensor:
        """[B, P]: how many ground facts of each t() the example's circuit holds (a t() shared
        across the faces has one per face): EM counts each (``em.lfi_step``)."""
        cache: dict[str, torch.Tensor] = {}
        rows = []
        for ex in self._examples(inputs):
            c = self.prog.compiled(ex)
            if c.key not in cache:
                k = torch.zeros(len(self.tparams), dtype=torch.float64)
                for spec in c.specs:
                    if spec[0] == "t":
                        k[spec[1]] += 1
                cache[c.key] = k
            rows.append(cache[c.key])
        return torch.stack(rows) if rows else torch.zeros(0, len(self.tparams), dtype=torch.float64)

    def t_probs(self) -> dict[str, float]:
        probs = self.tparams.probs().detach()
        return {n: float(probs[i]) for i, n in enumerate(self.tparams.names)}

    def source_weights(self) -> dict[str, float]:
        return {}

    def check_labels(self, explicit: bool) -> list[str]:
        """After the first batches, the answers the program gave against the labels: refused
        (both sides listed, and the table that would fix it) when no label is answered, or
        when, without a label table, the program answers values that are no label (another
        spelling); returns a note naming labels the program never answered (probability 0)."""
        wanted = {v: c for c, v in zip(self.classes, self._col)}
        seen = sorted(self.values_seen)
        missing = [wanted[v] for v in sorted(wanted) if v not in self.values_seen]
        extra = [v for v in seen if v not in wanted]
        if len(missing) < len(wanted) and (explicit or not extra):
            return (
                [
                    f"{self.where}: no answer of the program on its first batches is the label(s) {missing}: their "
                    "probability is 0 there"
                ]
                if missing
                else []
            )
        shown = [v.strip("'") for v in seen]
        if all(v.lstrip("-").isdigit() for v in shown) and sorted(map(int, shown)) == list(range(len(self.classes))):
            fix = 'label_values = "position" (the i-th label is the value i)'
        else:
            fix = f"[label_values] {suggest_table(self.classes, shown)}"
        raise SpecError(
            f"{self.where}: the query's answers are {short(shown)}, the labels {short(list(self.classes))} "
            f"(answered by no label: {short([v.strip(chr(39)) for v in extra])}; labels never answered: "
            f"{short(missing)}); map the labels to the program's values with {fix}"
        )
