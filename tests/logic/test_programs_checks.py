"""DeepProgram and spec checks: underivable queries, network rows, bound values, inputs, shapes.

Probabilities are compared with ProbLog itself on the same program with the networks' outputs
written in as facts.
"""

from __future__ import annotations

import pytest
import torch
from problog import get_evaluatable
from problog.program import PrologString

from emolog.logic import DeepProgram, Example, ProgramError
from emolog.config.run import ConfigError
from emolog.model.spec import load_spec, resolve_spec


def problog(text: str) -> dict[str, float]:
    return {str(k): float(v) for k, v in get_evaluatable().create_from(PrologString(text)).evaluate().items()}


# ---- 1: a query without answers has probability 0 --------------------------------------
def test_underivable_query_is_zero_not_an_error():
    prog = DeepProgram("0.5::a(1).\nq(X) :- a(X), X > 5.\n", ["q(X)"], cache_dir=False)
    ref = problog("0.5::a(1).\nq(X) :- a(X), X > 5.\nquery(q(7)).\n")
    assert prog.prob([Example.of(0, X=7)]).tolist() == [ref["q(7)"]] == [0.0]
    ans = prog([Example(0)])
    assert ans.names == [] and ans.probs.shape == (1, 0)
    # a derivable bound value on the same program still gets its probability
    assert prog.prob([Example.of(0, X=1)]).tolist() == [0.0]  # 1 > 5 fails
    ok = DeepProgram("0.5::a(1).\nq(X) :- a(X).\n", ["q(X)"], cache_dir=False)
    assert ok.prob([Example.of(0, X=1), Example.of(1, X=2)]).tolist() == [0.5, 0.0]


def test_derived_non_ground_answer_is_still_refused():
    prog = DeepProgram("0.5::a.\nq(_) :- a.\n", ["q(X)"], cache_dir=False)
    # ProbLog's grounder refuses it first (the answer is the unbound q(X), at TRUE)
    with pytest.raises(ProgramError, match=r"still contains variables.*q\(X\)"):
        prog([Example(0)])


# ---- 2: networks named c and t keep their own rows -----------------------------------------
NETS_CT = "0.3::k.\nt(0.6)::m.\nnn(c,[X])::a(X).\nnn(t,[X])::b(X).\nq(X) :- a(X), b(X), k, m.\n"


def test_networks_named_c_and_t_read_their_own_rows():
    prog = DeepProgram(NETS_CT, ["q(tensor(img(I)))"], cache_dir=False)
    c, t = torch.tensor([[0.5], [0.9]], dtype=torch.float64), torch.tensor([0.2, 0.7], dtype=torch.float64)
    prog.bind("c", c)
    prog.bind("t", t)
    exs = [Example(0), Example(1)]
    ref = [
        problog(f"0.3::k.\n0.6::m.\n{float(c[i, 0])}::a.\n{float(t[i])}::b.\nq :- a, b, k, m.\nquery(q).\n")["q"]
        for i in range(2)
    ]
    fwd = prog(exs).probs[:, 0]
    got = prog.prob(exs)
    assert any(v is not None for v in prog._fast.values())  # the merged-circuit path ran
    assert torch.allclose(fwd, torch.tensor(ref, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(got, fwd, atol=1e-12)


# ---- 10: rebinding a tensor keeps the merged circuit and reads the new values -------------
def test_rebinding_a_tensor_reads_new_values_and_keeps_the_merged_circuit():
    prog = DeepProgram(NETS_CT, ["q(tensor(img(I)))"], cache_dir=False)
    prog.bind("t", torch.ones(2, dtype=torch.float64))
    exs = [Example(0), Example(1)]
    for k, row in enumerate([[0.5, 0.9], [0.1, 0.4]]):
        prog.bind("c", torch.tensor(row, dtype=torch.float64))
        got = prog.prob(exs)
        if k == 0:
            fast = dict(prog._fast)
        assert torch.allclose(got, torch.tensor(row, dtype=torch.float64) * 0.18, atol=1e-12)
    assert prog._fast == fast and all(prog._fast[k] is fast[k] for k in fast)
    prog.bind("c", lambda inputs: torch.full((len(inputs), 1), 0.25, dtype=torch.float64))
    assert not prog._fast  # a callable binding: the merged circuit no longer applies
    assert torch.allclose(prog.prob(exs), torch.full((2,), 0.25 * 0.18, dtype=torch.float64))


# ---- 3: bound names and values, template index --------------------------------------------
def test_bound_values_are_atoms_and_names_must_be_template_variables():
    prog = DeepProgram("0.7::q(happy).\n0.2::q('Sad').\n", ["q(E)"], cache_dir=False)
    ref = problog("0.7::q(happy).\n0.2::q('Sad').\nquery(q(happy)).\nquery(q('Sad')).\nquery(q(sad)).\n")
    got = prog.prob([Example.of(0, E="happy"), Example.of(1, E="Sad"), Example.of(2, E="sad")])
    assert got.tolist() == pytest.approx([ref["q(happy)"], ref["q('Sad')"], ref["q(sad)"]])
    with pytest.raises(ProgramError, match=r"binds \['e'\].*q\(E\).*\['E'\]"):
        prog.prob([Example.of(0, e="sad")])
    with pytest.raises(ProgramError, match=r"binds \['I'\]"):
        prog.prob([Example.of(0, I=3)])
    with pytest.raises(ProgramError, match=r"not fully bound.*\['E'\]"):
        prog.prob([Example(0)])
    for bad in (-1, 1, 3):
        with pytest.raises(ProgramError, match=rf"template {bad} does not exist.*1 template"):
            prog.prob([Example(0, template=bad)])
        with pytest.raises(ProgramError, match=rf"template {bad} does not exist"):
            prog([Example(0, template=bad)])


def test_templates_absent_refuse_template_and_bind():
    prog = DeepProgram("0.7::q.\nquery(q).\n", cache_dir=False)
    assert prog([Example(0)]).probs.tolist() == [[pytest.approx(0.7)]]
    with pytest.raises(ProgramError, match=r"example 0 gives template 1.*own query/1"):
        prog([Example(0, template=1)])


# ---- 4, 7: tensor sources and deterministic networks ------------------------------------
class TwoWay(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x, 1 - x], 1)


def _two_way(template: str) -> DeepProgram:
    prog = DeepProgram("nn(g,[X],Y,[u,v])::b(X,Y).\n", [template], cache_dir=False)
    prog.bind("g", TwoWay())
    return prog


def test_tensor_source_arguments_are_the_id_or_integers():
    src = {(0, 0): torch.tensor(0.1), (0, 1): torch.tensor(0.7)}
    prog = _two_way("b(tensor(img(I,1)),Y)")
    prog.add_tensor_source("img", src)
    ans = prog([Example(0)])
    ref = problog("0.7::b(u); 0.3::b(v).\nquery(b(u)).\nquery(b(v)).\n")
    assert dict(zip(ans.names, ans.probs[0].tolist())) == pytest.approx(
        {"b(tensor(img(I,1)),u)": ref["b(u)"], "b(tensor(img(I,1)),v)": ref["b(v)"]}
    )
    with pytest.raises(ProgramError, match=r"tensor\(img\(I,1\)\).*no key \(1, 1\)"):
        prog([Example(1)])
    for arg in ("left", "1.0"):
        p = _two_way(f"b(tensor(img(I,{arg})),Y)")
        p.add_tensor_source("img", src)
        with pytest.raises(ProgramError, match=rf"tensor\(img\(I,{arg}\)\): argument {arg} .*I or an integer"):
            p([Example(0)])
    p = _two_way("b(tensor(img(I,1)),Y)")
    p.add_tensor_source("img", torch.rand(2, 2))
    with pytest.raises(ProgramError, match=r"tensor\(img\(I,1\)\) reads \(5, 1\).*\(2, 2\).*out of range"):
        p([Example(5)])


DET = "nn(d,[X],Z)::feat(X,Z).\nnn(g,[Z],Y,[u,v])::cls(Z,Y).\nb(X,Y) :- feat(X,Z), cls(Z,Y).\n"


def test_deterministic_network_must_be_bound_to_a_callable():
    prog = DeepProgram(DET, ["b(tensor(img(I)),Y)"], cache_dir=False)
    prog.bind("g", TwoWay())
    prog.add_tensor_source("img", torch.tensor([0.4, 0.8]))
    with pytest.raises(ProgramError, match=r"deterministic network 'd' .*not bound"):
        prog([Example(0)])
    prog.bind("d", torch.ones(2))
    with pytest.raises(ProgramError, match=r"deterministic network 'd' .*bound to a tensor"):
        prog([Example(0)])
    prog.bind("d", lambda x: x / 2)
    ans = prog([Example(0), Example(1)])
    assert ans.probs.tolist() == [pytest.approx([0.2, 0.8]), pytest.approx([0.4, 0.6])]
    with pytest.raises(ProgramError, match=r"bind\('d', \.\.\.\) got a list"):
        prog.bind("d", [1, 2])


# ---- 5, 6: output shapes --------------------------------------------------------------------
def test_single_output_network_needs_one_value_per_input():
    prog = DeepProgram("nn(f,[X])::a(X).\n", ["a(tensor(img(I)))"], cache_dir=False)
    for ok in (torch.tensor([0.2, 0.3]), torch.tensor([[0.2], [0.3]])):
        prog.bind("f", ok)
        assert prog.prob([Example(0), Example(1)]).tolist() == pytest.approx([0.2, 0.3])
        assert prog([Example(1)]).probs.tolist() == [pytest.approx([0.3])]
    prog.bind("f", torch.tensor([[0.2, 0.8], [0.3, 0.7]]))
    with pytest.raises(ProgramError, match=r"network 'f' returned shape \(2, 2\).*nn/2"):
        prog.prob([Example(0), Example(1)])
    with pytest.raises(ProgramError, match=r"network 'f' returned shape \(1, 2\).*nn/2"):
        prog([Example(0)])
    prog.bind("f", lambda inputs: torch.full((len(inputs), 3), 0.5))
    with pytest.raises(ProgramError, match=r"network 'f' returned shape \(1, 3\)"):
        prog([Example(0)])


def test_tensor_with_fewer_dimensions_than_the_index_is_refused_on_both_paths():
    prog = DeepProgram("nn(g,[X],Y,[u,v])::b(X,Y).\n", ["b(tensor(img(I,1)),Y)"], cache_dir=False)
    prog.bind("g", torch.rand(3))
    with pytest.raises(ProgramError, match=r"shape \(3,\).*dimension 1"):
        prog.prob([Example.of(0, Y="u")])
    with pytest.raises(ProgramError, match=r"shape \(3,\).*dimension 1"):
        prog([Example(0)])


# ---- 8: impossible evidence names the examples ----------------------------------------------
def test_impossible_evidence_names_the_example_ids():
    prog = DeepProgram("nn(f,[X])::e(X).\n0.5::q.\nok :- e(z).\nevidence(ok).\n", ["q"], cache_dir=False)
    prog.bind("f", lambda inputs: torch.zeros(len(inputs), 1))
    with pytest.raises(ProgramError, match=r"evidence has probability 0 .*example id\(s\) \[3, 5\]"):
        prog([Example(3), Example(5)])


# ---- 9: specs ---------------------------------------------------------------------------------
def test_spec_directory_is_reported_as_a_directory(tmp_path, monkeypatch):
    (tmp_path / "seed").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"seed is a directory.*shadows the shipped spec"):
        resolve_spec("seed")
    (tmp_path / "x.toml").mkdir()
    with pytest.raises(ConfigError, match=r"x.toml is a directory"):
        resolve_spec("x.toml")


def _spec(tmp_path, labels: str, nets: str = "", engine: str = "circuit", program: str = "seed"):
    (tmp_path / "labels.txt").write_text(labels)
    (tmp_path / "s.toml").write_text(
        f'program = "{program}"\nquery = "emotion(X, E)"\nlabels = "labels.txt"\nengine = "{engine}"\n{nets}'
    )
    return tmp_path / "s.toml"


def test_label_file_comments_and_duplicates(tmp_path):
    s = load_spec(str(_spec(tmp_path, "  # a comment\nhappy\n\n sad \n#x\n")))
    assert s.classes == ("happy", "sad")
    with pytest.raises(ConfigError, match=r"repeated: \['sad'\]"):
        load_spec(str(_spec(tmp_path, "sad\nhappy\nsad\n")))
    with pytest.raises(ConfigError, match=r"it has none"):
        load_spec(str(_spec(tmp_path, "  # only a comment\n")))


def test_spec_nets_tables(tmp_path):
    """Each [nets.<name>] table is checked when the spec is read (keys, feeds) and against the
    program's declared networks before anything is compiled."""
    from emolog.logic.translate import Net
    from emolog.model.bindings.schema import check_nets

    nets = {"scene_net": Net("scene_net", "ad", ["happy", "sad"], 1)}
    ok = '[nets.scene_net]\nbind = "scene_head"\n'
    check_nets("s.toml", load_spec(str(_spec(tmp_path, "happy\nsad\n", ok))).nets, nets, "p.pl")
    spec = load_spec(str(_spec(tmp_path, "happy\nsad\n", ok + '[nets.mystery]\nbind = "gate"\n')))
    with pytest.raises(ConfigError, match=r"\[nets.mystery\] binds a network p.pl does not declare"):
        check_nets("s.toml", spec.nets, nets, "p.pl")
    with pytest.raises(ConfigError, match=r"\[nets.scene_net\] unknown key\(s\) \['hidden'\]"):
        load_spec(str(_spec(tmp_path, "happy\nsad\n", ok + "hidden = [3]\n")))
    with pytest.raises(
        ConfigError,
        match=r"bind = 'cache.scenery' is no feed emolog knows; choose one of "
        r"\[.*'cache.face_probs'.*'head'",
    ):
        load_spec(str(_spec(tmp_path, "happy\nsad\n", '[nets.scene_net]\nbind = "cache.scenery"\n')))


def test_a_spec_needs_a_binding_for_every_network(tmp_path, monkeypatch):
    from emolog.model.bindings.program import open_program

    monkeypatch.setenv("EMOLOG_LOGIC_CACHE", str(tmp_path / "cache"))
    (tmp_path / "p.pl").write_text(
        "nn(scene_net, [S], E, [happy, sad]) :: scene_emotion(S, E).\n"
        "nn(available, [S]) :: ok(S).\n"
        "emotion(Faces, S, E) :- scene_emotion(S, E), ok(S).\n"
    )
    (tmp_path / "labels.txt").write_text("happy\nsad\n")
    (tmp_path / "s.toml").write_text(
        'program = "p.pl"\nquery = "emotion(Faces, tensor(scene(I)), E)"\nlabels = "labels.txt"\n'
        '[nets.scene_net]\nbind = "scene_head"\n'
    )
    with pytest.raises(ConfigError, match=r"neural predicate\(s\) \['available'\] of .*p.pl have no binding"):
        open_program(load_spec(str(tmp_path / "s.toml")), "projected")
    (tmp_path / "s.toml").write_text((tmp_path / "s.toml").read_text() + '[nets.available]\nbind = "cache.face_mask"\n')
    assert sorted(open_program(load_spec(str(tmp_path / "s.toml")), "projected").nets) == ["available", "scene_net"]
