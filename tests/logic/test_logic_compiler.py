"""The top-down compiler (emolog/logic/engine/dnnf.py) on the research programs' shapes, and the
answer-mass check (emolog/logic/check/mass.py).

References are computed in the test: problog itself on the same program with each example's
network outputs written in as numbers (the network over computed values as a flexible
disjunction whose probabilities ProbLog computes with the same formula), DeepProbLog 2.1's
ExactEngine through ``compare_program`` where it finishes, and sums over worlds by hand.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import pytest
import torch
from problog import get_evaluatable
from problog.program import PrologString

from emolog.cli import main
from emolog.logic import DeepProgram, Example, ProgramError
from emolog.logic.check.compare import compare_program
from emolog.logic.check.mass import check_answer_mass
from helpers.paths import TESTS

PROGRAMS = TESTS / "programs" / "compiler"
TEMPLATE = "final_emotion(Faces, tensor(scene(I)), Y)"
VA_LABELS = ["joy", "trust", "anger"]
EMO7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
# the network over a computed (valence, arousal) pair: softmax of these linear scores, in
# torch for emolog and in ProbLog arithmetic for the reference
VA_SCORES = [(0.3, -0.2), (-0.5, 0.1), (0.0, 0.2)]


def _va_probs(v: float, a: float) -> list[float]:
    e = [math.exp(c * v + d * a) for c, d in VA_SCORES]
    return [x / sum(e) for x in e]


def _va_net(inputs) -> torch.Tensor:
    """A callable network over ground [V, A] input lists."""
    return torch.tensor([_va_probs(float(v), float(a)) for v, a in inputs], dtype=torch.float64)


def _va_reference_rule() -> str:
    exps = " ".join(f"E{k} is exp({c} * V + {d} * A)," for k, (c, d) in enumerate(VA_SCORES))
    probs = ", ".join(f"P{k} is E{k} / S" for k in range(len(VA_SCORES)))
    heads = "; ".join(f"P{k}::va_emotion(V, A, {y})" for k, y in enumerate(VA_LABELS))
    return f"{heads} :- va_probs(V, A, P0, P1, P2).\nva_probs(V, A, P0, P1, P2) :- {exps} S is E0 + E1 + E2, {probs}.\n"


def _dist(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.softmax(2 * torch.randn(*shape, generator=gen, dtype=torch.float64), -1)


def _bound_program(path: Path, scene: torch.Tensor, faces: torch.Tensor) -> DeepProgram:
    prog = DeepProgram(path, [TEMPLATE], cache_dir=False)
    prog.bind("scene_net", scene)  # tensor(scene(I)) -> scene[I]
    prog.bind("face_net", faces)  # tensor(face(I,k)) -> faces[I, k] (slot 0 unused)
    prog.bind("va_net", _va_net)
    return prog


def _problog_answers(
    path: Path, scene: list[float], scenes: list[str], face: list[float] | None, domain: list[str]
) -> dict[str, float]:
    """problog's answers for one example: the nn lines replaced by its numbers."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("nn(")]
    lines.append("; ".join(f"{p!r}::scene(img, {s})" for p, s in zip(scene, scenes)) + ".")
    if face is not None:
        lines.append("; ".join(f"{p!r}::face_expr(f1, {e})" for p, e in zip(face, domain)) + ".")
    lines.append(_va_reference_rule())
    lines.append(f"query(final_emotion({'[f1]' if face is not None else '[]'}, img, Y)).")
    result = get_evaluatable().create_from(PrologString("\n".join(lines))).evaluate()
    return {re.sub(r".*,", "", str(k)).rstrip(")"): v for k, v in result.items()}


def _domain(path: Path, net: str) -> list[str]:
    m = re.search(rf"nn\({net}, \[[^]]*\], \w+, \[([^]]*)\]\)", path.read_text())
    return [x.strip() for x in m.group(1).split(",")]


@pytest.mark.parametrize("n_faces", [0, 1])
def test_scene_table_crossed_with_a_face_feeding_a_computed_value_net_equals_problog(n_faces):
    path = PROGRAMS / "scene_va.pl"
    scenes, emo = _domain(path, "scene_net"), _domain(path, "face_net")
    gen = torch.Generator().manual_seed(n_faces)
    scene, faces = _dist(gen, 3, len(scenes)), _dist(gen, 3, 2, len(emo))
    prog = _bound_program(path, scene, faces)
    ans = prog([Example(i, faces=n_faces) for i in range(3)])
    for i in range(3):
        ref = _problog_answers(path, scene[i].tolist(), scenes, faces[i, 1].tolist() if n_faces else None, emo)
        ours = {n.rsplit(",", 1)[1].rstrip(")"): float(ans.probs[i, j]) for j, n in enumerate(ans.names)}
        assert set(ours) == set(ref) == set(VA_LABELS)
        for y in VA_LABELS:
            assert ours[y] == pytest.approx(ref[y], abs=1e-9)
        assert sum(ours.values()) == pytest.approx(1, abs=1e-12)


def test_bucket_disjunctions_over_face_lists_equal_deepproblog():
    r = compare_program(PROGRAMS / "buckets.pl", [TEMPLATE], n_examples=3, faces=[0, 1, 2], timeout=300)
    assert r.dp_failed is None, r.dp_failed
    assert r.max_dp <= 1e-9 and r.max_dgrad <= 1e-9
    assert r.mass == []  # exactly one label in every world


def _scene_va_program(k: int, tmp: Path) -> Path:
    """scene_va.pl with a k-row scene table (seeded values)."""
    rng = random.Random(k)
    text = (PROGRAMS / "scene_va.pl").read_text()
    text = re.sub(
        r"nn\(scene_net, \[X\], S, \[[^]]*\]\)",
        f"nn(scene_net, [X], S, [{', '.join(f's{i}' for i in range(k))}])",
        text,
    )
    rows = "\n".join(f"scene_va(s{i}, {rng.randint(-30, 30) / 10}, {rng.randint(0, 60) / 10})." for i in range(k))
    text = re.sub(r"(scene_va\(s\d+, [^)]*\)\.\n)+", rows + "\n", text)
    path = tmp / f"scene_va_{k}.pl"
    path.write_text(text)
    return path


def test_a_365_way_scene_circuit_is_the_size_of_its_sum(tmp_path):
    """Each answer is a sum over 365 x |faces| exclusive (scene, face) pairs of one
    computed-value output each: the circuit stays within a small multiple of that, as does
    the formula (an SDD of this shape once took minutes and gigabytes)."""
    path = _scene_va_program(365, tmp_path)
    n_face = len(_domain(path, "face_net"))
    gen = torch.Generator().manual_seed(0)
    prog = _bound_program(path, _dist(gen, 2, 365), _dist(gen, 2, 2, n_face))
    c = prog.compiled(Example(0, faces=1))
    pairs = 365 * n_face
    assert c.stats["nodes"] <= 4 * pairs * len(VA_LABELS), c.stats
    assert c.stats["formula_nodes"] <= 12 * pairs, c.stats
    p = prog([Example(0, faces=1), Example(1, faces=1)]).probs
    assert p.sum(1).tolist() == pytest.approx([1, 1], abs=1e-12)


def test_a_structure_beyond_the_budget_is_refused_with_its_figures():
    prog = DeepProgram(PROGRAMS / "scene_va.pl", [TEMPLATE], cache_dir=False, max_nodes=30)
    with pytest.raises(
        ProgramError,
        match=r"beyond exact compilation here: .*formula nodes after .* exceed "
        r"the budget of 30 \(ground in .* s, peak RSS .* MB\)",
    ):
        prog.compiled(Example(0, faces=1))


def test_the_none_of_a_disjunction_has_problogs_weight_and_gradient():
    """P(q) = 1 - p_a - p_b when q needs neither head: ProbLog's "none" atom, d/dp = -1."""
    prog = DeepProgram("t(0.2)::a; t(0.3)::b.\nq :- \\+ a, \\+ b.\nr :- a.\n", ["q", "r"], cache_dir=False)
    p = prog.prob([Example(0, template=0), Example(0, template=1)])
    assert p.tolist() == pytest.approx([0.5, 0.2], abs=1e-7)  # t() are float32 parameters
    p[0].backward()
    assert prog.tparams.values[0].grad.tolist() == pytest.approx([-1.0, -1.0])


def _one_hot(n: int, i: int) -> list[float]:
    return [1.0 if j == i else 0.0 for j in range(n)]


def _boundary(scene_i: int, face_i: int) -> DeepProgram:
    scene = torch.tensor([_one_hot(3, scene_i)], dtype=torch.float64)
    faces = torch.tensor([[_one_hot(3, 0), _one_hot(3, face_i)]], dtype=torch.float64)
    return _bound_program(PROGRAMS / "boundary.pl", scene, faces)


def test_two_rules_firing_at_a_float_boundary_are_named_with_their_lines():
    prog = _boundary(0, 1)  # scene s0 (valence 2.4), a happy face (5.4): |5.4 - 2.4| = 3 and > 3
    [f] = check_answer_mass(prog, [Example(0, faces=1)], VA_LABELS)
    # P(joy or joy') summed over the labels: 2 - sum_y p1(y) p2(y), p1, p2 the two pairs' outputs
    p1, p2 = _va_probs(2.4, 3.0), _va_probs((2 * 5.4 + 2.4) / 3, (2 * 3.8 + 3.0) / 3)
    assert f.fault == "overlap" and f.masses == [(0, pytest.approx(2 - sum(a * b for a, b in zip(p1, p2))))]
    assert len(f.labels) == 2 and set(f.labels) <= set(VA_LABELS)
    assert "scene(tensor(scene(I)),s0)" in f.world and "face_expr(tensor(face(I,1)),happy)" in f.world
    lines = [ln for ln in (PROGRAMS / "boundary.pl").read_text().splitlines()]
    rule_lines = [i + 1 for i, ln in enumerate(lines) if ln.startswith("combine(")]
    assert [r.split(": ")[0] for r in f.rules] == [f"{PROGRAMS / 'boundary.pl'}:{n}" for n in rule_lines]
    assert "combine(5.4,3.8,2.4,3.0," in f.rules[0] and "combine(5.4,3.8,2.4,3.0,2.4,3.0)" in f.rules[1]
    assert "two labels hold at once" in f.message() and "boundary.pl:" in f.message()


def test_a_case_no_rule_covers_is_reported_as_no_label():
    prog = _boundary(2, 0)  # scene s2 (1.5), an angry face (-2.0): distance 3.5, no rule
    [f] = check_answer_mass(prog, [Example(0, faces=1)], VA_LABELS)
    assert f.fault == "no_label" and f.masses == [(0, 0.0)]
    assert {"face_expr(tensor(face(I,1)),angry)", "scene(tensor(scene(I)),s2)"} <= set(f.world)
    assert "no label holds" in f.message()


@pytest.mark.parametrize("name", ["scene_va.pl", "buckets.pl"])
def test_the_check_is_silent_where_the_answers_sum_to_one(name):
    gen = torch.Generator().manual_seed(3)
    path = PROGRAMS / name
    labels = VA_LABELS if name == "scene_va.pl" else ["joy", "trust", "anger", "sadness"]
    prog = DeepProgram(path, [TEMPLATE], cache_dir=False)
    for net, decl in prog.nets.items():
        width = len(decl.domain)
        prog.bind(
            net, _va_net if net == "va_net" else _dist(gen, 4, width) if net == "scene_net" else _dist(gen, 4, 4, width)
        )
    examples = [Example(i, faces=i % 4 if name == "buckets.pl" else i % 2) for i in range(4)]
    assert check_answer_mass(prog, examples, labels) == []


PLAIN = """\
0.5::scene(s0); 0.5::scene(s2).
0.5::face(happy); 0.5::face(angry).
value(s0, 2.4). value(s2, 1.5). value(happy, 5.4). value(angry, -2.0).
label(F, S, joy) :- face(F), scene(S), value(F, FV), value(S, SV), D is abs(FV - SV), D =< 3.
label(F, S, trust) :- face(F), scene(S), value(F, FV), value(S, SV), abs(FV - SV) > 3, abs(FV - SV) =< 3.4.
final(Y) :- label(_, _, Y).
query(final(Y)).
"""


def test_emolog_logic_warns_or_refuses_with_classes_and_strict(tmp_path, capsys):
    path = tmp_path / "plain.pl"
    path.write_text(PLAIN)
    assert main(["logic", str(path), "--classes"]) == 0
    out, err = capsys.readouterr()
    assert "final(joy)" in out and "warning: final(Y): the answers over the labels sum to" in err
    assert "no label holds when face(" in err  # e.g. a happy face in scene s2: distance 3.9
    assert main(["logic", str(path), "--strict"]) == 3
    out, err = capsys.readouterr()
    assert out == "" and "error: final(Y)" in err and "Traceback" not in err
    assert main(["logic", str(path)]) == 0  # a drop-in for problog: no check unless asked
    assert capsys.readouterr().err == ""


def test_answers_far_below_float32s_range_stay_exact_from_float32_networks():
    """Twelve faces that must all be happy, each with probability 1e-4: the answer is 1e-48,
    which float32 (smallest normal 1.2e-38) cannot hold; the circuit computes in float64."""
    prog = DeepProgram(
        "nn(face_net, [X], E, [happy, sad]) :: face_expr(X, E).\n"
        "all_happy([]).\nall_happy([F|Fs]) :- face_expr(F, happy), all_happy(Fs).\n",
        ["all_happy(Faces)"],
        cache_dir=False,
    )
    faces = torch.tensor([[[0.0, 0.0]] + [[1e-4, 1 - 1e-4]] * 12], dtype=torch.float32, requires_grad=True)
    prog.bind("face_net", faces)
    naive = torch.prod(faces[0, 1:, 0])
    assert naive.item() == 0.0  # what a float32 circuit would give
    p = prog.prob([Example(0, faces=12)])
    expected = math.prod([float(torch.tensor(1e-4, dtype=torch.float32))] * 12)
    assert p.dtype == torch.float64 and p.item() == pytest.approx(expected, rel=1e-12)
    (-torch.log(p)).sum().backward()  # d(-log p)/d p_k = -1 / p_k for each face: finite, float32
    assert faces.grad.dtype == torch.float32
    assert faces.grad[0, 1:, 0].tolist() == pytest.approx([-1e4] * 12, rel=1e-6)
