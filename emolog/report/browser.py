"""Open a report in headless Chromium and check it: console errors, decoded images, the
numbers shown, and a screenshot.

Chromium is driven with the DevTools protocol over ``--remote-debugging-pipe`` (NUL-separated
JSON on file descriptors 3 and 4), so no websocket client and no network port is needed.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

FLAGS: tuple[str, ...] = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe",
)

# Runs in the page after load: waits until every <img> decoded, then collects what the test checks.
_PROBE = """
(async () => {
  await Promise.all([...document.images].map(i => i.decode().catch(() => null)));
  const values = {};
  for (const e of document.querySelectorAll('[id][data-value]'))
    values[e.id] = {value: e.dataset.value, text: e.textContent.trim()};
  return {
    images: [...document.images].map(i => ({alt: i.alt, naturalWidth: i.naturalWidth, complete: i.complete})),
    values: values,
    about: (document.getElementById('about') || {}).textContent || null,
    sections: [...document.querySelectorAll('section')].map(s => s.id),
    notes: [...document.querySelectorAll('.note')].map(n => n.textContent.trim()),
    height: document.documentElement.scrollHeight,
  };
})()
"""


class BrowserError(RuntimeError):
    """Chromium is missing, died, or did not answer in time."""


@dataclass
class PageCheck:
    """What the browser saw: console errors, the probe's result and the screenshot's pixels."""

    errors: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    values: dict[str, dict] = field(default_factory=dict)
    about: str | None = None
    sections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    pixel_std: float = 0.0  # std of the screenshot's grey levels (0 = blank page)


def find_chromium() -> str:
    """The Chromium binary: $EMOLOG_CHROMIUM, else chromium / chromium-browser / google-chrome."""
    for cand in (os.environ.get("EMOLOG_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if cand and shutil.which(cand):
            return shutil.which(cand)  # type: ignore[return-value]
    raise BrowserError("no Chromium found: install Debian's `chromium` (make chromium) or set EMOLOG_CHROMIUM")


class _Pipe:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, proc: subprocess.Popen, to_browser: int, from_browser: int) -> None:
        self.proc, self.out, self.inp = proc, to_browser, from_browser
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 20.0) -> dict:
        """Send one command and wait for its reply; events arriving meanwhile are kept."""
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.out, json.dumps(msg).encode() + b"\0")
        reply = self._until(lambda m: m.get("id") == self.next_id, timeout, method)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float = 20.0) -> dict:
        for k, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(k)
        return self._until(lambda m: m.get("method") == method, timeout, method, keep=False)

    def _until(self, match, timeout: float, what: str, keep: bool = True) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                m = json.loads(raw)
                if match(m):
                    return m
                self.events.append(m)
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"Chromium did not answer {what} within {timeout:.0f} s")
            ready, _, _ = select.select([self.inp], [], [], left)
            if ready:
                chunk = os.read(self.inp, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium exited while waiting for {what} (rc {self.proc.poll()})")
                self.buf += chunk


def _console_errors(events: list[dict]) -> list[str]:
    out = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.append(f"exception: {d.get('text')} {(d.get('exception') or {}).get('description', '')}".strip())
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}".strip())
    return out


def check_page(html: str | Path, width: int = 1280, max_height: int | None = None,
               timeout: float = 30.0) -> PageCheck:
    """Load ``html`` (a local file) in headless Chromium at ``width`` CSS px and report what it saw.

    The screenshot covers the whole page (or its top ``max_height`` px), at 1 device pixel per
    CSS pixel. Raises ``BrowserError`` when Chromium is absent or does not answer within
    ``timeout`` seconds per step.
    """
    url = Path(html).resolve().as_uri()
    to_r, to_w = os.pipe()      # we write commands, Chromium reads them on fd 3
    from_r, from_w = os.pipe()  # Chromium writes replies on fd 4

    def fds() -> None:  # in the child, before exec: put the pipe ends where Chromium expects them
        # via close-on-exec copies above 10 first, so that moving one end onto 3 cannot clobber
        # the other; dup2 makes 3 and 4 inheritable, every other descriptor Python opened is
        # close-on-exec (PEP 446), so Chromium inherits exactly these two
        hi_r = fcntl.fcntl(to_r, fcntl.F_DUPFD_CLOEXEC, 10)
        hi_w = fcntl.fcntl(from_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.dup2(hi_r, 3)
        os.dup2(hi_w, 4)

    with tempfile.TemporaryDirectory(prefix="emolog-chromium-") as profile:
        proc = subprocess.Popen([find_chromium(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=fds, close_fds=False)
        os.close(to_r)
        os.close(from_w)
        cdp = _Pipe(proc, to_w, from_r)
        try:
            target = cdp.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
            sid = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime", "Log", "Page"):
                cdp.send(f"{domain}.enable", session=sid)
            cdp.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=sid)
            cdp.send("Page.navigate", {"url": url}, session=sid, timeout=timeout)
            cdp.wait_event("Page.loadEventFired", timeout=timeout)
            probe = cdp.send("Runtime.evaluate", {"expression": _PROBE, "awaitPromise": True, "returnByValue": True},
                             session=sid, timeout=timeout)
            if "exceptionDetails" in probe:
                raise BrowserError(f"probe script failed: {probe['exceptionDetails'].get('text')}")
            res = probe["result"]["value"]
            height = int(res["height"]) if max_height is None else min(int(res["height"]), max_height)
            shot = cdp.send("Page.captureScreenshot",
                            {"format": "png", "captureBeyondViewport": True,
                             "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}},
                            session=sid, timeout=timeout)
            errors = _console_errors(cdp.events)
            try:
                cdp.send("Browser.close", timeout=5)
            except BrowserError:
                pass  # closing races the pipe's end; the process is reaped below either way
        finally:
            os.close(to_w)  # EOF on its command pipe makes Chromium exit, also after an error
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            os.close(from_r)
    png = base64.b64decode(shot["data"])
    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)
    return PageCheck(errors=errors, images=res["images"], values=res["values"], about=res["about"],
                     sections=res["sections"], notes=res["notes"], screenshot=png, pixel_std=float(grey.std()))
