"""A third-party component kind, registered through the `atmos_tasks.kinds` entry point group.

The toy kind lives in a package of its own, outside atmos-tasks, installed the way pip installs
one (a `*.dist-info` folder with `entry_points.txt` on the path): the manifest names it, `validate`
accepts it, the rollout plans and applies it in dependency order, a Terraform component reads its
outputs, and the record, `status` and `describe` show it. Nothing of atmos-tasks was edited.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import Repo

TOY = '''
"""A toy kind: "deploys" a message by writing it to a file of the target's own folder."""

from __future__ import annotations

import json
from pathlib import Path

from atmos_tasks.hashing import hash_json
from atmos_tasks.kinds import Job, Kind


class ToyKind(Kind):
    name = "toy"
    role = "deploy"
    summary = "writes a message to a file (a worked example of a plugin)"

    def resolve(self, rc, ref):
        from atmos_tasks.resolve import ResolvedComponent, manifest_sections, referenced, render_sections

        manifest = rc.manifest
        where = manifest.locate(manifest.component_keypath(ref), at_key=True)
        sections = manifest_sections(manifest, ref)
        outputs, images = referenced(manifest, ref, where, list(sections.values()))
        rendered = render_sections(rc.config, ref, where, sections, rc.context, outputs, images)
        component = manifest.components()[ref]
        return ResolvedComponent(
            deployment=manifest.name,
            target=rc.target,
            ref=ref,
            vars=rendered["vars"],
            settings=rendered["settings"],
            env={k: str(v) for k, v in rendered["env"].items()},
            metadata=component.metadata.model_dump(),
            depends_on=sorted(set(manifest.dependencies(ref)) | set(outputs)),
        )

    def job(self, cc, component):
        root = cc.workspace.config.work_root_path
        workdir = root / ".atmos" / "toy" / component.deployment / component.target
        return Job(
            kind=self.name,
            deployment=component.deployment,
            target=component.target,
            component=component.name,
            root=str(root),
            workdir=str(workdir),
            vars=component.vars,
            env=component.env,
            static_key=hash_json(component.vars),
        )

    def _file(self, job):
        return Path(job.workdir) / (job.component.replace("/", "-") + ".json")

    def plan(self, job, outputs, images):
        inputs = hash_json(job.vars)
        current = self.deployed_outputs(job)
        return {
            "status": "planned",
            "has_changes": current is None or current.get("inputs") != inputs,
            "inputs_hash": inputs,
            "plan_id": inputs,
        }

    def apply(self, job, plan):
        path = self._file(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        outputs = {"message": job.vars.get("message", ""), "inputs": plan["inputs_hash"]}
        path.write_text(json.dumps(outputs))
        return {"status": "applied", "outputs": outputs}

    def deployed_outputs(self, job):
        path = self._file(job)
        return json.loads(path.read_text()) if path.is_file() else None

    def destroy(self, job, outputs, images):
        self._file(job).unlink(missing_ok=True)
        return {"status": "destroyed"}


KIND = ToyKind()
'''


@pytest.fixture
def plugin_path(tmp_path: Path) -> str:
    site = tmp_path / "site"
    (site / "toykind").mkdir(parents=True)
    (site / "toykind" / "__init__.py").write_text(TOY)
    info = site / "toykind-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toykind\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[atmos_tasks.kinds]\ntoy = toykind:KIND\n")
    return os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)


def _add_toy(repo: Repo) -> None:
    repo.replace(
        "deployments/api.yaml",
        "\n  components:\n",
        "\n  components:\n"
        "    toy:\n"
        "      greeting:\n"
        "        vars:\n"
        '          message: "hello from {{ target.name }}"\n',
    )
    # A Terraform component reads the toy component's outputs: the graph orders them.
    repo.replace(
        "deployments/api.yaml",
        "        vars:\n          name: api\n",
        "        vars:\n          name: api\n"
        "          tags: { greeting: \"{{ component['greeting'].outputs.message }}\" }\n",
    )
    repo.commit("A component of a plugin kind")


def test_a_kind_registered_through_the_entry_point_deploys_and_is_recorded(
    repo: Repo, plugin_path: str
) -> None:
    _add_toy(repo)
    env = {"PYTHONPATH": plugin_path}
    validate = repo.cli("validate", env=env)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    proc = repo.doit("rollout:api:dev", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = json.loads((repo.path / ".atmos/toy/api/dev/greeting.json").read_text())
    assert written["message"] == "hello from dev"
    # It was applied before the component that reads its outputs.
    tfvars = json.loads((repo.path / ".atmos/workdir/api/dev/ecr%2Fapi/ecr-api.auto.tfvars.json").read_text())
    assert tfvars["tags"]["greeting"] == "hello from dev"
    assert "refs/atmos/deployments/api/dev/greeting" in repo.refs()
    tag = next(t for t in repo.tags("atmos/deployments/api/dev/greeting/"))
    assert "type: toy" in repo.tag_message(tag)
    status = json.loads(repo.cli("status", "api", "--target", "dev", "--format", "json", env=env).stdout)
    assert status["api"]["dev"]["greeting"]["type"] == "toy"
    described = json.loads(repo.cli("describe", "api", "--target", "dev", "--format", "json", env=env).stdout)
    assert "greeting" in json.dumps(described)
    # A second rollout finds it up to date; destroy removes it and records that.
    again = repo.doit("rollout:api:dev", env=env)
    assert again.returncode == 0 and "Nothing to record" in again.stdout, again.stdout
    gone = repo.cli("destroy", "api", "--target", "dev", "--component", "greeting", "--yes", env=env)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert not (repo.path / ".atmos/toy/api/dev/greeting.json").exists()
    assert "refs/atmos/deployments/api/dev/greeting" not in repo.refs()
    after = json.loads(repo.cli("status", "api", "--target", "dev", "--format", "json", env=env).stdout)
    assert after["api"]["dev"]["greeting"]["status"] == "destroyed"
    assert after["api"]["dev"]["ecr/api"]["status"] == "success"  # the others keep running


def test_without_the_plugin_its_kind_is_bad_input_with_the_known_kinds(repo: Repo) -> None:
    _add_toy(repo)
    proc = repo.cli("validate")
    assert proc.returncode == 2
    assert "unknown component kind 'toy'" in proc.stderr
    assert "deployments/api.yaml:" in proc.stderr and "known kinds: " in proc.stderr
    assert "Traceback" not in proc.stderr
