"""The build stage end to end: real Docker engine, real registry, real Terraform, records in Git."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock
from ruamel.yaml import YAML

from atmos_tasks.images.sbom import validate
from tests.conftest import Repo, make_repo
from tests.docker_env import BaseImage, DockerEngine, Registry

HELLO_APP = """import json
import sys

print(json.dumps({"hello": "from the built image", "python": sys.version_info[0]}))
"""
# Docker's and OCI's manifest types: the registry answers in the type the image was pushed with.
MANIFESTS = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


def edit_manifest(repo: Repo, change: Any) -> None:
    yaml = YAML(typ="rt")
    path = repo.path / "deployments/api.yaml"
    data = yaml.load(path.read_text())
    change(data["deployment"]["components"])
    with path.open("w") as handle:
        yaml.dump(data, handle)


def registry_digest(registry: Registry, repository: str, reference: str) -> str:
    request = urllib.request.Request(
        f"{registry.url}/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFESTS}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["Docker-Content-Digest"])


def latest_tag_message(repo: Repo, target: str, leaf: str) -> str:
    return repo.tag_message(repo.tags(f"atmos/deployments/api/{target}/{leaf}/")[-1])


@pytest.fixture
def docker_repo(repo: Repo, docker_engine: DockerEngine) -> Repo:
    """The example, with the test engine reachable (DOCKER_HOST) for every command."""
    repo.env = {**repo.env, **docker_engine.env}
    return repo


def add_hello(repo: Repo, registry: Registry, python: BaseImage, **settings: Any) -> None:
    repo.write("services/hello/app.py", HELLO_APP)
    repo.write("services/hello/requirements.txt", "# the standard library is enough\n")

    def change(components: Any) -> None:
        components["nixpack"]["hello"] = {
            "metadata": {"labels": {"app": "hello"}},
            "vars": {
                "source": "./services/hello",
                "image": {"registry": registry.host, "name": "acme/hello"},
            },
            "settings": {"nixpack": {"base_image": python.repo_digest, "builder": "docker", **settings}},
        }
        components["terraform"]["ecs/taskdef-hello"] = {
            "component": "ecs-taskdef",
            "metadata": {"labels": {"app": "hello"}},
            "vars": {"family": "hello", "container_port": 8080, "log_retention_days": 7},
        }

    edit_manifest(repo, change)


def test_a_python_service_is_built_pushed_bound_and_runs(
    docker_repo: Repo, registry: Registry, python_base_image: BaseImage, docker_sdk: Any
) -> None:
    add_hello(docker_repo, registry, python_base_image)
    head = docker_repo.commit("The hello service")
    proc = docker_repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"nixpack/hello: built \(with docker\) sha256:", proc.stdout)
    message = latest_tag_message(docker_repo, "dev", "hello")
    image = re.search(r"image: (\S+)", message)[1]  # type: ignore[index]
    repository, digest = image.split("@")
    assert repository == f"{registry.host}/acme/hello"
    # The digest recorded is the registry's manifest digest.
    tag = json.loads(docker_repo.git("notes", "--ref=refs/notes/atmos/api/builds", "show", head))["hello"]
    assert tag["digest"] == digest and tag["builder"] == "docker" and tag["pushed"] is True
    assert registry_digest(registry, "acme/hello", digest) == digest
    # Bound by label into the task definition, recorded on its tag.
    assert f"image: {image}" in latest_tag_message(docker_repo, "dev", "ecs%2Ftaskdef-hello")
    state = json.loads((docker_repo.path / ".atmos/state/api/dev/ecs/taskdef-hello.tfstate").read_text())
    assert state["outputs"]["image"]["value"] == image
    # The pushed image runs: pulled by digest from the registry, it prints what the app prints.
    docker_sdk.images.remove(f"{registry.host}/acme/hello:src-{tag['source_hash'][:12]}", force=True)
    docker_sdk.images.pull(image)
    output = docker_sdk.containers.run(image, remove=True, network_mode="none")
    assert json.loads(output) == {"hello": "from the built image", "python": 3}


def test_only_the_edited_image_rebuilds_and_only_its_components_reapply(repo: Repo) -> None:
    repo.write("services/admin/index.html", "<h1>admin</h1>\n")

    def change(components: Any) -> None:
        components["nixpack"]["admin"] = {
            "metadata": {"labels": {"app": "admin"}},
            "vars": {"source": "./services/admin", "image": {"name": "acme/admin"}},
            "settings": {"nixpack": {"base_image": "scratch", "publish": False}},
        }
        components["terraform"]["ecs/taskdef-admin"] = {
            "component": "ecs-taskdef",
            "metadata": {"labels": {"app": "admin"}},
            "vars": {"family": "admin", "container_port": 8080, "log_retention_days": 7},
        }

    edit_manifest(repo, change)
    site = repo.commit("An admin site")
    first = repo.doit("rollout:api:dev")
    assert first.returncode == 0, first.stdout + first.stderr
    again = repo.doit("rollout:api:dev")
    assert "building" not in again.stdout and "applying" not in again.stdout
    assert again.stdout.count("image up to date") == 2

    before = latest_tag_message(repo, "dev", "admin")
    repo.write("services/admin/index.html", "<h1>admin, v2</h1>\n")
    repo.commit("A new admin page")
    changed = repo.doit("rollout:api:dev")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert re.findall(r"… nixpack/(\S+): building", changed.stdout) == ["admin"]
    assert re.findall(r"terraform/(\S+): applied", changed.stdout) == ["ecs/taskdef-admin"]
    after = latest_tag_message(repo, "dev", "admin")
    old_image, new_image = (re.search(r"image: (\S+)", m)[1] for m in (before, after))  # type: ignore[index]
    assert old_image != new_image
    assert f"image: {new_image}" in latest_tag_message(repo, "dev", "ecs%2Ftaskdef-admin")
    # The unchanged ones are listed in the target rollout's one record.
    newest = json.loads(repo.cli("history", "api", "--target", "dev", "--format", "json").stdout)["rollouts"][
        0
    ]
    assert newest["components"]["api"]["changes"] == "none"
    assert newest["components"]["ecs/taskdef-api"]["changes"] == "none"
    assert newest["components"]["api"]["tag"].startswith("atmos/rollouts/api/dev/")
    # The unchanged image is recorded for the new commit too, with the time it was really built.
    builds = {
        sha: json.loads(repo.git("notes", "--ref=refs/notes/atmos/api/builds", "show", sha))
        for sha in (site, "HEAD")
    }
    assert builds["HEAD"]["api"]["digest"] == builds[site]["api"]["digest"]
    assert builds["HEAD"]["api"]["built_at"] == builds[site]["api"]["built_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", builds["HEAD"]["api"]["built_at"])
    assert builds["HEAD"]["admin"]["digest"] != builds[site]["admin"]["digest"]


def test_oci_builds_are_reproducible_across_checkouts_and_push(
    repo: Repo, tmp_path: Path, env: dict[str, str], registry: Registry
) -> None:
    other = make_repo(repo.path, tmp_path / "elsewhere" / "checkout", env)
    for path in (other.path / "services/api").rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    digests = []
    for checkout in (repo, other):
        plan = json.loads(checkout.cli("build", "api", "--plan").stdout)["api"]
        assert plan["plan"]["provider"] == "staticfile"
        proc = checkout.doit("build:api:dev")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        digests.append(re.search(r"built \(with oci\) (sha256:[0-9a-f]+)", proc.stdout)[1])  # type: ignore[index]
    assert digests[0] == digests[1]
    # Publishing the same source to the registry: the registry's digest is the layout's.
    published = f"image: {{ name: acme/api, registry: '{registry.host}' }}"
    repo.replace("deployments/api.yaml", "image: { name: acme/api }", published)
    repo.replace("deployments/api.yaml", "publish: false", "publish: true")
    repo.commit("Publish the api image")
    proc = repo.doit("build:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = re.search(r"built \(with oci\) (sha256:[0-9a-f]+)", proc.stdout)[1]  # type: ignore[index]
    pushed = json.loads(repo.git("notes", "--ref=refs/notes/atmos/api/builds", "show", "HEAD"))["api"]
    assert pushed["pushed"] is True and pushed["builder"] == "oci" and pushed["digest"].startswith(built)
    assert registry_digest(registry, "acme/api", pushed["digest"]) == pushed["digest"]


def test_sbom_lists_lockfile_packages_and_terraform_providers(repo: Repo) -> None:
    fixtures = Path(__file__).resolve().parent.parent / "images" / "fixtures" / "apps"
    lockfiles = {
        "py": ("python-requirements", "requirements.txt"),
        "js": ("node", "package-lock.json"),
        "go": ("go", "go.sum"),
        "rs": ("rust", "Cargo.lock"),
    }
    lockfiles["py-admin"] = lockfiles["py"]  # its bom-refs start with `py` too: `py-admin:pkg:pypi/…`
    for name, (app, lockfile) in lockfiles.items():
        repo.write(f"services/{name}/{lockfile}", (fixtures / app / lockfile).read_text())
        repo.write(f"services/{name}/index.html", f"<p>{name}</p>\n")

    def change(components: Any) -> None:
        for name in lockfiles:
            # Copy-only plans: the lock files are what the SBOM reads, no toolchain is needed.
            copy_only = {"install_cmd": [], "build_cmd": [], "start_cmd": "/serve"}
            components["nixpack"][name] = {
                "vars": {"source": f"./services/{name}"},
                "settings": {"nixpack": {"base_image": "scratch", "publish": False, **copy_only}},
            }

    edit_manifest(repo, change)
    repo.commit("Services with lock files")
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sbom = json.loads(repo.cli("sbom", "api", "--target", "dev").stdout)
    assert validate(sbom) == []
    purls = json.dumps(sbom)
    for ecosystem in (
        "pkg:pypi/",
        "pkg:npm/",
        "pkg:golang/",
        "pkg:cargo/",
        "pkg:terraform/hashicorp/null@2.1.2",
    ):
        assert ecosystem in purls, ecosystem
    names = [c["name"] for c in sbom["components"]]
    assert set(names) >= {"api", "py", "js", "go", "rs", "ecr/api", "ecs/taskdef-api"}
    # The vendored module itself, as the entry chose it for dev (alarms 1.3.0 from the local repository).
    alarms = next(c for c in sbom["components"] if c["name"] == "monitoring/alarms-api")
    module = next(c for c in alarms["components"] if c["name"] == "alarms")
    assert module["purl"] == "pkg:generic/modules@v1.3.0?vcs_url=git%2B./.sources/modules.git#alarms"
    properties = {p["name"]: p["value"] for p in module["properties"]}
    assert properties["terraform:kind"] == "vendored-module"
    assert properties["terraform:vendor-version"] == "1.3.0"
    one = json.loads(repo.cli("sbom", "api", "--target", "dev", "--component", "py").stdout)
    assert [c["name"] for c in one["components"]] == ["py"]
    assert "pkg:npm/" not in json.dumps(one)
    refs = [d["ref"] for d in one["dependencies"]]
    assert "py" in refs and all(r == "py" or r.startswith("py:pkg:") for r in refs), refs


def test_a_failing_install_fails_the_build_records_nothing_and_nothing_dependent_applies(
    docker_repo: Repo, registry: Registry, python_base_image: BaseImage
) -> None:
    add_hello(docker_repo, registry, python_base_image, install_cmd="echo cannot install >&2; exit 3")
    docker_repo.commit("A service whose install fails")
    proc = docker_repo.doit("rollout:api:dev")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "✗ nixpack/hello: build failed" in out and "returned a non-zero code: 3" in out
    assert "terraform/ecs/taskdef-hello: skipped" in out
    assert (
        "hello"
        not in docker_repo.run("git", "notes", "--ref=refs/notes/atmos/api/builds", "show", "HEAD").stdout
    )
    assert "refs/atmos/deployments/api/dev/ecs%2Ftaskdef-hello" not in docker_repo.refs()
    assert "Traceback" not in out


def test_an_unreachable_registry_fails_the_build(repo: Repo) -> None:
    nowhere = "image: { name: acme/api, registry: '127.0.0.1:9' }"
    repo.replace("deployments/api.yaml", "image: { name: acme/api }", nowhere)
    repo.replace("deployments/api.yaml", "publish: false", "publish: true")
    repo.commit("A registry nobody runs")
    proc = repo.doit("rollout:api:dev")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "✗ nixpack/api: build failed" in out and "127.0.0.1:9" in out
    assert "terraform/ecs/taskdef-api: skipped" in out
    assert repo.run("git", "notes", "--ref=refs/notes/atmos/api/builds", "list").stdout == ""
    assert "refs/atmos/deployments/api/dev/ecs%2Ftaskdef-api" not in repo.refs()


def test_a_missing_source_folder_is_bad_input(repo: Repo) -> None:
    repo.replace("deployments/api.yaml", "source: ./services/api", "source: ./services/apii")
    repo.commit("Wrong source folder")
    proc = repo.doit("rollout:api:dev")
    assert proc.returncode == 2
    assert re.search(
        r"deployments/api\.yaml:\d+:\d+: nixpack/api: source folder './services/apii' does not exist",
        proc.stderr,
    )
    assert repo.refs() == {} and not (repo.path / ".atmos/workdir").exists()


def test_tests_run_inside_the_image_and_a_failure_stops_dependants(
    docker_repo: Repo, registry: Registry, python_base_image: BaseImage, docker_sdk: Any
) -> None:
    junit = (
        "import os; open(os.environ['ATMOS_TEST_RESULTS'] + '/junit.xml', 'w').write("
        '\'<testsuite name="hello" tests="1" failures="0"><testcase name="prints"/></testsuite>\')'
    )
    add_hello(docker_repo, registry, python_base_image, test_cmd=["python", "-c", junit])
    head = docker_repo.commit("Tested hello")
    proc = docker_repo.doit("rollout:api:dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nixpack/hello: tests passed" in proc.stdout
    results = json.loads(docker_repo.git("notes", "--ref=refs/notes/atmos/api/test-results", "show", head))
    assert results["dev"]["hello"]["passed"] is True
    assert 'testcase name="prints"' in results["dev"]["hello"]["junit"][0]

    # The image leaves this engine (as on another runner): its tests pull it from the registry.
    image = re.search(r"image: (\S+)", latest_tag_message(docker_repo, "dev", "hello"))[1]  # type: ignore[index]
    import docker.errors

    for reference in [*docker_sdk.images.get(image).tags, image]:
        with contextlib.suppress(docker.errors.ImageNotFound):  # gone with its last tag
            docker_sdk.images.remove(reference, force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_sdk.images.get(image)

    def fail(components: Any) -> None:
        components["nixpack"]["hello"]["settings"]["nixpack"]["test_cmd"] = "python -c 'raise SystemExit(4)'"

    edit_manifest(docker_repo, fail)
    docker_repo.commit("A failing test")
    failed = docker_repo.doit("rollout:api:dev")
    out = failed.stdout + failed.stderr
    assert failed.returncode == 1, out
    assert "✗ nixpack/hello: test failed" in out and "exit 4" in out, out
    assert "terraform/ecs/taskdef-hello: skipped" in out
    # A new test command tests the image already built: it is not built again.
    assert "nixpack/hello: image up to date" in out and "nixpack/hello: built" not in out, out


def add_admin_site(repo: Repo) -> None:
    repo.write("services/admin/index.html", "<h1>admin</h1>\n")

    def change(components: Any) -> None:
        components["nixpack"]["admin"] = {
            "vars": {"source": "./services/admin", "image": {"name": "acme/admin"}},
            "settings": {"nixpack": {"base_image": "scratch", "publish": False}},
        }

    edit_manifest(repo, change)


def test_build_component_builds_only_that_image_and_what_it_needs(repo: Repo) -> None:
    add_admin_site(repo)
    repo.commit("An admin site")
    proc = repo.cli("build", "api", "--component", "admin")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.findall(r"… (\S+): (?:building|planning|applying)", proc.stdout) == ["nixpack/admin"]
    proc = repo.cli("build", "api", "--component", "api")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.findall(r"… (\S+): building", proc.stdout) == ["nixpack/api"]
    assert "terraform/ecr/api: applied" in proc.stdout  # what the api image needs
    unknown = repo.cli("build", "api", "--component", "ecr/api")
    assert unknown.returncode == 2, unknown.stdout + unknown.stderr
    assert "no nixpack component ecr/api on dev" in unknown.stderr and "images: api, admin" in unknown.stderr


def test_a_build_run_applies_what_its_images_need_like_a_rollout_and_records_only_that(repo: Repo) -> None:
    repo.write("scratch.txt", "not committed\n")
    refused = repo.doit("build:api:dev")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "applies terraform/ecr/api first" in refused.stderr and "scratch.txt" in refused.stderr
    assert not (repo.path / ".atmos/state").exists() and repo.refs() == {}
    dirty = repo.doit("build:api:dev", "--allow-dirty")
    assert dirty.returncode == 0, dirty.stdout + dirty.stderr
    assert 'metadata: {"allow_dirty": true}' in latest_tag_message(repo, "dev", "ecr%2Fapi")
    assert repo.run("git", "notes", "--ref=refs/notes/atmos/api/builds", "list").stdout == ""
    (repo.path / "scratch.txt").unlink()

    # A run on the same target waits for the one holding its lock.
    locks = repo.path / ".atmos/locks"
    with FileLock(str(locks / "api--dev.lock")):
        run = subprocess.Popen(
            [sys.executable, "-m", "doit", "build:api:dev"],
            cwd=repo.path,
            env=repo.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert run.stderr is not None
        assert "waiting for another rollout of api to dev" in run.stderr.readline()
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, out + err
    # Clean now: the image built before from the dirty tree is built again and recorded for the commit.
    assert "nixpack/api: built (with oci)" in out
    assert "api" in json.loads(repo.git("notes", "--ref=refs/notes/atmos/api/builds", "show", "HEAD"))
    # Only the component the build applied is recorded: the image itself is not deployed anywhere.
    assert list(repo.refs()) == ["refs/atmos/deployments/api/dev/ecr%2Fapi"]
    assert {t.split("/")[4] for t in repo.tags()} == {"ecr%2Fapi"}
    assert repo.run("git", "notes", "--ref=refs/notes/atmos/api/sbom", "list").stdout == ""
