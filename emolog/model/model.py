"""The trained object: a logic program plus the networks that feed it (one class for every program).

``Network`` evaluates a compiled program on rows of a ``SplitData``. How the program chooses
its source decides the ``kind``, a ``ProgramKind`` chosen once (``program_kind``;
``emolog.model.kinds``, whose flags the model reads):

* ``GLOBAL``: a ``t(_)::source(S)`` disjunction (seed.pl): one weight per source;
* ``GATE``: the source is the neural predicate ``gate_net`` (gated.pl), a ``GateNet`` over
  per-image evidence;
* ``RULES``: the program queries ``source(X, S)`` itself from per-image facts (context_rules.pl);
* ``NONE``: the program has no source choice at all.

The scene net maps cached scene features [B, D] to 7 logits; ``last_block`` (joint-unfreeze)
maps cached pre-last activations [B, C, H, W] to features [B, D]. A frozen scene net's
probabilities are computed once per split (``freeze_scene``) and only indexed afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from emolog.errors import EmologError
from emolog.labels import BASIC7, SOURCES
from emolog.model.bindings.feeds import HeadMLP
from emolog.model.bindings.fields import row_values
from emolog.config.run import ConfigError
from emolog.model.data import SplitData
from emolog.model.gate import GateNet, evidence_features, program_kind, rule_facts, split_static_evidence
from emolog.model.kinds import GLOBAL, KINDS, ProgramKind
from emolog.model.linear import block_probs

EVAL_CHUNK = 2048  # rows per forward pass when evaluating a whole split

__all__ = ["EVAL_CHUNK", "HeadMLP", "KINDS", "Network", "Parts", "ProgramKind", "predict_split", "program_kind"]


class TrainingError(EmologError, RuntimeError):
    """Training cannot continue (non-finite loss, inconsistent resume, ...); the message says why."""


def query_columns(lm: nn.Module, classes: tuple[str, ...]) -> list[int]:
    """The output columns of ``<f>(X, c)`` for each class c of ``classes``: f is the spec's query
    predicate (``lm.output_functor``, set by ``bindings.program.build_logic``), else ``emotion``."""
    from emolog.logic.templates import as_term

    functor = getattr(lm, "output_functor", "emotion")  # a label such as Joy is the atom 'Joy'
    return [lm.query_names.index(f"{functor}({as_term(c, 'a label', 'the label set')})") for c in classes]


@dataclass
class Parts:
    """The networks and constants a program may have beside its scene net: the backbone's last
    block (joint-unfreeze), a gate (kind ``GATE``), the original semantics' grey-face logits [7],
    and the spec's trainable heads by network name with the feeds each reads."""

    last_block: nn.Module | None = None
    gate: GateNet | None = None
    grey_logits: torch.Tensor | None = None
    heads: dict[str, nn.Module] = field(default_factory=dict)
    head_inputs: dict[str, tuple[str, ...]] = field(default_factory=dict)


class Network(nn.Module):
    """The logic program ``lm`` with its scene net and its ``Parts`` (last block, gate, grey-face
    logits, heads); ``kind`` is how the program chooses its source, ``classes`` its labels.

    What it computes once per split (a frozen scene net's distribution, the gate's static
    evidence, the training split's linear program) is kept on the ``SplitData`` itself.
    A head's ``head_inputs`` are whole-image features, for a program compiled in the seed's
    shape; a program compiled through ``DeepProgram`` calls its heads itself, through its feeds.
    """

    def __init__(
        self,
        lm: nn.Module,
        scene_net: nn.Module,
        semantics: str,
        kind: ProgramKind = GLOBAL,
        classes: tuple[str, ...] = BASIC7,
        parts: Parts | None = None,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {[k.name for k in KINDS]}, got {kind!r}")
        parts = parts or Parts()
        self.lm, self.scene_net, self.last_block, self.gate = lm, scene_net, parts.last_block, parts.gate
        self.semantics, self.grey_logits, self.kind, self.classes = semantics, parts.grey_logits, kind, classes
        self.heads = nn.ModuleDict(parts.heads)
        self.head_inputs = dict(parts.head_inputs)
        self.target = None  # a valence/arousal target (emolog.model.target.Target), set by train / load_run
        try:
            self._cols = query_columns(lm, classes)
        except ValueError:
            raise ConfigError(
                f"{lm.program.path}: the queries {lm.query_names} do not cover the "
                f"label set {list(classes)} (expected {getattr(lm, 'output_functor', 'emotion')}"
                "(X, <label>) for each)"
            ) from None
        self._src_cols = [lm.query_names.index(f"source({s})") for s in SOURCES] if kind.rules else []
        self._src_order = [lm.sources.index(s) for s in SOURCES] if kind.has_sources else []
        self.register_buffer("_cols_t", torch.tensor(self._cols), persistent=False)

    @property
    def has_sources(self) -> bool:
        return self.kind.has_sources

    @property
    def general(self) -> bool:
        """The program is compiled through DeepProgram (``bindings.program.ProgramLogic``)."""
        return bool(getattr(self.lm, "general", False))

    @property
    def renormalises(self) -> bool:
        """Whether evaluation renormalises the output over the classes: under "fail" /
        "original" (mass lost by definition) and for a program through DeepProgram, whose
        answers over the labels may sum to less than 1 (answers that are no label)."""
        return self.semantics != "condition" or self.general

    @property
    def has_scene_head(self) -> bool:
        return self.lm.scene_head is not None if self.general else "scene_net" in self.lm.input_sizes

    # ---- the scene -------------------------------------------------------------------
    def freeze_scene(self, splits: dict[str, SplitData], train_probs: torch.Tensor | None = None) -> None:
        """Compute the frozen scene net's probabilities once per split; ``train_probs`` [N_train, 7]
        (out-of-fold predictions) replace the net's own on the training split."""
        for name, s in splits.items():
            s.frozen_scene = train_probs if name == "train" and train_probs is not None else self._scene_probs_all(s)

    def _scene_probs_all(self, s: SplitData) -> torch.Tensor:
        was = self.training
        self.eval()
        with torch.no_grad():
            out = torch.cat(
                [
                    self._scene_probs_live(s, torch.arange(i, min(i + EVAL_CHUNK, len(s)), device=s.labels.device))
                    for i in range(0, len(s), EVAL_CHUNK)
                ]
            )
        self.train(was)
        self._check_finite(out, s, torch.arange(len(s), device=out.device))
        return out

    def _scene_probs_live(self, s: SplitData, idx: torch.Tensor) -> torch.Tensor:
        feats = self.last_block(s.prelast[idx].float()) if self.last_block is not None else s.scene[idx]
        return torch.softmax(self.scene_net(feats), dim=1)

    def _check_finite(self, probs: torch.Tensor, s: SplitData, idx: torch.Tensor) -> None:
        bad = ~torch.isfinite(probs).all(dim=1)
        if bad.any():
            ids = [s.ids[i] for i in idx[bad].tolist()]
            raise TrainingError(
                f"Scene2EmotionNet output is not finite for {len(ids)} image(s): {ids[:20]}; "
                "check their cached scene features or lower the learning rates"
            )

    def scene_probs(self, s: SplitData, idx: torch.Tensor, check: bool = True) -> torch.Tensor:
        """[B, 7] scene distribution for rows ``idx`` of split ``s``.

        A live (trainable) net's output is checked for non-finite values, naming the image
        ids, before the logic sees a NaN (``check=False``: the caller checks the loss instead,
        which a NaN here always reaches)."""
        if s.frozen_scene is not None:
            return s.frozen_scene[idx]
        probs = self._scene_probs_live(s, idx)
        if check:
            self._check_finite(probs, s, idx)
        return probs

    # ---- the program's inputs --------------------------------------------------------
    def _original_kw(self, s: SplitData, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.semantics != "original":
            return {}
        return {"face_logits": s.face_logits[idx], "grey_logits": self.grey_logits}

    def available(self, s: SplitData, idx: torch.Tensor) -> torch.Tensor:
        """[B, 4] bool: which sources exist (the original reads grey faces: every slot does)."""
        if self.semantics == "original":
            return torch.ones(len(idx), len(SOURCES), dtype=torch.bool, device=idx.device)
        scene = torch.ones(len(idx), 1, dtype=torch.bool, device=idx.device)
        return torch.cat([scene, s.face_mask[idx].bool()], 1)

    def gate_probs(self, s: SplitData, idx: torch.Tensor, scene_probs: torch.Tensor) -> torch.Tensor:
        """[B, 4] gate output for rows ``idx`` of split ``s``."""
        if s.static is None:
            s.static = split_static_evidence(s)
        ev = evidence_features(s.static[idx], scene_probs)
        return self.gate(ev, self.available(s, idx), s.scene[idx] if self.gate.scene_proj is not None else None)

    def program_io(
        self,
        s: SplitData,
        idx: torch.Tensor,
        check: bool = True,
        scene: torch.Tensor | None = None,
        gate: torch.Tensor | None = None,
    ) -> tuple[dict, dict]:
        """(neural inputs, per-image facts) of the program for rows ``idx``; ``scene`` [B, 7] /
        ``gate`` [B, 4] replace the networks' outputs when given."""
        if self.general:
            return self._feed_rows(s, idx, check, scene), {}
        if "scene_net" in self.lm.input_sizes:
            if scene is None:
                scene = self.scene_probs(s, idx, check)
            if gate is None and self.kind.gate_net:
                gate = self.gate_probs(s, idx, scene)
            inputs, facts = self.lm.seed_inputs(
                scene, s.face_probs[idx], s.face_mask[idx], gate_probs=gate, **self._original_kw(s, idx)
            )
        else:  # a program fed by heads only (e.g. an MLP over scene classes and faces)
            inputs, facts = {}, {}
        for name, head in self.heads.items():
            x = torch.cat([row_values(s, src, idx).flatten(1) for src in self.head_inputs[name]], 1)
            inputs[name] = torch.softmax(head(x), 1)
        if self.kind.rules:
            facts.update(rule_facts(s.face_mask[idx], s.face_area[idx], s.face_probs[idx]))
        return inputs, facts

    def _feed_rows(self, s: SplitData, idx: torch.Tensor, check: bool, scene: torch.Tensor | None) -> dict:
        """The batch's rows of every feed a DeepProgram-compiled program reads."""
        rows = {}
        for src in self.lm.row_sources:
            if src == "scene_head":
                rows[src] = scene if scene is not None else self.scene_probs(s, idx, check)
            else:
                rows[src] = row_values(s, src, idx)
        return rows

    # ---- outputs ---------------------------------------------------------------------
    def forward(self, s: SplitData, idx: torch.Tensor, check: bool = True) -> torch.Tensor:
        """The program's output for each class [B, C] (P(class | evidence) under "condition").

        In training mode a split with a ``LinearProgram`` (``emolog.model.linear``; the
        training split) is evaluated from its precomputed coefficients instead of the circuit:
        the same function of the trainable inputs, a few tensor operations per step."""
        lin = s.linear if self.training else None
        if lin is not None:
            scene = self.scene_probs(s, idx, check) if lin.live_scene else None
            gate = (
                self.gate_probs(s, idx, scene if scene is not None else self.scene_probs(s, idx))
                if lin.live_gate
                else None
            )
            return lin(idx, block_probs(self.lm.tparams) if lin.live_t else None, scene, gate)
        inputs, facts = self.program_io(s, idx, check)
        return self.lm(inputs, facts)[:, self._cols_t]

    def posterior(self, s: SplitData, idx: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """P(source | class = labels[b], evidence) [B, 4] in SOURCES order."""
        inputs, facts = self.program_io(s, idx)
        post = self.lm.source_posterior_generic(inputs, facts, self._cols_t[labels])
        return post[:, self._src_order]

    def source_probs(self, s: SplitData, idx: torch.Tensor) -> torch.Tensor:
        """Per-image source distribution [B, 4] (SOURCES order) before seeing the label."""
        if self.kind.gate_net:
            return self.gate_probs(s, idx, self.scene_probs(s, idx))
        if self.kind.global_weights:  # the global weights, conditioned on the sources present
            g = self.lm.source_weights()
            w = torch.tensor([g[x] for x in SOURCES], device=idx.device) * self.available(s, idx)
            return w / w.sum(1, keepdim=True)
        inputs, facts = self.program_io(s, idx)
        return self.lm(inputs, facts)[:, self._src_cols]

    def global_weights(self) -> dict[str, float] | None:
        """The program's global source weights (kind ``GLOBAL``), else None."""
        return {s: float(v) for s, v in self.lm.source_weights().items()} if self.kind.global_weights else None

    def train(self, mode: bool = True) -> "Network":
        super().train(mode)
        if self.last_block is not None:
            # BatchNorm in the unfrozen block keeps its ImageNet running statistics: batches of
            # 4-64 scene images are too small and too correlated to re-estimate them.
            self.last_block.eval()
        return self


def _scorable(model: Network, s: SplitData, idx: torch.Tensor, bad: list[int]) -> torch.Tensor:
    """Rows of ``idx`` whose evidence has probability > 0 (bisection on the logic's refusal);
    the others are appended to ``bad``. Only runs when a chunk was refused."""
    from emolog.logic import LogicInputError

    try:
        model(s, idx)
        return idx
    except LogicInputError as e:
        if "probability 0" not in str(e):
            raise
        if len(idx) == 1:
            bad.append(int(idx[0]))
            return idx[:0]
        h = len(idx) // 2
        return torch.cat([_scorable(model, s, idx[:h], bad), _scorable(model, s, idx[h:], bad)])


@torch.no_grad()
def predict_split(
    model: Network, s: SplitData, sources: bool = True, labels: torch.Tensor | None = None, normalise: bool = True
) -> dict[str, torch.Tensor]:
    """Whole-split outputs in eval mode: ``probs`` [N, C]; with ``sources`` (and a source
    choice) also ``post`` [N, 4] = P(source | class, evidence) for ``labels`` (default: the
    split's labels) and ``w`` [N, 4] = per-image source probabilities.

    Under the "fail" and "original" semantics the program's output P(q and evidence) does not
    sum to 1 (mass is lost); for evaluation it is renormalised over the classes, which keeps
    the argmax and makes NLL/ECE comparable. Training uses the unnormalised output, as those
    semantics define the loss (``normalise=False`` returns it: the loss before training).

    An image the program cannot score (its evidence has probability 0, e.g. no face and a
    scene weight of 0) is never an error: it gets the uniform distribution over the classes
    and NaN source columns, and its row index is listed in ``unscorable`` (a LongTensor,
    present only when there are such images); docs/training.md, "Unscorable images"."""
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {"probs": [], "post": [], "w": []}
    sources = sources and model.has_sources
    labels = s.labels if labels is None else labels
    bad: list[int] = []
    for i in range(0, len(s), EVAL_CHUNK):
        idx = torch.arange(i, min(i + EVAL_CHUNK, len(s)), device=s.labels.device)
        try:
            p = model(s, idx)
            ok = idx
        except Exception:  # noqa: BLE001 - re-raised by _scorable unless it is the zero-evidence case
            n_bad = len(bad)
            ok = _scorable(model, s, idx, bad)
            p = torch.full((len(idx), len(model.classes)), 1 / len(model.classes), device=idx.device)
            if len(ok):
                p[ok - i] = model(s, ok)
            bad_rows = torch.tensor(bad[n_bad:], dtype=torch.long, device=idx.device) - i
        if model.renormalises:
            zero = ~(p.sum(1) > 0)  # "fail"/"original": P(evidence) = 0 leaves all zeros
            if zero.any():
                rows = zero.nonzero()[:, 0]
                bad += (rows + i).tolist()
                keep = torch.ones(len(idx), dtype=torch.bool, device=idx.device)
                keep[rows] = False
                ok, bad_rows = idx[keep], rows
                p = p.clone()
                p[rows] = 1.0 if normalise else 0.0
            if normalise:
                p = p / p.sum(1, keepdim=True)
        parts["probs"].append(p)
        if sources:
            if len(ok) == len(idx):
                parts["post"].append(model.posterior(s, idx, labels[idx]))
                parts["w"].append(model.source_probs(s, idx))
            else:
                post = torch.full((len(idx), len(SOURCES)), float("nan"), device=idx.device)
                w = model.source_probs(s, idx)
                if len(ok):
                    post[ok - i] = model.posterior(s, ok, labels[ok])
                w[bad_rows] = float("nan")
                parts["post"].append(post)
                parts["w"].append(w)
    out = {k: torch.cat(v) for k, v in parts.items() if v}
    if bad:
        out["unscorable"] = torch.tensor(bad, dtype=torch.long)
    return out
