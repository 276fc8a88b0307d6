"""The pure parts of remote locks: what a lock says, and which ones block a run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from atmos_tasks.locks import Held, Holder, conflicts, lock_ref

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def holder(id_: str, expires: datetime) -> Holder:
    return Holder(
        id=id_,
        who="ada@example.com",
        host="runner-1",
        pid=42,
        git_sha="a" * 40,
        since="2026-01-02T03:00:00Z",
        expires=expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ci_run="77",
        components=("ecs/service-api",),
    )


def test_a_lock_message_round_trips_and_names_its_holder() -> None:
    found = holder("h1", NOW + timedelta(minutes=5))
    parsed = Holder.parse(found.to_message())
    assert parsed == found
    assert "ada@example.com on runner-1 (pid 42, CI run 77) deploying aaaaaaa" in parsed.describe()
    assert Holder.parse("atmos-tasks lock\n\nnot json") is None
    assert Holder.parse("no body") is None


def test_lock_refs_hold_any_component_name_as_one_segment() -> None:
    assert lock_ref("api", "dev", "ecs/service-api") == "refs/atmos/locks/api/dev/ecs%2Fservice-api"


def test_only_live_locks_of_others_block() -> None:
    wanted = [lock_ref("api", "dev", c) for c in ("a", "b", "c", "d")]
    live = Held(wanted[0], "1" * 40, holder("other", NOW + timedelta(seconds=1)))
    expired = Held(wanted[1], "2" * 40, holder("other", NOW - timedelta(seconds=1)))
    mine = Held(wanted[2], "3" * 40, holder("me", NOW + timedelta(minutes=5)))
    unreadable = Held(wanted[3], "4" * 40, None)
    held = {h.ref: h for h in (live, expired, mine, unreadable)}
    assert conflicts(wanted, held, "me", NOW) == {wanted[0]: live}
    assert conflicts(wanted[1:], held, "me", NOW) == {}
    assert holder("x", NOW).expired(NOW) and not holder("x", NOW + timedelta(seconds=1)).expired(NOW)
