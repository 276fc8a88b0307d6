"""Cancelling a run the way CI does (SIGTERM, SIGINT), and components that run too long.

A cancelled run does not die where it stands: the signal is forwarded to the tools it runs
(Terraform stops, saves its state and releases its state lock on SIGINT or SIGTERM), no new
step starts, the `record` task records what finished, the run's locks are released, and the run
exits non-zero. A component's `metadata.timeout` does the same to that component alone.

`install()` is called once by the process that runs the tasks; `run()` is how every long-running
tool is started so that the signal reaches it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import Any

# How long a tool may take to stop after it was asked to (it is killed after that).
GRACE_SECONDS = 60.0
# A second signal this long after the first kills the tools instead of waiting for them.
REPEAT_SECONDS = 2.0

_state: dict[str, Any] = {"signal": None, "at": 0.0, "installed": False}
_children: set[subprocess.Popen[str]] = set()
_lock = threading.Lock()


def grace() -> float:
    """Seconds a stopped tool gets to finish cleanly (`ATMOS_TASKS_STOP_GRACE`)."""
    try:
        return max(0.0, float(os.environ.get("ATMOS_TASKS_STOP_GRACE", GRACE_SECONDS)))
    except ValueError:
        return GRACE_SECONDS


def requested() -> str | None:
    """The name of the signal that cancelled this run, or None."""
    return _state["signal"]


def reason() -> str:
    return f"the run was cancelled ({requested()}) before it started"


def _forward(signum: int) -> None:
    with _lock:
        children = list(_children)
    for child in children:
        try:
            child.send_signal(signum)
        except (ProcessLookupError, OSError):
            continue
    # `doit -n` worker processes run the tools: they are told too.
    try:
        import multiprocessing

        for worker in multiprocessing.active_children():
            if worker.pid and worker.pid != os.getpid():
                os.kill(worker.pid, signum)
    except (ProcessLookupError, OSError, ValueError):
        pass


def request(name: str) -> None:
    """Cancel this run from within (its locks were lost), as a signal would."""
    if _state["signal"] is None:
        _state["signal"] = name
        _state["at"] = time.monotonic()
        _forward(signal.SIGTERM)


def stop_now() -> None:
    """Kill the tools this process runs, and ask `doit -n` workers again (which then kill theirs)."""
    with _lock:
        children = list(_children)
    for child in children:
        _kill_group(child)
    try:
        import multiprocessing

        for worker in multiprocessing.active_children():
            if worker.pid and worker.pid != os.getpid():
                os.kill(worker.pid, signal.SIGTERM)
    except (ProcessLookupError, OSError, ValueError):
        pass


def _handler(signum: int, _frame: Any) -> None:
    now = time.monotonic()
    first = _state["signal"] is None
    if first:
        _state["signal"] = signal.Signals(signum).name
        _state["at"] = now
        _forward(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)
    elif now - _state["at"] >= REPEAT_SECONDS:
        # Asked again, later: stop the tools now. (One Ctrl-C reaches a `doit -n` worker twice, from
        # the terminal and from its parent: copies that close together are one request.)
        with _lock:
            children = list(_children)
        for child in children:
            _kill_group(child)


def _kill_group(child: subprocess.Popen[str]) -> None:
    """The tool and whatever it started (a provisioner's shell would keep its output open)."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        with contextlib.suppress(ProcessLookupError, OSError):
            child.kill()


def install() -> None:
    """Handle SIGTERM and SIGINT in this process (and the workers it forks) as a cancellation."""
    if _state["installed"] or threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    _state["installed"] = True


class Stopped(Exception):
    """The tool was stopped: the run was cancelled, or the component ran past its timeout."""

    def __init__(self, message: str, result: subprocess.CompletedProcess[str] | None = None) -> None:
        super().__init__(message)
        self.result = result


def run(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    env: dict[str, str],
    timeout: float | None = None,
    what: str = "",
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run` that a cancellation reaches and a timeout stops gracefully.

    Raises Stopped (with the tool's output so far) when either happened.
    """
    if requested():
        raise Stopped(reason())
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Its own process group: a Ctrl-C on the terminal reaches it once, through us.
        start_new_session=True,
    )
    with _lock:
        _children.add(proc)
    timed_out = False
    try:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.send_signal(signal.SIGINT)
            try:
                out, err = proc.communicate(timeout=grace())
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                out, err = proc.communicate()
    finally:
        with _lock:
            _children.discard(proc)
    result = subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
    name = what or argv[0]
    if proc.returncode == 0:
        return result  # it finished before it could stop: what it did is done, and is recorded as such
    if timed_out:
        raise Stopped(f"{name} ran past its metadata.timeout of {timeout:g}s and was stopped", result)
    if requested():
        raise Stopped(f"{name} was stopped: the run was cancelled ({requested()})", result)
    return result
