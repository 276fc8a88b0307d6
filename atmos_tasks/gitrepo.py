"""All Git access goes through this module (SPEC §10).

Plumbing commands through `git` itself: one process per operation, bulk reads with a single
`for-each-ref`, ref updates as one `update-ref --stdin` transaction.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from atmos_tasks import inputs
from atmos_tasks.errors import AtmosError, Problem, bad_input

ZERO_SHA = "0" * 40
SCRATCH = "refs/notes/atmos-scratch/"
_FIELD = "\x00"
_RECORD = "\x1e\n"


def ref_format(fields: Sequence[str]) -> str:
    """The `for-each-ref --format` of rows of these fields: NUL between fields, RS ending a row."""
    return "%00".join(f"%({f})" for f in fields) + "%1e"


def _env() -> dict[str, str]:
    # A copy (not `{**os.environ}`): while a compilation is observed, os.environ notes each
    # variable read by name, and a child's environment is keyed apart (graphcache.GIT_ENV).
    env = os.environ.copy()
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    return env


class GitError(Exception):
    """A Git command that failed; its message names the subcommand, not the whole command line."""

    def __init__(self, args: Sequence[str], code: int, stderr: str) -> None:
        super().__init__(f"git {_subcommand(args)} failed ({code}): {stderr.strip()}")
        self.code = code
        self.stderr = stderr


def _subcommand(args: Sequence[str]) -> str:
    """`for-each-ref` of `-C path for-each-ref --format=… refs/…`."""
    rest = list(args)
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if option in ("-C", "-c") and rest:
            rest.pop(0)
    return rest[0] if rest else "(no command)"


def not_a_repository(root: Path) -> AtmosError:
    return bad_input(
        f"{root} is not a Git repository (nor inside one)",
        None,
        "run it in a Git repository (git init && git commit)",
    )


class RefRaceError(Exception):
    """Another rollout moved a ref between our read and our write."""


class RemotePushError(AtmosError):
    """A push that failed for another reason than a lost race: nothing was pushed."""

    def __init__(self, remote: str, stderr: str) -> None:
        last = stderr.splitlines()[-1] if stderr else "no message"
        super().__init__(
            [
                Problem(
                    f"cannot push to remote {remote!r}: {last}",
                    None,
                    "check that the remote is reachable and accepts pushes (git remote -v), then run again",
                )
            ],
            exit_code=1,
        )


@dataclass(frozen=True)
class WorkingTree:
    head: str | None
    branch: str
    dirty: list[str]


@dataclass(frozen=True)
class Ident:
    name: str
    email: str


@dataclass(frozen=True)
class RefUpdate:
    ref: str
    new: str
    old: str | None  # None: must not exist yet


class GitRepo:
    def __init__(self, root: Path) -> None:
        self.root = root

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            proc = subprocess.run(
                ["git", *args], cwd=self.root, input=input, capture_output=True, text=True, env=_env()
            )
        except OSError as err:
            raise self._not_started(err) from None
        if check and proc.returncode != 0:
            raise self._failed(args, proc.returncode, proc.stderr)
        return proc

    def _not_started(self, err: OSError) -> Exception:
        """Why git did not start: the same error for a missing executable and a missing working
        directory, told apart."""
        if not self.root.is_dir():
            problem = "does not exist" if not self.root.exists() else "is not a directory"
            return bad_input(f"{self.root} {problem}", None, "run in a Git repository")
        if isinstance(err, FileNotFoundError):
            return bad_input("git is not installed", None, "install Git 2.30 or newer")
        return err

    def _failed(self, args: Sequence[str], code: int, stderr: str) -> Exception:
        if "not a git repository" in stderr.lower():
            return not_a_repository(self.root)
        return GitError(args, code, stderr)

    def working_tree(self, ignore: Sequence[str] = (".atmos",)) -> WorkingTree:
        """HEAD, branch and dirty paths with one `git status` (untracked files count as dirty)."""
        try:
            proc = self.run(
                "status",
                "--porcelain=v2",
                "--branch",
                "-z",
                "--untracked-files=normal",
                "--",
                ".",
                *(f":(exclude){p}" for p in ignore),
            )
        except GitError as err:
            raise AtmosError(
                [
                    Problem(
                        f"{self.root} is not a usable Git repository: {err.stderr.strip()}",
                        None,
                        "run inside a Git repository (git init && git commit)",
                    )
                ]
            ) from None
        head: str | None = None
        branch = ""
        dirty: list[str] = []
        entries = proc.stdout.split("\0")
        index = 0
        while index < len(entries):
            entry = entries[index]
            index += 1
            if not entry:
                continue
            if entry.startswith("# branch.oid "):
                oid = entry.split(" ", 2)[2]
                head = None if oid == "(initial)" else oid
            elif entry.startswith("# branch.head "):
                name = entry.split(" ", 2)[2]
                branch = "" if name == "(detached)" else name
            elif entry.startswith("#"):
                continue
            elif entry.startswith("2 "):
                dirty.append(entry.split(" ", 9)[9])
                index += 1  # a rename carries its original path as the next entry
            elif entry.startswith(("1 ", "u ")):
                dirty.append(entry.split(" ", 8 if entry[0] == "1" else 10)[-1])
            elif entry.startswith("? "):
                dirty.append(entry[2:])
        return WorkingTree(head, branch, dirty)

    def ident(self) -> Ident:
        """Who is acting, as Git would write it on a commit."""
        text = self.run("var", "GIT_COMMITTER_IDENT").stdout.strip()
        name, _, rest = text.partition(" <")
        email = rest.split(">", 1)[0]
        return Ident(name.strip(), email)

    def ident_and_config(self, prefixes: Sequence[str]) -> tuple[Ident, dict[str, str]]:
        """Who is acting and the config values under `prefixes` (e.g. `gpg.`), from one `git var -l`.

        Falls back to `ident` (which refuses an unknown identity, as Git does for a commit) when
        Git had to make up an address.
        """
        text = self.run("var", "-l").stdout
        values: dict[str, str] = {}
        ident_line = ""
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if not sep:
                continue
            if key == "GIT_COMMITTER_IDENT":
                ident_line = value
            elif key.lower().startswith(tuple(p.lower() for p in prefixes)):
                values[key.lower()] = value  # the last one wins, as for Git
        name, _, rest = ident_line.partition(" <")
        email = rest.split(">", 1)[0]
        if not ident_line or email.endswith(".(none)"):
            return self.ident(), values
        return Ident(name.strip(), email), values

    def config_values(self, prefixes: Sequence[str]) -> dict[str, str]:
        """Config values whose names start with one of `prefixes`, in one `git config` process."""
        pattern = "^(" + "|".join(p.replace(".", "\\.") for p in prefixes) + ")"
        proc = self.run("config", "-z", "--get-regexp", pattern, check=False)
        values: dict[str, str] = {}
        for entry in proc.stdout.split("\0"):
            key, _, value = entry.partition("\n")
            if key:
                values[key.lower()] = value
        return values

    def file_at(self, commit: str, path: str) -> str | None:
        """A file's text as `commit` has it (path relative to this checkout's root); None if absent."""
        proc = self.run("cat-file", "blob", f"{commit}:./{path}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def read_objects(self, specs: Sequence[str]) -> dict[str, tuple[str, bytes] | None]:
        """Object type and content of each spec (`<sha>`, `<commit>:./<path>`) from one `git cat-file
        --batch`; None for a missing one."""
        unique = list(dict.fromkeys(specs))
        if not unique:
            return {}
        try:
            proc = subprocess.run(
                ["git", "cat-file", "--batch"],
                cwd=self.root,
                input="".join(f"{spec}\n" for spec in unique).encode(),
                capture_output=True,
                env=_env(),
            )
        except OSError:
            raise not_a_repository(self.root) from None
        if proc.returncode != 0:
            raise GitError(("cat-file",), proc.returncode, proc.stderr.decode(errors="replace"))
        out: dict[str, tuple[str, bytes] | None] = {}
        data, at = proc.stdout, 0
        for spec in unique:
            end = data.index(b"\n", at)
            line = data[at:end].decode(errors="replace")
            at = end + 1
            if line.endswith((" missing", " ambiguous")):
                out[spec] = None
                continue
            _oid, kind, size = line.split(" ")
            out[spec] = (kind, data[at : at + int(size)])
            at += int(size) + 1
        return out

    def for_each_ref(self, patterns: Iterable[str], fields: Sequence[str]) -> list[list[str]]:
        """One `git for-each-ref` over all patterns; each row holds the requested fields."""
        patterns = list(patterns)
        inputs.refs(patterns)
        fmt = ref_format(fields)
        proc = self.run("for-each-ref", f"--format={fmt}", *patterns)
        rows = []
        for record in proc.stdout.split(_RECORD):
            if not record:
                continue
            rows.append(record.split(_FIELD))
        return rows

    def for_each_ref_rows(
        self, patterns: Iterable[str], fields: Sequence[str], observe: bool = True
    ) -> Generator[list[str], None, None]:
        """One `git for-each-ref` over all patterns, read as Git writes it: batches of rows, each
        row its fields joined by NUL (an empty row may occur: skip it). `observe=False`: refs a
        listing by pattern already observed for a compilation (`inputs.refs`).

        The output is never held whole (9 MB for the records of 15,000 components, its decoded copy
        and its split rows): each batch is a pipe's worth, parsed and dropped before the next. (Git
        2.39 writes its rows only once it has read every object: the batches come in a burst.)
        """
        patterns = list(patterns)
        if observe:
            inputs.refs(patterns)
        args = ("for-each-ref", f"--format={ref_format(fields)}", *patterns)
        try:
            proc = subprocess.Popen(
                ["git", *args], cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
            )
        except OSError as err:
            raise self._not_started(err) from None
        assert proc.stdout is not None and proc.stderr is not None
        with proc:
            try:
                fd, tail = proc.stdout.fileno(), b""
                while data := os.read(fd, 1 << 20):
                    data = tail + data if tail else data
                    end = data.rfind(b"\x1e\n")
                    if end < 0:
                        tail = data
                        continue
                    tail = data[end + 2 :]
                    yield data[:end].decode("utf-8", "replace").split(_RECORD)
                if tail.strip():
                    yield [tail.decode("utf-8", "replace")]
                # Read once stdout is done: for-each-ref writes a line or two there at most.
                stderr = proc.stderr.read().decode("utf-8", "replace")
            except BaseException:
                proc.kill()  # the caller stopped reading (or failed): Git is not left writing
                raise
        if proc.returncode != 0:
            raise self._failed(args, proc.returncode, stderr)

    def write_objects(self, kind: str, bodies: Sequence[str]) -> list[str]:
        """Write several objects of one kind with a single `git hash-object` process."""
        if not bodies:
            return []
        import tempfile

        with tempfile.TemporaryDirectory(prefix="atmos-objects-") as tmp:
            paths = []
            for index, body in enumerate(bodies):
                path = Path(tmp) / f"{index}"
                path.write_text(body, encoding="utf-8")
                paths.append(str(path))
            proc = self.run("hash-object", "-w", "-t", kind, "--stdin-paths", input="\n".join(paths) + "\n")
        shas = proc.stdout.split()
        if len(shas) != len(bodies):
            raise GitError(("hash-object",), 1, f"expected {len(bodies)} object ids, got {len(shas)}")
        return shas

    def update_refs(self, updates: Sequence[RefUpdate]) -> None:
        """Compare-and-swap every ref in one transaction: all move, or none does."""
        if not updates:
            return
        lines = ["start"]
        for update in updates:
            if update.old is None:
                lines.append(f"create {update.ref} {update.new}")
            else:
                lines.append(f"update {update.ref} {update.new} {update.old}")
        lines += ["prepare", "commit", ""]
        # Every value is a full object id. With ambiguous-ref warnings on (Git's default), Git
        # first looks each one up as a ref name under every DWIM prefix (`refs/<id>`,
        # `refs/tags/<id>`, … with packed-refs each time), about 24 failed stats per ref moved:
        # half the transaction's time for a few hundred refs.
        proc = self.run(
            "-c", "core.warnAmbiguousRefs=false", "update-ref", "--stdin", input="\n".join(lines), check=False
        )
        if proc.returncode != 0:
            raise RefRaceError(proc.stderr.strip())

    def rev_parse(self, rev: str) -> str | None:
        proc = self.run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        return proc.stdout.strip() or None

    def commit(self, rev: str) -> str:
        """The commit `rev` names (a full id); bad input when it names none."""
        found = self.rev_parse(rev)
        if found is None:
            raise bad_input(f"{rev!r} is not a commit of this repository", None, "give a commit id")
        return found

    def commit_time(self, sha: str) -> int:
        return int(self.run("show", "-s", "--format=%ct", sha).stdout.strip())

    def ref(self, name: str) -> str | None:
        if name.startswith("refs/"):
            inputs.refs([name])
        proc = self.run("rev-parse", "--verify", "--quiet", name, check=False)
        return proc.stdout.strip() or None

    # Notes: one JSON document per commit per namespace, written compare-and-swap.

    def note(self, ref: str, commit: str) -> str | None:
        """The note `ref` holds for `commit`. One process: `git notes show` runs `git show` itself."""
        inputs.refs([ref])
        proc = self.run("show", "-s", "--format=%N", f"--notes={ref}", commit, "--", check=False)
        if proc.returncode != 0:
            return None
        text = proc.stdout[:-1] if proc.stdout.endswith("\n") else proc.stdout  # the format's own newline
        return text or None

    def write_note(self, ref: str, commit: str, text: str, expected: str | None) -> str:
        """Set the note of `commit`, only if `ref` still is `expected`; returns the new notes commit.

        Plumbing only (blob, tree, commit, then one compare-and-swap `update-ref`): nothing is
        reachable before the ref moves, so a process killed at any point leaves no trace but
        unreachable objects (no scratch ref, no half-moved ref).
        """
        blob = self.write_objects("blob", [text])[0]
        notes = self.notes_in(expected) if expected else {}
        notes[commit] = blob
        new = self.notes_commit(notes, [expected] if expected else [], "Notes added by atmos-tasks")
        self.update_refs([RefUpdate(ref, new, expected)])
        return new

    def prune_scratch_refs(self) -> None:
        """Scratch refs that earlier versions left behind when killed mid-write."""
        rows = self.for_each_ref([SCRATCH], ["refname", "objectname"])
        if rows:
            self.update_refs([RefUpdate(name, ZERO_SHA, sha) for name, sha in rows])

    def commit_object(self, message: str) -> str:
        """A parentless commit of the empty tree carrying `message` (what a lock ref points at)."""
        tree = self.run("mktree", input="").stdout.strip()
        return self.run("commit-tree", tree, "-m", message).stdout.strip()

    def notes_in(self, notes_commit: str) -> dict[str, str]:
        """annotated object → note blob, read from a notes commit's tree (any fan-out)."""
        proc = self.run("ls-tree", "-r", "-z", notes_commit)
        found = {}
        for entry in proc.stdout.split("\0"):
            meta, _, path = entry.partition("\t")
            fields = meta.split(" ")
            name = path.replace("/", "")  # fan-out directories: ab/cdef… names object abcdef…
            if len(fields) == 3 and fields[1] == "blob" and len(name) == 40:
                found[name] = fields[2]
        return found

    def blob_text(self, sha: str) -> str:
        return self.run("cat-file", "blob", sha).stdout

    def notes_commit(self, notes: dict[str, str], parents: Sequence[str], message: str) -> str:
        """A notes commit holding `notes` (object → blob) in a flat tree; Git reads any fan-out."""
        lines = "".join(f"100644 blob {blob}\t{obj}\n" for obj, blob in sorted(notes.items()))
        tree = self.run("mktree", input=lines).stdout.strip()
        args = [arg for parent in parents for arg in ("-p", parent)]
        return self.run("commit-tree", tree, *args, "-m", message).stdout.strip()

    # Worktrees, history between commits.

    def worktree(self, path: Path, commit: str) -> None:
        """A detached worktree of `commit` at `path` (reused when it already holds that commit)."""
        if (path / ".git").exists():
            head = self.run("-C", str(path), "rev-parse", "HEAD", check=False).stdout.strip()
            if head == commit and not self.run("-C", str(path), "status", "--porcelain", check=False).stdout:
                return
            self.run("worktree", "remove", "--force", str(path), check=False)
        self.run("worktree", "prune", check=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.run("worktree", "add", "--detach", "--force", str(path), commit)

    def count_between(self, older: str, newer: str) -> int:
        return int(self.run("rev-list", "--count", f"{older}..{newer}").stdout.strip() or 0)

    def is_ancestor(self, older: str, newer: str) -> bool:
        return self.run("merge-base", "--is-ancestor", older, newer, check=False).returncode == 0

    def subjects(self, commits: Iterable[str]) -> dict[str, str | None]:
        """Each commit's subject (`%s`), from one `git cat-file --batch`; None for a commit this
        repository lacks (a record may name one pruned or never fetched)."""
        found = self.read_objects(list(commits))
        return {
            sha: commit_subject(obj[1]) if obj is not None and obj[0] == "commit" else None
            for sha, obj in found.items()
        }

    def commits_between(
        self, older: str, newer: str, paths: Sequence[str] | None = None
    ) -> list[tuple[str, str, bool]]:
        """(commit, subject, only in `newer`) for each commit one side has and the other lacks,
        newest first; with `paths`, only the commits that change them."""
        args = ["log", "--left-right", "--format=%m%x00%H%x00%s", f"{older}...{newer}"]
        out = []
        for line in self.run(*args, "--", *(paths or [])).stdout.splitlines():
            mark, sha, subject = line.split("\0", 2)
            out.append((sha, subject, mark == ">"))
        return out

    def numstat(
        self, older: str, newer: str, paths: Sequence[str] | None = None
    ) -> list[tuple[int | None, int | None, str]]:
        """(added, deleted, path) per changed file, of `paths` only when given; None counts for
        binary files."""
        out = []
        args = ["diff", "--numstat", "-z", "--no-renames", older, newer, "--", *(paths or [])]
        for line in self.run(*args).stdout.split("\0"):
            if not line.strip():
                continue
            added, deleted, path = line.split("\t", 2)
            out.append((None if added == "-" else int(added), None if deleted == "-" else int(deleted), path))
        return out

    # A remote shared by CI jobs and laptops.

    def fetch(self, remote: str, refspecs: Sequence[str]) -> None:
        proc = self.run("fetch", "--quiet", "--no-tags", "--prune", remote, *refspecs, check=False)
        if proc.returncode != 0:
            raise AtmosError(
                [
                    Problem(
                        f"cannot fetch from remote {remote!r}: {proc.stderr.strip()}",
                        None,
                        "check the remote's name and that it is reachable (git remote -v)",
                    )
                ]
            )

    def push_atomic(self, remote: str, updates: Sequence[RefUpdate]) -> None:
        """Push every ref or none, each only if the remote still holds what we expect (a lease)."""
        if not updates:
            return
        leases = [f"--force-with-lease={u.ref}:{u.old or ''}" for u in updates]
        specs = [f":{u.ref}" if u.new == ZERO_SHA else f"{u.new}:{u.ref}" for u in updates]
        proc = self.run("push", "--atomic", "--quiet", "--no-verify", *leases, remote, *specs, check=False)
        if proc.returncode != 0:
            # Git lists every ref of a failed atomic push; the first rejected one says enough.
            lines = [line.strip() for line in proc.stderr.splitlines() if line.strip().startswith("!")]
            if lines:  # refs refused one by one: a lease (here or at the remote's ref lock) said no
                raced = [line for line in lines if "stale info" in line or "rejected" in line]
                raise RefRaceError((raced or lines)[0])
            # No ref was even considered: the remote could not be reached or the push failed as a whole.
            raise RemotePushError(remote, proc.stderr.strip())


def commit_subject(raw: bytes) -> str:
    """A commit object's subject as `git log --format=%s` shows it: the first paragraph of its
    message, its lines joined by spaces."""
    headers, _, message = raw.partition(b"\n\n")
    encoding = "utf-8"
    for header in headers.split(b"\n"):
        if header.startswith(b"encoding "):
            encoding = header[9:].decode("ascii", "replace").strip() or encoding
    try:
        text = message.decode(encoding, "replace")
    except LookupError:
        text = message.decode("utf-8", "replace")
    lines: list[str] = []
    for line in text.lstrip("\n").split("\n"):
        if not line.strip():
            break
        lines.append(line.rstrip())
    return " ".join(lines)
