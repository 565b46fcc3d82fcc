"""Plain ProbLog learning of the logic's parameters: expectation-maximisation (LFI).

This is the answer to "plain ProbLog can only train the logic": with every network fixed,
the source weights ``t()`` are learned from interpretations exactly as ``problog lfi`` does,
but over the compiled circuits on cached tensors (all images in one batched call):

* E-step: per image, the posterior over sources ``P(source | label, evidence)``
  (``lm.source_posterior``: which source explained the image);
* M-step: the weights become the normalised expected counts of each source.

Under the "fail" semantics (a missing face's branch just fails) the likelihood of an image is
``sum_s w_s a_s p_s(y)`` and the M-step above is exactly problog's LFI update (tested against
``problog.learning.lfi`` itself). Under the default "condition" semantics the likelihood is
``sum_s w_s a_s p_s(y) / sum_s w_s a_s`` (a choice renormalised over the available sources),
i.e. a *truncated* categorical. Its EM (Dempster, Laird & Rubin 1977, truncated data) reads the
choice as repeated draws from ``w`` until an available source comes up: besides the posterior,
an image also counts the expected number of rejected draws of each unavailable source,
``w_s / W_avail`` per image. Without that term the weights of often-missing faces (face3)
would be biased towards 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class EMStep:
    """One EM iteration: the weights after it and the mean log-likelihood before it."""

    weights: torch.Tensor  # [S] source probabilities after the M-step
    log_likelihood: float  # mean log P(label | evidence) per image under the weights before


def availability(face_mask: torch.Tensor) -> torch.Tensor:
    """Per image, which sources exist: [N, 1 + K] bool (scene always; face k if detected)."""
    ones = torch.ones(face_mask.shape[0], 1, dtype=torch.bool, device=face_mask.device)
    return torch.cat([ones, face_mask.bool()], dim=1)


def m_step(
    posterior: torch.Tensor, available: torch.Tensor, weights: torch.Tensor, semantics: str = "condition"
) -> torch.Tensor:
    """Normalised expected source counts.

    Args:
        posterior: [N, S] P(source | label, evidence) per image (rows sum to 1).
        available: [N, S] bool, source exists in the image.
        weights: [S] current source probabilities (used by the truncation term).
        semantics: "condition" (add the expected rejected draws of unavailable sources) or
            "fail" (plain expected counts, = problog lfi).
    Returns: [S] new source probabilities (sum 1).
    """
    counts = posterior.sum(dim=0)
    if semantics == "condition":
        avail = available.to(weights.dtype)
        w_avail = (avail * weights).sum(dim=1, keepdim=True)  # [N, 1]
        counts = counts + ((1 - avail) * weights / w_avail).sum(dim=0)
    elif semantics != "fail":
        raise ValueError(f"EM is defined for semantics 'condition' or 'fail', not {semantics!r}")
    return counts / counts.sum()


def em_step(
    lm,
    weights: torch.Tensor,
    scene_probs: torch.Tensor,
    face_probs: torch.Tensor,
    face_mask: torch.Tensor,
    labels: torch.Tensor,
    semantics: str,
) -> EMStep:
    """One EM iteration over all images at once (the logic module's weights are set to ``weights``).

    Shapes: scene_probs [N, 7], face_probs [N, K, 7], face_mask [N, K] bool, labels [N] long.
    """
    set_source_weights(lm, weights)
    with torch.no_grad():
        probs = lm.emotion_probs(scene_probs, face_probs, face_mask)
        ll = torch.log(probs.gather(1, labels[:, None]).clamp_min(1e-30)).mean().item()
        post = lm.source_posterior(scene_probs, face_probs, face_mask, labels)
    new = m_step(post.double(), availability(face_mask), weights.to(post.device, torch.float64), semantics)
    return EMStep(new.to("cpu", weights.dtype), ll)


def set_source_weights(lm, weights: torch.Tensor | dict[str, float]) -> None:
    """Set the program's ``t()`` source probabilities (the ``t`` of ``source(S)``), either
    parameterisation; ``weights`` is a dict by source name or [S] in ``lm.sources`` order."""
    if isinstance(weights, torch.Tensor):
        weights = {s: float(w) for s, w in zip(lm.sources, weights.tolist())}
    probs = lm.tparams.probs().detach().clone().double()
    seen = set()
    for p in lm.program.params:
        h = p.head
        if h.functor == "source" and h.arity == 1:
            name = str(h.args[0])
            if name not in weights:
                raise ValueError(f"no weight given for source {name!r} (got {sorted(weights)})")
            probs[p.index] = float(weights[name])
            seen.add(name)
    extra = sorted(set(weights) - seen)
    if extra or not seen:
        raise ValueError(
            f"{lm.program.path}: cannot set source weights {extra or sorted(weights)}: "
            f"the program's source(S) disjunction has {sorted(seen)}"
        )
    lm.tparams.set_probs(probs)


@torch.no_grad()
def source_coefficients(
    lm, io: Callable[[torch.Tensor], tuple[dict, dict]], n: int, cols: list[int], chunk: int = 8192
) -> torch.Tensor:
    """[N, S, C + 1] float64, for a ``seed_like`` program with every network fixed: per image,
    source s (``lm.sources`` order) and class c, P(class c and evidence | source = s), the
    last column P(evidence | source = s) (1 or 0: the source is there or not).

    The program's unnormalised outputs are linear in the source weights (every world chooses
    one source), so with these S circuit passes done once, every EM iteration is a few tensor
    operations (``linear_em_step``) instead of two circuit passes: what makes EM on a large
    circuit (a valence program's expression tables) affordable. ``io(idx)`` gives the
    program's (inputs, facts) for rows ``idx``."""
    from emolog.logic import TParams
    from emolog.model.linear import raw_outputs

    saved = lm.tparams
    cols = list(cols) + [-1]
    out = []
    device = saved.probs().device
    lm.tparams = TParams(lm.program, "projected").to(device)  # exact 0 / 1 weights
    try:
        for s in lm.sources:
            set_source_weights(lm, {x: float(x == s) for x in lm.sources})
            parts = [
                raw_outputs(lm, *io(torch.arange(i, min(i + chunk, n), device=device)))[:, cols].double()
                for i in range(0, n, chunk)
            ]
            out.append(torch.cat(parts))
    finally:
        lm.tparams = saved
    return torch.stack(out, 1)


def linear_em_step(coef: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, semantics: str) -> EMStep:
    """``em_step`` from ``source_coefficients``: the same E-step (each source's share of the
    image's likelihood) and M-step (``m_step``), without a circuit pass."""
    w = weights.to(coef.device, torch.float64)
    joint = coef[torch.arange(len(labels), device=coef.device), :, labels.to(coef.device)]  # [N, S]
    lik = joint @ w
    ev = coef[:, :, -1]
    ll = lik.clamp_min(1e-300).log() - ((ev @ w).log() if semantics == "condition" else 0)
    post = joint * w / lik.clamp_min(1e-300)[:, None]
    new = m_step(post, ev > 0, w, semantics)
    return EMStep(new.to("cpu", weights.dtype), float(ll.mean()))


def weights_tensor(lm) -> torch.Tensor:
    """The program's current source probabilities as [S] float64, in ``lm.sources`` order."""
    w = lm.source_weights()
    return torch.tensor([w[s] for s in lm.sources], dtype=torch.float64)


def lfi_step(
    lm: torch.nn.Module,
    io: Callable[[torch.Tensor], tuple[dict, dict]],
    labels: torch.Tensor,
    cols: list[int],
    semantics: str,
    chunk: int = 4096,
) -> EMStep:
    """One EM iteration for *every* t() of the program (each annotated disjunction and each lone
    t() fact), over the rows ``io`` gives (``len(labels)`` of them); sets the new values in ``lm``.

    E-step without a posterior circuit, from one backward pass: with softmax logits theta of a
    disjunction w (a lone fact is the disjunction {true, false}), and L_i the likelihood of
    image i, ``dlog L_i / dtheta_h = P(h | data_i) - w_h`` (every world chooses exactly one
    head). So the expected counts are ``N w_h + d(sum_i log L_i)/dtheta_h`` under the "fail"
    semantics (L_i = P(label, evidence): problog lfi's update), and under "condition"
    (L_i = P(label | evidence), a choice truncated to the worlds where the evidence holds,
    read as repeated draws until it does) ``w_h sum_i 1/P(evidence_i) + d(sum_i log L_i)/dtheta_h``:
    the accepted draw's posterior plus the rejected draws' expected counts (for seed.pl this
    is exactly ``em_step``'s truncation term; tested). M-step: normalised counts.

    A t() shared across groundings (one parameter, several ground facts per image, e.g.
    face_list.pl's ``trust_face(F)`` once per face, context_rules.pl's
    ``trust_large_confident(F)`` once per face slot) is one draw per ground fact: problog lfi's
    counts are ``w_h K + dlogL/dtheta_h`` over the K ground facts the images' circuits hold,
    and the M-step divides by K. Under "condition" each of an image's 1/P(evidence) expected
    draws grounds them all, so the divisor is ``sum_i K_i / P(evidence_i)``; with K_i = 1 this
    is the truncation term above. K_i comes from the example's own circuit where circuits
    differ per image (``lm.groundings(inputs)``, a DeepProbLog face list), else from the one
    compiled circuit (``lm.t_groundings``).

    ``io(idx)`` gives the program's (inputs, facts) for rows ``idx`` (LongTensor) with every
    network fixed, ``labels`` [N] are query-column indices into ``cols`` (the classes' query
    columns of ``lm``'s output).
    """
    from emolog.logic import TParams
    from emolog.model.linear import raw_outputs

    if semantics not in ("condition", "fail"):
        raise ValueError(f"EM is defined for semantics 'condition' or 'fail', not {semantics!r}")
    saved = lm.tparams
    probs = saved.probs().detach().double()
    logits = TParams(lm.program, "softmax").to(probs.device)
    logits.set_probs(probs)
    logits.double()
    cols = torch.as_tensor(cols, device=labels.device)
    total_ll = torch.zeros((), dtype=torch.float64)
    draws = torch.zeros(len(probs), dtype=torch.float64)  # expected ground draws of each t()
    lm.tparams = logits
    try:
        for i in range(0, len(labels), chunk):
            idx = torch.arange(i, min(i + chunk, len(labels)), device=labels.device)
            inputs, facts = io(idx)
            inputs = {k: v.detach().double() for k, v in inputs.items()}
            facts = {k: v.detach().double() for k, v in facts.items()}
            raw = raw_outputs(lm, inputs, facts)
            joint = raw[:, cols].gather(1, labels[idx, None]).squeeze(1)
            ll = joint.log() - (raw[:, -1].log() if semantics == "condition" else 0)
            per_image = 1 / raw[:, -1].detach() if semantics == "condition" else torch.ones_like(joint.detach())
            draws = draws + (_ground_facts(lm, inputs, len(idx)).to(per_image) * per_image[:, None]).sum(0).cpu()
            ll.sum().backward()
            total_ll = total_ll + ll.detach().sum().cpu()
        new = probs.clone()
        for v, rows, group in zip(logits.values, logits.blocks, logits.is_group):
            g = v.grad.detach().double().cpu()
            w = torch.softmax(v.detach().double(), 0).cpu() if group else torch.sigmoid(v.detach().double()).cpu()
            base = draws[rows[0]]  # N_h = w_h * draws + dlogL/dtheta_h
            if base <= 0:  # no image grounds it: unchanged
                continue
            counts = w * base + g
            if group:
                new[rows] = (counts.clamp_min(0) / counts.clamp_min(0).sum()).to(new)
            else:
                new[rows] = (counts / base).clamp(0, 1).to(new)
    finally:
        lm.tparams = saved
    saved.set_probs(new)
    return EMStep(new, float(total_ll) / len(labels))


def _ground_facts(lm, inputs: dict, n: int) -> torch.Tensor:
    """[n, P]: how many ground facts of each t() an image's circuit holds (see ``lfi_step``)."""
    if hasattr(lm, "groundings"):  # one circuit per example kind (a DeepProbLog face list)
        return lm.groundings(inputs)
    return lm.t_groundings.expand(n, -1)


def seed_like(lm) -> bool:
    """True when ``lm``'s only t() are the source(S) disjunction over the seed's sources (any
    query and label set): then the closed form (``em_step`` for the seed's basic-7 queries,
    ``linear_em_step`` for any classes) is the same EM as ``lfi_step`` (tested to 1e-8) and
    many times faster."""
    from emolog.labels import SOURCES

    return (
        tuple(getattr(lm, "sources", ())) == SOURCES
        and len(lm.tparams) == len(lm.sources)
        and all(p.head.functor == "source" and p.head.arity == 1 for p in lm.program.params)
    )
