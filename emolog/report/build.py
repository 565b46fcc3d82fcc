"""`emolog report RUN_OR_EXPERIMENT_DIR [--out FILE.html] [--allow-partial]`: one self-contained
HTML page (figures embedded as base64 PNG) plus a Markdown summary (report.md next to it).

A section whose code fails makes the command fail (exit 1, nothing written), so a broken
figure never hides as a note in an otherwise green report; so does an input that is present
but unusable (truncated, garbled, from a newer emolog, or not the file its run recorded:
exit 3, 5 or 4 as for any damaged file, naming it). ``--allow-partial`` writes the other
sections anyway, says so on the report's first line, and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from emolog.errors import EmologError

if TYPE_CHECKING:
    import jinja2


class ReportSectionError(EmologError, RuntimeError):
    """One or more report sections raised; ``failures`` lists them (``page.SectionFailure``)."""

    def __init__(self, failures: list) -> None:
        self.failures = failures
        super().__init__(
            f"report: {len(failures)} section(s) failed: "
            + "; ".join(map(str, failures))
            + " (nothing written; --allow-partial writes the other sections, --debug shows the traceback)"
        )


def _mdcell(v: object) -> str:
    # a pipe or a newline inside a cell would break the Markdown table, a * would start emphasis
    return str(v).replace("|", "\\|").replace("*", "\\*").replace("\n", " ")


def _env() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("emolog.report", "templates"),
        autoescape=jinja2.select_autoescape(["html.j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["mdcell"] = _mdcell
    return env


def partial_line(failures: list, broken: list[tuple[str, Exception]] = ()) -> str:
    """The first line of a report written with failed sections or unusable inputs."""
    parts = []
    if broken:
        parts.append(f"{len(broken)} unusable input(s): " + "; ".join(str(e) for _, e in broken))
    if failures:
        parts.append(f"{len(failures)} section(s) failed: " + "; ".join(map(str, failures)))
    return "PARTIAL REPORT (--allow-partial): " + "; ".join(parts)


def build_report(
    src: str | Path, out: str | Path | None = None, images: str | Path | None = None, allow_partial: bool = False
) -> Path:
    """Render the report of a run or experiment directory ``src``.

    Writes ``out`` (default ``src/report.html``) and ``report.md`` in the same folder, both
    atomically, and returns the HTML path. ``images``: the folder index.csv's rel_paths point
    into, when it is neither recorded in the data provenance nor the data directory itself.
    Raises ``ReportInputError`` when ``src`` is neither a run nor an experiment directory and
    ``ReportSectionError`` when a section fails, unless ``allow_partial`` (then the report's
    first line, ``partial_line``, names the failed sections).
    """
    # the page builders import pandas, scikit-learn and matplotlib: here, so `--help` stays instant
    from emolog import __version__
    from emolog.data.atomic import atomic_write_text
    from emolog.report.experiment_page import experiment_report
    from emolog.report.inputs import ExperimentInputs, broken_inputs, load
    from emolog.report.run_page import run_report

    src = Path(src)
    inp = load(src)
    broken = broken_inputs(inp)
    if broken and not allow_partial:  # before any figure is drawn: a damaged input is refused at once
        where, first = broken[0]
        more = f" (and {len(broken) - 1} more unusable input(s))" if len(broken) > 1 else ""
        first.args = (
            f"{first}{more}; nothing written (--allow-partial renders the rest and says so on the report's first line)",
        )
        raise first
    # a warning repeated per run or per figure (pandas, matplotlib, numpy) is printed once
    with warnings.catch_warnings():
        warnings.simplefilter("once")
        ctx = experiment_report(inp, images) if isinstance(inp, ExperimentInputs) else run_report(inp, images)
    failed = ctx.pop("failed")
    if failed and not allow_partial:
        raise ReportSectionError(failed) from failed[0].error
    ctx.update(version=__version__, source=str(src), partial=partial_line(failed, broken) if failed or broken else None)
    out = Path(out) if out else src / "report.html"
    env = _env()
    atomic_write_text(out, env.get_template("report.html.j2").render(**ctx))
    atomic_write_text(out.with_name("report.md"), env.get_template("report.md.j2").render(**ctx))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="RUN_OR_EXPERIMENT_DIR", help="a run or experiment directory")
    parser.add_argument(
        "--out",
        metavar="FILE.html",
        help="HTML file to write (default: DIR/report.html); report.md is written next to it",
    )
    parser.add_argument(
        "--images",
        metavar="DIR",
        help="image root for the gallery of real photos, when index.csv's paths are not relative to the data directory",
    )
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="write the report even when a section "
        "fails (its first line then says which), and exit 0; by default a failed section "
        "fails the command",
    )
    parser.add_argument(
        "--screenshot",
        metavar="FILE.png",
        help="also open the page in headless Chromium "
        "at 1280 px, save a full-page screenshot and fail on console errors or broken images",
    )


def run(args: argparse.Namespace) -> int:
    # ReportInputError and ReportSectionError are EmologErrors: the command line prints them
    path = build_report(args.source, args.out, args.images, allow_partial=args.allow_partial)
    first = path.with_name("report.md").read_text(encoding="utf-8").splitlines()[0]
    if first.startswith("PARTIAL REPORT"):
        print(first)
    print(f"wrote {path} and {path.with_name('report.md')}")
    return screenshot(path, args.screenshot) if args.screenshot else 0


def screenshot(html: Path, png: str | Path) -> int:
    """Check ``html`` in headless Chromium and save its screenshot; 1 when the page is broken."""
    from emolog.data.atomic import atomic_write_bytes
    from emolog.report.browser import check_page

    check = check_page(html)  # BrowserError (an EmologError) goes to the command line's handler
    atomic_write_bytes(png, check.screenshot)
    broken = [i["alt"] for i in check.images if i["naturalWidth"] <= 0]
    for problem in check.errors + [f"image not decoded: {b}" for b in broken]:
        print(f"emolog report: {problem}", file=sys.stderr)
    print(f"wrote {png} ({len(check.images)} figures, {len(check.errors)} console errors)")
    return 1 if check.errors or broken else 0
