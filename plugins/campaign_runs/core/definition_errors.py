"""Every error of a definition at once: each check runs again once the field it refused is set aside.

The checks (and the factory's parser) stop at their first error. To report them all, the field at fault is
replaced in a working copy (by a value the checks accept, or left out when it may be) and the checks run
again, until they pass or a field cannot be set aside; each field is reported once, in the order found.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from campaign_runs.adapters import definitions as files
from campaign_runs.core.definition_templates import check_templates as _check_templates
from campaign_runs.domain import DefinitionErrors, DefinitionInvalidError

SAFE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")  # always fullmatch: "$" matches before a newline
MAX_ERRORS = 50
# Values the checks accept, for the required fields a refused value is replaced by (by their last name).
STAND_INS: dict[str, Any] = {
    "id": "campaign",
    "description": "-",
    "owner": "-",
    "owner_email": "owner@example.com",
    "cron": "@daily",
    "timezone": "UTC",
    "start_date": "2026-01-01",
    "segment": "-",
    "subject": "-",
    "body": "-",
    "text": "-",
    "title": "-",
    "query": "select 1",
    "url": "-.csv",
}


def _set_aside(data: dict[str, Any], field: str) -> bool:
    """Replace (or leave out) ``field`` of ``data``; False when there is nothing to do (the errors stop here)."""
    *parents, name = field.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return False
    if name in STAND_INS and node.get(name) != STAND_INS[name]:
        node[name] = STAND_INS[name]
        return True
    if name in node:
        del node[name]
        return True
    return False


def collect(data: dict[str, Any], checks: Callable[[dict[str, Any]], Any]) -> Any:
    """``checks(data)``'s answer; else ``DefinitionErrors`` with the error of every field (``field`` '' stops)."""
    work, errors = copy.deepcopy(data), list[tuple[str, str]]()
    for _ in range(MAX_ERRORS):
        try:
            answer = checks(work)
        except DefinitionInvalidError as error:
            found = error.errors if isinstance(error, DefinitionErrors) else [(error.field, error.reason)]
            new = [(field, reason) for field, reason in found if field not in {f for f, _ in errors}]
            errors += new
            if not new or not all(field and _set_aside(work, field) for field, _ in new):
                break
            continue
        if not errors:
            return answer
        break
    raise DefinitionErrors(errors)


_found: ContextVar[list[tuple[str, str]] | None] = ContextVar("campaign_runs_form_errors", default=None)


@contextmanager
def collecting() -> Iterator[list[tuple[str, str]]]:
    """Within: ``refused`` keeps each error (field, message) in the list given, instead of raising it."""
    found: list[tuple[str, str]] = []
    token = _found.set(found)
    try:
        yield found
    finally:
        _found.reset(token)


def refused(field: str, message: str) -> None:
    """A form field's error: kept with the others while ``collecting``, else raised."""
    found = _found.get()
    if found is None:
        raise DefinitionInvalidError(field, message)
    found.append((field, message))


def _check_id(data: dict[str, Any]) -> str:
    dag_id = data.get("id")
    if not isinstance(dag_id, str) or not SAFE_ID.fullmatch(dag_id) or ".." in dag_id:
        raise DefinitionInvalidError(
            "id", f"{dag_id!r} is not a campaign id: letters, digits, '_', '.' and '-', no path, not hidden"
        )
    return dag_id


def _mapping(data: Any, key: str) -> dict[str, Any]:
    """``data[key]`` when both are mappings, else an empty mapping (the factory reports the wrong type)."""
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def _check_rates(data: dict[str, Any]) -> None:
    """A rate limit, when given, is a positive number of messages per second (leave it out for no limit)."""
    channels = _mapping(data, "channels")
    for channel, settings in channels.items():
        rate = settings.get("rate_limit_per_second") if isinstance(settings, dict) else None
        if isinstance(rate, int | float) and not isinstance(rate, bool) and rate <= 0:
            raise DefinitionInvalidError(
                f"channels.{channel}.rate_limit_per_second",
                f"must be more than 0 messages per second, got {rate!r}; leave it out for no limit",
            )


def _checks(data: dict[str, Any]) -> tuple[str, Any]:
    """The checks of a definition, stopping at the first error."""
    dag_id = _check_id(data)
    _check_templates(data)
    _check_rates(data)
    try:
        spec = files.parse(data, f"{dag_id}{files.SUFFIX}")
    except files.SpecRejected as error:
        raise DefinitionInvalidError(error.problem.field, error.problem.message) from error
    return dag_id, spec


def validate_data(data: dict[str, Any], earlier: list[tuple[str, str]] | None = None) -> tuple[str, Any]:
    """``validate_text`` of a parsed definition; ``earlier``: errors found before (a form's), reported first."""
    try:
        found: tuple[str, Any] = collect(data, _checks)
    except DefinitionErrors as error:
        seen = {field for field, _ in earlier or []}
        unread = any(field.startswith("audience.") for field in seen)  # its fields unknown: placeholders unchecked
        later = [
            e for e in error.errors if e[0] not in seen and not (unread and e[1].startswith("unknown placeholder"))
        ]
        raise DefinitionErrors([*(earlier or []), *later]) from None
    if earlier:
        raise DefinitionErrors(earlier)
    return found
