"""The Monitor's date range, one rule for the page, the REST API and the CLI.

``from`` and ``to`` are ISO dates or times (UTC unless they say otherwise). A date stands for its whole day,
so both days of a date range are in it and From = To is that one day; a time is a moment: ``from`` is the
first moment in the range, ``to`` the first one after it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from campaign_runs.domain import InvalidOptionError

ONE_DAY = timedelta(days=1)
ENDS = ("from", "to")


class DateRangeError(InvalidOptionError):
    """A refused end of the range; ``field`` names it (``from`` or ``to``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_end(name: str, text: str | None) -> date | datetime | None:
    """``from`` or ``to`` as given: a date, a time, or None when empty; anything else is refused."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        shown = text[:40] + ("…" if len(text) > 40 else "")
        raise DateRangeError(name, f"'{name}' must be an ISO date such as 2026-11-01; {shown!r} is not.") from None


def _moment(value: date | datetime, *, after_day: bool) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    start = datetime.combine(value, time(), tzinfo=UTC)
    return start + ONE_DAY if after_day else start


def bounds(since: date | datetime | None, until: date | datetime | None) -> tuple[datetime | None, datetime | None]:
    """The range as ``[start, end)``: a ``to`` date ends after its day; an empty range is refused on ``to``."""
    start = _moment(since, after_day=False) if since is not None else None
    end = _moment(until, after_day=True) if until is not None else None
    if start is not None and end is not None and end <= start:
        day = not isinstance(until, datetime)
        raise DateRangeError("to", f"'to' must be {'on or ' if day else ''}after 'from': the range would be empty.")
    return start, end
