"""What the campaign pages accept from a request: one rule set, checked before any core call.

Ids and user names have the REST API's limits (``domain.ID_MAX``, ``domain.USERNAME_MAX``). A refused input is a
``BadInputError`` (400, its message shown in the page); a too-long or empty note stays the core's
``InvalidNoteError`` (422). ``fab.http.check_request`` applies these rules to a whole Flask request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote_to_bytes

from campaign_runs.domain import ID_MAX, USERNAME_MAX, CampaignRunsError

# The REST API's last page of a run schedule (``page <= 100000``); a page past the last run is empty, as there.
PAGE_MAX = 100_000
QUERY_MAX = 4096  # bytes of a query string; the pages' own links stay far below
FIELD_MAX = 1024  # any form field or query parameter without a closer limit (the note has its setting)
IDEMPOTENCY_KEY_MAX = 256  # as the API's Idempotency-Key header and its column
LIMITS = {
    "dag_id": ID_MAX,
    "run_id": ID_MAX,
    "action": ID_MAX,
    "q": ID_MAX,
    "to_user": USERNAME_MAX,
    "idempotency_key": IDEMPOTENCY_KEY_MAX,
}
LABELS = {
    "dag_id": "The campaign id",
    "run_id": "The run id",
    "action": "The action",
    "q": "The search",
    "to_user": "The user name",
    "note": "The note",
    "idempotency_key": "The idempotency key",
    "page": "The page",
}
SORTS = {"dag_id": "Name", "owner": "Owner", "next_run": "Next run", "paused": "Paused"}
ORIGINS = ("display", "run", "worklist")
FLAGS = ("", "0", "1")
CHECKBOX = ("", "on")
# Control characters, lone surrogates and U+FFFD (what invalid UTF-8 decodes to); a note may hold lines and tabs.
_BAD = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffd]")
_BAD_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffd]")
_PAGE = re.compile(r"[0-9]{1,7}")


class BadInputError(CampaignRunsError):
    """A request the pages refuse before doing anything (400)."""

    code = "invalid_request"


def _shown(value: str) -> str:
    return repr(value[:40] + ("…" if len(value) > 40 else ""))


def _label(name: str, kind: str) -> str:
    return LABELS.get(name) or f"The {kind} {_shown(name)}"


def check_text(label: str, value: str, *, multiline: bool = False, limit: int | None = FIELD_MAX) -> None:
    """Refuse ``value`` with a control character, invalid UTF-8 or more than ``limit`` characters."""
    bad = (_BAD_IN_TEXT if multiline else _BAD).search(value)
    if bad is not None:
        char = bad.group(0)
        if char == "\x00":
            raise BadInputError(f"{label} contains a NUL character.")
        if char == "\ufffd" or "\ud800" <= char <= "\udfff":
            raise BadInputError(f"{label} is not valid UTF-8 text.")
        raise BadInputError(f"{label} contains the control character U+{ord(char):04X}.")
    if limit is not None and len(value) > limit:
        raise BadInputError(f"{label} is {len(value)} characters long; the limit is {limit}.")


def check_pairs(pairs: Iterable[tuple[str, str]], kind: str) -> None:
    for name, value in pairs:
        check_text(f"A {kind} name", name, limit=FIELD_MAX)
        note = kind == "field" and name == "note"  # its length is the core's rule (422), its lines are fine
        check_text(_label(name, kind), value, multiline=note, limit=None if note else LIMITS.get(name, FIELD_MAX))


def check_query_string(raw: bytes) -> None:
    """Refuse a query string over ``QUERY_MAX`` bytes or one that is not UTF-8 once percent-decoded."""
    if len(raw) > QUERY_MAX:
        raise BadInputError(f"The query string is {len(raw)} bytes long; the limit is {QUERY_MAX}.")
    check_utf8("The query string", raw)


def check_utf8(label: str, raw: bytes) -> None:
    try:
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise BadInputError(f"{label} is not valid UTF-8.") from None


def page_number(args: Mapping[str, str]) -> int:
    """The ``page`` parameter: a whole number from 1 to ``PAGE_MAX`` (1 when absent)."""
    raw = args.get("page")
    if raw is None:
        return 1
    number = int(raw) if _PAGE.fullmatch(raw) else 0
    if not 1 <= number <= PAGE_MAX:
        raise BadInputError(f"The page must be a whole number from 1 to {PAGE_MAX}; {_shown(raw)} is not.")
    return number


def choice(
    values: Mapping[str, str], name: str, choices: Iterable[str], default: str, kind: str = "query parameter"
) -> str:
    """``values[name]`` when it is one of ``choices`` (``default`` when absent)."""
    value = values.get(name, default)
    allowed = list(choices)
    if value not in allowed:
        shown = ", ".join(repr(c) for c in allowed)
        raise BadInputError(f"{_label(name, kind)} must be one of {shown}; {_shown(value)} is not.")
    return value


def flag(values: Mapping[str, str], name: str, on: str = "1") -> bool:
    """A yes/no query parameter (``1``; absent, empty or ``0`` for no), or with ``on="on"`` a form's checkbox."""
    if on == "1":
        return choice(values, name, FLAGS, "") == "1"
    return choice(values, name, CHECKBOX, "", kind="field") == on


def checkbox(form: Mapping[str, str], name: str) -> bool:
    """A checkbox of a form: ``on`` when ticked, absent (or empty) when not."""
    return flag(form, name, on="on")


def search(args: Mapping[str, str]) -> str:
    """The campaigns page's search text, trimmed (its length and characters are checked with the request)."""
    return args.get("q", "").strip()
