"""The workspace: one repository's configuration and the caches a run keeps over it (module digests
through the stat cache, declared variables, the working tree's status, commit times), and the
repository as it was at another commit (`workspace_at`)."""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from atmos_tasks import inputs
from atmos_tasks.atomic import write_atomic
from atmos_tasks.config import RepoConfig, load_config
from atmos_tasks.errors import AtmosError, Location, Problem
from atmos_tasks.gitrepo import GitRepo, WorkingTree
from atmos_tasks.hashing import StatCache
from atmos_tasks.manifest import Manifest, list_manifest_paths
from atmos_tasks.resolve import GitInfo, ResolvedTarget, resolve_target
from atmos_tasks.stacks import StackLoader


class Workspace:
    """Per-run caches over one repository: parsed stacks, module digests, declared variables."""

    def __init__(self, root: Path, config: RepoConfig | None = None) -> None:
        self.config = config or load_config(root)
        self.root = self.config.root
        self.repo = GitRepo(self.root)
        self.stat_cache = StatCache(self.config.work_dir / "cache" / "stat-cache.json")
        self._digests: dict[str, tuple[str, bool]] = {}  # by the folder's path as text
        self._variables_path = self.config.work_dir / "cache" / "tf-variables.json"
        self._variables: dict[str, Any] | None = None
        self._variables_dirty = False
        self._tree: WorkingTree | None = None
        self._commit_times: dict[str, int] = {}
        self._notes: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.signing_checked = False

    def seed_working_tree(self, tree: WorkingTree) -> None:
        """The `git status` this run already took (the graph cache's key): not taken twice."""
        self._tree = tree

    def working_tree(self) -> WorkingTree:
        if self._tree is None:
            self._tree = self.repo.working_tree()
        return self._tree

    def git_info(self) -> GitInfo:
        tree = self.working_tree()
        if tree.head is None:
            raise AtmosError(
                [
                    Problem(
                        "the repository has no commit yet",
                        Location(str(self.root)),
                        "commit your files first: what is deployed must be a commit",
                    )
                ]
            )
        return GitInfo(tree.head, tree.branch)

    def commit_time(self, sha: str) -> int:
        """SOURCE_DATE_EPOCH for builds of `sha`: its commit time (0 before the first commit)."""
        if sha not in self._commit_times:
            self._commit_times[sha] = self.repo.commit_time(sha) if sha.strip("0") else 0
        return self._commit_times[sha]

    def note(self, deployment: str, namespace: str, commit: str) -> dict[str, Any]:
        """A deployment's note on a commit, read once per run: what tasks may use of Git's notes is
        read here, while compiling, and passed to them in their jobs."""
        from atmos_tasks.notes import notes_ref, read_note

        key = (deployment, namespace, commit)
        if key not in self._notes:
            self._notes[key] = read_note(self.repo, deployment, namespace, commit)
        else:
            inputs.refs([notes_ref(deployment, namespace)])  # read once, observed each time
        return self._notes[key]

    def module_digest(self, module_dir: Path | str) -> str:
        # By text: a compilation of 300 components asks twice for each folder, once by a `Path`.
        where = os.fspath(module_dir)
        found = self._digests.get(where)
        if found is None:
            # A folder that does not exist (a module its stack's `generate:` writes whole) has no
            # content: one digest for all, and no tree to observe.
            exists = _is_folder(where)
            digest = self.stat_cache.tree(where) if exists else "absent"
            found = self._digests[where] = (digest, exists)
        # Observed each time, not only when first computed: each component's resolution is
        # observed on its own as well (`inputs.scoped`).
        inputs.tree(where, found[0] if found[1] else None)
        return found[0]

    def declared_variables(
        self, module_dir: Path, parse: Callable[[Path], set[str] | None]
    ) -> set[str] | None:
        """The variables a module declares (its kind parses them), cached by module digest so a
        no-op run never parses HCL."""
        if self._variables is None:
            try:
                self._variables = json.loads(self._variables_path.read_text())
            except (OSError, ValueError):
                self._variables = {}
        digest = self.module_digest(module_dir)
        if digest in self._variables:
            cached = self._variables[digest]
            return None if cached is None else set(cached)
        names = parse(module_dir)
        self._variables[digest] = None if names is None else sorted(names)
        self._variables_dirty = True
        return names

    def resolve(
        self, manifest: Manifest, target: str, git: GitInfo, loader: StackLoader, describing: bool = False
    ) -> ResolvedTarget:
        """`resolve_target` with this repository's config, declared-variable cache, vendor entries
        and, while the compilation is observed for the graph cache, the target's resolve memo."""
        from atmos_tasks.vendoring import vendor_resolver

        return resolve_target(
            manifest,
            self.config,
            target,
            git,
            loader,
            self.declared_variables,
            vendor_resolver(self.config, manifest, target),
            self._resolve_memo,
            describing,
        )

    def _resolve_memo(self, manifest: Manifest, target: str, context: dict[str, Any], vendor_for: Any) -> Any:
        """The target's resolve memo: only while the graph cache observes the compilation, in the
        main checkout (another commit's worktree compiles once), and for a target without a
        promotion rule (what is resolved for a protected target is never kept on disk, as the
        graph cache never keeps its graph)."""
        from atmos_tasks import graphcache, resolvememo

        observed = inputs.current()
        if observed is None or observed.digest is None or graphcache.mode() == "off":
            return None
        if observed.volatile or observed.git:
            # Read before any component (a file's locals read the clock or the commit): what each
            # component would be served from the memo may have read it.
            return None
        if self.config.work_root is not None or manifest.model.targets[target].promotion is not None:
            return None
        fingerprint = getattr(vendor_for, "fingerprint", None)
        return resolvememo.ResolveMemo(
            self.config.work_dir / "cache" / "resolved",
            manifest.name,
            target,
            resolvememo.global_key(
                observed, self.config, target, context, fingerprint() if fingerprint else ""
            ),
            lambda path: self.module_digest(path) if os.path.isdir(path) else "missing",
            observed.digest,
            verifying=graphcache.mode() == "verify",
        )

    def save_caches(self) -> None:
        self.stat_cache.save()
        if self._variables_dirty and self._variables is not None:
            write_atomic(self._variables_path, json.dumps(self._variables, sort_keys=True))
            self._variables_dirty = False

    def deployment_names(self) -> list[str]:
        return [p.stem for p in list_manifest_paths(self.config)]


def _is_folder(path: str) -> bool:
    """`Path.is_dir` of text: False when nothing (or a file) is there, an error when the folder
    cannot be looked at (a module under an unreadable folder is not an absent one)."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            return False
        raise


def workspace_at(workspace: Workspace, commit: str) -> Workspace:
    """The repository as it was at `commit` (a worktree under .atmos/worktrees/), working data here."""
    from filelock import FileLock

    worktree = workspace.config.work_dir / "worktrees" / commit
    worktree.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(worktree.parent / f"{commit}.lock")):
        workspace.repo.worktree(worktree, commit)
    return Workspace(worktree, load_config(worktree, work_root=workspace.root))
