"""Atmos's YAML functions in stack manifests (and atmos.yaml): `!env`, `!exec`, `!include`,
`!include.raw`, `!template`, `!repo-root`, `!terraform.output`, `!terraform.state`.

The loader keeps each one as a `YamlFunction` (tag, its text, where it was written). After a
component's sections are merged and its Go templates rendered, `evaluate` replaces each function
by its value, as Atmos does (`ProcessCustomYamlTags`, after templates):

- `!env NAME [default]`: the environment variable, else the default, else "".
- `!exec command`: the command's standard output through `sh -c` (JSON is decoded), only when
  atmos.yaml's `yaml_functions.exec.enabled` is true: running commands from stack files is a choice
  the repository makes, not one a stack file makes for it. Without it, one in a component's sections
  (or atmos.yaml's `env:`) is kept as written (`Context.kept`): the component resolves and its
  rollout refuses it; anywhere else it is refused where it is written.
- `!include path [query]`: a local file (relative to the stack file when it starts with ./ or ../,
  else to the repository): YAML, JSON, HCL (.hcl, .tf, .tfvars) or text, with a yq-style path
  query (`.a.b[0]`). `!include.raw`: the file as text. Both are read with the stack file, before
  imports merge (`expand_includes`), as Atmos reads them.
- `!template text`: the (rendered) text decoded as JSON, so a template can produce a map or list.
- `!repo-root`: the repository's root folder.
- `!terraform.output component [stack] output` and `!terraform.state` (the same here: both read
  what the component's state outputs): the component becomes a dependency in the task graph and
  the value is filled at plan time, from the outputs its apply (or, in a preview, its state)
  gave. A component of another stack, or of no deployment here, is refused.
- `!store`, `!store.get`, `!secret`: atmos-tasks reads no Atmos store yet. In a component's sections
  the function stays as written (what `describe` shows) and is kept in `Context.kept`: the
  component resolves, and its rollout refuses it before it plans, with the file and line (as a hook
  it does not run). Anywhere else (atmos.yaml), refused where it is written.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atmos_tasks import inputs
from atmos_tasks.errors import AtmosError, Location, Problem

# Tags this module evaluates, and those it refuses with a located message.
EVALUATED = (
    "!env",
    "!exec",
    "!include",
    "!include.raw",
    "!template",
    "!repo-root",
    "!terraform.output",
    "!terraform.state",
)
REFUSED = ("!store", "!store.get", "!secret")
TAGS = EVALUATED + REFUSED
EXEC_TIMEOUT = 60


@dataclass(frozen=True)
class YamlFunction:
    """A YAML function as written: `!env NAME`, with the file and line it is on."""

    tag: str
    text: str
    file: str = ""
    line: int | None = None
    column: int | None = None

    @property
    def location(self) -> Location:
        return Location(self.file, self.line, self.column)

    def __str__(self) -> str:
        return f"{self.tag} {self.text}".strip()


class OutputReference(str):
    """A `!terraform.output` turned into the manifest's own output reference (a Jinja template
    over `component["<name>"].outputs`): rendered once the dependency's outputs are known, even
    though it came from a stack file (whose own strings are never Jinja)."""

    __slots__ = ()


@dataclass
class Context:
    """What evaluating needs: the repository, the component, its stack, the deployment's names."""

    root: Path
    component: str
    stack: str
    # Components the deployment has (by Atmos component name): what !terraform.output may read.
    components: frozenset[str] = frozenset()
    exec_enabled: bool = False
    # What the values come from, as `!exec`'s refusal names it: stack files, or atmos.yaml itself.
    source: str = "stack files"
    # Where a function that cannot run here (a store read; `!exec` without the opt-in) is kept as
    # written, for the rollout to refuse (a component's sections), else None: refused here.
    kept: list[YamlFunction] | None = None


def contains(value: Any) -> bool:
    if isinstance(value, YamlFunction):
        return True
    if isinstance(value, dict):
        return any(contains(v) for v in value.values())
    if isinstance(value, list):
        return any(contains(v) for v in value)
    return False


def evaluate(value: Any, context: Context) -> Any:
    """The value with every YAML function replaced by what it evaluates to."""
    if isinstance(value, dict):
        return {k: evaluate(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, context) for v in value]
    if isinstance(value, YamlFunction):
        return _evaluate_one(value, context)
    return value


def _problem(function: YamlFunction, message: str, hint: str) -> AtmosError:
    return AtmosError([Problem(f"{function.tag} {function.text}: {message}", function.location, hint)])


def _evaluate_one(function: YamlFunction, context: Context) -> Any:
    tag, text = function.tag, function.text.strip()
    if tag in REFUSED and context.kept is not None:
        context.kept.append(function)
        return str(function)
    if tag in REFUSED:
        raise _problem(
            function,
            f"YAML function {tag} is not supported",
            "no store is configured for atmos-tasks yet: pass the value through an environment "
            "variable (!env NAME) or the deployment's settings.sensitive variables",
        )
    if tag == "!env":
        return _env(function, text)
    if tag == "!exec":
        return _exec(function, text, context)
    if tag in ("!include", "!include.raw"):
        return _include(function, text, context, raw=tag == "!include.raw")
    if tag == "!template":
        try:
            return json.loads(text)
        except ValueError:
            return text
    if tag == "!repo-root":
        return str(context.root)
    return _terraform_output(function, text, context)


def _words(function: YamlFunction, text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as err:
        raise _problem(function, f"cannot read its arguments: {err}", "quote arguments with spaces") from None


def _env(function: YamlFunction, text: str) -> str:
    words = _words(function, text)
    if not words or len(words) > 2:
        raise _problem(
            function,
            "expects a variable name and an optional default",
            "write !env NAME or !env NAME default",
        )
    return os.environ.get(words[0], words[1] if len(words) == 2 else "")


def _exec(function: YamlFunction, text: str, context: Context) -> Any:
    if not context.exec_enabled and context.kept is not None:
        context.kept.append(function)
        return str(function)
    if not context.exec_enabled:
        raise _problem(
            function,
            f"running commands from {context.source} is not enabled",
            "allow it in atmos.yaml (yaml_functions: {exec: {enabled: true}}), or write the value",
        )
    inputs.volatile("!exec")
    try:
        proc = subprocess.run(
            ["sh", "-c", text],
            cwd=context.root,
            capture_output=True,
            text=True,
            timeout=EXEC_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise _problem(
            function, f"did not finish within {EXEC_TIMEOUT}s", "make the command faster"
        ) from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise _problem(function, f"exited {proc.returncode}: {' / '.join(tail)}", "fix the command")
    output = proc.stdout.strip()
    try:
        return json.loads(output)
    except ValueError:
        return output


_QUERY_PART = re.compile(r"\.([A-Za-z_][\w-]*)|\.?\[(\d+)\]|\.\"([^\"]+)\"")


def query(data: Any, expression: str) -> Any:
    """A yq path (`.a.b[0]`, `.["a b"]` written `."a b"`); ValueError for anything richer."""
    text = expression.strip()
    if text in ("", "."):
        return data
    position = 0
    node = data
    while position < len(text):
        match = _QUERY_PART.match(text, position)
        if not match:
            raise ValueError(f"only paths such as .a.b[0] are supported, not {expression!r}")
        key, index, quoted = match.groups()
        if index is not None:
            if not isinstance(node, list) or int(index) >= len(node):
                raise ValueError(f"{expression}: no item {index}")
            node = node[int(index)]
        else:
            name = key if key is not None else quoted
            if not isinstance(node, dict) or name not in node:
                raise ValueError(f"{expression}: no key {name!r}")
            node = node[name]
        position = match.end()
    return node


def include_paths(function: YamlFunction, text: str, root: Path) -> tuple[Path, ...]:
    """The file an `!include` reads (`text`: its arguments, rendered), and the link it was written
    as when it goes through one (a link repointed reads another file): what its value depends on."""
    words = _words(function, text)
    if not words or len(words) > 2:
        raise _problem(
            function, "expects a file and an optional query", "write !include path/to/file.yaml [.key]"
        )
    written = words[0]
    if written.startswith(("http://", "https://", "s3://", "gcs://", "git::")):
        raise _problem(
            function, "remote files are not supported", "vendor the file into the repository and include it"
        )
    base = Path(function.file).parent if written.startswith(("./", "../")) and function.file else Path()
    written_path = root / base / written
    path = written_path.resolve()
    if not path.is_relative_to(root.resolve()):
        raise _problem(function, "the file is outside the repository", "include a file of the repository")
    return (path,) if written_path.absolute() == path else (path, written_path)


def expand_includes(value: Any, root: Path, read: list[Path]) -> Any:
    """`value` with each `!include`/`!include.raw` replaced by what it includes, as Atmos does while
    it reads a stack file (`ProcessIncludeTag`, before imports merge): an included mapping merges
    like one written in place. One whose argument is a template waits until the component's
    templates are rendered. `read` gets the files included."""
    if isinstance(value, dict):
        return {k: expand_includes(v, root, read) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_includes(v, root, read) for v in value]
    if (
        isinstance(value, YamlFunction)
        and value.tag in ("!include", "!include.raw")
        and "{{" not in value.text
    ):
        text = value.text.strip()
        read.extend(include_paths(value, text, root))
        return _include(value, text, Context(root, "", ""), raw=value.tag == "!include.raw")
    return value


def _include(function: YamlFunction, text: str, context: Context, *, raw: bool) -> Any:
    words = _words(function, text)
    written = words[0] if words else ""
    paths = include_paths(function, text, context.root)
    path = paths[0]
    for observed in paths:
        inputs.file(observed)
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as err:
        raise _problem(function, f"cannot read {written}: {err.strerror or err}", "fix the path") from None
    if raw:
        return content
    data: Any
    try:
        if path.suffix in (".yaml", ".yml"):
            from atmos_tasks.yamlio import load_data

            data = load_data(path, str(path.relative_to(context.root.resolve())))
        elif path.suffix == ".json":
            data = json.loads(content)
        elif path.suffix in (".hcl", ".tf", ".tfvars"):
            import hcl2

            data = _unquoted(hcl2.loads(content))
        else:
            data = content
    except AtmosError:
        raise
    except Exception as err:
        raise _problem(
            function, f"cannot parse {written}: {err}", "fix the file or include it with !include.raw"
        ) from None
    if len(words) == 2:
        try:
            return query(data, words[1])
        except ValueError as err:
            raise _problem(function, str(err), "write a path query such as .a.b[0]") from None
    return data


def _unquoted(value: Any) -> Any:
    """python-hcl2 keeps the quotes of HCL strings ("t3.micro" as '"t3.micro"'): drop them."""
    if isinstance(value, dict):
        return {_unquoted(k): _unquoted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unquoted(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _terraform_output(function: YamlFunction, text: str, context: Context) -> OutputReference:
    text, default = _alternative(function, text)
    words = _words(function, text)
    if len(words) not in (2, 3):
        raise _problem(
            function,
            "expects a component, an optional stack and an output",
            f"write {function.tag} vpc vpc_id (or {function.tag} vpc <stack> vpc_id)",
        )
    component, output = words[0], words[-1]
    if len(words) == 3 and words[1] != context.stack:
        raise _problem(
            function,
            f"reads stack {words[1]!r}, and this rollout deploys {context.stack!r}",
            "read a component of the same stack, or pass the value in another way: a rollout orders only "
            "its own components",
        )
    if component not in context.components:
        raise _problem(
            function,
            f"{component} is no component of this deployment",
            "add it to the deployment's components so that the rollout applies it first",
        )
    try:
        path = _jinja_path(output)
    except ValueError as err:
        raise _problem(function, str(err), "write an output name, or a path such as .a.b[0]") from None
    value = "component[" + json.dumps(component) + "].outputs" + path
    if default is _NO_DEFAULT:
        return OutputReference("{{ " + value + " }}")
    # yq's `//`: the default when the output is missing, null or false.
    return OutputReference(
        "{{ "
        + f"{value} if {value} is defined and {value} is not none and {value} is not sameas false "
        + f"else {_jinja_literal(default)}"
        + " }}"
    )


_NO_DEFAULT: Any = object()


def _alternative(function: YamlFunction, text: str) -> tuple[str, Any]:
    """Split yq's alternative operator off a `!terraform.output`/`!terraform.state` expression:
    `vpc .vpc_id // "vpc-0"`, or Atmos's form quoting the whole query (its string default in doubled
    quotes). The default is a literal (a YAML scalar, list or map), not another query."""
    words = _words(function, text)
    quoted = [w for w in words if " // " in w]
    if len(quoted) == 1 and "//" not in words:
        index = words.index(quoted[0])
        left, right = quoted[0].split(" // ", 1)
        rest = " ".join(shlex.quote(w) for w in [*words[:index], left])
    elif " // " in text:
        rest, right = text.split(" // ", 1)
    else:
        return text, _NO_DEFAULT
    right = right.strip()
    if not right or right.startswith((".", "$")):
        raise _problem(
            function,
            f"the default after // must be a literal, not {right!r}",
            f'write e.g. {function.tag} vpc .vpc_id // "vpc-00000000"',
        )
    from ruamel.yaml import YAML

    try:
        default = YAML(typ="safe", pure=True).load(right)
    except Exception as err:  # any YAML error is in the user's literal
        raise _problem(
            function, f"cannot read the default {right!r}: {err}", "quote a string default"
        ) from None
    return rest, default


def _jinja_literal(value: Any) -> str:
    """A Jinja expression for a YAML literal."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_jinja_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_jinja_literal(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


def _jinja_path(expression: str) -> str:
    text = expression if expression.startswith((".", "[")) else "." + expression
    out = ""
    position = 0
    while position < len(text):
        match = _QUERY_PART.match(text, position)
        if not match:
            raise ValueError(f"only output names and paths such as .a.b[0] are supported, not {expression!r}")
        key, index, quoted = match.groups()
        out += (
            f"[{index}]" if index is not None else "[" + json.dumps(key if key is not None else quoted) + "]"
        )
        position = match.end()
    return out
