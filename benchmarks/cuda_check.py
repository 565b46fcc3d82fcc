"""CPU vs CUDA: the same computations on both devices agree, and what CUDA buys.

    python benchmarks/cuda_check.py [--n 3000]

Needs a CUDA device (exits 2 without one: there is nothing to compare). Three parts, each
run once on the CPU and once on CUDA, then compared with a stated tolerance:

1. perception: ``Perception.perceive_batch`` on 8 real photos that ship with scikit-image
   (scene features, faces found, boxes, expression probabilities);
2. logic: the seed program's exact circuit (``LogicModule.emotion_probs``) on 5000 random
   inputs in float64, forward and gradient;
3. training: ``train_run`` on a simulated data set in regimes logic-only, joint (dropout off:
   the devices draw different dropout masks from one seed) and (gated.pl) logic-only. Float32 sums run in another order on the GPU, so a run is not bit-identical;
   the comparison is of what a researcher reads: test NLL and the learned source weights.

Prints one line per check (max difference, tolerance, CPU and CUDA seconds) and exits 1 when
any difference exceeds its tolerance.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perception import photos  # noqa: E402  (the perception benchmark's 8 photos)

from emolog.logic import compile_program  # noqa: E402
from emolog.perception.pipeline import Perception  # noqa: E402
from emolog.simulate import SimConfig, simulate, write_simulation  # noqa: E402
from emolog.runs.train import train_run  # noqa: E402

DEVICES = {"cpu": "cpu", "cuda": "cuda"}  # result key -> torch device


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


def check_perception() -> list[tuple[str, float, float, dict]]:
    ims = photos()
    got = {}
    for key, dev in DEVICES.items():
        p = Perception(device=dev)
        p.perceive_batch(ims[:1])  # lazy initialisation (cuDNN autotune, MTCNN) not timed
        got[key], got[key + "_s"] = _timed(lambda: p.perceive_batch(ims))
    a, b = got["cpu"], got["cuda"]
    t = {d: got[d + "_s"] for d in DEVICES}
    same_faces = float((a["n_faces"] != b["n_faces"]).sum())
    rel = float(np.abs(a["scene"] - b["scene"]).max() / max(np.abs(a["scene"]).max(), 1e-12))
    both = a["face_mask"] & b["face_mask"]
    box = float(np.abs(a["face_boxes"][both] - b["face_boxes"][both]).max()) if both.any() else 0.0
    prob = float(np.abs(a["face_probs"][both] - b["face_probs"][both]).max()) if both.any() else 0.0
    return [
        ("perception: images whose face count differs", same_faces, 0.0, t),
        # cuDNN runs float32 convolutions in TF32 by default (torch.backends.cudnn.allow_tf32):
        # ~1e-3 relative error per layer, so features agree to a few 1e-3, not 1e-6
        ("perception: scene features, max |diff| / max |x|", rel, 5e-3, t),
        ("perception: face boxes, max |diff| (px)", box, 2.0, t),
        ("perception: expression probabilities, max |diff|", prob, 1e-2, t),
    ]


def check_logic(n: int = 5000) -> list[tuple[str, float, float, dict]]:
    g = torch.Generator().manual_seed(0)
    scene = torch.softmax(torch.randn(n, 7, generator=g, dtype=torch.float64), 1)
    faces = torch.softmax(torch.randn(n, 3, 7, generator=g, dtype=torch.float64), 2)
    mask = torch.rand(n, 3, generator=g) < 0.6
    out, grads, t = {}, {}, {}
    for key, dev in DEVICES.items():
        lm = compile_program("seed").to(dev).double()
        s = scene.clone().to(dev).requires_grad_(True)

        def step():
            p = lm.emotion_probs(s, faces.to(dev), mask.to(dev))
            p.log().sum().backward()
            return p

        step()  # warm-up (kernel launch set-up)
        s.grad = None
        for q in lm.parameters():
            q.grad = None
        p, t[key] = _timed(step)
        out[key], grads[key] = p.detach().cpu().clone(), s.grad.detach().cpu().clone()
    return [
        ("logic: P(emotion) float64, max |diff|", float((out["cpu"] - out["cuda"]).abs().max()), 1e-10, t),
        ("logic: d log P / d scene, max |diff|", float((grads["cpu"] - grads["cuda"]).abs().max()), 1e-8, t),
    ]


def check_training(n: int, tmp: Path) -> list[tuple[str, float, float, dict]]:
    data = tmp / "sim"
    write_simulation(simulate(SimConfig(n=n, seed=0, variant="context")), data, force=True)
    rows = []
    # joint trains the scene net with dropout, whose masks come from each device's own random
    # stream (CPU and CUDA generators differ for one seed): dropout 0 makes the runs comparable
    for name, cfg in (
        ("logic-only", {"regime": "logic-only"}),
        ("joint", {"regime": "joint", "nets.dropout": 0.0}),
        ("gated", {"regime": "logic-only", "program": "gated"}),
    ):
        res, t = {}, {}
        for key, dev in DEVICES.items():
            run_cfg = {"data": str(data), "seed": 0, "device": dev, "pretrain.cache": str(tmp / f"pre-{key}"), **cfg}
            res[key], t[key] = _timed(lambda: train_run(run_cfg, tmp / f"{name}-{key}", progress=False))
        a, b = res["cpu"], res["cuda"]
        rows.append(
            (f"train {name}: test NLL, |diff|", abs(a["metrics"]["test"]["nll"] - b["metrics"]["test"]["nll"]), 0.01, t)
        )
        rows.append(
            (
                f"train {name}: source weights (test mean), max |diff|",
                max(abs(a["source_weights"][s] - b["source_weights"][s]) for s in a["source_weights"]),
                0.02,
                t,
            )
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000, help="simulated images for the training check")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device here: nothing to compare", file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    rows = check_perception() + check_logic()
    with tempfile.TemporaryDirectory() as d:
        rows += check_training(args.n, Path(d))
    bad = 0
    print(f"{'check':58s} {'diff':>10s} {'tol':>8s} {'cpu s':>7s} {'cuda s':>7s}")
    for name, diff, tol, t in rows:
        ok = diff <= tol
        bad += not ok
        print(f"{name:58s} {diff:10.3g} {tol:8.0e} {t['cpu']:7.2f} {t['cuda']:7.2f} {'ok' if ok else 'FAIL'}")
    print("all checks within tolerance" if not bad else f"{bad} check(s) out of tolerance")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
