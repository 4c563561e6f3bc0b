"""The JSON Schema (draft 2020-12) of a campaign definition, as the YAML files of the campaigns folder hold it.

Hand-written from the campaign factory (``campaign_runs/factory/spec.py`` and the channel adapters), which
stays the authority: the schema helps editors and API clients; a definition is only accepted once the
factory itself has validated it. A test fails when the schema's fields and the factory's differ.
"""

from __future__ import annotations

import copy
from typing import Any

SCHEMA_ID = "https://campaign-runs.example.com/schemas/campaign-definition.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
MAX_TEMPLATE_CHARS = 10_000  # as core.definitions checks it
MAX_CONNECTIONS = 32
MAX_SHARDS = 64
MAX_TIMEOUT_SECONDS = 24 * 3600
COLUMN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
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
}


def _channel(description: str, required: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": False,
        "required": required,
        "properties": {**settings, **copy.deepcopy(_COMMON)},
    }


CHANNELS: dict[str, Any] = {
    "email": _channel(
        "Email over SMTP (Airflow Connection `campaign_smtp`).",
        ["subject", "body"],
        {
            "subject": _template("The subject."),
            "body": _template("The text of the message."),
            "from_name": {"type": "string", "default": "", "description": "The sender's display name."},
            "reply_to": {"type": "string", "default": "", "description": "The Reply-To address."},
        },
    ),
    "sms": _channel(
        "SMS.",
        ["text"],
        {
            "text": _template("The message."),
            "sender": {"type": "string", "default": "CAMPAIGN", "description": "The sender id."},
        },
    ),
    "push": _channel(
        "Push notifications.",
        ["title", "body"],
        {
            "title": _template("The title."),
            "body": _template("The text."),
            "deep_link": {
                "type": "string",
                "maxLength": MAX_TEMPLATE_CHARS,
                "default": "",
                "description": "Where tapping the notification leads (placeholders as in the text).",
            },
        },
    ),
}


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
            "properties": CHANNELS,
        },
    },
}


def definition_schema() -> dict[str, Any]:
    """A copy of the JSON Schema of a campaign definition (draft 2020-12)."""
    return copy.deepcopy(DEFINITION_SCHEMA)


def component_schema() -> dict[str, Any]:
    """The schema as an OpenAPI 3.1 component (no ``$schema``/``$id``: the document's dialect applies)."""
    schema = definition_schema()
    schema.pop("$schema")
    schema.pop("$id")
    return schema
