"""A real headless Chromium for the browser tests, and what they check pages with.

Debian's `chromium` and `chromium-driver` (`.ci/browser-setup.sh` installs them, `.ci/run` calls
it), driven by selenium; axe-core from the npm registry, fetched once into pytest's cache folder.
A missing piece fails the test with what to run: a browser test that skips proves nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The machine has no network: without the background-networking flags Chromium keeps knocking on
# closed connections (updates, sync, field trials), which costs time and fills the log.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
AXE_VERSION = "4.14.1"
SETUP = "bash .ci/run installs what is missing (through .ci/browser-setup.sh)"


def start_chromium(profile: Path, width: int = 1280, height: int = 900) -> WebDriver:
    """Chromium with a fresh profile in `profile`, its console kept for `get_log('browser')`."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: the browser tests need Debian's chromium and "
            f"chromium-driver; {SETUP}",
            pytrace=False,
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install -e '.[test]' (as .ci/run does)", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(120)
    return driver


def axe_source(cache: Path) -> str:
    """axe-core's `axe.min.js`, from `npm pack` of the pinned version, kept in `cache`."""
    found = cache / f"axe-core-{AXE_VERSION}.min.js"
    if found.is_file():
        return found.read_text()
    from filelock import FileLock

    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / ".lock")):  # xdist workers: one fetches, the others wait and read
        if found.is_file():
            return found.read_text()
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(
                f"npm not found: the accessibility check fetches axe-core with it; {SETUP}", pytrace=False
            )
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            proc = subprocess.run(
                [npm, "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", tmp, "--silent"],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=600,
            )
            tarballs = sorted(Path(tmp).glob("axe-core-*.tgz"))
            if proc.returncode != 0 or not tarballs:
                pytest.fail(f"npm pack axe-core@{AXE_VERSION} failed:\n{proc.stderr}", pytrace=False)
            with tarfile.open(tarballs[0]) as tar:
                member = tar.extractfile("package/axe.min.js")
                assert member is not None
                text = member.read().decode()
            partial = Path(tmp) / found.name
            partial.write_text(text)
            os.replace(partial, found)
    return text


def axe_violations(driver: WebDriver, source: str, impacts: tuple[str, ...]) -> list[dict[str, Any]]:
    """axe-core's violations of the page loaded in `driver` with one of `impacts`."""
    driver.execute_script(source)
    violations = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations), e => done([{id: 'axe-error', impact: 'critical', help: String(e),"
        " nodes: []}]));"
    )
    return [v for v in violations if v.get("impact") in impacts]


def describe_violations(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['impact']}: {v['id']}: {v['help']} at {', '.join(str(n.get('target')) for n in v['nodes'][:5])}"
        for v in violations
    )


def blank_screenshot(png: bytes) -> str | None:
    """Why a screenshot looks blank, or None: it must have several colours and enough pixels
    that differ from its most common colour (the background)."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    if len(colours) < 16:
        return f"{len(colours)} colour(s) only"
    background = max(colours)[0]
    width, height = image.size
    share = 1 - background / (width * height)
    if share < 0.02:
        return f"only {share:.1%} of the pixels differ from the background"
    return None
