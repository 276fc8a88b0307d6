"""Files written whole or not at all (atmos_tasks/atomic.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from atmos_tasks.atomic import write_atomic


def test_a_private_file_is_its_owners_only_and_replaces_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "mark.json"
    write_atomic(path, "old")
    write_atomic(path, b"new", private=True)
    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o077 == 0
    assert [p.name for p in path.parent.iterdir()] == ["mark.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    path = tmp_path / "mark.json"
    write_atomic(path, "old")
    with pytest.raises(TypeError):
        write_atomic(path, 42)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["mark.json"]


def test_threads_writing_one_file_each_write_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    texts = [str(n) * 10_000 for n in range(8)]
    errors: list[BaseException] = []

    def write(text: str) -> None:
        try:
            for _ in range(20):
                write_atomic(path, text)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(t,)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert path.read_text() in texts
    assert [p.name for p in tmp_path.iterdir()] == ["shared.json"]


def test_read_private_reads_only_a_file_its_owner_alone_may_read(tmp_path: Path) -> None:
    from atmos_tasks.atomic import read_private

    path = tmp_path / "entry.pickle"
    write_atomic(path, b"kept", private=True)
    assert read_private(path) == b"kept"
    path.chmod(0o644)  # as Git checks a committed file out
    with pytest.raises(PermissionError):
        read_private(path)
    path.chmod(0o620)
    with pytest.raises(PermissionError):
        read_private(path)
    with pytest.raises(FileNotFoundError):
        read_private(tmp_path / "missing.pickle")


def test_a_source_stamp_moves_with_a_files_size_or_time_and_names_a_missing_one(tmp_path: Path) -> None:
    import os

    from atmos_tasks.atomic import source_stamp

    code = tmp_path / "code.py"
    code.write_text("x = 1\n")
    os.utime(code, ns=(1, 1_000_000_000))
    first = source_stamp(str(code), str(tmp_path / "gone.py"))
    assert first == ("6:1000000000", "")
    os.utime(code, ns=(1, 2_000_000_000))
    assert source_stamp(str(code)) != first[:1]
    code.write_text("x = 12\n")
    os.utime(code, ns=(1, 2_000_000_000))
    assert source_stamp(str(code)) == ("7:2000000000",)
