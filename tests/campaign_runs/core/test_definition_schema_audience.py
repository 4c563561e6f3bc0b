"""The definition's JSON Schema takes SQL and file audiences as the factory does, and refuses what it refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from campaign_runs.adapters.definitions import factory
from campaign_runs.core.definition_schema import definition_schema
from jsonschema import Draft202012Validator

from tests.support.audience_db import sql_campaign

FILE_AUDIENCE = {"source": "file", "url": "audiences/news.csv", "columns": {"id": "user_id"}}


def _data(change: tuple[str, str] = ("", "")) -> Any:
    return json.loads(json.dumps(yaml.safe_load(sql_campaign("cr_schema").replace(*change)), default=str))


def _errors(data: Any) -> list[str]:
    found = Draft202012Validator(definition_schema()).iter_errors(data)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def test_a_sql_and_a_file_audience_conform_and_the_factory_takes_them() -> None:
    spec, _ = factory()
    sql = _data(("  consent_column: opted_in", "  consent_column: opted_in\n  timeout_seconds: 60"))
    sql["channels"]["email"]["consent_column"] = "email_ok"
    assert _errors(sql) == []
    assert spec.parse_spec(sql, Path("/campaigns/cr_schema.yaml")).audience.timeout_seconds == 60
    on_file = {**_data(), "audience": FILE_AUDIENCE}
    assert _errors(on_file) == []
    assert spec.parse_spec(on_file, Path("/campaigns/cr_schema.yaml")).audience.format == "csv"


@pytest.mark.parametrize(
    ("audience", "where"),
    [
        ({"source": "sql", "conn_id": "db"}, "audience"),  # no query
        ({"source": "sql", "query": "SELECT 1"}, "audience"),  # no conn_id
        ({"source": "file"}, "audience"),  # no url
        ({"source": "sql", "conn_id": "db", "query": "SELECT 1", "segment": "x"}, "audience"),  # a demo field
        ({"source": "ftp", "url": "x"}, "audience.source"),
        ({"source": "file", "url": "a.csv", "format": "xml"}, "audience.format"),
        ({"source": "sql", "conn_id": "db", "query": "SELECT 1", "columns": {"id": "no such"}}, "audience.columns"),
        ({"source": "sql", "conn_id": "db", "query": "SELECT 1", "timeout_seconds": 0}, "audience.timeout_seconds"),
        ({"criteria": {"plan": "gold"}}, "audience"),  # the demo source needs a segment
    ],
    ids=["no-query", "no-conn-id", "no-url", "demo-field", "unknown-source", "format", "column", "timeout", "demo"],
)
def test_the_schema_refuses_what_the_factory_refuses(audience: dict[str, Any], where: str) -> None:
    from campaign_runs.factory.spec import CampaignSpecError

    data = {**_data(), "audience": audience}
    errors = _errors(data)
    assert errors and any(error.startswith(where) for error in errors), errors
    with pytest.raises(CampaignSpecError):
        factory()[0].parse_spec(data, Path("/campaigns/cr_schema.yaml"))
