"""New and Configure's save: errors beside their field, and after a 409 your changes on top of theirs.

The form is compared as the definitions it describes (``core.definition_merge``): the version it was opened at,
theirs, and yours, each read through the form (so a default the form writes is no change of yours). The page
then shows theirs with your other changes applied, and beside each field you both changed both values and a
choice, carried by the form as ``conflict.N`` (the field's path and the two values, JSON) and
``conflict.N.choice`` (``theirs`` or ``yours``). Nothing is saved until the user saves the merged version, with
every choice made, over the newest version (a save over an even newer one is merged again).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from campaign_runs.core import definition_merge as merging
from campaign_runs.core.definition_text import load_text
from campaign_runs.domain import (
    CampaignRunsError,
    ConflictError,
    DefinitionConflictError,
    DefinitionErrors,
    DefinitionInvalidError,
    InvalidNoteError,
)
from campaign_runs.factory.documents import DocumentError
from campaign_runs.pages import definition_form
from campaign_runs.pages.forms import BadInputError

PREFIX = "conflict."
CHOICES = ("theirs", "yours")
_KEY = re.compile(r"conflict\.(\d{1,3})")
MAX_CONFLICTS = 200
MAX_DEPTH = 20  # keys in a field's path
CHOOSE = "Choose beside each field you both changed: keep theirs or take yours. Nothing was saved."


@dataclass(frozen=True)
class ShownConflict:
    """A field you both changed, as the form shows it beside its input."""

    index: int
    path: tuple[str, ...]
    theirs: str | None  # YAML of the value (None: not set)
    yours: str | None
    choice: str = ""
    missing: bool = False

    @property
    def field(self) -> str:
        """The dotted field."""
        return ".".join(self.path)

    @property
    def data(self) -> str:
        """What the form carries: the path and both values."""
        return json.dumps({"path": list(self.path), "theirs": self.theirs, "yours": self.yours})

    @property
    def theirs_shown(self) -> str:
        """Their value, as people read it."""
        return _shown(self.path, self.theirs)

    @property
    def yours_shown(self) -> str:
        """Your value, as people read it."""
        return _shown(self.path, self.yours)


@dataclass(frozen=True)
class MergedForm:
    """The form after a 409: theirs with your changes, the fields you both changed, and what was applied."""

    form: dict[str, str]
    conflicts: list[ShownConflict]
    applied: list[str] = field(default_factory=list)
    base_known: bool = True


def _shown(path: tuple[str, ...], text: str | None) -> str:
    if text is None:
        return "(not set)"
    value = merging.value_of_text(text)
    if path == ("schedule", "cron") and value is None:
        return "none (started by hand)"
    return value if isinstance(value, str) else text.strip()


def own_fields(source: Mapping[str, str]) -> dict[str, str]:
    """The definition form's fields of a request (its token, note, base version and conflict choices left out)."""
    form = definition_form.form_fields(source)
    return {name: value for name, value in form.items() if not name.startswith(PREFIX)}


def _parsed(index: int, raw: str, choice: str) -> ShownConflict:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    data = data if isinstance(data, dict) else {}
    path, theirs, yours = data.get("path"), data.get("theirs"), data.get("yours")
    texts = all(value is None or isinstance(value, str) for value in (theirs, yours))
    named = isinstance(path, list) and 0 < len(path) <= MAX_DEPTH and all(isinstance(p, str) and p for p in path)
    if not isinstance(path, list) or not (named and texts):  # (the first test for the type checker)
        raise BadInputError(f"The field 'conflict.{index}' is not a field changed by both of you.")
    if choice not in ("", *CHOICES):
        raise BadInputError(f"The field 'conflict.{index}.choice' must be one of {', '.join(CHOICES)}.")
    for value in (theirs, yours):
        try:
            merging.value_of_text(value)
        except (yaml.YAMLError, DocumentError):
            raise BadInputError(f"The field 'conflict.{index}' holds a value that is not YAML.") from None
    return ShownConflict(index, tuple(path), theirs, yours, choice)


def posted(source: Mapping[str, str], *, attempted: bool = False) -> list[ShownConflict]:
    """The conflicts a form carries, with the choices made (``attempted``: a save, so a missing choice is said)."""
    found = []
    for name in source:
        match = _KEY.fullmatch(name)
        if match is not None:
            index = int(match.group(1))
            found.append(_parsed(index, source[name], source.get(f"{name}.choice", "")))
    if len(found) > MAX_CONFLICTS:
        raise BadInputError(f"The form carries more than {MAX_CONFLICTS} conflicting fields.")
    shown = sorted(found, key=lambda conflict: conflict.index)
    return [ShownConflict(c.index, c.path, c.theirs, c.yours, c.choice, attempted and not c.choice) for c in shown]


def resolved(data: Mapping[str, Any], conflicts: list[ShownConflict]) -> dict[str, Any]:
    """``data`` with your value at each field where you chose yours (theirs is what the form already holds)."""
    chosen = {c.path: merging.value_of_text(c.yours) for c in conflicts if c.choice == "yours"}
    return merging.resolve(data, chosen)


def _through_form(data: Mapping[str, Any]) -> dict[str, Any]:
    """The definition as the form writes it back (its defaults set): what yours is compared with."""
    try:
        return definition_form.mapping_of(definition_form.form_of(data), data)
    except CampaignRunsError:  # a field the form cannot show: compared as it is
        return dict(data)


def merge_form(
    form: Mapping[str, str], earlier: list[ShownConflict], base_text: str | None, theirs_text: str
) -> MergedForm:
    """The form after a 409: yours (``form`` with its earlier choices) on top of theirs, from the version opened."""
    theirs = _through_form(load_text(theirs_text))
    base = None if base_text is None else _through_form(load_text(base_text))
    yours = resolved(definition_form.mapping_of(form, base if base is not None else theirs), earlier)
    result = merging.merge(base, theirs, yours)
    merged = definition_form.form_of(result.merged)
    conflicts = [
        ShownConflict(index, c.path, merging.value_text(c.theirs), merging.value_text(c.yours))
        for index, c in enumerate(result.conflicts)
    ]
    applied = [f"{c.field}: {_change(c)}" for c in result.applied]
    return MergedForm(merged, conflicts, applied, result.base_known)


def _change(change: merging.Change) -> str:
    before = _shown(change.path, merging.value_text(change.before))
    after = _shown(change.path, merging.value_text(change.after))
    return f"{_short(before)} → {_short(after)}"


def _short(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else f"{line[: limit - 1]}…"


def slot_of(conflict: ShownConflict, form: Mapping[str, str]) -> str:
    """The input a conflict is shown beside: the schedule's kind for the cron (always shown), "" above the form."""
    if conflict.path[:2] == ("schedule", "cron"):
        return "schedule.mode"
    if conflict.path[0] == "tags":
        return "tags"
    slot = definition_form.slot_of(conflict.field, form)
    return "" if slot.endswith(".enabled") else slot


def by_slot(conflicts: list[ShownConflict], form: Mapping[str, str]) -> dict[str, list[ShownConflict]]:
    """The conflicts grouped by the input each is shown beside."""
    slots: dict[str, list[ShownConflict]] = {}
    for conflict in conflicts:
        slots.setdefault(slot_of(conflict, form), []).append(conflict)
    return slots


def errors_of(error: CampaignRunsError, form: Mapping[str, str], clash_field: str = "") -> dict[str, str]:
    """Every error beside its field (a definition's all at once); the rest above the form (slot "")."""
    if not isinstance(error, DefinitionErrors):
        slot, message = _slot(error, form, clash_field)
        return {slot: message}
    shown: dict[str, str] = {}
    for name, reason in error.errors:
        slot = definition_form.slot_of(name, form)
        text = reason if slot else f"{name}: {reason}" if name else reason
        shown[slot] = f"{shown[slot]}; {text}" if slot in shown else text
    return shown


def _slot(error: CampaignRunsError, form: Mapping[str, str], clash_field: str = "") -> tuple[str, str]:
    """Where an error is shown: beside its field, or ("", message) above the form."""
    if isinstance(error, DefinitionInvalidError):
        slot = definition_form.slot_of(error.field, form)
        return slot, error.reason if slot else str(error)
    if isinstance(error, InvalidNoteError):
        return "note", str(error)
    if isinstance(error, ConflictError) and not isinstance(error, DefinitionConflictError) and clash_field:
        return clash_field, str(error)
    return "", str(error)
