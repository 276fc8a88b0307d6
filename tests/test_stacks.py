"""Stack loading: imports, deep merge, component sections (SPEC §4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from atmos_tasks.config import load_config
from atmos_tasks.errors import AtmosError, Location
from atmos_tasks.stacks import StackLoader, component_config, find_origin


def stacks(tmp_path: Path, files: dict[str, str]) -> StackLoader:
    for rel, text in files.items():
        path = tmp_path / "stacks" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return StackLoader(load_config(tmp_path))


WHERE = Location("deployments/x.yaml", 1, 1)


def test_imports_merge_depth_first_and_the_file_wins(tmp_path: Path) -> None:
    loader = stacks(
        tmp_path,
        {
            "base.yaml": "vars: {region: us-east-1, tags: {a: '1'}, zones: [a, b]}\n",
            "mixins/region.yml": "vars: {region: us-east-2, tags: {b: '2'}}\n",
            "env/dev.yaml": "import:\n  - base\n  - mixins/region\nvars: {stage: dev, zones: [c]}\n"
            "components:\n  terraform:\n    vpc:\n      vars: {cidr: 10.0.0.0/16}\n",
        },
    )
    merged = loader.load_closure([("env/dev", WHERE)])
    assert merged.value["vars"] == {
        "region": "us-east-2",
        "tags": {"a": "1", "b": "2"},
        "zones": ["c"],
        "stage": "dev",
    }
    vpc = component_config(merged, "vpc")
    assert vpc.vars.value["cidr"] == "10.0.0.0/16" and vpc.vars.value["stage"] == "dev"
    origin = find_origin(vpc.vars.prov, ["region"])
    assert (
        origin is not None
        and origin.file == "stacks/mixins/region.yml"
        and origin.keypath == ("vars", "region")
    )


def test_relative_imports_and_only_the_closure_is_opened(tmp_path: Path) -> None:
    loader = stacks(
        tmp_path,
        {
            "catalog/ecs/_defaults.yaml": "terraform: {vars: {runtime: ecs}}\n",
            "catalog/ecs/service.yaml": "import: [./_defaults]\n"
            "components: {terraform: {svc: {vars: {a: 1}}}}\n",
            "unrelated/other.yaml": "vars: {x: 1}\n",
        },
    )
    merged = loader.load_closure([("catalog/ecs/service", WHERE)])
    assert component_config(merged, "svc").vars.value == {"runtime": "ecs", "a": 1}
    assert sorted(p.name for p in loader.opened) == ["_defaults.yaml", "service.yaml"]


def test_sections_precedence_and_folder(tmp_path: Path) -> None:
    loader = stacks(
        tmp_path,
        {
            "s.yaml": "vars: {a: global, b: global, c: global}\n"
            "terraform: {vars: {b: terraform, c: terraform}, backend_type: s3,"
            " backend: {s3: {bucket: tf}}}\n"
            "components:\n  terraform:\n    app:\n      metadata: {component: service}\n"
            "      vars: {c: component}\n      env: {TF_LOG: info}\n",
        },
    )
    app = component_config(loader.load_closure([("s", WHERE)]), "app")
    assert app.vars.value == {"a": "global", "b": "terraform", "c": "component"}
    assert app.component == "service" and app.env.value == {"TF_LOG": "info"}
    assert app.backend_type == "s3" and app.backend == {"bucket": "tf"}


def test_inheritance_order_matches_atmos(tmp_path: Path) -> None:
    loader = stacks(
        tmp_path,
        {
            "s.yaml": "components:\n  terraform:\n"
            "    base-1: {vars: {x: base-1, y: base-1}}\n"
            "    base-2: {vars: {x: base-2, z: base-2}}\n"
            "    derived-1: {metadata: {inherits: [base-1]}, vars: {y: derived-1}}\n"
            "    app: {metadata: {inherits: [base-2, derived-1]}, vars: {w: app}}\n",
        },
    )
    app = component_config(loader.load_closure([("s", WHERE)]), "app")
    assert app.inheritance == ["derived-1", "base-1", "base-2"]
    assert app.vars.value == {"x": "base-1", "y": "derived-1", "z": "base-2", "w": "app"}


def test_import_errors(tmp_path: Path) -> None:
    loader = stacks(
        tmp_path,
        {
            "a.yaml": "import: [b]\n",
            "b.yaml": "import: [a]\n",
            "c.yaml": "import: [nope]\n",
            "d.yaml": "import: [{path: nope, skip_if_missing: true}]\nvars: {ok: 1}\n",
        },
    )
    with pytest.raises(AtmosError) as err:
        loader.load_closure([("a", WHERE)])
    assert "import cycle: stacks/a.yaml → stacks/b.yaml → stacks/a.yaml" in str(err.value)
    with pytest.raises(AtmosError) as err:
        loader.load_closure([("c", WHERE)])
    assert "matches no stack file" in str(err.value)
    assert loader.load_closure([("d", WHERE)]).value["vars"] == {"ok": 1}
