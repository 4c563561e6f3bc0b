"""``GET /campaign-runs/campaigns/{dag_id}/audience`` and validating SQL audiences, on the real API-server app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_runs.tables import campaign_event
from fastapi.testclient import TestClient

from tests.campaign_runs.api.test_definitions import PREFIX, client, error, tokens
from tests.campaign_runs.core.helpers import count
from tests.support.audience_db import HOSTILE_NAME, create_subscribers, sql_campaign, subscriber_rows
from tests.support.campaigns_folder import campaigns_folder, process_context  # noqa: F401

__all__ = ["client", "tokens"]  # module fixtures shared with the definitions API tests

DAG_ID = "cr_api_sql"
URL = f"{PREFIX}/campaigns/{DAG_ID}/audience"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private campaigns folder and sink directory."""
    with campaigns_folder(tmp_path, monkeypatch) as path:
        yield path


@pytest.fixture
def subscribers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "subscribers.db"
    for name, value in create_subscribers(path).items():
        monkeypatch.setenv(name, value)
    return path


def test_the_preview_is_served_to_who_may_read_the_campaign_and_writes_nothing(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path, subscribers: Path, tmp_path: Path
) -> None:
    (folder / f"{DAG_ID}.yaml").write_text(sql_campaign(DAG_ID))
    before = subscriber_rows(subscribers)

    response = client.get(URL, params={"limit": 4}, headers=tokens["viewer"])

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["campaign"], body["source"], body["count"], body["columns"]) == (
        DAG_ID,
        "sql",
        4,
        ["subscriber_id", "email", "first_name", "opted_in"],
    )
    assert [(r["position"], r["id"], r["skipped"]["email"]) for r in body["rows"]] == [
        (0, "s0", None),
        (1, "s1", "invalid_address"),
        (2, "s2", "no_consent"),
        (3, "s3", None),
    ]
    assert body["rows"][3]["fields"]["first_name"] == HOSTILE_NAME  # JSON carries it as data
    assert body["messages"] == [
        {
            "channel": "email",
            "recipient": "s0",
            "position": 0,
            "content": {"subject": "Hello Ann", "body": "News for Ann (s0)"},
        }
    ]
    assert subscriber_rows(subscribers) == before and not (tmp_path / "sinks").exists()
    assert client.get(URL, params={"limit": 0}, headers=tokens["alice"]).json()["rows"] == []


def test_unknown_unreadable_and_bad_requests_get_their_errors(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path, subscribers: Path
) -> None:
    assert client.get(URL).status_code == 401
    error(client.get(URL, headers=tokens["alice"]), 404, "not_found", f"No campaign '{DAG_ID}'")
    error(client.get(f"{PREFIX}/campaigns/cr_campaign/audience", headers=tokens["alice"]), 409, "conflict", "Python")
    (folder / f"{DAG_ID}.yaml").write_text(sql_campaign(DAG_ID).replace("FROM subscribers", "FROM missing_table"))
    unreadable = error(
        client.get(URL, headers=tokens["alice"]),
        422,
        "audience_unreadable",
        "the audience cannot be read: the query failed: no such table: missing_table",
    )
    assert unreadable["field"] == "audience.query"
    error(client.get(URL, params={"limit": 101}, headers=tokens["alice"]), 422, "invalid_request", "limit")


def test_validate_and_create_refuse_a_template_naming_a_missing_column(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path, subscribers: Path
) -> None:
    good = client.post(f"{PREFIX}/definitions/validate", json={"yaml": sql_campaign(DAG_ID)}, headers=tokens["alice"])
    assert good.json() == {"dag_id": DAG_ID, "valid": True}
    bad = sql_campaign(DAG_ID).replace("($subscriber_id)", "($voucher)")
    for path in ("/definitions/validate", "/campaigns"):
        refused = error(
            client.post(f"{PREFIX}{path}", json={"yaml": bad}, headers=tokens["alice"]),
            422,
            "invalid_definition",
            "the source has no column 'voucher' (unknown placeholder $voucher",
        )
        assert refused["field"] == "channels.email.body"
    unknown = bad.replace("conn_id: subscribers_db", "conn_id: nowhere_db")
    refused = error(
        client.post(f"{PREFIX}/campaigns", json={"yaml": unknown}, headers=tokens["alice"]),
        422,
        "invalid_definition",
        "the Connection 'nowhere_db' does not exist",
    )
    assert refused["field"] == "audience.conn_id"
    assert list(folder.iterdir()) == [] and count(campaign_event) == 0
