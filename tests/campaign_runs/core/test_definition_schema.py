"""The definition's JSON Schema follows the campaign factory: same fields, and the shipped campaigns conform."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from campaign_runs.adapters.definitions import factory
from campaign_runs.core.definition_schema import component_schema, definition_schema
from campaign_runs.core.definition_text import validate_text
from campaign_runs.domain import DefinitionInvalidError
from jsonschema import Draft202012Validator

from tests.campaign_runs.api.test_definitions import VALID

SHIPPED = sorted((Path(__file__).resolve().parents[3] / "dags" / "campaigns").glob("*.yaml"))


def _json(text: str) -> Any:
    """A YAML document as JSON would carry it (dates as ISO strings)."""
    return json.loads(json.dumps(yaml.safe_load(text), default=str))


def _properties(schema: dict[str, Any], *path: str) -> set[str]:
    node = schema
    for part in path:
        node = node["properties"][part]
    return set(node["properties"])


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(definition_schema())
    assert "$schema" not in component_schema() and component_schema()["properties"] == definition_schema()["properties"]


def test_the_schema_has_exactly_the_fields_the_factory_allows() -> None:
    """Fails when someone adds a field to ``spec.py``, ``channel_spec.py``, a channel or a transport and not to the
    schema, or back."""
    spec, _ = factory()
    channel_spec = importlib.import_module("campaign_runs.factory.channel_spec")
    adapters = importlib.import_module("campaign_runs.factory.channels").ChannelAdapter
    guard = importlib.import_module("campaign_runs.factory.guard")
    schema = definition_schema()

    assert _properties(schema) == set(spec.TOP_FIELDS)
    assert _properties(schema, "schedule") == set(spec.SCHEDULE_FIELDS)
    assert _properties(schema, "audience") == set(spec.AUDIENCE_FIELDS)
    assert _properties(schema, "channels") == set(adapters.registry) >= {"email", "sms", "push", "webhook"}
    for name, adapter in adapters.registry.items():
        transports = {t: a for (c, t), a in adapters.transports.items() if c == name}
        allowed = (
            set(channel_spec.CHANNEL_COMMON_FIELDS) | set(adapter.required_settings) | set(adapter.optional_settings)
        )
        allowed |= {guard.SETTING} | {key for a in transports.values() for key in a.transport_settings}
        channel = schema["properties"]["channels"]["properties"][name]
        assert _properties(schema, "channels", name) == allowed, name
        assert set(channel["required"]) == set(adapter.required_settings)
        assert set(channel["properties"]["transport"]["enum"]) == set(transports), name
        assert channel["properties"]["transport"]["default"] == adapter.transport
    assert _properties(schema, "channels", "email", "guard") == set(guard.FIELDS)
    assert schema["properties"]["delivery"]["enum"] == list(channel_spec.DELIVERIES)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_the_shipped_campaigns_conform(path: Path) -> None:
    errors = list(Draft202012Validator(definition_schema()).iter_errors(_json(path.read_text())))
    assert not errors, [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_the_shipped_campaigns_exist() -> None:
    assert {p.stem for p in SHIPPED} >= {"cart_abandonment", "flash_sale", "weekly_newsletter"}


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (("owner: alice", "owner: alice\nowner_phone: 1"), ""),
        (("id: cr_api_new", "id: ../x"), "id"),
        (("id: cr_api_new", "id: a/b"), "id"),
        (("batch_size: 25", "batch_size: 0"), "channels.email.batch_size"),
        (("batch_size: 25", "batch_size: 25\n    rate_limit_per_second: 0"), "channels.email.rate_limit_per_second"),
        (("batch_size: 25", "batch_size: 25\n    shards: 65"), "channels.email.shards"),
        (("batch_size: 25", "batch_size: 25\n    guard: {max_failed_percent: 101}"), "channels.email.guard"),
        (("  email:", "  fax:"), "channels"),
        (("batch_size: 25", "batch_size: 25\n    transport: pigeon"), "channels.email.transport"),
        (("batch_size: 25", "batch_size: 25\n    delivery: later"), "channels.email.delivery"),
        (("batch_size: 25", "batch_size: 25\n    conn_id: a b"), "channels.email.conn_id"),
        (("batch_size: 25", "batch_size: 25\n    configuration_set: news"), "channels.email"),  # ses's, not smtp's
        (("batch_size: 25", "batch_size: 25\n    transport: dry_run\n    configuration_set: news"), "channels.email"),
        (("owner: alice", "owner: alice\ndelivery: sometimes"), "delivery"),
    ],
)
def test_the_schema_refuses_what_the_factory_refuses(change: tuple[str, str], where: str) -> None:
    validator = Draft202012Validator(definition_schema())
    assert not list(validator.iter_errors(_json(VALID)))
    errors = list(validator.iter_errors(_json(VALID.replace(*change))))
    assert errors and any(".".join(map(str, e.absolute_path)).startswith(where) for e in errors), errors
    with pytest.raises(DefinitionInvalidError):  # the factory, and the plugin's own rules (a rate of 0)
        validate_text(VALID.replace(*change))


@pytest.mark.parametrize(
    "change",
    [
        ("batch_size: 25", "batch_size: 25\n    transport: ses\n    conn_id: aws_mail\n    configuration_set: news"),
        ("batch_size: 25", "batch_size: 25\n    transport: smtp\n    delivery: dry_run"),
        ("owner: alice", "owner: alice\ndelivery: dry_run"),
        ("  email:", '  webhook:\n    conn_id: crm\n    body: \'{"id": "$id"}\'\n  email:'),
        ("  email:", "  sms:\n    text: Hi\n    transport: sns\n    sms_type: Promotional\n  email:"),
    ],
)
def test_the_schema_takes_what_the_factory_takes(change: tuple[str, str]) -> None:
    errors = list(Draft202012Validator(definition_schema()).iter_errors(_json(VALID.replace(*change))))
    assert not errors, [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    assert validate_text(VALID.replace(*change))[0] == "cr_api_new"
