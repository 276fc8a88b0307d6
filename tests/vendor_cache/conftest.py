"""Real sources for the store: a bare Git repository (file://) and archives served over local HTTP."""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vendor_cache import Store
from vendor_cache.digest import iter_tree

ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Ada Tester",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Tester",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}

VPC_V1 = {
    "README.md": "# modules\n",
    "modules/vpc/main.tf": 'resource "null_resource" "vpc" {}\n# v1\n',
    "modules/vpc/variables.tf": 'variable "cidr" {\n  type = string\n}\n',
    "modules/vpc/README.md": "# vpc\n",
    "modules/vpc/examples/complete/main.tf": 'module "vpc" {\n  source = "../.."\n}\n',
    "modules/vpc/scripts/plan.sh": "#!/bin/sh\necho plan\n",
    "modules/sg/main.tf": 'resource "null_resource" "sg" {}\n',
}

# The vpc module's own files, as they are under modules/vpc/.
VPC_FILES = {k.removeprefix("modules/vpc/"): v for k, v in VPC_V1.items() if k.startswith("modules/vpc/")}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel.endswith(".sh"):
            path.chmod(0o755)
    return root


def git(*args: str, cwd: Path) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def files_of(root: Path) -> dict[str, str]:
    """Text of every file under `root`, through folder links (a workspace's lead into its object)."""
    return {rel: (root / rel).read_text() for rel, _ in iter_tree(root, follow_dir_links=True)}


@dataclass(frozen=True)
class ModuleRepo:
    """A bare repository: v1.0.0 (annotated tag), v1.1.0 (light tag, main), branch `feature` one commit on."""

    path: Path
    commits: dict[str, str]

    @property
    def url(self) -> str:
        return f"file://{self.path}"


def _build_module_repo(
    root: Path, files: dict[str, str] = VPC_V1, module: str = "modules/vpc/"
) -> ModuleRepo:
    work = root / "work"
    work.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=work)
    write_tree(work, files)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "v1.0.0", cwd=work)
    git("tag", "-a", "v1.0.0", "-m", "release 1.0.0", cwd=work)
    v1 = git("rev-parse", "HEAD", cwd=work)
    (work / f"{module}main.tf").write_text('resource "null_resource" "vpc" {}\n# v1.1\n')
    git("commit", "-q", "-am", "v1.1.0", cwd=work)
    git("tag", "v1.1.0", cwd=work)
    v11 = git("rev-parse", "HEAD", cwd=work)
    git("checkout", "-q", "-b", "feature", cwd=work)
    write_tree(work, {f"{module}feature.tf": "# feature\n"})
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "feature", cwd=work)
    feature = git("rev-parse", "HEAD", cwd=work)
    git("checkout", "-q", "main", cwd=work)
    bare = root / "modules.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=root)
    return ModuleRepo(bare, {"v1.0.0": v1, "v1.1.0": v11, "feature": feature})


@pytest.fixture(scope="session")
def module_repo(tmp_path_factory: pytest.TempPathFactory) -> ModuleRepo:
    """Shared and never modified; tests that change or delete the repository use `own_repo`."""
    return _build_module_repo(tmp_path_factory.mktemp("git"))


@pytest.fixture
def own_repo(module_repo: ModuleRepo, tmp_path: Path) -> ModuleRepo:
    copy = tmp_path / "own.git"
    shutil.copytree(module_repo.path, copy)
    return ModuleRepo(copy, module_repo.commits)


@pytest.fixture(scope="session")
def vpc_repo(tmp_path_factory: pytest.TempPathFactory) -> ModuleRepo:
    """The vpc module alone, at the repository's root (whose object is the module itself), like
    `module_repo` in its tags and branches; shared and never modified."""
    return _build_module_repo(tmp_path_factory.mktemp("git"), VPC_FILES, module="")


@pytest.fixture
def own_vpc_repo(vpc_repo: ModuleRepo, tmp_path: Path) -> ModuleRepo:
    copy = tmp_path / "own-vpc.git"
    shutil.copytree(vpc_repo.path, copy)
    return ModuleRepo(copy, vpc_repo.commits)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "cache") as opened:
        yield opened


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class HttpServer:
    """A real HTTP server on 127.0.0.1 serving the files of one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # A short poll keeps shutdown() (once per test) from costing half a second.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        self.running = True

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/{name}"

    def stop(self) -> None:
        if self.running:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
            self.running = False


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpServer]:
    served = tmp_path / "served"
    served.mkdir()
    server = HttpServer(served)
    yield server
    server.stop()


def tar_gz(path: Path, files: dict[str, str], top: str = "") -> Path:
    """A .tar.gz of `files` (under the folder `top`, if given); *.sh files are executable."""
    with tarfile.open(path, "w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{rel}" if top else rel)
            info.size = len(data)
            info.mode = 0o755 if rel.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def zip_file(path: Path, files: dict[str, str], top: str = "") -> Path:
    with zipfile.ZipFile(path, "w") as zipped:
        for rel, text in files.items():
            info = zipfile.ZipInfo(f"{top}/{rel}" if top else rel)
            info.external_attr = (0o100755 if rel.endswith(".sh") else 0o100644) << 16
            zipped.writestr(info, text)
    return path


def python(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start `python -c code args…` in a fresh interpreter that imports vendor_cache from this checkout."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
