"""Input a rollout could not finish is refused by `validate` and before a rollout runs anything.

Each case is a manifest or stack that used to pass `validate`, then either applied real Terraform
and failed only mid-rollout (a component name Git cannot hold in a ref, a context value of the
wrong type, a vendor subdirectory or a folder outside the repository) or was refused by the
rollout alone (build settings no plan accepts). Now `validate` exits 2 naming the file and line
with a hint, and `doit rollout:api:dev` exits 2 with the same problem before any task runs: no
ref, tag or note, no vendor cache, no Terraform state or workdir, and nothing written where a path
outside the repository pointed.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Repo
from tests.e2e.test_bad_input import Case, edit

MANIFEST = "deployments/api.yaml"
OUTSIDE = "outside"  # a folder beside the repository, filled by `outside()`


def extra_component(name_yaml: str) -> Callable[[Repo], None]:
    """A terraform component under a given (YAML-written) name, using the ecr folder."""
    return edit(
        MANIFEST,
        "    terraform:\n      ecr/api:\n",
        f"    terraform:\n      {name_yaml}:\n        component: ecr\n        vars: {{ name: x }}\n"
        "      ecr/api:\n",
    )


def outside(repo: Repo) -> Path:
    """A folder outside the repository holding a Terraform module and a static site."""
    path = repo.path.parent / OUTSIDE
    path.mkdir(exist_ok=True)
    for tf in (repo.path / "components/terraform/ecr").glob("*.tf"):
        shutil.copy(tf, path / tf.name)
    (path / "index.html").write_text("<h1>elsewhere</h1>\n")
    return path


def abs_component(repo: Repo) -> None:
    folder = outside(repo)
    repo.replace(
        MANIFEST,
        "      ecr/api:\n        vars:",
        f"      ecr/api:\n        component: {folder}\n        vars:",
    )


def abs_component_in_stack(repo: Repo) -> None:
    folder = outside(repo)
    repo.replace("stacks/catalog/ecr/api.yaml", "component: ecr", f"component: {folder}")


def climbing_component(repo: Repo) -> None:
    outside(repo)
    repo.replace(
        MANIFEST,
        "      ecr/api:\n        vars:",
        f"      ecr/api:\n        component: ../../../{OUTSIDE}\n        vars:",
    )


def nixpack_source_outside(repo: Repo) -> None:
    outside(repo)
    repo.replace(MANIFEST, "source: ./services/api", f"source: ../{OUTSIDE}")


def nixpack_source_absolute(repo: Repo) -> None:
    folder = outside(repo)
    repo.replace(MANIFEST, "source: ./services/api", f"source: {folder}")


NAME_MESSAGE = "cannot be recorded in Git"
CONTEXT = "context: { cpu: 256, memory: 512, replicas: 1 }"

CASES = {
    "component name ending in .lock": Case(extra_component("x.lock"), MANIFEST, "x.lock:", NAME_MESSAGE),
    "component name whose last part ends in .lock": Case(
        extra_component("ecr/x.lock"), MANIFEST, "ecr/x.lock:", NAME_MESSAGE
    ),
    "component name ending in a dot": Case(extra_component("trail."), MANIFEST, "trail.:", NAME_MESSAGE),
    "component name with two dots": Case(
        extra_component("a..b"), MANIFEST, "a..b:", "component name 'a..b' is not valid"
    ),
    "component name with a newline": Case(extra_component('"x\\n"'), MANIFEST, '"x\\n":', "is not valid"),
    "component name with a control character": Case(
        extra_component('"x\\x7f"'), MANIFEST, '"x\\x7f":', "is not valid"
    ),
    "target name with a newline": Case(
        edit(MANIFEST, "    staging:\n", '    "staging\\n":\n'), MANIFEST, '"staging\\n":', "target name"
    ),
    "replicas a list": Case(
        edit(MANIFEST, "replicas: 1 }", "replicas: [1, {a: b}] }"),
        MANIFEST,
        "replicas: [1",
        "replicas must be a whole number",
    ),
    "replicas a fraction": Case(
        edit(MANIFEST, "replicas: 1 }", "replicas: 1.5 }"), MANIFEST, "replicas: 1.5", "whole number"
    ),
    "replicas a boolean": Case(
        edit(MANIFEST, "replicas: 1 }", "replicas: true }"), MANIFEST, "replicas: true", "whole number"
    ),
    "cpu a word": Case(
        edit(MANIFEST, CONTEXT, 'context: { cpu: "lots", memory: 512, replicas: 1 }'),
        MANIFEST,
        'cpu: "lots"',
        "cpu must be a number or a quantity",
    ),
    "memory a mapping": Case(
        edit(MANIFEST, CONTEXT, "context: { cpu: 256, memory: {a: 1}, replicas: 1 }"),
        MANIFEST,
        "memory: {a: 1}",
        "memory must be a number or a quantity",
    ),
    "vendor subdirectory climbing out of the module": Case(
        edit(
            MANIFEST, "modules.git//alarms?ref=v{{ version }}", "modules.git//../../alarms?ref=v{{ version }}"
        ),
        MANIFEST,
        "modules.git//../../alarms",
        "climbs out of the repository",
    ),
    "nixpack source outside the repository": Case(
        nixpack_source_outside, MANIFEST, f"source: ../{OUTSIDE}", "is outside the repository"
    ),
    "nixpack source an absolute path": Case(
        nixpack_source_absolute, MANIFEST, "source: /", "is an absolute path"
    ),
    "component folder an absolute path": Case(abs_component, MANIFEST, "component: /", "is an absolute path"),
    "component folder an absolute path in a stack": Case(
        abs_component_in_stack, "stacks/catalog/ecr/api.yaml", "component: /", "is an absolute path"
    ),
    "nixpack settings no build plan accepts": Case(
        edit(
            MANIFEST,
            "            publish: false\n",
            "            publish: false\n            builder: oci\n            test_cmd: ./run-tests\n",
        ),
        MANIFEST,
        "nixpack:\n            base_image: scratch",
        "settings.nixpack.test_cmd needs the docker backend",
    ),
    "an image the OCI writer cannot build": Case(
        edit(
            MANIFEST,
            "            publish: false\n",
            "            publish: false\n            builder: oci\n            build_cmd: make\n",
        ),
        MANIFEST,
        "nixpack:\n            base_image: scratch",
        "builder: oci cannot run the staticfile plan's install/build/setup commands",
    ),
    "component folder outside the repository": Case(
        climbing_component, MANIFEST, f"component: ../../../{OUTSIDE}", "is outside the repository"
    ),
}


def line_number(repo: Repo, rel: str, text: str) -> int:
    content = (repo.path / rel).read_text()
    return content.count("\n", 0, content.index(text)) + 1


def records(repo: Repo) -> str:
    return repo.git("for-each-ref", "refs/atmos/", "refs/tags/", "refs/notes/")


@pytest.mark.parametrize("name", list(CASES))
def test_validate_and_rollout_both_refuse_before_anything_runs(repo: Repo, name: str) -> None:
    case = CASES[name]
    case.mutate(repo)
    repo.commit(f"Break: {name}")
    expected = rf"{re.escape(case.file)}:{line_number(repo, case.file, case.line_of)}:\d+: "

    checked = repo.cli("validate")
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert "Traceback" not in checked.stdout + checked.stderr
    assert case.message in checked.stdout + checked.stderr, checked.stdout + checked.stderr
    assert re.search(expected, checked.stdout + checked.stderr), checked.stdout + checked.stderr
    assert "hint: " in checked.stdout + checked.stderr

    for attempt in range(2):  # a retry is refused the same way
        proc = repo.doit("rollout:api:dev")
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2, (attempt, out)
        assert "Traceback" not in out
        assert case.message in proc.stderr, proc.stderr
        assert re.search(expected, proc.stderr), proc.stderr
        assert "hint: " in proc.stderr
        assert "moved locally" not in out
    assert records(repo) == ""
    for folder in ("state", "workdir", "vendor-cache", "terraform", "images"):
        assert not (repo.path / ".atmos" / folder).exists(), folder
    elsewhere = repo.path.parent / OUTSIDE
    if elsewhere.exists():
        assert sorted(p.name for p in elsewhere.iterdir()) == ["context.tf", "index.html", "main.tf"]
