"""Signed approvals, rejections and deployment tags (SPEC §11): SSH signatures, as Git makes them.

An approval (or rejection) is a small JSON payload — deployment, target, commit, time, who,
how — in canonical form, signed with `ssh-keygen -Y sign -n atmos-tasks-approval` and the
invoker's Git signing key (`gpg.format ssh`, `user.signingkey`). It counts only when, at the
commit being deployed, the allowed-signers file verifies it for a principal the target's
`promotion.approvers` names, and what it says matches what is being deployed. Tags are signed
the way `git tag -s` signs them (namespace `git`, signature appended to the message), so
`git verify-tag` with `gpg.ssh.allowedSignersFile` checks them too.

Everything cheap is decided in Python (payload fields, the signing key's fingerprint read from
the signature, which principals list that key); `ssh-keygen` runs last, once per signature
that could count.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmos_tasks.errors import refused

if TYPE_CHECKING:
    from atmos_tasks.gitrepo import GitRepo
    from atmos_tasks.manifest import Promotion

APPROVAL_NAMESPACE = "atmos-tasks-approval"
TAG_NAMESPACE = "git"
# What `SigningKey.from_config` reads: one `git config` (or `git var -l`) for all of it.
CONFIG_PREFIXES = ("gpg.format", "gpg.ssh.program", "user.signingkey")
SSH_BEGIN = "-----BEGIN SSH SIGNATURE-----"
SIGNATURE_STARTS = (SSH_BEGIN, "-----BEGIN PGP SIGNATURE-----", "-----BEGIN SIGNED MESSAGE-----")
CLOCK_SKEW = timedelta(minutes=5)
SETUP_HINT = (
    "configure an SSH signing key: git config gpg.format ssh && git config user.signingkey "
    "~/.ssh/id_ed25519.pub (see 'Who can approve' in docs/promotion.md)"
)


class SigningError(Exception):
    """The configured key could not sign (missing file, no agent, wrong passphrase, no ssh-keygen)."""


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        found = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def canonical(payload: dict[str, Any]) -> str:
    """The bytes that are signed: sorted keys, no spaces, UTF-8; the same on every machine."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Keys and signatures, read without running anything.


def key_fingerprint(blob: bytes) -> str:
    """`SHA256:…` of a public key blob, as `ssh-keygen -l` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _public_blob(text: str) -> bytes | None:
    """The key blob of `ssh-ed25519 AAAA… [comment]` (or `key::…`, as Git writes a literal key)."""
    parts = text.strip().removeprefix("key::").split()
    if len(parts) < 2:
        return None
    try:
        return base64.b64decode(parts[1], validate=True)
    except ValueError:
        return None


def _ssh_string(data: bytes, at: int) -> tuple[bytes, int]:
    if at + 4 > len(data):
        raise ValueError("truncated")
    (size,) = struct.unpack(">I", data[at : at + 4])
    if at + 4 + size > len(data):
        raise ValueError("truncated")
    return data[at + 4 : at + 4 + size], at + 4 + size


@dataclass(frozen=True)
class SshSignature:
    public_key: bytes
    namespace: str

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.public_key)


def parse_signature(armored: str) -> SshSignature | None:
    """The signer's public key and the namespace of an armored SSH signature (SSHSIG); None when
    it is not one."""
    lines = [line.strip() for line in armored.strip().splitlines()]
    if len(lines) < 3 or lines[0] != SSH_BEGIN or lines[-1] != "-----END SSH SIGNATURE-----":
        return None
    try:
        blob = base64.b64decode("".join(lines[1:-1]), validate=True)
        if not blob.startswith(b"SSHSIG"):
            return None
        at = 6 + 4  # magic, version
        key, at = _ssh_string(blob, at)
        namespace, at = _ssh_string(blob, at)
        return SshSignature(key, namespace.decode("utf-8", "replace"))
    except (ValueError, struct.error):
        return None


def split_signed(text: str) -> tuple[str, str | None]:
    """(signed part, signature) of a tag object or message, as Git splits it: the signature starts
    at the last line that opens an armored block."""
    best = -1
    for start in SIGNATURE_STARTS:
        index = text.rfind("\n" + start)
        if index >= 0:
            best = max(best, index + 1)
        elif text.startswith(start):
            best = max(best, 0)
    if best < 0:
        return text, None
    return text[:best], text[best:]


# The allowed-signers file (`ssh-keygen(1)`, ALLOWED SIGNERS).


def _tokens(line: str) -> list[str]:
    """Whitespace-separated fields, a double-quoted span kept whole (`namespaces="a,b"`)."""
    out: list[str] = []
    current = ""
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
            current += ch
        elif ch.isspace() and not quoted:
            if current:
                out.append(current)
                current = ""
        else:
            current += ch
    if current:
        out.append(current)
    return out


def _is_key_type(token: str) -> bool:
    return token.startswith(("ssh-", "ecdsa-", "sk-", "rsa-")) or "@openssh.com" in token


def principal_matches(patterns: str, name: str) -> bool:
    """OpenSSH pattern-list matching: comma-separated, `*` and `?`, `!` negates."""
    matched = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        if fnmatch.fnmatchcase(name, pattern[1:] if negated else pattern):
            if negated:
                return False
            matched = True
    return matched


@dataclass(frozen=True)
class SignerLine:
    principals: str  # the pattern list, as written
    options: str
    fingerprint: str

    @property
    def cert_authority(self) -> bool:
        return "cert-authority" in self.options.lower()

    @property
    def names(self) -> list[str]:
        """The principals written without wildcards or negation: names a person goes by."""
        return [p for p in self.principals.split(",") if p and not any(c in p for c in "*?!")]


@dataclass(frozen=True)
class AllowedSigners:
    text: str
    lines: tuple[SignerLine, ...]

    @classmethod
    def parse(cls, text: str) -> AllowedSigners:
        lines = []
        for raw in text.splitlines():
            raw = raw.strip()
            if not raw or raw.startswith("#"):
                continue
            tokens = _tokens(raw)
            if len(tokens) < 3:
                continue
            principals = tokens[0].strip('"')
            rest = tokens[1:]
            options = ""
            if not _is_key_type(rest[0]):
                options, rest = rest[0], rest[1:]
            if len(rest) < 2:
                continue
            blob = _public_blob(f"{rest[0]} {rest[1]}")
            if blob is None:
                continue
            lines.append(SignerLine(principals, options, key_fingerprint(blob)))
        return cls(text, tuple(lines))

    def for_key(self, fingerprint: str) -> list[SignerLine]:
        return [line for line in self.lines if line.fingerprint == fingerprint]

    def names_for_key(self, fingerprint: str) -> list[str]:
        names: list[str] = []
        for line in self.for_key(fingerprint):
            names += [n for n in line.names if n not in names]
        return names

    @property
    def has_cert_authority(self) -> bool:
        return any(line.cert_authority for line in self.lines)


Verify = Callable[[str, str, str, bytes, str], bool]


def ssh_verify(signers_text: str, principal: str, namespace: str, data: bytes, signature: str) -> bool:
    """`ssh-keygen -Y verify`: does `signature` over `data` verify for `principal` in the file?"""
    with tempfile.TemporaryDirectory(prefix="atmos-verify-") as tmp:
        signers = Path(tmp) / "allowed_signers"
        signers.write_text(signers_text, encoding="utf-8")
        sig = Path(tmp) / "payload.sig"
        sig.write_text(signature if signature.endswith("\n") else signature + "\n", encoding="utf-8")
        try:
            proc = subprocess.run(
                [
                    "ssh-keygen",
                    "-Y",
                    "verify",
                    "-f",
                    str(signers),
                    "-I",
                    principal,
                    "-n",
                    namespace,
                    "-s",
                    str(sig),
                ],
                input=data,
                capture_output=True,
            )
        except FileNotFoundError:
            raise refused(
                "ssh-keygen is not installed: signatures cannot be checked",
                "install OpenSSH 8.2 or newer (ssh-keygen -Y verify)",
            ) from None
    return proc.returncode == 0


# The invoker's signing key, from Git's configuration.


@dataclass(frozen=True)
class SigningKey:
    format: str = "openpgp"
    key: str = ""
    program: str = "ssh-keygen"

    @classmethod
    def from_config(cls, values: dict[str, str]) -> SigningKey:
        return cls(
            format=(values.get("gpg.format") or "openpgp").lower(),
            key=values.get("user.signingkey", "").strip(),
            program=values.get("gpg.ssh.program") or "ssh-keygen",
        )

    @property
    def literal(self) -> bool:
        return self.key.startswith(("key::", "ssh-", "ecdsa-", "sk-"))

    def problem(self) -> str | None:
        """Why this configuration cannot sign here; None when it can."""
        if not self.key:
            return "no signing key is configured (git config user.signingkey)"
        if self.format != "ssh":
            return (
                f"gpg.format is {self.format}: atmos-tasks signs approvals and tags with SSH keys only "
                "(gpg.format ssh)"
            )
        if not self.literal and not Path(self.key).expanduser().exists():
            return f"the signing key {self.key} does not exist"
        return None

    @property
    def can_sign(self) -> bool:
        return self.problem() is None

    def public_key(self) -> str | None:
        """`type base64` of the key; read from the literal or the `.pub` file, else derived."""
        if self.literal:
            return self.key.removeprefix("key::").strip()
        path = Path(self.key).expanduser()
        for candidate in (path, Path(f"{path}.pub")):
            if candidate.name.endswith(".pub") and candidate.is_file():
                return candidate.read_text(encoding="utf-8").strip()
        try:
            proc = subprocess.run(
                [_keygen(self.program), "-y", "-P", "", "-f", str(path)], capture_output=True, text=True
            )
        except OSError:
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    def fingerprint(self) -> str | None:
        public = self.public_key()
        blob = _public_blob(public) if public else None
        return key_fingerprint(blob) if blob else None

    def sign(self, data: bytes, namespace: str) -> str:
        problem = self.problem()
        if problem:
            raise SigningError(problem)
        with tempfile.TemporaryDirectory(prefix="atmos-sign-") as tmp:
            if self.literal:
                keyfile = Path(tmp) / "key.pub"
                keyfile.write_text(self.key.removeprefix("key::").strip() + "\n", encoding="utf-8")
            else:
                keyfile = Path(self.key).expanduser()
            try:
                proc = subprocess.run(
                    [_keygen(self.program), "-Y", "sign", "-n", namespace, "-f", str(keyfile)],
                    input=data,
                    capture_output=True,
                )
            except OSError as err:
                raise SigningError(f"{self.program} could not run: {err}") from None
        signature = proc.stdout.decode("utf-8", "replace")
        if proc.returncode != 0 or SSH_BEGIN not in signature:
            detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SigningError(
                f"ssh-keygen could not sign with {self.key}: {detail[-1] if detail else 'failed'}"
            )
        return signature if signature.endswith("\n") else signature + "\n"


def _keygen(program: str) -> str:
    return program if os.sep in program or shutil.which(program) else "ssh-keygen"


def signing_key(repo: GitRepo) -> SigningKey:
    return SigningKey.from_config(repo.config_values(CONFIG_PREFIXES))


# Approval and rejection entries: the note keeps the signed payload and its signature.


def signed_entry(
    key: SigningKey | None, kind: str, deployment: str, commit: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """The note entry for `fields` (target, by, at, method, expires, reason), signed when `key` is given."""
    entry = {k: v for k, v in fields.items() if v is not None}
    if key is None:
        return entry
    payload = canonical({**entry, "kind": kind, "deployment": deployment, "commit": commit})
    try:
        signature = key.sign(payload.encode("utf-8"), APPROVAL_NAMESPACE)
    except SigningError as err:
        raise refused(f"cannot sign the {kind}: {err}", SETUP_HINT) from None
    return {**entry, "payload": payload, "signature": signature}


@dataclass(frozen=True)
class Checked:
    """One approval or rejection, checked: who it counts as, or why it does not count."""

    entry: dict[str, Any]
    principal: str | None = None
    person: frozenset[str] = frozenset()  # the key's fingerprint and the names its lines give
    reason: str | None = None

    @property
    def shown(self) -> str:
        return str(self.principal or self.entry.get("by") or "?")


@dataclass(frozen=True)
class Expected:
    """What a signed payload must say to count for this deployment."""

    kind: str  # approval | rejection
    deployment: str
    commit: str
    target: str | None = None
    approvers: tuple[str, ...] | None = None  # None: any principal the file lists
    ttl_seconds: int | None = None
    signers_path: str = "allowed_signers"


def check_entry(
    entry: dict[str, Any],
    expected: Expected,
    signers: AllowedSigners | None,
    now: datetime,
    verify: Verify = ssh_verify,
) -> Checked:
    """Pure but for `verify`, which runs only when every cheap check has passed."""
    payload_text, signature = entry.get("payload"), entry.get("signature")
    by = entry.get("by")
    if not isinstance(payload_text, str) or not isinstance(signature, str):
        return Checked(entry, reason="unsigned")
    try:
        payload = json.loads(payload_text)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return Checked(entry, reason="bad signature: the signed payload is not readable")
    short = expected.commit[:7]
    if payload.get("kind") != expected.kind:
        return Checked(entry, reason=f"replayed: signed as a {payload.get('kind')}, not an {expected.kind}")
    if payload.get("deployment") != expected.deployment:
        return Checked(entry, reason=f"replayed: signed for deployment {payload.get('deployment')!r}")
    if payload.get("commit") != expected.commit:
        return Checked(
            entry, reason=f"replayed: signed for commit {str(payload.get('commit'))[:7]}, not {short}"
        )
    if payload.get("target") != expected.target:
        return Checked(entry, reason=f"replayed: signed for target {payload.get('target')!r}")
    for name in ("target", "by", "at", "method", "expires", "reason"):
        if entry.get(name) != payload.get(name):
            return Checked(entry, reason=f"tampered: the note's {name} is not what was signed")
    by = payload.get("by")
    if not isinstance(by, str) or not by:
        return Checked(entry, reason="bad signature: the payload names no signer")
    found = parse_signature(signature)
    if found is None:
        kind = "a PGP or X.509 signature" if "BEGIN" in signature else "not a signature"
        return Checked(entry, reason=f"bad signature: {kind}; only SSH signatures are accepted")
    if found.namespace != APPROVAL_NAMESPACE:
        return Checked(entry, reason=f"bad signature: made for namespace {found.namespace!r}")
    if signers is None:
        return Checked(entry, reason=f"{expected.signers_path} does not exist at {short}")
    lines = signers.for_key(found.fingerprint)
    if not lines and not signers.has_cert_authority:
        return Checked(
            entry,
            reason=f"signed with key {found.fingerprint}, not listed in {expected.signers_path} at {short}",
        )
    if lines and not any(principal_matches(line.principals, by) for line in lines):
        names = ", ".join(signers.names_for_key(found.fingerprint)) or "another principal"
        return Checked(entry, reason=f"forged: claims {by} but is signed with the key of {names}")
    if expected.approvers is not None and by not in expected.approvers:
        return Checked(entry, reason=f"{by} is not an approver of {expected.target} (promotion.approvers)")
    at = _when(payload.get("at"))
    if at is None:
        return Checked(entry, reason="bad signature: the payload has no signing time")
    if at > now + CLOCK_SKEW:
        return Checked(entry, reason=f"signed in the future ({payload.get('at')})")
    limits = []
    if expected.ttl_seconds is not None:
        limits.append(at + timedelta(seconds=expected.ttl_seconds))
    if payload.get("expires") is not None:
        until = _when(payload.get("expires"))
        limits.append(until if until is not None else at)
    if limits and now > min(limits):
        return Checked(entry, reason=f"expired at {stamp(min(limits))}")
    if not verify(signers.text, by, APPROVAL_NAMESPACE, payload_text.encode("utf-8"), signature):
        return Checked(entry, reason="bad signature: it does not verify (tampered or forged)")
    person = frozenset({found.fingerprint, by, *signers.names_for_key(found.fingerprint)})
    return Checked(entry, principal=by, person=person)


def count_people(
    checked: Iterable[Checked], exclude: frozenset[str] = frozenset()
) -> tuple[list[list[Checked]], list[list[Checked]]]:
    """Valid entries grouped by person (entries sharing a key or a principal are one person), and
    the groups left out because they are the deployer's (`exclude`: the deployer's key and names)."""
    groups: list[tuple[set[str], list[Checked]]] = []
    for item in checked:
        if item.reason is not None:
            continue
        tokens = set(item.person)
        members = [item]
        for group in [g for g in groups if g[0] & tokens]:
            groups.remove(group)
            tokens |= group[0]
            members = group[1] + members
        groups.append((tokens, members))
    kept = [members for tokens, members in groups if not tokens & exclude]
    own = [members for tokens, members in groups if tokens & exclude]
    return kept, own


def tag_signature(raw: bytes, signers: AllowedSigners | None, verify: Verify = ssh_verify) -> dict[str, Any]:
    """A deployment tag's signature: verified (by whom), unverified (unsigned, or a key the allowed
    signers at the deployed commit do not list), or bad (it does not verify)."""
    text = raw.decode("utf-8", "replace")
    body, signature = split_signed(text)
    if signature is None:
        return {"status": "unverified", "reason": "not signed"}
    found = parse_signature(signature)
    if found is None:
        return {"status": "unverified", "reason": "not an SSH signature"}
    if found.namespace != TAG_NAMESPACE:
        return {"status": "bad", "reason": f"made for namespace {found.namespace!r}"}
    if signers is None:
        return {"status": "unverified", "reason": "no allowed-signers file at the deployed commit"}
    lines = signers.for_key(found.fingerprint)
    if not lines:
        return {"status": "unverified", "reason": f"key {found.fingerprint} is not an allowed signer"}
    principal = (lines[0].names or [lines[0].principals.split(",")[0]])[0]
    if not verify(signers.text, principal, TAG_NAMESPACE, body.encode("utf-8"), signature):
        return {"status": "bad", "reason": "the signature does not verify (tampered or forged)"}
    return {"status": "verified", "by": principal}


# The gate of one (deployment, target, commit): what promotion.decide_approvals asks.


@dataclass
class SignedApprovals:
    repo: GitRepo
    signers_path: str
    deployment: str
    target: str
    commit: str
    rule: Promotion
    now: datetime
    actor: str  # the deployer or approver as Git says (user.email, or the CI actor)
    verify: Verify = ssh_verify
    _signers: AllowedSigners | None = field(default=None, init=False)
    _signers_read: bool = field(default=False, init=False)
    _key: SigningKey | None = field(default=None, init=False)

    @property
    def signers(self) -> AllowedSigners | None:
        """The allowed signers at the commit being deployed (never the working tree's)."""
        if not self._signers_read:
            text = self.repo.file_at(self.commit, self.signers_path)
            self._signers = AllowedSigners.parse(text) if text is not None else None
            self._signers_read = True
        return self._signers

    @property
    def key(self) -> SigningKey:
        if self._key is None:
            self._key = signing_key(self.repo)
        return self._key

    def expected(self, kind: str = "approval") -> Expected:
        if kind == "rejection":
            return Expected("rejection", self.deployment, self.commit, None, None, None, self.signers_path)
        return Expected(
            "approval",
            self.deployment,
            self.commit,
            self.target,
            tuple(self.rule.approvers or ()),
            self.rule.approvals_expire_seconds,
            self.signers_path,
        )

    def check(self, entries: Sequence[dict[str, Any]], kind: str = "approval") -> list[Checked]:
        expected = self.expected(kind)
        return [check_entry(e, expected, self.signers, self.now, self.verify) for e in entries]

    def deployer(self) -> frozenset[str]:
        """The deployer's key and the principals it has at this commit; their email when they have
        no key (then self-asserted: see 'Who can approve' in docs/promotion.md)."""
        tokens = {self.actor}
        fingerprint = self.key.fingerprint() if self.key.format == "ssh" and self.key.key else None
        if fingerprint:
            tokens.add(fingerprint)
            if self.signers is not None:
                tokens.update(self.signers.names_for_key(fingerprint))
        return frozenset(tokens)

    def principal(self) -> str:
        """Who the invoker signs as: a name their key has in the allowed signers at the commit,
        preferring their email, then an approver of the target."""
        fingerprint = self.key.fingerprint() if self.key.can_sign else None
        names = self.signers.names_for_key(fingerprint) if fingerprint and self.signers else []
        approvers = self.rule.approvers or []
        for choice in (
            [n for n in names if n == self.actor],
            [n for n in names if n in approvers],
            names,
        ):
            if choice:
                return choice[0]
        return self.actor

    def sign(self, method: str) -> dict[str, Any]:
        """A new approval by the invoker, signed; refused when they have no usable key."""
        problem = self.key.problem()
        if problem:
            raise refused(
                f"{self.target} counts only signed approvals (promotion.approvers), and {problem}",
                SETUP_HINT,
            )
        ttl = self.rule.approvals_expire_seconds
        fields = {
            "target": self.target,
            "by": self.principal(),
            "at": stamp(self.now),
            "method": method,
            "expires": stamp(self.now + timedelta(seconds=ttl)) if ttl else None,
        }
        return signed_entry(self.key, "approval", self.deployment, self.commit, fields)
