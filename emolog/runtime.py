"""Where torch runs: device choice and CPU thread count, shared by every package."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or ``"auto"`` means CUDA when present, else CPU; asking for CUDA without it is an error."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available")
    return dev


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (None: leave as is), then restore.

    Why: emolog's training steps are tiny (batch x 7 tensors, small MLPs); with several
    threads the synchronisation costs more than the arithmetic, up to 25x slower measured
    on a loaded 2-core machine.
    """
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
