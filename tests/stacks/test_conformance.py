"""Atmos conformance: one fixture directory per rule of SPEC §4.

Each directory holds `stacks/` (and `atmos.yaml` when a setting matters) and a `case.yaml` with the
rule, the top-level stacks to load, and, written out by hand from Atmos's documented behaviour,
either the expected `describe component` keys of some components or the expected error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from atmos_tasks.config import load_config
from atmos_tasks.errors import AtmosError, Location
from atmos_tasks.kinds.terraform import auth_identity, declared_hooks, refused_runs
from atmos_tasks.manifest import ComponentRef
from atmos_tasks.stacks import (
    ComponentConfig,
    StackLoader,
    component_config,
    evaluate_functions,
    evaluate_templates,
    find_origin,
    origin_location,
    stack_dependencies,
    stack_name,
)

HERE = Path(__file__).parent
CASES = sorted(p for p in HERE.iterdir() if (p / "case.yaml").is_file())
WHERE = Location("deployments/case.yaml", 1, 1)


def load_case(folder: Path) -> dict[str, Any]:
    return dict(YAML(typ="safe").load((folder / "case.yaml").read_text()))


def described(
    config: Any, loader: StackLoader, top: str, merged: Any, name: str
) -> tuple[ComponentConfig, str]:
    """What `atmos describe component` shows: merged, then (templates enabled) rendered as Go
    templates with the component's own sections, named by name/name_template/name_pattern."""
    resolved = component_config(merged, name, config, WHERE)
    top_path = loader.top_level(top, WHERE)
    sections = resolved.name_sections()
    stack = stack_name(config, top_path, loader.read(top_path).data, resolved.vars.value, sections)
    if config.templates_enabled and not resolved.abstract:
        stack_file = str(top_path.relative_to(config.stacks_base).with_suffix(""))
        resolved = evaluate_templates(resolved, config, stack, stack_file, WHERE)
    if not resolved.abstract:
        # The YAML functions run last; !terraform.output may read the stack's components.
        components = frozenset(merged.value.get("components", {}).get("terraform", {}))
        resolved = evaluate_functions(resolved, config, stack, components)
    return resolved, stack


def origins(config: Any, resolved: ComponentConfig, paths: list[str]) -> dict[str, str]:
    """Where values were written, as file:line:column: `vars.tags.owner`, `metadata.component`…"""
    trees = {
        "vars": resolved.vars.prov,
        "settings": resolved.settings.prov,
        "env": resolved.env.prov,
        "metadata": resolved.metadata_prov,
    }
    found = {}
    for path in paths:
        section, *keys = path.split(".")
        origin = find_origin(trees[section], list(keys))
        found[path] = str(origin_location(config, origin)) if origin else "unknown"
    return found


def test_every_rule_has_a_fixture() -> None:
    rules = {p.name.split("-")[0] for p in CASES}
    assert rules >= {
        "imports",
        "merge",
        "overrides",
        "inheritance",
        "backend",
        "naming",
        "sections",
        "unsupported",
        "hooks",
    }
    assert len(CASES) >= 30


@pytest.mark.parametrize("folder", CASES, ids=[p.name for p in CASES])
def test_conformance(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = load_case(folder)
    assert case.get("source"), "every case cites the Atmos code or documentation it follows"
    for name, value in (case.get("env") or {}).items():
        monkeypatch.setenv(name, str(value))
    assert case.get("rule"), "every case states its rule"
    tops = [(name, WHERE) for name in case["stacks"]]
    if "error" in case:
        with pytest.raises(AtmosError) as err:
            # An atmos.yaml the case refuses fails here already.
            config = load_config(folder)
            loader = StackLoader(config)
            merged = loader.load_closure(tops)
            resolved, _ = described(config, loader, case["stacks"][-1], merged, case["describe"])
            # What the Terraform kind checks when it resolves the component for a deployment.
            refused_runs(config, ComponentRef("terraform", case["describe"]), resolved, WHERE)
            auth_identity(config, resolved)
        problem = err.value.problems[0]
        assert case["error"] in problem.message
        if "error_at" in case:
            assert str(problem.location) == case["error_at"]
        assert problem.hint
        return
    config = load_config(folder)
    loader = StackLoader(config)
    merged = loader.load_closure(tops)
    for name, expected in case["components"].items():
        resolved, stack = described(config, loader, case["stacks"][-1], merged, name)
        shown = resolved.describe()
        for key, value in expected.items():
            if key == "stack_name":
                got: Any = stack
            elif key == "depends_on":
                # settings.depends_on then dependencies.components, each entry as "component" (this
                # stack), "component@other-stack", or "kind:component" (another Atmos kind)
                got = [
                    (f"{d.kind}:" if d.kind else "")
                    + (f"{d.component}" if d.same_stack else f"{d.component}@other-stack")
                    for d in stack_dependencies(resolved, stack, config.terraform_aliases)
                ]
            elif key == "deployable":
                got = not resolved.abstract
            elif key == "enabled":
                got = resolved.enabled
            elif key == "origins":
                got = origins(config, resolved, list(value))
            elif key == "hooks_fire":
                # The hooks a rollout (or a destroy) of the component would fire, as its refusal shows them.
                got = declared_hooks(config, ComponentRef("terraform", name), resolved, WHERE)
            elif key == "auth_identity":
                got = auth_identity(config, resolved)
            elif key == "refused_runs":
                got = sorted(refused_runs(config, ComponentRef("terraform", name), resolved, WHERE))
            elif key == "folder":
                # The Terraform folder Atmos runs (the `component` key is what describe shows).
                got = resolved.component
            else:
                got = shown[key]
            assert got == value, f"{folder.name}: {name}.{key}"


def refused_for(case: str, name: str) -> dict[str, str]:
    config = load_config(HERE / case)
    loader = StackLoader(config)
    merged = loader.load_closure([("dev", WHERE)])
    resolved, _ = described(config, loader, "dev", merged, name)
    return refused_runs(config, ComponentRef("terraform", name), resolved, WHERE)


def test_a_refused_run_says_what_where_and_how_to_go_on() -> None:
    """The message a rollout fails the component with: each reason, the file and line it is written
    at, and what to do (a hook turned off by `events: []`, a backend created beforehand)."""
    refused = refused_for("provision-backend", "vpc")
    assert set(refused) == {"rollout"}
    assert refused["rollout"].startswith("terraform/vpc: provision.backend.enabled (stacks/dev.yaml:7)")
    assert "does not create the s3 backend" in refused["rollout"]
    assert "set provision.backend.enabled: false" in refused["rollout"]
    why = refused_for("functions-store-kept", "app")["destroy"]
    assert why.startswith("terraform/app: !store prod/ssm queue url (stacks/dev.yaml:7), !secret api-token")
    assert "(stacks/dev.yaml:5): atmos-tasks reads no Atmos store yet" in why and "!env NAME" in why
    why = refused_for("hooks-component", "vpc")["rollout"]
    assert "Atmos hook 'store-outputs' (kind store → prod/ssm" in why
    assert "so it does not plan" in why and "`events: []`" in why
