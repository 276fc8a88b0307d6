"""The status and history tables: written directly where rich would print them verbatim, and
exactly as rich prints them, line by line, on a terminal or not."""

from __future__ import annotations

import copy
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
