"""A DeepProbLog-style program (``emolog.logic.DeepProgram``) behind the interface ``Model`` uses.

A spec with ``engine = "deep"`` (e.g. ``specs/face_list.toml``) gives its ``query`` as a
template over the image id ``I`` and the image's face list ``Faces`` =
``[tensor(face(I,1)), ..., tensor(face(I,n))]`` (n = the image's detected faces, ``[]`` for
none), e.g. ``emotion(Faces, tensor(scene(I)), E)``. ``DeepLogic`` compiles one circuit per
face count (``DeepProgram``: the structure does not depend on the id), feeds ``scene_net``
the scene distribution [B, D] and ``face_net`` the k-th present face's expression
distribution (``tensor(face(I,k))``, slots in the cache's order, absent slots skipped), and
returns P(E | evidence) per class, so the one fit loop, EM (``em.lfi_step``), the run's
outputs and ``load_run`` treat it like any other program (kind ``none``: no source choice).
"""

from __future__ import annotations

import torch
from torch import nn


class DeepLogic(nn.Module):
    """``lm`` for a DeepProgram; ``forward(inputs, facts)`` -> [B, classes] in ``query_names`` order."""

    semantics = "condition"
    sources: list[str] = []
    fact_keys: dict = {}

    def __init__(self, prog, functor: str, renames: dict[str, str] | None = None) -> None:
        super().__init__()
        from emolog.logic import Example
        self.prog, self._example = prog, Example
        renames = renames or {}
        # emolog's network name -> the program's (a spec may bind its nn(expr, ...) as face_net)
        self.net_names = {canon: own for own, canon in renames.items()}
        self.program = prog.params_program
        names = prog.compiled(Example(0, 0, 0)).names   # the answers of an image without faces
        self.domain = [n.rsplit(",", 1)[1].rstrip(")").strip() for n in names]
        self.query_names = [f"{functor}({e})" for e in self.domain]
        self.input_sizes = {renames.get(n, n): len(d.domain) for n, d in prog.nets.items() if d.kind == "ad"}

    @property
    def tparams(self):
        return self.prog.tparams

    def __setattr__(self, name: str, value) -> None:
        # training swaps ``lm.tparams`` (EM's logits, the fast path's corners): the program's own
        if name == "tparams":
            self.prog.tparams = value
        else:
            super().__setattr__(name, value)

    def seed_inputs(self, scene: torch.Tensor, face_probs: torch.Tensor, face_mask: torch.Tensor,
                    **_) -> tuple[dict, dict]:
        return {"scene_net": scene, "face_net": face_probs, "face_mask": face_mask}, {}

    def _examples(self, mask: torch.Tensor) -> list:
        return [self._example(i, 0, int(n)) for i, n in enumerate(mask.sum(1).tolist())]

    def _bind(self, inputs: dict) -> list:
        mask = inputs["face_mask"].bool()
        faces = inputs["face_net"]
        # faces[b, k] = the k-th present face (1-based, as tensor(face(I,k))); row 0 unused
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
        packed = faces.gather(1, order[:, :, None].expand_as(faces))
        self.prog.bind(self.net_names.get("face_net", "face_net"), torch.cat([torch.zeros_like(packed[:, :1]), packed], 1))
        self.prog.bind(self.net_names.get("scene_net", "scene_net"), inputs["scene_net"])
        return self._examples(mask)

    def forward(self, inputs: dict, facts: dict | None = None) -> torch.Tensor:
        ans = self.prog(self._bind(inputs))
        col = {e: j for j, e in enumerate(self.domain)}
        idx = torch.tensor([col[n.rsplit(",", 1)[1].rstrip(")").strip()] for n in ans.names], device=ans.probs.device)
        out = torch.zeros(ans.probs.shape[0], len(self.domain), dtype=ans.probs.dtype, device=ans.probs.device)
        return out.index_add(1, idx, ans.probs)

    def raw_outputs(self, inputs: dict, facts: dict | None = None) -> torch.Tensor:
        """[B, classes + 1]: P(class, evidence) and P(evidence) (1: the program has no evidence)."""
        out = self(inputs, facts)
        return torch.cat([out, torch.ones_like(out[:, :1])], 1)

    def groundings(self, inputs: dict) -> torch.Tensor:
        """[B, P]: how many ground facts of each t() the example's circuit holds (a t() shared
        across the faces has one per face): EM counts each (``em.lfi_step``)."""
        exs = self._examples(inputs["face_mask"].bool())
        cache: dict[str, torch.Tensor] = {}
        rows = []
        for ex in exs:
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


def build_deep(source: str, query: str, param: str, renames: dict[str, str] | None = None) -> DeepLogic:
    """Compile a spec's DeepProbLog program with its query template (``engine = "deep"``);
    ``renames``: {the program's network name: emolog's} (``Spec.renames``)."""
    from emolog.logic import compile_program
    prog = compile_program(source, queries=[query], param=param)
    return DeepLogic(prog, query.split("(", 1)[0].strip(), renames)
