"""The status and history tables: written directly where rich would print them verbatim, and
exactly as rich prints them, line by line, on a terminal or not."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from atmos_tasks import render


def through_rich(lines: list[str]) -> None:
    out = render.console()
    for line in lines:
        out.print(line)


def status_data() -> dict[str, Any]:
    def entry(**changes: Any) -> dict[str, Any]:
        base = {
            "git_sha": "a" * 40,
            "deployed_at": "2025-01-23T15:30:00Z",
            "deployed_by": "ci@example.com",
            "status": "success",
            "type": "terraform",
            "tag": "atmos/deployments/api/dev/ecr%2Fapi/2025-01-23T15-30-00Z",
            "inputs_hash": "b" * 64,
            "signature": {"status": "unverified", "reason": "not signed"},
        }
        return {**base, **changes}

    return {
        "api": {
            "dev": {
                "ecr/api": entry(),
                "ecs/service-api": entry(
                    status="failed",
                    last_attempt={
                        "status": "failed",
                        "git_sha": "c" * 40,
                        "timestamp": "2025-01-24T00:00:00Z",
                    },
                ),
                "web": entry(
                    type="container",
                    health={
                        "state": "healthy",
                        "shown": "✓ healthy (2/2)",
                        "endpoints": {"r1": "127.0.0.1:8080"},
                    },
                ),
            },
            "prod": {"ecr/api": entry(signature={"status": "verified", "by": "alice"}, deployed_by=None)},
        },
        "db": {"dev": {"rds": entry(git_sha=None, status="unknown", deployed_at=None)}},
    }


ODD = [
    "[red]x[/]",
    "[red]unclosed",
    "[bold]",
    "a:smile:b",
    "back\\slash",
    "tab\there",
    "bell\x07",
    "[",
    "]",
    "é → ✓",
]


def variants() -> list[dict[str, Any]]:
    found = [status_data()]
    for odd in ODD:
        data = copy.deepcopy(status_data())
        data["api"]["dev"]["ecr/api"]["deployed_by"] = odd
        found.append(data)
    return found


@pytest.mark.parametrize("terminal", ["", "1", "0"])
@pytest.mark.parametrize("data", variants())
def test_status_table_prints_what_rich_prints(
    data: dict[str, Any], terminal: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    if terminal:
        monkeypatch.setenv("TTY_COMPATIBLE", terminal)
    else:
        monkeypatch.delenv("TTY_COMPATIBLE", raising=False)  # capsys: not a terminal
    lines: list[str] = []
    with monkeypatch.context() as patched:
        patched.setattr(render, "print_markup", lines.extend)
        render._status_table(data, "")
    through_rich(lines)
    expected = capsys.readouterr().out
    render.print_markup(lines)
    assert capsys.readouterr().out == expected
    if terminal == "1":
        assert "\x1b[" in expected  # styled: the spans went through rich


def test_history_table_prints_what_rich_prints(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rollout = {
        "timestamp": "2025-01-23T15:30:00Z",
        "git_sha": "a" * 40,
        "deployed_by": "ci@example.com",
        "status": "success",
        "signature": "unverified",
        "components": {"ecr/api": {"status": "success", "changes": "applied"}},
    }
    found = {
        "deployment": "api",
        "target": "dev",
        "rollouts": [
            rollout,
            {**rollout, "promoted_from": "staging", "signature": "verified", "signed_by": "alice"},
            {**rollout, "deployed_by": "a:b:c", "rollback_of": "d" * 40, "status": "rollback"},
        ],
    }
    for terminal in ("0", "1"):
        monkeypatch.setenv("TTY_COMPATIBLE", terminal)
        lines: list[str] = []
        with monkeypatch.context() as patched:
            patched.setattr(render, "print_markup", lines.extend)
            render._history_table(found)
        through_rich(lines)
        expected = capsys.readouterr().out
        render.print_markup(lines)
        assert capsys.readouterr().out == expected


def test_plain_output_does_not_import_rich() -> None:
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from atmos_tasks import render\n"
        "render.print_markup(['[bold]api[/] deployment status', '    x  [green]✓ success[/]'])\n"
        "assert 'rich' not in sys.modules, 'rich imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env={"PATH": ""})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "api deployment status\n    x  ✓ success\n"


# JSON for people and for tools


def test_json_is_indented_on_a_terminal_and_compact_in_a_pipe() -> None:
    import os

    leader, follower = os.openpty()
    with open(follower, "w") as terminal:
        assert render.pretty_json(terminal)
    os.close(leader)
    read, write = os.pipe()
    with open(write, "w") as pipe:
        assert not render.pretty_json(pipe)
    os.close(read)
    assert render.json_text({"a": [1]}, pretty=True) == '{\n  "a": [\n    1\n  ]\n}\n'
    assert render.json_text({"a": [1]}, pretty=False) == '{"a": [1]}\n'


# Tables: headers, measured columns, display names


def plain(lines: list[str]) -> list[str]:
    """Lines as they print without a terminal: markup tags gone."""
    return render._TAG.sub("", "\n".join(lines)).replace("\\[", "[").splitlines()


def test_columns_are_as_wide_as_their_widest_cell_and_a_capped_one_pushes_only_its_row() -> None:
    rows: list[Any] = [
        [("a.very.long.configuration.key.that.would.break.fixed.columns", ""), ("1", ""), ("2", "")],
        [("short", ""), ("git::./.sources/modules.git//alarms?ref=v1.2.5", ""), ("x", "")],
        [("mid.key", ""), ("3", "green"), ("4", "")],
    ]
    lines = plain(render.table_lines(("KEY", "FROM", "TO"), rows, indent="", caps={1: 10}))
    assert lines == [
        "KEY                                                           FROM  TO",
        "a.very.long.configuration.key.that.would.break.fixed.columns  1     2",
        "short" + " " * 57 + "git::./.sources/modules.git//alarms?ref=v1.2.5  x",
        "mid.key                                                       3     4",
    ]
    wide = plain(
        render.table_lines(("NAME", "N"), [[("名前", ""), ("1", "")], [("ab", ""), ("2", "")]], indent="")
    )
    assert wide == ["NAME  N", "名前  1", "ab    2"]  # two columns per wide character


def test_values_that_look_like_markup_are_printed_as_they_are(capsys: pytest.CaptureFixture[str]) -> None:
    render.print_markup(render.table_lines(("SUBJECT",), [[("[fix] the [red]thing[/] \\", "")]]))
    assert capsys.readouterr().out.splitlines()[1] == "  [fix] the [red]thing[/] \\"


def test_display_names_and_image_digests() -> None:
    assert render.display_name("terraform", "ecr/api") == "terraform/ecr/api"
    assert render.display_name(None, "ecr/api") == "ecr/api"
    assert render.image_digest("acme/api@sha256:" + "3f228ae0" * 8) == "sha256:3f228ae03f22"
    assert render.image_digest("localhost:5000/acme/api:src-123") == "localhost:5000/acme/api:src-123"
    assert render.image_digest(None) == ""


def test_status_has_headers_targets_in_the_answers_order_and_image_digests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = status_data()
    data["api"] = {t: data["api"][t] for t in ("prod", "dev")}  # as status orders them: promotion order
    data["api"]["dev"]["api"] = {
        **data["api"]["dev"]["ecr/api"],
        "type": "nixpack",
        "kind": "nixpack",
        "image": "acme/api@sha256:" + "3f" * 32,
    }
    lines: list[str] = []
    monkeypatch.setattr(render, "print_markup", lines.extend)
    render._status_table(data, "")
    shown = plain(lines)
    assert shown[2].split() == [
        "TARGET", "COMPONENT", "COMMIT", "IMAGE", "DEPLOYED", "STATUS", "BY", "SIGNATURE", "HEALTH"
    ]  # fmt: skip
    text = "\n".join(shown)
    assert re.findall(r"^  (\w+) ", text, re.M)[:3] == ["TARGET", "prod", "dev"]
    assert re.search(r"^ +nixpack/api +aaaaaaa  sha256:3f3f3f3f3f3f  ", text, re.M)
    assert any(" terraform/ecr/api " in line for line in shown) and not any(
        " ecr/api " in line for line in shown
    )
    assert any(line.strip() == "r1 → 127.0.0.1:8080" for line in shown)
    db = shown[shown.index("db deployment status") + 2 :]
    assert db[0].split() == ["TARGET", "COMPONENT", "COMMIT", "DEPLOYED", "STATUS", "BY", "SIGNATURE"]


def history_data() -> dict[str, Any]:
    return {
        "deployment": "api",
        "target": "prod",
        "rollouts": [
            {
                "timestamp": "2025-01-23T15:30:00Z",
                "git_sha": "a" * 40,
                "subject": "Serve on 9090",
                "deployed_by": "ci@example.com",
                "status": "success",
                "signature": "unverified",
                "promoted_from": "staging",
                "components": {
                    "ecr/api": {
                        "type": "terraform",
                        "kind": "terraform",
                        "status": "success",
                        "changes": "none",
                    },
                    "api": {"type": "nixpack", "kind": "nixpack", "status": "success", "changes": "applied"},
                },
            },
            {
                "timestamp": "2025-01-22T10:00:00Z",
                "git_sha": "b" * 40,
                "subject": None,
                "deployed_by": "ci@example.com",
                "status": "failed",
                "signature": "unverified",
                "components": {
                    "ecr/api": {
                        "type": "terraform",
                        "kind": "terraform",
                        "status": "failed",
                        "changes": "applied",
                    }
                },
            },
        ],
    }


def test_history_shows_subjects_and_one_line_per_component(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    monkeypatch.setattr(render, "print_markup", lines.extend)
    render._history_table(history_data())
    shown = plain(lines)
    assert shown[2].split() == ["WHEN", "COMMIT", "SUBJECT", "BY", "STATUS", "SIGNATURE", "NOTES"]
    assert shown[3].split() == ["COMPONENT", "STATUS", "CHANGES"]
    body = [line for line in shown[4:] if line.strip()]
    assert body[0].split() == [
        "2025-01-23", "15:30", "aaaaaaa", "Serve", "on", "9090", "ci@example.com", "✓", "success",
        "unverified", "promoted", "from", "staging",
    ]  # fmt: skip
    assert body[1].split() == ["nixpack/api", "✓", "success", "applied"]
    assert body[2].split() == ["terraform/ecr/api", "✓", "success", "none"]
    assert body[3].split()[2:4] == ["bbbbbbb", "-"]  # a commit this repository lacks has no subject
    assert body[4].split() == ["terraform/ecr/api", "✗", "failed", "applied"]
    assert body[5].strip() == "Showing 2 rollout(s)"


def diff_data() -> dict[str, Any]:
    return {
        "deployment": "api",
        "from": {
            "label": "prod",
            "target": "prod",
            "git_sha": "a" * 40,
            "subject": "First",
            "deployed_at": None,
        },
        "to": {
            "label": "staging",
            "target": "staging",
            "git_sha": "b" * 40,
            "subject": "Second",
            "deployed_at": None,
        },
        "commits": {"behind": 1, "ahead": 0},
        "components": {
            "api": {
                "kind": "nixpack",
                "from": {"git_sha": "a" * 40, "image": "acme/api@sha256:" + "1" * 64},
                "to": {"git_sha": "b" * 40, "image": "acme/api@sha256:" + "2" * 64},
                "changed": True,
            },
            "ecr/api": {
                "kind": "terraform",
                "from": None,
                "to": {"git_sha": "b" * 40, "image": None},
                "changed": True,
            },
            "same": {
                "kind": "terraform",
                "from": {"git_sha": "c" * 40},
                "to": {"git_sha": "c" * 40},
                "changed": False,
            },
        },
        "configuration": [
            {"key": "context.cpu", "from": 1024, "to": 768, "change": "decreased"},
            {
                "key": "ecs/service-api.vars.deployment_minimum_healthy_percent",
                "component": "ecs/service-api",
                "kind": "terraform",
                "from": 50,
                "to": 100,
                "change": "increased",
            },
            {"key": "x.vars.flag", "from": None, "to": True, "change": "added"},
        ],
        "code": {
            "commits": 1,
            "files_changed": 2,
            "added": 3,
            "deleted": 1,
            "files": [
                {"path": "stacks/catalog/ecs/taskdef-api.yaml", "added": 3, "deleted": 1},
                {"path": "services/api/logo.png", "added": None, "deleted": None},
            ],
            "log": [{"git_sha": "b" * 40, "subject": "Second", "side": "to"}],
            "paths": ["deployments/api.yaml", "services/api", "stacks/catalog/ecs/taskdef-api.yaml"],
        },
    }


def test_diff_columns_are_measured_and_code_lists_commits_and_files() -> None:
    shown = plain(render.diff_lines(diff_data()))
    text = "\n".join(shown)
    assert "    SIDE     COMMIT   SUBJECT  DEPLOYED" in shown or "    SIDE     COMMIT   SUBJECT" in shown
    assert "    prod     aaaaaaa  First" in shown and "    staging  bbbbbbb  Second" in shown
    assert "    prod is ↓ 1 commit(s) behind staging" in shown
    assert "    COMPONENT          prod                         staging" in shown
    assert "    nixpack/api        aaaaaaa sha256:111111111111  bbbbbbb sha256:222222222222" in shown
    assert "    terraform/ecr/api  — (not deployed)             bbbbbbb" in shown
    assert "terraform/same" not in text  # unchanged components are not listed
    key = "terraform/ecs/service-api.vars.deployment_minimum_healthy_percent"  # a component's display name
    assert f"    KEY{' ' * (len(key) - 1)}prod  staging  CHANGE" in shown
    assert f"    {key}  50    100      ↑ increased" in shown
    assert f"    context.cpu{' ' * (len(key) - len('context.cpu'))}  1024  768      ↓ decreased" in shown
    assert f"    x.vars.flag{' ' * (len(key) - len('x.vars.flag'))}  —     true     + added" in shown
    code = "  Code: 1 commit(s), 2 file(s) changed, +3/-1 lines"
    assert f"{code} (in the 3 path(s) api is configured and built from)" in shown
    assert "    bbbbbbb  Second   staging" in shown
    assert "    stacks/catalog/ecs/taskdef-api.yaml     +3       -1" in shown
    assert "    services/api/logo.png                  bin      bin" in shown
