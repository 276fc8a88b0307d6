"""The pure parts of signed approvals: payloads, the allowed-signers file, why an approval does not
count, how people are counted, the gate's decisions; signatures made with a real `ssh-keygen`."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from atmos_tasks.errors import AtmosError
from atmos_tasks.manifest import Promotion
from atmos_tasks.promotion import decide_approvals
from atmos_tasks.signing import (
    APPROVAL_NAMESPACE,
    AllowedSigners,
    Checked,
    Expected,
    SigningKey,
    canonical,
    check_entry,
    count_people,
    parse_signature,
    principal_matches,
    signed_entry,
    split_signed,
    ssh_verify,
    tag_signature,
)
from atmos_tasks.tracking import DeploymentRecord, parse_message

NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
COMMIT = "a" * 40
OTHER = "b" * 40


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SigningKey]:
    base = tmp_path_factory.mktemp("keys")
    found = {}
    for name in ("alice", "bob", "mallory"):
        path = base / f"id_{name}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        found[name] = SigningKey("ssh", str(path))
    return found


@pytest.fixture(scope="module")
def signers(keys: dict[str, SigningKey]) -> AllowedSigners:
    return AllowedSigners.parse(
        "# team\n"
        f"alice@example.com,alice@home.example {keys['alice'].public_key()}\n"
        f'bob@example.com namespaces="atmos-tasks-approval,git" {keys["bob"].public_key()} bob laptop\n'
    )


def approval(
    key: SigningKey, by: str, commit: str = COMMIT, target: str = "prod", **extra: Any
) -> dict[str, Any]:
    fields = {"target": target, "by": by, "at": "2030-05-01T11:00:00Z", "method": "cli", **extra}
    return signed_entry(key, "approval", "api", commit, fields)


EXPECTED = Expected(
    "approval", "api", COMMIT, "prod", ("alice@example.com", "alice@home.example", "bob@example.com")
)


def reason(
    entry: dict[str, Any], signers: AllowedSigners | None, expected: Expected = EXPECTED
) -> str | None:
    return check_entry(entry, expected, signers, NOW).reason


def test_the_payload_is_canonical_json() -> None:
    assert canonical({"b": 1, "a": "é", "c": None}) == '{"a":"é","b":1,"c":null}'


def test_a_signed_entry_keeps_its_fields_the_payload_and_the_signature(keys: dict[str, SigningKey]) -> None:
    entry = approval(keys["alice"], "alice@example.com")
    assert {k: entry[k] for k in ("target", "by", "at", "method")} == {
        "target": "prod",
        "by": "alice@example.com",
        "at": "2030-05-01T11:00:00Z",
        "method": "cli",
    }
    assert json.loads(entry["payload"]) == {
        "kind": "approval",
        "deployment": "api",
        "commit": COMMIT,
        "target": "prod",
        "by": "alice@example.com",
        "at": "2030-05-01T11:00:00Z",
        "method": "cli",
    }
    found = parse_signature(entry["signature"])
    assert found is not None and found.namespace == APPROVAL_NAMESPACE
    assert found.fingerprint == keys["alice"].fingerprint()


def test_allowed_signers_lines_options_and_patterns(
    signers: AllowedSigners, keys: dict[str, SigningKey]
) -> None:
    alice, bob = signers.lines
    assert alice.names == ["alice@example.com", "alice@home.example"] and alice.options == ""
    assert bob.names == ["bob@example.com"] and bob.options == 'namespaces="atmos-tasks-approval,git"'
    assert signers.names_for_key(str(keys["bob"].fingerprint())) == ["bob@example.com"]
    assert signers.for_key(str(keys["mallory"].fingerprint())) == []
    assert principal_matches("*@example.com,!eve@example.com", "bob@example.com")
    assert not principal_matches("*@example.com,!eve@example.com", "eve@example.com")
    assert not principal_matches("alice@example.com", "alice@example.org")


def test_good_approvals_count_as_the_principal_with_their_key(
    signers: AllowedSigners, keys: dict[str, SigningKey]
) -> None:
    checked = check_entry(approval(keys["alice"], "alice@home.example"), EXPECTED, signers, NOW)
    assert checked.reason is None and checked.principal == "alice@home.example"
    assert checked.person == {keys["alice"].fingerprint(), "alice@example.com", "alice@home.example"}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda e: {k: v for k, v in e.items() if k not in ("payload", "signature")}, "unsigned"),
        (lambda e: {**e, "by": "bob@example.com"}, "tampered: the note's by is not what was signed"),
        (lambda e: {**e, "target": "staging"}, "tampered: the note's target is not what was signed"),
        (
            lambda e: {
                **e,
                "payload": e["payload"].replace("11:00:00", "10:00:00"),
                "at": "2030-05-01T10:00:00Z",
            },
            "bad signature: it does not verify (tampered or forged)",
        ),
        (lambda e: {**e, "payload": "{"}, "bad signature: the signed payload is not readable"),
        (lambda e: {**e, "signature": "-----BEGIN PGP SIGNATURE-----\nx\n"}, "bad signature: a PGP"),
    ],
)
def test_an_approval_changed_after_signing_does_not_count(
    signers: AllowedSigners, keys: dict[str, SigningKey], change: Any, why: str
) -> None:
    found = reason(change(approval(keys["alice"], "alice@example.com")), signers)
    assert found is not None and found.startswith(why), found


def test_replayed_approvals_say_what_they_were_signed_for(
    signers: AllowedSigners, keys: dict[str, SigningKey]
) -> None:
    other_commit = approval(keys["bob"], "bob@example.com", commit=OTHER)
    assert reason(other_commit, signers) == f"replayed: signed for commit {OTHER[:7]}, not {COMMIT[:7]}"
    staging = approval(keys["bob"], "bob@example.com", target="staging")
    assert reason({**staging, "target": "prod"}, signers) == "replayed: signed for target 'staging'"
    rejection = signed_entry(keys["bob"], "rejection", "api", COMMIT, {"by": "bob@example.com", "at": "x"})
    assert (
        reason({**rejection, "target": "prod"}, signers) == "replayed: signed as a rejection, not an approval"
    )
    other = Expected("approval", "web", COMMIT, "prod", EXPECTED.approvers)
    assert (
        reason(approval(keys["bob"], "bob@example.com"), signers, other)
        == "replayed: signed for deployment 'api'"
    )


def test_keys_and_principals_the_file_does_not_vouch_for(
    signers: AllowedSigners, keys: dict[str, SigningKey]
) -> None:
    unknown = reason(approval(keys["mallory"], "bob@example.com"), signers)
    assert (
        unknown
        == f"signed with key {keys['mallory'].fingerprint()}, not listed in allowed_signers at aaaaaaa"
    )
    forged = reason(approval(keys["alice"], "bob@example.com"), signers)
    assert forged == (
        "forged: claims bob@example.com but is signed with the key of alice@example.com, alice@home.example"
    )
    only_bob = Expected("approval", "api", COMMIT, "prod", ("bob@example.com",))
    assert reason(approval(keys["alice"], "alice@example.com"), signers, only_bob) == (
        "alice@example.com is not an approver of prod (promotion.approvers)"
    )
    assert (
        reason(approval(keys["alice"], "alice@example.com"), None)
        == "allowed_signers does not exist at aaaaaaa"
    )


def test_expiry(signers: AllowedSigners, keys: dict[str, SigningKey]) -> None:
    day = Expected("approval", "api", COMMIT, "prod", EXPECTED.approvers, ttl_seconds=3600)
    assert reason(approval(keys["alice"], "alice@example.com"), signers, day) is None
    week_old = approval(keys["alice"], "alice@example.com", at="2030-04-24T12:00:00Z")
    assert reason(week_old, signers, day) == "expired at 2030-04-24T13:00:00Z"
    stamped = approval(keys["alice"], "alice@example.com", expires="2030-05-01T11:30:00Z")
    assert reason(stamped, signers) == "expired at 2030-05-01T11:30:00Z"
    future = approval(keys["alice"], "alice@example.com", at="2030-05-02T00:00:00Z")
    assert reason(future, signers) == "signed in the future (2030-05-02T00:00:00Z)"


def _ok(principal: str, *tokens: str) -> Checked:
    return Checked({"by": principal}, principal, frozenset({principal, *tokens}))


def test_people_are_counted_once_per_key_and_per_principal() -> None:
    checked = [
        _ok("alice@example.com", "SHA256:A", "alice@home.example"),
        _ok("alice@home.example", "SHA256:A", "alice@example.com"),  # same key, the other name
        _ok("bob@example.com", "SHA256:B1"),
        _ok("bob@example.com", "SHA256:B2"),  # bob's second key
        Checked({"by": "carol@example.com"}, reason="unsigned"),
    ]
    kept, own = count_people(checked)
    assert [[c.principal for c in group] for group in kept] == [
        ["alice@example.com", "alice@home.example"],
        ["bob@example.com", "bob@example.com"],
    ] and own == []
    kept, own = count_people(checked, frozenset({"SHA256:A"}))
    assert [g[0].principal for g in kept] == ["bob@example.com"] and [g[0].principal for g in own] == [
        "alice@example.com"
    ]


@dataclass
class FakeGate:
    """What decide_approvals asks a gate, with checked entries given up front."""

    results: dict[str, Checked]
    me: frozenset[str]
    signed: list[str] = field(default_factory=list)

    def check(self, entries: list[dict[str, Any]], kind: str = "approval") -> list[Checked]:
        return [self.results[e["by"]] for e in entries]

    def deployer(self) -> frozenset[str]:
        return self.me

    def sign(self, method: str) -> dict[str, Any]:
        self.signed.append(method)
        return {"by": "me@example.com", "method": method}


RULE = Promotion.model_validate(
    {"from": "staging", "requires_approval": {"count": 2}, "approvers": ["a@x", "b@x", "me@example.com"]}
)


def _decide(
    gate: FakeGate, existing: list[str], rule: Promotion = RULE, **kw: Any
) -> tuple[list[Any], list[str]]:
    return decide_approvals(
        "api",
        "prod",
        COMMIT,
        rule,
        [{"by": b} for b in existing],
        "me@example.com",
        kw.pop("approve", False),
        NOW,
        kw.pop("ask", None),
        gate,
    )


def test_the_gate_counts_distinct_verified_people() -> None:
    gate = FakeGate(
        {
            "a@x": _ok("a@x", "SHA256:A"),
            "a2@x": _ok("a2@x", "SHA256:A"),
            "b@x": _ok("b@x", "SHA256:B"),
            "bad@x": Checked({"by": "bad@x"}, reason="unsigned"),
            "me@example.com": _ok("me@example.com", "SHA256:ME"),
        },
        frozenset({"SHA256:ME", "me@example.com"}),
    )
    assert _decide(gate, ["a@x", "b@x"]) == ([], ["a@x", "b@x"])
    with pytest.raises(AtmosError) as err:
        _decide(gate, ["a@x", "a2@x", "bad@x"])
    message = err.value.problems[0].message
    assert "found 1 (a@x)" in message and "bad@x's: unsigned" in message
    # --approve adds the deployer's signed approval; a terminal asks for it.
    new, who = _decide(gate, ["a@x"], approve=True)
    assert gate.signed == ["rollout"] and who == ["a@x", "me@example.com"] and len(new) == 1
    new, who = _decide(gate, ["a@x"], ask=lambda question: True)
    assert gate.signed[-1] == "manual" and who == ["a@x", "me@example.com"]


def test_the_gate_never_counts_the_deployer_when_self_approval_is_prevented() -> None:
    rule = Promotion.model_validate(
        {
            "requires_approval": {"count": 1, "prevent_self_approval": True},
            "approvers": ["a@x", "me@example.com"],
        }
    )
    gate = FakeGate(
        {"me@example.com": _ok("me@example.com", "SHA256:ME"), "a@x": _ok("a@x", "SHA256:A")},
        frozenset({"SHA256:ME"}),
    )
    with pytest.raises(AtmosError) as err:
        _decide(gate, ["me@example.com"], rule, ask=lambda question: True)
    assert "me@example.com's is the deployer's own (prevent_self_approval)" in err.value.problems[0].message
    with pytest.raises(AtmosError):
        _decide(gate, [], rule, approve=True)
    assert gate.signed == []
    assert _decide(gate, ["me@example.com", "a@x"], rule) == ([], ["a@x"])


def test_rules_with_approvers_are_validated() -> None:
    with pytest.raises(ValueError, match="requires no approval"):
        Promotion.model_validate({"approvers": ["a@x"]})
    with pytest.raises(ValueError, match="approval_method: ci"):
        Promotion.model_validate({"requires_approval": True, "approval_method": "ci", "approvers": ["a@x"]})
    with pytest.raises(ValueError, match="not a principal"):
        Promotion.model_validate({"requires_approval": True, "approvers": ["alice, bob"]})
    rule = Promotion.model_validate({"requires_approval": True, "approvals_expire_after": "7d"})
    assert rule.approvals_expire_seconds == 7 * 86400


def test_signing_keys_say_why_they_cannot_sign(tmp_path: Path) -> None:
    assert SigningKey("ssh", "").problem() == "no signing key is configured (git config user.signingkey)"
    assert "SSH keys only" in str(SigningKey("openpgp", "ABCDEF").problem())
    assert "does not exist" in str(SigningKey("ssh", str(tmp_path / "nope")).problem())
    assert SigningKey.from_config({"gpg.format": "ssh", "user.signingkey": "key::ssh-ed25519 AAAA"}).literal


def _tag(key: SigningKey | None, message: str) -> bytes:
    body = f"object {COMMIT}\ntype commit\ntag t\ntagger A <a@x> 1900000000 +0000\n\n{message}"
    return (body + (key.sign(body.encode(), "git") if key else "")).encode()


def test_tag_signatures_verified_unverified_or_bad(
    signers: AllowedSigners, keys: dict[str, SigningKey]
) -> None:
    record = DeploymentRecord(
        "api", "dev", "ecr/api", "terraform", COMMIT, "bob@example.com", "t", "success", "h", "applied"
    )
    message = record.to_message()
    assert tag_signature(_tag(keys["bob"], message), signers) == {
        "status": "verified",
        "by": "bob@example.com",
    }
    assert tag_signature(_tag(None, message), signers) == {"status": "unverified", "reason": "not signed"}
    assert tag_signature(_tag(keys["mallory"], message), signers)["status"] == "unverified"
    forged = _tag(keys["bob"], message).replace(b"deployed_by: bob", b"deployed_by: eve")
    assert tag_signature(forged, signers)["status"] == "bad"
    assert tag_signature(_tag(keys["bob"], message), None)["status"] == "unverified"
    # The record parser reads a signed message as the same record.
    text = _tag(keys["bob"], message).decode().split("\n\n", 1)[1]
    body, signature = split_signed(text)
    assert body == message and signature is not None and signature.startswith("-----BEGIN SSH SIGNATURE-----")
    parsed = parse_message(text, "tag", "obj")
    assert parsed is not None and parsed.signed and parsed.deployed_by == "bob@example.com"
    assert parsed.to_message() == message


def test_ssh_verify_checks_the_principal_and_namespace(
    signers: AllowedSigners, keys: dict[str, SigningKey]
) -> None:
    data = b"payload"
    signature = keys["bob"].sign(data, APPROVAL_NAMESPACE)
    assert ssh_verify(signers.text, "bob@example.com", APPROVAL_NAMESPACE, data, signature)
    assert not ssh_verify(signers.text, "alice@example.com", APPROVAL_NAMESPACE, data, signature)
    assert not ssh_verify(signers.text, "bob@example.com", APPROVAL_NAMESPACE, b"other", signature)
    # bob's line allows two namespaces only.
    other = keys["bob"].sign(data, "file")
    assert not ssh_verify(signers.text, "bob@example.com", "file", data, other)
