"""The `record:<dep>:<target>` finalizer: what was deployed, written to Git (SPEC §6, §10).

For each component whose (commit, inputs hash) differs from what its ref and latest record say,
the ref moves — also when the apply itself was up to date, because the target now runs that
commit's configuration. A component that applied gets its own tag; those whose inputs did not
change (`changes: none`) are listed together in one tag of the target rollout, so history grows
with what changed. A failed component gets a `status: failed` tag and its ref stays. All tags and
refs land in one `update-ref` transaction; the notes (builds, SBOM) follow, each written when it
is missing, so a re-run finishes what a killed record left.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doit.exceptions import TaskFailed

from atmos_tasks import kinds
from atmos_tasks.gitrepo import ZERO_SHA, GitRepo, Ident, RefRaceError, RefUpdate, RemotePushError
from atmos_tasks.tracking import (
    ComponentState,
    DeploymentRecord,
    read_records,
    ref_name,
    rfc3339,
    rollout_message,
    rollout_tag_name,
    tag_name,
    tag_order,
    tag_stamp,
)

if TYPE_CHECKING:
    from concurrent.futures import Future

    from atmos_tasks.signing import SigningKey


class RolloutFailed(TaskFailed):
    """At least one component failed; the summary is still reported."""

    def __init__(self, msg: str, summary: dict[str, Any]) -> None:
        super().__init__(msg)
        self.summary = summary


class RolloutRefused(TaskFailed):
    """Refused by policy at record time (a lost ref race): exit code 3."""

    exit_code = 3


@dataclass(frozen=True)
class RecordSpec:
    root: str
    deployment: str
    target: str
    git_sha: str
    components: tuple[tuple[str, str], ...]  # (type, name), in rollout order
    allow_dirty: bool = False
    dirty: bool = False
    promoted_from: str | None = None
    rollback: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    remote: str | None = None
    # The id of the remote locks this run holds (`locks.RemoteLocks`): the record is pushed with them.
    lock_holder: str | None = None
    # What each component is made of, for the SBOM: {"kind": <kind>, **the kind's `sbom_part`}.
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # False for a build run (`build:<dep>:<target>`): its images are built, not deployed (the
    # components that run them did not apply), so only the deploying components it applied get records.
    images_deployed: bool = True
    # `record.sign` of atmos.yaml: always | if-available | never.
    sign: str = "if-available"
    # The approvals given for this rollout (the prompt, --approve), for the commit's approvals note.
    approvals: tuple[dict[str, Any], ...] = ()
    # The remote cache (`remotecache.CacheSpec`): what each recorded apply output is stored there.
    cache: Any = None


@dataclass
class Decision:
    records: list[DeploymentRecord]
    ref_updates: list[tuple[str, str, str | None]]  # (ref, new sha, old sha or None)
    unchanged: list[str]
    failed: dict[str, str]
    skipped: dict[str, str]


def actor(ident: Ident) -> str:
    """Who deployed: the CI actor when running in CI, else Git's user.email."""
    for variable in (
        "ATMOS_TASKS_ACTOR",
        "GITHUB_ACTOR",
        "GITLAB_USER_LOGIN",
        "BUILDKITE_BUILD_CREATOR_EMAIL",
    ):
        value = os.environ.get(variable)
        if value:
            return value
    return ident.email or ident.name


def ci_metadata() -> dict[str, Any]:
    found = {}
    if os.environ.get("GITHUB_RUN_ID"):
        found["ci_run"] = os.environ["GITHUB_RUN_ID"]
    elif os.environ.get("CI_PIPELINE_ID"):
        found["ci_run"] = os.environ["CI_PIPELINE_ID"]
    return found


def decide(
    spec: RecordSpec,
    outcomes: dict[str, tuple[dict[str, Any], dict[str, Any]]],
    states: dict[tuple[str, str, str], ComponentState],
    deployed_by: str,
    now: datetime,
    metadata: dict[str, Any],
) -> Decision:
    """Pure: which records to write and which refs to move, given the tasks' results and Git."""
    records: list[DeploymentRecord] = []
    updates: list[tuple[str, str, str | None]] = []
    unchanged: list[str] = []
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    stamp = rfc3339(now)
    for kind, name in spec.components:
        plan, applied = outcomes.get(name, ({}, {}))
        if kinds.get(kind).role == "image" and not spec.images_deployed:
            if applied.get("status") == "failed":
                failed[name] = str(applied.get("error") or "failed")
            elif applied.get("status") != "built":
                skipped[name] = str(applied.get("reason") or "not run")
            continue
        state = states.get((spec.deployment, spec.target, name)) or ComponentState(
            spec.deployment, spec.target, name
        )
        status = "applied" if applied.get("status") == "built" else applied.get("status")
        image = kinds.get(kind).recorded_image(plan, applied)
        inputs_hash = str(plan.get("inputs_hash") or applied.get("inputs_hash") or "")
        base: dict[str, Any] = {
            "deployment": spec.deployment,
            "target": spec.target,
            "component": name,
            "type": kind,
            "git_sha": spec.git_sha,
            "deployed_by": deployed_by,
            "timestamp": stamp,
            "inputs_hash": inputs_hash,
            "promoted_from": spec.promoted_from,
            "image": image,
            "metadata": dict(metadata),
        }
        if status == "applied":
            latest = state.latest
            # A plan with changes made since the latest record, and applied: even at the same inputs
            # (a drifted resource put back), what the target runs is as of this rollout.
            reapplied = bool(plan.get("has_changes")) and str(plan.get("planned_at") or "") > (
                latest.timestamp if latest is not None else ""
            )
            if (
                state.git_sha == spec.git_sha
                and latest is not None
                and latest.git_sha == spec.git_sha
                and latest.status in ("success", "rollback")
                and latest.inputs_hash == inputs_hash
                and not reapplied
            ):
                unchanged.append(name)
                continue
            previous = state.current or next(
                (r for r in state.history if r.status in ("success", "rollback")), None
            )
            same_inputs = previous is not None and previous.inputs_hash == inputs_hash
            changes = "none" if same_inputs and not reapplied else "applied"
            records.append(
                DeploymentRecord(
                    **base,
                    status="rollback" if spec.rollback else "success",
                    changes=changes,
                    rollback_of=state.git_sha if spec.rollback and state.git_sha != spec.git_sha else None,
                )
            )
            updates.append((ref_name(spec.deployment, spec.target, name), spec.git_sha, state.git_sha))
        elif status == "failed":
            error = str(applied.get("error") or plan.get("error") or "failed")
            failed[name] = error + (
                f"\n  workdir kept: {applied.get('workdir')}" if applied.get("workdir") else ""
            )
            records.append(
                DeploymentRecord(
                    **base, status="failed", changes="applied" if plan.get("status") == "planned" else "none"
                )
            )
        else:
            skipped[name] = str(applied.get("reason") or plan.get("reason") or "not run")
    return Decision(records, updates, unchanged, failed, skipped)


def decide_destroy(
    deployment: str,
    target: str,
    commit: str,
    results: dict[str, tuple[str, dict[str, Any]]],
    states: dict[tuple[str, str, str], ComponentState],
    deployed_by: str,
    now: datetime,
    metadata: dict[str, Any],
) -> Decision:
    """Pure: the records of a destroy. `results` maps each component to (kind, its destroy's values).

    A destroyed component's record points at the commit it ran (else `commit`, the checkout's) and
    its ref is deleted: `status` then says destroyed, and the next rollout deploys it afresh."""
    records: list[DeploymentRecord] = []
    updates: list[tuple[str, str, str | None]] = []
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name, (kind, result) in results.items():
        state = states.get((deployment, target, name)) or ComponentState(deployment, target, name)
        status = result.get("status")
        if status not in ("destroyed", "failed"):
            skipped[name] = str(result.get("reason") or "not run")
            continue
        if status == "failed":
            failed[name] = str(result.get("error") or "failed")
        records.append(
            DeploymentRecord(
                deployment=deployment,
                target=target,
                component=name,
                type=kind,
                git_sha=state.git_sha or commit,
                deployed_by=deployed_by,
                timestamp=rfc3339(now),
                status=status,
                inputs_hash="",
                changes="destroyed" if status == "destroyed" else "none",
                metadata=dict(metadata),
            )
        )
        if status == "destroyed" and state.git_sha:
            updates.append((ref_name(deployment, target, name), ZERO_SHA, state.git_sha))
    return Decision(records, updates, [], failed, skipped)


def record_destroy(
    repo: GitRepo,
    deployment: str,
    target: str,
    commit: str,
    results: dict[str, tuple[str, dict[str, Any]]],
    remote: str | None,
    leased: Sequence[RefUpdate] = (),
    sign: str = "if-available",
) -> list[str]:
    """Tag what `destroy` did and delete the refs of what it removed: the tags it wrote."""
    states = read_records(repo, deployment, target)
    now = datetime.now(UTC).replace(microsecond=0)
    ident, key = _ident_and_key(repo, sign)
    decision = decide_destroy(deployment, target, commit, results, states, actor(ident), now, ci_metadata())
    if not decision.records:
        return []
    if key is not None:
        from atmos_tasks.signing import SigningError

        try:
            return write_records(repo, decision, ident, now, states, remote, key, leased)
        except SigningError:
            pass  # recorded unsigned, as a rollout's records are
    return write_records(repo, decision, ident, now, states, remote, None, leased)


def grouped(record: DeploymentRecord) -> bool:
    """Listed in the target rollout's one record rather than tagged on its own: nothing applied."""
    return record.changes == "none" and record.status in ("success", "rollback")


def tag_names(
    records: list[DeploymentRecord], states: dict[tuple[str, str, str], ComponentState], now: datetime
) -> list[str]:
    """The tag each record lands in: its own, or (unchanged ones) the target rollout's one tag.

    All tags of one record share its stamp, with a clash suffix (`-2`, `-3`…) above every record
    the target already has in that second, in either namespace: history orders them after those.
    """
    stamp = tag_stamp(now)
    base = stamp.partition("Z")[0]
    same_second = [tag_order(r)[1] for s in states.values() for r in s.history if tag_order(r)[0] == base]
    n = max(same_second, default=0) + 1
    stamp = stamp if n == 1 else f"{stamp}-{n}"
    return [
        rollout_tag_name(r.deployment, r.target, stamp)
        if grouped(r)
        else tag_name(r.deployment, r.target, r.component, stamp)
        for r in records
    ]


def tag_object(sha: str, name: str, ident: Ident, when: datetime, message: str) -> str:
    return (
        f"object {sha}\ntype commit\ntag {name}\n"
        f"tagger {ident.name} <{ident.email}> {int(when.timestamp())} +0000\n\n{message}"
    )


def tag_bodies(
    records: list[DeploymentRecord], names: list[str], ident: Ident, now: datetime
) -> dict[str, str]:
    """Pure: tag name → annotated tag object, one per component that applied or failed and one
    for the target rollout listing the unchanged components."""
    bodies: dict[str, str] = {}
    listed: dict[str, list[DeploymentRecord]] = {}
    for record, name in zip(records, names, strict=True):
        if grouped(record):
            listed.setdefault(name, []).append(record)
        else:
            bodies[name] = tag_object(record.git_sha, name, ident, now, record.to_message())
    for name, group in listed.items():
        bodies[name] = tag_object(group[0].git_sha, name, ident, now, rollout_message(group))
    return bodies


def sign_bodies(bodies: dict[str, str], key: SigningKey) -> dict[str, str]:
    """Each tag object with its SSH signature appended, as `git tag -s` writes it (namespace `git`:
    `git verify-tag` checks it)."""
    from atmos_tasks.signing import TAG_NAMESPACE

    return {name: body + key.sign(body.encode("utf-8"), TAG_NAMESPACE) for name, body in bodies.items()}


def write_records(
    repo: GitRepo,
    decision: Decision,
    ident: Ident,
    now: datetime,
    states: dict[tuple[str, str, str], ComponentState],
    remote: str | None = None,
    key: SigningKey | None = None,
    leased: Sequence[RefUpdate] = (),
) -> list[str]:
    """Tag objects first (unreachable until referenced), then every ref in one transaction.

    With a remote, the remote is written first, atomically and only if it still holds what this
    rollout started from (leases); the local refs follow. A lost race writes nothing anywhere.
    With a `key`, the tags are signed (`SigningError` when it cannot sign: nothing is written).
    """
    names = tag_names(decision.records, states, now)
    bodies = tag_bodies(decision.records, names, ident, now)
    if key is not None:
        bodies = sign_bodies(bodies, key)
    shas = repo.write_objects("tag", list(bodies.values()))
    updates = [RefUpdate(f"refs/tags/{n}", s, None) for n, s in zip(bodies, shas, strict=True)]
    updates += [RefUpdate(ref, new, old) for ref, new, old in decision.ref_updates]
    if remote:
        # With the run's lock refs, renewed: the records land only while this run holds its locks.
        repo.push_atomic(remote, [*updates, *leased])
    repo.update_refs(updates)
    return names


def record_rollout(spec: RecordSpec, **values: Any) -> dict[str, Any] | TaskFailed:
    """The doit action: `values` holds `plan_<i>` and `apply_<i>` for each component."""
    outcomes = {}
    for index, (_kind, name) in enumerate(spec.components):
        outcomes[name] = (values.get(f"plan_{index}") or {}, values.get(f"apply_{index}") or {})
    repo = GitRepo(Path(spec.root))
    if spec.approvals:
        record_approvals(repo, spec)
    states = read_records(repo, spec.deployment, spec.target, [name for _kind, name in spec.components])
    now = datetime.now(UTC).replace(microsecond=0)
    metadata = {**ci_metadata(), **spec.metadata}
    if spec.allow_dirty and spec.dirty:
        metadata["allow_dirty"] = True
    decision = decide(spec, outcomes, states, "", now, metadata)
    # Built while this run asks Git who deploys, leases its records on the remote and writes its
    # tags and refs (processes, waiting on the disk and the network), instead of after them.
    started = _sbom_in_background(spec, outcomes) if sbom_due(spec, decision) else None
    try:
        return _record(spec, repo, outcomes, states, now, metadata, decision, started and started[1])
    finally:
        if started is not None:
            started[0].shutdown(wait=True)  # on every way out: it may be writing cache files


def _record(
    spec: RecordSpec,
    repo: GitRepo,
    outcomes: dict[str, tuple[dict[str, Any], dict[str, Any]]],
    states: dict[tuple[str, str, str], ComponentState],
    now: datetime,
    metadata: dict[str, Any],
    decision: Decision,
    sbom: Future[dict[str, Any]] | None,
) -> dict[str, Any] | TaskFailed:
    """`record_rollout` once decided: who deploys, the records written, the notes that follow."""
    # Who deploys (and their signing key) is read only when there is something to record: a no-op
    # run asks Git for nothing more and loads no signing code.
    ident, key = Ident("", ""), None
    if decision.records:
        ident, key = _ident_and_key(repo, spec.sign)
        decision = decide(spec, outcomes, states, actor(ident), now, metadata)
    deployed = [r for r in decision.records if r.status != "failed"]
    signing_error = None
    leased: list[RefUpdate] = []
    if decision.records and spec.remote and spec.lock_holder:
        from atmos_tasks.locks import LockRefused, record_lease

        try:
            recorded = sorted({r.component for r in decision.records})
            leased = record_lease(repo, spec.remote, spec.deployment, spec.target, spec.lock_holder, recorded)
        except LockRefused as err:
            return RolloutRefused(err.problems[0].message + f"\n  hint: {err.problems[0].hint}")
    try:
        tags: list[str] = []
        if decision.records and key is not None:
            from atmos_tasks.signing import SigningError

            try:
                tags = write_records(repo, decision, ident, now, states, spec.remote, key, leased)
            except SigningError as err:
                # What was applied is recorded all the same: unsigned, and said so.
                signing_error = str(err)
        if decision.records and not tags:
            tags = write_records(repo, decision, ident, now, states, spec.remote, None, leased)
    except RemotePushError as err:
        problem = err.problems[0]
        return RolloutFailed(
            f"{problem.message}; nothing was recorded (what was applied stays applied: run the rollout "
            f"again once the remote answers to record it)\n  hint: {problem.hint}",
            {
                "deployment": spec.deployment,
                "target": spec.target,
                "git_sha": spec.git_sha,
                "recorded": [],
                "unchanged": [],
                "failed": {},
                "skipped": {},
                "not_recorded": f"cannot push to {spec.remote}",
            },
        )
    except RefRaceError as err:
        where = f"on {spec.remote}" if spec.remote else "locally"
        return RolloutRefused(
            f"{spec.deployment}/{spec.target} moved {where} while this rollout ran (another rollout recorded "
            f"first); nothing was recorded. Check `atmos-tasks status {spec.deployment} --target "
            f"{spec.target}`, then run the rollout again to deploy on top of it.\n  git: {err}"
        )
    summary: dict[str, Any] = {
        "deployment": spec.deployment,
        "target": spec.target,
        "git_sha": spec.git_sha,
        "recorded": [
            {
                "component": r.component,
                "status": r.status,
                "changes": r.changes,
                "tag": t,
                "ref": ref_name(r.deployment, r.target, r.component) if r.status != "failed" else None,
            }
            for r, t in zip(decision.records, tags, strict=True)
        ],
        "unchanged": decision.unchanged,
        "failed": decision.failed,
        "skipped": decision.skipped,
    }
    if not spec.images_deployed:
        summary["kind"] = "build"
    if tags and key is not None and signing_error is None:
        summary["signed"] = True
    if signing_error is not None:
        summary["signing_error"] = signing_error
    # Notes follow the refs. Each is written when missing, not only when a ref moved, so a run
    # killed between the refs and its notes is finished by the next run of the same rollout.
    if not spec.dirty:
        # What the build and test tasks returned: they write nothing to Git themselves.
        record_builds(repo, spec, outcomes)
        record_tests(repo, spec, outcomes)
    if spec.parts and not decision.failed and (deployed or (decision.unchanged and not spec.dirty)):
        if spec.dirty:
            # Like build records: what an SBOM describes must be a commit, and this tree is not one.
            summary["sbom_skipped"] = "the working tree has uncommitted changes (--allow-dirty)"
        elif deployed or not sbom_recorded(repo, spec):
            try:
                bom = sbom.result() if sbom is not None else sbom_document(spec, outcomes)
                write_sbom(repo, spec, bom)
                summary["sbom"] = f"refs/notes/atmos/{spec.deployment}/sbom"
            except Exception as err:  # an SBOM problem must not undo a recorded rollout
                summary["sbom_error"] = f"{type(err).__name__}: {err}"
    repo.prune_scratch_refs()
    if tags and spec.cache is not None and spec.cache.url() is not None and spec.images_deployed:
        warnings = store_recorded_applies(spec, deployed, outcomes)
        if warnings:
            summary["cache_warnings"] = warnings
    if spec.remote:
        from atmos_tasks.images.stage import BUILDS, TESTS
        from atmos_tasks.notes import publish_notes

        # Build tasks write their notes locally (they have no remote): other clones promote from them.
        # The SBOM too: a run killed after writing it here and before pushing it left it only here,
        # and a re-run finds it recorded and does not write it again.
        try:
            publish_notes(repo, spec.deployment, (BUILDS, TESTS, SBOM), spec.remote)
        except Exception as err:  # the records stand; the next run with this remote pushes the notes
            summary["notes_error"] = f"{type(err).__name__}: {err}"
    from atmos_tasks import cancel

    if cancel.requested():
        summary["cancelled"] = cancel.requested()
        return RolloutFailed(
            f"the rollout of {spec.deployment} to {spec.target} was cancelled ({cancel.requested()}); what "
            "finished is recorded, the rest did not run",
            summary,
        )
    if decision.failed:
        names = ", ".join(decision.failed)
        what = "rollout" if spec.images_deployed else "build"
        return RolloutFailed(f"{what} of {spec.deployment} to {spec.target} failed: {names}", summary)
    if signing_error is not None and spec.sign == "always":
        return RolloutFailed(
            f"the records of {spec.deployment}/{spec.target} are not signed (record.sign: always): "
            f"{signing_error}",
            summary,
        )
    return summary


def store_recorded_applies(
    spec: RecordSpec,
    records: list[DeploymentRecord],
    outcomes: dict[str, tuple[dict[str, Any], dict[str, Any]]],
) -> list[str]:
    """What each recorded apply output, in the remote cache (best effort): the warnings."""
    from atmos_tasks import remotecache

    try:
        return remotecache.store_applies(spec.cache, recorded_apply_entries(spec, records, outcomes))
    except Exception as err:  # the records stand: the cache is best effort
        return [f"the remote cache: storing the applies failed ({type(err).__name__}: {err})"]


def recorded_apply_entries(
    spec: RecordSpec,
    records: list[DeploymentRecord],
    outcomes: dict[str, tuple[dict[str, Any], dict[str, Any]]],
) -> list[tuple[str, dict[str, Any]]]:
    """(key, result) of each recorded apply's outputs, under its record (`remotecache.apply_key`):
    a runner that finds the record current takes the outputs from there. None for a component with
    a sensitive output, nor for one whose outputs hold a sensitive value of its inputs (those stay
    on the runner)."""
    import json

    from atmos_tasks import remotecache

    entries = []
    for record in records:
        # Only what this record applied: a component recorded with `changes: none` (its inputs and
        # what it runs as before) has no entry of its own, so a rollout that changes one component of
        # three hundred stores one entry, not three hundred (a runner then reads its state).
        if record.status not in ("success", "rollback") or record.changes != "applied":
            continue
        plan, applied = outcomes.get(record.component, ({}, {}))
        outputs = applied.get("outputs")
        if not isinstance(outputs, dict) or applied.get("sensitive"):
            continue
        shown = json.dumps(outputs)
        if any(str(value) in shown for value in plan.get("secrets") or () if str(value)):
            continue
        key = remotecache.apply_key(
            record.deployment,
            record.target,
            record.component,
            record.git_sha,
            record.inputs_hash,
            record.timestamp,
        )
        entries.append(
            (key, {"outputs": outputs, "component": f"{spec.deployment}/{spec.target}/{record.component}"})
        )
    return entries


def _ident_and_key(repo: GitRepo, sign: str) -> tuple[Ident, SigningKey | None]:
    """Who deploys, and the key their tags are signed with: one Git process for both, and no
    ssh-keygen at all when no SSH signing key is configured."""
    if sign == "never":
        return repo.ident(), None
    from atmos_tasks.signing import CONFIG_PREFIXES, SigningKey

    ident, values = repo.ident_and_config(CONFIG_PREFIXES)
    key = SigningKey.from_config(values)
    if key.can_sign:
        return ident, key
    if sign == "always":
        # Checked before the rollout ran; a key gone since is a signing error, recorded unsigned.
        return ident, key
    return ident, None


SBOM = "sbom"


def record_builds(
    repo: GitRepo, spec: RecordSpec, outcomes: dict[str, tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    """The images this commit now runs, in its `builds` note: an image built for an earlier commit
    with the same source (its build task up to date) is recorded here too, so promotions find it."""
    built = {}
    for kind, name in spec.components:
        entry = outcomes.get(name, ({}, {}))[1].get("record")
        image = kinds.get(kind).role == "image"
        if image and isinstance(entry, dict) and outcomes[name][1].get("status") != "failed":
            built[name] = entry
    if not built:
        return
    from atmos_tasks.images.stage import BUILDS, merge_builds
    from atmos_tasks.notes import read_note, update_note

    recorded = read_note(repo, spec.deployment, BUILDS, spec.git_sha)
    # With the time each was built, for whichever commit.
    missing = {n: e for n, e in built.items() if recorded.get(n, {}).get("digest") != e["digest"]}
    if missing:
        update_note(repo, spec.deployment, BUILDS, spec.git_sha, missing, merge_builds)


def record_tests(
    repo: GitRepo, spec: RecordSpec, outcomes: dict[str, tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    """The test results of the images this rollout tested, in the commit's `test-results` note."""
    found = {
        name: outcomes[name][1]["test_result"]
        for _kind, name in spec.components
        if isinstance(outcomes.get(name, ({}, {}))[1].get("test_result"), dict)
    }
    if found:
        from atmos_tasks.images.stage import TESTS, merge_targets
        from atmos_tasks.notes import update_note

        update_note(repo, spec.deployment, TESTS, spec.git_sha, {spec.target: found}, merge_targets)


def record_approvals(repo: GitRepo, spec: RecordSpec) -> None:
    """The approvals given for this rollout, in the commit's `approvals` note (on the remote too)."""
    from atmos_tasks.notes import union, update_note
    from atmos_tasks.promotion import APPROVALS

    update_note(
        repo,
        spec.deployment,
        APPROVALS,
        spec.git_sha,
        {"approvals": list(spec.approvals)},
        union("approvals"),
        spec.remote,
    )


def sbom_recorded(repo: GitRepo, spec: RecordSpec) -> bool:
    from atmos_tasks.notes import read_note

    targets = read_note(repo, spec.deployment, SBOM, spec.git_sha).get("targets")
    return isinstance(targets, dict) and spec.target in targets


def sbom_due(spec: RecordSpec, decision: Decision) -> bool:
    """A new SBOM will be written for this rollout, whatever Git holds: components were deployed,
    none failed, and the tree is a commit."""
    deployed = any(r.status != "failed" for r in decision.records)
    return bool(spec.parts) and deployed and not decision.failed and not spec.dirty


def _sbom_in_background(
    spec: RecordSpec, outcomes: dict[str, tuple[dict[str, Any], dict[str, Any]]]
) -> tuple[Any, Future[dict[str, Any]]] | None:
    """`sbom_document` started on a thread of its own (the pool, to be shut down, and the future);
    None when no thread can be started: the record then builds it in line, as it used to."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="atmos-record-sbom")
    try:
        return pool, pool.submit(sbom_document, spec, outcomes)
    except RuntimeError:  # "can't start new thread"
        pool.shutdown(wait=False)
        return None


def sbom_document(
    spec: RecordSpec, outcomes: dict[str, tuple[dict[str, Any], dict[str, Any]]]
) -> dict[str, Any]:
    """The deployment's CycloneDX SBOM for this target.

    Every component is described, changed or not: what their lock files and modules hold is read
    back from `.atmos/cache/sbom/` by content digest, so only what changed is parsed again."""
    from atmos_tasks.images.sbom import aggregate, build_sbom, cache_in

    per_component = {}
    with cache_in(Path(spec.root) / ".atmos" / "cache" / "sbom"):
        for name, part in spec.parts.items():
            plan, applied = outcomes.get(name, ({}, {}))
            kind = kinds.get(part["kind"])
            image = kind.recorded_image(plan, applied)
            per_component[name] = build_sbom(name, spec.git_sha[:12], kind.sbom_components(part), image=image)
    return aggregate(spec.deployment, per_component, version=spec.git_sha[:12])


def write_sbom(repo: GitRepo, spec: RecordSpec, bom: dict[str, Any]) -> None:
    from atmos_tasks.notes import update_note

    update_note(
        repo,
        spec.deployment,
        SBOM,
        spec.git_sha,
        {"targets": {spec.target: bom}},
        lambda current, change: {**current, "targets": {**current.get("targets", {}), **change["targets"]}},
        spec.remote,
    )
