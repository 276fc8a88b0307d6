"""Tree digests: content, paths and the executable bit, never timestamps or Terraform's own files."""

from __future__ import annotations

import os
from pathlib import Path

from vendor_cache.digest import tree_digest


def make(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_same_content_same_digest_whatever_the_timestamps(tmp_path: Path) -> None:
    a = make(tmp_path / "a", {"main.tf": "x", "modules/m/main.tf": "y"})
    b = make(tmp_path / "b", {"modules/m/main.tf": "y", "main.tf": "x"})
    os.utime(b / "main.tf", (0, 0))
    assert tree_digest(a) == tree_digest(b)


def test_content_paths_and_exec_bit_matter(tmp_path: Path) -> None:
    base = tree_digest(make(tmp_path / "a", {"main.tf": "x"}))
    assert tree_digest(make(tmp_path / "b", {"main.tf": "y"})) != base
    assert tree_digest(make(tmp_path / "c", {"other.tf": "x"})) != base
    d = make(tmp_path / "d", {"main.tf": "x"})
    (d / "main.tf").chmod(0o755)
    assert tree_digest(d) != base


def test_terraform_working_files_are_ignored(tmp_path: Path) -> None:
    base = tree_digest(make(tmp_path / "a", {"main.tf": "x"}))
    noisy = make(tmp_path / "b", {"main.tf": "x", ".terraform/providers/p": "bin", "terraform.tfstate": "{}"})
    assert tree_digest(noisy) == base


def test_folder_links_are_followed_only_when_asked_and_never_in_a_loop(tmp_path: Path) -> None:
    real = make(tmp_path / "real", {"main.tf": "x", "modules/m/main.tf": "y"})
    linked = make(tmp_path / "linked", {"main.tf": "x"})
    (linked / "modules").symlink_to(real / "modules")
    (linked / "loop").symlink_to(linked)  # a link back to the tree being walked
    (linked / ".terraform").symlink_to(make(tmp_path / "plugins", {"p": "binary"}))
    assert tree_digest(linked, follow_dir_links=True) == tree_digest(real)
    assert tree_digest(linked) == tree_digest(make(tmp_path / "flat", {"main.tf": "x"}))
