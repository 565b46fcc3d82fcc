"""`emolog report RUN_OR_EXPERIMENT_DIR [--out FILE.html]`: one self-contained HTML page
(figures embedded as base64 PNG) plus a Markdown summary (report.md next to it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jinja2

from emolog import __version__
from emolog.data.atomic import atomic_write_bytes, atomic_write_text
from emolog.report.inputs import ExperimentInputs, ReportInputError, load
from emolog.report.experiment_page import experiment_report
from emolog.report.run_page import run_report


def _mdcell(v: object) -> str:
    # a pipe or a newline inside a cell would break the Markdown table, a * would start emphasis
    return str(v).replace("|", "\\|").replace("*", "\\*").replace("\n", " ")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("emolog.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html.j2"]),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["mdcell"] = _mdcell
    return env


def build_report(src: str | Path, out: str | Path | None = None, images: str | Path | None = None) -> Path:
    """Render the report of a run or experiment directory ``src``.

    Writes ``out`` (default ``src/report.html``) and ``report.md`` in the same folder, both
    atomically, and returns the HTML path. ``images``: the folder index.csv's rel_paths point
    into, when it is neither recorded in the data provenance nor the data directory itself.
    Raises ``ReportInputError`` when ``src`` is neither a run nor an experiment directory.
    """
    src = Path(src)
    inp = load(src)
    ctx = experiment_report(inp, images) if isinstance(inp, ExperimentInputs) else run_report(inp, images)
    ctx.update(version=__version__, source=str(src))
    out = Path(out) if out else src / "report.html"
    env = _env()
    atomic_write_text(out, env.get_template("report.html.j2").render(**ctx))
    atomic_write_text(out.with_name("report.md"), env.get_template("report.md.j2").render(**ctx))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="RUN_OR_EXPERIMENT_DIR", help="a run or experiment directory")
    parser.add_argument("--out", metavar="FILE.html", help="HTML file to write (default: DIR/report.html); "
                        "report.md is written next to it")
    parser.add_argument("--images", metavar="DIR", help="image root for the gallery of real photos, "
                        "when index.csv's paths are not relative to the data directory")
    parser.add_argument("--screenshot", metavar="FILE.png", help="also open the page in headless Chromium "
                        "at 1280 px, save a full-page screenshot and fail on console errors or broken images")


def run(args: argparse.Namespace) -> int:
    try:
        path = build_report(args.source, args.out, args.images)
    except ReportInputError as e:
        print(f"emolog report: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} and {path.with_name('report.md')}")
    return screenshot(path, args.screenshot) if args.screenshot else 0


def screenshot(html: Path, png: str | Path) -> int:
    """Check ``html`` in headless Chromium and save its screenshot; 1 when the page is broken."""
    from emolog.report.browser import BrowserError, check_page
    try:
        check = check_page(html)
    except BrowserError as e:
        print(f"emolog report: {e}", file=sys.stderr)
        return 1
    atomic_write_bytes(png, check.screenshot)
    broken = [i["alt"] for i in check.images if i["naturalWidth"] <= 0]
    for problem in check.errors + [f"image not decoded: {b}" for b in broken]:
        print(f"emolog report: {problem}", file=sys.stderr)
    print(f"wrote {png} ({len(check.images)} figures, {len(check.errors)} console errors)")
    return 1 if check.errors or broken else 0
