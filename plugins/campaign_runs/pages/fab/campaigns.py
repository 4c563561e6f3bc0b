"""Flask-AppBuilder views of Campaign Runs, served by the FAB provider under ``/pluginsv2/campaigns``.

Thin edges: parse the request, check Airflow's permissions through the auth manager, call one
service function, and turn a domain error into a flash message plus an HTTP status.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import flash, jsonify, make_response, redirect, request, session
from flask_appbuilder import BaseView, expose
from flask_wtf.csrf import CSRFError

from campaign_runs import core
from campaign_runs.adapters import auth
from campaign_runs.domain import (
    CampaignPausedError,
    CampaignRunsError,
    InvalidNoteError,
    NotFoundError,
)
from campaign_runs.http_errors import PLAIN_TEXT, http_status, nosniff
from campaign_runs.pages import builders, definition_form, forms, rights
from campaign_runs.pages.fab import http
from campaign_runs.pages.fab import users as fab_users
from campaign_runs.pages.fab.access import FAB_ACCESS, logged_in
from campaign_runs.pages.format import changes, fmt_duration, fmt_time, run_json
from campaign_runs.settings import get_settings
from campaign_runs.urls import FAB, ui_path

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

log = logging.getLogger(__name__)

# One-time value in the Flask session: the run just skipped or restarted from the display, shown once more.
KEEP_KEY = "campaign_runs_keep"


def _username() -> str:
    return FAB_ACCESS.username


def _may(dag_id: str | None, method: str) -> bool:
    return FAB_ACCESS.may(dag_id, method)


def _authorized_dag_ids(method: str) -> set[str]:
    return FAB_ACCESS.authorized_dag_ids(method)


def _not_logged_in() -> ResponseReturnValue:
    return "Not logged in.", 401, {"Content-Type": PLAIN_TEXT}


# The views that need FAB's login for every request (New, Configure, campaign actions, Monitor, suppressions).
_ELSEWHERE_VIEWS = frozenset({"CampaignDefinitionsView", "CampaignMonitorView", "CampaignSuppressionsView"})


def _elsewhere() -> ResponseReturnValue | None:
    """Under another auth manager, send those views' URLs to the same pages of the plugin's own host."""
    if request.blueprint not in _ELSEWHERE_VIEWS or auth.uses_fab():
        return None
    return redirect(ui_path(request.full_path.rstrip("?")), code=303 if request.method == "POST" else 302)


class CampaignsView(BaseView):
    """Campaigns, campaign display, run details, Stop / Restart / Skip and the work list."""

    route_base = "/campaigns"
    default_view = "campaigns"
    template_folder = str(Path(__file__).parents[2] / "templates")

    # ------------------------------------------------------------ helpers

    def create_blueprint(self, appbuilder: Any, *args: Any, **kwargs: Any) -> Any:
        """FAB's blueprint of these pages, guarded: bad input is refused on the plugin's own URLs only."""
        blueprint = super().create_blueprint(appbuilder, *args, **kwargs)
        blueprint.before_request(lambda: http.check_request(request))
        # First of the app's hooks: before Flask-WTF's CSRF check, which a form of another auth manager's page fails.
        blueprint.record_once(lambda state: state.app.before_request_funcs.setdefault(None, []).insert(0, _elsewhere))
        blueprint.after_request(nosniff)
        blueprint.register_error_handler(CampaignRunsError, self._refused)
        blueprint.register_error_handler(CSRFError, self._refused)
        return blueprint

    def _refused(self, error: Exception) -> ResponseReturnValue:
        """The one answer to a refusal (bad input or token 400, unknown id 404...), as JSON for a poll."""
        message = getattr(error, "description", None) or str(error)  # a CSRFError's reason is its description
        status = http_status(error) if isinstance(error, CampaignRunsError) else 400
        if request.path.endswith("/status.json"):
            return make_response(jsonify(detail=message), status)
        return self._refuse(message, status)

    def _html(self, template: str, **context: Any) -> str:
        context.setdefault("title", "Campaigns")
        return str(
            self.render_template(
                f"campaign_runs/{template}",
                links=FAB,
                fmt_time=fmt_time,
                fmt_duration=fmt_duration,
                changes=changes,
                username=_username(),
                note_max_length=get_settings().note_max_length,
                note_required=get_settings().note_required,
                **context,
            )
        )

    def _page(self, template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
        return make_response(self._html(template, **context), status)

    def _show(self, view: builders.PageView) -> ResponseReturnValue:
        for category, message in view.flashes:
            flash(message, category)
        return self._page(view.template, status=view.status, **view.context)

    def _refuse(self, message: str, status: int) -> ResponseReturnValue:
        flash(message, "danger")
        return self._page("error.html", status=status, title="Campaigns")

    def _gate(self, dag_id: str | None = None, *, json: bool = False) -> ResponseReturnValue | None:
        """None when the user may read ``dag_id`` (or use the plugin); otherwise the response to send."""
        if not auth.uses_fab():  # another auth manager: the plugin's own pages serve its users
            return redirect(ui_path(request.path), code=303 if request.method == "POST" else 302)
        auth.login_from_api_token(self.appbuilder.sm)
        _username()  # read before any core call detaches the user object
        if not logged_in():
            if json or request.method != "GET":
                return make_response(jsonify(detail="Not logged in."), 401) if json else _not_logged_in()
            return redirect(auth.login_url(request.url))
        if dag_id is not None and not _may(dag_id, "GET"):
            message = f"You may not see campaign {dag_id}."
            if json:
                return make_response(jsonify(detail=message), 403)
            return self._refuse(message, 403)
        return None

    # ------------------------------------------------------------ campaigns

    @expose("/")
    @expose("/list")
    def campaigns(self) -> ResponseReturnValue:
        """Every campaign the user may read: sortable, searchable, paginated."""
        if (refused := self._gate()) is not None:
            return refused
        may_create = FAB_ACCESS.may_manage(rights.CREATE)  # asked before any core call
        admin = FAB_ACCESS.is_admin()
        view = builders.campaigns_page(request.args, FAB_ACCESS)
        view.context.update(definition_form.campaigns_context(_authorized_dag_ids("GET"), may_create, FAB))
        view.context["may_manage_suppressions"] = admin
        return self._show(view)

    # ------------------------------------------------------------ campaign display

    @expose("/display/<string:dag_id>")
    def display(self, dag_id: str) -> ResponseReturnValue:
        """A campaign's About section and its run schedule."""
        if (refused := self._gate(dag_id)) is not None:
            return refused
        kept = session.pop(KEEP_KEY, None)
        keep = kept.get("run_id", "") if isinstance(kept, dict) and kept.get("dag_id") == dag_id else ""
        offered = rights.campaign_rights(FAB_ACCESS, dag_id)  # asked before any core call
        view = builders.display_page(dag_id, request.args, FAB_ACCESS, keep)
        if view.template == "display.html":
            view.context.update(definition_form.display_context(dag_id, offered, FAB))
        return self._show(view)

    @expose("/display/<string:dag_id>/status.json")
    def schedule_status(self, dag_id: str) -> ResponseReturnValue:
        """Statuses of a page of the run schedule, skipped runs included, for in-place updates."""
        if (refused := self._gate(dag_id, json=True)) is not None:
            return refused
        page = forms.page_number(request.args)
        schedule = core.run_schedule(dag_id, page=page, upcoming=0, include_skipped=True)
        return http.poll({"runs": [run_json(run) for run in schedule.runs]})

    # ------------------------------------------------------------ run details

    def _run_page(
        self, dag_id: str, run_id: str, *, status: int = 200, form: dict[str, Any] | None = None
    ) -> ResponseReturnValue:
        return self._show(builders.run_page(dag_id, run_id, FAB_ACCESS, status=status, form=form))

    @expose("/display/<string:dag_id>/run/<path:run_id>")
    def run(self, dag_id: str, run_id: str) -> ResponseReturnValue:
        """A run's status, progress, tasks, history and action forms (an action's address: the run's page)."""
        if (refused := self._gate(dag_id)) is not None:
            return refused
        try:  # run_page raises only NotFoundError: an unknown campaign or run (core.run_details)
            return self._show(builders.run_page(dag_id, run_id, FAB_ACCESS))
        except NotFoundError as error:
            if (target := builders.form_target(run_id)) is not None:
                return redirect(FAB.run_path(dag_id, target), code=303)
            return self._refuse(str(error), http_status(error))

    @expose("/display/<string:dag_id>/run/<path:run_id>/status.json")
    def run_status(self, dag_id: str, run_id: str) -> ResponseReturnValue:
        """A run's status and progress as JSON, with the run page as it reads now (``html``), polled while active."""
        if (refused := self._gate(dag_id, json=True)) is not None:
            return refused
        view = builders.run_page(dag_id, run_id, FAB_ACCESS)
        if view.template != "run.html":  # not a campaign (any more)
            return make_response(jsonify(detail=view.context["reason"]), 404)
        details = view.context["details"]
        # Rendered for its parts only: the messages shown once stay in the session for the next page.
        html = self._html(view.template, **view.context, get_flashed_messages=lambda **_: [])
        return http.poll({**run_json(details.run, details), "html": html})

    # ------------------------------------------------------------ actions

    @expose("/display/<string:dag_id>/run/<path:run_id>/<string:action>", methods=["POST"])
    def act(self, dag_id: str, run_id: str, action: str) -> ResponseReturnValue:
        """Stop, Restart or Skip a run with a note."""
        if (refused := self._gate()) is not None:
            return refused
        wanted = core.parse_action(action)
        if not rights.may_take(FAB_ACCESS, wanted.value, dag_id):
            return self._refuse(f"You may not {wanted.value} runs of campaign {dag_id}.", 403)
        note = request.form.get("note", "")
        origin = forms.choice(request.form, "origin", forms.ORIGINS, "run", kind="field")
        unpause = forms.checkbox(request.form, "unpause")
        resend_in_doubt = forms.flag(request.form, "resend_in_doubt", on="on")
        try:
            result = core.perform(
                wanted,
                dag_id,
                run_id,
                actor=_username(),
                note=note,
                unpause=unpause,
                resend_in_doubt=resend_in_doubt,
                params=definition_form.parse_params(request.form.get("params", "")),
                idempotency_key=request.form.get("idempotency_key") or None,
            )
        except CampaignRunsError as error:
            flash(str(error), "danger")
            form = {
                "action": wanted.value,
                "note": note,
                "error": str(error) if isinstance(error, InvalidNoteError) else "",
                "offer_unpause": isinstance(error, CampaignPausedError),
                "params": request.form.get("params", ""),
            }
            return self._run_page(dag_id, run_id, status=http_status(error), form=form)
        for category, message in builders.action_messages(wanted, run_id, result.new_run_id, _username()):
            flash(message, category)
        if origin == "display":
            session[KEEP_KEY] = {"dag_id": dag_id, "run_id": run_id}
        return redirect(self._back(origin, dag_id, run_id), code=303)

    @staticmethod
    def _back(origin: str, dag_id: str, run_id: str) -> str:
        if origin == "display":
            return FAB.campaign_path(dag_id)
        if origin == "worklist":
            return FAB.worklist_path()
        return FAB.run_path(dag_id, run_id)

    # ------------------------------------------------------------ work list

    @expose("/worklist")
    def worklist(self) -> ResponseReturnValue:
        """Runs assigned to the logged-in user; admins see everyone's."""
        if (refused := self._gate()) is not None:
            return refused
        admin = FAB_ACCESS.is_admin()
        everyone = admin and not forms.flag(request.args, "mine")
        readable = _authorized_dag_ids("GET")
        offered = rights.row_rights(FAB_ACCESS, readable)  # asked before any core call
        items = [item for item in core.worklist(None if everyone else _username()) if item.dag_id in readable]
        return self._page(
            "worklist.html",
            title="My work list",
            items=items,
            admin=admin,
            may_manage_suppressions=admin,
            everyone=everyone,
            may_act=offered["may_act"],
            may_restart=offered["may_restart"],
            idempotency_key=uuid.uuid4().hex,
            **fab_users.my_email_context(_username()),
        )

    @expose("/worklist/reassign", methods=["POST"])
    def reassign(self) -> ResponseReturnValue:
        """Give a run's work-list entry to another user (admins only)."""
        if (refused := self._gate()) is not None:
            return refused
        if not FAB_ACCESS.is_admin():
            return self._refuse("Only administrators may reassign work-list entries.", 403)
        try:
            item = core.reassign(
                request.form.get("dag_id", ""),
                request.form.get("run_id", ""),
                to_user=request.form.get("to_user", "").strip(),
                actor=_username(),
                note=request.form.get("note", ""),
            )
        except CampaignRunsError as error:
            flash(str(error), "danger")
            return self._page("error.html", status=http_status(error), title="My work list")
        flash(f"Run {item.run_id} is now on the work list of {item.assignee}.", "success")
        return redirect(FAB.worklist_path(), code=303)
