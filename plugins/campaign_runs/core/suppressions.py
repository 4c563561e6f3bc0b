"""The suppression list as people manage it (work-list administrators), and recipients' one-click unsubscribe.

The list itself is ``factory.suppression``: beside the delivery ledger, where the channel tasks read it. Every
function refuses a bad input with a domain error before it changes anything: an import is checked whole first.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from campaign_runs.adapters import auth
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.domain import InvalidOptionError, NotFoundError, NotPermittedError
from campaign_runs.factory.hygiene import address_problem, normalised_address
from campaign_runs.factory.suppression import CHANNELS, REASONS, Suppression, SuppressionError, suppression_key

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from campaign_runs.factory.suppression import SuppressionList

IMPORT_HEADER = ("channel", "address", "reason")
EXPORT_HEADER = ("channel", "address", "reason", "source", "actor", "created_at")
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ROWS = 100_000
PAGE_DEFAULT = 100
PAGE_MAX = 1000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run such a cell of the export
KEY_SECONDS = 60.0
_key: tuple[float, bytes] | None = None  # (when read, the unsubscribe tokens' key)


class InvalidTokenError(InvalidOptionError):
    """An unsubscribe token this server did not sign, or that was altered, malformed or oversized."""

    code = "invalid_token"


@dataclass(frozen=True)
class SuppressionPage:
    """One page of the list: its entries, the cursor of the next page (None after the last), counts per channel."""

    entries: list[Suppression]
    next_after: str | None
    counts: dict[str, int]


@dataclass(frozen=True)
class Unsubscribe:
    """What a valid token names: the address, its channel and the campaign that sent it."""

    channel: str
    address: str
    campaign: str


@contextmanager
def opened() -> Iterator[SuppressionList]:
    """The suppression list in the ledger's database (``ledger_conn_id``), else under ``sink_dir``; closed after."""
    from campaign_runs.factory.factory import ledger_conn_id, sink_directory
    from campaign_runs.factory.suppression import open_suppressions

    suppressions = open_suppressions(sink_dir=sink_directory(), conn_id=ledger_conn_id())
    try:
        yield suppressions
    finally:
        suppressions.close()


@provide_session
def require_admin(actor: str, *, session: Session = NEW_SESSION) -> None:
    """Refuse anyone but a work-list administrator (who may edit users): ``NotFoundError`` / ``NotPermittedError``."""
    known, _ = auth.find_user(actor, session)
    if not known:
        raise NotFoundError(auth.unknown_user_message(actor))
    if not auth.is_worklist_admin_name(actor, session):
        raise NotPermittedError(f"Only work-list administrators may manage the suppression list; {actor!r} is not one.")


def _channel(channel: str | None) -> str | None:
    if channel is not None and channel not in CHANNELS:
        raise InvalidOptionError(f"Unknown channel {channel[:40]!r}; the channels are {', '.join(CHANNELS)}.")
    return channel


def _cursor(after: str) -> tuple[int, str]:
    """The channel index and address a page starts after (``channel:address``; empty for the first page)."""
    if not after:
        return 0, ""
    channel, colon, address = after.partition(":")
    if not colon or channel not in CHANNELS:
        raise InvalidOptionError(f"The page cursor {after[:40]!r} is not one this list gave (channel:address).")
    return CHANNELS.index(channel), address


def list_suppressions(
    actor: str, *, channel: str | None = None, after: str = "", limit: int = PAGE_DEFAULT
) -> SuppressionPage:
    """Entries by channel, then address, ``limit`` at most, after the cursor ``after`` (administrators only)."""
    require_admin(actor)
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidOptionError(f"The page size is {limit}; it must be between 1 and {PAGE_MAX}.")
    start, address = _cursor(after)
    names = [_channel(channel)] if channel else list(CHANNELS[start:])
    if channel and after and CHANNELS[start] != channel:
        raise InvalidOptionError(f"The page cursor {after[:40]!r} is not of channel {channel!r}.")
    entries: list[Suppression] = []
    with opened() as suppressions:
        for index, name in enumerate(names):
            entries += suppressions.entries(name, after=address if index == 0 else "", limit=limit - len(entries))
            if len(entries) >= limit:
                break
        counts = suppressions.count()
    last = entries[-1] if len(entries) >= limit else None
    return SuppressionPage(entries, f"{last.channel}:{last.address}" if last else None, counts)


def add_suppression(actor: str, channel: str, address: str, *, reason: str = "manual", source: str = "manual") -> bool:
    """Suppress ``address`` on ``channel`` (administrators only); False when it already was."""
    require_admin(actor)
    _channel(channel)
    with opened() as suppressions:
        try:
            return suppressions.add(channel, address, reason=reason, source=source, actor=actor)
        except SuppressionError as error:
            raise InvalidOptionError(f"{error}; nothing was added.") from None


def remove_suppression(actor: str, channel: str, address: str) -> None:
    """Take ``address`` off the list for ``channel`` (administrators only); ``NotFoundError`` when not on it."""
    require_admin(actor)
    _channel(channel)
    with opened() as suppressions:
        if not suppressions.remove(channel, address):
            raise NotFoundError(f"{address[:80]!r} is not on the {channel} suppression list; nothing was removed.")


def parse_import(data: bytes) -> list[tuple[str, str, str]]:
    """The (channel, address, reason) rows of a CSV file, every one checked; the first bad one names its line."""
    if len(data) > MAX_IMPORT_BYTES:
        message = f"The file is {len(data)} bytes; at most {MAX_IMPORT_BYTES} bytes may be imported at once."
        raise InvalidOptionError(message)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidOptionError("The file is not UTF-8 text; nothing was imported.") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = tuple(cell.strip().lower() for cell in next(reader, []))
        if header not in (IMPORT_HEADER, EXPORT_HEADER):
            raise InvalidOptionError(f"Line 1: the header must be {','.join(IMPORT_HEADER)}; nothing was imported.")
        return [_import_row(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise InvalidOptionError(f"Line {reader.line_num}: not CSV ({error}); nothing was imported.") from None


def _import_row(line: int, row: list[str]) -> tuple[str, str, str]:
    if line > MAX_IMPORT_ROWS + 1:
        raise InvalidOptionError(f"Line {line}: at most {MAX_IMPORT_ROWS} rows may be imported at once.")
    if len(row) not in (len(IMPORT_HEADER), len(EXPORT_HEADER)):
        raise InvalidOptionError(f"Line {line}: {len(row)} fields, not channel,address,reason; nothing was imported.")
    channel, address, reason = (cell.strip() for cell in row[:3])
    try:
        check_entry(channel, address, reason or "manual")
    except SuppressionError as error:
        raise InvalidOptionError(f"Line {line}: {error}; nothing was imported.") from None
    return channel, address, reason or "manual"


def check_entry(channel: str, address: str, reason: str) -> None:
    """What ``SuppressionList.add`` would refuse, refused without a database: ``SuppressionError``."""
    suppression_key(channel, address)
    if reason not in REASONS:
        raise SuppressionError(f"unknown reason {reason[:40]!r} (known: {', '.join(REASONS)})")
    if (problem := address_problem(channel, normalised_address(channel, address))) is not None:
        raise SuppressionError(f"{address[:80]!r} is not a {channel} address ({problem.replace('_', ' ')})")


def import_suppressions(actor: str, data: bytes, *, source: str = "import") -> tuple[int, int]:
    """Add every row of a CSV file (administrators only): (added, already listed); a bad file adds nothing."""
    require_admin(actor)
    rows = parse_import(data)
    with opened() as suppressions:
        return suppressions.add_many(rows, source=source, actor=actor)


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_START) else value


def export_suppressions(actor: str) -> Iterator[str]:
    """The whole list as CSV lines (administrators only: checked before the first line), read a page at a time."""
    require_admin(actor)

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(EXPORT_HEADER)
        with opened() as suppressions:
            for entry in suppressions.every():
                row = entry.as_dict()
                writer.writerow([*(row[name] for name in IMPORT_HEADER), *(_cell(row[n]) for n in EXPORT_HEADER[3:])])
                if out.tell() > 64 * 1024:
                    yield out.getvalue()
                    out.seek(0)
                    out.truncate()
        yield out.getvalue()

    return lines()


def _signing_key() -> bytes:
    """The unsubscribe tokens' key, read from the configuration at most once a minute."""
    # Anyone may call the unsubscribe route: a ``_cmd`` or ``_secret`` option read per request would let them
    # make the API server run the command or query the secrets backend at will.
    global _key
    from campaign_runs.factory.unsubscribe import signing_key

    now = time.monotonic()
    if _key is None or now - _key[0] > KEY_SECONDS:
        _key = (now, signing_key())
    return _key[1]


def read_unsubscribe(token: str) -> Unsubscribe:
    """What a recipient's token names; ``InvalidTokenError`` when it is not one we signed (nothing is read)."""
    from campaign_runs.factory.unsubscribe import UnsubscribeError, read_token

    try:
        channel, address, campaign = read_token(token, key=_signing_key())
    except UnsubscribeError as error:
        raise InvalidTokenError(str(error)) from None
    return Unsubscribe(channel, address, campaign)


def unsubscribe(token: str) -> Unsubscribe:
    """A recipient's one-click unsubscribe: the token's address suppressed as ``unsubscribed`` (again: no change)."""
    found = read_unsubscribe(token)
    with opened() as suppressions:
        try:
            suppressions.add(
                found.channel, found.address, reason="unsubscribed", source=found.campaign, actor="recipient"
            )
        except SuppressionError as error:
            raise InvalidTokenError(f"The unsubscribe link names no address we can record ({error}).") from None
    return found


__all__ = ["REASONS", "InvalidTokenError", "SuppressionPage", "Unsubscribe"]
