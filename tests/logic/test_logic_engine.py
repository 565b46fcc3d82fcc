"""The general engine (issue 15): plain ProbLog answered as ProbLog answers it, DeepProbLog
programs as DeepProbLog does, and the three silent wrong answers emolog once gave.

Every expected value is computed in the test by ProbLog (``get_evaluatable``) or DeepProbLog
(``compare_program`` runs its ExactEngine in float64).
"""

from pathlib import Path

import pytest
import torch
from problog import get_evaluatable
from problog.errors import ProbLogError, process_error
from problog.program import PrologFile, PrologString

import deepproblog
from emolog.logic import ProgramError, compile_program, evaluate
from emolog.logic.check.compare import compare_program
from emolog.logic.engine.deep import DeepProgram, Example
from helpers.paths import REPO

EXAMPLES = Path(deepproblog.__file__).parent / "examples"
ADDITION = EXAMPLES / "minimal" / "addition.pl"


def _problog(source) -> dict[str, float]:
    model = PrologFile(str(source)) if isinstance(source, Path) else PrologString(source)
    return {str(k): float(v) for k, v in get_evaluatable().create_from(model).evaluate().items()}


def _close(ours: list[tuple[str, float]], expected: dict[str, float]) -> None:
    assert [k for k, _ in ours] == sorted(expected)
    for k, v in ours:
        assert v == pytest.approx(expected[k], abs=1e-10), k


# ---- the three silent hazards --------------------------------------------------------
def test_hazard_query_variable_is_enumerated_not_taken_for_the_image():
    text = "0.3::a(1). 0.5::a(2). 0.2::a(3).\nquery(a(X)).\n"
    expected = _problog(text)
    assert sorted(expected) == ["a(1)", "a(2)", "a(3)"]  # not a(img)
    _close(evaluate(text), expected)
    lm = compile_program(text, cache_dir=False)  # no nn: the general engine, own queries
    ans = lm([Example(0)])
    assert dict(zip(ans.names, ans.probs[0].tolist())) == pytest.approx(expected, abs=1e-12)


def test_hazard_evidence_in_a_consulted_file_counts(tmp_path):
    (tmp_path / "base.pl").write_text(
        "0.1::burglary.\n0.2::earthquake.\nalarm :- burglary.\nalarm :- earthquake.\nevidence(alarm).\n"
    )
    main = tmp_path / "main.pl"
    main.write_text(":- consult(base).\nquery(alarm).\nquery(burglary).\n")
    expected = _problog(main)
    assert expected["alarm"] == pytest.approx(1.0)  # the consulted evidence holds
    _close(evaluate(main), expected)
    _close(evaluate(main.read_text(), base_dir=tmp_path), expected)
    ans = compile_program(main, cache_dir=False)([Example(0)])
    assert dict(zip(ans.names, ans.probs[0].tolist())) == pytest.approx(expected, abs=1e-12)


def test_hazard_neural_input_keeps_its_first_argument(tmp_path):
    # The general engine: digit(I, _) and digit(i2, _) are two inputs, as in DeepProbLog.
    r = compare_program(ADDITION, ["addition(I, i2, 7)"], n_examples=2, timeout=120)
    assert r.dp_failed is None, r.dp_failed
    assert r.max_dp <= 1e-9 and r.max_dgrad <= 1e-9, r
    prog = DeepProgram(ADDITION, ["addition(I, i2, 7)"], cache_dir=False)
    prog.bind("mnist_net", lambda inputs: torch.full((len(inputs), 10), 0.1))
    prog.prob([Example(0)])
    assert sorted(str(t) for _, t in prog._input_terms) == ["[emolog_I]", "[i2]"]
    # The image-convention path refuses such an input instead of reading the image's.
    p = tmp_path / "add.pl"
    p.write_text(ADDITION.read_text() + "\nquery(addition(X, i2, 7)).\n")
    with pytest.raises(ProgramError, match=r"does not start with the image but with i2"):
        compile_program(p)


# ---- plain ProbLog -------------------------------------------------------------------
PROGRAMS = {
    "deterministic": "a. b :- \\+ a.\nquery(a). query(b).\n",
    "ad_body_vars": "0.2::r(1);0.3::r(2);0.5::r(3).\n1/3::u(X);1/3::v(X) :- r(X), X > 1.\nquery(u(_)). query(v(_)).\n",
    "flexible": "0.4::c(1). 0.7::c(2).\nP::w(X) :- c(X), P is X/4.\nquery(w(X)).\n",
    "negation_evidence": "0.3::a. 0.6::b. c :- a, \\+ b. c :- b, \\+ a.\nevidence(c).\nquery(a). query(b).\n",
    "findall": "0.5::s(1). 0.5::s(2). 0.5::s(3).\ncnt(N) :- findall(X, s(X), L), length(L, N).\nquery(cnt(_)).\n",
    "query_by_rule": ":- use_module(library(lists)).\n0.6::e(a). 0.3::e(b).\nquery(e(X)) :- member(X, [a, b]).\n",
    "cycle": "0.5::edge(1,2). 0.5::edge(2,1). 0.5::edge(2,3).\npath(X,Y) :- edge(X,Y).\n"
    "path(X,Y) :- edge(X,Z), path(Z,Y).\nquery(path(1,3)).\n",
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_evaluate_matches_problog(name):
    _close(evaluate(PROGRAMS[name]), _problog(PROGRAMS[name]))


def test_large_disjunction_compiles_without_the_exclusivity_constraint():
    def program(k):
        rows = "\n".join("; ".join(f"{1 / 7:.6f}::prior(s{i},{e})" for e in "abcdefg") + "." for i in range(k))
        scene = "; ".join(f"{int(1e8 / k) / 1e8}::scene(s{i})" for i in range(k)) + "."
        return (
            f"{scene}\n{rows}\n0.5::face(a); 0.3::face(b); 0.2::face(c).\n"
            "agree(E) :- scene(S), prior(S, E), face(E).\nquery(agree(a)). query(agree(b)).\n"
        )

    _close(evaluate(program(5)), _problog(program(5)))
    small: dict = {}
    evaluate(program(50), stats=small)
    stats: dict = {}
    out = dict(evaluate(program(150), stats=stats))
    assert out["agree(a)"] == pytest.approx(0.5 / 7, abs=1e-6)
    # the circuit grows with k, not k^2 (pairwise exclusivity would be 9x for 3x the scenes);
    # its seconds are benchmarks/logic_programs.py's (`scene` rows), not a test's
    assert stats["nodes"] <= 3.5 * small["nodes"], (small, stats)


def _problog_error(text: str):
    try:
        get_evaluatable().create_from(PrologString(text), propagate_evidence=True).evaluate()
    except ProbLogError as err:
        return err
    pytest.fail("ProbLog accepted the program")


@pytest.mark.parametrize(
    "text",
    [
        "a :- b.\nquery(a).\n",  # unknown clause
        "0.3::a(X).\nquery(a(_)).\n",  # non-ground fact
        "0.3::a. b :- a.\nevidence(b). evidence(a, false).\nquery(a).\n",  # inconsistent
        "p :- X is foo + 1.\nquery(p).\n",  # call mode
    ],
)
def test_errors_are_problogs_own(text):
    err = _problog_error(text)
    with pytest.raises(ProgramError) as e:
        evaluate(text)
    assert e.value.problog_text == process_error(err)
    loc = err.location if isinstance(err.location, tuple) and len(err.location) == 3 else None
    if loc is not None:
        assert (e.value.line, e.value.column) == loc[1:]


@pytest.mark.parametrize(
    "text, construct",
    [
        ("t(_, X)::a.\n", r"t\(_,X\) \(ProbLog LFI"),
        ("nn(n, [X], Y, [a, b])::p(X, Y); 0.5::q.\n", "nn.* as one head of a disjunction"),
        ("0.2::a; t(_)::b.\n", "mixing fixed and t"),
        ("nn(n, [X], Y, [a], z)::p(X, Y).\n", "nn/5"),
    ],
)
def test_refused_constructs_name_file_line_and_why(text, construct):
    with pytest.raises(ProgramError, match=rf"<string>:1: Error: .*{construct}.* not supported"):
        DeepProgram(text, ["p(I, Y)"], cache_dir=False)


# ---- DeepProbLog programs --------------------------------------------------------------
@pytest.mark.parametrize(
    "rel, templates",
    [
        ("minimal/addition.pl", ["addition(tensor(mnist(I,0)), tensor(mnist(I,1)), Z)"]),
        ("MNIST/models/noisy_addition.pl", ["addition_noisy(tensor(m(I,0)), tensor(m(I,1)), Z)"]),
        ("Coins/model.pl", ["game(tensor(c(I)), Outcome)"]),
        ("Forth/WAP/wap.pl", ["wap(tensor(w(I)), 2, 3, 4, Out)"]),
    ],
)
def test_deepproblog_examples_match(rel, templates):
    r = compare_program(EXAMPLES / rel, templates, n_examples=2, timeout=120)
    assert r.dp_failed is None, r.dp_failed
    assert r.max_dp <= 1e-9 and r.max_dgrad <= 1e-9, r


FACES = """
nn(scene_net, [S], E, [a, b, c]) :: scene(S, E).
nn(face_net, [F], E, [a, b, c]) :: face(F, E).
t(0.6)::trust_face.
emo([], S, E) :- scene(S, E).
emo([F|_], S, E) :- trust_face, face(F, E).
emo([_|T], S, E) :- \\+ trust_face, emo(T, S, E).
"""


def test_faces_mixed_batch_cache_and_bindings(tmp_path):
    torch.manual_seed(0)
    n = 6
    scene = torch.softmax(torch.randn(n, 3, dtype=torch.float64), 1)
    faces = torch.softmax(torch.randn(n, 4, 3, dtype=torch.float64), 2)  # face k at [:, k]
    path = tmp_path / "faces.pl"
    path.write_text(FACES)

    def make(cache):
        p = DeepProgram(path, ["emo(Faces, tensor(scene(I)), E)"], cache_dir=cache)
        p.bind("scene_net", scene)  # a tensor: row I
        p.add_tensor_source("face", faces)
        p.bind("face_net", torch.nn.Identity())  # a module on the source
        return p

    examples = [Example(i, faces=(i * 5) % 4) for i in range(n)]  # 0, 1, 2, 3, 0, 1 faces
    prog = make(tmp_path / "cache")
    batch = prog(examples)
    assert len({prog.structure_key(e) for e in examples}) == 4
    for b, e in enumerate(examples):  # caller's order, one by one
        alone = prog([e])
        for a, name in enumerate(alone.names):
            assert float(batch.probs[b, batch.names.index(name)].detach()) == pytest.approx(
                float(alone.probs[0, a].detach())
            )

    # by hand: trust_face is one event, so the first face (tensor(face(I,1)) = faces[I, 1])
    # with probability 0.6, else the scene
    def by_hand(i, k):
        return scene[i] if k == 0 else 0.6 * faces[i, 1] + 0.4 * scene[i]

    for b, e in enumerate(examples):
        got = torch.stack(
            [batch.probs[b, batch.names.index(f"emo({_faces(e.faces)},tensor(scene(I)),{v})")] for v in "abc"]
        )
        assert torch.allclose(got, by_hand(e.id, e.faces), atol=1e-12)
    # the disk cache serves a fresh program without grounding again
    again = make(tmp_path / "cache")
    import emolog.logic.engine.structures as structures

    real = structures.ground
    structures.ground = lambda *a, **k: pytest.fail("grounded although cached on disk")
    try:
        assert torch.allclose(again(examples).probs, batch.probs)
    finally:
        structures.ground = real
    # training: the label bound, gradients reach the network outputs and t()
    scene.requires_grad_(True)
    p = make(False).prob([Example.of(e.id, faces=e.faces, E="b") for e in examples])
    p.log().sum().backward()
    assert scene.grad.abs().sum() > 0
    assert prog.tparams.values[0].grad is None  # (another program's parameters untouched)


def _faces(k: int) -> str:
    return "[" + ", ".join(f"tensor(face(I,{j}))" for j in range(1, k + 1)) + "]"


def test_deterministic_image_convention_program_is_refused_not_recursed(tmp_path):
    p = tmp_path / "det.pl"
    p.write_text("nn(net, [X], Y, [a, b]) :: p(X, Y).\nq(X).\nquery(q(X)).\n")
    with pytest.raises(ProgramError, match="deterministic"):
        compile_program(p)  # once: RecursionError in sdd._vtree
    ans = compile_program(p, queries=["q(I)"], cache_dir=False)([Example(0)])
    assert ans.names == ["q(I)"] and float(ans.probs[0, 0]) == 1.0


def test_t_update_equals_deepproblog_sgd(tmp_path):
    """One projected SGD step on t() (clip, then renormalise each t disjunction) == DeepProbLog's."""
    from deepproblog.engines import ExactEngine
    from deepproblog.model import Model
    from deepproblog.network import Network
    from deepproblog.optimizer import SGD
    from deepproblog.query import Query
    from problog.logic import Constant

    from emolog.logic import ProjectedSGD
    from emolog.logic.check.compare import _DpNet, _EmologNet, _Table
    from emolog.logic.engine.deep import PLACEHOLDER

    path = tmp_path / "bias.pl"
    path.write_text(
        "nn(net1, [X], Y, [0, 1, 2]) :: digit(X, Y).\n"
        "t(0.2)::bias(0); t(0.3)::bias(1); t(0.5)::bias(2).\n"
        "t(0.7)::keep.\n"
        "out(X, Z) :- digit(X, A), bias(B), Z is A + B.\n"
        "out(X, 0) :- \\+ keep.\n"
    )
    template = "out(tensor(p(I)), Z)"
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        prog = DeepProgram(path, [template], param="projected", cache_dir=False)
        prog.bind("net1", _EmologNet(_Table(prog.nets, 3), "net1"))
        examples = [Example.of(i, Z=z) for i, z in enumerate([0, 2, 3, 4])]
        (-torch.log(prog.prob(examples)).sum()).backward()
        ProjectedSGD(prog.tparams, lr=0.5).step()

        net = Network(_DpNet(_Table(prog.nets, 3), "net1"), "net1")
        net.function = lambda *args: args
        model = Model(str(path), [net])
        model.set_engine(ExactEngine(model), cache=True)
        model.optimizer = SGD(model, param_lr=0.5)
        model.optimizer.zero_grad()
        loss = 0
        for e in examples:
            _, term = prog._fill(Example(e.id, bind=e.bind))
            r = model.solve([Query(term, substitution={PLACEHOLDER: Constant(e.id)})])[0]
            loss = loss - torch.log(next(iter(r.result.values())))
        loss.backward()
        model.optimizer.step()
        assert prog.tparams.probs().tolist() == pytest.approx(model.parameters, abs=1e-12)
        assert model.parameters != pytest.approx([0.2, 0.3, 0.5, 0.7])  # the step moved them
        assert sum(model.parameters[:3]) == pytest.approx(1.0)
    finally:
        torch.set_default_dtype(prev)


def test_face_index_past_a_bound_tensor_is_refused_not_read_elsewhere():
    """Faces count from 1 and a bound tensor from 0: a [N, K, D] tensor bound as it is must not
    be read out of range silently (the K-th face has no slot), in scoring or in training."""
    prog = DeepProgram(
        REPO / "benchmarks" / "programs" / "face_list.pl",
        ["final_emotion(Faces, tensor(scene(I)), E)"],
        cache_dir=False,
    )
    prog.bind("scene_net", torch.softmax(torch.randn(4, 7), -1))
    prog.bind("face_net", torch.softmax(torch.randn(4, 3, 7), -1))
    with pytest.raises(ProgramError, match=r"shape \(4, 3, 7\).*face\(I,3\).*Faces counts from 1"):
        prog([Example(0, faces=3)])
    with pytest.raises(ProgramError, match="Faces counts from 1"):
        prog.prob([Example.of(1, faces=3, E="happy")])
