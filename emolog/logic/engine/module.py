"""``LogicModule``: a compiled program as a batched torch module, and ``compile_program``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from emolog.errors import InputError
from emolog.labels import BASIC7, SEMANTICS

from ..params import TParams
from ..program import Program, ProgramError, parse_program, resolve_program
from .compile import Columns, Compiled, compile_circuits, klay_rows

if TYPE_CHECKING:  # deep.py imports torch-heavy engine code: loaded only when a program needs it
    from .deep import DeepProgram


class LogicInputError(InputError, ValueError):
    """Inputs do not fit the compiled program (missing key, wrong size, not probabilities)."""


def compile_program(
    program: str | Path = "seed",
    semantics: str = "condition",
    param: str = "softmax",
    queries: list[str] | None = None,
    path: str | None = None,
    **kwargs: Any,
) -> "LogicModule | DeepProgram":
    """Compile a shipped program (``emolog/logic/programs/<name>.pl``), a ``.pl`` path or text
    (``path``: the file that text came from, for messages).

    With ``queries`` (DeepProbLog-style templates, see ``deep.py``), or for a program outside
    the image convention (no ``nn`` or no query/1, or consult/1), the result is a
    ``DeepProgram`` (general engine, conditioned on the program's evidence; ``kwargs`` go to
    it). Otherwise it is the image-convention ``LogicModule`` below.

    semantics: "condition" = P(q | evidence) (default; sound for missing faces),
    "fail" = P(q and evidence) (a missing source's mass is lost), "original" = the thesis
    program: fail semantics, faces from one 21-way softmax, absent faces read as a grey face.
    param: "softmax" (logits, any optimiser) or "projected" (probabilities, ProjectedSGD).
    """
    if semantics not in SEMANTICS:
        raise ValueError(f"semantics must be one of {SEMANTICS}, got {semantics!r}")
    is_text = isinstance(program, str) and ("\n" in program or program.rstrip().endswith("."))
    text, path = (str(program), path or "<string>") if is_text else resolve_program(program)
    if queries is not None or not _image_convention(text):
        if semantics != "condition":
            raise ProgramError(
                f"{path}: semantics {semantics!r} exists only for image-convention "
                "programs; the general engine conditions on the evidence"
            )
        from .deep import DeepProgram

        return DeepProgram(text if is_text else path, queries, param=param, **kwargs)
    if kwargs:
        raise TypeError(f"{sorted(kwargs)} apply to the general engine only (give queries=[...])")
    prog = parse_program(text, path)
    return LogicModule(prog, compile_circuits(prog), semantics, param)


def _image_convention(text: str) -> bool:
    """Whether a program is written in emolog's image convention (the seed programs' form).

    It needs an ``nn`` declaration and query/1 in the file; a consult/1 or use_module/1
    directive sends it to the general engine, because this path reads the main file's
    query/evidence only.
    """
    import re

    return bool(re.search(r"\bnn\s*\(", text) and re.search(r"\bquery\s*\(", text)) and not re.search(
        r":-\s*(consult|use_module)\b", text
    )


class LogicModule(nn.Module):
    """Exact inference for every query of a program on a batch of images.

    ``forward(inputs, facts) -> Tensor[B, n_queries]``: inputs maps each neural key
    (``lm.input_sizes``) to a Tensor[B, n] of probabilities, facts maps each per-image fact
    key (``lm.fact_keys``) to a Tensor[B] in [0, 1]. Gradients flow to both and to the t()
    parameters. Works in float32 or float64 (the inputs' dtype) on the inputs' device.
    """

    # buffers registered in __init__ (declared here: nn.Module's attribute lookup types them loosely)
    tparams: TParams
    _klay_idx: torch.Tensor
    _needed: torch.Tensor
    _heads: torch.Tensor
    _consts: torch.Tensor

    def __init__(self, prog: Program, compiled: Compiled, semantics: str, param: str):
        super().__init__()
        self.program = prog
        self.semantics = semantics
        self.query_names: list[str] = compiled.query_names
        self.sources: list[str] = compiled.sources
        self.input_sizes: dict[str, int] = compiled.nn_keys
        self.fact_keys: list[str] = compiled.fact_keys
        self.tparams = TParams(prog, param)
        self.main = compiled.main
        self.posterior_circuit = compiled.posterior
        self._layout(compiled)

    # ---- layout of the weight table --------------------------------------------------
    def _layout(self, c: Compiled) -> None:
        """Precompute one gather that builds KLay's input for a batch.

        ``full = [1 | 0 | inputs | facts | t | consts | extras]`` as rows (extras: the "none"
        weight of each annotated disjunction, 1 - sum of its heads), followed by the
        complements 1 - full that KLay reads. KLay's input rows are ``[0, 1, pos_1, neg_1,
        ...]``; a head of a disjunction has negative weight 1 (= 1 - the zero row), any
        other variable 1 - p.
        """
        cols = Columns.of(self.input_sizes, self.fact_keys, len(self.tparams), c)
        pos = [cols.row(w) for w in c.var_weights]
        klay_idx, needed = klay_rows(c.var_weights, pos, cols.width)
        size = max((len(g) for g in c.groups), default=0)
        # Heads of each disjunction as rows of ``full`` (padding: the zero row).
        heads = [[pos[v] for v in g] + [1] * (size - len(g)) for g in c.groups]
        self.register_buffer("_klay_idx", torch.tensor(klay_idx, dtype=torch.long), persistent=False)
        self.register_buffer("_needed", torch.tensor(needed, dtype=torch.long), persistent=False)
        self.register_buffer(
            "_heads", torch.tensor(heads, dtype=torch.long).reshape(len(heads), size), persistent=False
        )
        self.register_buffer("_consts", torch.tensor(cols.consts, dtype=torch.float64), persistent=False)
        self._n_groups = len(c.groups)
        # ground facts per t() in the circuit: a t() shared across groundings (t(_)::trust(F)
        # for every face F) has one variable per grounding; EM counts each (em.lfi_step)
        t_ix = torch.tensor([w.index for w in c.var_weights if w.kind == "t"], dtype=torch.long)
        self.register_buffer(
            "t_groundings", torch.bincount(t_ix, minlength=len(self.tparams)).double(), persistent=False
        )
        # Which input each row of ``full`` holds, for error messages.
        self._col_names = cols.names(self.input_sizes, self.fact_keys, self.tparams.names)
        self._col_names += [f"the disjunction of {self._col_names[pos[g[0]]]}" for g in c.groups]

    def _klay_input(self, inputs: dict[str, torch.Tensor], facts: dict[str, torch.Tensor]) -> torch.Tensor:
        """KLay's input [2 + 2 * n_vars, B] (rows: 0, 1, then pos/neg weight per variable)."""
        b, dtype, device = self._check(inputs, facts)
        # Built transposed, [rows, B], so that every gather below copies contiguous rows.
        parts = [torch.tensor([[1.0], [0.0]], dtype=dtype, device=device).expand(2, b)]
        parts += [inputs[k].to(dtype).t() for k in self.input_sizes]
        if self.fact_keys:
            parts.append(torch.stack([facts[k].to(dtype) for k in self.fact_keys], 0))
        if len(self.tparams):
            parts.append(self.tparams.probs().to(device=device, dtype=dtype).unsqueeze(1).expand(-1, b))
        if len(self._consts):
            parts.append(self._consts.to(dtype).unsqueeze(1).expand(-1, b))
        full = torch.cat(parts, 0)
        if self._n_groups:
            full = torch.cat([full, 1 - full[self._heads].sum(1)], 0)
        # One pass over every weight: each must lie in [0, 1] (tolerance 1e-4); a negative
        # extra ("none") weight means a distribution sums to more than 1. NaN fails both.
        lo, hi = torch.aminmax(full)
        if not (lo >= -1e-4 and hi <= 1 + 1e-4):
            self._raise_bad(full)
        return torch.cat([full, 1 - full[self._needed]], 0)[self._klay_idx]

    def _raise_bad(self, full: torch.Tensor) -> None:
        bad = (full < -1e-4) | (full > 1 + 1e-4) | torch.isnan(full)
        col, row = (int(i) for i in bad.nonzero()[0])
        name = self._col_names[col]
        what = (
            "sums to more than 1"
            if name.startswith("the disjunction")
            else f"is not a probability ({float(full[col, row])})"
        )
        raise LogicInputError(f"{self.program.path}: input {name} in row {row} {what}")

    def _run(self, circuit: Any, x: torch.Tensor) -> torch.Tensor:
        """Evaluate a KLay circuit on a prepared input: Tensor[B, n_roots]."""
        return circuit.layers(x).t()

    def _check(
        self, inputs: dict[str, torch.Tensor], facts: dict[str, torch.Tensor]
    ) -> tuple[int, torch.dtype, torch.device]:
        missing = [k for k in self.input_sizes if k not in inputs]
        missing += [k for k in self.fact_keys if k not in facts]
        if missing:
            raise LogicInputError(
                f"{self.program.path}: missing inputs {missing}; the program "
                f"needs inputs {self.input_sizes} and facts {self.fact_keys}"
            )
        b = None
        for k, n in self.input_sizes.items():
            x = inputs[k]
            if x.dim() != 2 or x.shape[1] != n:
                raise LogicInputError(
                    f"{self.program.path}: neural predicate {k!r} has a domain of {n} values "
                    f"but its network output has shape {tuple(x.shape)} (expected [B, {n}])"
                )
            b = x.shape[0] if b is None else b
            if x.shape[0] != b:
                raise LogicInputError(f"input {k!r} has batch size {x.shape[0]}, others {b}")
        for k in self.fact_keys:
            x = facts[k]
            b = x.shape[0] if b is None else b
            if x.dim() != 1 or x.shape[0] != b:
                raise LogicInputError(f"fact {k!r} must have shape [{b}], got {tuple(x.shape)}")
        if b is None:
            raise LogicInputError("no inputs given: cannot tell the batch size")
        ref = next(iter(inputs.values())) if inputs else facts[self.fact_keys[0]]
        dtype = ref.dtype if ref.is_floating_point() else torch.get_default_dtype()
        return b, dtype, ref.device

    # ---- inference -------------------------------------------------------------------
    def forward(self, inputs: dict[str, torch.Tensor], facts: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Tensor[B, n_queries]: P(q | evidence) ("condition") or P(q and evidence) (otherwise)."""
        out = self._run(self.main, self._klay_input(inputs, facts or {}))
        joint, z = out[:, :-1], out[:, -1:]
        if self.semantics != "condition":
            return joint
        return joint / _nonzero(z, self.program.path)

    def source_posterior_generic(
        self, inputs: dict[str, torch.Tensor], facts: dict[str, torch.Tensor] | None, labels: torch.Tensor
    ) -> torch.Tensor:
        """Tensor[B, n_sources]: P(source = s | query labels[b] true, evidence)."""
        if self.posterior_circuit is None:
            raise ProgramError(f"{self.program.path}: defines no source/1 or source/2 predicate")
        x = self._klay_input(inputs, facts or {})
        joint = self._run(self.main, x)[:, :-1]
        per = self._run(self.posterior_circuit, x).reshape(-1, len(self.query_names), len(self.sources))
        labels = labels.long().to(per.device)
        if labels.shape != (per.shape[0],) or labels.min() < 0 or labels.max() >= len(self.query_names):
            raise LogicInputError(
                f"labels must be Tensor[B] of query indices in "
                f"[0, {len(self.query_names)}), got shape {tuple(labels.shape)}"
            )
        rows = torch.arange(per.shape[0], device=per.device)
        return per[rows, labels] / _nonzero(joint[rows, labels].unsqueeze(1), self.program.path)

    # ---- seed-like convenience -------------------------------------------------------
    def seed_inputs(
        self,
        scene_probs: torch.Tensor,
        face_probs: torch.Tensor,
        face_mask: torch.Tensor,
        *,
        face_logits: torch.Tensor | None = None,
        grey_logits: torch.Tensor | None = None,
        gate_probs: torch.Tensor | None = None,
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Map [B,7] scene, [B,K,7] faces, [B,K] mask (and [B,4] gate) to program keys.

        Keys: ``scene_net``, ``face_net(face<k>)``, ``available(face<k>)``, ``gate_net``.
        In "original" semantics the faces come from ``face_logits`` [B,K,7]: absent slots
        are replaced by ``grey_logits`` [7] (the recogniser's logits for a grey face) and all
        K*7 scores share one softmax, and every face counts as available.
        """
        k = face_mask.shape[1]
        if face_probs is not None and face_probs.shape[:2] != face_mask.shape:
            raise LogicInputError(
                f"face_probs {tuple(face_probs.shape)} and face_mask {tuple(face_mask.shape)} disagree on [B, K]"
            )
        mask = face_mask.bool()
        if self.semantics == "original":
            if face_logits is None or grey_logits is None:
                raise LogicInputError(
                    "semantics 'original' needs face_logits [B,K,7] and "
                    "grey_logits [7] (the recogniser's logits for a grey face)"
                )
            logits = torch.where(mask.unsqueeze(-1), face_logits, grey_logits.to(face_logits).expand_as(face_logits))
            faces = torch.softmax(logits.reshape(logits.shape[0], -1), 1).reshape(logits.shape)
            avail = torch.ones_like(mask, dtype=faces.dtype)
        else:
            faces = face_probs
            avail = mask.to(faces.dtype)
        inputs = {"scene_net": scene_probs}
        facts = {}
        for i in range(k):
            inputs[f"face_net(face{i + 1})"] = faces[:, i]
            facts[f"available(face{i + 1})"] = avail[:, i]
        if gate_probs is not None:
            inputs["gate_net"] = gate_probs
        # a program reads the inputs it declares (e.g. fewer face slots than the cache's K, or
        # no scene); one it declares but is not given here is refused by forward()
        return (
            {key: v for key, v in inputs.items() if key in self.input_sizes},
            {key: v for key, v in facts.items() if key in self.fact_keys},
        )

    def emotion_probs(
        self,
        scene_probs: torch.Tensor,
        face_probs: torch.Tensor,
        face_mask: torch.Tensor,
        *,
        face_logits: torch.Tensor | None = None,
        grey_logits: torch.Tensor | None = None,
        gate_probs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Tensor[B, 7] in BASIC7 order for seed-like programs (see ``seed_inputs``)."""
        inputs, facts = self.seed_inputs(
            scene_probs, face_probs, face_mask, face_logits=face_logits, grey_logits=grey_logits, gate_probs=gate_probs
        )
        return self(inputs, facts)[:, self._basic7_columns()]

    def source_posterior(
        self,
        scene_probs: torch.Tensor,
        face_probs: torch.Tensor,
        face_mask: torch.Tensor,
        labels: torch.Tensor,
        *,
        face_logits: torch.Tensor | None = None,
        grey_logits: torch.Tensor | None = None,
        gate_probs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Tensor[B, n_sources]: P(source | emotion = labels[b] (BASIC7 index), evidence)."""
        inputs, facts = self.seed_inputs(
            scene_probs, face_probs, face_mask, face_logits=face_logits, grey_logits=grey_logits, gate_probs=gate_probs
        )
        cols = torch.tensor(self._basic7_columns(), device=labels.device)
        return self.source_posterior_generic(inputs, facts, cols[labels.long()])

    def _basic7_columns(self) -> list[int]:
        try:
            return [self.query_names.index(f"emotion({e})") for e in BASIC7]
        except ValueError:
            raise ProgramError(
                f"{self.program.path}: emotion_probs needs the queries "
                f"emotion(X, E) for E in {list(BASIC7)}; it has "
                f"{self.query_names}"
            ) from None

    def source_weights(self) -> dict[str, float]:
        """The learned source probabilities {"scene": .., "face1": .., ...} (t-parameters of source/1)."""
        probs = self.tparams.probs().detach()
        out = {}
        for p in self.program.params:
            h = p.head
            if h.functor == "source" and h.arity == 1:
                out[str(h.args[0])] = float(probs[p.index])
        if not out:
            raise ProgramError(
                f"{self.program.path}: no trainable source(S) disjunction "
                "(in a gated program the source weights are per image: use "
                "source_posterior)"
            )
        return out

    def t_probs(self) -> dict[str, float]:
        """Every t() parameter as {head: probability}."""
        probs = self.tparams.probs().detach()
        return {n: float(probs[i]) for i, n in enumerate(self.tparams.names)}


def _nonzero(z: torch.Tensor, path: str) -> torch.Tensor:
    zero = z <= 0
    if zero.any():
        rows = zero.any(1).nonzero()[:, 0].tolist()
        raise LogicInputError(
            f"{path}: the evidence has probability 0 in rows {rows[:20]} ({len(rows)} rows): nothing to condition on"
        )
    return z
