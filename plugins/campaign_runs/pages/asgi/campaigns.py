"""The campaign pages served by the plugin's FastAPI app (``/campaign-runs/ui/...``) under non-FAB auth managers.

FAB's auth manager hosts the pages in ``/pluginsv2`` (``pages.fab``); every other auth manager (SimpleAuthManager,
Keycloak) gets the same templates and page code here, logged in through Airflow's own login and its JWT
cookie, with a signed double-submit CSRF token on every form. A refusal the page code raises (a
``CampaignRunsError``) is answered in one place, the app's exception handler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from campaign_runs.adapters import auth
from campaign_runs.adapters.api_security import cookie_path, jwt_cookie_name, secret_key
from campaign_runs.domain import Action, CampaignPausedError, CampaignRunsError, InvalidNoteError, NotFoundError
from campaign_runs.http_errors import http_status
from campaign_runs.pages import builders, definition_form, forms, rights
from campaign_runs.pages.asgi.support import CSRF_COOKIE, FLASH_COOKIE, Csrf, Flashes, environment
from campaign_runs.pages.format import run_json
from campaign_runs.settings import get_settings
from campaign_runs.urls import UI

Check = Callable[[Iterable[tuple[str, str]]], None]  # refuses a bad field or query parameter (BadInputError)
ui_app = FastAPI(title="Campaign Runs pages", docs_url=None, redoc_url=None, openapi_url=None)


def check_query(pairs: Iterable[tuple[str, str]]) -> None:
    """Refuse a bad query parameter, with every page's limits."""
    for name, value in pairs:
        forms.check_text(forms.LABELS.get(name, name), value)


@cache
def _env() -> Any:
    return environment()


class Page:
    """One request to the pages: its user (from the JWT cookie), CSRF value and one-time messages."""

    def __init__(self, request: Request) -> None:
        self.request = request
        token = request.cookies.get(jwt_cookie_name())
        self.user = auth.user_from_token(token) if token else None
        self.username = auth.user_name(self.user) if self.user is not None else ""
        self.csrf = Csrf(secret_key())
        self.csrf_value = request.cookies.get(CSRF_COOKIE) or Csrf.new_cookie_value()
        self.flashes = Flashes(secret_key()).load(request.cookies.get(FLASH_COOKIE))
        self._dag_ids: dict[str, set[str]] = {}  # the auth manager's answers, asked once a request

    def may(self, dag_id: str | None, method: str) -> bool:
        """Whether the user may ``method`` the runs of ``dag_id``."""
        return auth.may_access_runs(self.user, method, dag_id)

    def may_manage(self, method: str) -> bool:
        """Whether the user may create (POST) or configure (PUT) campaigns: the Campaign Definitions permission."""
        from campaign_runs.core import definition_rights

        return self.user is not None and definition_rights.may_manage(self.user, method)

    def may_read_logs(self, dag_id: str) -> bool:
        """Whether the user may read the task logs of ``dag_id``."""
        return auth.may_read_task_logs(self.user, dag_id)

    def authorized_dag_ids(self, method: str) -> set[str]:
        """The DAG ids the user may ``method`` (asked once a request)."""
        if method not in self._dag_ids:
            self._dag_ids[method] = auth.authorized_dag_ids(self.user, method)
        return set(self._dag_ids[method])

    def is_admin(self) -> bool:
        """Whether the user administers the work lists: everyone's entries and the suppression list."""
        return self.user is not None and auth.is_worklist_admin(self.user)

    def show(self, view: builders.PageView | builders.Redirect) -> Response:
        """Render what the page code chose (its messages shown), or redirect with them for the next page."""
        if isinstance(view, builders.Redirect):
            return self.finish(RedirectResponse(view.location, 303), list(view.flashes))
        self.flashes = [*self.flashes, *view.flashes]
        return self.render(view.template, view.status, **view.context)

    def html(self, template: str, *, flashes: bool = True, **context: Any) -> str:
        """A page from the FAB views' templates, with this request's user, token and (unless not) messages."""
        context.setdefault("title", "Campaigns")
        shown = self.flashes if flashes else []
        return str(
            _env()
            .get_template(f"campaign_runs/{template}")
            .render(
                csrf_token=lambda: self.csrf.token(self.csrf_value, self.username),
                get_flashed_messages=lambda with_categories=False: shown,
                username=self.username,
                note_max_length=get_settings().note_max_length,
                note_required=get_settings().note_required,
                **context,
            )
        )

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        """A page from the FAB views' templates, its messages shown (and then dropped)."""
        return self.finish(HTMLResponse(self.html(template, **context), status))

    def finish(self, response: Response, flashes: list[tuple[str, str]] | None = None) -> Response:
        """Set the CSRF cookie, and carry ``flashes`` to the next page (or drop the ones shown)."""
        # Secure over https; strict: no other site needs to send either cookie.
        attributes: dict[str, Any] = {
            "path": cookie_path(),
            "httponly": True,
            "samesite": "strict",
            "secure": self.request.url.scheme == "https",
        }
        response.set_cookie(CSRF_COOKIE, self.csrf_value, **attributes)
        if flashes:
            response.set_cookie(FLASH_COOKIE, Flashes(secret_key()).dump(flashes), **attributes)
        elif self.request.cookies.get(FLASH_COOKIE):
            response.delete_cookie(FLASH_COOKIE, **attributes)
        return response

    def refuse(self, message: str, status: int) -> Response:
        """The error page with ``message``."""
        self.flashes = [*self.flashes, ("danger", message)]
        return self.render("error.html", status=status)

    def gate(self, dag_id: str | None = None, *, json: bool = False, check: Check | None = None) -> Response | None:
        """None when the user may read ``dag_id`` (or use the pages), query checked by ``check``; else the answer."""
        try:
            for name, value in self.request.path_params.items():
                limit = forms.LIMITS.get(name, forms.FIELD_MAX)
                forms.check_text(forms.LABELS.get(name, name), str(value), limit=limit)
            (check or check_query)(self.request.query_params.multi_items())
        except forms.BadInputError as error:
            return JSONResponse({"detail": str(error)}, 400) if json else self.refuse(str(error), 400)
        if self.user is None:
            if json or self.request.method != "GET":
                return JSONResponse({"detail": "Not logged in."}, 401)
            return RedirectResponse(auth.login_url(str(self.request.url)), 302)
        if dag_id is not None and not self.may(dag_id, "GET"):
            message = f"You may not see campaign {dag_id}."
            return JSONResponse({"detail": message}, 403) if json else self.refuse(message, 403)
        return None

    async def form(self, check: Check | None = None) -> dict[str, str]:
        """The posted text fields (not an upload), checked (by ``check`` when given) as on FAB, and the CSRF token."""
        fields = {k: v for k, v in (await self.request.form()).multi_items() if isinstance(v, str)}
        if check is not None:
            check(fields.items())
        else:
            for name, value in fields.items():
                forms.check_text(forms.LABELS.get(name, name), value, multiline=name == "note", limit=None)
        if not self.csrf.valid(self.request.cookies.get(CSRF_COOKIE), fields.get("csrf_token"), self.username):
            raise forms.BadInputError("The CSRF token is missing or wrong; reload the page and try again.")
        return fields


@ui_app.exception_handler(CampaignRunsError)
def answer_refusal(request: Request, error: CampaignRunsError) -> Response:
    """The one answer to a refusal of the page code: 400 bad input, 403 refused user, 404 unknown id, 409..."""
    if request.url.path.endswith(".json"):
        return JSONResponse({"detail": str(error)}, http_status(error))
    return Page(request).refuse(str(error), http_status(error))


@ui_app.get("/")
@ui_app.get("/list")
def campaigns(request: Request) -> Response:
    """Every campaign the user may read: sortable, searchable, paginated."""
    page = Page(request)
    if (refused := page.gate()) is not None:
        return refused
    may_create, admin = page.may_manage(rights.CREATE), page.is_admin()
    view = builders.campaigns_page(request.query_params, page)
    view.context.update(definition_form.campaigns_context(page.authorized_dag_ids("GET"), may_create, UI))
    view.context["may_manage_suppressions"] = admin
    return page.show(view)


@ui_app.get("/display/{dag_id}")
def display(request: Request, dag_id: str) -> Response:
    """A campaign's About section and its run schedule."""

    page = Page(request)
    if (refused := page.gate(dag_id)) is not None:
        return refused
    offered = rights.campaign_rights(page, dag_id)
    view = builders.display_page(dag_id, request.query_params, page)
    if view.template == "display.html":
        view.context.update(definition_form.display_context(dag_id, offered, UI))
    return page.show(view)


@ui_app.get("/display/{dag_id}/status.json")
def schedule_status(request: Request, dag_id: str) -> Response:
    """Statuses of a page of the run schedule, for in-place updates."""
    from campaign_runs import core

    page = Page(request)
    if (refused := page.gate(dag_id, json=True)) is not None:
        return refused
    number = forms.page_number(request.query_params)
    schedule = core.run_schedule(dag_id, page=number, upcoming=0, include_skipped=True)
    return JSONResponse({"runs": [run_json(run) for run in schedule.runs]}, headers={"Cache-Control": "no-store"})


def _run_page(
    page: Page, dag_id: str, run_id: str, *, status: int = 200, form: dict[str, Any] | None = None
) -> Response:
    return page.show(builders.run_page(dag_id, run_id, page, status=status, form=form))


@ui_app.get("/display/{dag_id}/run/{run_id:path}")
def run(request: Request, dag_id: str, run_id: str) -> Response:
    """A run's details (or, for ``.../status.json``, its JSON status)."""
    page = Page(request)
    json = run_id.endswith("/status.json")
    if (refused := page.gate(dag_id, json=json)) is not None:
        return refused
    if not json:
        try:  # run_page raises only NotFoundError: an unknown campaign or run (core.run_details)
            return page.show(builders.run_page(dag_id, run_id, page))
        except NotFoundError as error:  # an action's address opened with GET: the run's page
            if (target := builders.form_target(run_id)) is not None:
                return page.finish(RedirectResponse(UI.run_path(dag_id, target), 303))
            return page.refuse(str(error), http_status(error))
    view = builders.run_page(dag_id, run_id.removesuffix("/status.json"), page)
    if view.template != "run.html":  # not a campaign (any more)
        return JSONResponse({"detail": view.context["reason"]}, 404)
    details = view.context["details"]
    html = page.html(view.template, flashes=False, **view.context)  # its parts only: no message shown, none dropped
    data = {**run_json(details.run, details), "html": html}
    return JSONResponse(data, headers={"Cache-Control": "no-store"})


def _after_action(page: Page, wanted: Action, result: Any, origin: str, dag_id: str, run_id: str) -> Response:
    messages = builders.action_messages(wanted, run_id, result.new_run_id, page.username)
    back = {"display": UI.campaign_path(dag_id), "worklist": UI.worklist_path()}
    return page.finish(RedirectResponse(back.get(origin, UI.run_path(dag_id, run_id)), 303), messages)


@ui_app.post("/display/{dag_id}/run/{target:path}")
async def act(request: Request, dag_id: str, target: str) -> Response:
    """Stop, Restart or Skip a run with a note (``target`` is ``RUN_ID/ACTION``)."""
    from starlette.concurrency import run_in_threadpool

    page = await run_in_threadpool(Page, request)
    if (refused := page.gate()) is not None:
        return refused
    run_id, _, action = target.rpartition("/")
    fields = await page.form()
    return await run_in_threadpool(_act, page, dag_id, run_id, action, fields)


def _act(page: Page, dag_id: str, run_id: str, action: str, fields: dict[str, str]) -> Response:
    from campaign_runs import core

    wanted = core.parse_action(action)
    origin = forms.choice(fields, "origin", forms.ORIGINS, "run", kind="field")
    unpause = forms.checkbox(fields, "unpause")
    resend = forms.checkbox(fields, "resend_in_doubt")
    if not rights.may_take(page, wanted.value, dag_id):
        return page.refuse(f"You may not {wanted.value} runs of campaign {dag_id}.", 403)
    note = fields.get("note", "")
    try:
        params = definition_form.parse_params(fields.get("params", ""))  # Restart's overrides, read as on FAB
        with auth.acting_as(page.user) as actor:
            result = core.perform(
                wanted,
                dag_id,
                run_id,
                actor=actor,
                note=note,
                unpause=unpause,
                resend_in_doubt=resend,
                params=params,
                idempotency_key=fields.get("idempotency_key") or None,
            )
    except CampaignRunsError as error:
        page.flashes = [*page.flashes, ("danger", str(error))]
        form = {
            "action": wanted.value,
            "note": note,
            "error": str(error) if isinstance(error, InvalidNoteError) else "",
            "offer_unpause": isinstance(error, CampaignPausedError),
            "params": fields.get("params", ""),
        }
        return _run_page(page, dag_id, run_id, status=http_status(error), form=form)
    return _after_action(page, wanted, result, origin, dag_id, run_id)
