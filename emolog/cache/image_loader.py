"""The image side of a cache build: a Dataset that reads, checks, decodes and prepares each
image, and the DataLoader whose worker processes run it (``emolog.cache.build`` consumes it).

A file that cannot be read, changed since indexing or is refused by the preparer is an item
with its reject reason, never an exception: one bad file must not stop a batch.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Sequence

from torch.utils.data import DataLoader, Dataset

from emolog.data.images import DEFAULT_MAX_PIXELS, ImageRejected, decode_image, read_image_bytes, sha256_bytes
from emolog.data.paths import PathRejected, resolve_under
from emolog.perception.common import PerceptionError


class ImageFiles(Dataset):
    """Reads, decodes and prepares the images of ``items`` = [(image_id, rel_path, content_hash)].

    Item k is ``(image_id, rel_path, prepared or None, reject reason or None, stage)``, where
    ``prepared`` is ``prepare(PIL RGB image)`` (the image itself without ``prepare``) and
    ``stage`` is ``"load"`` or ``"perception"``; an empty ``content_hash`` skips the
    changed-since-indexing check.
    """

    def __init__(
        self,
        items: Sequence[tuple[str, str, str]],
        root: str | Path,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        prepare=None,
    ) -> None:
        self.items, self.root, self.max_pixels = list(items), Path(root), max_pixels
        self.prepare = prepare

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int):
        iid, rel, content_hash = self.items[k]
        try:
            data = read_image_bytes(resolve_under(self.root, rel))
            if content_hash and sha256_bytes(data) != content_hash:
                return iid, rel, None, "changed since indexing: content hash differs (re-run emolog index)", "load"
            image = decode_image(data, self.max_pixels)
        except (ImageRejected, PathRejected) as e:
            return iid, rel, None, e.reason, "load"
        if self.prepare is None:
            return iid, rel, image, None, "load"
        try:
            return iid, rel, self.prepare(image), None, "perception"
        except PerceptionError as e:
            return iid, rel, None, f"perception: {e}", "perception"


def _as_list(batch: list) -> list:
    return batch  # PIL images do not stack: keep the batch a plain list


def _die_with_parent(_worker_id: int) -> None:
    """DataLoader worker init: on Linux, ask the kernel to SIGKILL this worker when the builder
    dies. A worker of a SIGKILLed builder otherwise blocks forever on its full result pipe,
    holding the builder's stdout/stderr and memory."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def image_loader(files: ImageFiles, batch_size: int, workers: int) -> DataLoader:
    """Batches (plain lists) of ``files`` items in order, read (and prepared) by ``workers``
    processes (0: in this process)."""
    # Workers are forked on Linux even where this process was itself spawned (an `--nproc`
    # rank inherits "spawn", and spawned workers re-import torch: 30 s per rank measured).
    # They never touch CUDA, so forking a CUDA process is safe here.
    context = "fork" if workers and sys.platform.startswith("linux") else None
    return DataLoader(
        files,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_as_list,
        worker_init_fn=_die_with_parent,
        prefetch_factor=4 if workers else None,
        multiprocessing_context=context,
    )
