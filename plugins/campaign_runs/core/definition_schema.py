"""The JSON Schema (draft 2020-12) of a campaign definition, as the YAML files of the campaigns folder hold it.

Written from the campaign factory (``campaign_runs/factory/spec.py``, ``channel_spec.py`` and the channel
adapters), which stays the authority: the schema helps editors and API clients; a definition is only accepted
once the factory itself has validated it. The channels are generated from the factory's registry of channels
and transports (each transport's own settings allowed only beside ``transport:`` naming it), so a transport
registered later appears by itself; a test fails when the schema's fields and the factory's differ.
"""

from __future__ import annotations

import copy
import importlib
from typing import Any

SCHEMA_ID = "https://campaign-runs.example.com/schemas/campaign-definition.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
MAX_TEMPLATE_CHARS = 10_000  # as core.definitions checks it
MAX_CONNECTIONS = 32
MAX_SHARDS = 64
MAX_TIMEOUT_SECONDS = 24 * 3600
MAX_LINE_CHARS = 200  # a one-line setting (a header, a sender id): factory.fields.LINE_MAX
COLUMN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
CONN_ID = r"^[A-Za-z0-9_.-]{1,200}$"
DRY_RUN_NAME = "dry_run"  # factory.transports.DRY_RUN
DELIVERY: dict[str, Any] = {
    "enum": ["live", "dry_run"],
    "default": "live",
    "description": "`dry_run`: nothing is sent, each message is written to a local JSON-lines file instead.",
}
DEMO_FIELDS = ("segment", "criteria", "size", "population", "rotate_per_slot")

_TEXT: dict[str, Any] = {"type": "string", "minLength": 1, "pattern": r"\S"}


def _template(description: str) -> dict[str, Any]:
    return {
        **_TEXT,
        "maxLength": MAX_TEMPLATE_CHARS,
        "description": description + " `$first_name`, `${email}`... : recipient fields, the campaign's "
        "(`$campaign_id`, `$campaign_description`, `$run_id`), the demo audience's criteria, or a SQL or file "
        "audience's columns and mapped fields.",
    }


_GUARD: dict[str, Any] = {
    "type": "object",
    "description": "Stop the run when the channel's batches fail over a threshold (at least one of the two).",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "max_failed_percent": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 100,
            "description": "A batch failing over this share of its messages stops the run.",
        },
        "max_failing_batches_in_row": {
            "type": "integer",
            "minimum": 1,
            "description": "This many batches in a row with failures stop the run.",
        },
    },
}

_COMMON: dict[str, Any] = {
    "batch_size": {"type": "integer", "minimum": 1, "default": 500, "description": "Recipients per batch."},
    "rate_limit_per_second": {
        "type": "number",
        "exclusiveMinimum": 0,
        "description": "At most this many messages per second; leave it out for no limit.",
    },
    "connections": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_CONNECTIONS,
        "default": 1,
        "description": "Connections (senders) a channel task uses at once.",
    },
    "shards": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_SHARDS,
        "default": 1,
        "description": "Parallel tasks the channel's audience is split into.",
    },
    "guard": _GUARD,
    "consent_column": {
        "type": "string",
        "pattern": COLUMN,
        "description": "This channel's own consent column (with the audience's): a row without a yes is skipped.",
    },
    "conn_id": {
        "type": "string",
        "pattern": CONN_ID,
        "description": "The Airflow Connection the transport sends through (it holds every credential); "
        "default: the transport's own.",
    },
    "delivery": DELIVERY,
}
LABELS = {"email": "Email", "sms": "SMS", "push": "Push notifications", "webhook": "Webhook: a JSON body per recipient"}
# The channels' own settings, described by hand; a setting the factory adds is described from its name.
SETTINGS: dict[str, dict[str, Any]] = {
    "email": {
        "subject": _template("The subject."),
        "body": _template("The text of the message."),
        "from_name": {"type": "string", "default": "", "description": "The sender's display name."},
        "reply_to": {"type": "string", "default": "", "description": "The Reply-To address."},
    },
    "sms": {
        "text": _template("The message."),
        "sender": {"type": "string", "default": "CAMPAIGN", "description": "The sender id."},
    },
    "push": {
        "title": _template("The title."),
        "body": _template("The text."),
        "deep_link": {
            "type": "string",
            "maxLength": MAX_TEMPLATE_CHARS,
            "default": "",
            "description": "Where tapping the notification leads (placeholders as in the text).",
        },
    },
    "webhook": {
        "body": _template("A JSON object or array; placeholders are filled in its string values only."),
    },
}


def _setting(name: str, default: Any, one_line: bool, description: str = "") -> dict[str, Any]:
    """A text setting the factory reads (``Fields.text``): one line of at most 200 characters when it is a header."""
    shown = f" Default: `{default}`." if default not in (None, "") else ""
    text = description or f"`{name}`."
    return {**_TEXT, "maxLength": MAX_LINE_CHARS if one_line else MAX_TEMPLATE_CHARS, "description": text + shown}


def _transport_is(names: list[str], default: str) -> dict[str, Any]:
    """The channel's ``transport`` is one of ``names`` (left out, it is ``default``)."""
    test: dict[str, Any] = {"properties": {"transport": {"enum": names}}}
    return test if default in names else {**test, "required": ["transport"]}


def _transport_text(transport: str, adapter: Any, default: str) -> str:
    if transport == DRY_RUN_NAME:
        return "`dry_run` (nothing is sent)"
    where = f"Connection `{adapter.default_conn_id}`" if adapter.default_conn_id else "its Connection"
    return f"`{transport}` ({where}{', the default' if transport == default else ''})"


def _channel(name: str, base: Any, transports: dict[str, Any]) -> dict[str, Any]:
    """Channel ``name``'s schema: its settings, the common fields and each transport's own settings."""
    properties = copy.deepcopy(SETTINGS.get(name, {}))
    for key in (*base.required_settings, *base.optional_settings):
        if key not in properties:
            properties[key] = _setting(key, base.optional_settings.get(key), key in base.one_line_settings)
    owners: dict[str, list[str]] = {}  # a transport's own setting -> the transports that read it
    for transport, adapter in sorted(transports.items()):
        for key, default in adapter.transport_settings.items():
            if key not in properties or key in owners:
                owners.setdefault(key, []).append(transport)
                only = f"Only with `transport: {'` or `'.join(owners[key])}`."
                properties[key] = _setting(key, default, key in adapter.one_line_settings, only)
    common = copy.deepcopy(_COMMON)
    common["transport"] = {
        "enum": sorted(transports),
        "default": base.transport,
        "description": "How the channel delivers: "
        + ", ".join(_transport_text(t, a, base.transport) for t, a in sorted(transports.items()))
        + ".",
    }
    schema: dict[str, Any] = {
        "type": "object",
        "description": LABELS.get(name, name) + ".",
        "additionalProperties": False,
        "required": list(base.required_settings),
        "properties": {**properties, **common},
    }
    conditions = [
        {"if": {"required": [key]}, "then": _transport_is(names, base.transport)} for key, names in owners.items()
    ]
    if conditions:
        schema["allOf"] = conditions
    return schema


def channel_schemas() -> dict[str, Any]:
    """Every registered channel's schema (``ChannelAdapter.registry`` and its transports)."""
    from campaign_runs.factory.channels import ChannelAdapter as adapters

    importlib.import_module("campaign_runs.factory.transports")  # importing the package registers every transport
    channels = {}
    for name, base in sorted(adapters.registry.items()):
        transports = {t: adapter for (c, t), adapter in adapters.transports.items() if c == name}
        channels[name] = _channel(name, base, transports)
    return channels


def _source(name: str, required: list[str]) -> dict[str, Any]:
    """``source: <name>`` requires ``required`` and refuses the demo generator's fields."""
    return {
        "if": {"properties": {"source": {"const": name}}, "required": ["source"]},
        "then": {"required": required, "not": {"anyOf": [{"required": [field]} for field in DEMO_FIELDS]}},
    }


_AUDIENCE: dict[str, Any] = {
    "type": "object",
    "description": "Who receives the messages: a SQL query, a CSV or JSON-lines file, or the synthetic demo generator.",
    "additionalProperties": False,
    "properties": {
        "source": {
            "enum": ["sql", "file", "demo"],
            "default": "demo",
            "description": "`sql` (a query on an Airflow Connection), `file` (CSV or JSON lines) or `demo` "
            "(synthetic recipients, for examples and benchmarks).",
        },
        "description": {"type": "string", "description": "Who is in it, in words."},
        "conn_id": {
            "type": "string",
            "pattern": r"^[A-Za-z0-9_.-]{1,200}$",
            "description": "sql: the Airflow Connection of the database; file: an optional Connection (S3).",
        },
        "query": {
            **_TEXT,
            "description": "sql: the query; binds `:logical_date`, `:data_interval_start`, `:data_interval_end`, "
            "`:run_id` and the run's params.",
        },
        "url": {
            **_TEXT,
            "description": "file: `s3://...`, `file:///...` or a path relative to the campaign's YAML file.",
        },
        "format": {"enum": ["csv", "jsonl"], "description": "file: csv or jsonl (default: from the url's ending)."},
        "columns": {
            "type": "object",
            "propertyNames": {"pattern": COLUMN},
            "additionalProperties": {"type": "string", "pattern": COLUMN},
            "maxProperties": 50,
            "description": "Recipient field -> the source's column, e.g. {id: subscriber_id, email: mail}; "
            "`id`, `email`, `phone`, `push_token` are the key and the addresses.",
        },
        "consent_column": {
            "type": "string",
            "pattern": COLUMN,
            "description": "A column that must say yes (true, 1, yes...) for a row to be sent to.",
        },
        "timeout_seconds": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_TIMEOUT_SECONDS,
            "default": 300,
            "description": "sql: the query gives up after this many seconds.",
        },
        "segment": {"type": "string", "pattern": r"^[A-Za-z0-9_.:-]{1,80}$", "description": "demo: the segment."},
        "criteria": {"type": "object", "description": "demo: attribute: value; usable as placeholders."},
        "size": {"type": "integer", "minimum": 0, "description": "demo: recipients per run (<= population)."},
        "population": {"type": "integer", "minimum": 1, "description": "demo: the segment's whole population."},
        "rotate_per_slot": {"type": "boolean", "default": False, "description": "demo: other recipients each slot."},
    },
    "allOf": [
        _source("sql", ["conn_id", "query"]),
        _source("file", ["url"]),
        {
            "if": {"anyOf": [{"not": {"required": ["source"]}}, {"properties": {"source": {"const": "demo"}}}]},
            "then": {"required": ["segment"]},
        },
    ],
}

DEFINITION_SCHEMA: dict[str, Any] = {
    "$schema": DRAFT,
    "$id": SCHEMA_ID,
    "title": "Campaign definition",
    "description": "A campaign of the Campaign Runs plugin: one YAML file `<id>.yaml` in the campaigns folder.",
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "description", "owner", "owner_email", "schedule", "audience", "channels"],
    "properties": {
        "id": {
            "type": "string",
            "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$",
            "not": {"pattern": r"\.\."},
            "description": "The campaign's id, its DAG id and file name: letters, digits, `_`, `.`, `-`.",
        },
        "description": {**_TEXT, "description": "What the campaign is for."},
        "owner": {**_TEXT, "description": "The team or person who owns it."},
        "owner_email": {
            "type": "string",
            "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
            "description": "Where the owner gets the campaign's emails.",
        },
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "description": "Airflow DAG tags."},
        "delivery": {
            **DELIVERY,
            "description": "`dry_run`: no channel sends anything (each writes its messages "
            "to a local JSON-lines file); `live`: each channel as it says.",
        },
        "schedule": {
            "type": "object",
            "additionalProperties": False,
            "required": ["cron", "start_date"],
            "properties": {
                "cron": {
                    "type": ["string", "null"],
                    "description": "A five-field cron expression, a preset (`@hourly`, `@daily`...), or null "
                    "(or `manual`) for a campaign started by hand.",
                },
                "timezone": {**_TEXT, "default": "UTC", "description": "An IANA timezone, e.g. Europe/Paris."},
                "start_date": {
                    "type": "string",
                    "description": "An ISO 8601 date or date-time (e.g. 2025-01-06); in `timezone` unless it says.",
                },
                "catchup": {"type": "boolean", "default": False, "description": "Run the slots missed since then."},
                "not_before": {
                    "type": "string",
                    "description": "An ISO 8601 instant: no scheduled run for an earlier slot. Create and Resume "
                    "keep their own beside the file (`.campaign-runs/<id>.json`); the later of the two applies.",
                },
            },
        },
        "audience": _AUDIENCE,
        "channels": {
            "type": "object",
            "description": "The channels the campaign sends on (at least one).",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {},  # channel_schemas(), filled when the schema is asked for
        },
    },
}


def definition_schema() -> dict[str, Any]:
    """A copy of the JSON Schema of a campaign definition (draft 2020-12), with every registered channel."""
    schema = copy.deepcopy(DEFINITION_SCHEMA)
    schema["properties"]["channels"]["properties"] = channel_schemas()
    return schema


def component_schema() -> dict[str, Any]:
    """The schema as an OpenAPI 3.1 component (no ``$schema``/``$id``: the document's dialect applies)."""
    schema = definition_schema()
    schema.pop("$schema")
    schema.pop("$id")
    return schema
