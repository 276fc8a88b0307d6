"""included_paths / excluded_paths: doublestar globs over paths relative to the component root."""

from __future__ import annotations

import pytest

from vendor_cache.globs import glob_to_regex, path_filter


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("**/*.tf", "main.tf", True),
        ("**/*.tf", "modules/a/b/main.tf", True),
        ("**/*.tf", "main.tf.json", False),
        ("*.tf", "main.tf", True),
        ("*.tf", "modules/main.tf", False),
        ("modules/**", "modules/a/b.tf", True),
        ("modules/**", "other/a.tf", False),
        ("**/examples/**", "examples/x/main.tf", True),
        ("**/examples/**", "modules/vpc/examples/main.tf", True),
        ("a/**/b.tf", "a/b.tf", True),
        ("a/**/b.tf", "a/x/y/b.tf", True),
        ("a**.tf", "ab/c.tf", False),
        ("?.tf", "a.tf", True),
        ("?.tf", "ab.tf", False),
        ("[ab].tf", "b.tf", True),
        ("[!ab].tf", "b.tf", False),
        ("[!ab].tf", "c.tf", True),
        ("*.{tf,md}", "README.md", True),
        ("*.{tf,md}", "x.sh", False),
        ("{docs,examples}/**", "docs/a.md", True),
        ("./main.tf", "main.tf", True),
        ("a.b", "aXb", False),
        ("[unclosed", "[unclosed", True),
    ],
)
def test_doublestar_semantics(pattern: str, path: str, matches: bool) -> None:
    assert bool(glob_to_regex(pattern).fullmatch(path)) is matches


def test_include_then_exclude_and_directory_patterns_cover_their_contents() -> None:
    selected = path_filter(included=["**/*.tf", "**/*.md"], excluded=["**/examples", "**/providers.tf"])
    assert selected("main.tf")
    assert selected("modules/a/README.md")
    assert not selected("scripts/run.sh")
    assert not selected("providers.tf")
    assert not selected("examples/complete/main.tf")
    assert not selected("modules/a/examples/main.tf")


def test_no_patterns_select_everything() -> None:
    assert path_filter()("any/file.bin")
