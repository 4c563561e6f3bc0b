"""Flask-AppBuilder views of Campaign Runs, served by the FAB provider under ``/pluginsv2/campaigns``.

Thin edges: parse the request, check Airflow's permissions through the auth manager, call one
service function, and turn a domain error into a flash message plus an HTTP status.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import flash, g, jsonify, make_response, redirect, request
from flask_appbuilder import BaseView, expose
from markupsafe import Markup

from campaign_runs import airflow_api, progress, service, view_links
from campaign_runs.domain import (
    Action,
    ActionNotAllowedError,
    CampaignPausedError,
    CampaignRunsError,
    ConflictError,
    InvalidNoteError,
    NotFoundError,
    RunStatus,
)
from campaign_runs.settings import get_settings

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

log = logging.getLogger(__name__)

CAMPAIGNS_PAGE_SIZE = 50
SORTS = {"dag_id": "Name", "owner": "Owner", "next_run": "Next run", "paused": "Paused"}
ORIGINS = ("display", "run", "worklist")
ACTIVE = frozenset(s.value for s in RunStatus if s.is_active)
# Users who may edit users may also see and hand over everybody's work list.

WHAT_NEXT = {
    Action.STOP: (
        "Run {run_id} is stopping; you will get an email when it has stopped, and it will be on your work list."
    ),
    Action.RESTART: (
        "Run {run_id} is skipped and restarted as run {new_run_id}, which is queued and starts shortly; "
        "an email is on its way to you."
    ),
    Action.SKIP: "Run {run_id} is skipped; the campaign goes on with its schedule and an email is on its way to you.",
}


def _http_status(error: CampaignRunsError) -> int:
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, InvalidNoteError):
        return 400
    if isinstance(error, ActionNotAllowedError | ConflictError | CampaignPausedError):
        return 409
    return 400


def _fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if value is not None else ""


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


@cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False})


def _render_markdown(text: str | None) -> Markup:
    """Campaign docs as HTML; raw HTML in the source is escaped, not rendered."""
    return Markup(_markdown().render(text or ""))  # markdown-it escapes raw HTML (html=False)


# ---------------------------------------------------------------- auth


def _auth_manager() -> Any:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def _user() -> Any:
    return _auth_manager().get_user()


def _login_from_api_token(security_manager: Any) -> None:
    """Recognise the user of Airflow's API token cookie when the FAB session carries none.

    With ``[fab] session_backend = database`` the ``/pluginsv2`` app cannot read the session of the
    ``/auth`` app that logged the user in, but the JWT cookie Airflow's UI uses reaches it; the user
    it names (validated, not revoked, active) is set for this request only.
    """
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from flask_login import current_user

    token = request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    if not token or not current_user.is_anonymous:
        return
    try:
        user = asyncio.run(_auth_manager().get_user_from_token(token))
        loaded = security_manager.load_user(int(user.get_id()))
    except Exception:
        log.info("The API token cookie does not name a valid user", exc_info=True)
        return
    if loaded is not None and loaded.is_active:
        g._login_user = loaded


# Auth decisions are taken once per request and before any service call: the service's sessions are
# Airflow's scoped session, whose rollback or close detaches the logged-in user object.


def _memo(key: str, compute: Any) -> Any:
    cache_ = g.setdefault("campaign_runs_auth", {})
    if key not in cache_:
        cache_[key] = compute()
    return cache_[key]


def _logged_in() -> bool:
    def compute() -> bool:
        user = _user()
        return bool(user is not None and not getattr(user, "is_anonymous", True))

    return bool(_memo("logged_in", compute))


def _username() -> str:
    def compute() -> str:
        user = _user()
        return str(getattr(user, "username", None) or user.get_name()) if _logged_in() else ""

    return str(_memo("username", compute))


def _may(dag_id: str, method: str) -> bool:
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return bool(
        _memo(
            f"dag:{method}:{dag_id}",
            lambda: _auth_manager().is_authorized_dag(
                method=method, access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=_user()
            ),
        )
    )


def _may_edit_runs() -> bool:
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

    return bool(
        _memo(
            "runs:PUT",
            lambda: _auth_manager().is_authorized_dag(method="PUT", access_entity=DagAccessEntity.RUN, user=_user()),
        )
    )


def _may_read_logs(dag_id: str) -> bool:
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return bool(
        _memo(
            f"logs:{dag_id}",
            lambda: _auth_manager().is_authorized_dag(
                method="GET", access_entity=DagAccessEntity.TASK_LOGS, details=DagDetails(id=dag_id), user=_user()
            ),
        )
    )


def _may_read(dag_id: str) -> bool:
    return _may(dag_id, "GET")


def _may_act(dag_id: str, action: Action) -> bool:
    # Changing a run needs edit rights on the DAG's runs; a restart also creates a run.
    return _may(dag_id, "PUT") and (action is not Action.RESTART or _may(dag_id, "POST"))


def _is_admin() -> bool:
    return bool(
        _memo(
            "admin",
            lambda: airflow_api.is_worklist_admin(_user()),
        )
    )


def _authorized_dag_ids(method: str) -> set[str]:
    return set(_memo(f"dag_ids:{method}", lambda: _auth_manager().get_authorized_dag_ids(user=_user(), method=method)))


def _int_arg(name: str, default: int, minimum: int = 1) -> int:
    try:
        return max(minimum, int(request.args.get(name, default)))
    except (TypeError, ValueError):
        return default


class CampaignsView(BaseView):
    """Campaigns, campaign display, run details, Stop / Restart / Skip and the work list."""

    route_base = "/campaigns"
    default_view = "campaigns"
    template_folder = str(Path(__file__).parent / "templates")

    # ------------------------------------------------------------ helpers

    def _page(self, template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
        context.setdefault("title", "Campaigns")
        return make_response(
            self.render_template(
                f"campaign_runs/{template}",
                links=view_links,
                fmt_time=_fmt_time,
                fmt_duration=_fmt_duration,
                username=_username(),
                note_max_length=get_settings().note_max_length,
                note_required=get_settings().note_required,
                **context,
            ),
            status,
        )

    def _refuse(self, message: str, status: int) -> ResponseReturnValue:
        flash(message, "danger")
        return self._page("error.html", status=status, title="Campaigns")

    def _gate(self, dag_id: str | None = None, *, json: bool = False) -> ResponseReturnValue | None:
        """None when the user may read ``dag_id`` (or use the plugin); otherwise the response to send."""
        _login_from_api_token(self.appbuilder.sm)
        _username()  # read before any service call detaches the user object
        if not _logged_in():
            if json or request.method != "GET":
                return make_response(jsonify(detail="Not logged in."), 401) if json else ("Not logged in.", 401)
            return redirect(_auth_manager().get_url_login(next_url=request.url))
        if dag_id is not None and not _may_read(dag_id):
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
        search = request.args.get("q", "").strip()[:200]
        sort = request.args.get("sort", "dag_id")
        sort = sort if sort in SORTS else "dag_id"
        descending = request.args.get("desc") == "1"
        page = _int_arg("page", 1)
        campaigns, total = service.list_campaigns(
            search=search or None,
            dag_ids=sorted(_authorized_dag_ids("GET")),
            sort=sort,
            descending=descending,
            limit=CAMPAIGNS_PAGE_SIZE,
            offset=(page - 1) * CAMPAIGNS_PAGE_SIZE,
        )
        return self._page(
            "campaigns.html",
            campaigns=campaigns,
            total=total,
            page=page,
            pages=max(1, -(-total // CAMPAIGNS_PAGE_SIZE)),
            search=search,
            sort=sort,
            descending=descending,
            sorts=SORTS,
        )

    # ------------------------------------------------------------ campaign display

    @expose("/display/<string:dag_id>")
    def display(self, dag_id: str) -> ResponseReturnValue:
        """A campaign's About section and its run schedule."""
        if (refused := self._gate(dag_id)) is not None:
            return refused
        may_act = _may(dag_id, "PUT")
        page = _int_arg("page", 1)
        show_skipped = request.args.get("show_skipped") == "1"
        keep = request.args.get("keep", "")
        try:
            campaign = service.get_campaign(dag_id)
            schedule = service.run_schedule(dag_id, page=page, include_skipped=show_skipped or bool(keep))
        except CampaignRunsError as error:
            return self._refuse(str(error), _http_status(error))
        runs = schedule.runs
        if keep and not show_skipped:
            # A run skipped from this page stays visible (marked skipped) until the next refresh.
            runs = [r for r in runs if r.status != RunStatus.SKIPPED or r.run_id == keep]
        return self._page(
            "display.html",
            title=f"Campaign {dag_id}",
            campaign=campaign,
            summary=campaign.summary,
            doc_html=_render_markdown(campaign.doc_md),
            schedule=schedule,
            runs=runs,
            show_skipped=show_skipped,
            may_act=may_act,
        )

    @expose("/display/<string:dag_id>/status.json")
    def schedule_status(self, dag_id: str) -> ResponseReturnValue:
        """Statuses of a page of the run schedule, skipped runs included, for in-place updates."""
        if (refused := self._gate(dag_id, json=True)) is not None:
            return refused
        try:
            schedule = service.run_schedule(dag_id, page=_int_arg("page", 1), upcoming=0, include_skipped=True)
        except CampaignRunsError as error:
            return make_response(jsonify(detail=str(error)), _http_status(error))
        return jsonify(runs=[self._run_json(run) for run in schedule.runs])

    # ------------------------------------------------------------ run details

    @staticmethod
    def _run_json(run: service.RunView, channels: list[progress.ChannelProgress] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "run_id": run.run_id,
            "status": run.status,
            "active": run.status in ACTIVE,
            "progress_percent": run.progress_percent,
            "tasks_done": run.tasks_done,
            "tasks_total": run.tasks_total,
            "start_date": _fmt_time(run.start_date),
            "end_date": _fmt_time(run.end_date),
            "duration": _fmt_duration(run.duration_seconds),
            "note": run.note or "",
            "allowed_actions": run.allowed_actions,
        }
        if channels is not None:
            data["overall_percent"] = progress.overall_percent(channels)
            data["channels"] = [
                {
                    "channel": c.channel,
                    "total": c.total,
                    "sent": c.sent,
                    "failed": c.failed,
                    "percent": c.percent,
                }
                for c in channels
            ]
        return data

    def _run_page(
        self, dag_id: str, run_id: str, *, status: int = 200, form: dict[str, Any] | None = None
    ) -> ResponseReturnValue:
        may_act = _may(dag_id, "PUT")
        may_read_logs = _may_read_logs(dag_id)
        try:
            run = service.get_run(dag_id, run_id)
            history = service.run_history(dag_id, run_id)
            campaign = service.get_campaign(dag_id)
        except CampaignRunsError as error:
            return self._refuse(str(error), _http_status(error))
        channels = progress.channel_progress(dag_id, run_id)
        return self._page(
            "run.html",
            status=status,
            title=f"Run {run_id}",
            campaign=campaign,
            summary=campaign.summary,
            run=run,
            history=history,
            channels=channels,
            overall_percent=progress.overall_percent(channels) if channels else run.progress_percent,
            tasks=progress.task_rows(dag_id, run_id),
            failures=progress.failure_messages(dag_id, run_id) if may_read_logs else {},
            may_act=may_act,
            active=run.status in ACTIVE,
            form=form or {},
            idempotency_key=uuid.uuid4().hex,
        )

    @expose("/display/<string:dag_id>/run/<path:run_id>")
    def run(self, dag_id: str, run_id: str) -> ResponseReturnValue:
        """A run's status, progress, tasks, history and action forms."""
        if (refused := self._gate(dag_id)) is not None:
            return refused
        return self._run_page(dag_id, run_id)

    @expose("/display/<string:dag_id>/run/<path:run_id>/status.json")
    def run_status(self, dag_id: str, run_id: str) -> ResponseReturnValue:
        """A run's status and progress as JSON, polled while the run is active."""
        if (refused := self._gate(dag_id, json=True)) is not None:
            return refused
        try:
            run = service.get_run(dag_id, run_id)
        except CampaignRunsError as error:
            return make_response(jsonify(detail=str(error)), _http_status(error))
        return jsonify(self._run_json(run, progress.channel_progress(dag_id, run_id)))

    # ------------------------------------------------------------ actions

    @expose("/display/<string:dag_id>/run/<path:run_id>/<string:action>", methods=["POST"])
    def act(self, dag_id: str, run_id: str, action: str) -> ResponseReturnValue:
        """Stop, Restart or Skip a run with a note."""
        if (refused := self._gate()) is not None:
            return refused
        try:
            wanted = Action(action)
        except ValueError:
            return self._refuse(f"Unknown action {action!r}.", 404)
        if wanted not in service.ACTIONS:
            return self._refuse(f"Unknown action {action!r}.", 404)
        if not _may_act(dag_id, wanted):
            return self._refuse(f"You may not {wanted.value} runs of campaign {dag_id}.", 403)
        note = request.form.get("note", "")
        origin = request.form.get("origin", "run")
        origin = origin if origin in ORIGINS else "run"
        unpause = request.form.get("unpause") == "on"
        key = request.form.get("idempotency_key", "")[:64] or None
        kwargs: dict[str, Any] = {"actor": _username(), "note": note, "idempotency_key": key}
        if wanted is Action.RESTART:
            kwargs["unpause"] = unpause
        try:
            result = service.ACTIONS[wanted](dag_id, run_id, **kwargs)
        except CampaignRunsError as error:
            flash(str(error), "danger")
            form = {
                "action": wanted.value,
                "note": note,
                "error": str(error) if isinstance(error, InvalidNoteError) else "",
                "offer_unpause": isinstance(error, CampaignPausedError),
            }
            return self._run_page(dag_id, run_id, status=_http_status(error), form=form)
        service.deliver_soon(result.outbox_ids)
        flash(WHAT_NEXT[wanted].format(run_id=run_id, new_run_id=result.new_run_id or ""), "success")
        return redirect(self._back(origin, dag_id, run_id), code=303)

    @staticmethod
    def _back(origin: str, dag_id: str, run_id: str) -> str:
        if origin == "display":
            return view_links.campaign_path(dag_id, keep=run_id)
        if origin == "worklist":
            return view_links.worklist_path()
        return view_links.run_path(dag_id, run_id)

    # ------------------------------------------------------------ work list

    @expose("/worklist")
    def worklist(self) -> ResponseReturnValue:
        """Runs assigned to the logged-in user; admins see everyone's."""
        if (refused := self._gate()) is not None:
            return refused
        admin = _is_admin()
        everyone = admin and request.args.get("mine") != "1"
        readable = _authorized_dag_ids("GET")
        editable = _authorized_dag_ids("PUT") if _may_edit_runs() else set()
        items = [item for item in service.worklist(None if everyone else _username()) if item.dag_id in readable]
        may_act = {item.dag_id: item.dag_id in editable for item in items}
        return self._page(
            "worklist.html",
            title="My work list",
            items=items,
            admin=admin,
            everyone=everyone,
            may_act=may_act,
            idempotency_key=uuid.uuid4().hex,
        )

    @expose("/worklist/reassign", methods=["POST"])
    def reassign(self) -> ResponseReturnValue:
        """Give a run's work-list entry to another user (admins only)."""
        if (refused := self._gate()) is not None:
            return refused
        if not _is_admin():
            return self._refuse("Only administrators may reassign work-list entries.", 403)
        dag_id = request.form.get("dag_id", "")
        run_id = request.form.get("run_id", "")
        to_user = request.form.get("to_user", "").strip()
        try:
            item = service.reassign(
                dag_id, run_id, to_user=to_user, actor=_username(), note=request.form.get("note", "")
            )
        except CampaignRunsError as error:
            flash(str(error), "danger")
            return self._page("error.html", status=_http_status(error), title="My work list")
        flash(f"Run {item.run_id} is now on the work list of {item.assignee}.", "success")
        return redirect(view_links.worklist_path(), code=303)
