"""The report's edges: Graphviz's layout, writing the page, what is shown without Graphviz."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from atmos_tasks import report
from atmos_tasks.report_page import dot_sources, inline_svg, promotion_dot, render_page
from tests.test_report_page import sample_report


def test_layout_draws_an_svg_with_a_node_per_target() -> None:
    deployment = sample_report()["deployments"][0]
    svg = report.layout(promotion_dot(deployment["promotion"], deployment["status"]))
    shown = str(inline_svg(svg, "promotion"))
    assert shown.startswith('<svg role="img" aria-label="promotion"')
    assert re.findall(r'<g id="[^"]*" class="node">\s*<title>([^<]*)</title>', shown) == [
        "dev",
        "staging",
        "prod",
    ]
    assert 'id="promotion:api_node1"' in shown
    assert ">1 approval(s), manual</text>" in shown


def test_pictures_without_graphviz_are_described_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report.shutil, "which", lambda name: None)
    data = sample_report()
    drawn, problems = report.pictures(data)
    assert problems == [report.DOT_MISSING]
    assert set(drawn) == set(dot_sources(data)) and set(drawn.values()) == {None}
    assert "<svg" not in render_page({**data, "problems": problems}, drawn)


def test_every_picture_is_drawn() -> None:
    data = sample_report()
    drawn, problems = report.pictures(data)
    assert problems == []
    assert all(svg is not None and "<svg" in svg for svg in drawn.values())
    html = render_page(data, drawn)
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "ids must be unique in the page"


def test_write_replaces_the_page_whole(tmp_path: Path) -> None:
    folder = tmp_path / "site" / "report"
    assert report.write(folder, "<p>one</p>") == folder / "index.html"
    (folder / "other.txt").write_text("kept")
    report.write(folder, "<p>two</p>")
    assert (folder / "index.html").read_text() == "<p>two</p>"
    assert sorted(p.name for p in folder.iterdir()) == ["index.html", "other.txt"]
