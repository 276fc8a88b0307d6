"""`atmos-tasks report --html DIR --serve`: the page of the README's tour, in a real headless
Chromium (tests/browser_env.py), and what it never shows."""

from __future__ import annotations

import io
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests import browser_env
from tests.conftest import Repo, isolated_env, make_repo

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

COMPONENTS = [
    "nixpack/api",
    "terraform/ecr/api",
    "terraform/ecs/service-api",
    "terraform/ecs/taskdef-api",
    "terraform/monitoring/alarms-api",
]
CSS = "css selector"  # selenium's By.CSS_SELECTOR: the module loads without selenium, to say it is missing
API = "section[aria-labelledby='api']"  # the api deployment's part of the page
NODES = "return [...arguments[0].querySelectorAll('g.node > title')].map(t => t.textContent)"
# With this set, the test also writes the screenshot the README shows (docs/report.png).
SCREENSHOT = "ATMOS_TASKS_REPORT_SCREENSHOT"


@pytest.fixture(scope="module")
def tour(example_template: Path, home: Path, tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """The example after the README tour's rollouts, as short as three recorded targets allow:
    dev, then staging promoted from dev, then prod promoted from staging with an approval."""
    repo = make_repo(example_template, tmp_path_factory.mktemp("report") / "repo", isolated_env(home))
    for args in (
        ("rollout:api:dev",),
        ("rollout:api:staging", "--promote-from", "dev"),
        ("rollout:api:prod", "--promote-from", "staging", "--approve"),
    ):
        proc = repo.doit(*args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return repo


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = browser_env.start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def axe(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("axe-core") if cache is not None else tmp_path_factory.getbasetemp() / "axe-core"
    return browser_env.axe_source(Path(folder))


def serving(proc: subprocess.Popen[str], seconds: float = 120) -> str:
    """The URL `report --serve` says it serves on, once it says so."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    said = ""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        if selector.select(timeout=1):
            line = proc.stdout.readline()
            said += line
            found = re.search(r"at (http://127\.0\.0\.1:\d+/) \(Ctrl-C stops\)", line)
            if found:
                return found.group(1)
    raise AssertionError(f"report --serve did not say where it serves:\n{said}")


def console_errors(driver: WebDriver) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def node_titles(driver: WebDriver, svg: WebElement) -> list[str]:
    """The names of a Graphviz SVG's nodes (each node's <title>)."""
    return list(driver.execute_script(NODES, svg))


def check_status_table(driver: WebDriver, repo: Repo) -> None:
    """Deployments × targets × components, as recorded: targets in promotion order, each
    component's commit and subject, image digest, deployer, status."""
    head = repo.head()
    subject = repo.git("log", "-1", "--format=%s", head)
    status = json.loads(repo.cli("status", "api", "--no-health", "--format", "json").stdout)["api"]
    digest = status["dev"]["api"]["image"].split("@", 1)[1][:19]  # sha256: and 12 hex digits
    table = driver.find_element(CSS, f"{API} table.status")
    rowgroups = [th.text for th in table.find_elements(CSS, "th[scope='rowgroup']")]
    assert rowgroups == ["dev", "staging", "prod"]
    rows = [
        (
            row.find_element(CSS, "th[scope='row']").text,
            [td.text for td in row.find_elements(CSS, "td")],
        )
        for row in table.find_elements(CSS, "tbody tr")
    ]
    assert [name for name, _cells in rows] == COMPONENTS * 3
    for name, (commit, subject_cell, image, deployed, state, signature) in rows:
        assert commit == head[:7] and subject_cell == subject
        assert image == (digest if name in ("nixpack/api", "terraform/ecs/taskdef-api") else "")
        assert deployed.endswith(" UTC\nby ada@example.com"), deployed
        assert state == "✓ success" and signature == "unverified"


def check_promotion_history_and_diff(driver: WebDriver, head: str) -> None:
    # The promotion graph: an SVG that Graphviz laid out and the browser drew, a node per target.
    svg = driver.find_element(CSS, f"{API} section.promotion svg")
    assert svg.get_attribute("role") == "img"
    assert svg.size["width"] > 100 and svg.size["height"] > 20
    assert node_titles(driver, svg) == ["dev", "staging", "prod"]
    assert f"staging\n{head[:7]}" in svg.text
    # History: a timeline per target, newest first; prod's rollout was promoted from staging.
    timelines = driver.find_elements(CSS, f"{API} ol.timeline")
    assert [t.get_attribute("aria-label") for t in timelines] == [
        f"Rollouts of api to {target}, newest first" for target in ("dev", "staging", "prod")
    ]
    assert head[:7] in timelines[2].text and "promoted from staging" in timelines[2].text
    # The diff across each promotion path: prod keeps the alarms module at 1.2.5.
    diffs = driver.find_element(CSS, f"{API} section.diffs").text
    assert "staging → prod\nWhat a promotion from staging would bring to prod" in diffs
    assert "terraform/monitoring/alarms-api.module.version" in diffs and "1.2.5" in diffs


def check_task_graphs(driver: WebDriver) -> None:
    """Opened as a reader would, each target's task graph is a picture too."""
    for summary in driver.find_elements(CSS, f"{API} section.tasks summary"):
        summary.click()
    svg = driver.find_element(CSS, "svg[aria-label='Task graph of api on prod']")
    assert svg.size["width"] > 100
    titles = node_titles(driver, svg)
    assert "apply:api:prod:ecr/api" in titles and "record:api:prod" in titles


def save_screenshot(png: bytes, path: Path) -> None:
    """The screenshot in 256 colours: the README's picture stays small."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)


@pytest.mark.terraform
def test_report_in_chromium(tour: Repo, chromium: WebDriver, axe: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    command = [sys.executable, "-m", "atmos_tasks.cli", "report", "--html", str(site), "--serve"]
    with (tmp_path / "serve.log").open("w") as log:
        server = subprocess.Popen(
            [*command, "--port", "0"],
            cwd=tour.path,
            env=tour.env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            chromium.get(serving(server))
            assert console_errors(chromium) == []
            assert chromium.title.startswith("What is deployed where")
            assert chromium.execute_script("return document.documentElement.lang") == "en"
            check_status_table(chromium, tour)
            check_promotion_history_and_diff(chromium, tour.head())

            png = chromium.get_screenshot_as_png()
            assert browser_env.blank_screenshot(png) is None, browser_env.blank_screenshot(png)
            if os.environ.get(SCREENSHOT):
                save_screenshot(png, Path(os.environ[SCREENSHOT]))

            check_task_graphs(chromium)
            ids = chromium.execute_script("return [...document.querySelectorAll('[id]')].map(e => e.id)")
            assert len(ids) == len(set(ids))
            violations = browser_env.axe_violations(chromium, axe, ("serious", "critical"))
            assert violations == [], browser_env.describe_violations(violations)
            assert console_errors(chromium) == []
        finally:
            server.send_signal(signal.SIGINT)  # Ctrl-C
            code = server.wait(timeout=30)
        assert server.stdout is not None
        assert code == 0 and server.stdout.read() == "Stopped\n"
    assert '"GET / HTTP/1.1" 200' in (tmp_path / "serve.log").read_text()
    assert sorted(p.name for p in site.iterdir()) == ["index.html"]


def test_report_masks_sensitive_values(repo: Repo, tmp_path: Path) -> None:
    """A value the manifest marks sensitive is shown as *** wherever it appears: here in the
    subject of the commit the page is read at."""
    line = '          service_name: "acme-{{ target.name }}-api"\n'
    marked = "        settings:\n          sensitive: [service_name]\n"
    repo.replace("deployments/api.yaml", line, line + marked)
    repo.commit("Name prod's alarms acme-prod-api")
    proc = repo.cli("report", "--html", str(tmp_path / "site"))
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "site" / "index.html").read_text()
    assert "acme-prod-api" not in page
    assert "Name prod's alarms ***" in page.replace("&#39;", "'")


def test_serve_refuses_a_port_in_use(repo: Repo, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = repo.cli("report", "--html", str(tmp_path / "site"), "--serve", "--port", str(port))
    assert proc.returncode == 2, proc.stderr
    assert f"cannot serve on 127.0.0.1:{port}" in proc.stderr and "--port" in proc.stderr
    assert (tmp_path / "site" / "index.html").is_file()
