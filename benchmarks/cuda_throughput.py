"""GPU throughput of the cache build: images/s and faces/s, GPU utilisation, where time goes.

    python benchmarks/cuda_throughput.py [--n-photos 2000] [--batch-size 128] [--workers W]
                                         [--device cuda] [--json out.json]

Writes ``--n-photos`` JPEG photos (640x480; two in three get 1-3 faces pasted in), indexes
them and builds a feature cache through ``emolog.cache.build.build_cache`` with the thesis'
network sizes: a ResNet18 scene backbone loaded from a checkpoint in the official
Places365 format (``resnet18_places365.pth.tar``: ``state_dict`` with ``module.`` keys) and a
ViT-B/16 expression recogniser (torchvision ``vit_b_16``, 86 M parameters, 224x224 crops, 7
classes). Weights are random: speed does not depend on them.

Faces: MTCNN when facenet-pytorch is installed; otherwise the boxes the generator planted
("planted" detector, no detection cost) -- the output says which. The script imports only
torch, torchvision, numpy, PIL, pandas, tqdm, safetensors and emolog's cache/perception
modules (no problog, pysdd, klay, facenet-pytorch, transformers, h5py), so it runs on a
fresh GPU machine whose torch differs from this project's pin. About 1-3 minutes on one
GPU. On a CPU (``--device cpu --n-photos 20``) it checks itself, slowly.

Prints: images/s and faces/s end to end (decode in DataLoader workers + networks + writing
shards), mean GPU utilisation sampled by ``nvidia-smi`` every 0.2 s, and per-stage seconds
(CUDA-synchronised): scene backbone, detection, face crops + recogniser preprocessing,
recogniser forward, and the rest (waiting for decoded batches, writing, Python).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

NEEDED = ("torch", "torchvision", "numpy", "PIL", "pandas", "tqdm", "safetensors")


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False


missing = [m for m in NEEDED if not _importable(m)]
if missing:
    sys.exit(f"cuda_throughput: missing packages {missing}; pip install {' '.join(missing)}")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emolog.cache.build import BuildOptions, build_cache  # noqa: E402
from emolog.cache.store import load_cache  # noqa: E402
from emolog.data.index import build_index  # noqa: E402
from emolog.data.readers import RECORD_COLUMNS  # noqa: E402
from emolog.labels import BASIC7, get_mapping  # noqa: E402
from emolog.perception.faces import Face, _faces_from_boxes  # noqa: E402
from emolog.perception.pipeline import Perception  # noqa: E402
from emolog.perception.scene import build_resnet18_places365  # noqa: E402

W, H = 640, 480


def _photo(args: tuple[Path, int]) -> tuple[str, list[list[float]]]:
    """One photo: a smooth random colour field with noise, 0-3 'faces' (skin-toned ellipses
    with eyes and a mouth, 50-160 px); returns its name and the planted boxes."""
    from PIL import ImageDraw

    folder, k = args
    rng = np.random.default_rng(k)
    base = rng.uniform(0, 255, (4, 3, 3))
    field = np.asarray(Image.fromarray(base.astype(np.uint8)).resize((W, H), Image.BICUBIC), np.float32)
    im = Image.fromarray(np.clip(field + rng.normal(0, 12, field.shape), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    boxes = []
    for _ in range(int(rng.integers(1, 4)) if k % 3 else 0):
        s = int(rng.integers(50, 160))
        x, y = int(rng.integers(0, W - s)), int(rng.integers(0, H - s))
        bottom = min(y + int(s * 1.2), H - 1)
        draw.ellipse((x, y, x + s, bottom), fill=tuple(int(c) for c in rng.integers([170, 120, 90], [240, 190, 160])))
        for ex in (0.3, 0.7):
            draw.ellipse((x + ex * s - s * 0.07, y + 0.4 * s, x + ex * s + s * 0.07, y + 0.5 * s), fill=(30, 30, 30))
        draw.rectangle((x + 0.3 * s, y + 0.8 * s, x + 0.7 * s, y + 0.87 * s), fill=(120, 30, 40))
        boxes.append([x, y, x + s, bottom])
    name = f"p{k:05d}.jpg"
    im.save(folder / name, quality=90)
    return name, boxes


class PlantedDetector:
    """The generator's boxes as detections (facenet-pytorch absent): detection costs nothing,
    everything after it (crops, recogniser) runs as with a real detector."""

    name = "planted"

    def __init__(self, boxes_by_size: dict[tuple[int, int, int], list[list[float]]]) -> None:
        self.boxes = boxes_by_size

    def config(self) -> dict:
        return {"name": self.name}

    def detect(self, images: list[Image.Image]) -> list[list[Face]]:
        out = []
        for im in images:
            b = np.asarray(self.boxes.get(_key(im), []), np.float64).reshape(-1, 4)
            out.append(_faces_from_boxes(b, np.ones(len(b)), 1.0, im.width, im.height))
        return out


def _key(im: Image.Image) -> tuple[int, int, int]:
    """An image's identity for the planted detector: the sum of a pixel sample (each photo
    is drawn from its own seed, so these differ)."""
    a = np.asarray(im)
    return int(a[::37, ::41].astype(np.int64).sum()), im.width, im.height


class ViTRecogniser:
    """ViT-B/16 (torchvision, random weights) on 224x224 face crops -> 7 logits."""

    name = "vit-b16-random"
    own_classes = tuple(BASIC7)
    preprocessing = {"resize": 224, "mean": 0.5, "std": 0.5}
    weights_sha256 = "random"

    def __init__(self, device: torch.device, clock: "Clock") -> None:
        self.net = torchvision.models.vit_b_16(num_classes=7).eval().to(device)
        self.device, self.clock = device, clock

    @torch.no_grad()
    def logits(self, crops: list[Image.Image]) -> torch.Tensor:
        with self.clock("recogniser: crops to tensors"):
            x = (
                torch.stack(
                    [torch.from_numpy(np.array(c.convert("RGB").resize((224, 224), Image.BILINEAR))) for c in crops]
                )
                .permute(0, 3, 1, 2)
                .float()
                .div_(127.5)
                .sub_(1.0)
            )
        with self.clock("recogniser: ViT-B/16 forward"):
            return self.net(x.to(self.device, non_blocking=True)).float().cpu()


class Clock:
    """Named stopwatches; CUDA is synchronised at both ends so GPU work is charged to its stage."""

    def __init__(self, cuda: bool) -> None:
        self.cuda, self.total = cuda, {}

    def __call__(self, name: str):
        clock = self

        class _Span:
            def __enter__(self):
                if clock.cuda:
                    torch.cuda.synchronize()
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                if clock.cuda:
                    torch.cuda.synchronize()
                clock.total[name] = clock.total.get(name, 0.0) + time.perf_counter() - self.t

        return _Span()


def _timed(clock: Clock, name: str, fn):
    def wrapper(*a, **kw):
        with clock(name):
            return fn(*a, **kw)

    return wrapper


class GpuSampler(threading.Thread):
    """``nvidia-smi`` utilisation of the device every 0.2 s while the build runs."""

    def __init__(self, index: int) -> None:
        super().__init__(daemon=True)
        self.index, self.samples, self.stop = index, [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                out = subprocess.run(
                    [
                        "nvidia-smi",
                        "-i",
                        str(self.index),
                        "--query-gpu=utilization.gpu",
                        "--format=csv,noheader,nounits",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=5,
                )
                self.samples.append(float(out.stdout.strip().splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                return
            self.stop.wait(0.2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-photos", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=max(1, min(12, (os.cpu_count() or 2) - 2)))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    torch.backends.cudnn.benchmark = True  # fixed 224x224 inputs: let cuDNN pick its fastest kernels
    info = (
        f"torch {torch.__version__}, device {torch.cuda.get_device_name(device) if cuda else 'cpu'}, "
        f"{os.cpu_count()} CPUs, {args.workers} DataLoader workers, batch {args.batch_size}"
    )
    print(info, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = work / "images"
        root.mkdir()
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max(1, args.workers)) as pool:
            made = list(pool.map(_photo, [(root, k) for k in range(args.n_photos)], chunksize=32))
        t_gen = time.perf_counter() - t0
        recs = pd.DataFrame(
            [{"path": n, "label_raw": BASIC7[k % 7].capitalize(), "source": n} for k, (n, _) in enumerate(made)]
        ).reindex(columns=RECORD_COLUMNS, fill_value="")
        index = build_index(recs, get_mapping(), root=root, check_images=False, progress=False).index

        ckpt = work / "resnet18_places365.pth.tar"
        net = torchvision.models.resnet18(num_classes=365)
        torch.save(
            {"epoch": 0, "arch": "resnet18", "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}},
            ckpt,
        )
        clock = Clock(cuda)
        backbone = build_resnet18_places365(ckpt).to(device).eval()
        backbone.stem.forward = _timed(clock, "scene backbone", backbone.stem.forward)
        backbone.last_block.forward = _timed(clock, "scene backbone", backbone.last_block.forward)
        if _importable("facenet_pytorch"):
            from emolog.perception.faces import MTCNNDetector

            detector, det_name = MTCNNDetector(device=device), "MTCNN (facenet-pytorch)"
        else:
            boxes = {_key(Image.open(root / n).convert("RGB")): b for n, b in made}
            detector, det_name = PlantedDetector(boxes), "planted boxes (facenet-pytorch not installed)"
        detector.detect = _timed(clock, "face detection", detector.detect)
        perception = Perception.from_parts(backbone, detector, ViTRecogniser(device, clock))
        print(f"detector: {det_name}; {args.n_photos} photos {W}x{H} written in {t_gen:.1f} s", flush=True)

        warm = [Image.open(root / made[k][0]) for k in range(min(args.batch_size, len(made)))]
        perception.perceive_batch(warm)  # cuDNN autotuning and CUDA context set-up, not timed
        clock.total.clear()
        sampler = GpuSampler(device.index or 0) if cuda else None
        if sampler:
            sampler.start()
        rep = build_cache(
            perception,
            index,
            index.ids,
            root,
            work / "cache",
            options=BuildOptions(batch_size=args.batch_size, workers=args.workers, rows_per_file=1024, progress=False),
        )
        if sampler:
            sampler.stop.set()
            sampler.join()
        cache = load_cache(work / "cache")
    n_faces = int(cache.face_mask.sum())
    stages = dict(clock.total)
    stages["rest: waiting for decoded batches, writing shards, Python"] = rep.seconds - sum(stages.values())
    util = float(np.mean(sampler.samples)) if sampler and sampler.samples else float("nan")
    figures = {
        "images": rep.n_written,
        "rejected": rep.n_rejected,
        "seconds": rep.seconds,
        "images_per_s": rep.n_written / rep.seconds,
        "faces": n_faces,
        "faces_per_s": n_faces / rep.seconds,
        "gpu_util_mean_pct": util,
        "stages_s": stages,
        "detector": det_name,
        "setup": info,
    }
    print(f"built {rep.n_written} rows ({rep.n_rejected} rejected) in {rep.seconds:.1f} s")
    print(f"images/s  {figures['images_per_s']:8.1f}   (goal on one H200: >= 200)")
    print(f"faces/s   {figures['faces_per_s']:8.1f}   ({n_faces} faces through the recogniser)")
    print(
        f"GPU utilisation (mean of {len(sampler.samples) if sampler else 0} nvidia-smi samples): "
        + (f"{util:.0f}%" if util == util else "n/a (no GPU / no nvidia-smi)")
    )
    print("where time goes (s, share of the build):")
    for name, s in stages.items():
        print(f"  {name:58s} {s:7.2f}  {100 * s / rep.seconds:5.1f}%")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
