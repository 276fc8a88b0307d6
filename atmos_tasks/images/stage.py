"""The work behind `build:` and `test:` tasks (SPEC §6, §8).

A build is keyed on the source tree's content hash, its plan and settings. Before building, the
`builds` note of the commit is consulted: an image already built from the same source and plan
(for another target, or before the local task state was lost) is reused, never rebuilt. After a
build, the note records it, so promotion and rollback reuse the digest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from atmos_tasks.images.errors import BuildError
from atmos_tasks.images.planner import BuildPlan, choose_builder, parse_settings
from atmos_tasks.templates import TemplateError, render_tree

BUILDS = "builds"
TESTS = "test-results"


@dataclass(frozen=True)
class BuildJob:
    """Everything one image build needs; picklable, decided at compile time."""

    deployment: str
    target: str
    component: str
    root: str
    source_dir: str
    plan_json: str
    plan_hash: str
    source_hash: str
    settings: dict[str, Any]
    registry: str | None
    repository: str
    publish: bool
    key: str
    commit: str
    source_date_epoch: int
    record_build: bool
    skip_push: bool = False
    # What the commit's `builds` note recorded for this component when the job was compiled.
    recorded: dict[str, Any] | None = None
    vars_template: dict[str, Any] = field(default_factory=dict)
    output_refs: tuple[str, ...] = ()
    template_context: dict[str, Any] = field(default_factory=dict)
    # The remote cache (`remotecache.CacheSpec`): a pushed image's build, stored under its key.
    cache: Any = None
    # Whether the key names everything the image is built from: not with a base image by an
    # unpinned tag (it moves without the key), nor a Dockerfile (its FROM lines are not read).
    cacheable: bool = False

    @property
    def tag(self) -> str:
        return f"src-{self.source_hash[:12]}"

    def name(self, registry: str | None) -> str:
        return f"{registry}/{self.repository}" if registry else self.repository


def _registry(job: BuildJob, outputs: dict[str, dict[str, Any]]) -> str | None:
    """The registry, rendered again when it reads a dependency's outputs (e.g. an ECR URL)."""
    if not job.output_refs:
        return job.registry
    context = {
        **job.template_context,
        "component": {name: {"outputs": outputs.get(name, {})} for name in job.output_refs},
    }
    image = render_tree(job.vars_template, context).get("image") or {}
    registry = image.get("registry") if isinstance(image, dict) else None
    return registry if isinstance(registry, str) else None


def _values(
    job: BuildJob, registry: str | None, digest: str, builder: str, reused: bool, built_at: str
) -> dict[str, Any]:
    name = job.name(registry)
    plan = BuildPlan.from_json(job.plan_json)
    return {
        "record": {
            "image": f"{name}@{digest}",
            "digest": digest,
            "registry": registry or "",
            "repository": job.repository,
            "provider": plan.provider,
            "plan_hash": job.plan_hash,
            "source_hash": job.source_hash,
            "builder": builder,
            "pushed": job.publish and bool(registry) and not job.skip_push,
            "plan": plan.to_dict(),
            "built_at": built_at,
        },
        "status": "built",
        "image": f"{name}@{digest}",
        "digest": digest,
        "registry": registry or "",
        "repository": job.repository,
        "builder": builder,
        "reused": reused,
        "inputs_hash": image_inputs_hash(job.source_hash, digest),
    }


def _recorded(job: BuildJob, registry: str | None) -> dict[str, Any] | None:
    """The build the commit's `builds` note records for this very source and plan (read while
    compiling: `job.recorded`), to be reused rather than built again."""
    entry = job.recorded
    if (
        isinstance(entry, dict)
        and entry.get("source_hash") == job.source_hash
        and entry.get("plan_hash") == job.plan_hash
        and entry.get("repository") == job.repository
        and (entry.get("registry") or None) == registry
        and entry.get("pushed", False) == (job.publish and bool(registry))
    ):
        return entry
    return None


def build_image(job: BuildJob, outputs: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Build (or reuse) one image; returns the build task's values, a failure as a value."""
    try:
        registry = _registry(job, outputs or {})
    except TemplateError as err:
        return {"status": "failed", "error": f"vars.{'.'.join(map(str, err.keypath))}: {err.message}"}
    push = job.publish and bool(registry) and not job.skip_push
    try:
        recorded = _recorded(job, registry) if push or not job.publish else None
        if recorded is not None:
            builder = recorded.get("builder", "recorded")
            return _values(job, registry, recorded["digest"], builder, True, recorded.get("built_at", ""))
        session = _session(job) if push and registry and job.cacheable else None
        if session is not None:
            try:
                cached = _cached_build(job, registry, session)
            except Exception as err:  # a malformed entry: built, and said
                session.notes.append(
                    f"the remote cache's build {job.key[:12]} could not be used ({err}): built"
                )
                cached = None
            if cached is not None:
                return cached
        plan = BuildPlan.from_json(job.plan_json)
        settings = parse_settings(job.settings)
        backend = _backend(plan, settings.builder)
        if backend == "docker":
            digest = _docker(job, plan, registry, push)
        else:
            digest = _oci(job, plan, registry, push)
    except BuildError as err:
        return {"status": "failed", "error": str(err)}
    values = _values(job, registry, digest, backend, False, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if not (job.record_build and (push or not job.publish)):
        # Built from a dirty tree, or not pushed where it is published: nothing to record for the commit.
        del values["record"]
    if session is None:
        return values
    session.store("build", job.key, _stored_build(values), {})
    return session.annotate(values)


# What a build entry in the remote cache holds: the image and how it was made, not when (two runners
# building the same source reproducibly store the same result; `built_at` is the entry's `producer.at`).
_STORED = ("image", "digest", "registry", "repository", "builder", "source_hash", "plan_hash")


def _session(job: BuildJob) -> Any:
    if job.cache is None:
        return None
    from atmos_tasks.remotecache import Session

    session = Session(job.cache)
    return session if session.active else None


def _stored_build(values: dict[str, Any]) -> dict[str, Any]:
    return {name: values.get(name) or (values.get("record") or {}).get(name) for name in _STORED}


def _cached_build(job: BuildJob, registry: str | None, session: Any) -> dict[str, Any] | None:
    """The image another runner built from the same source, plan and settings (`build-<key>`),
    when it is trusted here and its registry still has it (a HEAD of the manifest by digest): its
    values, as a build reused from the commit's record would be; else None (and a note why)."""
    from atmos_tasks.images.oci import manifest_exists
    from atmos_tasks.remotecache import shown_producer

    # Only a run that was not a pull request's: the image taken goes into the commit's builds note,
    # and promotions carry it on to every target from there.
    entry = session.lookup_trusted("build", job.key)
    if entry is None:
        return None
    found = entry.result
    made_by = shown_producer(entry.producer)
    expected = {
        "registry": registry,
        "repository": job.repository,
        "source_hash": job.source_hash,
        "plan_hash": job.plan_hash,
    }
    digest = found.get("digest")
    if not isinstance(digest, str) or any(found.get(k) != v for k, v in expected.items()):
        session.notes.append(
            f"the remote cache's build {job.key[:12]} (made by {made_by}) is for another image: built"
        )
        return None
    if not manifest_exists(str(registry), job.repository, digest, plain_http=found.get("builder") == "oci"):
        session.notes.append(
            f"the image {found.get('image')} the remote cache names (made by {made_by}) is not in its "
            "registry: built"
        )
        return None
    session.used["build"] = "reused"
    builder = str(found.get("builder") or "recorded")
    values = _values(job, registry, digest, builder, True, str(entry.producer.get("at", "")))
    if not job.record_build:
        del values["record"]
    values["cache"] = {"build": "reused", "made_by": entry.producer}
    return session.annotate(values)


def _backend(plan: BuildPlan, builder: Any) -> str:
    from atmos_tasks.images.docker import engine_available

    wants_engine = builder == "docker" or builder == "auto"
    return choose_builder(plan, builder, engine_available() if wants_engine else False)


def _docker(job: BuildJob, plan: BuildPlan, registry: str | None, push: bool) -> str:
    from atmos_tasks.images import docker

    reference = f"{job.name(registry)}:{job.tag}"
    image_id = docker.build(plan, Path(job.source_dir), reference, job.source_date_epoch)
    return docker.push(reference) if push else image_id


def _oci(job: BuildJob, plan: BuildPlan, registry: str | None, push: bool) -> str:
    from atmos_tasks.images.oci import build_layout, push_layout

    base = None
    if plan.base_image_path:
        base = Path(job.root) / plan.base_image_path
    layout = (
        Path(job.root) / ".atmos" / "images" / job.deployment / job.component.replace("/", "%2F") / job.tag
    )
    image = build_layout(
        plan, job.source_dir, layout, base=base, source_date_epoch=job.source_date_epoch, ref_name=job.tag
    )
    if push and registry:
        return push_layout(layout, registry, job.repository, job.tag)
    return image.manifest_digest


def merge_builds(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    return {**current, **change}


def reuse_build(record: dict[str, Any]) -> dict[str, Any]:
    """A promotion or rollback: the image the deployed commit's build recorded, never rebuilt."""
    return {
        "status": "built",
        "image": record["image"],
        "digest": record["digest"],
        "registry": record.get("registry", ""),
        "repository": record.get("repository", ""),
        "builder": record.get("builder", "recorded"),
        "reused": True,
        "inputs_hash": image_inputs_hash(str(record.get("source_hash")), record["digest"]),
        "record": record,
    }


def image_inputs_hash(source_hash: str, digest: str) -> str:
    """What a nixpack component's record calls its inputs: the source it was built from, and the image."""
    return hashlib.sha256(f"{source_hash}\0{digest}".encode()).hexdigest()


def test_image(job: BuildJob, command: list[str], build: dict[str, Any]) -> dict[str, Any]:
    """Run the component's tests inside its built image; the values pass the build through."""
    from atmos_tasks.images import docker

    if build.get("status") != "built":
        return {**build, "status": "skipped", "reason": "the image was not built"}
    if build.get("builder") != "docker":
        # Also for a reused record: an image the oci backend wrote is in no engine, here or elsewhere.
        backend = build.get("builder")
        error = f"test_cmd needs a Docker engine to run the image, and the {backend} backend built it"
        return {**build, "status": "failed", "error": error}
    reference = build["image"] if build.get("registry") else f"{job.repository}:{job.tag}"
    try:
        run = docker.run_tests(reference, command)
    except BuildError as err:
        return {**build, "status": "failed", "error": str(err)}
    result: dict[str, Any] = {}
    if job.record_build:
        # For the commit's `test-results` note, written by the record task.
        result["test_result"] = {
            "passed": run.passed,
            "exit_code": run.exit_code,
            "digest": build["digest"],
            "ran_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "junit": run.junit,
        }
    if not run.passed:
        tail = "\n".join(run.output.splitlines()[-15:])
        return {
            **build,
            **result,
            "status": "failed",
            "error": f"tests failed (exit {run.exit_code}):\n{tail}",
        }
    return {**build, **result, "tests": "passed"}


def merge_targets(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for target, components in change.items():
        merged[target] = {**merged.get(target, {}), **components}
    return merged
