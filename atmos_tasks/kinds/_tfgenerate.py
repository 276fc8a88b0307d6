"""Atmos's `generate:` section: the files written into a Terraform component before it runs.

Each key is a file name (relative to the component's folder), each value its content:

- a string is written as it is (its Go templates rendered with the component's sections);
- a mapping is serialized by the file's extension: `.json` as indented JSON, `.yaml`/`.yml` as YAML,
  `.tfvars` as HCL attributes, `.tf`/`.hcl` as HCL blocks: `variable`, `output`, `module`,
  `provider` take one label, `resource` and `data` two (`resource: {aws_s3_bucket: {this: {…}}}`),
  any other mapping is an unlabeled block (`terraform`, `locals`), anything else an attribute.

As Atmos's `atmos terraform generate files` writes them (examples/generate-files). HCL text comes
from python-hcl2's writer (`hcl2.dumps`), given the structure its reader produces: strings quoted,
blocks as lists of bodies marked `__is_block__`. Pure functions: `render_files` returns the texts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
LABELS = {"variable": 1, "output": 1, "module": 1, "provider": 1, "resource": 2, "data": 2}
SERIALIZED = (".json", ".yaml", ".yml", ".tfvars", ".tf", ".hcl")


class GenerateError(ValueError):
    """A `generate` entry that cannot be written: the file (key) and why."""

    def __init__(self, name: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.name, self.message, self.hint = name, message, hint


def render_files(section: dict[str, Any]) -> dict[str, str]:
    """File name → text, for every entry of a component's `generate:` section (sorted by name)."""
    files: dict[str, str] = {}
    for name in sorted(section, key=str):
        value = section[name]
        _check_name(str(name))
        if isinstance(value, str):
            files[str(name)] = value
        elif isinstance(value, dict):
            files[str(name)] = serialize(str(name), value)
        else:
            raise GenerateError(
                str(name),
                f"generate.{name} must be the file's text or a mapping, got {type(value).__name__}",
                "write the content as a string (|), or as a mapping for .json, .yaml, .tf, .hcl, .tfvars",
            )
    return files


def _check_name(name: str) -> None:
    path = PurePosixPath(name)
    # Terraform's own folders (.terraform/: providers shared by every component) are not the
    # component's files; nor is the folder itself.
    hidden = any(part.startswith((".terraform", ".atmos")) for part in path.parts)
    if (
        not name
        or path.is_absolute()
        or ".." in path.parts
        or "\\" in name
        or path.name in ("", ".")
        or hidden
    ):
        raise GenerateError(
            name,
            f"generate.{name}: a generated file stays in the component's folder",
            "name a file relative to the component's folder, without .. and outside .terraform/",
        )


def serialize(name: str, value: dict[str, Any]) -> str:
    suffix = PurePosixPath(name).suffix
    if suffix == ".json":
        return json.dumps(value, indent=2) + "\n"
    if suffix in (".yaml", ".yml"):
        import io

        from ruamel.yaml import YAML

        out = io.StringIO()
        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        yaml.dump(value, out)
        return out.getvalue()
    if suffix == ".tfvars":
        return _hcl(_attributes(value))
    if suffix in (".tf", ".hcl"):
        return _hcl(_blocks(name, value))
    raise GenerateError(
        name,
        f"generate.{name}: a mapping is written as .json, .yaml, .tf, .hcl or .tfvars, not "
        f"{suffix or 'a file without extension'}",
        "write the content as a string (|), or name the file with one of those extensions",
    )


def _blocks(name: str, value: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, item in value.items():
        key = str(key)
        labels = LABELS.get(key, 0)
        if labels and isinstance(item, dict):
            body[key] = list(_labeled(name, key, item, labels))
        elif isinstance(item, dict):
            body[key] = [{**_attributes(item), "__is_block__": True}]
        else:
            body[key] = _expression(item)
    return body


def _labeled(name: str, block: str, item: dict[str, Any], labels: int) -> Iterator[dict[str, Any]]:
    """One block per label (per pair of labels for `resource` and `data`)."""
    for label, inner in item.items():
        if not isinstance(inner, dict):
            raise GenerateError(
                name,
                f"generate.{name}: {block} {label!r} must be a mapping (its body)",
                f"write {block}: {{{label}: {{...}}}}"
                if labels == 1
                else f"write {block}: {{type: {{name: {{...}}}}}}",
            )
        if labels == 1:
            yield {_quoted(str(label)): {**_attributes(inner), "__is_block__": True}}
        else:
            for sub in _labeled(name, block, inner, labels - 1):
                yield {_quoted(str(label)): sub}


def _attributes(body: dict[str, Any]) -> dict[str, Any]:
    return {str(k): _expression(v) for k, v in body.items()}


def _expression(value: Any) -> Any:
    """A value as python-hcl2's writer takes it: strings quoted and escaped, nested mappings objects."""
    if isinstance(value, bool) or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, dict):
        return {_key(str(k)): _expression(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_expression(v) for v in value]
    return value


def _key(name: str) -> str:
    """An object key: as written when it is an identifier, else quoted (`"kubernetes.io/role"`), so
    that it is never read as an expression."""
    return name if _IDENTIFIER.fullmatch(name) else _quoted(name)


def _quoted(text: str) -> str:
    """An HCL string literal: quotes, backslashes and newlines escaped, and `${`/`%{` too, so a
    value is never read as a template."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("${", "$${")
        .replace("%{", "%%{")
    )
    return f'"{escaped}"'


def _hcl(body: dict[str, Any]) -> str:
    import hcl2

    text: str = hcl2.dumps(body)
    return text.rstrip("\n") + "\n"
