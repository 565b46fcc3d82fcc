"""The command line as one tool: `--help` imports none of the heavy libraries, errors are one line
with the documented exit code, `--debug` adds the traceback, Ctrl-C exits 130.

How fast `--help` is is measured, not asserted (a shared machine inflates any clock):
benchmarks/cli_startup.py prints each command's seconds beside the cost of importing torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from pathlib import Path

import pytest

from emolog import cli
from emolog.errors import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_MISSING, EmologError, InputError

ROOT = Path(cli.__file__).parents[1]

# What makes `--help` slow is importing these (torch alone takes seconds; scikit-learn and scipy
# most of a second): a command imports them inside run(), never at module level.
HEAVY = (
    "torch",
    "torchvision",
    "safetensors",
    "sklearn",
    "scipy",
    "matplotlib",
    "problog",
    "pysdd",
    "klay",
    "deepproblog",
    "transformers",
    "facenet_pytorch",
    "jinja2",
    "selenium",
)

# Run `main([cmd, "--help"])` in a fresh interpreter and report which top-level packages it imported.
_HELP_PROBE = """
import contextlib, io, json, sys
from emolog.cli import main
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    try:
        main([sys.argv[1], "--help"])
    except SystemExit as e:
        code = e.code
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules}),
                  "usage": buf.getvalue().startswith("usage: emolog " + sys.argv[1])}))
"""


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_help_imports_no_heavy_library(command):
    done = subprocess.run(
        [sys.executable, "-c", _HELP_PROBE, command],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["code"] == 0 and got["usage"], got
    heavy = sorted(set(HEAVY) & set(got["modules"]))
    assert not heavy, f"`emolog {command} --help` imports {heavy} (import them inside run())"


class _Boom:
    """A stand-in command module: raises what it is given from run()."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def add_arguments(self, parser) -> None:
        parser.add_argument("--x", default=None)

    def run(self, args) -> int:
        raise self.exc


@pytest.fixture
def boom(monkeypatch):
    def install(exc: BaseException) -> None:
        monkeypatch.setitem(cli.COMMANDS, "boom", ("boom_module", "test command"))
        monkeypatch.setitem(sys.modules, "boom_module", _Boom(exc))

    return install


def test_an_emolog_error_is_one_line_and_its_exit_code(boom, capsys):
    boom(InputError("data/x.csv:3: unknown label 'Zzyzx'\n(known: angry, happy)"))
    assert cli.main(["boom"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err == "emolog: error: data/x.csv:3: unknown label 'Zzyzx'; (known: angry, happy)\n"


def test_debug_anywhere_adds_the_traceback(boom, capsys):
    boom(EmologError("broken"))
    assert cli.main(["boom", "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("emolog: error: broken\n")


def test_missing_file_is_a_clear_line(boom, capsys):
    boom(FileNotFoundError(2, "No such file or directory", "/nope/index.csv"))
    assert cli.main(["boom"]) == EXIT_MISSING
    assert capsys.readouterr().err == "emolog: error: no such file or directory: /nope/index.csv\n"


def test_ctrl_c_exits_130_with_one_line(boom, capsys):
    boom(KeyboardInterrupt())
    assert cli.main(["boom"]) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "Traceback" not in err and "interrupted" in err and "kept" in err


def test_a_bug_keeps_its_traceback(boom):
    boom(ZeroDivisionError("a bug"))
    with pytest.raises(ZeroDivisionError):
        cli.main(["boom"])


def test_every_documented_exit_code_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 4 |", "| 5 |", "| 130 |", "--debug"):
        assert code in readme, code


def test_perception_option_names_are_the_registries():
    """explain/predict list the registry names without importing torch; they must not drift."""
    from emolog.runs import perception as po
    from emolog.perception.expression import RECOGNISERS
    from emolog.perception.faces import DETECTORS
    from emolog.perception.scene import BACKBONES

    assert po.BACKBONE_NAMES == tuple(sorted(BACKBONES))
    assert po.DETECTOR_NAMES == tuple(sorted(DETECTORS))
    assert po.RECOGNISER_NAMES == tuple(sorted(RECOGNISERS))


@pytest.fixture
def astronaut(tmp_path) -> Path:
    import skimage.data
    from PIL import Image

    path = tmp_path / "astronaut.jpg"
    Image.fromarray(skimage.data.astronaut()).save(path)
    return path


def test_explain_takes_the_cache_detector_options(astronaut, capsys):
    assert (
        cli.main(
            [
                "explain",
                str(astronaut),
                "--device",
                "cpu",
                "--detect-max-side",
                "256",
                "-K",
                "1",
                "--min-face-size",
                "30",
                "--face-threshold",
                "0.95",
            ]
        )
        == 0
    )
    assert "1 face(s) found" in capsys.readouterr().out
    assert cli.main(["explain", str(astronaut), "--device", "cpu", "--max-faces", "2"]) == 0


def test_explain_with_a_vit_of_unknown_labels_is_one_line(astronaut, tmp_path, capsys):
    from helpers.networks import save_tiny_vit

    vit = save_tiny_vit(tmp_path / "generic", tuple(f"LABEL_{i}" for i in range(7)))
    capsys.readouterr()  # the ViT's own save progress bar
    code = cli.main(
        [
            "explain",
            str(astronaut),
            "--device",
            "cpu",
            "--recogniser",
            "vit-face-expression",
            "--recogniser-weights",
            str(vit),
        ]
    )
    err = capsys.readouterr().err
    assert code == EXIT_INPUT and "Traceback" not in err
    assert err.startswith("emolog: error: vit-face-expression: class labels ['LABEL_0'") and err.count("\n") == 1
    assert cli.main(["explain", str(tmp_path / "nope.jpg")]) == EXIT_INPUT
    assert "cannot read image" in capsys.readouterr().err


def test_predict_usage_and_a_missing_run_are_one_line(tmp_path, capsys):
    from emolog.errors import EXIT_USAGE

    assert cli.main(["predict", str(tmp_path), "--out", str(tmp_path / "o")]) == EXIT_USAGE
    assert "either image files or --index" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path / "nope"), "x.jpg", "--out", str(tmp_path / "o")]) == EXIT_MISSING
    err = capsys.readouterr().err
    assert err.startswith("emolog: error: ") and "nope" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()  # nothing written for a command that could not start


def test_experiment_on_a_missing_data_directory_is_one_line(tmp_path, capsys):
    code = cli.main(
        ["experiment", "--data", "/nope", "--regimes", "logic-only", "--seeds", "0", "--out", str(tmp_path / "exp")]
    )
    err = capsys.readouterr().err
    assert code in (3, 4) and "Traceback" not in err
    assert err.startswith("emolog: error: ") and "/nope" in err and err.count("\n") == 1


def test_a_runs_recorded_perception_gives_the_perception_options(tmp_path):
    """explain/predict rebuild what the run recorded; an older run falls back to its cache's
    manifest and says so; options given on the command line win."""
    import argparse

    from emolog.runs import perception as po

    record = {
        "K": 2,
        "prelast": True,
        "fingerprint_hash": "abc",
        "backbone": {"name": "resnet18-places365", "weights_path": "/w/places.pth.tar"},
        "recogniser": {"name": "vit-face-expression", "weights_path": "/w/vit/model.safetensors", "face_margin": 0.2},
        "detector": {"name": "mtcnn", "min_face_size": 30, "threshold": 0.95, "max_side": 640},
    }
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"data": str(tmp_path / "D"), "perception": record}))
    got, where = po.recorded_perception(run)
    assert got == record and "config.json (perception)" in where
    parser = argparse.ArgumentParser()
    po.add_perception_arguments(parser)
    s = po.perception_settings(parser.parse_args(["--max-faces", "3"]), got)
    assert (s["backbone"], s["backbone_weights"], s["recogniser"], s["recogniser_weights"]) == (
        "resnet18-places365",
        "/w/places.pth.tar",
        "vit-face-expression",
        "/w/vit/model.safetensors",
    )
    assert (s["min_face_size"], s["face_threshold"], s["detect_max_side"], s["face_margin"]) == (30, 0.95, 640, 0.2)
    assert s["K"] == 3 and s["prelast"] is True  # the command line wins
    # a run from before runs recorded their perception: its cache's manifest, said so
    (run / "config.json").write_text(json.dumps({"data": str(tmp_path / "D")}))
    (tmp_path / "D" / "cache").mkdir(parents=True)
    fp = {"backbone": {"name": "efficientnet-lite0-imagenet"}, "detector": {"name": "haar", "max_side": None}, "K": 3}
    (tmp_path / "D" / "cache" / "manifest.json").write_text(json.dumps({"fingerprint": fp}))
    got, where = po.recorded_perception(run)
    assert got == fp and "does not record its perception" in where
    assert po.perception_settings(parser.parse_args([]), got)["detector"] == "haar"
    # a simulated run has no networks to rebuild: a clear error, unless a backbone is given
    with pytest.raises(po.RunInputError, match="simulated"):
        po.build_perception(po.perception_settings(parser.parse_args([]), {"simulated": True, "simulator": "sim-v3"}))


def test_an_old_config_key_is_one_warning_line_naming_the_new_key(tmp_path):
    """The command line shows emolog's own warnings as ``emolog: warning: ...``, not Python's
    ``file:line: Category:`` form (the run then fails on its missing data, as it should)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "emolog",
            "train",
            "--data",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "r"),
            "--set",
            "logic_lr=0.1",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    lines = done.stderr.splitlines()
    assert (
        "emolog: warning: config key 'logic_lr' is deprecated and will be removed in the next release: "
        "use 'logic.lr'" in lines
    )
    assert "DeprecatedKeyWarning" not in done.stderr and done.returncode == EXIT_MISSING
