"""``emolog download findingemo DIR``: fetch the FindingEmo images from their published URLs.

The core, ``download_images(urls, dest)``, takes a ``{rel_path: [url, ...]}`` table (the CLI
fills it from findingemo-light; tests pass a table pointing at a local server) and:

* runs in parallel threads; is resumable: an image already present is skipped (every write
  is atomic, so a present file is a complete file);
* tries an image's alternative URLs in turn, each with retries and exponential back-off for
  transient failures (connection errors, timeouts, HTTP 429/5xx); a 4xx moves on at once;
* optionally (off by default) tries an archived copy, ``archive_prefix + url``
  (Wayback Machine pattern ``https://web.archive.org/web/<time>if_/<url>``), after all
  original URLs failed;
* bounds every file in bytes (``max_bytes``) and wall time (``timeout`` seconds for the whole
  transfer, not just per socket read, so a server dripping one byte a second is cut off);
* accepts a body only if its content type is an image (or generic binary) and it decodes
  (``emolog.data.images.decode_image``), so HTML error pages and truncated bodies never land;
* writes ``dead_links.csv`` (``rel_path, url, error, image_ok``): every URL that failed, and
  images without any URL.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import requests
import urllib3
from tqdm import tqdm

from emolog.data.atomic import atomic_write_bytes, atomic_write_text
from emolog.data.images import DEFAULT_MAX_PIXELS, ImageRejected, decode_image
from emolog.data.paths import PathRejected, normalize_rel_path

ARCHIVE_PREFIX = "https://web.archive.org/web/2020if_/"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) emolog-downloader/0.1 (research; FindingEmo)"
_GENERIC_BINARY = {"application/octet-stream", "binary/octet-stream"}


class FetchError(Exception):
    """One failed attempt at one URL; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass
class FetchSettings:
    """Limits for one file: ``timeout`` seconds total, ``max_bytes`` bytes, ``retries`` extra
    attempts per URL after the first, sleeping ``backoff * 2**k`` seconds before retry k."""

    timeout: float = 30.0
    max_bytes: int = 25 * 1024 * 1024
    retries: int = 2
    backoff: float = 1.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    archive: bool = False
    archive_prefix: str = ARCHIVE_PREFIX


@dataclass
class ImageResult:
    rel_path: str
    status: str  # "downloaded" | "present" | "failed"
    url: str = ""  # the URL that worked
    errors: list[tuple[str, str]] = field(default_factory=list)  # (url, last error) per failed URL


@dataclass
class DownloadSummary:
    results: list[ImageResult]
    report_path: Path

    def counts(self) -> dict[str, int]:
        out = {"downloaded": 0, "present": 0, "failed": 0}
        for r in self.results:
            out[r.status] += 1
        return out


_local = threading.local()


def _session() -> requests.Session:
    # requests.Session is not documented as thread-safe: one per worker thread.
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
        _local.session.headers["User-Agent"] = USER_AGENT
    return _local.session


def fetch(url: str, s: FetchSettings) -> bytes:
    """The body of ``url`` if it is a decodable image within the limits, else ``FetchError``."""
    start = time.monotonic()
    try:
        resp = _session().get(url, stream=True, timeout=(min(s.timeout, 10.0), s.timeout))
    except requests.Timeout:
        raise FetchError("timeout connecting", retryable=True) from None
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema) as e:
        raise FetchError(f"bad URL: {type(e).__name__}", retryable=False) from None
    except requests.RequestException as e:
        raise FetchError(f"connection error: {type(e).__name__}", retryable=True) from None
    with resp:
        if resp.status_code != 200:
            transient = resp.status_code == 429 or resp.status_code >= 500
            raise FetchError(f"HTTP {resp.status_code}", retryable=transient)
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if not (ctype.startswith("image/") or ctype in _GENERIC_BINARY):
            raise FetchError(f"wrong content type: {ctype or 'none'}", retryable=False)
        length = resp.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > s.max_bytes:
            raise FetchError(f"too large: {length} bytes > {s.max_bytes}", retryable=False)
        buf = io.BytesIO()
        try:
            # read1 returns whatever has arrived (iter_content would block until a whole chunk
            # is in, so a drip-feeding server could hold a worker far past the time limit).
            while chunk := resp.raw.read1(65536, decode_content=True):
                buf.write(chunk)
                if buf.tell() > s.max_bytes:
                    raise FetchError(f"too large: more than {s.max_bytes} bytes", retryable=False)
                if time.monotonic() - start > s.timeout:
                    raise FetchError(f"too slow: not complete after {s.timeout:g} s", retryable=True)
        except urllib3.exceptions.ReadTimeoutError:
            raise FetchError(f"timeout: no data for {s.timeout:g} s", retryable=True) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
            # urllib3 enforces Content-Length: a body cut short lands here.
            raise FetchError(f"truncated body: {type(e).__name__}", retryable=True) from None
        except OSError as e:  # the read timeout / reset surfaces as a socket error
            raise FetchError(f"connection error while reading: {type(e).__name__}", retryable=True) from None
    data = buf.getvalue()
    try:
        decode_image(data, max_pixels=s.max_pixels)
    except ImageRejected as e:
        raise FetchError(f"not a usable image: {e.reason}", retryable=False) from None
    return data


def _candidate_urls(urls: Sequence[str], s: FetchSettings) -> list[str]:
    out = list(urls)
    if s.archive:
        out += [s.archive_prefix + u for u in urls if "web.archive.org" not in u]
    return out


def download_one(rel_path: str, urls: Sequence[str], dest: Path, s: FetchSettings) -> ImageResult:
    """Fetch one image to ``dest/rel_path`` trying each URL (with retries) in turn."""
    try:
        rel = normalize_rel_path(rel_path)
    except PathRejected as e:
        return ImageResult(rel_path, "failed", errors=[("", e.reason)])
    target = dest / rel
    if target.is_file() and target.stat().st_size > 0:
        return ImageResult(rel, "present")
    result = ImageResult(rel, "failed")
    if not urls:
        result.errors.append(("", "no URL"))
        return result
    for url in _candidate_urls(urls, s):
        last = ""
        for attempt in range(max(0, s.retries) + 1):
            try:
                data = fetch(url, s)
            except FetchError as e:
                last = str(e)
                if e.retryable and attempt < max(0, s.retries):
                    time.sleep(s.backoff * 2**attempt)
                    continue
                break
            atomic_write_bytes(target, data)
            result.status, result.url = "downloaded", url
            return result
        result.errors.append((url, last))
    return result


def download_images(
    urls: Mapping[str, Sequence[str]],
    dest: str | Path,
    workers: int = 8,
    settings: FetchSettings | None = None,
    limit: int | None = None,
    progress: bool = True,
    report_name: str = "dead_links.csv",
) -> DownloadSummary:
    """Download every image of ``urls`` (``{rel_path: [url, ...]}``) under ``dest``.

    ``limit`` takes the first N rel_paths in sorted order (deterministic). Returns per-image
    results; writes ``dest/report_name`` (rel_path, url, error, image_ok).
    """
    s = settings or FetchSettings()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    items = sorted(urls.items())
    if limit is not None:
        items = items[:limit]
    results: list[ImageResult] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(download_one, rel, list(u), dest, s) for rel, u in items]
        for fut in tqdm(
            as_completed(futures), total=len(futures), desc="downloading", unit="img", disable=not progress
        ):
            results.append(fut.result())
    results.sort(key=lambda r: r.rel_path)
    report = dest / report_name
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["rel_path", "url", "error", "image_ok"])
    for r in results:
        for url, err in r.errors:
            w.writerow([r.rel_path, url, err, int(r.status != "failed")])
    atomic_write_text(report, buf.getvalue())
    return DownloadSummary(results, report)


def findingemo_url_table() -> dict[str, list[str]]:
    """Every annotated FindingEmo image with its URLs (an empty list where none is known)."""
    from emolog.data.findingemo import image_urls, load_annotations

    urls = image_urls()
    table = {normalize_rel_path(p): [] for p in load_annotations()["image_path"]}
    for rel in table:
        table[rel] = urls.get(rel, [])
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=["findingemo"], help="which data set (only findingemo)")
    parser.add_argument("dest", type=Path, help="folder to put the images in (the data root)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by path)")
    parser.add_argument("--workers", type=int, default=8, help="parallel downloads (default 8)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per file, whole transfer (default 30)")
    parser.add_argument(
        "--max-bytes", type=int, default=25 * 1024 * 1024, help="largest file accepted (default 25 MiB)"
    )
    parser.add_argument("--retries", type=int, default=2, help="extra attempts per URL on transient errors")
    parser.add_argument(
        "--archive", action="store_true", help="after the original URLs fail, try an archived copy (web.archive.org)"
    )
    parser.add_argument("--archive-prefix", default=ARCHIVE_PREFIX, help="prefix of the archived-copy URL")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    s = FetchSettings(
        timeout=args.timeout,
        max_bytes=args.max_bytes,
        retries=args.retries,
        archive=args.archive,
        archive_prefix=args.archive_prefix,
    )
    table = findingemo_url_table()
    summary = download_images(
        table, args.dest, workers=args.workers, settings=s, limit=args.limit, progress=not args.quiet
    )
    c = summary.counts()
    print(
        f"images: {len(summary.results)}; downloaded {c['downloaded']}, already present "
        f"{c['present']}, failed {c['failed']}; dead links: {summary.report_path}"
    )
    if c["failed"]:
        print(
            "FindingEmo images are from the public web and many links have died; "
            "the index marks absent images as 'missing file'.",
            file=sys.stderr,
        )
    return 0
