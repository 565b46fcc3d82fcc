"""``emolog explain IMAGE [--run RUN_DIR] [--out PNG]``: what perception sees in one image.

Prints the faces found (box, confidence, area), each face's 7-way distribution, and the
backbone's own top-5 classes. With ``--run`` the perception is rebuilt from what the run
recorded (``config.json`` key ``perception``; for an older run, its cache's manifest, said so);
options given on the command line win, and any difference from the run's is printed. It then
shows the run's trained Scene2EmotionNet distribution, its source probabilities (a gated run's
own for this photo) and the model's fused prediction. With ``--out`` it writes a PNG with boxes
and bar charts. It lives in ``analysis`` because it reads trained runs as well as running
perception. Heavy modules (torch, the networks) are imported inside ``run``: ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from emolog.runs.perception import (
    RunInputError,
    add_perception_arguments,
    build_perception,
    differences,
    note,
    perceived_cache,
    perception_settings,
    recorded_perception,
)
from emolog.data.atomic import atomic_write_bytes
from emolog.errors import InputError
from emolog.labels import BASIC7

if TYPE_CHECKING:  # torch-heavy: for annotations only
    from emolog.cache.store import FeatureCache
    from emolog.perception.pipeline import Perception
    from emolog.runs.reader import Run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="image file")
    parser.add_argument("--run", type=Path, help="trained run directory (`emolog train --out`)")
    parser.add_argument("--out", type=Path, help="write a PNG with boxes and bar charts (a file)")
    add_perception_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from emolog.data.images import ImageRejected, load_image

    try:
        image = load_image(args.image)
    except ImageRejected as e:
        raise InputError(f"cannot read image {args.image!r}: {e.reason}") from e
    recorded = None
    if args.run:
        recorded, where = recorded_perception(args.run)
        note(f"perception of run {args.run}: {where}")
    p = build_perception(perception_settings(args, recorded), recorded)
    if diffs := differences(recorded, p.fingerprint()):
        note("this perception differs from the run's: " + "; ".join(diffs))
    run_info = _load_run(args.run) if args.run else None
    report = explain_image(p, image, run_info)
    print(format_report(report, args.image))
    if args.out:
        write_png(image, report, args.out)
        print(f"wrote {args.out}")
    return 0


def _load_run(run_dir: Path) -> dict:
    """Read what explain uses from a run dir: Scene2EmotionNet state dict, source weights and
    the trained model (``load_run``) when the run has one. Every missing piece is named."""
    import torch

    from emolog.perception.scene2emotion import Scene2EmotionNet

    info: dict = {"dir": str(run_dir)}
    net_path = run_dir / "scene_net.pt"
    if not net_path.is_file():
        raise RunInputError(f"{str(net_path)!r} not found (expected a Scene2EmotionNet state dict)")
    try:
        state = torch.load(net_path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise RunInputError(f"cannot read {str(net_path)!r}: {e}") from e
    if not isinstance(state, dict) or "fc1.weight" not in state or "fc2.weight" not in state:
        raise RunInputError(
            f"{str(net_path)!r} is not a Scene2EmotionNet state dict (needs fc1.weight, fc1.bias, fc2.weight, fc2.bias)"
        )
    hidden, in_dim = state["fc1.weight"].shape
    net = Scene2EmotionNet(in_dim=in_dim, hidden=hidden, n_classes=state["fc2.weight"].shape[0])
    net.load_state_dict(state)
    info["scene_net"] = net.eval()
    if (run_dir / "results.json").is_file():
        from emolog.runs.record import read_results

        res = read_results(run_dir)
        if isinstance(res.get("source_weights"), dict):
            info["source_weights"] = {str(k): float(v) for k, v in res["source_weights"].items()}
    if (run_dir / "config.json").is_file():  # a complete run: the model itself
        from emolog.runs.reader import read_run

        info["run"] = read_run(run_dir)
    return info


def explain_image(p: Perception, image: Image.Image, run_info: dict | None = None) -> dict:
    """Everything explain shows, as plain data: faces (box, confidence, area, probs), scene
    top-5 classes; with a run the scene-net distribution, source weights and fused prediction."""
    import torch

    from emolog.model.gate import explain_sources

    t = p.perceive_batch([image])
    faces = [
        {
            "box": t["face_boxes"][0, k].tolist(),
            "confidence": float(t["face_conf"][0, k]),
            "area": float(t["face_area"][0, k]),
            "probs": dict(zip(BASIC7, t["face_probs"][0, k].tolist())),
        }
        for k in range(p.K)
        if t["face_mask"][0, k]
    ]
    scene = torch.from_numpy(t["scene"]).to(p.device)
    with torch.no_grad():
        top = p.backbone.top_classes(scene, k=5)[0]
    report = {
        "n_faces": int(t["n_faces"][0]),
        "faces": faces,
        "scene_top5": top,
        "backbone": p.backbone.name,
        "recogniser": p.recogniser.name,
    }
    if run_info:
        net = run_info["scene_net"]
        if net.in_dim != p.scene_dim:
            raise RunInputError(
                f"the run's Scene2EmotionNet takes {net.in_dim}-d features but backbone "
                f"{p.backbone.name!r} gives {p.scene_dim}-d; pass the run's --backbone"
            )
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
        if "run" in run_info:
            fused = _fused(run_info["run"], perceived_cache(p, t, ["image"]))
            if "scene_net" not in fused:  # the run's program has no scene network
                report.pop("scene_net", None)
            report.update(fused)
    return report


def _fused(run: Run, cache: FeatureCache) -> dict:
    """The trained model's prediction for the one image in ``cache``: the fused distribution
    and, where the program chooses a source, this image's source posterior."""
    pred = run.predict(cache)
    out = {"prediction": dict(zip(pred.classes, (float(v) for v in pred.probs[0])))}
    if pred.scene_probs is not None:  # as the model computes it (joint-unfreeze: after its trained last block)
        out["scene_net"] = dict(zip(pred.scene_classes, (float(v) for v in pred.scene_probs[0])))
    if pred.sources is not None and pred.source_posterior is not None:
        out["source_posterior"] = dict(zip(pred.sources, (float(v) for v in pred.source_posterior[0])))
    return out


def format_report(report: dict, name: str) -> str:
    lines = [
        f"{name}: {report['n_faces']} face(s) found"
        + (f", using the {len(report['faces'])} largest" if report["n_faces"] > len(report["faces"]) else "")
    ]
    for k, f in enumerate(report["faces"], 1):
        x1, y1, x2, y2 = f["box"]
        lines.append(
            f"  face{k}: box ({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}) "
            f"confidence {f['confidence']:.3f} area {100 * f['area']:.1f}%"
        )
        lines.append("    " + _dist(f["probs"]))
    lines.append(f"scene: top-5 classes of {report['backbone']}:")
    lines += [f"    {p:.3f} {c}" for c, p in report["scene_top5"]]
    if "scene_net" in report:
        lines.append("Scene2EmotionNet: " + _dist(report["scene_net"]))
    if "source_weights" in report:
        kind = report.get("source_weights_kind", "global")
        lines.append(
            f"source probabilities ({kind}): " + "  ".join(f"{k} {v:.3f}" for k, v in report["source_weights"].items())
        )
    if "source_posterior" in report:
        lines.append(
            "source posterior (this image, given its prediction): "
            + "  ".join(f"{k} {v:.3f}" for k, v in report["source_posterior"].items())
        )
    if "prediction" in report:
        lines.append("fused prediction (the trained model): " + _dist(report["prediction"]))
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
    if "prediction" in report:
        charts.append(("fused prediction", report["prediction"]))
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
        classes = list(dist)
        ax.bar(range(len(classes)), [dist[c] for c in classes], color="tab:blue")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_ylim(0, 1)
        ax.set_title(title)
    ax = axes[0, -1]
    names = [c[:30] for c, _ in report["scene_top5"]][::-1]
    ax.barh(names, [p for _, p in report["scene_top5"]][::-1], color="tab:green")
    ax.set_xlim(0, 1)
    ax.set_title(f"{report['backbone']} top-5", fontsize=9)
    if "source_weights" in report:
        fig.suptitle(
            "learned source probabilities: " + ", ".join(f"{k} {v:.2f}" for k, v in report["source_weights"].items())
        )
    fig.tight_layout()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=100)
    finally:
        plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())
