"""``POST .../campaigns/{dag_id}/check`` and ``/test-send`` on the real API-server app, with a real SMTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from campaign_runs.tables import campaign_event, run_summary
from fastapi.testclient import TestClient

from tests.campaign_runs.api.test_definitions import PREFIX, client, error, openapi, tokens
from tests.campaign_runs.core.helpers import count
from tests.support.campaigns_folder import campaigns_folder, process_context  # noqa: F401
from tests.support.definitions import valid_definition
from tests.support.inbox_smtp import Inbox, inbox_smtp

__all__ = ["client", "openapi", "tokens"]  # module fixtures shared with the definitions API tests

DAG_ID = "cr_api_trial"
TEXT = valid_definition(DAG_ID)
CHECK = f"{PREFIX}/campaigns/{DAG_ID}/check"
SEND = f"{PREFIX}/campaigns/{DAG_ID}/test-send"
SECRET = "smtp-pw-4b1d-never-shown"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[Path]:
    """A private campaigns folder holding the campaign, and a sink directory nothing may create."""
    with campaigns_folder(tmp_path, monkeypatch, TEXT) as path:
        yield path


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with inbox_smtp(monkeypatch) as handler:
        yield handler


def sent_nothing(inbox: Inbox, folder: Path, tmp_path: Path) -> None:
    """No message, no history entry beyond version 1, the file as saved, nothing of a run."""
    assert inbox.attempts == [] and count(campaign_event) == 1
    assert (folder / f"{DAG_ID}.yaml").read_text() == TEXT
    assert count(run_summary) == 0 and not (tmp_path / "sinks").exists()


def test_test_send_reaches_only_the_given_addresses_and_is_kept_in_the_history(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path, inbox: Inbox, tmp_path: Path
) -> None:
    body = {"to": ["ann@example.org", "bob@example.org"], "channel": "email", "fields": {"first_name": "Zoé"}}

    answer = client.post(SEND, json=body, headers=tokens["alice"])

    assert answer.status_code == 200, answer.text
    sends = answer.json()["sends"]
    assert [(s["channel"], s["transport"], s["to"], s["sent"], s["answer"]) for s in sends] == [
        ("email", "smtp", "ann@example.org", True, "sent"),
        ("email", "smtp", "bob@example.org", True, "sent"),
    ]
    assert sends[0]["content"]["subject"] == "[TEST] Spring for Zoé"
    assert sorted(inbox.received()) == [
        ("ann@example.org", "[TEST] Spring for Zoé"),
        ("bob@example.org", "[TEST] Spring for Zoé"),
    ]
    history = client.get(f"{PREFIX}/campaigns/{DAG_ID}/history", headers=tokens["viewer"]).json()["entries"]
    entry = history[0]
    assert (entry["kind"], entry["actor"], entry["version"]) == ("test_send", "alice", None)
    assert entry["details"]["channels"] == {"email": {"transport": "smtp", "addresses": 2, "sent": 2}}
    assert "example.org" not in json.dumps(history)
    assert count(run_summary) == 0 and not (tmp_path / "sinks").exists()


def test_an_unsaved_yaml_is_tried_instead_of_the_saved_one_and_validated_as_a_save(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path, inbox: Inbox, tmp_path: Path
) -> None:
    unsaved = TEXT.replace("Spring for", "Summer for")
    answer = client.post(SEND, json={"to": ["ann@example.org"], "yaml": unsaved}, headers=tokens["bob"])
    assert answer.status_code == 200, answer.text
    assert inbox.received()[0][1].startswith("[TEST] Summer for ")

    checks = client.post(CHECK, json={"yaml": unsaved + "delivery: dry_run\n"}, headers=tokens["bob"])
    assert checks.json() == {
        "campaign": DAG_ID,
        "checks": [
            {
                "channel": "email",
                "transport": "smtp (dry run)",
                "conn_id": "",
                "ok": True,
                "answer": "dry run: nothing is sent",
            }
        ],
    }
    invalid = error(
        client.post(SEND, json={"to": ["ann@example.org"], "yaml": unsaved.replace("25", "0")}, headers=tokens["bob"]),
        422,
        "invalid_definition",
        "at least 1",
    )
    assert invalid["field"] == "channels.email.batch_size"
    renamed = client.post(CHECK, json={"yaml": unsaved.replace(DAG_ID, "cr_other")}, headers=tokens["bob"])
    assert error(renamed, 422, "invalid_definition", "keeps its id")["field"] == "id"
    assert len(inbox.messages) == 1 and (folder / f"{DAG_ID}.yaml").read_text() == TEXT


def test_check_answers_per_channel_and_never_shows_the_secret(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok = client.post(CHECK, json={}, headers=tokens["alice"])
    assert ok.json()["checks"] == [
        {"channel": "email", "transport": "smtp", "conn_id": "campaign_smtp", "ok": True, "answer": "smtp: connected"}
    ]
    # The server asks for a login it cannot take over plain text: the login fails, with the password tried.
    broken = {"conn_type": "smtp", "host": "127.0.0.1", "port": inbox.port, "login": "shop", "password": SECRET}
    monkeypatch.setenv("AIRFLOW_CONN_CAMPAIGN_SMTP", json.dumps({**broken, "extra": {"starttls": False}}))
    failed = client.post(CHECK, json={}, headers=tokens["alice"]).json()["checks"][0]
    assert failed["answer"] == "SMTPNotSupportedError: SMTP AUTH extension not supported by server."
    assert failed["ok"] is False and SECRET not in json.dumps(failed)
    assert inbox.messages == []


@pytest.mark.parametrize("username", ["viewer", "editor"])
def test_who_may_not_configure_gets_403_and_nothing_is_sent(
    client: TestClient,
    tokens: dict[str, dict[str, str]],
    folder: Path,
    inbox: Inbox,
    tmp_path: Path,
    username: str,
) -> None:
    for url, body in ((SEND, {"to": ["ann@example.org"]}), (CHECK, {})):
        error(client.post(url, json=body, headers=tokens[username]), 403, "forbidden", "Campaign Definitions")
    sent_nothing(inbox, folder, tmp_path)


@pytest.mark.parametrize(
    ("url", "body", "status", "code", "words"),
    [
        (SEND, {"to": [f"u{n}@example.org" for n in range(11)]}, 422, "invalid_request", "to"),
        (SEND, {"to": []}, 422, "invalid_request", "to"),
        (SEND, {"to": ["ann@example.org", "ann@"]}, 422, "invalid_option", "'ann@' is not an email address"),
        (SEND, {"to": ["ann@example.org"], "channel": "fax"}, 422, "invalid_option", "Unknown channel 'fax'"),
        (SEND, {"to": ["ann@example.org"], "fields": {"plan": {"x": 1}}}, 422, "invalid_request", "fields"),
        (SEND, {"to": ["ann@example.org"], "fields": {"first name": "x"}}, 422, "invalid_option", "column name"),
        (SEND, {"to": ["ann@example.org"], "cc": ["x@example.org"]}, 422, "invalid_request", "cc"),
        (SEND, {"to": "ann@example.org"}, 422, "invalid_request", "to"),
        (f"{PREFIX}/campaigns/cr_no_such/test-send", {"to": ["ann@example.org"]}, 404, "not_found", "cr_no_such"),
        (f"{PREFIX}/campaigns/cr_campaign/check", {}, 409, "conflict", "Python"),
    ],
)
def test_bad_requests_get_a_clear_error_and_nothing_is_sent(
    client: TestClient,
    tokens: dict[str, dict[str, str]],
    folder: Path,
    inbox: Inbox,
    tmp_path: Path,
    url: str,
    body: dict[str, Any],
    status: int,
    code: str,
    words: str,
) -> None:
    error(client.post(url, json=body, headers=tokens["alice"]), status, code, words)
    sent_nothing(inbox, folder, tmp_path)


def test_anonymous_requests_are_refused(client: TestClient, folder: Path, inbox: Inbox, tmp_path: Path) -> None:
    assert client.post(SEND, json={"to": ["ann@example.org"]}).status_code == 401
    assert client.post(CHECK, json={}).status_code == 401
    sent_nothing(inbox, folder, tmp_path)


def test_real_answers_conform_to_the_openapi_document(
    openapi: Any, tokens: dict[str, dict[str, str]], folder: Path, inbox: Inbox
) -> None:
    def call(path: str, expect: int, user: str = "alice", **parts: Any) -> Any:
        response = openapi[path]["POST"].Case(**parts).call_and_validate(headers=tokens[user])
        assert response.status_code == expect, response.text
        return response.json()

    campaign = {"dag_id": DAG_ID}
    call("/campaigns/{dag_id}/check", 200, path_parameters=campaign, body={})
    call("/campaigns/{dag_id}/test-send", 200, path_parameters=campaign, body={"to": ["ann@example.org"]})
    call("/campaigns/{dag_id}/test-send", 422, path_parameters=campaign, body={"to": ["ann@"]})
    call("/campaigns/{dag_id}/test-send", 403, user="viewer", path_parameters=campaign, body={"to": ["a@b.org"]})
    call("/campaigns/{dag_id}/check", 409, path_parameters={"dag_id": "cr_campaign"}, body={})
