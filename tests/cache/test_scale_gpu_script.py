"""benchmarks/cuda_throughput.py runs where a fresh GPU machine lacks this project's extras:
with facenet-pytorch, problog, pysdd, klay (klaycircuits), h5py, transformers, OpenCV and
scikit-image unimportable, it still builds its cache (here on the CPU, 4 photos)."""

from __future__ import annotations

import os
import subprocess
import sys
from helpers.paths import REPO

BLOCKED = ("facenet_pytorch", "problog", "pysdd", "klay", "h5py", "transformers", "cv2", "skimage")

RUNNER = f"""
import importlib.abc, runpy, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, Absent())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_throughput_script_needs_none_of_the_extras(tmp_path) -> None:
    cmd = [
        sys.executable,
        "-c",
        RUNNER,
        str(REPO / "benchmarks" / "cuda_throughput.py"),
        "--device",
        "cpu",
        "--n-photos",
        "4",
        "--workers",
        "1",
        "--batch-size",
        "4",
        "--json",
        str(tmp_path / "f.json"),
    ]
    out = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "planted boxes (facenet-pytorch not installed)" in out.stdout
    assert "built 4 rows (0 rejected)" in out.stdout and "ViT-B/16 forward" in out.stdout
