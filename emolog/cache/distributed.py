"""One cache build on many processes, GPUs or machines: torchrun ranks to one verified cache.

Every rank (``RANK``/``WORLD_SIZE`` from torchrun) builds its slice of the sorted ids into
``OUT/part-RANK-of-WORLD/`` (atomic, resumable shards), then all ranks meet once: rank 0 merges
the parts into ``OUT`` and verifies the merged cache, and every rank exits with the verdict
(0 only when it verifies). The process group is gloo on CPU and ``cpu:gloo,cuda:nccl`` on
GPU; the meeting is an object collective on the CPU (gloo) side, so it waits for the slowest
rank up to ``timeout_s`` (default 48 h) instead of torch's default 30 min (gloo) / 10 min
(NCCL), which a long build on unequal slices would trip.

A rank that dies takes the job down (torchrun stops the others); the same command, rerun by
hand or by torchrun's ``--max-restarts``, resumes every part where its last shard ended, so
the result equals an uninterrupted build. ``launch`` is the ``--nproc N`` shortcut: torchrun's
own elastic agent, started from Python on this machine.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from emolog.cache.merge import merge_parts
from emolog.cache.store import MANIFEST
from emolog.errors import EmologError

DEFAULT_TIMEOUT_S = 48 * 3600


class RankLostError(EmologError):
    """Another rank died (or the wait timed out); what every rank wrote is kept."""


@dataclass(frozen=True)
class Outcome:
    """A rank's (or the job's) result: exit code and a message for the user."""

    code: int
    message: str
    changed: bool = False  # this rank wrote or rejected something now (the merge is stale)


def run_ranks(
    build_part: Callable[[], Outcome], finish: Callable[[bool], Outcome], timeout_s: float, cuda: bool
) -> Outcome:
    """Under torchrun: ``build_part()`` on every rank, then ``finish(stale)`` (merge + verify)
    on rank 0 only; every rank returns the job's outcome."""
    import torch.distributed as dist
    from torch.distributed.rendezvous import rendezvous

    timeout = timedelta(seconds=timeout_s)
    store, rank, world = next(rendezvous("env://", timeout=timeout))
    # A key space per torchrun attempt: after a restart, the store may still hold the dead
    # attempt's gloo addresses, and connecting to them fails ("Connection refused").
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    dist.init_process_group(
        "cpu:gloo,cuda:nccl" if cuda else "gloo",
        timeout=timeout,
        store=dist.PrefixStore(f"emolog-cache/attempt-{attempt}/", store),
        rank=rank,
        world_size=world,
    )
    try:
        try:
            mine = build_part()
        except EmologError as e:
            mine = Outcome(e.exit_code, f"rank {rank}: {e}")
        everyone: list[Outcome | None] = [None] * world
        try:
            dist.all_gather_object(everyone, mine)  # the long wait: the slowest rank's build
        except RuntimeError as e:  # gloo: "Connection closed by peer", or the timeout
            raise RankLostError(
                f"rank {rank}: lost the other ranks while waiting for them "
                f"({str(e).splitlines()[0][:200]}); rerun the same command to resume"
            ) from e
        failed = [o for o in everyone if o is not None and o.code]
        if failed:  # every rank sees the same list: no merge, same verdict everywhere
            return Outcome(max(o.code for o in failed), "; ".join(o.message for o in failed))
        verdict: list[Outcome | None] = [None]
        if rank == 0:
            try:
                verdict[0] = finish(any(o is not None and o.changed for o in everyone))
            except EmologError as e:
                verdict[0] = Outcome(e.exit_code, f"merge: {e}")
        dist.broadcast_object_list(verdict, src=0)
        assert verdict[0] is not None
        return verdict[0]
    finally:
        dist.destroy_process_group()


def merge_fresh(out_dir, stale: bool) -> None:
    """Merge the parts into ``out_dir`` unless a merged cache is there and nothing changed."""
    from pathlib import Path

    out_dir = Path(out_dir)
    if (out_dir / MANIFEST).exists() and not stale:
        return
    merge_parts(out_dir, replace=True)


def launch(nproc: int, entry: Callable[..., int], args: object, max_restarts: int = 0) -> int:
    """``--nproc N``: run ``entry(args)`` in N ranks on this machine (torchrun's elastic agent,
    rendezvous on a free local port); the job's exit code is the worst rank's."""
    import dataclasses
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    kw = {}
    if "shutdown_timeout" in {f.name for f in dataclasses.fields(LaunchConfig)}:
        # On Ctrl-C the ranks flush and return at once, but the agent's function wrapper keeps
        # them waiting for an event it never sets; 10 s (not 30) is its grace before SIGKILL.
        kw["shutdown_timeout"] = 10
    cfg = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=uuid.uuid4().hex,
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=max_restarts,
        monitor_interval=0.5,
        start_method="spawn",
        **kw,
    )
    # torchrun's own default for several processes: one OpenMP thread each
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        codes = elastic_launch(cfg, entry)(args)
    except SignalException as e:  # the agent turns Ctrl-C into this, after stopping the ranks
        raise KeyboardInterrupt from e
    except ChildFailedError as e:
        failures = "; ".join(f"rank {r}: exit {f.exitcode}" for r, f in sorted(e.failures.items()))
        print(f"emolog cache build: a rank died ({failures}); rerun the same command to resume", file=sys.stderr)
        return max((abs(f.exitcode) for f in e.failures.values()), default=1) or 1
    return max((int(c or 0) for c in codes.values()), default=0)
