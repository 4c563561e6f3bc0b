"""The Monitor page of a campaign, served by the FAB provider under ``/pluginsv2/campaigns/monitor/<dag_id>``.

A table (one row per run and channel) and three charts drawn in the page by Chart.js, shipped in the package's
``static`` folder and served here: nothing is fetched from a CDN. The chart data is embedded as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from flask import flash, make_response, redirect, request, send_from_directory
from flask_appbuilder import BaseView, expose
from markupsafe import Markup, escape

from campaign_runs.adapters import auth
from campaign_runs.core.date_range import DateRangeError, parse_end
from campaign_runs.domain import DRY_RUN_LABEL, CampaignRunsError, skipped_text
from campaign_runs.http_errors import PLAIN_TEXT, http_status, nosniff
from campaign_runs.pages import forms
from campaign_runs.pages.fab import http
from campaign_runs.pages.format import fmt_duration, fmt_time
from campaign_runs.urls import FAB, ui_path

if TYPE_CHECKING:
    from datetime import datetime

    from flask.typing import ResponseReturnValue

ROUTE_BASE = "/campaigns/monitor"
PATH = f"{FAB.BASE}/monitor"
STATIC_DIR = Path(__file__).parents[2] / "static"
CHART_JS = "chart.umd.min.js"
LIMITS = (10, 30, 100)
ACTIONS = ("stop", "restart", "skip", "reassign")
_NUMBERS = ("sent", "failed", "in_doubt", "suppressed", "total")


def monitor_path(dag_id: str, **params: object) -> str:
    """Path of a campaign's Monitor page (``limit``, ``from``, ``to``)."""
    kept = {key: value for key, value in params.items() if value not in (None, "")}
    path = f"{PATH}/{quote(dag_id, safe='')}"
    return f"{path}?{urlencode(kept)}" if kept else path


def run_links(metrics: Any) -> dict[str, str]:
    """Each listed run's details page."""
    return {run.run_id: FAB.run_path(metrics.dag_id, run.run_id) for run in metrics.runs}


def run_date(run: Any) -> str:
    """The date a run is drawn at on the charts' x axis: the slot it serves (else its start), in UTC."""
    moment: datetime | None = run.run_after or run.start_date
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else str(run.run_id)


def chart_data(metrics: Any, links: dict[str, str] | None = None) -> dict[str, Any]:
    """What the charts draw, oldest run first: messages per channel and failures, durations, interventions."""
    links = run_links(metrics) if links is None else links
    runs = list(reversed(metrics.runs))
    channels = sorted({c.channel for run in runs for c in run.channels})
    per_day: dict[str, dict[str, int]] = {}
    for item in metrics.interventions:
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


class CampaignMonitorView(BaseView):  # type: ignore[misc]  # FAB ships no type hints
    """A campaign's numbers across its last runs: table, charts, CSV export."""

    route_base = ROUTE_BASE
    default_view = "monitor"
    template_folder = str(Path(__file__).parents[2] / "templates")

    def create_blueprint(self, appbuilder: Any, *args: Any, **kwargs: Any) -> Any:
        """FAB's blueprint of the Monitor; every answer carries ``nosniff``."""
        blueprint = super().create_blueprint(appbuilder, *args, **kwargs)
        blueprint.after_request(nosniff)
        return blueprint

    def _allowed(self, dag_id: str) -> ResponseReturnValue | None:
        """A redirect or refusal when the user may not read the campaign's runs; None when they may."""
        if not auth.uses_fab():  # another auth manager: the plugin's own pages serve its users
            return redirect(ui_path(FAB.BASE))
        auth.login_from_api_token(self.appbuilder.sm)
        user = auth.current_user()
        if user is None or getattr(user, "is_anonymous", True):
            return redirect(auth.login_url(request.url))
        if not auth.may_access_runs(user, "GET", dag_id):
            return "You may not read this campaign's runs.", 403, {"Content-Type": PLAIN_TEXT}
        return None

    def _metrics(self, dag_id: str) -> tuple[Any, dict[str, Any]]:
        from campaign_runs.core.monitor import campaign_metrics

        limit = int(forms.choice(request.args, "limit", [str(n) for n in LIMITS], str(LIMITS[0])))
        since, until = parse_end("from", request.args.get("from")), parse_end("to", request.args.get("to"))
        found = campaign_metrics(dag_id, limit=limit, since=since, until=until)
        return found, {"limit": found.limit, "from": request.args.get("from", ""), "to": request.args.get("to", "")}

    def _error(self, error: CampaignRunsError) -> ResponseReturnValue:
        flash(str(error), "danger")
        page = self.render_template("campaign_runs/error.html", title="Monitor", links=FAB)
        return make_response(page, 400 if isinstance(error, DateRangeError) else http_status(error))

    def _render(self, dag_id: str, found: Any, params: dict[str, Any], **context: Any) -> str:
        """The Monitor page: its form, and the numbers when there are some (``found``)."""
        return str(
            self.render_template(
                "campaign_runs/monitor.html",
                title=f"Monitor {dag_id}",
                links=FAB,
                fmt_time=fmt_time,
                fmt_duration=fmt_duration,
                dag_id=dag_id,
                metrics=found,
                params=params,
                limits=LIMITS,
                path=monitor_path,
                **context,
            )
        )

    def _refused_range(self, dag_id: str, error: DateRangeError, username: str) -> ResponseReturnValue:
        """The form again, its values kept and the reason beside the refused field; nothing else (400)."""
        limit = int(request.args.get("limit") or LIMITS[0])  # checked before the range (``_metrics``)
        params = {"limit": limit, "from": request.args.get("from", ""), "to": request.args.get("to", "")}
        refused = {"field": error.field, "message": str(error)}
        page = self._render(dag_id, None, params, range_error=refused, username=username)
        return make_response(page, 400)

    @expose("/<dag_id>")  # type: ignore[untyped-decorator]
    def monitor(self, dag_id: str) -> ResponseReturnValue:
        """The Monitor page: limit 10, 30 or 100 runs, or ``from`` / ``to`` dates (run_after, UTC)."""
        from campaign_runs.core.monitor import table_rows

        if (refused := self._allowed(dag_id)) is not None:
            return refused
        username = auth.user_name(auth.current_user())  # read before a core call detaches the user object
        try:
            http.check_request(request)
            found, params = self._metrics(dag_id)
        except DateRangeError as error:
            return self._refused_range(dag_id, error, username)
        except CampaignRunsError as error:
            return self._error(error)
        links = run_links(found)
        page = self._render(
            dag_id,
            found,
            params,
            table_html=table_html(table_rows(found), links),
            chart=chart_data(found, links),
            csv_path=f"{monitor_path(dag_id)}/table.csv?{urlencode(params)}",
            chart_js=f"{PATH}/static/{CHART_JS}",
            username=username,
        )
        return make_response(page, 200)

    @expose("/<dag_id>/table.csv")  # type: ignore[untyped-decorator]
    def table_csv(self, dag_id: str) -> ResponseReturnValue:
        """The Monitor table as CSV (same parameters as the page)."""
        from campaign_runs.core.monitor import table_csv

        if (refused := self._allowed(dag_id)) is not None:
            return refused
        try:
            http.check_request(request)
            found, _ = self._metrics(dag_id)
        except CampaignRunsError as error:  # the page's error page: the refused value is in it, escaped
            return self._error(error)
        response = make_response(table_csv(found), 200)
        response.headers["Content-Type"] = "text/csv; charset=utf-8"
        response.headers["Content-Disposition"] = f'attachment; filename="{quote(dag_id, safe="")}-monitor.csv"'
        return response

    @expose("/static/<path:name>")  # type: ignore[untyped-decorator]
    def static_file(self, name: str) -> ResponseReturnValue:
        """Chart.js and its licence, from the package (no CDN)."""
        return send_from_directory(STATIC_DIR, name, max_age=86400)
