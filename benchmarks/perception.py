"""Perception throughput on this machine: scene features, face detection, expression recognition.

Real photos that ship with scikit-image, resized to 1000 px on the long side (FindingEmo's
scale). Face detection runs at full size and downscaled to several long sides, counting the
faces found, to decide whether downscaling first loses faces. Prints a table; under ~2 min
on 2 CPU cores.

    .venv/bin/python benchmarks/perception.py [--device cpu|cuda] [--repeats 1] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import skimage.data
import torch
import torchvision
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


def timed(fn, repeats: int, warmup=None) -> tuple[tuple[float, float], object]:
    """((best wall s, its CPU s) of ``repeats`` runs of ``fn``, its result), after one call of
    ``warmup`` (a cheap version of ``fn``: the first call pays for lazy initialisation).
    CPU time is reported too because this machine's cores are shared: when other work runs,
    wall time inflates but CPU seconds per item stay comparable."""
    (warmup or fn)()
    best, result = (float("inf"), float("inf")), None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t, time.process_time() - c))
    return best, result


def row(stage: str, n: int, times: tuple[float, float], note: str = "") -> None:
    wall, cpu = times
    print(f"{stage:<58} {n / wall:>9.1f} {1000 * cpu / n:>11.1f}  {note}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default torch's); 1 gives the steadiest CPU ms/item on a shared machine",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)
    ims = photos()
    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    print(f"{'stage':<58} {'items/s':>9} {'CPU ms/item':>11}  notes", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        # ResNet18 speed does not depend on its weights: a random checkpoint in the official
        # Places365 format stands in for the file users download.
        places = Path(tmp) / "resnet18_places365.pth.tar"
        state = torchvision.models.resnet18(num_classes=365).state_dict()
        torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, places)
        backbones = [
            build_backbone("efficientnet-lite0-imagenet", device=device),
            build_backbone("resnet18-places365", places, device=device),
        ]
    batch = ims * 2  # 16 images per batch
    for bb in backbones:

        def scene():
            with torch.no_grad():
                bb(bb.preprocess(batch).to(device))

        t, _ = timed(scene, args.repeats)
        row(f"scene features {bb.name} (batch 16, incl. preproc.)", len(batch), t)

    full_counts, full_faces = None, []
    for max_side in (None, 800, 640, 500):
        det = build_detector("mtcnn", device=device, max_side=max_side)
        t, faces = timed(lambda: det.detect(ims), args.repeats, lambda: det.detect(ims[:1]))
        counts = [len(f) for f in faces]
        if max_side is None:
            full_counts, full_faces = counts, faces
        note = f"faces per image {counts}" + ("" if counts == full_counts else "  (LOSES FACES)")
        row(f"face detection mtcnn, 1000 px, max_side={max_side}", len(ims), t, note)
    haar = build_detector("haar")
    t, faces = timed(lambda: haar.detect(ims), args.repeats, lambda: haar.detect(ims[:1]))
    row("face detection haar, 1000 px", len(ims), t, f"faces per image {[len(f) for f in faces]}")

    crops = [crop_face(im, f.box) for im, fs in zip(ims, full_faces) for f in fs]
    crops = (crops * 8)[:64]
    rec = build_recogniser("fer2013-minixception", device=device)
    t, _ = timed(lambda: rec.logits(crops), args.repeats)
    row("expression fer2013-minixception (batch 64 crops)", len(crops), t)


if __name__ == "__main__":
    main()
