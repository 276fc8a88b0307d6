"""Files written whole or not at all: the caches, marks and working files atmos-tasks keeps.

Each is written to a temporary file beside it, named per process and thread (several checks run in
threads), and renamed into place: a reader, or a run killed half-way, sees the old file or the new
one, never part of one. A file that may hold sensitive values is its owner's only from the moment
it exists.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write_atomic(path: Path, data: str | bytes, *, private: bool = False) -> None:
    """Replace `path` with `data` (text is UTF-8); `private`: readable by its owner only.

    The parent folder is made when missing. Raises OSError; no temporary file is left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.unlink(missing_ok=True)  # left by a killed run with the same process id
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_private(path: Path) -> bytes:
    """The bytes of a file `write_atomic(..., private=True)` wrote: only when this user owns it and
    no one else may read or write it. A cache that is unpickled must not be one a repository
    carried in (checked out 0644) or another user left: those raise PermissionError, as a missing
    file raises FileNotFoundError."""
    with open(path, "rb") as file:
        info = os.fstat(file.fileno())
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise PermissionError(f"{path} is not this user's own")
        return file.read()


def source_stamp(*files: str) -> tuple[str, ...]:
    """Source files as a cache key's part: each by size and modification time ("" when it cannot
    be read), so a cache entry made by other code is never taken for this code's."""
    stamp = []
    for name in files:
        try:
            info = os.stat(name)
            stamp.append(f"{info.st_size}:{info.st_mtime_ns}")
        except OSError:
            stamp.append("")
    return tuple(stamp)
