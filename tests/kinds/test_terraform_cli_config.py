"""The offline CLI configuration for bundled providers, and when the user's own wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from atmos_tasks.kinds.terraform import TerraformJob, cli_config, terraform_env


@pytest.fixture
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TF_CLI_CONFIG_FILE", raising=False)
    return tmp_path / "repo"


def test_without_a_user_config_the_bundled_providers_come_from_a_local_mirror(no_user_config: Path) -> None:
    path = cli_config(no_user_config)
    assert path == no_user_config / ".atmos/terraform/terraformrc"
    text = path.read_text()
    assert "filesystem_mirror" in text and '"registry.terraform.io/hashicorp/null"' in text
    mirrored = list(
        (no_user_config / ".atmos/terraform/mirror/registry.terraform.io/hashicorp/null").glob("*/*/*")
    )
    assert mirrored and all(p.resolve().is_file() for p in mirrored)


def test_a_config_variable_naming_a_missing_file_is_no_config(
    no_user_config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(tmp_path / "nowhere" / ".terraformrc"))
    assert cli_config(no_user_config) == no_user_config / ".atmos/terraform/terraformrc"


def test_the_users_own_config_wins(
    no_user_config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    named = tmp_path / "mine.tfrc"
    named.write_text('plugin_cache_dir = "/tmp"\n')
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(named))
    assert cli_config(no_user_config) is None
    monkeypatch.delenv("TF_CLI_CONFIG_FILE")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".terraformrc").write_text("")
    assert cli_config(no_user_config) is None
    assert not (no_user_config / ".atmos").exists()


def _job(root: Path, env: dict[str, str]) -> TerraformJob:
    return TerraformJob(
        kind="terraform",
        deployment="app",
        target="dev",
        component="a",
        root=str(root),
        workdir=str(root / ".atmos/workdir/app/dev/a"),
        vars={},
        env=env,
        static_key="",
        module_dir=str(root / "module"),
    )


def test_terraform_runs_each_step_as_one_process_unless_the_user_says_otherwise(
    no_user_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TF_FORK", raising=False)
    assert terraform_env(_job(no_user_config, {}))["TF_FORK"] == "0"
    assert terraform_env(_job(no_user_config, {"TF_FORK": "1"}))["TF_FORK"] == "1"
    monkeypatch.setenv("TF_FORK", "1")
    assert terraform_env(_job(no_user_config, {}))["TF_FORK"] == "1"
