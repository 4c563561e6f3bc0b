"""The Monitor page of a campaign, served by the FAB provider under ``/pluginsv2/campaigns/monitor/<dag_id>``.

What it shows is ``pages.monitor``'s; this view checks the login and permission and translates Flask's request
and response.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import flash, make_response, redirect, request, send_from_directory
from flask_appbuilder import BaseView, expose

from campaign_runs.adapters import auth
from campaign_runs.domain import CampaignRunsError
from campaign_runs.http_errors import PLAIN_TEXT, nosniff
from campaign_runs.pages import monitor
from campaign_runs.pages.fab import http
from campaign_runs.pages.format import fmt_duration, fmt_time
from campaign_runs.urls import FAB, ui_path

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

ROUTE_BASE = "/campaigns/monitor"


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
            return redirect(ui_path(request.full_path.rstrip("?")))  # the same Monitor there
        auth.login_from_api_token(self.appbuilder.sm)
        user = auth.current_user()
        if user is None or getattr(user, "is_anonymous", True):
            return redirect(auth.login_url(request.url))
        if not auth.may_access_runs(user, "GET", dag_id):
            return "You may not read this campaign's runs.", 403, {"Content-Type": PLAIN_TEXT}
        return None

    def _error(self, error: CampaignRunsError) -> ResponseReturnValue:
        flash(str(error), "danger")
        page = self.render_template("campaign_runs/error.html", title="Monitor", links=FAB)
        return make_response(page, monitor.refusal_status(error))

    @expose("/<dag_id>")  # type: ignore[untyped-decorator]
    def monitor(self, dag_id: str) -> ResponseReturnValue:
        """The Monitor page: limit 10, 30 or 100 runs, or ``from`` / ``to`` dates (run_after, UTC)."""
        if (refused := self._allowed(dag_id)) is not None:
            return refused
        username = auth.user_name(auth.current_user())  # read before a core call detaches the user object
        try:
            http.check_request(request)
            view = monitor.monitor_page(dag_id, request.args, FAB)
        except CampaignRunsError as error:
            return self._error(error)
        page = self.render_template(
            f"campaign_runs/{view.template}",
            links=FAB,
            fmt_time=fmt_time,
            fmt_duration=fmt_duration,
            username=username,
            **view.context,
        )
        return make_response(page, view.status)

    @expose("/<dag_id>/table.csv")  # type: ignore[untyped-decorator]
    def table_csv(self, dag_id: str) -> ResponseReturnValue:
        """The Monitor table as CSV (same parameters as the page)."""
        if (refused := self._allowed(dag_id)) is not None:
            return refused
        try:
            http.check_request(request)
            body, headers = monitor.monitor_csv(dag_id, request.args)
        except CampaignRunsError as error:  # the page's error page: the refused value is in it, escaped
            return self._error(error)
        return make_response(body, 200, headers)

    @expose("/static/<path:name>")  # type: ignore[untyped-decorator]
    def static_file(self, name: str) -> ResponseReturnValue:
        """Chart.js and its licence, from the package (no CDN)."""
        return send_from_directory(monitor.STATIC_DIR, name, max_age=86400)
