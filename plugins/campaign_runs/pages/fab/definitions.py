"""New campaign, Configure and the campaign actions, served by the FAB provider under ``/pluginsv2/campaigns``.

Thin edges: check the request and the user's rights (the "Campaign Definitions" permission, and edit rights
on the DAG), map the form to a definition (``pages.definition_form``), call the core, and show every error beside
the field it names. Every POST carries FAB's CSRF token.
"""

from __future__ import annotations

import logging
import zoneinfo
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import flash, g, jsonify, make_response, redirect, request, send_from_directory
from flask_appbuilder import BaseView, expose
from flask_wtf.csrf import CSRFError

from campaign_runs.adapters import auth
from campaign_runs.core import audiences, definition_rights, definition_status, definition_text, definitions
from campaign_runs.core.campaign_actions import CAMPAIGN_ACTIONS, MISSED_CHOICES, perform_campaign_action
from campaign_runs.core.users import email_of, no_email_notice
from campaign_runs.domain import CampaignRunsError, ConflictError, DefinitionConflictError, DefinitionInvalidError
from campaign_runs.http_errors import PLAIN_TEXT, http_status, nosniff
from campaign_runs.pages import configure as page_configure
from campaign_runs.pages import definition_form, forms
from campaign_runs.pages.fab import http, trials
from campaign_runs.pages.format import fmt_duration, fmt_time
from campaign_runs.settings import get_settings
from campaign_runs.urls import FAB

if TYPE_CHECKING:
    from collections.abc import Callable

    from flask.typing import ResponseReturnValue

    from campaign_runs.core.definitions import SavedDefinition

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parents[2] / "static"
TEXT_LIMIT = 200_000  # characters of a multi-line field: the core's own limits (templates, 64 KiB file) say more
PREVIEW_ROWS = 10  # rows an audience preview shows
AIRFLOW_SWITCH = (  # Airflow's React UI keeps the DAG it read (react-query: 5 min stale, no refetch on focus)
    "Airflow's own pause switch at the top of this DAG's page shows the change after you reload the page: "
    "Airflow's page keeps the campaign as it read it when it opened."
)


@cache
def timezones() -> list[str]:
    """Every IANA timezone name, for the form's suggestions."""
    return sorted(zoneinfo.available_timezones())


def _memo(key: str, compute: Callable[[], Any]) -> Any:
    cached = g.setdefault("campaign_runs_auth", {})
    if key not in cached:
        cached[key] = compute()
    return cached[key]


def ensure_permissions() -> None:
    """Create the "Campaign Definitions" permission for Admin and Op if it is missing (once per process)."""
    try:
        definition_rights.ensure_permissions()
    except Exception:  # the metadata DB may not be ready (db migrate): tried again before each check
        log.warning("Could not create the Campaign Definitions permission yet", exc_info=True)


def may_manage(method: str) -> bool:
    """Whether the logged-in user may create (POST) or configure (PUT) campaigns: the API's and CLI's rule."""
    return bool(_memo(f"definitions:{method}", lambda: definition_rights.may_manage(auth.current_user(), method)))


def _may(dag_id: str, method: str) -> bool:
    return bool(_memo(f"runs:{method}:{dag_id}", lambda: auth.may_access_runs(auth.current_user(), method, dag_id)))


def may_act(dag_id: str, action: str) -> bool:
    """Campaign actions need edit rights on the DAG's runs; Run now also creates one."""
    return _may(dag_id, "PUT") and (action != "run_now" or _may(dag_id, "POST"))


def check_request() -> None:
    """Refuse a bad path, query or field; multi-line fields (templates, criteria, note) may hold lines."""
    forms.check_query_string(request.query_string)
    for name, value in (request.view_args or {}).items():
        forms.check_text(f"The path segment {name!r}", str(value), limit=forms.LIMITS.get(name))
    for name, value in request.args.items(multi=True):
        forms.check_text(f"The query parameter {name[:40]!r}", value)
    if request.method == "POST":
        for name, value in request.form.items(multi=True):
            forms.check_text("A field name", name)
            multiline = name in definition_form.MULTILINE
            long = multiline or name in definition_form.TEMPLATE_FIELDS or name.startswith(page_configure.PREFIX)
            limit = TEXT_LIMIT if long else forms.FIELD_MAX
            forms.check_text(f"The field {name[:40]!r}", value, multiline=multiline, limit=limit)


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
        blueprint.register_error_handler(forms.BadInputError, self._bad_input)
        blueprint.register_error_handler(CSRFError, self._bad_input)
        ensure_permissions()
        return blueprint

    # ------------------------------------------------------------ helpers

    def _bad_input(self, error: Exception) -> ResponseReturnValue:
        message = getattr(error, "description", None) or str(error)  # a CSRFError's reason is its description
        if request.path.endswith(".json"):
            return make_response(jsonify(detail=message), 400)
        return self._refuse(message, 400)

    def _page(self, template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
        page = self.render_template(
            f"campaign_runs/{template}",
            links=FAB,
            paths=definition_form.Paths,
            fmt_time=fmt_time,
            fmt_duration=fmt_duration,
            username=self._username(),
            note_max_length=get_settings().note_max_length,
            **context,
        )
        return make_response(page, status)

    def _refuse(self, message: str, status: int) -> ResponseReturnValue:
        flash(message, "danger")
        return self._page("error.html", status=status, title="Campaigns")

    @staticmethod
    def _username() -> str:
        def compute() -> str:
            user = auth.current_user()
            return "" if user is None or getattr(user, "is_anonymous", True) else auth.user_name(user)

        return str(_memo("username", compute))

    def _gate(self, *, json: bool = False) -> ResponseReturnValue | None:
        """None when a user is logged in (read before any core call); otherwise the answer."""
        auth.login_from_api_token(self.appbuilder.sm)
        if self._username():
            return None
        if json or request.method != "GET":
            return make_response(jsonify(detail="Not logged in."), 401)
        return redirect(auth.login_url(request.url))

    def _form_page(self, status: int = 200, **context: Any) -> ResponseReturnValue:
        context.setdefault("errors", {})
        context.setdefault("note", "")
        if context.get("mode") == "configure":  # the fields both users changed stay beside theirs, their choices too
            posted = context.pop("conflicts", None)
            posted = page_configure.posted(request.form) if posted is None and request.method == "POST" else posted
            context["conflicts"] = page_configure.by_slot(posted or [], context.get("form", {}))
        return self._page(
            "definition_form.html",
            status,
            timezones=timezones(),
            presets=definition_form.PRESETS,
            channels=definition_form.CHANNELS,
            transports=definition_form.transport_choices(),
            **context,
        )

    def _saved(self, saved: SavedDefinition, back: str) -> ResponseReturnValue:
        if saved.written:
            flash(f"{saved.dag_id}: {saved.message}", "success")
            return redirect(back, code=303)
        return self._page("definition_saved.html", title=f"Commit {saved.dag_id}", saved=saved)

    # ------------------------------------------------------------ New

    @expose("/new", methods=["GET", "POST"])  # type: ignore[untyped-decorator]
    def new(self) -> ResponseReturnValue:
        """The New campaign form; saving validates everything and writes nothing on any error."""
        if (refused := self._gate()) is not None:
            return refused
        if not may_manage("POST"):
            return self._refuse("You may not create campaigns (the Campaign Definitions permission).", 403)
        context = self._new_context()
        if request.method == "GET":
            return self._form_page(form=definition_form.new_form(), **context)
        form, note = definition_form.form_fields(request.form), request.form.get("note", "")
        try:
            text = definitions.dump(definition_form.mapping_of(form))
            saved = definitions.create_definition(text, actor=self._username(), note=note)
        except CampaignRunsError as error:
            errors = self._errors(error, form, clash_field="id")
            return self._form_page(http_status(error), form=form, note=note, errors=errors, **context)
        return self._saved(saved, FAB.list_path())

    @staticmethod
    def _new_context() -> dict[str, Any]:
        paths = definition_form.Paths
        context = {
            "title": "New campaign",
            "mode": "new",
            "action_url": paths.new(),
            "audience_url": paths.new_audience(),
        }
        return {**context, "starts_paused": definition_status.starts_paused()}

    @expose("/new/audience", methods=["POST"])  # type: ignore[untyped-decorator]
    def new_audience(self) -> ResponseReturnValue:
        """The New form again, with its audience read now as a run would read it; nothing is saved or sent."""
        if (refused := self._gate()) is not None:
            return refused
        if not may_manage("POST"):
            return self._refuse("You may not create campaigns (the Campaign Definitions permission).", 403)
        return self._audience_page(None, self._new_context())

    def _audience_page(self, base: dict[str, Any] | None, context: dict[str, Any]) -> ResponseReturnValue:
        """The form as posted, with the preview of the audience it describes (or the error, beside its field)."""
        form, note = definition_form.form_fields(request.form), request.form.get("note", "")
        kept: dict[str, Any] = {"form": form, "note": note}
        if base is not None:
            kept["base_sha"] = request.form.get("base_sha", "")
        try:
            text = definitions.dump(definition_form.mapping_of(form, base))
            preview = audiences.preview_definition(text, limit=PREVIEW_ROWS)
        except CampaignRunsError as error:
            return self._form_page(http_status(error), errors=self._errors(error, form), **kept, **context)
        return self._form_page(audience=preview.as_dict(), **kept, **context)

    _errors = staticmethod(page_configure.errors_of)  # every error beside its field; the rest above the form

    @expose("/new/preview.json")  # type: ignore[untyped-decorator]
    def preview(self) -> ResponseReturnValue:
        """The schedule in plain words and its next 10 fire times, in the campaign's timezone and in UTC."""
        if (refused := self._gate(json=True)) is not None:
            return refused
        mode = request.args.get("mode", "cron")
        cron = {"manual": None, "preset": request.args.get("preset", "")}.get(mode, request.args.get("cron", ""))
        try:
            shown = definition_status.preview_schedule(cron, request.args.get("timezone", "").strip() or "UTC")
        except DefinitionInvalidError as error:
            slot = definition_form.slot_of(error.field, {"schedule.mode": mode})
            return http.poll({"field": slot, "detail": error.reason}, 422)
        times = [{"local": fmt_time(t.local), "utc": fmt_time(t.utc)} for t in shown.times]
        one_zone = all(t["local"] == t["utc"] for t in times)  # a UTC campaign: one column, not "In UTC | In UTC"
        found = {"cron": shown.cron, "timezone": shown.timezone, "description": shown.description, "times": times}
        return http.poll({**found, "one_zone": one_zone})

    @expose("/new/static/<string:name>")  # type: ignore[untyped-decorator]
    def static_file(self, name: str) -> ResponseReturnValue:
        """The form's script, from the package (no CDN)."""
        if name != definition_form.STATIC:
            return "Not found.", 404, {"Content-Type": PLAIN_TEXT}
        return send_from_directory(STATIC_DIR, name, max_age=3600)

    # ------------------------------------------------------------ Configure

    def _configure_rights(self, dag_id: str) -> ResponseReturnValue | None:
        if not may_manage("PUT"):
            return self._refuse("You may not configure campaigns (the Campaign Definitions permission).", 403)
        if not _may(dag_id, "PUT"):
            return self._refuse(f"You may not change campaign {dag_id}.", 403)
        return None

    @expose("/display/<string:dag_id>/configure", methods=["GET", "POST"])  # type: ignore[untyped-decorator]
    def configure(self, dag_id: str) -> ResponseReturnValue:
        """The same form, prefilled from the campaign's YAML; read-only (with the reason) when it cannot be saved."""
        if (refused := self._gate()) is not None:
            return refused
        if (refused := self._configure_rights(dag_id)) is not None:
            return refused
        try:
            state = definitions.definition_of(dag_id)
        except CampaignRunsError as error:
            return self._refuse(str(error), http_status(error))
        context = self._configure_context(dag_id, state)
        if state.text is None:
            return self._form_page(form={}, **context)
        base = definition_text.load_text(state.text)
        if request.method == "GET":
            return self._form_page(form=definition_form.form_of(base), base_sha=state.sha, **context)
        return self._save_configured(dag_id, base, context)

    @staticmethod
    def _configure_context(dag_id: str, state: Any) -> dict[str, Any]:
        paths = definition_form.Paths
        context = {"title": f"Configure {dag_id}", "mode": "configure", "dag_id": dag_id, "state": state}
        context["trial_urls"] = {"check": trials.check_url(dag_id), "send": trials.test_send_url(dag_id)}
        return {**context, "action_url": paths.configure(dag_id), "audience_url": paths.configure_audience(dag_id)}

    @expose("/display/<string:dag_id>/configure/audience", methods=["POST"])  # type: ignore[untyped-decorator]
    def configure_audience(self, dag_id: str) -> ResponseReturnValue:
        """The Configure form again, with its audience read now as a run would read it; nothing is saved or sent."""
        if (refused := self._gate()) is not None:
            return refused
        if (refused := self._configure_rights(dag_id)) is not None:
            return refused
        try:
            state = definitions.definition_of(dag_id)
        except CampaignRunsError as error:
            return self._refuse(str(error), http_status(error))
        context = self._configure_context(dag_id, state)
        if state.text is None:
            return self._form_page(form={}, **context)
        return self._audience_page(definition_text.load_text(state.text), context)

    @expose("/display/<string:dag_id>/configure/check", methods=["POST"])  # type: ignore[untyped-decorator]
    def configure_check(self, dag_id: str) -> ResponseReturnValue:
        """Check connections of the form's definition (saved or not); nothing is saved or sent."""
        return trials.check_page(self, dag_id)

    @expose("/display/<string:dag_id>/configure/test-send", methods=["POST"])  # type: ignore[untyped-decorator]
    def configure_test_send(self, dag_id: str) -> ResponseReturnValue:
        """Send test messages of the form's definition (saved or not) to the addresses given; nothing is saved."""
        return trials.test_send_page(self, dag_id)

    def _save_configured(self, dag_id: str, base: dict[str, Any], context: dict[str, Any]) -> ResponseReturnValue:
        form, note = page_configure.own_fields(request.form), request.form.get("note", "")
        kept: dict[str, Any] = {"form": form, "note": note, "base_sha": request.form.get("base_sha", "")}
        chosen = page_configure.posted(request.form, attempted=True)
        if any(conflict.missing for conflict in chosen):  # never a field both changed without the user's choice
            return self._form_page(422, errors={"": page_configure.CHOOSE}, conflicts=chosen, **kept, **context)
        try:
            text = definitions.dump(page_configure.resolved(definition_form.mapping_of(form, base), chosen))
            saved = definitions.update_definition(
                dag_id, text, base_sha=kept["base_sha"], actor=self._username(), note=note
            )
        except DefinitionConflictError as error:
            return self._merge_page(dag_id, chosen, error, kept, context)
        except CampaignRunsError as error:
            errors = self._errors(error, form)
            return self._form_page(http_status(error), errors=errors, conflicts=chosen, **kept, **context)
        return self._saved(saved, FAB.campaign_path(dag_id))

    def _merge_page(
        self, dag_id: str, chosen: list[Any], error: DefinitionConflictError, kept: dict[str, Any], context: Any
    ) -> ResponseReturnValue:
        """409: theirs with your changes applied on top, the fields you both changed beside their input."""
        try:
            state = definitions.definition_of(dag_id)
            if state.text is None or not state.editable:
                raise ConflictError(state.reason)
            base_text = definitions.version_text(dag_id, kept["base_sha"])
            merged = page_configure.merge_form(kept["form"], chosen, base_text, state.text)
        except CampaignRunsError as refused:
            return self._refuse(str(refused), http_status(refused))
        merge = {"changes": error.changes, "applied": merged.applied, "base_known": merged.base_known}
        kept = {**kept, "form": merged.form, "base_sha": state.sha, "merge": merge}
        return self._form_page(409, conflicts=merged.conflicts, **kept, **{**context, "state": state})

    # ------------------------------------------------------------ campaign actions

    @expose("/display/<string:dag_id>/actions/<string:action>", methods=["POST"])  # type: ignore[untyped-decorator]
    def campaign_action(self, dag_id: str, action: str) -> ResponseReturnValue:
        """Run now (with params overrides), Pause, Resume (missed: all, latest, none) or Stop all, with a note."""
        if (refused := self._gate()) is not None:
            return refused
        if action not in CAMPAIGN_ACTIONS:
            return self._refuse(f"Unknown campaign action {action!r}.", 404)
        if not may_act(dag_id, action):
            label = definition_form.ACTION_LABELS[action]
            return self._refuse(f"You may not use {label} on campaign {dag_id}.", 403)
        try:
            conf = definition_form.parse_params(request.form.get("conf", "")) if action == "run_now" else None
            missed = forms.choice(request.form, "missed", MISSED_CHOICES, "none", kind="field")
            result = perform_campaign_action(
                action,
                dag_id,
                actor=self._username(),
                note=request.form.get("note", ""),
                conf=conf,
                missed=missed if action == "resume" else None,
            )
        except CampaignRunsError as error:
            flash(str(error), "danger")
            return self._page("error.html", http_status(error), title=f"Campaign {dag_id}", back=dag_id)
        flash(result.message, "success")
        if action in ("pause", "resume"):
            flash(AIRFLOW_SWITCH, "info")
        if (notice := no_email_notice(email_of(self._username()))) is not None:
            flash(notice, "warning")
        if action == "run_now" and result.run_ids:
            return redirect(FAB.run_path(dag_id, result.run_ids[0]), code=303)
        return redirect(FAB.campaign_path(dag_id), code=303)


def campaign_rights(dag_id: str) -> dict[str, bool]:
    """What the display offers the user: Configure and each campaign action (asked before any core call)."""
    rights = {action: may_act(dag_id, action) for action in CAMPAIGN_ACTIONS}
    return {**rights, "configure": may_manage("PUT") and _may(dag_id, "PUT")}
