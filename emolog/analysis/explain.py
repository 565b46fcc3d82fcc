"""``emolog explain IMAGE [--run RUN_DIR] [--out PNG]``: what perception sees in one image.

Prints the faces found (box, confidence, area), each face's 7-way distribution, and the
backbone's own top-5 classes; with ``--run`` also the trained Scene2EmotionNet's distribution
and the learned source probabilities (for a gated run: this image's own, from its gate net);
with ``--out`` writes a PNG with boxes and bar charts. It lives in ``analysis`` because it reads
trained runs as well as running perception.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from emolog.data.atomic import atomic_write_bytes
from emolog.data.images import ImageRejected, load_image
from emolog.labels import BASIC7
from emolog.perception.common import PerceptionError, WeightsError
from emolog.perception.expression import DEFAULT_RECOGNISER, RECOGNISERS
from emolog.perception.faces import DEFAULT_DETECTOR, DETECTORS
from emolog.perception.pipeline import Perception
from emolog.perception.scene import BACKBONES, DEFAULT_BACKBONE
from emolog.perception.scene2emotion import Scene2EmotionNet
from emolog.training.gate import explain_sources


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="image file")
    parser.add_argument("--run", type=Path, help="trained run directory (scene_net.pt, results.json)")
    parser.add_argument("--out", type=Path, help="write a PNG with boxes and bar charts")
    parser.add_argument("--backbone", choices=sorted(BACKBONES),
                        help=f"scene backbone (default: the run's, else {DEFAULT_BACKBONE})")
    parser.add_argument("--backbone-weights", help="weights file for the backbone")
    parser.add_argument("--places365-names", help="categories_places365.txt (resnet18-places365)")
    parser.add_argument("--detector", choices=sorted(DETECTORS), default=DEFAULT_DETECTOR)
    parser.add_argument("--recogniser", choices=sorted(RECOGNISERS), default=DEFAULT_RECOGNISER)
    parser.add_argument("--recogniser-weights", help="weights file / HF folder for the recogniser")
    parser.add_argument("-K", type=int, default=3, help="faces used (largest first)")
    parser.add_argument("--device", default=None, help="cpu / cuda (default: cuda when present)")


def run(args: argparse.Namespace) -> int:
    try:
        image = load_image(args.image)
    except ImageRejected as e:
        print(f"error: cannot read image {args.image!r}: {e.reason}", file=sys.stderr)
        return 2
    try:
        run_info = _load_run(args.run) if args.run else None
        backbone = args.backbone or (run_info or {}).get("backbone") or DEFAULT_BACKBONE
        p = Perception(backbone=backbone, detector=args.detector, recogniser=args.recogniser,
                       K=args.K, device=args.device, backbone_weights=args.backbone_weights,
                       places365_names=args.places365_names,
                       recogniser_weights=args.recogniser_weights)
        report = explain_image(p, image, run_info)
    except (WeightsError, PerceptionError, RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_report(report, args.image))
    if args.out:
        write_png(image, report, args.out)
        print(f"wrote {args.out}")
    return 0


class RunError(ValueError):
    """A run directory lacks what explain needs, or does not fit the backbone."""


def _load_run(run_dir: Path) -> dict:
    """Read what explain uses from a run dir: Scene2EmotionNet state dict, source weights and
    (when recorded) the backbone name. Every missing piece is named."""
    if not run_dir.is_dir():
        raise RunError(f"run directory {str(run_dir)!r} does not exist")
    info: dict = {"dir": str(run_dir)}
    net_path = run_dir / "scene_net.pt"
    if not net_path.is_file():
        raise RunError(f"{str(net_path)!r} not found (expected a Scene2EmotionNet state dict)")
    try:
        state = torch.load(net_path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise RunError(f"cannot read {str(net_path)!r}: {e}") from e
    if not isinstance(state, dict) or "fc1.weight" not in state or "fc2.weight" not in state:
        raise RunError(f"{str(net_path)!r} is not a Scene2EmotionNet state dict "
                       "(needs fc1.weight, fc1.bias, fc2.weight, fc2.bias)")
    hidden, in_dim = state["fc1.weight"].shape
    net = Scene2EmotionNet(in_dim=in_dim, hidden=hidden, n_classes=state["fc2.weight"].shape[0])
    net.load_state_dict(state)
    info["scene_net"] = net.eval()
    results = run_dir / "results.json"
    if results.is_file():
        try:
            res = json.loads(results.read_text())
        except json.JSONDecodeError as e:
            raise RunError(f"{str(results)!r} is not valid JSON: {e}") from e
        if isinstance(res.get("source_weights"), dict):
            info["source_weights"] = {str(k): float(v) for k, v in res["source_weights"].items()}
    config = run_dir / "config.json"
    if config.is_file():
        try:
            info["backbone"] = _find_backbone_name(json.loads(config.read_text()))
        except json.JSONDecodeError:
            pass  # the backbone can still be chosen with --backbone
    return info


def _find_backbone_name(obj: object) -> str | None:
    """The first ``{"backbone": {"name": X}}`` with a registered X, anywhere in a config."""
    if isinstance(obj, dict):
        bb = obj.get("backbone")
        if isinstance(bb, dict) and bb.get("name") in BACKBONES:
            return bb["name"]
        if isinstance(bb, str) and bb in BACKBONES:
            return bb
        for v in obj.values():
            if (found := _find_backbone_name(v)) is not None:
                return found
    return None


def explain_image(p: Perception, image: Image.Image, run_info: dict | None = None) -> dict:
    """Everything explain shows, as plain data: faces (box, confidence, area, probs),
    scene top-5 classes, optional scene-net distribution and source weights."""
    t = p.perceive_batch([image])
    faces = [{"box": t["face_boxes"][0, k].tolist(), "confidence": float(t["face_conf"][0, k]),
              "area": float(t["face_area"][0, k]),
              "probs": dict(zip(BASIC7, t["face_probs"][0, k].tolist()))}
             for k in range(p.K) if t["face_mask"][0, k]]
    scene = torch.from_numpy(t["scene"]).to(p.device)
    with torch.no_grad():
        top = p.backbone.top_classes(scene, k=5)[0]
    report = {"n_faces": int(t["n_faces"][0]), "faces": faces, "scene_top5": top,
              "backbone": p.backbone.name, "recogniser": p.recogniser.name}
    if run_info:
        net = run_info["scene_net"]
        if net.in_dim != p.scene_dim:
            raise RunError(f"the run's Scene2EmotionNet takes {net.in_dim}-d features but backbone "
                           f"{p.backbone.name!r} gives {p.scene_dim}-d; pass the run's --backbone")
        with torch.no_grad():
            probs = torch.softmax(net(scene.float().cpu()), dim=1)[0].tolist()
        report["scene_net"] = dict(zip(BASIC7, probs))
        if "source_weights" in run_info:
            report["source_weights"] = run_info["source_weights"]
        # a gated run (context trust) chooses its source per image: show this photo's own
        gated = explain_sources(run_info["dir"], t, probs)
        if gated is not None:
            report["source_weights"] = gated
            report["source_weights_kind"] = "per image (gate)"
    return report


def format_report(report: dict, name: str) -> str:
    lines = [f"{name}: {report['n_faces']} face(s) found"
             + (f", using the {len(report['faces'])} largest" if report["n_faces"] > len(report["faces"]) else "")]
    for k, f in enumerate(report["faces"], 1):
        x1, y1, x2, y2 = f["box"]
        lines.append(f"  face{k}: box ({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}) "
                     f"confidence {f['confidence']:.3f} area {100 * f['area']:.1f}%")
        lines.append("    " + _dist(f["probs"]))
    lines.append(f"scene: top-5 classes of {report['backbone']}:")
    lines += [f"    {p:.3f} {c}" for c, p in report["scene_top5"]]
    if "scene_net" in report:
        lines.append("Scene2EmotionNet: " + _dist(report["scene_net"]))
    if "source_weights" in report:
        kind = report.get("source_weights_kind", "global")
        lines.append(f"source probabilities ({kind}): "
                     + "  ".join(f"{k} {v:.3f}" for k, v in report["source_weights"].items()))
    return "\n".join(lines)


def _dist(d: dict[str, float]) -> str:
    best = max(d, key=d.get)
    return "  ".join(f"{k} {v:.3f}" for k, v in d.items()) + f"   -> {best}"


def write_png(image: Image.Image, report: dict, out: Path) -> None:
    """Image with numbered boxes beside one bar chart per distribution; written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    charts = [(f"face{k}", f["probs"]) for k, f in enumerate(report["faces"], 1)]
    if "scene_net" in report:
        charts.append(("Scene2EmotionNet", report["scene_net"]))
    n = len(charts) + 1  # + scene classes
    fig, axes = plt.subplots(1, n + 1, figsize=(4 * (n + 1), 4), squeeze=False)
    ax = axes[0, 0]
    ax.imshow(np.asarray(image.convert("RGB")))
    for k, f in enumerate(report["faces"], 1):
        x1, y1, x2, y2 = f["box"]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="lime", lw=2))
        ax.text(x1, y1, f"face{k} {f['confidence']:.2f}", color="black", backgroundcolor="lime", fontsize=8)
    ax.set_title(f"{report['n_faces']} face(s)")
    ax.axis("off")
    for ax, (title, dist) in zip(axes[0, 1:], charts):
        ax.bar(range(len(BASIC7)), [dist[c] for c in BASIC7], color="tab:blue")
        ax.set_xticks(range(len(BASIC7)), BASIC7, rotation=45, ha="right")
        ax.set_ylim(0, 1)
        ax.set_title(title)
    ax = axes[0, -1]
    names = [c[:30] for c, _ in report["scene_top5"]][::-1]
    ax.barh(names, [p for _, p in report["scene_top5"]][::-1], color="tab:green")
    ax.set_xlim(0, 1)
    ax.set_title(f"{report['backbone']} top-5", fontsize=9)
    if "source_weights" in report:
        fig.suptitle("learned source probabilities: "
                     + ", ".join(f"{k} {v:.2f}" for k, v in report["source_weights"].items()))
    fig.tight_layout()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=100)
    finally:
        plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())
