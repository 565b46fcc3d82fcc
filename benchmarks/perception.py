"""Perception throughput on this machine: scene features, face detection, expression recognition.

Real photos that ship with scikit-image, resized to 1000 px on the long side (FindingEmo's
scale). Face detection runs at full size and downscaled to several long sides, counting the
faces found, to decide whether downscaling first loses faces. Prints a table; under ~2 min
on 2 CPU cores.

    .venv/bin/python benchmarks/perception.py [--device cpu|cuda] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import skimage.data
import torch
from PIL import Image

from emolog.perception.expression import build_recogniser
from emolog.perception.faces import build_detector, crop_face
from emolog.perception.scene import build_backbone


def photos(long_side: int = 1000) -> list[Image.Image]:
    """8 scene photos: no face, one face, and 2-3 faces at different sizes."""
    astro = Image.fromarray(skimage.data.astronaut())
    base = [astro] + [Image.fromarray(getattr(skimage.data, n)()) for n in ("coffee", "chelsea", "rocket")]
    groups = []
    for sizes in ((512, 256), (400, 300, 200), (300, 300, 150), (512, 160)):
        canvas = Image.new("RGB", (sum(sizes), max(sizes)), (200, 200, 200))
        x = 0
        for s in sizes:
            canvas.paste(astro.resize((s, s)), (x, max(sizes) - s))
            x += s
        groups.append(canvas)
    out = []
    for im in base + groups:
        f = long_side / max(im.size)
        out.append(im.resize((round(im.width * f), round(im.height * f)), Image.BILINEAR))
    return out


def timed(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` runs (after one warm-up), seconds."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)
    ims = photos()
    rows = []

    for name in ("efficientnet-lite0-imagenet",):
        bb = build_backbone(name, device=device)
        batch = ims * 2  # 16 images per batch

        def scene():
            with torch.no_grad():
                bb(bb.preprocess(batch).to(device))
        t = timed(scene, args.repeats)
        rows.append((f"scene features {name} (batch 16, incl. preprocessing)", len(batch) / t, ""))

    full_counts = None
    for max_side in (None, 800, 640, 500):
        det = build_detector("mtcnn", device=device, max_side=max_side)
        counts = [len(f) for f in det.detect(ims)]
        full_counts = counts if max_side is None else full_counts
        t = timed(lambda: det.detect(ims), args.repeats)
        note = f"faces per image {counts}" + ("" if counts == full_counts else "  (LOSES FACES)")
        rows.append((f"face detection mtcnn, 1000 px, max_side={max_side}", len(ims) / t, note))
    haar = build_detector("haar")
    t = timed(lambda: haar.detect(ims), args.repeats)
    rows.append(("face detection haar, 1000 px", len(ims) / t,
                 f"faces per image {[len(f) for f in haar.detect(ims)]}"))

    det = build_detector("mtcnn", device=device)
    crops = [crop_face(im, f.box) for im, fs in zip(ims, det.detect(ims)) for f in fs]
    crops = (crops * 8)[:64]
    rec = build_recogniser("fer2013-minixception", device=device)
    t = timed(lambda: rec.logits(crops), args.repeats)
    rows.append(("expression fer2013-minixception (batch 64 crops)", len(crops) / t, ""))

    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    print(f"{'stage':<62} {'items/s':>9}  notes")
    for stage, rate, note in rows:
        print(f"{stage:<62} {rate:>9.1f}  {note}")


if __name__ == "__main__":
    main()
