"""Terraform's providers are reached over a socket in a folder private to the user, without the
per-start TLS handshakes (`provider_channel`); a user's own choice stands."""

from __future__ import annotations

import dataclasses
import re
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from atmos_tasks.kinds.terraform import KEEP_PROVIDER_TLS, TerraformExecutor, provider_channel
from tests.kinds.test_terraform_cached_plan import MODULE, job


def test_each_process_gets_a_private_socket_folder_removed_after() -> None:
    with provider_channel({"PATH": "/bin"}) as env:
        folder = Path(env["TMPDIR"])
        assert folder.is_dir() and folder.name.startswith("atmos-tf-")
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert env["TF_DISABLE_PLUGIN_TLS"] == "1" and env["PATH"] == "/bin"
        (folder / "plugin123").write_text("left by a killed provider")
    assert not folder.exists()
    with provider_channel({}) as other:
        assert other["TMPDIR"] != str(folder)


@pytest.mark.parametrize(
    "user", [{"TF_DISABLE_PLUGIN_TLS": ""}, {"TF_DISABLE_PLUGIN_TLS": "1"}, {KEEP_PROVIDER_TLS: "1"}]
)
def test_a_users_own_choice_stands(user: dict[str, str]) -> None:
    with provider_channel({"TMPDIR": "/var/tmp", **user}) as env:
        assert env == {"TMPDIR": "/var/tmp", **user}


def test_the_folder_is_below_the_component_s_temporary_folder_when_a_socket_path_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytest's own folders can be too long already (xdist): a short one of the system's.
    base = Path(tempfile.mkdtemp(prefix="pc-", dir="/tmp"))
    try:
        short = base / "t"
        short.mkdir()
        with provider_channel({"TMPDIR": str(short)}) as env:
            assert Path(env["TMPDIR"]).parent == short
        monkeypatch.chdir(base)
        with provider_channel({"TMPDIR": "t"}) as env:  # relative: Terraform runs elsewhere
            assert Path(env["TMPDIR"]).parent == short
    finally:
        shutil.rmtree(base)
    # A socket below it would pass 107 bytes, or it is no folder: Terraform's own way, TLS kept
    # (another folder, /tmp, might be a small tmpfs where provider downloads do not fit).
    deep = tmp_path / ("d" * 90)
    deep.mkdir()
    for unusable in (str(deep), str(tmp_path / "gone")):
        with provider_channel({"TMPDIR": unusable}) as env:
            assert env == {"TMPDIR": unusable}


@pytest.mark.terraform
def test_terraform_starts_its_providers_in_the_private_folder_without_tls(tmp_path: Path) -> None:
    (tmp_path / "module").mkdir()
    (tmp_path / "module/main.tf").write_text(MODULE)
    executor = TerraformExecutor()
    traced = dataclasses.replace(job(tmp_path, "1"), env={"TF_LOG": "debug"})
    assert executor.plan(traced, {}, {})["status"] == "planned"
    log = (Path(traced.workdir) / "atmos-plan.log").read_text()
    sockets = re.findall(r"plugin address: address=(\S+) network=unix", log)
    assert sockets, log[-2000:]
    for socket in sockets:
        assert Path(socket).parent.name.startswith("atmos-tf-") and not Path(socket).parent.exists()
    assert "automatic mTLS" not in log

    kept = dataclasses.replace(traced, env={"TF_LOG": "debug", KEEP_PROVIDER_TLS: "1"})
    assert executor.plan(kept, {}, {})["status"] == "planned"
    log = (Path(kept.workdir) / "atmos-plan.log").read_text()
    assert "configuring client automatic mTLS" in log
    assert not any("atmos-tf-" in s for s in re.findall(r"address=(\S+) network=unix", log))
