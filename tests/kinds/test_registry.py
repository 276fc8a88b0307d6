"""The kinds registry: names without imports, objects on demand, roles, and refusal of a plugin that
does not provide what it claims."""

from __future__ import annotations

import sys
import types

import pytest

from atmos_tasks import kinds


def test_the_shipped_kinds_are_found_by_module_and_ordered_deploying_first() -> None:
    assert {"terraform", "nixpack", "container"} <= set(kinds.names())
    ordered = kinds.ordered()
    assert ordered.index("terraform") < ordered.index("nixpack")
    assert ordered.index("container") < ordered.index("nixpack")
    assert kinds.get("terraform").role == "deploy" and kinds.get("nixpack").role == "image"
    assert kinds.template_roots() == {"nixpack": "nixpack"}


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(kinds.UnknownKind, match=r"known kinds: .*terraform"):
        kinds.get("helmfile")


def test_a_plugin_object_must_be_a_kind_of_its_registered_name(monkeypatch: pytest.MonkeyPatch) -> None:
    class Point:
        def __init__(self, name: str, value: object) -> None:
            self.name, self._value = name, value

        def load(self) -> object:
            return self._value

    class Wrong(kinds.Kind):
        name = "other"

    module = types.ModuleType("fakekind")
    monkeypatch.setitem(sys.modules, "fakekind", module)
    monkeypatch.setattr(
        kinds, "_entry_points", lambda: {"fake": Point("fake", Wrong()), "cls": Point("cls", Cls)}
    )

    class Cls(kinds.Kind):
        name = "cls"

    kinds.get.cache_clear()
    try:
        with pytest.raises(kinds.UnknownKind, match="does not provide a Kind of that name"):
            kinds.get("fake")
        assert isinstance(kinds.get("cls"), Cls)  # a class is instantiated
    finally:
        kinds.get.cache_clear()


def test_health_reads_as_the_brief_shows_it() -> None:
    assert kinds.Health("healthy", 2, 2).shown() == "✓ healthy (2/2)"
    assert kinds.Health("unhealthy", 1, 2).shown() == "✗ unhealthy (1/2)"
    assert kinds.Health("unknown", detail="not running").shown() == "? unknown"
