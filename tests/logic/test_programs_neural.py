"""Each corpus construct inside a batched program with neural inputs (tests/programs/neural/).

Every program is run by emolog as a DeepProbLog program (``DeepProgram``: query templates,
networks bound to seeded random output tensors, a batch of examples in one call) and, per
example, by problog itself on the same program with that example's network outputs written in
as probabilistic facts / annotated disjunctions (exact floats). Answers must agree within 1e-9.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from problog.logic import Term, Var, term2list
from problog.program import PrologString

from helpers.corpus import CORPUS_DIR, TOL, problog_reference

NEURAL_DIR = CORPUS_DIR / "neural"
B = 4  # examples per template
T1 = "tensor(img(I))"
# program -> (templates, {net: extra index dims of its bound tensor}); face_list's examples
# have 0..3 faces, the others none
CASES: dict[str, tuple[list[str], dict[str, tuple[int, ...]]]] = {
    "ad_body": ([f"weather({T1}, W)"], {}),
    "ad_vars": ([f"seen_red({T1})"], {}),
    "flexible": ([f"answer({T1}, E)"], {}),
    "negation": ([f"emotion({T1}, E)"], {}),
    "findall": ([f"picks({T1}, N)"], {}),
    "aggregate": ([f"total({T1}, T)"], {}),
    "cut": ([f"wear({T1}, W)"], {}),
    "consult": ([f"calls({T1})"], {}),
    "arithmetic": (
        ["far(tensor(img(I,0)), tensor(img(I,1)))", "total(tensor(img(I,0)), tensor(img(I,1)), T)"],
        {"val_net": (2,)},
    ),
    "evidence": ([f"alarm({T1})"], {}),
    "prob_clause": ([f"smokes({T1})"], {}),
    "face_list": ([f"final_emotion(Faces, {T1}, E)"], {"face_net": (4,)}),
    "deterministic": ([f"has_desc({T1}, D)"], {}),
}
FACE_COUNTS = [0, 1, 2, 3]


def _decls(text: str) -> dict[str, tuple[Term, list | None, Term]]:
    """net -> (head, domain or None for a neural fact, the nn(...) term), via problog's parser."""
    out = {}
    for st in PrologString(text):
        p = getattr(st, "probability", None)
        if isinstance(p, Term) and p.functor == "nn":
            domain = [str(d) for d in _items(p.args[3])] if p.arity == 4 else None
            out[str(p.args[0])] = (st.with_probability(None), domain, p)
    return out


def _items(t: Term) -> list:
    return term2list(t, False)


def _outputs(decls, dims, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for net, (_head, domain, _p) in sorted(decls.items()):
        shape = (B, *dims.get(net, ()))
        if domain is None:
            out[net] = torch.rand(*shape, generator=gen, dtype=torch.float64) * 0.98 + 0.01
        else:
            out[net] = torch.softmax(2 * torch.randn(*shape, len(domain), generator=gen, dtype=torch.float64), -1)
    return out


def _tensor_terms(text: str) -> list[str]:
    return sorted(set(re.findall(r"tensor\((?:img|face)\(\d+(?:,\d+)?\)\)", text)))


def _problog_text(program: Path, decls, outputs, query: str) -> str:
    """The program for one example: nn lines replaced by that example's numbers."""
    text = program.read_text().replace("consult('../lib/", f"consult('{CORPUS_DIR / 'lib'}/")
    lines = [ln for ln in text.splitlines() if not ln.startswith("nn(")]
    for tensor in _tensor_terms(query):
        idx = tuple(int(n) for n in re.findall(r"\d+", tensor))
        for net, (head, domain, p) in decls.items():
            x = outputs[net]
            if len(idx) != x.dim() - (0 if domain is None else 1):
                continue  # this network's inputs have another shape
            row = x[idx]
            inp = _items(p.args[1])[0]
            subst = {inp.name: Term(tensor)} if isinstance(inp, Var) else {}
            if domain is None:
                lines.append(f"{float(row)!r}::{head.apply_term(_vars(subst))}.")
                continue
            out_var = p.args[2].name
            heads = [
                f"{float(row[j])!r}::{head.apply_term(_vars({**subst, out_var: _const(d)}))}"
                for j, d in enumerate(domain)
            ]
            lines.append("; ".join(heads) + ".")
    lines.append(f"query({query}).")
    return "\n".join(lines) + "\n"


def _vars(subst: dict) -> dict:
    return {Var(k): (v if isinstance(v, Term) else Term(v)) for k, v in subst.items()}


def _const(d: str) -> Term:
    return list(PrologString(f"x({d})."))[0].args[0]


def _fill(template: str, i: int, faces: int) -> str:
    face_list = "[" + ",".join(f"tensor(face({i},{k}))" for k in range(1, faces + 1)) + "]"
    return re.sub(r"\bI\b", str(i), template.replace("Faces", face_list))


def _placeholder(name: str, i: int) -> str:
    return name.replace(f"img({i}", "img(I").replace(f"face({i},", "face(I,")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """problog's answers per (program, template, example), and the outputs the networks give."""
    root = tmp_path_factory.mktemp("neural")
    jobs, outputs = {}, {}
    for seed, (name, (templates, dims)) in enumerate(CASES.items()):
        program = NEURAL_DIR / f"{name}.pl"
        decls = _decls(program.read_text())
        outputs[name] = _outputs(decls, dims, seed)
        for t, template in enumerate(templates):
            for i in range(B):
                faces = FACE_COUNTS[i] if "Faces" in template else 0
                path = root / f"{name}_{t}_{i}.pl"
                path.write_text(_problog_text(program, decls, outputs[name], _fill(template, i, faces)))
                jobs[(name, t, i)] = (path, faces)
    ref = problog_reference([path for path, _faces in jobs.values()], cli=False)
    return {"jobs": jobs, "outputs": outputs, "ref": ref}


def test_every_neural_program_is_listed():
    assert {p.stem for p in NEURAL_DIR.glob("*.pl")} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_batched_neural_program_matches_problog(name, reference):
    from emolog.logic.engine.deep import DeepProgram, Example

    templates, _dims = CASES[name]
    jobs, ref = reference["jobs"], reference["ref"]
    prog = DeepProgram(NEURAL_DIR / f"{name}.pl", templates, cache_dir=False)
    for net, x in reference["outputs"][name].items():
        prog.bind(net, x)
    examples = [Example(i, t, jobs[(name, t, i)][1]) for t in range(len(templates)) for i in range(B)]
    ans = prog(examples)  # one batched call: every template and face count together
    for b, ex in enumerate(examples):
        path, _faces = jobs[(name, ex.template, ex.id)]
        want = ref[str(path)]
        assert "answers" in want, (path.read_text(), want)
        want = {_placeholder(k, ex.id): v for k, v in want["answers"].items()}
        got = {n: float(ans.probs[b, ans.names.index(n)]) for n in prog.compiled(ex).names}
        where = f"{name} example {ex.id} template {ex.template}:\n{path.read_text()}"
        for atom, p in want.items():
            assert atom in got, f"{where}\nproblog answers {atom}, emolog only {sorted(got)}"
            assert abs(got[atom] - p) <= TOL, f"{where}\nP({atom}) = {got[atom]!r}, problog {p!r}"
        for atom in set(got) - set(want):  # problog's CLI leaves out answers evidence makes impossible
            assert abs(got[atom]) <= TOL, f"{where}\nemolog answers {atom} = {got[atom]!r}; problog has no such answer"
