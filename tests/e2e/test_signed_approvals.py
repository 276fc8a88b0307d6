"""Approvals and records you can verify: real `ssh-keygen` keys, real Git configuration per person,
an allowed-signers file committed in the repository, real rollouts.

People: alice (one key, two principals: alice@example.com and alice@home.example), bob, carol —
all in `allowed_signers` — and mallory, whose key is listed nowhere. Ada (the session's Git
identity) has no signing key. prod accepts promotions from staging with approvals signed by the
approvers the manifest names.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Repo, isolated_env, make_repo

APPROVERS = "[alice@example.com, alice@home.example, bob@example.com, carol@example.com]"
PROD_RULE = (
    "        requires_approval: {count: 2}\n"
    "        approval_method: manual\n"
    f"        approvers: {APPROVERS}\n"
)


class Person:
    def __init__(self, name: str, email: str, key: Path, config: Path) -> None:
        self.name, self.email, self.key, self.config = name, email, key, config

    @property
    def env(self) -> dict[str, str]:
        return {"GIT_CONFIG_GLOBAL": str(self.config)}

    def public(self) -> str:
        return " ".join(Path(f"{self.key}.pub").read_text().split()[:2])


def person(base: Path, name: str, email: str | None = None, key: Path | None = None) -> Person:
    """A person with an ed25519 key of their own (or `key`) and a Git config that signs with it."""
    email = email or f"{name}@example.com"
    if key is None:
        key = base / f"id_{name}"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", email, "-f", str(key)], check=True
        )
    config = base / f"{name}-{email}.gitconfig"
    config.write_text(
        f"[user]\n\tname = {name.title()}\n\temail = {email}\n\tsigningkey = {key}\n"
        "[gpg]\n\tformat = ssh\n[init]\n\tdefaultBranch = main\n"
    )
    return Person(name, email, key, config)


@pytest.fixture(scope="session")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Person]:
    base = tmp_path_factory.mktemp("keys")
    found = {name: person(base, name) for name in ("alice", "bob", "carol", "mallory")}
    # The same key, the other principal alice has in the allowed signers.
    found["alice-home"] = person(base, "alice", "alice@home.example", found["alice"].key)
    return found


def allowed_signers(people: dict[str, Person], *names: str) -> str:
    lines = {
        "alice": f"alice@example.com,alice@home.example {people['alice'].public()}",
        "bob": f'bob@example.com namespaces="atmos-tasks-approval,git" {people["bob"].public()}',
        "carol": f"carol@example.com {people['carol'].public()}",
    }
    return "# who may sign approvals and deployment records\n" + "".join(
        lines[n] + "\n" for n in names or tuple(lines)
    )


def set_prod_rule(repo: Repo, rule: str, old: str = "        requires_approval: true\n") -> None:
    repo.replace("deployments/api.yaml", old + "        approval_method: manual\n", rule)


def change_prod_rule(repo: Repo, rule: str) -> None:
    repo.replace("deployments/api.yaml", PROD_RULE, rule)


@pytest.fixture(scope="session")
def signed_template(
    example_template: Path, tmp_path_factory: pytest.TempPathFactory, home: Path, people: dict[str, Person]
) -> Path:
    """The example with a committed allowed-signers file and prod's approvers, on dev and staging."""
    repo = make_repo(example_template, tmp_path_factory.mktemp("signed") / "repo", isolated_env(home))
    repo.write("allowed_signers", allowed_signers(people))
    set_prod_rule(repo, PROD_RULE)
    repo.commit("Who may approve prod")
    assert repo.doit("rollout:api:dev").returncode == 0
    proc = repo.doit("rollout:api:staging", "--promote-from", "dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return repo.path


@pytest.fixture
def signed(signed_template: Path, tmp_path: Path, env: dict[str, str]) -> Repo:
    return make_repo(signed_template, tmp_path / "repo", env)


def approve(repo: Repo, who: Person, *args: str, target: str = "prod") -> subprocess.CompletedProcess[str]:
    return repo.cli("approve", "api", "--target", target, *args, env=who.env)


def approved(repo: Repo, who: Person, *args: str, target: str = "prod") -> str:
    proc = approve(repo, who, *args, target=target)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def refused(repo: Repo, *args: str, env: dict[str, str] | None = None) -> str:
    before = (repo.refs(), repo.tags())
    proc = repo.doit(*args, env=env)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "hint: " in proc.stderr
    assert (repo.refs(), repo.tags()) == before, "a refused rollout recorded something"
    return proc.stderr


def note(repo: Repo, commit: str, namespace: str = "approvals") -> dict:
    return json.loads(repo.git("notes", f"--ref=refs/notes/atmos/api/{namespace}", "show", commit))


def set_note(repo: Repo, commit: str, document: dict, namespace: str = "approvals") -> None:
    repo.git(
        "notes", f"--ref=refs/notes/atmos/api/{namespace}", "add", "-f", "-m", json.dumps(document), commit
    )


def staging_commit(repo: Repo) -> str:
    status = json.loads(repo.cli("status", "api", "--target", "staging", "--format", "json").stdout)
    shas = {entry["git_sha"] for entry in status["api"]["staging"].values()}
    assert len(shas) == 1
    return shas.pop()


def test_two_principals_approve_and_count_2_passes(signed: Repo, people: dict[str, Person]) -> None:
    commit = staging_commit(signed)
    assert "as alice@example.com (signed) (1 signed approval(s) verify)" in approved(signed, people["alice"])
    assert "(2 signed approval(s) verify)" in approved(signed, people["bob"])
    entries = note(signed, commit)["approvals"]
    assert [e["by"] for e in entries] == ["alice@example.com", "bob@example.com"]
    for entry in entries:
        payload = json.loads(entry["payload"])
        assert payload == {
            "kind": "approval",
            "deployment": "api",
            "target": "prod",
            "commit": commit,
            "by": entry["by"],
            "at": entry["at"],
            "method": "cli",
        }
        assert entry["signature"].startswith("-----BEGIN SSH SIGNATURE-----")
    # Carol deploys: her key signs the deployment tags too (record.sign: if-available, the default).
    proc = signed.doit("rollout:api:prod", "--promote-from", "staging", env=people["carol"].env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prod = json.loads(signed.cli("status", "api", "--target", "prod", "--format", "json").stdout)["api"][
        "prod"
    ]
    tags = {entry["tag"] for entry in prod.values()}
    assert {json.dumps(entry["signature"]) for entry in prod.values()} == {
        json.dumps({"status": "verified", "by": "carol@example.com"})
    }
    message = signed.tag_message(sorted(tags)[0])
    assert '"approver": "alice@example.com, bob@example.com"' in message
    assert "deployed_by: carol@example.com" in message
    # Git itself verifies the tags, against the same committed file.
    check = signed.run(
        "git",
        "-c",
        f"gpg.ssh.allowedSignersFile={signed.path / 'allowed_signers'}",
        "verify-tag",
        sorted(tags)[0],
    )
    assert check.returncode == 0 and 'Good "git" signature for carol@example.com' in check.stderr, (
        check.stderr
    )
    history = json.loads(signed.cli("history", "api", "--target", "prod", "--format", "json").stdout)
    assert history["rollouts"][0]["signature"] == "verified"
    assert history["rollouts"][0]["signed_by"] == "carol@example.com"
    table = signed.cli("history", "api", "--target", "prod").stdout
    assert "verified (carol@example.com)" in table
    # Ada's dev records are not signed (she has no key): unverified, and nothing was run to say so.
    dev = json.loads(signed.cli("status", "api", "--target", "dev", "--format", "json").stdout)["api"]["dev"]
    assert {entry["signature"]["status"] for entry in dev.values()} == {"unverified"}


def test_the_same_person_under_two_emails_counts_once(signed: Repo, people: dict[str, Person]) -> None:
    approved(signed, people["alice"])
    # Same key, the other principal alice has: one person, one approval.
    assert "(1 signed approval(s) verify)" in approved(signed, people["alice-home"])
    text = refused(signed, "rollout:api:prod", "--promote-from", "staging")
    assert "prod requires 2 signed approval(s)" in text and "found 1 (alice@example.com)" in text
    # Mallory writes bob's name in her Git config: her key is not bob's, and not listed at all.
    mallory_as_bob = person(
        people["mallory"].config.parent, "mallory", "bob@example.com", people["mallory"].key
    )
    proc = approve(signed, mallory_as_bob)
    assert (
        proc.returncode == 3
        and "would not count" in proc.stderr
        and "not listed in allowed_signers" in (proc.stderr)
    ), proc.stderr
    # A hand-written, unsigned approval in bob's name counts for nothing either.
    commit = staging_commit(signed)
    document = note(signed, commit)
    document["approvals"].append({"target": "prod", "by": "bob@example.com", "at": "2030-01-01T00:00:00Z"})
    set_note(signed, commit, document)
    text = refused(signed, "rollout:api:prod", "--promote-from", "staging")
    assert "found 1 (alice@example.com)" in text and "bob@example.com's: unsigned" in text
    status = json.loads(signed.cli("promotion-status", "api", "--format", "json").stdout)
    assert status["targets"]["prod"]["sources"]["staging"]["approvals"] == {"required": 2, "recorded": 1}
    # bob's own --approve on the rollout is signed like `atmos-tasks approve`, and makes two.
    proc = signed.doit("rollout:api:prod", "--promote-from", "staging", "--approve", env=people["bob"].env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rollout = note(signed, commit)["approvals"][-1]
    assert rollout["by"] == "bob@example.com" and rollout["method"] == "rollout" and "signature" in rollout


def test_an_approval_copied_onto_another_commit_or_target_does_not_count(
    signed: Repo, people: dict[str, Person]
) -> None:
    first = staging_commit(signed)
    approved(signed, people["bob"])
    signed.write("notes.md", "a second change\n")
    second = signed.commit("A second change")
    assert signed.doit("rollout:api:dev").returncode == 0
    assert signed.doit("rollout:api:staging", "--promote-from", "dev").returncode == 0
    approved(signed, people["alice"])
    # bob approves the second commit for staging (a target without approvers: signed all the same).
    approved(signed, people["bob"], "--git-sha", second, target="staging")
    (bob_prod,) = note(signed, first)["approvals"]
    alice, bob_staging = note(signed, second)["approvals"]
    # bob's approval of the first commit, copied verbatim onto the second.
    set_note(signed, second, {"approvals": [alice, bob_prod]})
    text = refused(signed, "rollout:api:prod", "--promote-from", "staging")
    assert f"bob@example.com's: replayed: signed for commit {first[:7]}, not {second[:7]}" in text
    # bob's approval of the second commit for staging, re-filed under prod.
    set_note(signed, second, {"approvals": [alice, {**bob_staging, "target": "prod"}]})
    text = refused(signed, "rollout:api:prod", "--promote-from", "staging")
    assert "bob@example.com's: replayed: signed for target 'staging'" in text
    assert "found 1 (alice@example.com)" in text


def test_a_tampered_note_does_not_count(signed: Repo, people: dict[str, Person]) -> None:
    commit = staging_commit(signed)
    approved(signed, people["alice"])
    approved(signed, people["bob"])
    alice, bob = note(signed, commit)["approvals"]
    # The note's field edited, the signed payload left alone.
    set_note(signed, commit, {"approvals": [alice, {**bob, "by": "carol@example.com"}]})
    text = refused(signed, "rollout:api:prod", "--promote-from", "staging")
    assert "carol@example.com's: tampered: the note's by is not what was signed" in text
    # Another time, in the note and in the signed payload alike: the signature no longer matches.
    earlier = str(int(bob["at"][:4]) - 1) + bob["at"][4:]
    forged = {**bob, "at": earlier, "payload": bob["payload"].replace(bob["at"], earlier)}
    set_note(signed, commit, {"approvals": [alice, forged]})
    text = refused(signed, "rollout:api:prod", "--promote-from", "staging")
    assert "bob@example.com's: bad signature: it does not verify (tampered or forged)" in text
    assert "found 1 (alice@example.com)" in text


def test_a_principal_removed_later_no_longer_counts_for_later_commits(
    signed: Repo, people: dict[str, Person]
) -> None:
    first = staging_commit(signed)
    signed.write("allowed_signers", allowed_signers(people, "alice", "carol"))
    second = signed.commit("bob no longer approves")
    assert signed.doit("rollout:api:dev").returncode == 0
    assert signed.doit("rollout:api:staging", "--promote-from", "dev").returncode == 0
    # At the commit that removed him, bob's approval would never count: refused before it is written.
    proc = approve(signed, people["bob"])
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"not listed in allowed_signers at {second[:7]}" in proc.stderr
    assert signed.run("git", "notes", "--ref=refs/notes/atmos/api/approvals", "show", second).returncode != 0
    # validate says so, and that is all: it is not an error.
    checked = signed.cli("validate", "api")
    assert checked.returncode == 0 and "prod: approver bob@example.com has no key in allowed_signers" in (
        checked.stderr
    )
    # For the commit before it, bob still counts.
    assert "(1 signed approval(s) verify)" in approved(signed, people["bob"], "--git-sha", first)
    # The working tree does not decide: mallory added there, uncommitted, is still nobody.
    (signed.path / "allowed_signers").write_text(
        allowed_signers(people, "alice", "carol") + f"mallory@example.com {people['mallory'].public()}\n"
    )
    proc = approve(signed, people["mallory"])
    assert proc.returncode == 3 and f"not listed in allowed_signers at {second[:7]}" in proc.stderr


def test_self_approval_is_refused(signed: Repo, people: dict[str, Person]) -> None:
    # The rule is read from the working tree's manifest.
    change_prod_rule(signed, PROD_RULE.replace("{count: 2}", "{count: 1, prevent_self_approval: true}"))
    approved(signed, people["alice"], "--git-sha", staging_commit(signed))
    # Alice deploys with her key: her own approval is excluded, whichever email she uses.
    for who in (people["alice"], people["alice-home"]):
        text = refused(signed, "rollout:api:prod", "--promote-from", "staging", env=who.env)
        assert "found 0 (none)" in text and "alice@example.com's is the deployer's own" in text
    text = refused(
        signed, "rollout:api:prod", "--promote-from", "staging", "--approve", env=people["alice"].env
    )
    assert "does not accept its deployer's approval" in text
    # Without a key, the deployer is their email (self-asserted): alice's email is still alice.
    no_key = Path(people["alice"].config.parent / "alice-nokey.gitconfig")
    no_key.write_text("[user]\n\tname = Alice\n\temail = alice@example.com\n")
    text = refused(
        signed, "rollout:api:prod", "--promote-from", "staging", env={"GIT_CONFIG_GLOBAL": str(no_key)}
    )
    assert "alice@example.com's is the deployer's own" in text
    # Bob may deploy alice's approval.
    proc = signed.doit("rollout:api:prod", "--promote-from", "staging", env=people["bob"].env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_unsigned_expired_and_unconfigured_approvals_are_refused_with_the_reason(
    signed: Repo, people: dict[str, Person]
) -> None:
    # Ada has no signing key: she cannot approve prod at all, and is told how to set one up.
    proc = signed.cli("approve", "api", "--target", "prod")
    assert proc.returncode == 3 and "no signing key is configured" in proc.stderr
    assert "gpg.format ssh" in proc.stderr
    gpg = people["alice"].config.parent / "gpg.gitconfig"
    gpg.write_text("[user]\n\temail = alice@example.com\n\tsigningkey = ABCDEF01\n")
    proc = signed.cli("approve", "api", "--target", "prod", env={"GIT_CONFIG_GLOBAL": str(gpg)})
    assert proc.returncode == 3 and "gpg.format is openpgp" in proc.stderr and "SSH keys only" in proc.stderr
    # Approvals expire: one second after signing, they no longer count.
    change_prod_rule(
        signed, PROD_RULE.replace("{count: 2}", "{count: 1}") + "        approvals_expire_after: 1s\n"
    )
    approved(signed, people["alice"], "--git-sha", staging_commit(signed))
    time.sleep(2.2)
    text = refused(signed, "rollout:api:prod", "--promote-from", "staging")
    assert "alice@example.com's: expired at" in text


def test_rejections_count_when_signed(signed: Repo, people: dict[str, Person]) -> None:
    commit = staging_commit(signed)
    approved(signed, people["alice"])
    approved(signed, people["bob"])
    # Ada's rejection is not signed: prod does not honour it, and she is told.
    proc = signed.cli("reject", "api", "--git-sha", commit, "--reason", "breaks checkout")
    assert proc.returncode == 0 and "prod count only signed rejections" in proc.stderr
    proc = signed.cli(
        "reject", "api", "--git-sha", commit, "--reason", "really breaks checkout", env=people["carol"].env
    )
    assert proc.returncode == 0 and "(signed)" in proc.stdout
    text = refused(signed, "rollout:api:prod", "--promote-from", "staging")
    assert "was rejected by carol@example.com: really breaks checkout" in text
    assert "ignoring the rejection" in text and "by ada@example.com: unsigned" in text


def test_record_sign_always_refuses_without_a_key_and_tampered_tags_show_as_bad(
    signed: Repo, people: dict[str, Person]
) -> None:
    signed.write("atmos.yaml", (signed.path / "atmos.yaml").read_text() + "record:\n  sign: always\n")
    signed.commit("Sign every record")
    text = refused(signed, "rollout:api:dev")
    assert "record.sign: always" in text and "no signing key is configured" in text
    signed.replace(
        "deployments/api.yaml",
        "context: { cpu: 256, memory: 512, replicas: 1 }",
        "context: { cpu: 256, memory: 512, replicas: 2 }",
    )
    signed.commit("Two replicas on dev")
    proc = signed.doit("rollout:api:dev", env=people["mallory"].env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Signed by a key the allowed signers do not list: unverified.
    history = json.loads(signed.cli("history", "api", "--target", "dev", "--format", "json").stdout)
    latest = history["rollouts"][0]
    assert latest["signature"] == "unverified"
    assert all("is not an allowed signer" in c["signature"]["reason"] for c in latest["components"].values())
    signed.replace("deployments/api.yaml", "replicas: 2 }", "replicas: 3 }")
    signed.commit("Three replicas on dev")
    proc = signed.doit("rollout:api:dev", env=people["carol"].env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    history = json.loads(signed.cli("history", "api", "--target", "dev", "--format", "json").stdout)
    assert history["rollouts"][0]["signature"] == "verified"
    tag = next(iter(history["rollouts"][0]["components"].values()))["tag"]
    # A tag rewritten with its signature kept (the record says someone else deployed): bad.
    raw = signed.run("git", "cat-file", "tag", tag).stdout
    forged = raw.replace("deployed_by: carol@example.com", "deployed_by: alice@example.com")
    assert forged != raw
    sha = signed.run("git", "hash-object", "-w", "-t", "tag", "--stdin", input=forged).stdout.strip()
    signed.git("update-ref", f"refs/tags/{tag}", sha)
    history = json.loads(signed.cli("history", "api", "--target", "dev", "--format", "json").stdout)
    assert history["rollouts"][0]["signature"] == "bad"
    assert "bad signature" in signed.cli("history", "api", "--target", "dev").stdout


def test_a_target_without_approvals_does_no_signature_work(
    signed: Repo, people: dict[str, Person], tmp_path: Path
) -> None:
    """No ssh-keygen and no read of the allowed signers on a rollout of a target without approvers."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "ssh-keygen.log"
    fake = bin_dir / "ssh-keygen"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexit 1\n')
    fake.chmod(0o755)
    trace = tmp_path / "git.trace"
    signed.replace("deployments/api.yaml", "replicas: 1 }", "replicas: 2 }")
    signed.commit("Two replicas on dev")
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GIT_TRACE": str(trace)}
    proc = signed.doit("rollout:api:dev", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not log.exists(), log.read_text()
    assert "allowed_signers" not in trace.read_text()
    # With a key and record.sign: never, the same.
    signed.write("atmos.yaml", (signed.path / "atmos.yaml").read_text() + "record:\n  sign: never\n")
    signed.replace("deployments/api.yaml", "replicas: 2 }", "replicas: 3 }")
    signed.commit("Three replicas on dev; unsigned records")
    proc = signed.doit("rollout:api:dev", env={**env, **people["carol"].env})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not log.exists(), log.read_text()
    assert "allowed_signers" not in trace.read_text()
