"""The suppression list page, for both page hosts: list by channel, add, remove, import CSV, export CSV.

Work-list administrators (``rights.require_admin``, asked before any core call) list the addresses no campaign
sends to and change the list. Each function takes the host's user (``rights.Visitor``), its links and the posted
fields, and returns what to answer: the page, a ``Redirect`` with its message, or the page's refusal (the core's
reason and status, nothing changed). A refused user (403) or a bad field (400) is raised as the domain error,
which each host maps in one place. Every POST carries the host's CSRF token.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from campaign_runs.core import suppressions
from campaign_runs.domain import CampaignRunsError
from campaign_runs.http_errors import http_status
from campaign_runs.pages import forms, rights
from campaign_runs.pages.builders import PageView, Redirect

if TYPE_CHECKING:
    from campaign_runs.urls import PageLinks

CHANNELS = ("email", "sms", "push")
REASONS = ("manual", "unsubscribed", "bounced", "complained", "invalid")
PAGE_SIZE = 100
MAX_IMPORT_BYTES = suppressions.MAX_IMPORT_BYTES
LIMITS = {"address": 4096, "after": 4200}  # the longest push token; a cursor is a channel and an address
LABELS = {"channel": "The channel", "address": "The address", "reason": "The reason", "after": "The page cursor"}
TITLE = "Suppression list"
EXPORT_HEADERS = {"Content-Disposition": 'attachment; filename="suppressions.csv"'}  # the export's download


@dataclass(frozen=True)
class Upload:
    """A posted file: its name and its first ``MAX_IMPORT_BYTES + 1`` bytes (one more tells it is too big)."""

    filename: str
    data: bytes


def check_fields(pairs: Iterable[tuple[str, str]]) -> None:
    """Refuse a control character, invalid UTF-8 or an over-long value in a query parameter or form field (400)."""
    for name, value in pairs:
        forms.check_text("A field name", name)
        label = LABELS.get(name, f"The field {name[:40]!r}")
        forms.check_text(label, value, limit=LIMITS.get(name, forms.FIELD_MAX))


def _view(status: int = 200, flashes: tuple[tuple[str, str], ...] = (), **context: Any) -> PageView:
    """The page, for an administrator (asked first): the nav links it."""
    context.setdefault("page", None)  # None: the refusal, with a link back to the list
    context.setdefault("channel", "")
    shown = {"title": TITLE, "channels": CHANNELS, "reasons": REASONS, "may_manage_suppressions": True}
    return PageView("suppressions.html", {**shown, **context}, status, flashes)


def refusal(message: str, status: int) -> PageView:
    """The page's answer to a refused change or listing: the reason, and a link back to the list."""
    return _view(status, (("danger", message),))


def list_page(visitor: rights.Visitor, args: Mapping[str, str]) -> PageView:
    """A page of entries (``channel`` filter, ``after`` cursor) with the forms that change the list."""
    rights.require_admin(visitor)
    channel = args.get("channel", "")
    try:
        page = suppressions.list_suppressions(
            visitor.username, channel=channel or None, after=args.get("after", ""), limit=PAGE_SIZE
        )
    except CampaignRunsError as error:
        return refusal(str(error), http_status(error))
    return _view(page=page, channel=channel)


def _done(links: PageLinks, posted: Mapping[str, str], message: str) -> Redirect:
    """Back to the list, on the channel it showed, with ``message``."""
    return Redirect(links.suppressions_path(channel=posted.get("back_channel", "")), (("success", message),))


def add(visitor: rights.Visitor, links: PageLinks, posted: Mapping[str, str]) -> PageView | Redirect:
    """Suppress the posted address on the posted channel."""
    rights.require_admin(visitor)
    channel, address = posted.get("channel", ""), posted.get("address", "")
    reason = posted.get("reason", "manual")
    try:
        added = suppressions.add_suppression(visitor.username, channel, address, reason=reason, source="page")
    except CampaignRunsError as error:
        return refusal(str(error), http_status(error))
    return _done(links, posted, f"{address} {'is now' if added else 'was already'} suppressed on {channel}.")


def remove(visitor: rights.Visitor, links: PageLinks, posted: Mapping[str, str]) -> PageView | Redirect:
    """Take the posted address off the posted channel's list."""
    rights.require_admin(visitor)
    channel, address = posted.get("channel", ""), posted.get("address", "")
    try:
        suppressions.remove_suppression(visitor.username, channel, address)
    except CampaignRunsError as error:
        return refusal(str(error), http_status(error))
    return _done(links, posted, f"{address} is off the {channel} suppression list.")


def import_csv(
    visitor: rights.Visitor, links: PageLinks, posted: Mapping[str, str], upload: Upload | None
) -> PageView | Redirect:
    """Add every row of the uploaded CSV file, or none."""
    rights.require_admin(visitor)
    if upload is None or not upload.filename:
        return refusal("Choose a CSV file to import (header channel,address,reason).", 400)
    if len(upload.data) > MAX_IMPORT_BYTES:
        return refusal(f"The file is over {MAX_IMPORT_BYTES} bytes; nothing was imported.", 413)
    source = f"page import {upload.filename}"[:200]
    try:
        added, kept = suppressions.import_suppressions(visitor.username, upload.data, source=source)
    except CampaignRunsError as error:
        return refusal(str(error), http_status(error))
    return _done(links, posted, f"Imported {upload.filename}: {added} added, {kept} already on the list.")


def export_csv(visitor: rights.Visitor) -> Iterator[str] | PageView:
    """The whole list as CSV lines, or the refusal."""
    rights.require_admin(visitor)
    try:
        return suppressions.export_suppressions(visitor.username)
    except CampaignRunsError as error:
        return refusal(str(error), http_status(error))
