"""The `nixpack` kind: an image built from a source folder (SPEC §8), bound by digest into the
components that run it. Built once per source; promotions and rollbacks reuse the recorded digest.

The build itself lives in `atmos_tasks.images` (plans, the Docker and OCI builders, SBOMs).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmos_tasks.errors import EXIT_BAD_INPUT, AtmosError
from atmos_tasks.hashing import hash_json
from atmos_tasks.kinds import CompileContext, Kind

if TYPE_CHECKING:
    # Compile time only: imported where used, so that the kind itself loads nothing heavy.
    from atmos_tasks.images.stage import BuildJob
    from atmos_tasks.manifest import ComponentRef, Manifest
    from atmos_tasks.resolve import ResolveContext, ResolvedComponent


# Settings that change what the test task runs, never the image built.
TEST_ONLY_SETTINGS = ("test_cmd",)


def resolve_component(rc: ResolveContext, ref: ComponentRef) -> ResolvedComponent:
    """The manifest alone configures an image (`vars.source`, `vars.image`, `settings.nixpack`)."""
    from atmos_tasks.errors import Problem
    from atmos_tasks.resolve import (
        ImageSpec,
        ResolvedComponent,
        manifest_sections,
        mapping,
        outside_repository,
        referenced,
        render_sections,
    )

    manifest, config, target, context = rc.manifest, rc.config, rc.target, rc.context
    component = manifest.components()[ref]
    base = manifest.component_keypath(ref)
    where = manifest.locate(base, at_key=True)
    sections = manifest_sections(manifest, ref)
    outputs, images = referenced(manifest, ref, where, list(sections.values()))
    rendered = render_sections(config, ref, where, sections, context, outputs, images)
    variables = rendered["vars"]
    source = variables.get("source")
    if not isinstance(source, str) or not source:
        raise AtmosError(
            [
                Problem(
                    f"{ref} has no vars.source",
                    manifest.locate([*base, "vars"]),
                    "set vars.source to the folder of its source, e.g. ./services/api",
                )
            ]
        )
    source_dir = (config.root / source).resolve()
    outside = outside_repository(config, source, config.root)
    if outside:
        raise AtmosError(
            [
                Problem(
                    f"{ref}: source folder {source!r} {outside}",
                    manifest.locate([*base, "vars", "source"]),
                    "give a folder inside the repository, relative to its root, e.g. ./services/api: "
                    "what is built must be part of the commit",
                )
            ]
        )
    if not source_dir.is_dir():
        raise AtmosError(
            [
                Problem(
                    f"{ref}: source folder {source!r} does not exist",
                    manifest.locate([*base, "vars", "source"]),
                    "give a folder relative to the repository, e.g. ./services/api",
                )
            ]
        )
    image = mapping(variables.get("image"))
    nixpack = mapping(rendered["settings"].get("nixpack"))
    _check_build_plan(manifest, ref, source_dir, nixpack)
    registry = image.get("registry") if isinstance(image.get("registry"), str) else None
    name = image.get("name")
    repository = name if isinstance(name, str) else f"{manifest.name}/{ref.name.replace('/', '-')}"
    return ResolvedComponent(
        deployment=manifest.name,
        target=target,
        ref=ref,
        vars=variables,
        settings=rendered["settings"],
        env={k: str(v) for k, v in rendered["env"].items()},
        metadata=component.metadata.model_dump(),
        depends_on=sorted(set(manifest.dependencies(ref)) | set(outputs) | set(images)),
        image=ImageSpec(
            source_dir=source_dir,
            settings=dict(nixpack),
            registry=registry,
            repository=repository.lower(),
            publish=bool(nixpack.get("publish", True)) and registry is not None,
        ),
        output_refs=outputs,
        image_refs=images,
        provenance={name: sourced.prov for name, sourced in sections.items()},
    )


def _check_build_plan(
    manifest: Manifest, ref: ComponentRef, source_dir: Path, settings: dict[str, Any]
) -> None:
    """The build plan a rollout makes of this source and these settings can be made: a plan that
    cannot is bad input for `validate` as for the rollout (the same message as `engine.build_job`)."""
    from atmos_tasks.images.errors import BuildError
    from atmos_tasks.images.planner import choose_builder, make_plan, parse_settings

    try:
        plan = make_plan(source_dir, settings)
        if parse_settings(settings).builder == "oci":  # whether the OCI writer can build it is known now
            choose_builder(plan, "oci", engine_available=False)
    except BuildError as err:
        if err.exit_code != EXIT_BAD_INPUT:
            return  # not a problem of the input: the build task meets it and fails
        raise AtmosError.single(
            f"{ref}: {err}",
            manifest.locate([*manifest.component_keypath(ref), "settings"]),
            "fix settings.nixpack or the source tree",
            exit_code=err.exit_code,
        ) from None


def _base_file(root: Path, rel: str | None, stat_cache: Any) -> str | None:
    """The digest of a base image file (`base_image_path`), as the graph cache observes it."""
    if not rel:
        return None
    from atmos_tasks import inputs

    path = root / rel
    inputs.file(path)
    try:
        return str(stat_cache.file(path))
    except OSError:
        return "absent"


def make_job(cc: CompileContext, component: ResolvedComponent) -> BuildJob:
    """The plan, source hash and key of one image, decided before anything runs."""
    from atmos_tasks import remotecache
    from atmos_tasks.images.errors import BuildError
    from atmos_tasks.images.planner import make_plan, source_hash
    from atmos_tasks.images.stage import BuildJob

    workspace, manifest, resolved, git, dirty = cc.workspace, cc.manifest, cc.resolved, cc.git, cc.dirty
    skip_push = cc.options.skip_push
    image = component.image
    assert image is not None
    where = manifest.locate([*manifest.component_keypath(component.ref), "settings"])
    try:
        plan = make_plan(image.source_dir, image.settings)
        source = source_hash(image.source_dir, plan.copy.exclude, hash_file=workspace.stat_cache.file)
    except BuildError as err:
        raise AtmosError.single(
            f"{component.ref}: {err}",
            where,
            "fix settings.nixpack or the source tree",
            exit_code=err.exit_code,
        ) from None
    from atmos_tasks.images.stage import BUILDS

    # Read while compiling, not by the task: a build recorded for this source is reused when the
    # task runs (not part of the key: a recorded build changes no input).
    recorded = workspace.note(resolved.deployment, BUILDS, git.sha).get(component.name) if not dirty else None
    # A base image from a file of the repository: its content is part of what is built.
    base_file = _base_file(workspace.config.work_root_path, plan.base_image_path, workspace.stat_cache)
    cacheable = plan.dockerfile is None and (
        base_file is not None or plan.base_image.reference == "scratch" or plan.base_image.digest is not None
    )
    key = hash_json(
        {
            "source": source,
            "plan": plan.plan_hash(),
            **({"base_file": base_file} if base_file is not None else {}),
            # The test command is the test task's input (its own key), not the image's: a new
            # test command runs the tests again in the image already built.
            "settings": {k: v for k, v in image.settings.items() if k not in TEST_ONLY_SETTINGS},
            "registry": image.registry,
            "repository": image.repository,
            "publish": image.publish,
            "skip_push": skip_push,
            # A build from a dirty tree is not recorded: the same build from a clean one must run
            # (or reuse the image) again, so that the commit gets its build record.
            "recorded": not dirty,
        }
    )
    return BuildJob(
        deployment=resolved.deployment,
        target=resolved.target,
        component=component.name,
        root=str(workspace.config.work_root_path),
        source_dir=str(image.source_dir),
        plan_json=plan.to_json(),
        plan_hash=plan.plan_hash(),
        source_hash=source,
        settings=image.settings,
        registry=image.registry,
        repository=image.repository,
        publish=image.publish,
        key=key,
        commit=git.sha,
        source_date_epoch=workspace.commit_time(git.sha),
        record_build=not dirty,
        recorded=recorded if isinstance(recorded, dict) else None,
        skip_push=skip_push,
        cacheable=cacheable,
        cache=remotecache.spec_for(
            workspace.config.cache_url,
            cc.options,
            workspace.config.work_root_path,
            remotecache.is_protected(manifest, resolved.target),
            git,
        ),
        vars_template=component.vars if component.output_refs else {},
        output_refs=tuple(r.name for r in component.output_refs),
        template_context=resolved.template_context if component.output_refs else {},
    )


class NixpackKind(Kind):
    name = "nixpack"
    role = "image"
    template_root = "nixpack"
    summary = "container images built from source, reproducibly, bound by digest"

    def resolve(self, rc: ResolveContext, ref: ComponentRef) -> ResolvedComponent:
        return resolve_component(rc, ref)

    def job(self, cc: CompileContext, component: ResolvedComponent) -> BuildJob:
        return make_job(cc, component)

    def build(self, job: Any, outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        from atmos_tasks.images.stage import build_image

        return build_image(job, outputs=outputs)

    def reuse(self, record: dict[str, Any]) -> dict[str, Any]:
        from atmos_tasks.images.stage import reuse_build

        return reuse_build(record)

    def test(self, job: Any, command: list[str], build: dict[str, Any]) -> dict[str, Any]:
        from atmos_tasks.images.stage import test_image

        return test_image(job, command, build)

    def test_command(self, job: Any) -> list[str] | None:
        command = job.settings.get("test_cmd")
        if not command:
            return None
        return ["sh", "-c", command] if isinstance(command, str) else list(command)

    def describe(self, config: Any, resolved: Any, component: ResolvedComponent) -> dict[str, Any]:
        out = super().describe(config, resolved, component)
        image = component.image
        assert image is not None
        return {
            "type": out["type"],
            "source": config.shown(image.source_dir),
            "image": {"registry": image.registry, "repository": image.repository, "publish": image.publish},
            **{k: v for k, v in out.items() if k != "type"},
        }

    def sbom_part(self, job: Any) -> dict[str, Any]:
        return {"source": str(job.source_dir)}

    def sbom_components(self, part: dict[str, Any]) -> list[Any]:
        from atmos_tasks.images.sbom import components_from_lockfiles

        return components_from_lockfiles(part["source"])


KIND = NixpackKind()
