"""Training steps without the circuit: a program is linear in each distribution it reads.

A compiled program's unnormalised outputs (P(query and evidence) per query, and P(evidence))
are weighted model counts: sums over worlds of products of input weights. In every world
exactly one head of each annotated disjunction is true, so each output is *linear* in every
distribution the program reads, separately: a t() disjunction, a lone t() fact (in p and
1 - p), the scene net's [7] distribution, the gate's [4]. With the cached inputs (faces,
per-image facts) held fixed, an output is therefore a multilinear form in the distributions
that change during training, fixed per image:

    out[i, q] = sum over corners c of coef[i, c, q] * prod over blocks k of v_k[c_k]

``LinearProgram`` evaluates the circuit once per corner (one-hot values for every block) and
image before training, then a training step is a gather and one contraction per block
instead of a circuit pass: the same function of the same parameters (tested against the
circuit to float32 rounding), a few tensor operations instead of a few dozen. Used only for
training steps on the training split; every evaluation (history, metrics, predictions) runs
the circuit. Programs whose corners exceed ``MAX_CORNERS`` (or whose coefficients would not
fit ``MAX_FLOATS``) train through the circuit.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from emolog.model.data import SplitData

MAX_CORNERS = 512
MAX_FLOATS = 50_000_000  # coefficient tensor entries (200 MB float32)
ROWS_PER_PASS = 8192  # circuit rows per corner-evaluation pass


def raw_outputs(lm: torch.nn.Module, inputs: dict, facts: dict) -> torch.Tensor:
    """The circuit's unnormalised outputs [B, n_queries + 1] (last column: P(evidence))."""
    if hasattr(lm, "raw_outputs"):
        return lm.raw_outputs(inputs, facts)
    return lm._run(lm.main, lm._klay_input(inputs, facts))


class LinearProgram:
    """Precomputed coefficients of ``model``'s program on split ``s`` (see the module docstring).

    ``live_t``: the t() parameters train (else folded in at their current values);
    ``live_scene`` / ``live_gate``: the scene net's / the gate's output changes during training
    (else the frozen values are folded in). ``__call__(idx, t_probs, scene, gate)`` -> [B, C].
    """

    def __init__(
        self,
        live_t: bool,
        live_scene: bool,
        live_gate: bool,
        coef: torch.Tensor,
        t_blocks: list[tuple[torch.Tensor, bool]],
        condition: bool,
    ) -> None:
        self.live_t, self.live_scene, self.live_gate = live_t, live_scene, live_gate
        self.coef, self.t_blocks, self.condition = coef, t_blocks, condition
        self.n_rest = coef.shape[-1]

    def __call__(
        self,
        idx: torch.Tensor,
        t_probs: list[torch.Tensor] | None,
        scene: torch.Tensor | None,
        gate: torch.Tensor | None,
    ) -> torch.Tensor:
        """[B, C] program output for rows ``idx``: ``t_probs`` are the t() blocks' current
        probabilities (``block_probs``), ``scene`` [B, 7] / ``gate`` [B, 4] the live networks'."""
        c = self.coef[idx]
        b = c.shape[0]
        if self.live_t:
            for v, (_, group) in zip(t_probs, self.t_blocks):
                if not group:
                    v = torch.cat([v, 1 - v])
                c = torch.matmul(v, c.reshape(b, len(v), -1))
        for v in (scene, gate):
            if v is not None:
                c = torch.bmm(v.to(c.dtype).unsqueeze(1), c.reshape(b, v.shape[1], -1)).squeeze(1)
        c = c.reshape(b, self.n_rest)
        joint = c[:, :-1]
        return joint / c[:, -1:] if self.condition else joint


def block_probs(tparams: torch.nn.Module) -> list[torch.Tensor]:
    """Each t() block's probabilities (a disjunction's vector, a lone fact's [1]) straight from
    the parameters, in ``tparams.blocks`` order: ``tparams.probs()`` without its reassembly
    into index order (which would add three autograd nodes to every step)."""
    if tparams.param == "projected":
        return list(tparams.values)
    return [torch.softmax(v, 0) if g else torch.sigmoid(v) for v, g in zip(tparams.values, tparams.is_group)]


@dataclass(frozen=True)
class _Corners:
    """The live inputs a LinearProgram enumerates: each t() block's rows with whether it is a
    disjunction (a lone fact has 2 corners: p and 1 - p; none unless ``live_t``), and the
    scene net's / gate's domain sizes (0: not live)."""

    live_t: bool
    t_blocks: list[tuple[torch.Tensor, bool]]
    n_scene: int
    n_gate: int

    @property
    def sizes(self) -> list[int]:
        """Corners per t() block."""
        return [len(b) if g else 2 for b, g in self.t_blocks]

    @property
    def per_row(self) -> int:
        """(scene, gate) corners evaluated per image in one circuit pass."""
        return max(self.n_scene, 1) * max(self.n_gate, 1)

    @property
    def count(self) -> int:
        return math.prod(self.sizes) * self.per_row


@torch.no_grad()
def build_linear(model: torch.nn.Module, s: SplitData, live_t: bool, live_scene: bool) -> LinearProgram | None:
    """The LinearProgram of ``model`` on ``s``, or None when the program is too large for it
    (or its circuit does not expose raw outputs)."""
    if len(model.heads):  # a head's output is a live input this precomputation does not cover
        return None
    corners = _live_corners(model, live_t, live_scene)
    n_out = len(model._cols) + 1
    if corners is None or corners.count > MAX_CORNERS or len(s) * corners.count * n_out > MAX_FLOATS:
        return None
    cols = torch.tensor(model._cols + [-1], device=s.labels.device)
    coef = _coefficients(model, s, corners, cols)
    if coef is None:
        return None
    n_scene, n_gate = corners.n_scene, corners.n_gate
    shape = [len(s), *corners.sizes, *([n_scene] if n_scene else []), *([n_gate] if n_gate else []), n_out]
    lin = LinearProgram(
        corners.live_t,
        bool(n_scene),
        bool(n_gate),
        coef.reshape(shape),
        corners.t_blocks,
        model.lm.semantics == "condition",
    )
    return lin if _agrees(model, s, lin, n_scene, n_gate, cols) else None


def _live_corners(model: torch.nn.Module, live_t: bool, live_scene: bool) -> _Corners | None:
    """The corners of ``model``'s live inputs; None when a live network is not in the program."""
    lm = model.lm
    live_gate = model.kind.gate_net
    t_blocks = (
        [(torch.tensor(b, dtype=torch.long), g) for b, g in zip(lm.tparams.blocks, lm.tparams.is_group)]
        if live_t
        else []
    )
    n_scene = lm.input_sizes.get("scene_net", 0) if live_scene else 0
    n_gate = lm.input_sizes.get("gate_net", 0) if live_gate else 0
    if (live_scene and not n_scene) or (live_gate and not n_gate):
        return None
    return _Corners(live_t, t_blocks, n_scene, n_gate)


def _coefficients(model: torch.nn.Module, s: SplitData, corners: _Corners, cols: torch.Tensor) -> torch.Tensor | None:
    """coef [N, prod(sizes), per_row, n_out]: the circuit's raw outputs (columns ``cols``) at
    every corner, for every image of ``s``; None when the circuit exposes no raw outputs.
    The model's t() parameters and train/eval mode are restored afterwards."""
    lm = model.lm
    was, saved = model.training, lm.tparams
    model.eval()
    coef = torch.empty(
        len(s), math.prod(corners.sizes), corners.per_row, len(cols), dtype=torch.float32, device=s.labels.device
    )
    try:
        for k, tc in enumerate(itertools.product(*[range(n) for n in corners.sizes])):
            if corners.live_t:
                lm.tparams = _t_corner(lm, saved, corners.t_blocks, tc, s.labels.device)
            step = max(1, ROWS_PER_PASS // corners.per_row)
            for i in range(0, len(s), step):
                idx = torch.arange(i, min(i + step, len(s)), device=s.labels.device)
                coef[i : i + len(idx), k] = _corner_outputs(model, s, idx, corners, cols)
    except (AttributeError, TypeError):
        return None
    finally:
        lm.tparams = saved
        model.train(was)
    return coef


def _t_corner(
    lm: torch.nn.Module,
    saved: torch.nn.Module,
    t_blocks: list[tuple[torch.Tensor, bool]],
    corner: tuple[int, ...],
    device: torch.device,
) -> torch.nn.Module:
    """Projected t() parameters with each block at its corner: one-hot over a disjunction's
    values, 1 or 0 for a lone fact; every other parameter at its current value."""
    from emolog.logic import TParams

    probs = saved.probs().detach().clone().double()
    for (rows, group), j in zip(t_blocks, corner):
        if group:
            probs[rows] = 0.0
            probs[rows[j]] = 1.0
        else:
            probs[rows[0]] = 1.0 if j == 0 else 0.0
    tmp = TParams(lm.program, "projected").to(device)
    tmp.set_probs(probs)
    return tmp


def _corner_outputs(
    model: torch.nn.Module, s: SplitData, idx: torch.Tensor, corners: _Corners, cols: torch.Tensor
) -> torch.Tensor:
    """[len(idx), per_row, n_out]: raw outputs of rows ``idx`` at every (scene, gate) corner,
    each row repeated per_row times with the one-hot scene / gate distributions."""
    n_scene, n_gate, per_row = corners.n_scene, corners.n_gate, corners.per_row
    rep = idx.repeat_interleave(per_row)
    scene = gate = None
    if n_scene:
        scene = torch.eye(n_scene, device=idx.device).repeat_interleave(max(n_gate, 1), 0).repeat(len(idx), 1)
    if n_gate:
        gate = torch.eye(n_gate, device=idx.device).repeat(max(n_scene, 1), 1).repeat(len(idx), 1)
    # a frozen scene net's cached distribution; the gate's corners replace its output
    inputs, facts = model.program_io(s, rep, scene=scene if scene is not None else model.scene_probs(s, rep), gate=gate)
    out = raw_outputs(model.lm, inputs, facts)[:, cols]
    return out.reshape(len(idx), per_row, len(cols)).to(torch.float32)


@torch.no_grad()
def _agrees(
    model: torch.nn.Module,
    s: SplitData,
    lin: LinearProgram,
    n_scene: int,
    n_gate: int,
    cols: torch.Tensor,
    n_rows: int = 64,
) -> bool:
    """The coefficients reproduce the circuit at the current t() and random scene / gate
    distributions on a few rows. A t() shared across groundings (``t(_)::trust(F)`` for every
    face F) enters a world's weight once per grounding, so the output is not linear in it: the
    check fails and such a program trains through the circuit."""
    lm = model.lm
    g = torch.Generator().manual_seed(0)
    idx = torch.arange(min(n_rows, len(s)), device=s.labels.device)
    scene = torch.softmax(torch.randn(len(idx), n_scene, generator=g), 1).to(idx.device) if n_scene else None
    gate = torch.softmax(torch.randn(len(idx), n_gate, generator=g), 1).to(idx.device) if n_gate else None
    inputs, facts = model.program_io(s, idx, scene=scene if scene is not None else model.scene_probs(s, idx), gate=gate)
    raw = raw_outputs(lm, inputs, facts)[:, cols]
    ref = raw[:, :-1] / raw[:, -1:] if lin.condition else raw[:, :-1]
    fast = lin(idx, block_probs(lm.tparams) if lin.live_t else None, scene, gate)
    return bool(torch.allclose(fast, ref.to(fast.dtype), rtol=1e-4, atol=1e-6))
