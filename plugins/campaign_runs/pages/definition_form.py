"""New and Configure pages: the form's fields to a definition's YAML mapping and back, and errors to their field.

Inputs are named after the dotted fields (``schedule.cron``), so an error's ``field`` names the input it is shown
beside. What the form does not show (tags, population, ``from_name``...) is kept from the YAML it started from.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import yaml

from campaign_runs.core.definition_errors import collecting, validate_data
from campaign_runs.core.definition_errors import refused as _refused
from campaign_runs.domain import DefinitionInvalidError
from campaign_runs.factory.documents import DocumentError, document_problem, load_json_object, load_yaml
from campaign_runs.urls import PageLinks

PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
MODES = ("cron", "preset", "manual")
MANUAL_WORDS = frozenset({"", "none", "null", "manual"})
TEXT_FIELDS = ("id", "description", "owner", "owner_email")
CHANNELS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    # channel: (setting, label, multi-line)
    "email": (("subject", "Subject", False), ("body", "Body", True)),
    "sms": (("text", "Text", True), ("sender", "Sender", False)),
    "push": (("title", "Title", False), ("body", "Body", True), ("deep_link", "Deep link", False)),
    "webhook": (
        ("body", "Body (a JSON object or array)", True),
        ("endpoint", "Endpoint (a path on the Connection)", False),
    ),
}
LIMIT_FIELDS = ("batch_size", "rate_limit_per_second")
DELIVERY_FIELDS = ("transport", "conn_id", "delivery")  # how a channel delivers; kept from the YAML when not posted
AUDIENCE_SOURCES = ("demo", "sql", "file")
SOURCE_TEXT = ("conn_id", "query", "url", "format", "consent_column")  # a SQL or file audience's text settings
DEMO_ONLY = ("segment", "criteria", "size", "population", "rotate_per_slot")
SOURCE_FIELDS = frozenset(f"audience.{name}" for name in ("source", *SOURCE_TEXT, "columns", "timeout_seconds"))
MULTILINE = frozenset(
    {"audience.criteria", "audience.query", "audience.columns", "note", "conf", "params", "trial.to"}
    | {f"channels.{name}.{key}" for name, settings in CHANNELS.items() for key, _, multi in settings if multi}
)
TEMPLATE_FIELDS = frozenset(f"channels.{name}.{key}" for name, settings in CHANNELS.items() for key, _, _ in settings)
FIELDS = frozenset(
    {*TEXT_FIELDS, "note", "schedule.mode", "schedule.cron", "schedule.preset", "schedule.timezone"}
    | {"schedule.start_date", "schedule.catchup", "audience.segment", "audience.size", "audience.criteria"}
    | TEMPLATE_FIELDS
    | SOURCE_FIELDS
    | {f"channels.{name}.{key}" for name in CHANNELS for key in ("enabled", *LIMIT_FIELDS, *DELIVERY_FIELDS)}
    | {"delivery"}
)
SECTIONS = frozenset({"schedule", "audience", "channels"} | {f"channels.{name}" for name in CHANNELS})
NEW_DEFAULTS = {"schedule.mode": "cron", "schedule.timezone": "UTC", "schedule.cron": "0 9 * * MON"}
MISSED_EXPLAINED = {
    "none": "Skip every slot missed while paused; the next run is the next slot from now.",
    "latest": "Run only the most recent missed slot now, then carry on with the schedule.",
    "all": "Run every missed slot, one after the other (an Airflow backfill), then carry on with the schedule.",
}
ACTION_LABELS = {"run_now": "Run now", "pause": "Pause", "resume": "Resume", "stop_all": "Stop all active runs"}
ACTION_LABELS["test_send"] = "Send test"  # in the history only

FIELD_BYTES = 4096  # one form box of JSON or YAML (the pages cap any field at 1,024 characters before this)


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a mapping (a YAML document may hold anything), else an empty one."""
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()[:10]
    return str(value)


def _schedule_form(schedule: Mapping[str, Any]) -> dict[str, str]:
    cron = schedule.get("cron")
    form = {
        "schedule.timezone": _text(schedule.get("timezone") or "UTC"),
        "schedule.start_date": _text(schedule.get("start_date")),
        "schedule.catchup": "on" if schedule.get("catchup") is True else "",
    }
    if cron is None or (isinstance(cron, str) and cron.strip().lower() in MANUAL_WORDS):
        return {**form, "schedule.mode": "manual"}
    if isinstance(cron, str) and cron.strip().lower() in PRESETS:
        return {**form, "schedule.mode": "preset", "schedule.preset": cron.strip().lower()}
    return {**form, "schedule.mode": "cron", "schedule.cron": _text(cron)}


def _flow(value: Any) -> str:
    """A mapping as one line of YAML (``{plan: gold}``), empty when there is none."""
    if not value:
        return ""
    return str(yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=None)).strip()


def _source_form(audience: Mapping[str, Any]) -> dict[str, str]:
    """The audience's source and a SQL or file source's settings, as the form shows them."""
    form = {f"audience.{name}": _text(audience.get(name)) for name in (*SOURCE_TEXT, "timeout_seconds")}
    form["audience.columns"] = _flow(audience.get("columns") if isinstance(audience.get("columns"), dict) else None)
    return {**form, "audience.source": _text(audience.get("source") or "demo")}


def form_of(data: Mapping[str, Any]) -> dict[str, str]:
    """The form's values of a definition mapping (Configure's prefill)."""
    form = {name: _text(data.get(name)) for name in (*TEXT_FIELDS, "delivery")}
    form.update(_schedule_form(_mapping(data.get("schedule"))))
    form.update(_source_form(_mapping(data.get("audience"))))
    form["audience.segment"] = _text(_get(data, "audience.segment"))
    form["audience.size"] = _text(_get(data, "audience.size"))
    criteria = _get(data, "audience.criteria")
    form["audience.criteria"] = (
        yaml.safe_dump(criteria, sort_keys=False, allow_unicode=True, default_flow_style=None) if criteria else ""
    )
    channels = _mapping(data.get("channels"))
    for name, settings in CHANNELS.items():
        form[f"channels.{name}.enabled"] = "on" if name in channels else ""
        values = _mapping(channels.get(name))
        for key in [setting for setting, _, _ in settings] + list(LIMIT_FIELDS) + list(DELIVERY_FIELDS):
            form[f"channels.{name}.{key}"] = _text(values.get(key))
    return form


def new_form() -> dict[str, str]:
    """The New form's starting values."""
    return dict(NEW_DEFAULTS)


def _number(form: Mapping[str, str], name: str, *, whole: bool) -> int | float | None:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        pass
    if whole:
        _refused(name, f"must be a whole number, not {raw[:40]!r}")
        return None
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        _refused(name, f"must be a number, not {raw[:40]!r}")
        return None
    return number


def _put(node: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key``, or drop it when the form left it empty (so the factory's default or "is required" applies)."""
    if value is None or value == "":
        node.pop(key, None)
    else:
        node[key] = value


def _schedule(form: Mapping[str, str], schedule: dict[str, Any]) -> None:
    mode = form.get("schedule.mode", "cron")
    if mode not in MODES:
        _refused("schedule.mode", f"must be one of {', '.join(MODES)}")
        mode = "manual"  # read on: the other fields' errors are said too
    if mode == "manual":
        schedule["cron"] = None
    elif mode == "preset":
        schedule["cron"] = form.get("schedule.preset", "").strip() or None
        if schedule["cron"] not in PRESETS:
            _refused("schedule.preset", f"choose one of {', '.join(PRESETS)}")
            schedule["cron"] = None
    else:
        schedule["cron"] = form.get("schedule.cron", "").strip()
        if not schedule["cron"]:
            _refused("schedule.cron", "is required (or choose a preset or manual)")
    _put(schedule, "timezone", form.get("schedule.timezone", "").strip())
    start = form.get("schedule.start_date", "").strip()
    try:
        _put(schedule, "start_date", dt.date.fromisoformat(start) if start else None)
    except ValueError:
        _refused("schedule.start_date", f"is not a date such as 2026-01-05: {start[:40]!r}")
        schedule["start_date"] = dt.date(2026, 1, 5)  # read on; nothing is saved with an error
    schedule["catchup"] = form.get("schedule.catchup") == "on"


def _yaml_mapping(form: Mapping[str, str], name: str, example: str) -> dict[str, Any] | None:
    raw = form.get(name, "")
    if not raw.strip():
        return None
    try:
        value = load_yaml(raw, max_bytes=FIELD_BYTES)
    except (yaml.YAMLError, DocumentError) as error:
        _refused(name, f"is not valid YAML or JSON: {document_problem(error)}")
        return None
    if not isinstance(value, dict):
        _refused(name, f"must be a mapping of {example}")
        return None
    return value


def _criteria(form: Mapping[str, str]) -> dict[str, Any] | None:
    return _yaml_mapping(form, "audience.criteria", "attribute: value, e.g. {plan: gold}")


def _audience(form: Mapping[str, str], audience: dict[str, Any]) -> None:
    """The audience the form describes: a SQL or file source's settings, or the demo generator's fields.

    A form without the source's fields (an older page, a client) leaves them as the YAML has them.
    """
    source = form.get("audience.source", "").strip() or "demo"
    if "audience.source" in form:
        if source not in AUDIENCE_SOURCES:
            _refused("audience.source", f"must be one of {', '.join(AUDIENCE_SOURCES)}")
            source = "demo"
        _put(audience, "source", None if source == "demo" else source)
        for name in SOURCE_TEXT:
            _put(audience, name, form.get(f"audience.{name}", "").strip())
        columns = _yaml_mapping(form, "audience.columns", "recipient field: column, e.g. {id: user_id}")
        _put(audience, "columns", columns)
        _put(audience, "timeout_seconds", _number(form, "audience.timeout_seconds", whole=True))
    if source != "demo":  # the demo generator's fields are refused beside a SQL or file source
        for name in DEMO_ONLY:
            audience.pop(name, None)
        return
    _put(audience, "segment", form.get("audience.segment", "").strip())
    _put(audience, "criteria", _criteria(form))
    _put(audience, "size", _number(form, "audience.size", whole=True))


def _channels(form: Mapping[str, str], channels: dict[str, Any]) -> None:
    for name, settings in CHANNELS.items():
        if form.get(f"channels.{name}.enabled") != "on":
            channels.pop(name, None)
            continue
        values = _mapping(channels.get(name))
        for key, _, _ in settings:
            _put(values, key, form.get(f"channels.{name}.{key}", "").strip())
        _put(values, "batch_size", _number(form, f"channels.{name}.batch_size", whole=True))
        _put(values, "rate_limit_per_second", _number(form, f"channels.{name}.rate_limit_per_second", whole=False))
        for key in (key for key in DELIVERY_FIELDS if f"channels.{name}.{key}" in form):
            _put(values, key, form[f"channels.{name}.{key}"].strip())
        channels[name] = values


def mapping_of(form: Mapping[str, str], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The definition the form describes, over ``base`` for what it does not show; ``DefinitionErrors`` names all."""
    with collecting() as found:
        data = _mapping_of(form, base)
    if found:  # a field the form cannot read (a date, a number, YAML), with the definition's other errors
        validate_data(data, earlier=found)
    return data


def _mapping_of(form: Mapping[str, str], base: Mapping[str, Any] | None) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(dict(base or {}))
    for name in TEXT_FIELDS:
        _put(data, name, form.get(name, "").strip())
    if "delivery" in form:
        _put(data, "delivery", form["delivery"].strip())
    schedule = _mapping(data.get("schedule"))
    _schedule(form, schedule)
    audience = _mapping(data.get("audience"))
    _audience(form, audience)
    channels = _mapping(data.get("channels"))
    _channels(form, channels)
    ordered = {name: data[name] for name in TEXT_FIELDS if name in data}
    rest = {key: value for key, value in data.items() if key not in (*TEXT_FIELDS, "schedule", "audience", "channels")}
    return {**ordered, "schedule": schedule, "audience": audience, "channels": channels, **rest}


def transport_choices() -> dict[str, list[str]]:
    """Each form channel's transports as the factory registers them (``transport:``), its default first."""
    from campaign_runs.factory.channels import ChannelAdapter
    from campaign_runs.factory.transports import DRY_RUN  # importing the package registers every transport

    known, default = ChannelAdapter.transports, ChannelAdapter.registry
    return {
        name: sorted((t for c, t in known if c == name), key=lambda t: (t != default[name].transport, t == DRY_RUN, t))
        for name in CHANNELS
    }


def slot_of(field: str, form: Mapping[str, str]) -> str:
    """The form input an error about ``field`` is shown beside ("" for the whole form)."""
    if field == "schedule.cron" and form.get("schedule.mode") == "preset":
        return "schedule.preset"
    parts = field.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in FIELDS or candidate in SECTIONS:
            return candidate
        parts.pop()
    return ""


def form_fields(source: Mapping[str, str]) -> dict[str, str]:
    """The definition form's own fields of a request's form (CSRF token, note and base version left out)."""
    return {name: str(value) for name, value in source.items() if name not in ("csrf_token", "base_sha", "note")}


def parse_params(raw: str) -> dict[str, Any] | None:
    """A params overrides box: a JSON object of at most ``FIELD_BYTES``, None when left empty."""
    if not raw.strip():
        return None
    try:
        return load_json_object(raw, max_bytes=FIELD_BYTES)
    except DocumentError as error:
        raise DefinitionInvalidError("params", str(error)) from None


def campaigns_context(readable: set[str], may_create: bool, links: PageLinks) -> dict[str, Any]:
    """The campaigns page's New button, definitions with errors, and campaigns Airflow has not loaded yet."""
    from campaign_runs.core import definition_status

    found = definition_status.broken_definitions()
    never = {entry.file.rsplit(".", 1)[0] for entry in found}  # a broken file is not waiting: it will not load
    waiting = [
        dag_id
        for dag_id in definition_status.waiting_definitions()
        if dag_id not in never and (may_create or dag_id in readable)
    ]
    broken = definition_status.visible_broken(found, readable, may_manage=may_create)  # errors quote the file
    return {"definition_links": links, "may_create": may_create, "broken_definitions": broken, "waiting": waiting}


def display_context(dag_id: str, rights: Mapping[str, bool], links: PageLinks) -> dict[str, Any]:
    """The campaign display's Configure link, campaign actions and version history."""
    from campaign_runs.core import definitions
    from campaign_runs.domain import CampaignRunsError

    try:
        state = definitions.definition_of(dag_id)
    except CampaignRunsError:
        state = None
    return {
        "definition_links": links,
        "definition": state,
        "definition_history": definitions.history(dag_id),
        "rights": dict(rights),
        "missed_explained": MISSED_EXPLAINED,
        "action_labels": ACTION_LABELS,
    }
