"""Hostile YAML: deep nesting and alias bombs are bad input, refused fast and in little memory.

Each hostile file is read by a real loader in a process of its own (a crash of the loader must not
take the test run with it), which must exit with the loader's bad-input error naming the file and
line, in seconds and a small fraction of a gigabyte. The limits themselves are exact: a file at
the limit loads with both loaders, one level or one node more does not.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest

from atmos_tasks.errors import AtmosError
from atmos_tasks.yamlio import load_data, load_positioned
from tests.hostile import CASES, alias_bomb, deep_value, line_span, run_measured
from vendor_cache import ManifestError, read_vendor_yaml
from vendor_cache.yamllimits import MAX_ALIAS_NODES, MAX_DEPTH, _may_nest_too_deep, check_yaml_limits

SECONDS = 10  # the goal is 2 s; the bound leaves room for a slow, shared CI machine
PEAK_MB = 200

# One loader per entry point; each prints the error as the CLI would and exits with its code.
_READ = {
    "load_data": "from atmos_tasks.yamlio import load_data as read\n",
    "load_positioned": "from atmos_tasks.yamlio import load_positioned as read\n",
    "vendor.yaml": "from vendor_cache import read_vendor_yaml as load\nread = lambda path, _: load(path)\n",
    "lock": "from vendor_cache import read_lock as load\nread = lambda path, _: load(path)\n",
}
_MAIN = """
import sys
from pathlib import Path
from atmos_tasks.errors import AtmosError
from vendor_cache import VendorError
try:
    read(Path(sys.argv[1]), "shown.yaml")
except AtmosError as error:
    sys.exit(f"error: {error}")
except VendorError as error:
    sys.exit(f"error: {error}")
print("loaded")
"""
_HEAD = {
    "load_data": "",
    "load_positioned": "",
    "vendor.yaml": "apiVersion: atmos/v1\nkind: AtmosVendorConfig\nspec:\n  sources: []\n",
    "lock": "schema: 1\ncomponents: {}\n",
}


def _shown(loader: str, path: Path) -> str:
    """How the loader's message names the file and the line."""
    return {"load_data": "shown.yaml:", "load_positioned": "shown.yaml:", "vendor.yaml": f"{path}:"}.get(
        loader, "line "
    )


def _documents() -> dict[str, str]:
    found = {f"{style} {depth}": deep_value("x", style, depth) for style, depth in CASES}
    found["alias bomb"] = alias_bomb("x")
    found["recursive alias"] = "x: &loop\n  - a\n  - *loop\n"
    return found


DOCUMENTS = _documents()


@pytest.mark.parametrize("document", list(DOCUMENTS))
@pytest.mark.parametrize("loader", list(_READ))
def test_a_hostile_file_is_bad_input_in_seconds_and_little_memory(
    tmp_path: Path, loader: str, document: str
) -> None:
    body = DOCUMENTS[document]
    text = _HEAD[loader] + body
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    proc = run_measured([sys.executable, "-c", _READ[loader] + _MAIN, str(path)], cwd=tmp_path, timeout=60)
    assert proc.returncode in (1, 2) and proc.output.startswith("error: "), proc.output[-2000:]
    assert "Traceback" not in proc.output
    span = line_span(text, body)
    match = re.search(re.escape(_shown(loader, path)) + r"(\d+)", proc.output)
    assert match and int(match.group(1)) in span, proc.output
    assert ("nested deeper" if "alias" not in document else "alias") in proc.output
    assert proc.seconds < SECONDS and proc.peak_mb < PEAK_MB, (proc.seconds, proc.peak_mb)


def test_loader_errors_name_the_limit_and_how_to_fix_it(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a: 1\n" + deep_value("x", "flow-seq", MAX_DEPTH + 50))
    with pytest.raises(AtmosError) as caught:
        load_data(path, "stacks/deep.yaml")
    problem = caught.value.problems[0]
    # One level past the limit: the top-level mapping, then MAX_DEPTH lists after `x: `.
    assert str(problem.location) == f"stacks/deep.yaml:2:{len('x: ') + MAX_DEPTH}"
    assert problem.message == f"YAML nested deeper than {MAX_DEPTH} levels"
    assert problem.hint is not None and str(MAX_DEPTH) in problem.hint

    path.write_text("a: 1\n" + alias_bomb("x"))
    with pytest.raises(AtmosError) as caught:
        load_positioned(path, "stacks/deep.yaml")
    problem = caught.value.problems[0]
    assert problem.message == "YAML aliases expand to more than 100,000 nodes"
    assert problem.hint is not None and "100,000" in problem.hint

    vendor = tmp_path / "vendor.yaml"
    vendor.write_text(_HEAD["vendor.yaml"] + deep_value("x", "block-seq", 400))
    with pytest.raises(ManifestError, match=rf"{re.escape(str(vendor))}:6:\d+: YAML nested deeper"):
        read_vendor_yaml(vendor)


@pytest.mark.parametrize("style", ["flow-seq", "flow-map", "block-seq", "block-map"])
def test_the_depth_limit_is_exact_and_both_loaders_read_up_to_it(tmp_path: Path, style: str) -> None:
    path = tmp_path / "deep.yaml"
    # The top-level mapping is one level: its value may nest MAX_DEPTH - 1 more.
    path.write_text(deep_value("x", style, MAX_DEPTH - 1))
    data = load_data(path, "deep.yaml")
    assert load_positioned(path, "deep.yaml") == data
    levels, node = 1, data["x"]
    while isinstance(node, (list, dict)):
        levels += 1
        node = (node[0] if node else None) if isinstance(node, list) else node["a"]
    assert levels == MAX_DEPTH
    path.write_text(deep_value("x", style, MAX_DEPTH))
    with pytest.raises(AtmosError, match=f"nested deeper than {MAX_DEPTH} levels"):
        load_data(path, "deep.yaml")


def test_the_alias_limit_counts_the_nodes_aliases_add(tmp_path: Path) -> None:
    # A list of 999 scalars is 1,000 nodes; each alias of it adds 1,000.
    items = ", ".join(["v"] * 999)
    at_limit = f"base: &b [{items}]\nuses: [" + ", ".join(["*b"] * (MAX_ALIAS_NODES // 1000)) + "]\n"
    assert check_yaml_limits(at_limit) is None
    over = at_limit.replace("uses: [", "uses: [*b, ")
    exceeded = check_yaml_limits(over)
    assert exceeded is not None and exceeded.line == 2 and "100,000 nodes" in exceeded.message


def test_anchors_and_merge_keys_in_ordinary_use_load(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            defaults: &defaults
              region: us-east-1
              tags: &tags {team: platform}
            components:
              terraform:
                vpc:
                  vars:
                    <<: *defaults
                    extra_tags: *tags
            """
        )
    )
    data = load_data(path, "stack.yaml")
    assert data["components"]["terraform"]["vpc"]["vars"]["region"] == "us-east-1"
    assert data["components"]["terraform"]["vpc"]["vars"]["extra_tags"] == {"team": "platform"}


def test_an_alias_counts_with_the_depth_it_brings(tmp_path: Path) -> None:
    # The anchor nests 100 lists; the alias sits under 2 + 30 (the top level, `use`, 30 lists).
    assert MAX_DEPTH < 132
    text = "base: &deep " + "[" * 100 + "]" * 100 + "\nuse:\n  a: " + "[" * 30 + "*deep" + "]" * 30 + "\n"
    exceeded = check_yaml_limits(text)
    assert exceeded is not None and "through alias *deep" in exceeded.message and exceeded.line == 3


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    exceeded = check_yaml_limits("a: &x\n  b: [1, *x]\n")
    assert exceeded is not None and exceeded.message == "YAML alias *x is used inside &x"
    assert (exceeded.line, exceeded.column) == (2, 10)


@pytest.mark.parametrize(
    "text",
    [
        # Line breaks other than \n still start lines for the parser.
        "".join(" " * level + "a:\r" for level in range(300)) + " " * 300 + "a: 1\r",
        "".join(" " * level + "a:\u2028" for level in range(300)) + "1\n",
        # A byte order mark before compact notation on the first line.
        "\ufeff" + "- " * 300 + "1\n",
        # Compact notation after explicit keys and values, with wider separation.
        "? " + "- " * 300 + "1\n: v\n",
        "? a\n: " + "-   " * 300 + "1\n",
        # A sequence as a mapping's value at the mapping's own column: two levels per step.
        "".join(f"{'  ' * level}- a:\n" for level in range(150)) + "  " * 150 + "- 1\n",
        # Flow inside block inside flow-free lines, split over many lines.
        "a:\n" + "".join(f"  {'[' * 2}\n" for _ in range(150)) + "  " + "]" * 300 + "\n",
    ],
)
def test_every_way_of_nesting_deep_is_found(text: str) -> None:
    assert _may_nest_too_deep(text)
    exceeded = check_yaml_limits(text)
    assert exceeded is not None and "nested deeper" in exceeded.message, exceeded


def test_ordinary_files_are_not_parsed_twice() -> None:
    examples = Path(__file__).resolve().parent.parent / "examples"
    files = sorted([*examples.rglob("*.yaml"), *examples.rglob("*.yml")])
    assert len(files) > 5
    for path in files:
        text = path.read_text()
        assert not _may_nest_too_deep(text) and not ("&" in text and "*" in text), path


@pytest.mark.parametrize(("text", "line"), [("[[a]]: 1\n", 1), ("x:\n  {a: b}: 1\n", 2)])
def test_a_list_or_mapping_as_a_key_is_bad_input_at_its_line(tmp_path: Path, text: str, line: int) -> None:
    """Not a TypeError from deep inside the loader: exit 2 at the key's line."""
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    with pytest.raises(AtmosError) as caught:
        load_data(path, "stack.yaml")
    [problem] = caught.value.problems
    assert "key" in problem.message
    assert problem.location is not None and (problem.location.file, problem.location.line) == (
        "stack.yaml",
        line,
    )
