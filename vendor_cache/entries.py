"""Vendor entries: what to vendor for each component, and which entry applies to a target.

Entries come in layers (SPEC §7: inline manifest entries, then the `vendor.manifest` file, then the
repository `vendor.yaml`, then auto-discovery). For one target and one component, the first layer
holding a matching entry wins; inside a layer the most specific match wins (the entry whose
`labels` name the most keys), so a layer can give prod its own pin next to a label-less default.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vendor_cache.errors import ManifestError
from vendor_cache.sources import render_source

VENDOR_API_VERSION = "atmos/v1"
VENDOR_KIND = "AtmosVendorConfig"


@dataclass(frozen=True)
class VendorEntry:
    """One component's vendoring: where from, which version, which files, for which targets.

    `labels` restricts the entry to targets whose labels have, for every key, one of the listed
    values; an entry without labels applies to every target. `base_dir` anchors a relative local
    source (None: the current directory). Sequences are stored as tuples, label values as tuples of
    text (a single value counts as a list of one). `origin` says where the entry is written: its
    `str()` (a `file:line`) prefixes the errors vendoring this entry raises; it is not compared.
    """

    component: str
    source: str
    version: str | None = None
    included_paths: Sequence[str] = ()
    excluded_paths: Sequence[str] = ()
    labels: Mapping[str, Any] = field(default_factory=dict)
    tags: Sequence[str] = ()
    base_dir: Path | None = None
    origin: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if any(part in ("", ".", "..") for part in self.component.split("/")):
            raise ManifestError(
                f"vendor entry for {self.source!r} has an unusable component name {self.component!r}",
                hint="use the component's folder name, e.g. vpc or ecs/service-api",
            )
        # Accept lists from parsed YAML or pydantic models, and compare entries by value.
        object.__setattr__(self, "included_paths", tuple(self.included_paths))
        object.__setattr__(self, "excluded_paths", tuple(self.excluded_paths))
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "labels", {str(k): _label_values(vs) for k, vs in self.labels.items()})

    @property
    def rendered_source(self) -> str:
        return render_source(self.source, self.version)

    def applies_to(self, target_labels: Mapping[str, Any]) -> bool:
        return all(
            key in target_labels and _label_text(target_labels[key]) in values
            for key, values in self.labels.items()
        )


def select_entries(
    entries: Iterable[VendorEntry], target_labels: Mapping[str, Any]
) -> dict[str, VendorEntry]:
    """Per component, the entry of one layer that applies to a target with `target_labels`."""
    chosen: dict[str, VendorEntry] = {}
    for entry in entries:
        if not entry.applies_to(target_labels):
            continue
        current = chosen.get(entry.component)
        if current is None or len(entry.labels) > len(current.labels):
            chosen[entry.component] = entry
        elif len(entry.labels) == len(current.labels) and entry != current:
            raise ManifestError(
                f"two vendor entries for component {entry.component!r} apply equally to a target with "
                f"labels {dict(target_labels)}: {current.source!r} ({current.version}) and "
                f"{entry.source!r} ({entry.version})",
                hint="give one of them `labels:` that tell the targets apart",
            )
    return chosen


def resolve_entries(
    layers: Sequence[Iterable[VendorEntry]], target_labels: Mapping[str, Any]
) -> dict[str, VendorEntry]:
    """Per component, the applicable entry from the first layer that has one (earlier layers win)."""
    resolved: dict[str, VendorEntry] = {}
    for layer in layers:
        for component, entry in select_entries(layer, target_labels).items():
            resolved.setdefault(component, entry)
    return resolved


def entries_from_manifest(
    items: Iterable[Mapping[str, Any]], *, base_dir: Path | None = None, origins: Sequence[Any] = ()
) -> list[VendorEntry]:
    """Per-component entries from manifest-style mappings.

    An item names its component(s) with `component: name` (Atmos vendor.yaml) or `targets: [names]`
    (the deployment manifest, SPEC §3), or both; it becomes one entry per named component.
    `origins`, one per item, become the entries' `origin`.
    """
    entries: list[VendorEntry] = []
    for number, item in enumerate(items, 1):
        names = _component_names(item, f"vendor entry #{number}")
        origin = origins[number - 1] if number <= len(origins) else None
        entries.extend(
            replace(_entry(name, item, f"vendor entry #{number}", base_dir), origin=origin) for name in names
        )
    return entries


def read_vendor_yaml(
    path: Path, *, components: Iterable[str] | None = None, tags: Iterable[str] | None = None
) -> list[VendorEntry]:
    """Entries of an Atmos `vendor.yaml` (and the files it imports), optionally filtered.

    `components` keeps only entries for those components; `tags` keeps entries carrying at least
    one of the tags. In Atmos files `targets` are destination folders, so the component name comes
    from `component:`, which is therefore required. Relative local sources resolve against the file's
    directory.
    """
    wanted = set(components) if components is not None else None
    wanted_tags = set(tags) if tags is not None else None
    entries: list[VendorEntry] = []
    for entry in _read_vendor_file(path.resolve(), importers=()):
        if wanted is not None and entry.component not in wanted:
            continue
        if wanted_tags is not None and not wanted_tags.intersection(entry.tags):
            continue
        entries.append(entry)
    return entries


def _read_vendor_file(path: Path, importers: tuple[Path, ...]) -> list[VendorEntry]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from vendor_cache.yamllimits import check_yaml_limits

    if path in importers:
        chain = " → ".join(str(p) for p in (*importers, path))
        raise ManifestError(f"{path} imports itself: {chain}", hint="remove the import cycle")
    try:
        text = path.read_text()
        exceeded = check_yaml_limits(text)
        if exceeded is not None:
            raise ManifestError(
                f"{path}:{exceeded.line}:{exceeded.column}: {exceeded.message}", hint=exceeded.hint
            )
        document = YAML().load(text)
    except OSError as error:
        raise ManifestError(
            f"cannot read {path}: {error.strerror}", hint="check spec.imports and paths"
        ) from None
    except YAMLError as error:
        raise ManifestError(f"{path} is not valid YAML: {error}", hint="fix the YAML syntax") from None
    if not isinstance(document, Mapping):
        raise ManifestError(f"{path} is not a vendor manifest (a mapping is expected)", hint=_KIND_HINT)
    if document.get("apiVersion") != VENDOR_API_VERSION or document.get("kind") != VENDOR_KIND:
        raise ManifestError(
            f"{path} has apiVersion {document.get('apiVersion')!r} and kind {document.get('kind')!r}",
            hint=_KIND_HINT,
        )
    spec = document.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise ManifestError(f"{path}: `spec` must be a mapping", hint="write spec: {sources: [...]}")
    for key in ("imports", "sources"):
        if not isinstance(spec.get(key) or [], list):
            raise ManifestError(f"{path}: `spec.{key}` must be a list", hint=f"write {key}: [...]")
    entries: list[VendorEntry] = []
    for pattern in spec.get("imports") or []:
        matches = sorted(path.parent.glob(_with_yaml_suffix(str(pattern))))
        if not matches:
            raise ManifestError(
                f"{path}: spec.imports names {pattern!r}, which matches no file",
                hint="fix the import path (relative to this file)",
            )
        for imported in matches:
            entries.extend(_read_vendor_file(imported.resolve(), (*importers, path)))
    for number, item in enumerate(spec.get("sources") or [], 1):
        where = f"{path}:{_line(spec['sources'], number - 1)}: spec.sources #{number}"
        if not isinstance(item, Mapping):
            raise ManifestError(
                f"{where} is not a mapping", hint="each source is `- component: …, source: …`"
            )
        if "component" not in item:
            raise ManifestError(f"{where} has no `component:`", hint="add `component: <name>` to the source")
        entry = _entry(str(item["component"]), item, where, path.parent)
        entries.append(replace(entry, origin=f"{path}:{_line(spec['sources'], number - 1)}"))
    return entries


_KIND_HINT = f"a vendor manifest starts with `apiVersion: {VENDOR_API_VERSION}` and `kind: {VENDOR_KIND}`"


def _with_yaml_suffix(pattern: str) -> str:
    return pattern if pattern.endswith((".yaml", ".yml")) else f"{pattern}.yaml"


def _line(sequence: Any, index: int) -> int | str:
    try:
        return int(sequence.lc.item(index)[0]) + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        return "?"


def _component_names(item: Mapping[str, Any], where: str) -> list[str]:
    names: list[str] = []
    if item.get("component"):
        names.append(str(item["component"]))
    targets = item.get("targets") or []
    if isinstance(targets, str) or not isinstance(targets, Iterable):
        raise ManifestError(
            f"{where}: `targets` must be a list of component names", hint="write targets: [vpc]"
        )
    names.extend(str(t) for t in targets if str(t) not in names)
    if not names:
        raise ManifestError(
            f"{where} ({item.get('source')!r}) names no component",
            hint="add `targets: [<component>]` (or `component: <name>`)",
        )
    return names


def _entry(component: str, item: Mapping[str, Any], where: str, base_dir: Path | None) -> VendorEntry:
    source = item.get("source")
    if not isinstance(source, str) or not source:
        raise ManifestError(
            f"{where} has no `source:`", hint="add the module's source (Git URL, archive or path)"
        )
    labels = item.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise ManifestError(
            f"{where}: `labels` must map label names to lists of values", hint="write labels: {env: [prod]}"
        )
    version = _version(item.get("version"), where)
    included = _strings(item.get("included_paths"), "included_paths", where)
    excluded = _strings(item.get("excluded_paths"), "excluded_paths", where)
    tags = _strings(item.get("tags"), "tags", where)
    try:
        return VendorEntry(component, source, version, included, excluded, labels, tags, base_dir)
    except ManifestError as error:
        raise ManifestError(f"{where}: {error.message}", hint=error.hint) from None


def _version(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        # YAML reads 1.10 as the number 1.1: the version the user wrote is already lost.
        raise ManifestError(
            f"{where}: version {value} was read as a number, which loses digits (1.10 becomes 1.1)",
            hint='quote the version, e.g. version: "1.10"',
        )
    if isinstance(value, bool):
        raise ManifestError(f"{where}: version {value} is a boolean", hint="quote the version")
    return str(value)


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise ManifestError(f"{where}: `{key}` must be a list", hint=f"write {key}: [<value>, …]")
    return tuple(_label_text(v) for v in value)


def _label_values(values: Any) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        return (_label_text(values),)
    return tuple(_label_text(v) for v in values)


def _label_text(value: Any) -> str:
    # Labels compare as text, with YAML booleans spelled the way they are written in manifests.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
