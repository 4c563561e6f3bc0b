"""A three-way merge of campaign definitions: your edit applied on top of a version someone saved meanwhile.

Pure functions on YAML mappings (no database, no web framework). ``merge(base, theirs, yours)`` compares each
field of the version the edit started from (``base``) with theirs and with yours, field by field down nested
mappings (a channel's settings, the audience's criteria): a field only you changed takes your value, a field
only they changed keeps theirs, and a field you both changed to different values is a ``Conflict`` that keeps
theirs until someone chooses (``resolve``). Lists and scalars are whole values. With no base (its text is
unknown) every field where theirs and yours differ is a conflict: nothing is overwritten blindly.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from campaign_runs.factory.documents import load_yaml


class _Absent:
    """A field a version does not have (not the same as a YAML ``null``)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        """The one instance."""
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        """``ABSENT``."""
        return "ABSENT"

    def __deepcopy__(self, memo: dict[int, Any]) -> _Absent:
        """Itself: there is one."""
        return self


ABSENT: Final = _Absent()
_UNKNOWN: Final = object()  # the base value of a field when the base version itself is unknown

Path = tuple[str, ...]


@dataclass(frozen=True)
class Change:
    """A field you changed and nobody else did: applied on top of theirs."""

    path: Path
    before: Any
    after: Any

    @property
    def field(self) -> str:
        """The dotted field, e.g. ``audience.size``."""
        return ".".join(self.path)


@dataclass(frozen=True)
class Conflict:
    """A field you both changed, to different values; ``base`` is ``ABSENT`` too when the base is unknown."""

    path: Path
    base: Any
    theirs: Any
    yours: Any

    @property
    def field(self) -> str:
        """The dotted field, e.g. ``channels.email.subject``."""
        return ".".join(self.path)

    def as_dict(self) -> dict[str, Any]:
        """The field, its path and each version's value as YAML (None: the version does not have the field)."""
        values = {"base": self.base, "theirs": self.theirs, "yours": self.yours}
        return {"field": self.field, "path": list(self.path), **{k: value_text(v) for k, v in values.items()}}


@dataclass(frozen=True)
class Merge:
    """Theirs with your changes applied; each conflicting field keeps theirs until ``resolve`` says."""

    merged: dict[str, Any]
    applied: tuple[Change, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    base_known: bool = True


@dataclass
class _Found:
    applied: list[Change] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types (``1``, ``1.0`` and ``True`` differ), mappings and lists compared deeply."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and (a is b or a == b)


def _nested(value: Any) -> bool:
    """A mapping merged key by key (every key a text: its fields can be named)."""
    return isinstance(value, dict) and all(isinstance(key, str) for key in value)


def _merge_value(base: Any, theirs: Any, yours: Any, path: Path, found: _Found) -> Any:
    if same(theirs, yours):
        return theirs
    known = base is not _UNKNOWN
    if _nested(theirs) and _nested(yours) and (not known or base is ABSENT or _nested(base)):
        return _merge_mapping(base, theirs, yours, path, found)  # field by field, each change named
    if known and same(yours, base):
        return theirs
    if known and same(theirs, base):
        found.applied.append(Change(path, base, yours))
        return yours
    found.conflicts.append(Conflict(path, base if known else ABSENT, theirs, yours))
    return theirs


def _merge_mapping(
    base: Any, theirs: Mapping[str, Any], yours: Mapping[str, Any], path: Path, found: _Found
) -> dict[str, Any]:
    """Key by key, in theirs' order, then the keys only yours has in yours' order; a key merged away is left out."""
    if base is _UNKNOWN:
        bases: Mapping[str, Any] = {}
    else:
        bases = base if isinstance(base, dict) else {}
    keys = list(theirs) + [key for key in yours if key not in theirs]
    keys += [key for key in bases if key not in theirs and key not in yours]
    merged: dict[str, Any] = {}
    for key in keys:
        old = _UNKNOWN if base is _UNKNOWN else bases.get(key, ABSENT)
        value = _merge_value(old, theirs.get(key, ABSENT), yours.get(key, ABSENT), (*path, key), found)
        if value is not ABSENT:
            merged[key] = value
    return merged


def merge(base: Mapping[str, Any] | None, theirs: Mapping[str, Any], yours: Mapping[str, Any]) -> Merge:
    """``yours`` on top of ``theirs`` field by field, from ``base`` (None: unknown, so any difference conflicts)."""
    found = _Found()
    start = _UNKNOWN if base is None else dict(base)
    merged = _merge_mapping(start, theirs, yours, (), found)
    return Merge(copy.deepcopy(merged), tuple(found.applied), tuple(found.conflicts), base_known=base is not None)


def value_at(data: Mapping[str, Any], path: Path) -> Any:
    """The value at ``path``, ``ABSENT`` when a part of it is missing."""
    node: Any = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return ABSENT
        node = node[key]
    return node


def resolve(data: Mapping[str, Any], chosen: Mapping[Path, Any]) -> dict[str, Any]:
    """A copy of ``data`` with each chosen value set at its path (``ABSENT``: the field removed)."""
    result = copy.deepcopy(dict(data))
    for path, value in chosen.items():
        if not path:
            continue
        node = result
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                if value is ABSENT:
                    break
                child = node[key] = {}
            node = child
        else:
            if value is ABSENT:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = copy.deepcopy(value)
    return result


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    """YAML with multi-line texts as literal blocks (``|``), as people write them."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)


def value_text(value: Any) -> str | None:
    """A field's value as YAML that ``value_of_text`` reads back exactly; None for ``ABSENT``."""
    if value is ABSENT:
        return None
    text = yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return str(text).removesuffix("...\n")


def value_of_text(text: str | None) -> Any:
    """The value ``value_text`` wrote (``ABSENT`` for None); ``yaml.YAMLError`` or ``DocumentError`` if it is none."""
    return ABSENT if text is None else load_yaml(text)
