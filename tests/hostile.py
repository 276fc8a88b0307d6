"""Hostile YAML for the tests, and a way to run a command in its own process and measure it.

`deep_value` writes one key whose value nests `depth` lists or mappings in one of four styles;
`alias_bomb` writes the "billion laughs" (ten levels of ten aliases each: 10⁹ nodes once expanded).
`run_measured` runs a command under a wrapper process that reports the command's exit code, output,
wall time and peak resident memory (its own `RUSAGE_CHILDREN`, so the figure is this command's
alone), with an address-space cap and a timeout so a runaway command cannot take the machine down.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

STYLES = ("flow-seq", "flow-map", "block-seq", "block-map")
DEPTHS = (2_000, 50_000)

# Block mappings nest by indentation: 50,000 levels would be a 1.25 GB file. Compact block
# sequences (`- - - 1`) nest 50,000 levels on one line.
CASES = [(style, depth) for depth in DEPTHS for style in STYLES if (style, depth) != ("block-map", 50_000)]


def deep_value(key: str, style: str, depth: int, indent: int = 0) -> str:
    """Lines `key: <value>` at `indent` spaces, the value nested `depth` collections deep."""
    pad = " " * indent
    if style == "flow-seq":
        return f"{pad}{key}: " + "[" * depth + "]" * depth + "\n"
    if style == "flow-map":
        return f"{pad}{key}: " + "{a: " * depth + "1" + "}" * depth + "\n"
    if style == "block-seq":
        return f"{pad}{key}:\n{pad}  " + "- " * depth + "1\n"
    if style == "block-map":
        lines = [f"{pad}{key}:\n"]
        lines += [f"{pad}  {' ' * level}a:\n" for level in range(depth - 1)]
        return "".join(lines) + f"{pad}  {' ' * (depth - 1)}a: 1\n"
    raise ValueError(style)


def alias_bomb(key: str, indent: int = 0, levels: int = 10, width: int = 10) -> str:
    """`key:` a mapping of anchors, each a list of `width` aliases of the one before."""
    pad = " " * indent
    lines = [f"{pad}{key}:", f"{pad}  lol0: &lol0 lol"]
    for level in range(1, levels):
        aliases = ", ".join([f"*lol{level - 1}"] * width)
        lines.append(f"{pad}  lol{level}: &lol{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def line_span(text: str, snippet: str) -> range:
    """The 1-based line numbers `snippet` occupies in `text`."""
    start = text.index(snippet)
    first = text.count("\n", 0, start) + 1
    return range(first, first + snippet.count("\n") + (0 if snippet.endswith("\n") else 1))


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


_WRAPPER = r"""
import json, resource, subprocess, sys, time
args, cwd, env, timeout, cap = json.loads(sys.argv[1])
def limit():
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
start = time.perf_counter()
try:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit)
    code, out, err = proc.returncode, proc.stdout, proc.stderr
except subprocess.TimeoutExpired as expired:
    code, out, err = -9, "", f"timed out after {timeout} s"
seconds = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"returncode": code, "stdout": out, "stderr": err, "seconds": seconds,
                  "peak_mb": peak_kb / 1024}))
"""


def run_measured(
    args: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    memory_cap: int = 2 << 30,
) -> Measured:
    """`args` in a process of its own, capped at `memory_cap` bytes of address space and `timeout` s."""
    request = json.dumps([args, str(cwd) if cwd else None, env, timeout, memory_cap])
    wrapper = subprocess.run(
        [sys.executable, "-c", _WRAPPER, request], capture_output=True, text=True, check=True, env=env
    )
    return Measured(**json.loads(wrapper.stdout))
