"""The objects bound to a program's networks: each is called once per batch with every distinct
input of its network (``emolog.logic.bindings.BatchFeed``) and reads the batch's rows.

* ``RowFeed``: the output is a per-image tensor read at the input's address (a cache field,
  through its class map; the scene head's or the gate's output; a per-face evidence fact);
* ``HeadFeed``: a trainable ``HeadMLP`` over the inputs the binding names (cache fields at
  the address, ``args``: the numbers and one-hot atoms the program passes), built at its first
  batch (its input width is what the program's inputs turn out to hold), seeded;
* ``FunctionFeed``: a Python callable over the same inputs, its output checked.

A ``Batch`` holds the current batch's rows (``Network.program_io``'s dict) for every feed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from problog.logic import Constant, Term, term2list
from torch import nn

from emolog.logic.bindings import PLACEHOLDER
from emolog.model.bindings.fields import MASK, address, field_of, present_order, read
from emolog.model.bindings.maps import apply_map
from emolog.model.bindings.schema import NetBinding, SpecError


class HeadMLP(nn.Module):
    """A trainable head: features [B, in_dim] -> hidden layers (ReLU, dropout) -> logits [B, out]."""

    def __init__(self, in_dim: int, hidden: list[int] | tuple[int, ...], out: int, dropout: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(in_dim, h), nn.ReLU(), nn.Dropout(dropout)]
            in_dim = h
        self.net = nn.Sequential(*layers, nn.Linear(in_dim, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Batch:
    """The rows of the batch being evaluated: {feed source: Tensor[B, ...]}, and each row's face
    slots with the present faces first (``fields.present_order``)."""

    def __init__(self) -> None:
        self.rows: dict[str, torch.Tensor] = {}
        self.present = torch.zeros(0, 0, dtype=torch.long)

    def set(self, rows: dict[str, torch.Tensor]) -> None:
        self.rows, self.present = rows, present_order(rows[MASK])


@dataclass(frozen=True)
class FeedSite:
    """Where a feed sits: its network's binding and output, the batch it reads, the spec."""

    b: NetBinding
    width: int  # values per input: the domain's size (nn/4) or 1 (nn/2)
    ad: bool  # the network is an annotated disjunction (nn/4): rows are distributions
    batch: Batch
    where: str  # the spec file, for messages
    k: int  # face slots of the cache


class _Feed:
    """What every feed shares: the binding, the network's output width, the batch, errors."""

    def __init__(self, site: FeedSite) -> None:
        from emolog.model.bindings.fields import default_slots

        self.b, self.width, self.ad, self.batch, self.where = site.b, site.width, site.ad, site.batch, site.where
        self.slots = site.b.slots or default_slots(site.k)
        self._addr: dict[str, tuple[str, int] | None] = {}

    def fail(self, what: str) -> SpecError:
        return SpecError(f"{self.where}: [nets.{self.b.name}] {what}")

    def address(self, term: Term, ids) -> tuple[str, int] | None:
        key = str(term)
        if key not in self._addr:
            if ids is None:
                raise self.fail(
                    f"reads the image's {self._reads()}, but its input "
                    f"{key.replace(str(PLACEHOLDER), 'I')} does not name the image (I, or "
                    "tensor(S(I, ...))); pass the image to the network"
                )
            try:
                self._addr[key] = address(term, self.slots)
            except ValueError as e:
                raise self.fail(f"input {key.replace(str(PLACEHOLDER), 'I')}: {e}; it must read one face") from None
        return self._addr[key]

    def read(self, x: torch.Tensor, level: str, term: Term, ids) -> torch.Tensor:
        addr = self.address(term, ids)
        try:
            return read(x, level, addr, ids, self.batch.present)
        except IndexError:
            raise self.fail(
                f"input {str(term).replace(str(PLACEHOLDER), 'I')} reads face {addr[1]}, but the "
                f"cache has {x.shape[1]} face slots"
            ) from None

    def _reads(self) -> str:
        return self.b.bind

    def source(self, name: str) -> torch.Tensor:
        return self.batch.rows[name]


class RowFeed(_Feed):
    """The network's output is a per-image tensor (``source`` in the batch's rows) at the address."""

    def __init__(self, site: FeedSite, cmap: torch.Tensor | None = None, renorm: bool = False) -> None:
        super().__init__(site)
        self.cmap, self.renorm = cmap, renorm
        fld = field_of(site.b.bind)
        self.level = fld.level if fld is not None else "image"

    def call_batch(self, requests: list[tuple[Term, torch.Tensor | None]]) -> torch.Tensor:
        x = self.source(self.b.bind)
        out = torch.cat([self.read(x, self.level, t, ids) for t, ids in requests])
        if out.shape[1] != (self.width if self.cmap is None else self.cmap.shape[0]):
            whole = self.level == "face" and any(self._addr[str(t)] is None for t, _ in requests)
            raise self.fail(
                f"is fed {out.shape[1]} values per input by {self.b.bind} (read "
                + (
                    f"for the whole image: its {x.shape[1]} face slots side by side; pass a face, "
                    "tensor(face(I, k)) or a slot atom, to read one"
                    if whole
                    else "per input"
                )
                + f"), but its {'domain has' if self.ad else 'fact takes'} {self.width}"
            )
        return apply_map(out, self.cmap, self.renorm)


class _InputsFeed(_Feed):
    """A head's or function's inputs: cache fields at the address and the program's arguments."""

    def __init__(self, site: FeedSite) -> None:
        super().__init__(site)
        self._arg_rows: dict[str, torch.Tensor] = {}  # input term -> its argument values [1, F]

    def inputs(self, requests: list[tuple[Term, torch.Tensor | None]]) -> list[torch.Tensor]:
        parts: list[list[torch.Tensor]] = [[] for _ in self.b.inputs]
        for term, ids in requests:
            n = 1 if ids is None else len(ids)
            for j, src in enumerate(self.b.inputs):
                if src == "args":
                    parts[j].append(self._args(term).expand(n, -1))
                else:
                    fld = field_of(src)
                    parts[j].append(self.read(self.source(src), fld.level, term, ids))
        out = []
        for src, p in zip(self.b.inputs, parts):
            widths = sorted({x.shape[1] for x in p})
            if len(widths) > 1:
                raise self.fail(
                    f"reads {src} with {widths} values for different inputs (per face and per "
                    "image): its inputs must all name a face, or none"
                )
            out.append(torch.cat(p))
        return out

    def _reads(self) -> str:
        return ", ".join(s for s in self.b.inputs if s != "args")

    def _args(self, term: Term) -> torch.Tensor:
        """[1, F]: the numbers the input list holds, and each atom one-hot over its domain;
        the image id and tensor(...) terms say what the cache feeds read, not values."""
        key = str(term)
        if key not in self._arg_rows:
            vals = [v for pos, a in enumerate(term2list(term, False), 1) for v in self._value(a, pos, term)]
            self._arg_rows[key] = torch.tensor([vals], dtype=torch.float32)
        return self._arg_rows[key]

    def _value(self, a, pos: int, term: Term) -> list[float]:
        if a == PLACEHOLDER or isinstance(a, Term) and a.functor == "tensor" and a.arity == 1:
            return []
        if isinstance(a, Constant) and isinstance(a.value, (int, float)):
            return [float(a.value)]
        if isinstance(a, Term) and a.functor == "." and a.arity == 2:  # a list: its items in turn
            return [v for x in term2list(a, False) for v in self._value(x, pos, term)]
        if isinstance(a, Term) and a.arity == 0:
            dom = self.b.domains.get(pos)
            shown = str(term).replace(str(PLACEHOLDER), "I")
            if dom is None:
                raise self.fail(
                    f"argument {pos} of {shown} is the atom {a}: declare its one-hot domain, "
                    f'domains = {{ {pos} = ["{a}", ...] }}'
                )
            if str(a) not in dom:
                raise self.fail(f"argument {pos} of {shown} is {a}, which is not in its declared domain {list(dom)}")
            return [1.0 if str(a) == d else 0.0 for d in dom]
        raise self.fail(
            f"argument {pos} of {str(term).replace(str(PLACEHOLDER), 'I')} is {a}: a head reads "
            "numbers, atoms (one-hot) and lists of them"
        )


class HeadFeed(_InputsFeed):
    """A trainable MLP head; ``module`` is built at the first batch unless given (a run's state)."""

    def __init__(self, site: FeedSite, seed: int, dropout: float, module: HeadMLP | None = None) -> None:
        super().__init__(site)
        self.seed, self.dropout, self.module = seed, dropout, module

    def call_batch(self, requests: list[tuple[Term, torch.Tensor | None]]) -> torch.Tensor:
        x = torch.cat(self.inputs(requests), 1)
        if self.module is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                self.module = HeadMLP(x.shape[1], self.b.hidden, self.width, self.dropout).to(x.device)
        logits = self.module(x.to(next(self.module.parameters()).dtype))
        return torch.softmax(logits, 1) if self.ad else torch.sigmoid(logits)


class FunctionFeed(_InputsFeed):
    """A Python callable ``fn(*inputs) -> Tensor[n, width]`` of probabilities (checked)."""

    def __init__(self, site: FeedSite, fn: Callable) -> None:
        super().__init__(site)
        self.fn = fn

    def call_batch(self, requests: list[tuple[Term, torch.Tensor | None]]) -> torch.Tensor:
        xs = self.inputs(requests)
        name = f"function {self.b.function if isinstance(self.b.function, str) else self.b.function.__name__}"
        try:
            out = self.fn(*xs)
        except Exception as e:  # the user's code: one line, never its traceback
            raise self.fail(f"{name} raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        if not isinstance(out, torch.Tensor):
            raise self.fail(f"{name} returned {type(out).__name__}; return a Tensor[n, {self.width}]")
        n = len(xs[0])
        out = out.reshape(n, -1) if out.numel() == n * self.width else out
        if tuple(out.shape) != (n, self.width):
            raise self.fail(
                f"{name} returned shape {tuple(out.shape)} for {n} inputs; the network's "
                f"{'domain has' if self.ad else 'fact takes'} {self.width} value(s)"
            )
        bad = ~torch.isfinite(out) | (out < 0) | (out > 1)
        if self.ad:
            bad = bad.any(1) | ((out.sum(1) - 1).abs() > 1e-5)
        if bad.any():
            row = int(bad.reshape(n, -1).any(1).nonzero()[0, 0])
            raise self.fail(
                f"{name} returned {out[row].tolist()} for an input: "
                + (
                    "each row must be a distribution (values in [0, 1] summing to 1)"
                    if self.ad
                    else "each value must be a probability in [0, 1]"
                )
            )
        return out
