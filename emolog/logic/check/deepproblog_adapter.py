"""The same program run through DeepProbLog 2.1.0 (ExactEngine): the reference and baseline.

No real networks are needed: every ``nn`` declaration gets a fixed-output "network" that
returns the given probabilities for the image it is asked about. Images are the constants
0..B-1 substituted for the image variable (DeepProbLog's parameterised queries, so its
circuit cache serves every image). t() values are copied in from emolog; their gradients
come back through DeepProbLog's own hook (``optimizer.SGD.add_parameter_gradient``).

DeepProbLog queries carry no evidence, so conditioned values are computed as
P(q and ev) / P(ev) from two queries; ``q and ev`` is a helper clause added to the program.

How DeepProbLog learns t(_): ``Model`` starts with the base ``Optimizer``, whose
``add_parameter_gradient`` does nothing, so t() gradients are silently dropped unless you set
``model.optimizer = SGD(model, param_lr)``; that SGD subtracts lr * grad from the
probabilities, clips them to [0, 1] and divides every disjunction by its sum.
"""

from __future__ import annotations

import torch

try:
    from deepproblog.engines import ExactEngine
    from deepproblog.model import Model
    from deepproblog.network import Network
    from deepproblog.optimizer import SGD
    from deepproblog.query import Query
except ImportError as e:  # an optional dependency: say which extra brings it
    raise ImportError(
        "the DeepProbLog reference needs the optional dependency deepproblog 2.1.0: pip install 'emolog[reference]'"
    ) from e
from problog.logic import Constant, Term, Var
from problog.program import SimpleProgram

from ..program import IMAGE, Program, atom_name, input_key

_HELPER = "emolog_joint"


class _FixedOutput(torch.nn.Module):
    """A "network" that returns the stored output row for (image, extra inputs)."""

    def __init__(self, net: str, is_fact: bool):
        super().__init__()
        self.net, self.is_fact = net, is_fact
        self.table: dict[str, torch.Tensor] = {}

    def forward(self, image: Term, *rest: Term) -> torch.Tensor:
        key = input_key(self.net, _list([image, *rest]))
        row = self.table[key][int(image)]
        return row.reshape(1) if self.is_fact else row


def _list(items):
    from problog.logic import list2term

    return list2term(list(items))


class DeepProbLogReference:
    """Evaluate a parsed emolog program with DeepProbLog's ExactEngine.

    ``cache``: DeepProbLog's circuit cache (one compiled circuit per query template).
    """

    def __init__(self, prog: Program, semantics: str = "condition", cache: bool = True):
        self.prog, self.semantics = prog, semantics
        self.nets = {name: _FixedOutput(name, decl.domain is None) for name, decl in prog.neural.items()}
        networks = []
        for name, module in self.nets.items():
            net = Network(module, name)
            net.function = lambda *args: args  # inputs are terms, looked up by the module
            networks.append(net)
        helpers = []
        x = Var("X")
        evs = [(e.apply_term({e.args[0]: x}), v) for e, v in prog.evidence]
        ev_body = [str(e) if v else f"\\+ {e}" for e, v in evs]
        for q in prog.queries:
            q = q.apply_term({q.args[0]: x})
            helpers.append(f"{_HELPER}_{q.functor}({', '.join(map(str, q.args))}) :- {', '.join([str(q)] + ev_body)}.")
        if evs:
            helpers.append(f"{_HELPER}_ev(X) :- {', '.join(ev_body)}.")
        self.model = Model(prog.source + "\n" + "\n".join(helpers) + "\n", networks, load=False)
        # query/evidence directives are emolog's; DeepProbLog gets explicit queries instead.
        kept = SimpleProgram()
        for st in self.model.program:
            if not (isinstance(st, Term) and st.functor in ("query", "evidence") and st.probability is None):
                kept.add_clause(st)
        self.model.program = kept
        self.model.set_engine(ExactEngine(self.model), cache=cache)
        self.model.optimizer = SGD(self.model, param_lr=0.0)

    def queries(self, n_images: int) -> list[list[Query]]:
        """Per image: the joint query of every ground query, then (if any) the evidence query."""
        templates = []
        for q in self.prog.queries:
            ground_rest = q.args[1:]
            if any(isinstance(a, Var) for a in ground_rest):
                raise ValueError(f"the DeepProbLog reference needs ground query templates (besides the image), got {q}")
            head = Term(f"{_HELPER}_{q.functor}" if self.prog.evidence else q.functor, IMAGE, *ground_rest)
            templates.append(head)
        if self.prog.evidence:
            templates.append(Term(f"{_HELPER}_ev", IMAGE))
        # The placeholder constant img (not a variable: DeepProbLog grounds the template
        # before substituting) is replaced by the image number when the circuit is evaluated.
        return [[Query(t, substitution={IMAGE: Constant(i)}) for t in templates] for i in range(n_images)]

    def evaluate(
        self,
        inputs: dict[str, torch.Tensor],
        facts: dict[str, torch.Tensor],
        t_probs: list[float],
        images: list[int] | None = None,
    ) -> torch.Tensor:
        """Tensor[len(images), n_queries] (differentiable w.r.t. inputs and facts).

        After ``.backward()`` the t() gradients are in ``self.t_grad()``.
        """
        self._load(inputs, facts, t_probs)
        n = next(iter(inputs.values())).shape[0] if inputs else next(iter(facts.values())).shape[0]
        images = list(range(n)) if images is None else images
        all_q = self.queries(n)
        rows = []
        for i in images:
            res = self.model.solve(all_q[i])
            vals = [_as_tensor(next(iter(r.result.values()))) if r.result else torch.tensor(0.0) for r in res]
            if self.prog.evidence:
                joint = torch.stack(vals[:-1])
                rows.append(joint / vals[-1] if self.semantics == "condition" else joint)
            else:
                rows.append(torch.stack(vals))
        return torch.stack(rows)

    def _load(self, inputs, facts, t_probs) -> None:
        for module in self.nets.values():
            module.table = {}
        for key, x in list(inputs.items()) + list(facts.items()):
            net = key.split("(")[0]
            if net not in self.nets:
                raise KeyError(f"program has no network {net!r} (key {key!r})")
            self.nets[net].table[key] = x
        self.model.parameters = [float(p) for p in t_probs]
        self.model.optimizer.zero_grad()

    def t_grad(self) -> list[float]:
        """d(loss)/d t_i accumulated by DeepProbLog's parameter hooks since the last evaluate."""
        g = self.model.optimizer._params_grad
        return [float(g[i]) if i in g else 0.0 for i in range(len(self.model.parameters))]

    def query_names(self) -> list[str]:
        return [atom_name(q) for q in self.prog.queries]


def _as_tensor(v) -> torch.Tensor:
    return v if isinstance(v, torch.Tensor) else torch.tensor(float(v), dtype=torch.float64)
