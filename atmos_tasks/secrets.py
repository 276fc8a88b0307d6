"""Sensitive values, and the one mask every printed or written text goes through.

A value is sensitive when Terraform says so (an output or a variable declared `sensitive = true`)
or the user does (`settings.sensitive: [var names]` on a component). `mask(text)` replaces each
occurrence of one with `***` — also where Terraform wrapped it over two lines, and as JSON escapes
it — in progress lines, failure excerpts, logs and job summaries; `describe` hides the values of
sensitive variables.

Each process of a run (doit's workers under `-n`) learns values on its own: what a task learned is
passed on in its saved values (`sensitive`: the names of an apply's sensitive outputs; `secrets`:
the sensitive values a plan wrote into its variables), so the task that reads them, and the
reporter that prints, know them too. In GitHub Actions each new value is announced once per
process with `::add-mask::`, so the runner hides it from the step's log as well.

Nothing is compiled or scanned while no value is known: most runs have none.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from atmos_tasks.atomic import write_atomic

MASK = "***"
# Shorter values are not masked: masking "1" or "true" would garble every line.
MIN_LENGTH = 4


def _forms(value: str) -> Iterable[str]:
    """The value, its lines, and how JSON writes it (a tfvars file, Terraform's JSON output)."""
    yield value
    if "\n" in value:
        yield from value.splitlines()
    for ascii_only in (True, False):
        yield json.dumps(value, ensure_ascii=ascii_only)[1:-1]


def _leaves(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)


class Secrets:
    """A set of sensitive strings and a mask for them."""

    def __init__(self, announce: bool = False) -> None:
        self.values: set[str] = set()
        self.announce = announce
        self._pattern: re.Pattern[str] | None = None

    def __bool__(self) -> bool:
        return bool(self.values)

    def add(self, value: Any) -> None:
        """Every string (or number) in `value`, however deeply nested."""
        new = []
        for leaf in _leaves(value):
            for form in _forms(leaf):
                form = form.strip()
                if len(form) >= MIN_LENGTH and form not in self.values:
                    self.values.add(form)
                    new.append(form)
        if new:
            self._pattern = None
            if self.announce and os.environ.get("GITHUB_ACTIONS") == "true":
                _add_mask(new)

    def add_outputs(self, outputs: Any, sensitive: Any) -> None:
        """The outputs an apply flagged sensitive (its saved `sensitive` names)."""
        if sensitive and isinstance(outputs, dict):
            self.add([outputs[name] for name in sensitive if name in outputs])

    def pattern(self) -> re.Pattern[str]:
        if self._pattern is None:
            # Longest first; any run of whitespace may have been wrapped into another.
            alternatives = [
                r"\s+".join(re.escape(part) for part in value.split())
                for value in sorted(self.values, key=len, reverse=True)
            ]
            self._pattern = re.compile("|".join(alternatives))
        return self._pattern

    def mask(self, text: str) -> str:
        if not self.values or not text:
            return text
        return self.pattern().sub(MASK, text)

    def mask_tree(self, value: Any) -> Any:
        """Every string in a JSON-like value, masked."""
        if not self.values:
            return value
        if isinstance(value, dict):
            return {key: self.mask_tree(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.mask_tree(item) for item in value]
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, int | float) and not isinstance(value, bool) and str(value) in self.values:
            return MASK
        return value

    def found_in(self, text: str) -> list[str]:
        """The values that occur in `text` (sorted: saved values must be stable)."""
        if not self.values:
            return []
        return sorted(value for value in self.values if value in text)


def _add_mask(values: list[str]) -> None:
    """GitHub's workflow command, written straight to the process's standard output: doit
    captures what a task prints, and the runner must see this line whatever the task does."""
    lines = "".join(f"::add-mask::{value}\n" for value in values if "\n" not in value)
    stream = sys.__stdout__
    try:
        if stream is not None:
            stream.flush()
            os.write(stream.fileno(), lines.encode())
        else:
            os.write(1, lines.encode())
    except (OSError, ValueError):
        pass


# The values this process has learned during a run (rollout or preview).
RUN = Secrets(announce=True)


def add(value: Any) -> None:
    RUN.add(value)


def add_outputs(outputs: Any, sensitive: Any) -> None:
    RUN.add_outputs(outputs, sensitive)


def mask(text: str) -> str:
    return RUN.mask(text)


def found_in(text: str) -> list[str]:
    return RUN.found_in(text)


def marked(settings: Any) -> tuple[str, ...]:
    """The names a component's `settings.sensitive` marks: variables, and `env.NAME` entries."""
    found = settings.get("sensitive") if isinstance(settings, dict) else None
    if isinstance(found, str):
        return (found,)
    if isinstance(found, list):
        return tuple(str(name) for name in found)
    return ()


# Backend settings whose value is a credential, as Terraform's backends name them (s3, azurerm,
# gcs, http, consul, cos, oss, swift, kubernetes, remote).
CREDENTIAL_KEYS = frozenset(
    {
        "access_key",
        "access_token",
        "client_certificate_password",
        "client_secret",
        "encryption_key",
        "password",
        "sas_token",
        "secret_key",
        "secret_access_key",
        "session_token",
        "token",
    }
)
_KEYWORD_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']\S*)")


def connection_passwords(text: str) -> list[str]:
    """The password a connection string holds: a URL's (`postgres://user:password@host/db`, or its
    `?password=` parameter), or libpq's keyword form (`host=… password=…`); raw and decoded."""
    from urllib.parse import parse_qs, unquote, urlsplit

    found: list[str] = []
    if "://" in text:
        try:
            url = urlsplit(text.strip())
            password = url.password
            query = parse_qs(url.query).get("password", [])
        except ValueError:  # e.g. a port that is no number: the userinfo is still there
            userinfo = text.split("://", 1)[1].split("/", 1)[0].rpartition("@")[0]
            password = userinfo.partition(":")[2] or None
            query = []
        if password:
            found += [password, unquote(password)]
        found += query
    for match in _KEYWORD_PASSWORD.finditer(text):
        value = match.group(1)
        if value.startswith("'"):
            found.append(value[1:-1])
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        found.append(value)
    return list(dict.fromkeys(found))


def backend_secrets(backend: Any) -> list[str]:
    """The credentials a Terraform backend configuration holds: the password of a connection string
    (the `pg` backend's `conn_str`) and the values of settings named like credentials."""
    found: list[str] = []
    if isinstance(backend, dict):
        for key, value in backend.items():
            if isinstance(value, dict | list):
                found += backend_secrets(value)
            elif isinstance(value, str):
                found += [value] if str(key).lower() in CREDENTIAL_KEYS else connection_passwords(value)
    elif isinstance(backend, list):
        for item in backend:
            found += backend_secrets(item)
    return found


def sensitive_values(
    names: Iterable[str], variables: dict[str, Any], env: dict[str, str] | None = None
) -> list[Any]:
    """The values of the named variables (and `env.NAME` entries) that are set."""
    found = []
    for name in names:
        if name.startswith("env.") and env is not None and name[4:] in env:
            found.append(env[name[4:]])
        elif name in variables:
            found.append(variables[name])
    return found


def hide(names: Iterable[str], variables: dict[str, Any]) -> dict[str, Any]:
    """`variables` with the value of each named one replaced by the mask."""
    wanted = set(names)
    if not wanted & variables.keys():
        return variables
    return {key: MASK if key in wanted and value is not None else value for key, value in variables.items()}


def sensitive_variables(module_dir: Path) -> set[str]:
    """Variables a module declares `sensitive = true` (only files that say `sensitive` are parsed)."""
    try:
        files = sorted(module_dir.iterdir())
    except OSError:
        return set()
    texts = []
    for path in files:
        if not path.name.endswith((".tf", ".tf.json")):
            continue
        try:
            texts.append((path.name, path.read_text(errors="replace")))
        except OSError:
            continue
    return sensitive_in_texts(texts)


def sensitive_in_texts(files: Iterable[tuple[str, str]]) -> set[str]:
    """Variables the given Terraform files (name, text) declare `sensitive = true`: a module's,
    or those a stack's `generate:` writes."""
    names: set[str] = set()
    for name, text in files:
        if not name.endswith((".tf", ".tf.json")):
            continue
        if "sensitive" not in text or "variable" not in text:
            continue
        try:
            if name.endswith(".json"):
                variables = json.loads(text).get("variable", {})
                blocks = [variables] if isinstance(variables, dict) else []
            else:
                from atmos_tasks import hcl

                blocks = hcl.load(text, ("variable",)).get("variable", [])
        except Exception:
            continue
        for block in blocks:
            for key, spec in block.items():
                flag = spec.get("sensitive") if isinstance(spec, dict) else None
                if flag is True or (isinstance(flag, str) and flag.strip('"') == "true"):
                    names.add(key.strip('"'))
    return names


def sensitive_variables_cached(module_dir: Path, digest: str, root: Path) -> set[str]:
    """sensitive_variables, remembered by module digest: a no-op run parses no HCL."""
    path = root / ".atmos" / "cache" / "tf-sensitive.json"
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if digest in cache:
        return set(cache[digest])
    names = sensitive_variables(module_dir)
    cache[digest] = sorted(names)
    write_atomic(path, json.dumps(cache, sort_keys=True))
    return names


def private_file(path: Any) -> None:
    """Readable and writable by its owner only (files that hold sensitive values)."""
    try:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError:
        pass
