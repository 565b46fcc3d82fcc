"""Open a report in headless Chromium and check it: console errors, decoded images, the
numbers shown, and a screenshot.

Chromium is driven by Selenium through chromedriver (Debian's ``chromium`` and
``chromium-driver`` packages, the same version; `make chromium` installs them), never by a
hand-written protocol client. The browser starts with a fresh profile and no network-facing
background services, so a check neither reads nor leaves state behind.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from emolog.errors import EmologError, MissingError

FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--hide-scrollbars",
    "--mute-audio",
)

# Runs in the page after load (the WebDriver awaits the promise): waits until every <img>
# decoded, then collects what the test checks.
_PROBE = """
return (async () => {
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
})();
"""


class BrowserError(EmologError, RuntimeError):
    """Chromium or chromedriver is missing, died, or did not answer in time."""


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


def _find(env: str, names: tuple[str, ...], package: str) -> str:
    for cand in (os.environ.get(env), *names):
        if cand and shutil.which(cand):
            return shutil.which(cand)  # type: ignore[return-value]
    raise BrowserError(f"no {names[0]} found: install Debian's `{package}` (make chromium) or set {env}")


def find_chromium() -> str:
    """The Chromium binary: $EMOLOG_CHROMIUM, else chromium / chromium-browser."""
    return _find("EMOLOG_CHROMIUM", ("chromium", "chromium-browser"), "chromium")


def find_chromedriver() -> str:
    """chromedriver: $EMOLOG_CHROMEDRIVER, else chromedriver on PATH (Debian: /usr/bin/chromedriver)."""
    return _find("EMOLOG_CHROMEDRIVER", ("chromedriver",), "chromium-driver")


def check_page(html: str | Path, width: int = 1280, max_height: int | None = None, timeout: float = 30.0) -> PageCheck:
    """Load ``html`` (a local file) in headless Chromium at ``width`` CSS px and report what it saw.

    The screenshot covers the whole page (or its top ``max_height`` px), at 1 device pixel per
    CSS pixel. Raises ``BrowserError`` when Chromium or chromedriver is absent or a step takes
    longer than ``timeout`` seconds.
    """
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        raise MissingError("the browser check needs Selenium: pip install 'emolog[browser]'") from e
    url = Path(html).resolve().as_uri()
    chromium, chromedriver = find_chromium(), find_chromedriver()
    with tempfile.TemporaryDirectory(prefix="emolog-chromium-") as profile:
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900"):
            opts.add_argument(flag)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            # an explicit driver path: Selenium Manager (which would download one) never runs
            driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=opts)
        except WebDriverException as e:
            raise BrowserError(f"Chromium did not start through {chromedriver}: {e.msg}") from e
        try:
            driver.set_page_load_timeout(timeout)
            driver.set_script_timeout(timeout)
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            )
            driver.get(url)
            res = driver.execute_script(_PROBE)
            height = int(res["height"]) if max_height is None else min(int(res["height"]), max_height)
            shot = driver.execute_cdp_cmd(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                },
            )
            errors = [
                f"{e.get('source', 'console')}: {e.get('message')}"
                for e in driver.get_log("browser")
                if e.get("level") == "SEVERE"
            ]
        except WebDriverException as e:
            raise BrowserError(f"checking {html} in Chromium failed: {e.msg}") from e
        finally:
            driver.quit()
    png = base64.b64decode(shot["data"])
    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)
    return PageCheck(
        errors=errors,
        images=res["images"],
        values=res["values"],
        about=res["about"],
        sections=res["sections"],
        notes=res["notes"],
        screenshot=png,
        pixel_std=float(grey.std()),
    )
