"""Whatever `validate` accepts, a rollout never refuses as bad input; what is bad input is refused
before anything runs or is written.

Manifests are generated from the bundled example's `deployments/api.yaml`: unchanged, or with one
or two changes drawn from names with hostile characters (components, targets), context values of
any type, folders and vendor subdirectories that leave the repository, and references to things
that do not exist. Each change reaches the `dev` target, so `doit rollout:api:dev` (real Git, real
Terraform) must agree with `validate`:

- `validate` exits 0, and the rollout does not exit 2 (it may fail a task: exit 1);
- or `validate` exits 2 naming `file:line` for every problem, and the rollout exits 2 too, with
  problems `validate` reported, leaving refs, tags, notes, the vendor cache and state untouched.

No command ever prints a traceback. Rollouts are slow: the default profile runs a few examples,
`HYPOTHESIS_PROFILE=soak` many (see tests/conftest.py).
"""

from __future__ import annotations

import copy
import math
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from atmos_tasks.errors import AtmosError
from atmos_tasks.yamlio import load_data
from tests.conftest import EXAMPLES, Repo, isolated_env, make_repo

MANIFEST = "deployments/api.yaml"
SOAK = os.environ.get("HYPOTHESIS_PROFILE") == "soak"
ROLLOUTS = settings(
    max_examples=settings().max_examples if SOAK else 8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ERROR_LINE = re.compile(r"(?m)^error: (.*)$")
LOCATED = re.compile(r"^\S+\.ya?ml:\d+(?::\d+)?: ")

Edit = Callable[[dict[str, Any], Path], None]  # (the deployment mapping, the outside folder)


@dataclass(frozen=True)
class Mutation:
    """One change to the manifest, shown as what it does in a falsifying example."""

    what: str
    edit: Edit = field(compare=False)

    def __repr__(self) -> str:
        return self.what


def base_manifest() -> dict[str, Any]:
    data = YAML(typ="safe", pure=True).load((EXAMPLES / MANIFEST).read_text())
    assert isinstance(data, dict)
    return data


# Text built from the characters Git's ref rules and the manifest's name rules are about.
HOSTILE = [*"./@{}~^:?*[\\ -_%", "lock", ".lock", "..", "@{", "\x7f", "\n", "\t", "\x01", "é"]
hostile_names = st.one_of(
    st.sampled_from(
        ["x.lock", "ecr/x.lock", "trail.", "a..b", "x\n", "@", "a@{b", ".hidden", "a//b", "/lead", "tail/"]
    ),
    st.lists(st.sampled_from([*HOSTILE, *"abz09"]), min_size=1, max_size=8).map("".join),
    st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True),  # valid names too
)


def add_component(name: str) -> Mutation:
    def mutate(deployment: dict[str, Any], _outside: Path) -> None:
        deployment["components"]["terraform"][name] = {"component": "ecr", "vars": {"name": "extra"}}

    return Mutation(f"add_component({name!r})", mutate)


def add_target(name: str) -> Mutation:
    def mutate(deployment: dict[str, Any], _outside: Path) -> None:
        deployment["targets"][name] = {"labels": {"tier": "nonprod"}, "stacks": ["deploy/dev"]}

    return Mutation(f"add_target({name!r})", mutate)


context_values = st.one_of(
    st.integers(min_value=-5, max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.sampled_from(["lots", "500m", "0.5", "2Gi", "512Mi", "1e3", "-1", "", "1.5.5", "{{ context.cpu }}"]),
    st.text(max_size=6),
    st.lists(st.integers() | st.dictionaries(st.text(max_size=2), st.text(max_size=2)), max_size=2),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2),
)


def set_context(target: str, key: str, value: Any) -> Mutation:
    def mutate(deployment: dict[str, Any], _outside: Path) -> None:
        deployment["targets"][target]["context"][key] = value

    return Mutation(f"set_context({target!r}, {key!r}, {value!r})", mutate)


def component_folder(kind: str) -> Mutation:
    def mutate(deployment: dict[str, Any], outside: Path) -> None:
        folder = {
            "absolute": str(outside),
            "climbing": "../../../outside",
            "inside, by a detour": "../../components/terraform/ecr",
            "missing": "ecrx",
            "absolute, missing": "/nonexistent/ecr",
        }[kind]
        deployment["components"]["terraform"]["ecr/api"]["component"] = folder

    return Mutation(f"component_folder({kind!r})", mutate)


def nixpack_source(kind: str) -> Mutation:
    def mutate(deployment: dict[str, Any], outside: Path) -> None:
        source = {
            "absolute": str(outside),
            "climbing": "../outside",
            "inside, by a detour": "services/../services/api",
            "missing": "./services/nope",
        }[kind]
        deployment["components"]["nixpack"]["api"]["vars"]["source"] = source

    return Mutation(f"nixpack_source({kind!r})", mutate)


def vendor_subdir(subdir: str) -> Mutation:
    def mutate(deployment: dict[str, Any], _outside: Path) -> None:
        entry = deployment["vendor"]["components"][0]  # dev's (tier: nonprod)
        entry["source"] = f"git::./.sources/modules.git//{subdir}?ref=v{{{{ version }}}}"

    return Mutation(f"vendor_subdir({subdir!r})", mutate)


def missing_reference(kind: str) -> Mutation:
    def mutate(deployment: dict[str, Any], _outside: Path) -> None:
        terraform = deployment["components"]["terraform"]
        if kind == "depends_on":
            terraform["ecs/taskdef-api"]["metadata"]["depends_on"].append("terraform/nope")
        elif kind == "promotion":
            deployment["targets"]["staging"]["promotion"]["from"] = "qa"
        elif kind == "default_target":
            deployment["context"]["default_target"] = "qa"
        elif kind == "stack":
            deployment["targets"]["dev"]["stacks"].append("catalog/nope")
        elif kind == "output":
            terraform["ecr/api"]["vars"]["name"] = "{{ component['nope'].outputs.name }}"
        elif kind == "template":
            terraform["ecr/api"]["vars"]["name"] = "{{ context.nope }}"

    return Mutation(f"missing_reference({kind!r})", mutate)


mutations = st.one_of(
    hostile_names.map(add_component),
    hostile_names.map(add_target),
    st.builds(
        set_context,
        st.sampled_from(["dev", "staging", "prod"]),
        st.sampled_from(["cpu", "memory", "replicas"]),
        context_values,
    ),
    st.sampled_from(["absolute", "climbing", "inside, by a detour", "missing", "absolute, missing"]).map(
        component_folder
    ),
    st.sampled_from(["absolute", "climbing", "inside, by a detour", "missing"]).map(nixpack_source),
    st.sampled_from(["alarms", "../../alarms", "alarms/../..", "../alarms", "./alarms/"]).map(vendor_subdir),
    st.sampled_from(["depends_on", "promotion", "default_target", "stack", "output", "template"]).map(
        missing_reference
    ),
)


def dump(data: dict[str, Any]) -> str:
    out = StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    yaml.allow_unicode = False  # every odd character escaped, so the file says what it holds
    yaml.dump(data, out)
    return out.getvalue()


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to itself."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def records(repo: Repo) -> str:
    return repo.git("for-each-ref", "refs/atmos/", "refs/tags/", "refs/notes/")


def errors(text: str) -> list[str]:
    return ERROR_LINE.findall(text)


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return base_manifest()


@ROLLOUTS
@given(changes=st.lists(mutations, max_size=2))
def test_validate_and_rollout_agree(
    example_template: Path,
    home: Path,
    tmp_path_factory: pytest.TempPathFactory,
    base: dict[str, Any],
    changes: list[Mutation],
) -> None:
    place = tmp_path_factory.mktemp("property")
    outside = place / "outside"
    outside.mkdir()
    for tf in (example_template / "components/terraform/ecr").glob("*.tf"):
        shutil.copy(tf, outside / tf.name)
    (outside / "index.html").write_text("<h1>elsewhere</h1>\n")
    before_outside = sorted(p.name for p in outside.iterdir())

    data = copy.deepcopy(base)
    for change in changes:
        change.edit(data["deployment"], outside)
    text = dump(data)
    repo = make_repo(example_template, place / "repo", isolated_env(home))
    path = repo.write(MANIFEST, text)
    try:  # only manifests whose YAML says what was generated (no character lost to the format)
        assume(same(load_data(path, MANIFEST), data))
    except AtmosError:
        assume(False)
    note(text)
    repo.commit("A generated manifest")

    checked = repo.cli("validate")
    said = checked.stdout + checked.stderr
    note(f"validate: {checked.returncode}\n{said}")
    assert "Traceback" not in said
    assert checked.returncode in (0, 2), said

    rollout = repo.doit("rollout:api:dev")
    out = rollout.stdout + rollout.stderr
    note(f"rollout: {rollout.returncode}\n{out}")
    event(f"validate exits {checked.returncode}, rollout exits {rollout.returncode}")
    assert "Traceback" not in out
    if checked.returncode == 0:
        assert rollout.returncode != 2, out
        assert "moved locally" not in out
        if rollout.returncode == 0:
            assert "refs/atmos/deployments/api/dev/" in records(repo)
    else:
        problems = errors(said)
        assert problems and all(LOCATED.match(p) for p in problems), said
        assert "hint: " in said
        assert rollout.returncode == 2, out
        refused = errors(rollout.stderr)
        assert refused and set(refused) <= set(problems), (refused, problems)
        assert records(repo) == ""
        for folder in ("vendor-cache", "state", "workdir"):
            assert not (repo.path / ".atmos" / folder).exists(), folder
    assert sorted(p.name for p in outside.iterdir()) == before_outside
    shutil.rmtree(place, ignore_errors=True)
