"""The Monitor page of a campaign, for both hosts: its query, its numbers, its table, charts and CSV.

A table (one row per run and channel) and three charts drawn in the page by Chart.js, shipped in the package's
``static`` folder and served by each host: nothing is fetched from a CDN. The chart data is embedded as JSON.
The hosts (``pages.fab.monitor``, ``pages.asgi.monitor``) check the login and permission and translate the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from markupsafe import Markup, escape

from campaign_runs.core.date_range import DateRangeError, parse_end
from campaign_runs.domain import DRY_RUN_LABEL, CampaignRunsError, skipped_text
from campaign_runs.http_errors import http_status
from campaign_runs.pages import forms
from campaign_runs.pages.builders import PageView
from campaign_runs.pages.format import fmt_duration

if TYPE_CHECKING:
    from datetime import date, datetime

    from campaign_runs.core.monitor import CampaignMetrics
    from campaign_runs.urls import PageLinks

STATIC_DIR = Path(__file__).parents[1] / "static"
CHART_JS = "chart.umd.min.js"
LIMITS = (10, 30, 100)
ACTIONS = ("stop", "restart", "skip", "reassign")
_NUMBERS = ("sent", "failed", "in_doubt", "suppressed", "total")


@dataclass(frozen=True)
class Query:
    """The Monitor's query parameters, checked: how many runs, or which days (``from`` / ``to``, run_after, UTC)."""

    limit: int
    since: date | datetime | None
    until: date | datetime | None
    params: dict[str, Any]  # as the form shows them again: limit, and from / to as sent


def read_query(args: Mapping[str, str]) -> Query:
    """The query of ``args``: ``limit`` first (BadInputError), then the range's ends (DateRangeError)."""
    limit = int(forms.choice(args, "limit", [str(n) for n in LIMITS], str(LIMITS[0])))
    shown = {"limit": limit, "from": args.get("from", ""), "to": args.get("to", "")}
    return Query(limit, parse_end("from", args.get("from")), parse_end("to", args.get("to")), shown)


def metrics(dag_id: str, args: Mapping[str, str]) -> tuple[CampaignMetrics, dict[str, Any]]:
    """The campaign's numbers for the query of ``args``, and the parameters as the page shows them."""
    from campaign_runs.core.monitor import campaign_metrics

    query = read_query(args)
    found = campaign_metrics(dag_id, limit=query.limit, since=query.since, until=query.until)
    return found, {**query.params, "limit": found.limit}


def refusal_status(error: CampaignRunsError) -> int:
    """The status a refused Monitor request answers with: 400 for a bad range or parameter, else the error's."""
    return 400 if isinstance(error, DateRangeError) else http_status(error)


def run_links(found: CampaignMetrics, links: PageLinks) -> dict[str, str]:
    """Each listed run's details page on the host of ``links``."""
    return {run.run_id: links.run_path(found.dag_id, run.run_id) for run in found.runs}


def run_date(run: Any) -> str:
    """The date a run is drawn at on the charts' x axis: the slot it serves (else its start), in UTC."""
    moment: datetime | None = run.run_after or run.start_date
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else str(run.run_id)


def chart_data(found: CampaignMetrics, links: dict[str, str]) -> dict[str, Any]:
    """What the charts draw, oldest run first: messages per channel and failures, durations, interventions."""
    runs = list(reversed(found.runs))
    channels = sorted({c.channel for run in runs for c in run.channels})
    per_day: dict[str, dict[str, int]] = {}
    for item in found.interventions:
        day = per_day.setdefault(item.created_at.date().isoformat(), dict.fromkeys(ACTIONS, 0))
        day[item.action] = day.get(item.action, 0) + 1
    return {
        "runs": [run.run_id for run in runs],
        "dates": [run_date(run) for run in runs],
        "links": [links[run.run_id] for run in runs],
        "sent": {ch: [next((c.sent for c in run.channels if c.channel == ch), 0) for run in runs] for ch in channels},
        "failed": [run.failed for run in runs],
        "duration_seconds": [run.duration_seconds for run in runs],
        "interventions": {
            "days": sorted(per_day),
            **{action: [per_day[day][action] for day in sorted(per_day)] for action in ACTIONS},
        },
    }


# One table row per run and channel. Filled by ``table_html`` rather than by a Jinja loop: a hundred runs make
# hundreds of rows, and escaping each text once here costs a third of what the template spends on them.
_ROW = (
    '<tr class="cr-row" data-run-id="{run_id}" data-channel="{channel}" data-href="{href}">'
    '<td><a href="{href}">{run_id}</a></td>'
    '<td><span class="cr-badge {status}" data-status="{status}">{status}</span></td>'
    '<td data-col="duration_seconds" data-value="{duration_value}">{duration_text}</td>'
    '<td data-col="channel">{channel}</td><td data-col="delivery" data-dry-run="{dry_flag}">{delivery}</td>'
    '<td data-col="sent">{sent}</td><td data-col="failed">{failed}</td>'
    '<td data-col="in_doubt">{in_doubt}</td><td data-col="suppressed">{suppressed}</td>'
    '<td data-col="skipped">{skipped}</td><td data-col="total">{total}</td>'
    '<td data-col="delivery_rate">{rate_text}</td>'
    '<td data-col="stops">{stops}</td><td data-col="restarts">{restarts}</td><td data-col="skips">{skips}</td></tr>'
)


def _delivery(label: str) -> Markup:
    """A row's transport, a dry run as its badge (the run page's)."""
    if DRY_RUN_LABEL not in label:
        return escape(label)
    return Markup('<span class="cr-badge dry-run" data-delivery="dry-run">{}</span>').format(label)


def table_html(rows: list[dict[str, Any]], links: dict[str, str]) -> Markup:
    """The table's rows (``table_rows``) as HTML: every text escaped, with the run's link, duration and rate."""
    per_run: dict[str, tuple[str, str, str]] = {}  # run_id -> (escaped id, escaped link, duration)
    lines = []
    for row in rows:
        run_id, seconds, rate = row["run_id"], row["duration_seconds"], row["delivery_rate"]
        if run_id not in per_run:
            duration = "" if seconds is None else fmt_duration(seconds)
            per_run[run_id] = (escape(run_id), escape(links[run_id]), duration)
        escaped_id, href, duration_text = per_run[run_id]
        lines.append(
            _ROW.format(
                run_id=escaped_id,
                href=href,
                channel=escape(row["channel"]),
                delivery=_delivery(row["delivery"]),
                dry_flag="1" if DRY_RUN_LABEL in row["delivery"] else "",
                status=escape(row["status"]),
                duration_value="" if seconds is None else float(seconds),
                duration_text=duration_text,
                rate_text="" if rate is None else f"{rate * 100:.1f}%",
                skipped=escape(skipped_text(row["skipped"])),
                **{key: int(row[key]) for key in (*_NUMBERS, "stops", "restarts", "skips")},
            )
        )
    return Markup("\n".join(lines))  # every text above is escaped; the rest are numbers


def _view(
    dag_id: str, found: CampaignMetrics | None, params: dict[str, Any], links: PageLinks, **context: Any
) -> PageView:
    """The Monitor page: its form, and the numbers when there are some (``found``)."""
    status = 200 if found is not None else 400
    shown = {"title": f"Monitor {dag_id}", "dag_id": dag_id, "metrics": found, "params": params}
    return PageView("monitor.html", {**shown, "limits": LIMITS, "path": links.monitor_path, **context}, status)


def monitor_page(dag_id: str, args: Mapping[str, str], links: PageLinks) -> PageView:
    """The Monitor page on the host of ``links``; a refused range keeps the form with the reason beside its field.

    Any other refusal (a bad ``limit``, an unknown campaign) is raised as the domain error for the host to answer.
    """
    from campaign_runs.core.monitor import table_rows

    try:
        found, params = metrics(dag_id, args)
    except DateRangeError as error:
        limit = int(args.get("limit") or LIMITS[0])  # checked before the range (``read_query``)
        kept = {"limit": limit, "from": args.get("from", ""), "to": args.get("to", "")}
        return _view(dag_id, None, kept, links, range_error={"field": error.field, "message": str(error)})
    rows = run_links(found, links)
    return _view(
        dag_id,
        found,
        params,
        links,
        table_html=table_html(table_rows(found), rows),
        chart=chart_data(found, rows),
        csv_path=links.monitor_csv_path(dag_id, **params),
        chart_js=links.monitor_static_path(CHART_JS),
    )


def monitor_csv(dag_id: str, args: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The Monitor table as CSV (same parameters as the page) and the headers it is sent with."""
    from campaign_runs.core.monitor import table_csv

    found, _ = metrics(dag_id, args)
    headers = {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{quote(dag_id, safe="")}-monitor.csv"',
    }
    return table_csv(found), headers


def static_file(name: str) -> Path | None:
    """A file of the package's ``static`` folder (Chart.js and its licence); None for anything outside it."""
    root = STATIC_DIR.resolve()
    found = (root / name).resolve()
    return found if found.is_file() and found.is_relative_to(root) else None
