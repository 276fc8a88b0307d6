"""Deployment records in Git (SPEC §10): the ref and tag layout and the tag message format.

Current state is a lightweight ref per component pointing at the deployed commit; history is an
annotated tag per component per rollout whose message is a small YAML document. Everything here
is pure except `read_records`, which reads refs and tags with a single `git for-each-ref`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from atmos_tasks.gitrepo import GitRepo

REF_ROOT = "refs/atmos/deployments"
TAG_ROOT = "atmos/deployments"
# One tag per target rollout that lists the components whose inputs did not change (`changes: none`).
ROLLOUT_ROOT = "atmos/rollouts"
API_VERSION = "atmos.tools/v1alpha1"
HEADER = f"apiVersion: {API_VERSION}\nkind: Deployment\n---\n"
ROLLOUT_HEADER = f"apiVersion: {API_VERSION}\nkind: Rollout\n---\n"
# Field order of a target rollout record's body; `unchanged` maps each listed component to
# {type, inputs_hash[, image][, rollback_of]} as one JSON object.
ROLLOUT_FIELDS = (
    "deployment",
    "target",
    "git_sha",
    "deployed_by",
    "timestamp",
    "status",
    "promoted_from",
    "metadata",
    "unchanged",
)
# `destroyed`: `atmos-tasks destroy` removed what the component ran; its ref is gone with it.
STATUSES = ("success", "failed", "rollback", "destroyed")
# Field order of the message body, as SPEC §10 lists it.
FIELDS = (
    "deployment",
    "target",
    "component",
    "type",
    "git_sha",
    "deployed_by",
    "timestamp",
    "status",
    "promoted_from",
    "rollback_of",
    "image",
    "inputs_hash",
    "changes",
    "metadata",
)
_LINE = re.compile(r"^([a-z_]+): *(.*?)\s*$", re.MULTILINE)
_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./@:+-]*$")
_NOT_PLAIN = re.compile(
    r"^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+"
    r"|true|false|yes|no|on|off|null|~|y|n)$",
    re.IGNORECASE,
)


def leaf(component: str) -> str:
    """A component name as one ref path segment: `/` becomes `%2F` (and `%` becomes `%25`)."""
    return component.replace("%", "%25").replace("/", "%2F")


def unleaf(segment: str) -> str:
    return segment.replace("%2F", "/").replace("%25", "%")


def ref_name(deployment: str, target: str, component: str) -> str:
    return f"{REF_ROOT}/{deployment}/{target}/{leaf(component)}"


def tag_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tag_name(deployment: str, target: str, component: str, stamp: str) -> str:
    return f"{TAG_ROOT}/{deployment}/{target}/{leaf(component)}/{stamp}"


def rollout_tag_name(deployment: str, target: str, stamp: str) -> str:
    return f"{ROLLOUT_ROOT}/{deployment}/{target}/{stamp}"


@dataclass(frozen=True)
class DeploymentRecord:
    """What one tag says about one component's rollout to one target."""

    deployment: str
    target: str
    component: str
    type: str
    git_sha: str
    deployed_by: str
    timestamp: str
    status: str
    inputs_hash: str
    changes: str
    promoted_from: str | None = None
    rollback_of: str | None = None
    image: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    tag: str | None = None
    # Not part of the message: the tag object's id, and whether a signature follows the message.
    tag_object: str | None = None
    signed: bool = False

    def to_message(self) -> str:
        lines = []
        for name in FIELDS:
            value = getattr(self, name)
            if value is None or (name == "metadata" and not value):
                continue
            lines.append(f"{name}: {_yaml_value(value)}")
        return HEADER + "\n".join(lines) + "\n"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in (*FIELDS, "tag"):
            value = getattr(self, name)
            if value is not None and not (name == "metadata" and not value):
                out[name] = value
        return out


def _yaml_value(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    text = str(value)
    if _PLAIN.match(text) and not _NOT_PLAIN.match(text):
        return text
    return json.dumps(text)


# Where a signed tag's signature starts (`git tag -s`, or the record task's own signing).
_SIGNATURE = re.compile(r"^-----BEGIN (?:SSH SIGNATURE|PGP SIGNATURE|SIGNED MESSAGE)-----$", re.MULTILINE)


def unsigned(text: str) -> tuple[str, bool]:
    """A tag message without the signature block Git appends to it, and whether there was one."""
    if "-----BEGIN " not in text:
        return text, False
    found = _SIGNATURE.search(text)
    return (text[: found.start()], True) if found else (text, False)


def parse_message(
    text: str, tag: str | None = None, tag_object: str | None = None
) -> DeploymentRecord | None:
    """Read a tag message written by `to_message`; None when it is not a deployment record.

    A line parser, not a YAML parser: status and history read thousands of these per call. A
    signature block after the message is not part of it.
    """
    text, signed = unsigned(text)
    _, sep, body = text.partition("\n---\n")
    if not sep:
        return None
    values: dict[str, Any] = {}
    for name, raw in _LINE.findall(body):
        if name not in FIELDS:
            continue
        if name == "metadata":
            try:
                values[name] = json.loads(raw)
            except ValueError:
                values[name] = {}
        elif raw.startswith('"'):
            try:
                values[name] = json.loads(raw)
            except ValueError:
                values[name] = raw
        else:
            values[name] = raw
    required = ("deployment", "target", "component", "git_sha", "status")
    if any(name not in values for name in required):
        return None
    return DeploymentRecord(
        deployment=values["deployment"],
        target=values["target"],
        component=values["component"],
        type=values.get("type", "terraform"),
        git_sha=values["git_sha"],
        deployed_by=values.get("deployed_by", ""),
        timestamp=values.get("timestamp", ""),
        status=values["status"],
        inputs_hash=values.get("inputs_hash", ""),
        changes=values.get("changes", "applied"),
        promoted_from=values.get("promoted_from"),
        rollback_of=values.get("rollback_of"),
        image=values.get("image"),
        metadata=values.get("metadata", {}),
        tag=tag,
        tag_object=tag_object,
        signed=signed,
    )


def rollout_message(records: list[DeploymentRecord]) -> str:
    """One target rollout's record of its unchanged components (all share commit, time and actor)."""
    first = records[0]
    status = "rollback" if any(r.status == "rollback" for r in records) else "success"
    unchanged: dict[str, dict[str, Any]] = {}
    for record in records:
        entry: dict[str, Any] = {"type": record.type, "inputs_hash": record.inputs_hash}
        if record.image:
            entry["image"] = record.image
        if record.rollback_of:
            entry["rollback_of"] = record.rollback_of
        unchanged[record.component] = entry
    values: dict[str, Any] = {
        "deployment": first.deployment,
        "target": first.target,
        "git_sha": first.git_sha,
        "deployed_by": first.deployed_by,
        "timestamp": first.timestamp,
        "status": status,
        "promoted_from": first.promoted_from,
        "metadata": first.metadata or None,
        "unchanged": unchanged,
    }
    lines = [f"{name}: {_yaml_value(values[name])}" for name in ROLLOUT_FIELDS if values[name] is not None]
    return ROLLOUT_HEADER + "\n".join(lines) + "\n"


def parse_rollout(text: str, tag: str | None = None, tag_object: str | None = None) -> list[DeploymentRecord]:
    """The per-component records a target rollout record stands for (`changes: none` each)."""
    if "\nkind: Rollout\n" not in text[:80]:
        return []
    text, signed = unsigned(text)
    _, sep, body = text.partition("\n---\n")
    if not sep:
        return []
    values: dict[str, Any] = {}
    for name, raw in _LINE.findall(body):
        if name not in ROLLOUT_FIELDS:
            continue
        if name in ("metadata", "unchanged") or raw.startswith('"'):
            try:
                values[name] = json.loads(raw)
            except ValueError:
                values[name] = {} if name in ("metadata", "unchanged") else raw
        else:
            values[name] = raw
    unchanged = values.get("unchanged")
    required = ("deployment", "target", "git_sha")
    if not isinstance(unchanged, dict) or any(name not in values for name in required):
        return []
    metadata = values.get("metadata") if isinstance(values.get("metadata"), dict) else {}
    records = []
    for component, entry in unchanged.items():
        entry = entry if isinstance(entry, dict) else {}
        records.append(
            DeploymentRecord(
                deployment=values["deployment"],
                target=values["target"],
                component=str(component),
                type=str(entry.get("type") or "terraform"),
                git_sha=values["git_sha"],
                deployed_by=values.get("deployed_by", ""),
                timestamp=values.get("timestamp", ""),
                status="rollback" if entry.get("rollback_of") else values.get("status", "success"),
                inputs_hash=str(entry.get("inputs_hash") or ""),
                changes="none",
                promoted_from=values.get("promoted_from"),
                rollback_of=entry.get("rollback_of"),
                image=entry.get("image"),
                metadata=dict(metadata or {}),
                tag=tag,
                tag_object=tag_object,
                signed=signed,
            )
        )
    return records


@dataclass
class ComponentState:
    """What Git says about one component on one target: its ref and its tags, newest first."""

    deployment: str
    target: str
    component: str
    git_sha: str | None = None
    history: list[DeploymentRecord] = field(default_factory=list)

    @property
    def latest(self) -> DeploymentRecord | None:
        return self.history[0] if self.history else None

    @property
    def current(self) -> DeploymentRecord | None:
        """The newest record that put the commit the ref points at in place."""
        for record in self.history:
            if record.git_sha == self.git_sha and record.status in ("success", "rollback"):
                return record
        return None


_FIELDS_READ = ("refname", "objectname", "*objectname", "contents")


def read_records(
    repo: GitRepo, deployment: str | None = None, target: str | None = None
) -> dict[tuple[str, str, str], ComponentState]:
    """Every component state under a scope, from one `git for-each-ref` process."""
    scope = "/".join(p for p in (deployment, target) if p)
    ref_pattern = f"{REF_ROOT}/{scope}" if scope else REF_ROOT
    tag_pattern = f"refs/tags/{TAG_ROOT}/{scope}" if scope else f"refs/tags/{TAG_ROOT}"
    rollout_pattern = f"refs/tags/{ROLLOUT_ROOT}/{scope}" if scope else f"refs/tags/{ROLLOUT_ROOT}"
    rows = repo.for_each_ref([ref_pattern, tag_pattern, rollout_pattern], _FIELDS_READ)
    states: dict[tuple[str, str, str], ComponentState] = {}
    ref_prefix = REF_ROOT + "/"
    tag_prefix = f"refs/tags/{TAG_ROOT}/"
    rollout_prefix = f"refs/tags/{ROLLOUT_ROOT}/"
    for row in rows:
        if len(row) < 4:
            continue
        refname, objectname, _, contents = row[0], row[1], row[2], row[3]
        if refname.startswith(ref_prefix):
            parts = refname[len(ref_prefix) :].split("/")
            if len(parts) != 3:
                continue
            key = (parts[0], parts[1], unleaf(parts[2]))
            state = states.setdefault(key, ComponentState(*key))
            state.git_sha = objectname
        elif refname.startswith(tag_prefix):
            parts = refname[len(tag_prefix) :].split("/")
            if len(parts) != 4:
                continue
            record = parse_message(contents, refname[len("refs/tags/") :], objectname)
            if record is None:
                continue
            key = (parts[0], parts[1], unleaf(parts[2]))
            states.setdefault(key, ComponentState(*key)).history.append(record)
        elif refname.startswith(rollout_prefix):
            parts = refname[len(rollout_prefix) :].split("/")
            if len(parts) != 3:
                continue
            for record in parse_rollout(contents, refname[len("refs/tags/") :], objectname):
                if (record.deployment, record.target) != (parts[0], parts[1]):
                    continue  # a record only speaks for the target its tag is filed under
                key = (parts[0], parts[1], record.component)
                states.setdefault(key, ComponentState(*key)).history.append(record)
    for state in states.values():
        state.history.sort(key=tag_order, reverse=True)
    return states


def tag_order(record: DeploymentRecord) -> tuple[str, int]:
    """Tags sort by time, then by clash suffix (`…Z`, `…Z-2`, …, `…Z-10`)."""
    stamp = (record.tag or "").rsplit("/", 1)[-1]
    base, _, rest = stamp.partition("Z")
    suffix = rest.lstrip("-")
    return (base, int(suffix) if suffix.isdigit() else 1)


def with_tag(record: DeploymentRecord, tag: str) -> DeploymentRecord:
    return replace(record, tag=tag)
