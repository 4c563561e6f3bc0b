"""New campaign, Configure and the campaign actions, served by the FAB provider under ``/pluginsv2/campaigns``.

What they show and do is ``pages.definitions``', ``pages.trials``' and ``pages.actions``' (the plugin's own host
serves the same, ``pages.asgi.definitions``); this view checks the login, translates Flask's request and response,
and maps a refusal (a ``CampaignRunsError``) to the error page in one place. Every POST carries FAB's CSRF token.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import flash, jsonify, make_response, redirect, request, send_from_directory
from flask_appbuilder import BaseView, expose
from flask_wtf.csrf import CSRFError

from campaign_runs.adapters import auth
from campaign_runs.domain import CampaignRunsError
from campaign_runs.http_errors import PLAIN_TEXT, http_status, nosniff
from campaign_runs.pages import actions, definitions, forms, trials
from campaign_runs.pages.actions import AIRFLOW_SWITCH
from campaign_runs.pages.builders import Redirect
from campaign_runs.pages.fab import http
from campaign_runs.pages.fab.access import FAB_ACCESS, ensure_permissions
from campaign_runs.pages.format import fmt_duration, fmt_time
from campaign_runs.settings import get_settings
from campaign_runs.urls import FAB, FORM_SCRIPT

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from campaign_runs.pages.builders import PageView

__all__ = ["AIRFLOW_SWITCH", "CampaignDefinitionsView"]


def check_request() -> None:
    """Refuse a bad path, query or field; multi-line fields (templates, criteria, note) may hold lines."""
    forms.check_query_string(request.query_string)
    for name, value in (request.view_args or {}).items():
        forms.check_text(f"The path segment {name!r}", str(value), limit=forms.LIMITS.get(name))
    for name, value in request.args.items(multi=True):
        forms.check_text(f"The query parameter {name[:40]!r}", value)
    if request.method == "POST":
        definitions.check_fields(request.form.items(multi=True))


def _posted() -> dict[str, str] | None:
    """The posted form (None for a GET)."""
    return request.form.to_dict() if request.method == "POST" else None


class CampaignDefinitionsView(BaseView):  # type: ignore[misc]  # FAB ships no type hints
    """New campaign, Configure (with optimistic edits) and Run now / Pause / Resume / Stop all."""

    route_base = "/campaigns"
    default_view = "new"
    template_folder = str(Path(__file__).parents[2] / "templates")

    def create_blueprint(self, appbuilder: Any, *args: Any, **kwargs: Any) -> Any:
        """FAB's blueprint of these pages, guarded; creates the definitions permission."""
        blueprint = super().create_blueprint(appbuilder, *args, **kwargs)
        blueprint.before_request(check_request)
        blueprint.after_request(nosniff)
        blueprint.register_error_handler(CampaignRunsError, self._refused)
        blueprint.register_error_handler(CSRFError, self._refused)
        ensure_permissions()
        return blueprint

    def _refused(self, error: Exception) -> ResponseReturnValue:
        """The one answer to a refusal: a bad field or token (400), a refused user (403), an unknown id (404)..."""
        message = getattr(error, "description", None) or str(error)  # a CSRFError's reason is its description
        status = http_status(error) if isinstance(error, CampaignRunsError) else 400
        if request.path.endswith(".json"):
            return make_response(jsonify(detail=message), status)
        flash(message, "danger")
        return self._page("error.html", status=status, title="Campaigns")

    def _page(self, template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
        page = self.render_template(
            f"campaign_runs/{template}",
            links=FAB,
            fmt_time=fmt_time,
            fmt_duration=fmt_duration,
            username=FAB_ACCESS.username,
            note_max_length=get_settings().note_max_length,
            note_required=get_settings().note_required,
            **context,
        )
        return make_response(page, status)

    def _answer(self, result: PageView | Redirect) -> ResponseReturnValue:
        """The page code's answer as Flask's: messages flashed, then the page or the redirect."""
        for category, message in result.flashes:
            flash(message, category)
        if isinstance(result, Redirect):
            return redirect(result.location, code=303)
        return self._page(result.template, result.status, **result.context)

    def _gate(self, *, json: bool = False) -> ResponseReturnValue | None:
        """None when a user is logged in (read before any core call); otherwise the answer."""
        auth.login_from_api_token(self.appbuilder.sm)
        if FAB_ACCESS.username:
            return None
        if json or request.method != "GET":
            return make_response(jsonify(detail="Not logged in."), 401)
        return redirect(auth.login_url(request.url))

    # ------------------------------------------------------------ New

    @expose("/new", methods=["GET", "POST"])  # type: ignore[untyped-decorator]
    def new(self) -> ResponseReturnValue:
        """The New campaign form; saving validates everything and writes nothing on any error."""
        if (refused := self._gate()) is not None:
            return refused
        return self._answer(definitions.new_page(FAB_ACCESS, FAB, _posted()))

    @expose("/new/audience", methods=["POST"])  # type: ignore[untyped-decorator]
    def new_audience(self) -> ResponseReturnValue:
        """The New form again, with its audience read now as a run would read it; nothing is saved or sent."""
        if (refused := self._gate()) is not None:
            return refused
        return self._answer(definitions.new_audience(FAB_ACCESS, FAB, request.form.to_dict()))

    @expose("/new/preview.json")  # type: ignore[untyped-decorator]
    def preview(self) -> ResponseReturnValue:
        """The schedule in plain words and its next 10 fire times, in the campaign's timezone and in UTC."""
        if (refused := self._gate(json=True)) is not None:
            return refused
        found, status = definitions.schedule_preview(request.args)
        return http.poll(found, status)

    @expose("/new/static/<string:name>")  # type: ignore[untyped-decorator]
    def static_file(self, name: str) -> ResponseReturnValue:
        """The form's script, from the package (no CDN)."""
        if name != FORM_SCRIPT:
            return "Not found.", 404, {"Content-Type": PLAIN_TEXT}
        return send_from_directory(definitions.STATIC_DIR, name, max_age=3600)

    # ------------------------------------------------------------ Configure

    @expose("/display/<string:dag_id>/configure", methods=["GET", "POST"])  # type: ignore[untyped-decorator]
    def configure(self, dag_id: str) -> ResponseReturnValue:
        """The same form, prefilled from the campaign's YAML; read-only (with the reason) when it cannot be saved."""
        if (refused := self._gate()) is not None:
            return refused
        return self._answer(definitions.configure_page(FAB_ACCESS, FAB, dag_id, _posted()))

    @expose("/display/<string:dag_id>/configure/audience", methods=["POST"])  # type: ignore[untyped-decorator]
    def configure_audience(self, dag_id: str) -> ResponseReturnValue:
        """The Configure form again, with its audience read now as a run would read it; nothing is saved or sent."""
        if (refused := self._gate()) is not None:
            return refused
        return self._answer(definitions.configure_audience(FAB_ACCESS, FAB, dag_id, request.form.to_dict()))

    @expose("/display/<string:dag_id>/configure/check", methods=["POST"])  # type: ignore[untyped-decorator]
    def configure_check(self, dag_id: str) -> ResponseReturnValue:
        """Check connections of the form's definition (saved or not); nothing is saved or sent."""
        if (refused := self._gate()) is not None:
            return refused
        return self._answer(trials.trial_page(FAB_ACCESS, FAB, dag_id, request.form.to_dict(), "check"))

    @expose("/display/<string:dag_id>/configure/test-send", methods=["POST"])  # type: ignore[untyped-decorator]
    def configure_test_send(self, dag_id: str) -> ResponseReturnValue:
        """Send test messages of the form's definition (saved or not) to the addresses given; nothing is saved."""
        if (refused := self._gate()) is not None:
            return refused
        return self._answer(trials.trial_page(FAB_ACCESS, FAB, dag_id, request.form.to_dict(), "send"))

    # ------------------------------------------------------------ campaign actions

    @expose("/display/<string:dag_id>/actions/<string:action>", methods=["POST"])  # type: ignore[untyped-decorator]
    def campaign_action(self, dag_id: str, action: str) -> ResponseReturnValue:
        """Run now (with params overrides), Pause, Resume (missed: all, latest, none) or Stop all, with a note."""
        if (refused := self._gate()) is not None:
            return refused
        return self._answer(actions.campaign_action(FAB_ACCESS, FAB, dag_id, action, request.form.to_dict()))
