"""The Git record layout and the tag message format (SPEC §10)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from atmos_tasks.tracking import (
    DeploymentRecord,
    leaf,
    parse_message,
    ref_name,
    tag_name,
    tag_order,
    unleaf,
)


def record(**changes: object) -> DeploymentRecord:
    base: dict[str, object] = dict(
        deployment="api",
        target="prod",
        component="ecs/service-api",
        type="terraform",
        git_sha="a" * 40,
        deployed_by="ci@example.com",
        timestamp="2025-01-23T15:30:00Z",
        status="success",
        inputs_hash="b" * 64,
        changes="applied",
    )
    base.update(changes)
    return DeploymentRecord(**base)


def test_leaf_keeps_component_names_apart() -> None:
    assert leaf("ecs/service-api") == "ecs%2Fservice-api"
    assert ref_name("api", "dev", "ecs/service-api") == "refs/atmos/deployments/api/dev/ecs%2Fservice-api"
    assert ref_name("api", "dev", "ecs") != ref_name("api", "dev", "ecs/service-api")
    for name in ("ecs/service-api", "a%2Fb", "plain", "x/y/z"):
        assert unleaf(leaf(name)) == name
    assert tag_name("api", "dev", "ecr/api", "2025-01-23T15-30-00Z") == (
        "atmos/deployments/api/dev/ecr%2Fapi/2025-01-23T15-30-00Z"
    )


def test_message_has_the_spec_fields_in_order_and_parses_as_yaml() -> None:
    message = record(
        promoted_from="staging",
        image="r.example/api@sha256:" + "c" * 64,
        metadata={"ci_run": "42", "approver": "alice"},
    ).to_message()
    assert message.splitlines()[:3] == ["apiVersion: atmos.tools/v1alpha1", "kind: Deployment", "---"]
    keys = [line.split(":", 1)[0] for line in message.splitlines()[3:]]
    assert keys == [
        "deployment",
        "target",
        "component",
        "type",
        "git_sha",
        "deployed_by",
        "timestamp",
        "status",
        "promoted_from",
        "image",
        "inputs_hash",
        "changes",
        "metadata",
    ]
    header, body = YAML(typ="safe").load_all(message)
    assert header["kind"] == "Deployment"
    assert body["metadata"] == {"approver": "alice", "ci_run": "42"}
    assert body["git_sha"] == "a" * 40 and body["promoted_from"] == "staging"


@pytest.mark.parametrize(
    "odd", ["1234567", "true", "no", "1e10", "null", "with space", "#hash", "a: b", "0x1F"]
)
def test_values_yaml_would_misread_are_quoted(odd: str) -> None:
    message = record(deployed_by=odd, git_sha="1" * 40).to_message()
    _header, body = YAML(typ="safe").load_all(message)
    assert body["deployed_by"] == odd
    assert body["git_sha"] == "1" * 40
    parsed = parse_message(message)
    assert parsed is not None and parsed.deployed_by == odd and parsed.git_sha == "1" * 40


def test_parse_round_trips_and_ignores_foreign_messages() -> None:
    original = record(rollback_of="d" * 40, status="rollback", metadata={"allow_dirty": True})
    parsed = parse_message(original.to_message(), tag="atmos/x")
    assert parsed == DeploymentRecord(**{**original.__dict__, "tag": "atmos/x"})
    assert parse_message("Release 1.2\n\nnotes") is None
    assert parse_message("a\n---\nfoo: bar\n") is None


def test_tags_order_by_time_then_clash_suffix() -> None:
    names = [
        "2025-01-23T15-30-00Z",
        "2025-01-23T15-30-00Z-2",
        "2025-01-23T15-30-00Z-10",
        "2025-01-23T15-29-59Z",
        "2025-01-24T00-00-00Z",
    ]
    records = [record(tag=f"atmos/deployments/api/dev/x/{n}") for n in names]
    ordered = [r.tag.rsplit("/", 1)[1] for r in sorted(records, key=tag_order)]  # type: ignore[union-attr]
    assert ordered == [
        "2025-01-23T15-29-59Z",
        "2025-01-23T15-30-00Z",
        "2025-01-23T15-30-00Z-2",
        "2025-01-23T15-30-00Z-10",
        "2025-01-24T00-00-00Z",
    ]


def _hand_written(body: str) -> str:
    return "apiVersion: atmos.tools/v1alpha1\nkind: Deployment\n---\n" + body


WRITTEN = [
    record(),
    record(promoted_from="staging", image="r.example/api@sha256:" + "c" * 64),
    record(rollback_of="d" * 40, status="rollback", metadata={"allow_dirty": True, "ci": "42"}),
    record(status="failed", changes="none", type="nixpack"),
]
OTHERS: list[DeploymentRecord | str] = [
    record(deployed_by=""),  # quoted: ""
    record(deployed_by="Jane Doe"),  # quoted: a space
    record(timestamp="2025-01-23 15:30:00"),
    _hand_written("deployment: api\ntarget: dev\ncomponent: c\ngit_sha: abc\nstatus: success\n"),
    _hand_written("deployment: api\ntarget: dev\ncomponent: c\ngit_sha: abc\nstatus:   success   \n"),
    _hand_written("target: dev\ndeployment: api\ncomponent: c\ngit_sha: abc\nstatus: success\n"),
    _hand_written("deployment: api\ntarget: dev\ncomponent: c\ngit_sha: abc\nstatus: success\nfoo: bar\n"),
    _hand_written("deployment: a\ndeployment: b\ntarget: dev\ncomponent: c\ngit_sha: abc\nstatus: success\n"),
    _hand_written(
        "deployment: api\ntarget: dev\ncomponent: c\ngit_sha: abc\nstatus: success\nmetadata: {bad}\n"
    ),
    _hand_written("deployment: api\ntarget: dev\ncomponent: c\ngit_sha: abc\nstatus: success"),  # no last \n
    _hand_written("deployment: api\ntarget: dev\ncomponent: c\nstatus: success\n"),  # no git_sha
    record().to_message() + "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n",
    "Release 1.2\n\nnotes",
]


@pytest.mark.parametrize(
    "message",
    [r.to_message() for r in WRITTEN] + [m if isinstance(m, str) else m.to_message() for m in OTHERS],
)
def test_every_message_reads_as_the_line_parser_reads_it(message: str) -> None:
    """The one-match reading of a message as `to_message` writes it is a shortcut only: whatever
    it accepts, the line parser reads the same; anything else goes to the line parser."""
    from atmos_tasks.tracking import _parse_lines

    assert parse_message(message, "atmos/t", "0" * 40) == _parse_lines(message, "atmos/t", "0" * 40)


@pytest.mark.parametrize("original", WRITTEN)
def test_what_to_message_writes_is_read_in_one_match_with_every_field(original: DeploymentRecord) -> None:
    from dataclasses import fields

    from atmos_tasks.tracking import _WRITTEN

    message = original.to_message()
    assert _WRITTEN.fullmatch(message) is not None  # the shortcut applies to the records status reads
    parsed = parse_message(message, "atmos/t", "f" * 40)
    assert parsed == DeploymentRecord(**{**original.__dict__, "tag": "atmos/t", "tag_object": "f" * 40})
    assert set(vars(parsed)) == {f.name for f in fields(DeploymentRecord)}


def test_read_ahead_pulls_batches_in_the_background_and_gives_them_in_order() -> None:
    import threading

    from atmos_tasks.tracking import ReadAhead

    started = threading.Event()

    def batches() -> Generator[list[str], None, None]:
        started.set()
        yield ["a", "b"]
        yield ["c"]

    with ReadAhead(batches()) as ahead:
        assert started.wait(10)  # pulled before the caller asks for anything
        assert list(ahead) == [["a", "b"], ["c"]]
        assert list(ahead) == []  # taken to the end, it stays at the end


def test_read_ahead_raises_a_failure_where_the_caller_takes_the_next_batch() -> None:
    from atmos_tasks.gitrepo import GitError
    from atmos_tasks.tracking import ReadAhead

    def batches() -> Generator[list[str], None, None]:
        yield ["a"]
        raise GitError(("for-each-ref",), 128, "fatal: bad object")

    with ReadAhead(batches()) as ahead:
        assert next(ahead) == ["a"]
        with pytest.raises(GitError, match="bad object"):
            next(ahead)


def test_read_ahead_left_early_stops_pulling_and_closes_what_it_pulls_from() -> None:
    """A caller that fails or stops taking: the thread stops and closes the generator, which is
    how `for_each_ref_rows` kills its Git; no more than a few batches were held meanwhile."""
    import threading

    from atmos_tasks.tracking import ReadAhead

    closed = threading.Event()
    pulled: list[int] = []

    def batches() -> Generator[list[str], None, None]:
        try:
            for index in range(1000):
                pulled.append(index)
                yield [str(index)]
        finally:
            closed.set()

    with ReadAhead(batches()) as ahead:
        assert next(ahead) == ["0"]
    assert closed.wait(10)
    assert len(pulled) < 10


def test_records_read_while_a_compilation_observes_are_observed_with_their_tags(tmp_path: Path) -> None:
    """The tags are read by `read_ahead`'s thread: what it reads is observed all the same, so a
    graph compiled from records is keyed by them (a new record compiles it again)."""
    import subprocess

    from atmos_tasks import inputs
    from atmos_tasks.gitrepo import GitRepo
    from atmos_tasks.tracking import read_records

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with inputs.observing() as observed:
        read_records(GitRepo(tmp_path), "app", "dev")
    assert sorted(observed.refs) == [
        "refs/atmos/deployments/app/dev",
        "refs/tags/atmos/deployments/app/dev\x00refs/tags/atmos/rollouts/app/dev",
    ]


def test_read_ahead_without_a_thread_reads_when_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from atmos_tasks.tracking import ReadAhead

    def refused(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refused)
    with ReadAhead(batch for batch in [["a"], ["b"]]) as ahead:
        assert list(ahead) == [["a"], ["b"]]
