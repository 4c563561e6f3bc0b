"""What each campaign page shows, for both hosts: FAB's views (``pages.fab``) and the API server's (``pages.asgi``).

A builder reads the request's parameters, calls the core and returns the template with its context; the
host only checks the login and permissions, renders, and turns a domain error into its answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from campaign_runs import core
from campaign_runs.core.outcomes import what_next
from campaign_runs.core.overview import overview
from campaign_runs.core.users import email_of, no_email_notice
from campaign_runs.domain import Action, NotACampaignError, RunStatus
from campaign_runs.pages import forms, rights
from campaign_runs.pages.format import render_markdown
from campaign_runs.settings import get_settings

CAMPAIGNS_PAGE_SIZE = 50


# What happens next after an action, with an email on its way (True) or none that could be sent (False).
class Access(Protocol):
    """What the logged-in user may do, as the host's auth manager answers it."""

    def may(self, dag_id: str | None, method: str) -> bool:
        """Whether the user may ``method`` (GET, PUT, POST) the runs of ``dag_id``."""

    def may_read_logs(self, dag_id: str) -> bool:
        """Whether the user may read the task logs of ``dag_id``."""

    def authorized_dag_ids(self, method: str) -> set[str]:
        """The DAG ids the user may ``method``."""


@dataclass(frozen=True)
class PageView:
    """A template, its context, the HTTP status to answer with and the messages it shows."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    flashes: tuple[tuple[str, str], ...] = ()  # (category, message) shown on this page


@dataclass(frozen=True)
class Redirect:
    """Where to send the browser (303), with the messages the next page shows."""

    location: str
    flashes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Clock:
    """A campaign's times as its run schedule shows them: short in the campaign's zone, in full with UTC."""

    zone: str = "UTC"

    @property
    def tz(self) -> tzinfo:
        """The campaign's zone (UTC when Python does not know its name)."""
        try:
            return ZoneInfo(self.zone)
        except (ZoneInfoNotFoundError, ValueError):
            return UTC

    @property
    def is_utc(self) -> bool:
        """Whether the campaign's times are UTC times (then the pages show them once)."""
        return self.zone.upper() in ("UTC", "ETC/UTC", "Z", "GMT")

    def short(self, value: datetime | None, zone: tzinfo | None = None) -> str:
        """``07 Dec 22:00`` in the campaign's zone (or ``zone``), with the year when it is not this year's."""
        if value is None:
            return ""
        shown = _aware(value).astimezone(zone or self.tz)
        this_year = datetime.now(shown.tzinfo).year
        return shown.strftime("%d %b %H:%M" if shown.year == this_year else "%d %b %Y %H:%M")

    def short_utc(self, value: datetime | None) -> str:
        """``07 Dec 21:00 UTC``."""
        return f"{self.short(value, UTC)} UTC" if value is not None else ""

    def full(self, value: datetime | None) -> str:
        """The whole timestamp in the campaign's zone and in UTC, for a title."""
        if value is None:
            return ""
        utc = _aware(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if self.is_utc:
            return utc
        local = _aware(value).astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        return f"{local} ({self.zone}) = {utc}"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def action_messages(action: Action, run_id: str, new_run_id: str | None, username: str) -> list[tuple[str, str]]:
    """``(category, message)`` pairs after an action: what happens next, and why no email goes out if none does."""
    notice = no_email_notice(email_of(username))
    done = what_next(action, run_id, new_run_id, emailed=notice is None)
    return [("success", done)] + ([("warning", notice)] if notice else [])


def campaigns_page(args: Mapping[str, str], access: Access) -> PageView:
    """Every campaign the user may read: sortable, searchable, paginated."""
    search = forms.search(args)
    sort = forms.choice(args, "sort", forms.SORTS, "dag_id")
    descending = forms.flag(args, "desc")
    number = forms.page_number(args)
    readable = access.authorized_dag_ids("GET")
    found, total = core.list_campaigns(
        search=search or None,
        dag_ids=sorted(readable),
        sort=sort,
        descending=descending,
        limit=CAMPAIGNS_PAGE_SIZE,
        offset=(number - 1) * CAMPAIGNS_PAGE_SIZE,
    )
    context = {"campaigns": found, "total": total, "page": number, "search": search, "sort": sort}
    context["overview"] = overview(dag_ids=readable)
    pages = max(1, -(-total // CAMPAIGNS_PAGE_SIZE))
    return PageView("campaigns.html", {**context, "pages": pages, "descending": descending, "sorts": forms.SORTS})


def not_campaign_page(dag_id: str, error: NotACampaignError, run_id: str | None = None) -> PageView:
    """The Campaign (run) tab of a DAG that is not a campaign: how to make it one, not an error."""
    context = {"title": f"{dag_id} is not a campaign", "dag_id": dag_id, "run_id": run_id, "reason": str(error)}
    return PageView("not_campaign.html", {**context, "campaign_tag": get_settings().campaign_tag})


def display_page(dag_id: str, args: Mapping[str, str], access: Access, keep: str = "") -> PageView:
    """A campaign's About and run schedule; ``keep``, a run just skipped from here, stays shown once more."""
    show_skipped = forms.flag(args, "show_skipped")
    number = forms.page_number(args)
    acting = _acting(dag_id, access)
    try:
        shown = core.campaign_display(dag_id, page=number, include_skipped=show_skipped or bool(keep))
    except NotACampaignError as error:
        return not_campaign_page(dag_id, error)
    runs = shown.schedule.runs
    if keep and not show_skipped:
        runs = [r for r in runs if r.status != RunStatus.SKIPPED or r.run_id == keep]
    context = {
        "title": f"Campaign {dag_id}",
        "campaign": shown.campaign,
        "summary": shown.campaign.summary,
        "doc_html": render_markdown(shown.campaign.doc_md),
        "schedule": shown.schedule,
        "runs": runs,
        "show_skipped": show_skipped,
        "clock": Clock(shown.campaign.timezone or "UTC"),
        # Airflow summarises a DAG without a schedule as "None": such a campaign runs when asked and misses no slot.
        "scheduled": shown.campaign.summary.schedule not in (None, "", "None"),
    }
    return PageView("display.html", {**context, **acting})


def form_target(run_id: str) -> str | None:
    """The run whose Stop / Restart / Skip address (``RUN_ID/skip``) was opened with GET, else None.

    A form's answer stays at its address: reloading it (Airflow reloads its Campaigns frame at the address the
    frame shows) asks for a run ``RUN_ID/skip``, which is the run's page, not a run that does not exist.
    """
    head, _, tail = run_id.rpartition("/")
    return head if head and tail in (Action.STOP, Action.RESTART, Action.SKIP) else None


def run_page(
    dag_id: str, run_id: str, access: Access, *, status: int = 200, form: dict[str, Any] | None = None
) -> PageView:
    """A run's status, progress per channel, tasks, emails, history and action forms."""
    acting, with_failures = _acting(dag_id, access), access.may_read_logs(dag_id)
    try:
        details = core.run_details(dag_id, run_id, with_failures=with_failures)
    except NotACampaignError as error:
        return not_campaign_page(dag_id, error, run_id)
    context = {
        "title": f"Run {run_id}",
        "summary": details.campaign,
        "run": details.run,
        "history": details.history,
        "channels": details.channels,
        "overall_percent": details.overall_percent,
        "tasks": details.tasks,
        "failures": details.failures,
        "dag_version": details.dag_version,
        "audience": details.audience,
        "dry_run_text": details.dry_run_text,
        "active": details.run.is_active,
        "form": form or {},
        "details": details,
    }
    return PageView("run.html", {**context, **acting}, status)


def _acting(dag_id: str, access: Access) -> dict[str, Any]:
    """Which action forms a page offers (a restart also creates a run), and a fresh idempotency key.

    Asked before any core call: the hosts' auth objects may not survive the core's session.
    """
    return {
        "may_act": rights.may_take(access, "stop", dag_id),
        "may_restart": rights.may_take(access, "restart", dag_id),
        "idempotency_key": uuid.uuid4().hex,
    }
