"""New campaign and Configure (with its audience preview and the merge after a 409), for both page hosts.

Each page takes the posted fields (None for a GET), the logged-in user (``rights.Visitor``) and the host's links,
and returns what to answer: a ``PageView`` (the form again, errors beside their field) or a ``Redirect``. A
refused user (403), an unknown campaign (404) or a bad field (400) is raised as the domain error, which each host
maps to its error page in one place.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaign_runs.core import audiences, definition_status, definition_text, definitions
from campaign_runs.domain import CampaignRunsError, ConflictError, DefinitionConflictError, DefinitionInvalidError
from campaign_runs.http_errors import http_status
from campaign_runs.pages import configure, definition_form, forms, rights
from campaign_runs.pages.builders import PageView, Redirect
from campaign_runs.pages.format import fmt_time

if TYPE_CHECKING:
    from campaign_runs.core.definitions import DefinitionState, SavedDefinition
    from campaign_runs.urls import PageLinks

Posted = Mapping[str, str]
STATIC_DIR = Path(__file__).parents[1] / "static"  # the form's script (``urls.FORM_SCRIPT``)
TEXT_LIMIT = 200_000  # characters of a multi-line field: the core's own limits (templates, 64 KiB file) say more
PREVIEW_ROWS = 10  # rows an audience preview shows


@cache
def timezones() -> list[str]:
    """Every IANA timezone name, for the form's suggestions."""
    return sorted(zoneinfo.available_timezones())


def check_fields(fields: Iterable[tuple[str, str]]) -> None:
    """Refuse a bad posted field; multi-line fields (templates, criteria, note, params) may hold lines."""
    for name, value in fields:
        forms.check_text("A field name", name)
        multiline = name in definition_form.MULTILINE
        long = multiline or name in definition_form.TEMPLATE_FIELDS or name.startswith(configure.PREFIX)
        limit = TEXT_LIMIT if long else forms.FIELD_MAX
        forms.check_text(f"The field {name[:40]!r}", value, multiline=multiline, limit=limit)


def form_view(status: int = 200, posted: Posted | None = None, **context: Any) -> PageView:
    """The New / Configure form; on Configure the fields both users changed stay beside theirs, with the choices."""
    context.setdefault("errors", {})
    context.setdefault("note", "")
    if context.get("mode") == "configure":
        shown = context.pop("conflicts", None)
        shown = configure.posted(posted) if shown is None and posted is not None else shown
        context["conflicts"] = configure.by_slot(shown or [], context.get("form", {}))
    return PageView(
        "definition_form.html",
        {
            "timezones": timezones(),
            "presets": definition_form.PRESETS,
            "channels": definition_form.CHANNELS,
            "transports": definition_form.transport_choices(),
            **context,
        },
        status,
    )


def kept_fields(posted: Posted, *, base_sha: bool = True) -> dict[str, Any]:
    """What the form shows again of what was posted: its fields, the note and (Configure) the version opened."""
    kept: dict[str, Any] = {"form": definition_form.form_fields(posted), "note": posted.get("note", "")}
    return {**kept, "base_sha": posted.get("base_sha", "")} if base_sha else kept


def _saved(saved: SavedDefinition, back: str) -> PageView | Redirect:
    if saved.written:
        return Redirect(back, (("success", f"{saved.dag_id}: {saved.message}"),))
    return PageView("definition_saved.html", {"title": f"Commit {saved.dag_id}", "saved": saved})


# ---------------------------------------------------------------- New


def _new_context(links: PageLinks) -> dict[str, Any]:
    context = {"title": "New campaign", "mode": "new", "action_url": links.new_path()}
    return {**context, "audience_url": links.new_audience_path(), "starts_paused": definition_status.starts_paused()}


def new_page(visitor: rights.Visitor, links: PageLinks, posted: Posted | None) -> PageView | Redirect:
    """The New campaign form (``posted`` None), or its save: validates everything, writes nothing on any error."""
    rights.require_create(visitor)
    context = _new_context(links)
    if posted is None:
        return form_view(form=definition_form.new_form(), **context)
    kept = kept_fields(posted, base_sha=False)
    try:
        text = definitions.dump(definition_form.mapping_of(kept["form"]))
        saved = definitions.create_definition(text, actor=visitor.username, note=kept["note"])
    except CampaignRunsError as error:
        errors = configure.errors_of(error, kept["form"], clash_field="id")
        return form_view(http_status(error), posted, errors=errors, **kept, **context)
    return _saved(saved, links.list_path())


def new_audience(visitor: rights.Visitor, links: PageLinks, posted: Posted) -> PageView:
    """The New form again, with its audience read now as a run would read it; nothing is saved or sent."""
    rights.require_create(visitor)
    return _audience_view(None, posted, _new_context(links))


def _audience_view(base: dict[str, Any] | None, posted: Posted, context: dict[str, Any]) -> PageView:
    """The form as posted, with the preview of the audience it describes (or the error, beside its field)."""
    kept = kept_fields(posted, base_sha=base is not None)
    try:
        text = definitions.dump(definition_form.mapping_of(kept["form"], base))
        preview = audiences.preview_definition(text, limit=PREVIEW_ROWS)
    except CampaignRunsError as error:
        errors = configure.errors_of(error, kept["form"])
        return form_view(http_status(error), posted, errors=errors, **kept, **context)
    return form_view(200, posted, audience=preview.as_dict(), **kept, **context)


def schedule_preview(args: Mapping[str, str]) -> tuple[dict[str, Any], int]:
    """The schedule in plain words and its next 10 fire times, in the campaign's timezone and in UTC (JSON)."""
    mode = args.get("mode", "cron")
    cron = {"manual": None, "preset": args.get("preset", "")}.get(mode, args.get("cron", ""))
    try:
        shown = definition_status.preview_schedule(cron, args.get("timezone", "").strip() or "UTC")
    except DefinitionInvalidError as error:
        return {"field": definition_form.slot_of(error.field, {"schedule.mode": mode}), "detail": error.reason}, 422
    times = [{"local": fmt_time(t.local), "utc": fmt_time(t.utc)} for t in shown.times]
    one_zone = all(t["local"] == t["utc"] for t in times)  # a UTC campaign: one column, not "In UTC | In UTC"
    found = {"cron": shown.cron, "timezone": shown.timezone, "description": shown.description, "times": times}
    return {**found, "one_zone": one_zone}, 200


# ---------------------------------------------------------------- Configure


def configure_state(visitor: rights.Visitor, links: PageLinks, dag_id: str) -> tuple[DefinitionState, dict[str, Any]]:
    """The campaign's definition and the Configure form's context, for a user who may configure it."""
    rights.require_configure(visitor, dag_id)  # asked before any core call
    state = definitions.definition_of(dag_id)
    context = {"title": f"Configure {dag_id}", "mode": "configure", "dag_id": dag_id, "state": state}
    context["trial_urls"] = {"check": links.check_path(dag_id), "send": links.test_send_path(dag_id)}
    return state, {
        **context,
        "action_url": links.configure_path(dag_id),
        "audience_url": links.configure_audience_path(dag_id),
    }


def configure_page(
    visitor: rights.Visitor, links: PageLinks, dag_id: str, posted: Posted | None
) -> PageView | Redirect:
    """The form prefilled from the campaign's YAML (read-only, with the reason, when it cannot be saved); its save."""
    state, context = configure_state(visitor, links, dag_id)
    if state.text is None:
        return form_view(200, posted, form={}, **context)
    base = definition_text.load_text(state.text)
    if posted is None:
        return form_view(form=definition_form.form_of(base), base_sha=state.sha, **context)
    return _save_configured(visitor, links, dag_id, base, posted, context)


def configure_audience(visitor: rights.Visitor, links: PageLinks, dag_id: str, posted: Posted) -> PageView:
    """The Configure form again, with its audience read now as a run would read it; nothing is saved or sent."""
    state, context = configure_state(visitor, links, dag_id)
    if state.text is None:
        return form_view(200, posted, form={}, **context)
    return _audience_view(definition_text.load_text(state.text), posted, context)


def _save_configured(
    visitor: rights.Visitor,
    links: PageLinks,
    dag_id: str,
    base: dict[str, Any],
    posted: Posted,
    context: dict[str, Any],
) -> PageView | Redirect:
    form = configure.own_fields(posted)
    kept = {**kept_fields(posted), "form": form}
    chosen = configure.posted(posted, attempted=True)
    if any(conflict.missing for conflict in chosen):  # never a field both changed without the user's choice
        return form_view(422, posted, errors={"": configure.CHOOSE}, conflicts=chosen, **kept, **context)
    try:
        text = definitions.dump(configure.resolved(definition_form.mapping_of(form, base), chosen))
        saved = definitions.update_definition(
            dag_id, text, base_sha=kept["base_sha"], actor=visitor.username, note=kept["note"]
        )
    except DefinitionConflictError as error:
        return _merge_view(dag_id, chosen, error, kept, context)
    except CampaignRunsError as error:
        errors = configure.errors_of(error, form)
        return form_view(http_status(error), posted, errors=errors, conflicts=chosen, **kept, **context)
    return _saved(saved, links.campaign_path(dag_id))


def _merge_view(
    dag_id: str,
    chosen: list[configure.ShownConflict],
    error: DefinitionConflictError,
    kept: dict[str, Any],
    context: dict[str, Any],
) -> PageView:
    """409: theirs with your changes applied on top, the fields you both changed beside their input."""
    state = definitions.definition_of(dag_id)
    if state.text is None or not state.editable:
        raise ConflictError(state.reason)
    base_text = definitions.version_text(dag_id, kept["base_sha"])
    merged = configure.merge_form(kept["form"], chosen, base_text, state.text)
    merge = {"changes": error.changes, "applied": merged.applied, "base_known": merged.base_known}
    kept = {**kept, "form": merged.form, "base_sha": state.sha, "merge": merge}
    return form_view(409, None, conflicts=merged.conflicts, **kept, **{**context, "state": state})
