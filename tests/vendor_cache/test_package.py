"""The package's public names are imported on first use, so hashing alone stays cheap."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import vendor_cache


def test_every_public_name_resolves_to_its_module() -> None:
    for name in vendor_cache.__all__:
        module = importlib.import_module(f"vendor_cache.{vendor_cache._HOME[name]}")
        assert getattr(vendor_cache, name) is getattr(module, name)
    assert sorted(vendor_cache.__all__) == sorted(vendor_cache._HOME)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Stor'"):
        vendor_cache.Stor  # noqa: B018


def test_hashing_a_tree_does_not_load_the_store() -> None:
    code = (
        "import sys\n"
        "from vendor_cache.digest import tree_digest\n"
        "import vendor_cache\n"
        "loaded = [m for m in ('vendor_cache.store', 'vendor_cache.git', 'vendor_cache.archive', 'diskcache')"
        " if m in sys.modules]\n"
        "print(','.join(loaded))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
