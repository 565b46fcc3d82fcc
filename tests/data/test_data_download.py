"""The downloader against a local HTTP server on 127.0.0.1 (no other host is ever contacted)."""

import csv
import io
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from helpers.data_files import small
from emolog.cli import main
from emolog.data.download import FetchError, FetchSettings, download_images, fetch, findingemo_url_table
from emolog.data.images import load_image


def _jpeg(arr) -> bytes:
    buf = io.BytesIO()
    small(arr, 64).save(buf, "JPEG", quality=90)
    return buf.getvalue()


GOOD = _jpeg(skdata.astronaut())
OTHER = _jpeg(skdata.chelsea())


class Handler(BaseHTTPRequestHandler):
    hits: Counter = Counter()
    lock = threading.Lock()

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, code, body=b"", ctype="image/jpeg", length=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with self.lock:
            self.hits[self.path] += 1
            n = self.hits[self.path]
        p = self.path
        if p == "/good.jpg":
            self._send(200, GOOD)
        elif p == "/other.jpg":
            self._send(200, OTHER, ctype="application/octet-stream")
        elif p == "/missing.jpg":
            self._send(404, b"not found", ctype="text/html")
        elif p == "/page.jpg":
            self._send(200, b"<html>this image was moved</html>", ctype="text/html")
        elif p == "/flaky.jpg":  # fails twice, then works: retries with back-off must get it
            self._send(503, b"busy", "text/plain") if n <= 2 else self._send(200, GOOD)
        elif p == "/truncated-body.jpg":  # promises more bytes than it sends, then hangs up
            self._send(200, GOOD[: len(GOOD) // 2], length=len(GOOD))
            self.close_connection = True
        elif p == "/truncated-image.jpg":  # a complete response carrying half a JPEG
            self._send(200, GOOD[: len(GOOD) // 2])
        elif p == "/slow.jpg":  # drips the body, slower than the per-file time limit
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(GOOD)))
            self.end_headers()
            try:
                for k in range(0, len(GOOD), 200):
                    self.wfile.write(GOOD[k : k + 200])
                    self.wfile.flush()
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif p == "/huge.jpg":
            self._send(200, GOOD + b"\0" * 50_000)
        elif p.startswith("/archive/"):  # our stand-in for web.archive.org
            self._send(200, OTHER) if p.endswith("/gone.jpg") else self._send(404, b"", "text/html")
        else:
            self._send(404, b"", "text/html")


@pytest.fixture()
def server():
    Handler.hits = Counter()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _settings(base, **kw):
    opts = dict(timeout=0.5, max_bytes=40_000, retries=2, backoff=0.01, archive_prefix=f"{base}/archive/")
    opts.update(kw)
    return FetchSettings(**opts)


def _report(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_downloads_with_alternatives_retries_and_limits(server, tmp_path):
    table = {
        "/Run_1/a.jpg": [f"{server}/missing.jpg", f"{server}/page.jpg", f"{server}/good.jpg"],
        "/Run_1/b..jpg": [f"{server}/flaky.jpg"],
        "/Run_1/c.jpg": [f"{server}/truncated-body.jpg", f"{server}/other.jpg"],
        "/Run_2/d.jpg": [f"{server}/truncated-image.jpg", f"{server}/slow.jpg", f"{server}/huge.jpg"],
        "/Run_2/e.jpg": [],
        "/Run_2/f.jpg": ["file:///etc/passwd"],
        "/../escape.jpg": [f"{server}/good.jpg"],
    }
    summary = download_images(table, tmp_path, workers=3, settings=_settings(server), progress=False)
    status = {r.rel_path: r.status for r in summary.results}
    assert status == {
        "Run_1/a.jpg": "downloaded",
        "Run_1/b..jpg": "downloaded",
        "Run_1/c.jpg": "downloaded",
        "Run_2/d.jpg": "failed",
        "Run_2/e.jpg": "failed",
        "Run_2/f.jpg": "failed",
        "/../escape.jpg": "failed",
    }
    assert (tmp_path / "Run_1/a.jpg").read_bytes() == GOOD
    assert (tmp_path / "Run_1/b..jpg").read_bytes() == GOOD
    assert (tmp_path / "Run_1/c.jpg").read_bytes() == OTHER
    assert load_image(tmp_path / "Run_1/c.jpg").size == (64, 42)
    assert not (tmp_path / "Run_2/d.jpg").exists() and not (tmp_path.parent / "escape.jpg").exists()
    assert not list(tmp_path.rglob("*.part"))  # no half-written files left behind
    assert Handler.hits["/flaky.jpg"] == 3 and Handler.hits["/missing.jpg"] == 1  # 404 is not retried
    assert Handler.hits["/truncated-image.jpg"] == 1  # an undecodable body is final

    errors = {(r["rel_path"], r["url"].rsplit("/", 1)[-1]): r["error"] for r in _report(summary.report_path)}
    assert errors[("Run_1/a.jpg", "missing.jpg")] == "HTTP 404"
    assert errors[("Run_1/a.jpg", "page.jpg")] == "wrong content type: text/html"
    assert errors[("Run_1/c.jpg", "truncated-body.jpg")].startswith("truncated body")
    assert errors[("Run_2/d.jpg", "truncated-image.jpg")].startswith("not a usable image: truncated image")
    assert errors[("Run_2/d.jpg", "slow.jpg")].startswith("too slow")
    assert errors[("Run_2/d.jpg", "huge.jpg")].startswith("too large")
    assert errors[("Run_2/e.jpg", "")] == "no URL"
    assert errors[("Run_2/f.jpg", "passwd")] == "bad URL: InvalidSchema"  # only http(s) is fetched
    assert errors[("/../escape.jpg", "")].startswith("path escapes data root")
    image_ok = {r["rel_path"]: r["image_ok"] for r in _report(summary.report_path)}
    assert image_ok["Run_1/a.jpg"] == "1" and image_ok["Run_2/d.jpg"] == "0"


def test_resume_skips_complete_files_and_limit_is_deterministic(server, tmp_path):
    table = {f"/x/{k}.jpg": [f"{server}/good.jpg"] for k in range(5)}
    first = download_images(table, tmp_path, workers=2, settings=_settings(server), limit=3, progress=False)
    assert sorted(r.rel_path for r in first.results) == ["x/0.jpg", "x/1.jpg", "x/2.jpg"]
    assert Handler.hits["/good.jpg"] == 3
    again = download_images(table, tmp_path, workers=2, settings=_settings(server), progress=False)
    assert again.counts() == {"downloaded": 2, "present": 3, "failed": 0}
    assert Handler.hits["/good.jpg"] == 5
    assert _report(again.report_path) == []


def test_archive_fallback_is_off_by_default_and_tried_last(server, tmp_path):
    table = {"/gone.jpg": [f"{server}/gone.jpg"]}
    off = download_images(table, tmp_path / "off", settings=_settings(server), progress=False)
    assert off.counts()["failed"] == 1 and not any("/archive/" in p for p in Handler.hits)
    on = download_images(table, tmp_path / "on", settings=_settings(server, archive=True), progress=False)
    assert on.results[0].status == "downloaded"
    assert on.results[0].url == f"{server}/archive/{server}/gone.jpg"
    assert np.asarray(Image.open(tmp_path / "on/gone.jpg")).shape == (42, 64, 3)


def test_a_drip_fed_body_is_cut_off_at_the_time_limit(server):
    # "too slow" is raised only while the body is still arriving: the whole body takes about
    # 1.5 s, so the fetch gave up before it (how promptly is a matter of load, not asserted)
    with pytest.raises(FetchError, match="too slow: not complete after 0.3 s"):
        fetch(f"{server}/slow.jpg", _settings(server, timeout=0.3))


def test_findingemo_url_table_and_cli_without_network(tmp_path, capsys):
    table = findingemo_url_table()
    assert len(table) == 25869 and sum(not u for u in table.values()) == 258
    with pytest.raises(SystemExit):
        main(["download", "--help"])
    assert "--max-bytes" in capsys.readouterr().out
    # --limit 0 exercises the command end to end without contacting any host.
    assert main(["download", "findingemo", str(tmp_path), "--limit", "0", "--quiet"]) == 0
    assert "images: 0" in capsys.readouterr().out
    assert (tmp_path / "dead_links.csv").read_text() == "rel_path,url,error,image_ok\n"
