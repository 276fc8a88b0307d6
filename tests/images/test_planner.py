"""Provider detection, derived phases, overrides, errors and plan identity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from atmos_tasks.images.errors import BuildError
from atmos_tasks.images.planner import (
    DEFAULT_BASE_IMAGES,
    BuildPlan,
    choose_builder,
    detect_provider,
    make_plan,
    needs_daemon,
    parse_settings,
)
from tests.images.conftest import APPS, AppFactory, write_tree

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("name", "provider"),
    [
        ("go", "go"),
        ("go-cmd", "go"),
        ("node", "node"),
        ("node-yarn", "node"),
        ("node-pnpm", "node"),
        ("python-requirements", "python"),
        ("python-pyproject", "python"),
        ("python-poetry", "python"),
        ("python-pipfile", "python"),
        ("rust", "rust"),
        ("rust-bins", "rust"),
        ("static", "staticfile"),
        ("static-public", "staticfile"),
    ],
)
def test_each_fixture_app_is_detected(name: str, provider: str) -> None:
    assert detect_provider(APPS / name) == provider
    plan = make_plan(APPS / name)
    assert plan.provider == provider
    assert plan.base_image.reference == DEFAULT_BASE_IMAGES[provider]
    assert plan.workdir == "/app"


@pytest.mark.parametrize(
    ("markers", "winner"),
    [
        (["go.mod", "package.json"], "go"),
        (["package.json", "requirements.txt"], "node"),
        (["requirements.txt", "Cargo.toml"], "python"),
        (["Cargo.toml", "index.html"], "rust"),
        (["pyproject.toml", "public/index.html"], "python"),
    ],
)
def test_detection_follows_nixpacks_order(tmp_path: Path, markers: list[str], winner: str) -> None:
    contents = {
        "go.mod": "module x\n",
        "package.json": "{}",
        "requirements.txt": "",
        "Cargo.toml": '[package]\nname = "x"\n',
        "index.html": "<p>hi</p>",
        "pyproject.toml": '[project]\nname = "x"\n',
        "public/index.html": "<p>hi</p>",
    }
    write_tree(tmp_path, {m: contents[m] for m in markers})
    assert detect_provider(tmp_path) == winner


def test_unknown_tree_names_what_was_looked_for() -> None:
    with pytest.raises(BuildError) as caught:
        make_plan(APPS / "unknown")
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert f"no provider matched {APPS / 'unknown'}" in message
    for marker in ("go.mod", "package.json", "requirements.txt", "pyproject.toml", "Pipfile", "Cargo.toml"):
        assert marker in message
    assert "index.html" in message and "public/" in message
    assert "settings.nixpack.dockerfile_escape" in message


def test_missing_or_non_directory_source_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="services/api does not exist") as caught:
        make_plan("services/api")
    assert caught.value.exit_code == 2
    (tmp_path / "file").write_text("x")
    with pytest.raises(BuildError, match="is not a directory"):
        detect_provider(tmp_path / "file")


# --- providers ----------------------------------------------------------------------------------


def test_go_builds_a_trimmed_static_binary_and_runs_it() -> None:
    plan = make_plan(APPS / "go")
    assert plan.install.cmds == ("go mod download",)
    assert plan.build.cmds == ("go build -trimpath -o /app/out .",)
    assert plan.start.cmd == ("/app/out",)
    assert plan.env == {"CGO_ENABLED": "0"}


def test_go_without_root_package_builds_the_single_cmd(app: AppFactory) -> None:
    assert make_plan(APPS / "go-cmd").build.cmds == ("go build -trimpath -o /app/out ./cmd/server",)
    tree = app("go-cmd")
    write_tree(tree, {"cmd/migrate/main.go": "package main\n"})
    with pytest.raises(BuildError, match=r"\(found migrate, server\); set settings.nixpack.build_cmd"):
        make_plan(tree)
    overridden = make_plan(
        tree, {"build_cmd": "go build -o /app/server ./cmd/server", "start_cmd": "/app/server"}
    )
    assert overridden.build.cmds == ("go build -o /app/server ./cmd/server",)
    assert overridden.start.cmd == ("/app/server",)


def test_node_npm_with_lock_uses_ci_and_runs_build_and_start_scripts() -> None:
    plan = make_plan(APPS / "node")
    assert plan.install.cmds == ("npm ci --include=dev",)
    assert plan.build.cmds == ("npm run build",)
    assert plan.start.cmd == ("npm", "start")
    assert plan.env == {"NODE_ENV": "production"}


def test_node_package_manager_from_lock_file_or_package_manager_field(app: AppFactory) -> None:
    yarn = make_plan(APPS / "node-yarn")
    assert yarn.install.cmds == ("yarn install --frozen-lockfile --production=false",)
    assert yarn.build.cmds == ()
    assert yarn.start.cmd == ("node", "worker.js")  # no start script: package.json "main"
    pnpm = make_plan(APPS / "node-pnpm")
    assert pnpm.install.cmds == ("corepack enable", "pnpm install --frozen-lockfile --production=false")
    assert pnpm.build.cmds == ("pnpm run build",)
    assert pnpm.start.cmd == ("pnpm", "start")

    no_lock = app("node")
    (no_lock / "package-lock.json").unlink()
    assert make_plan(no_lock).install.cmds == ("npm install --include=dev",)
    declared = app("node-yarn", "declared")
    package = json.loads((declared / "package.json").read_text())
    (declared / "package.json").write_text(json.dumps({**package, "packageManager": "pnpm@8.15.1"}))
    assert make_plan(declared).install.cmds[-1].startswith("pnpm install")


def test_node_without_start_is_an_error_unless_start_cmd_is_set(tmp_path: Path) -> None:
    write_tree(tmp_path, {"package.json": '{"scripts": {"build": "tsc"}}'})
    with pytest.raises(BuildError) as caught:
        make_plan(tmp_path)
    assert "no start command for the node app" in str(caught.value)
    assert "scripts.start and main in package.json, index.js" in str(caught.value)
    assert "settings.nixpack.start_cmd" in str(caught.value)
    assert make_plan(tmp_path, {"start_cmd": "node dist/main.js"}).start.cmd == ("node", "dist/main.js")


def test_node_package_json_must_be_json(tmp_path: Path) -> None:
    write_tree(tmp_path, {"package.json": "{ nope"})
    with pytest.raises(BuildError, match=r"package.json is not valid JSON"):
        make_plan(tmp_path)


def test_python_requirements_installs_into_a_venv_and_starts_app_py() -> None:
    plan = make_plan(APPS / "python-requirements")
    assert plan.install.cmds == ("python -m venv /opt/venv", "pip install --no-cache-dir -r requirements.txt")
    assert plan.build.cmds == ()
    assert plan.start.cmd == ("python", "app.py")
    assert plan.env["PYTHONUNBUFFERED"] == "1"
    assert plan.env["VIRTUAL_ENV"] == "/opt/venv"
    assert plan.env["PATH"].startswith("/opt/venv/bin:")


def test_python_pyproject_installs_the_project_and_starts_its_first_script() -> None:
    plan = make_plan(APPS / "python-pyproject")
    assert plan.install.cmds == ("python -m venv /opt/venv", "pip install --no-cache-dir .")
    assert plan.start.cmd == ("billing-server",)


def test_python_poetry_and_pipfile() -> None:
    poetry = make_plan(APPS / "python-poetry")
    assert poetry.install.cmds[-1] == "poetry install --only main --no-interaction --no-ansi"
    assert poetry.start.cmd == ("reports",)  # [tool.poetry.scripts]
    pipfile = make_plan(APPS / "python-pipfile")
    assert pipfile.install.cmds[-1] == "pipenv install --system --deploy"
    assert pipfile.start.cmd == ("python", "main.py")


def test_python_main_py_beats_app_py_and_nothing_is_an_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {"requirements.txt": "flask\n", "app.py": "", "main.py": ""})
    assert make_plan(tmp_path).start.cmd == ("python", "main.py")
    (tmp_path / "main.py").unlink()
    (tmp_path / "app.py").unlink()
    with pytest.raises(
        BuildError, match=r"looked for Procfile, \[project.scripts\] in pyproject.toml, main.py"
    ):
        make_plan(tmp_path)


def test_procfile_web_process_is_the_start_command_and_start_cmd_beats_it(app: AppFactory) -> None:
    tree = app("python-requirements")
    (tree / "Procfile").write_text("worker: python worker.py\nweb: gunicorn app:app --bind 0.0.0.0:8000\n")
    assert make_plan(tree).start.cmd == ("gunicorn", "app:app", "--bind", "0.0.0.0:8000")
    assert make_plan(tree, {"start_cmd": ["python", "app.py"]}).start.cmd == ("python", "app.py")


def test_rust_builds_release_and_starts_the_package_binary() -> None:
    plan = make_plan(APPS / "rust")
    assert plan.install.cmds == ()
    assert plan.build.cmds == ("cargo build --release --locked",)
    assert plan.start.cmd == ("/app/target/release/ingest",)
    bins = make_plan(APPS / "rust-bins")
    assert bins.build.cmds == ("cargo build --release",)  # no Cargo.lock: nothing to lock to
    assert bins.start.cmd == ("/app/target/release/toolbox-server",)


def test_rust_workspace_without_package_needs_start_cmd(tmp_path: Path) -> None:
    write_tree(tmp_path, {"Cargo.toml": '[workspace]\nmembers = ["a"]\n'})
    with pytest.raises(BuildError, match=r"no start command for the rust app.*\[\[bin\]\] name"):
        make_plan(tmp_path)


def test_staticfile_serves_the_folder_holding_index_html() -> None:
    root = make_plan(APPS / "static")
    assert root.start.cmd == ("busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/app")
    assert make_plan(APPS / "static-public").start.cmd[-1] == "/app/public"  # type: ignore[index]
    assert not needs_daemon(root)


def test_dockerfile_escape_uses_the_trees_dockerfile_and_its_final_base() -> None:
    plan = make_plan(APPS / "dockerfile", {"dockerfile_escape": True})
    assert plan.provider == "dockerfile"
    assert plan.dockerfile == "Dockerfile"
    assert plan.base_image.reference == "gcr.io/distroless/static-debian12"
    assert plan.base_image.digest == "sha256:6dcc833df2a475be1a3d7fc951de90ac91a2cb0be237c7578b88722e48f2e56f"
    assert needs_daemon(plan)
    # Without the escape the same tree is a Go app.
    assert make_plan(APPS / "dockerfile").provider == "go"


def test_dockerfile_escape_follows_stage_names_and_requires_the_file(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"build/Dockerfile": 'FROM node:20 AS deps\nRUN true\nFROM deps AS final\nCMD ["node"]\n'},
    )
    plan = make_plan(tmp_path, {"dockerfile_escape": True, "dockerfile": "build/Dockerfile"})
    assert plan.base_image.reference == "node:20"
    assert plan.dockerfile == "build/Dockerfile"
    with pytest.raises(BuildError, match=r"dockerfile_escape is set but .*/Dockerfile does not exist"):
        make_plan(tmp_path, {"dockerfile_escape": True})


def test_dockerfile_escape_rejects_phase_overrides() -> None:
    with pytest.raises(BuildError, match=r"settings.nixpack.start_cmd has no effect with dockerfile_escape"):
        make_plan(APPS / "dockerfile", {"dockerfile_escape": True, "start_cmd": "x"})


# --- overrides ----------------------------------------------------------------------------------


def test_install_and_build_overrides_accept_a_string_or_a_list() -> None:
    plan = make_plan(APPS / "node", {"install_cmd": "npm ci", "build_cmd": ["npm run lint", "npm run build"]})
    assert plan.install.cmds == ("npm ci",)
    assert plan.build.cmds == ("npm run lint", "npm run build")


def test_empty_install_and_build_overrides_make_a_copy_only_plan() -> None:
    plan = make_plan(APPS / "python-requirements", {"install_cmd": [], "build_cmd": ""})
    assert plan.install.cmds == () and plan.build.cmds == ()
    assert not needs_daemon(plan)


@pytest.mark.parametrize(
    ("start_cmd", "argv"),
    [
        ("node server.js --port 3000", ("node", "server.js", "--port", "3000")),
        ("'my app' --flag", ("my app", "--flag")),
        ("npm run migrate && npm start", ("/bin/sh", "-c", "npm run migrate && npm start")),
        ("PORT=3000 node server.js", ("/bin/sh", "-c", "PORT=3000 node server.js")),
        ("node $ENTRY", ("/bin/sh", "-c", "node $ENTRY")),
        (["node", "a b.js"], ("node", "a b.js")),
    ],
)
def test_start_cmd_override_becomes_exec_form_argv(start_cmd: str | list[str], argv: tuple[str, ...]) -> None:
    assert make_plan(APPS / "node", {"start_cmd": start_cmd}).start.cmd == argv


def test_pkgs_apt_pkgs_env_and_base_image_overrides() -> None:
    plan = make_plan(
        APPS / "python-requirements",
        {
            "pkgs": ["ffmpeg"],
            "apt_pkgs": ["libpq5", "curl"],
            "env": {"PORT": "8000", "PYTHONUNBUFFERED": "0"},
            "base_image": f"mirror.example.com/python:3.12-slim@{DIGEST}",
        },
    )
    assert plan.setup.pkgs == ("ffmpeg",)
    assert plan.setup.apt_pkgs == ("libpq5", "curl")
    assert plan.env["PORT"] == "8000" and plan.env["PYTHONUNBUFFERED"] == "0"
    assert plan.base_image.reference == "mirror.example.com/python:3.12-slim"
    assert plan.base_image.digest == DIGEST
    assert plan.base_image.pinned == f"mirror.example.com/python:3.12-slim@{DIGEST}"


def test_setup_packages_make_a_static_plan_need_a_daemon() -> None:
    assert needs_daemon(make_plan(APPS / "static", {"apt_pkgs": ["curl"]}))
    assert needs_daemon(make_plan(APPS / "static", {"pkgs": ["curl"]}))


def test_unknown_settings_key_lists_the_allowed_ones() -> None:
    with pytest.raises(BuildError) as caught:
        make_plan(APPS / "node", {"install_command": "npm ci"})
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "unknown settings.nixpack key(s): install_command" in message
    for key in (
        "base_image",
        "install_cmd",
        "build_cmd",
        "start_cmd",
        "pkgs",
        "apt_pkgs",
        "dockerfile_escape",
    ):
        assert key in message


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"pkgs": "ffmpeg"}, "settings.nixpack.pkgs: expected list[str], got 'ffmpeg'"),
        ({"install_cmd": 3}, "settings.nixpack.install_cmd: expected str | list[str], got 3"),
        ({"builder": "kaniko"}, "settings.nixpack.builder: expected one of 'auto', 'docker', 'oci'"),
        ({"dockerfile_escape": "yes"}, "settings.nixpack.dockerfile_escape: expected bool"),
        ({"env": {"PORT": 8000}}, "settings.nixpack.env: expected dict[str, str]"),
        ({"apt_pkgs": ["curl; rm -rf /"]}, "settings.nixpack.apt_pkgs: not package names"),
        ({"env": {"1BAD": "x"}}, "settings.nixpack.env: not variable names"),
        ({"base_image": "busybox@sha256:short"}, "is not an image reference"),
        ({"build_cmd": ["make\nmake install"]}, "one command per list item"),
        ({"start_cmd": []}, "an empty command starts nothing"),
        ({"start_cmd": "  "}, "an empty command starts nothing"),
        ({"dockerfile": "../Dockerfile"}, "must be a path inside the source directory"),
        ({"exclude": ["/"]}, "settings.nixpack.exclude: exclude pattern '/' is not usable"),
        ({"builder": "oci", "test_cmd": "true"}, "settings.nixpack.test_cmd needs the docker backend"),
    ],
)
def test_bad_settings_are_bad_input_naming_the_key(settings: dict[str, object], fragment: str) -> None:
    with pytest.raises(BuildError) as caught:
        parse_settings(settings)
    assert fragment in str(caught.value)
    assert caught.value.exit_code == 2


def test_exclude_setting_extends_the_defaults() -> None:
    plan = make_plan(APPS / "static", {"exclude": ["assets/", "*.map"]})
    assert plan.copy.exclude[-2:] == ("assets/", "*.map")
    assert "node_modules" in plan.copy.exclude


# --- identity -----------------------------------------------------------------------------------


def test_plan_json_is_canonical_and_round_trips() -> None:
    plan = make_plan(APPS / "node", {"apt_pkgs": ["curl"]})
    text = plan.to_json()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert json.loads(text)["setup"] == {"apt_pkgs": ["curl"], "pkgs": []}
    assert BuildPlan.from_json(text) == plan
    assert BuildPlan.from_json(text).plan_hash() == plan.plan_hash()


def test_plan_hash_is_stable_and_blind_to_settings_key_order(app: AppFactory) -> None:
    settings = {"install_cmd": "npm ci", "env": {"A": "1", "B": "2"}, "apt_pkgs": ["curl"]}
    reordered = {"apt_pkgs": ["curl"], "env": {"B": "2", "A": "1"}, "install_cmd": "npm ci"}
    first = make_plan(APPS / "node", settings)
    assert make_plan(APPS / "node", reordered).plan_hash() == first.plan_hash()
    # The plan describes the recipe, not where the tree lives.
    assert make_plan(app("node", "elsewhere"), settings).plan_hash() == first.plan_hash()
    assert len(first.plan_hash()) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"install_cmd": "npm install"},
        {"build_cmd": []},
        {"start_cmd": "node x.js"},
        {"pkgs": ["git"]},
        {"apt_pkgs": ["curl", "git"]},
        {"env": {"A": "2", "B": "2"}},
        {"base_image": "node:22"},
        {"exclude": ["docs"]},
    ],
)
def test_plan_hash_changes_with_any_setting(change: dict[str, object]) -> None:
    settings: dict[str, object] = {"install_cmd": "npm ci", "env": {"A": "1", "B": "2"}, "apt_pkgs": ["curl"]}
    assert (
        make_plan(APPS / "node", {**settings, **change}).plan_hash()
        != make_plan(APPS / "node", settings).plan_hash()
    )


def test_plan_hash_follows_the_source_tree_structure(tmp_path: Path) -> None:
    tree = tmp_path / "node"
    shutil.copytree(APPS / "node", tree)
    before = make_plan(tree).plan_hash()
    package = json.loads((tree / "package.json").read_text())
    del package["scripts"]["build"]
    (tree / "package.json").write_text(json.dumps(package))
    assert make_plan(tree).plan_hash() != before


def test_pinning_the_base_changes_the_hash_and_the_reference() -> None:
    plan = make_plan(APPS / "static")
    pinned = plan.pin_base(DIGEST)
    assert pinned.base_image.pinned == f"busybox:1.36@{DIGEST}"
    assert pinned.plan_hash() != plan.plan_hash()
    assert plan.base_image.digest is None  # plans are values; pinning makes a new one
    with pytest.raises(BuildError, match="is not sha256:<64 hex>"):
        plan.pin_base("latest")
    with pytest.raises(BuildError, match="scratch"):
        make_plan(APPS / "static", {"base_image": "scratch"}).pin_base(DIGEST)


def test_saved_plan_that_does_not_validate_is_an_error() -> None:
    with pytest.raises(BuildError, match="saved build plan is not valid"):
        BuildPlan.from_json('{"provider": "go"}')


# --- backends -----------------------------------------------------------------------------------


def test_choose_builder() -> None:
    static = make_plan(APPS / "static")
    node = make_plan(APPS / "node")
    assert choose_builder(static, "auto", engine_available=True) == "docker"
    assert choose_builder(static, "auto", engine_available=False) == "oci"
    assert choose_builder(static, "oci", engine_available=True) == "oci"
    assert choose_builder(node, "auto", engine_available=True) == "docker"
    with pytest.raises(BuildError, match="needs a Docker engine") as failed:
        choose_builder(node, "auto", engine_available=False)
    assert failed.value.exit_code == 1
    with pytest.raises(BuildError, match="builder: oci cannot run") as refused:
        choose_builder(node, "oci", engine_available=True)
    assert refused.value.exit_code == 2


def test_build_errors_become_atmos_errors_with_their_exit_code() -> None:
    with pytest.raises(BuildError) as caught:
        make_plan(APPS / "unknown")
    error = caught.value.to_atmos_error()
    assert error.exit_code == 2
    assert str(error) == str(caught.value)
