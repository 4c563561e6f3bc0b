"""Configure's "Check connections" and "Send test" (FAB pages): the form's definition tried, escaped, unsaved."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import yaml
from campaign_runs.core import definitions
from campaign_runs.pages import definition_form
from campaign_runs.tables import campaign_event, run_summary
from campaign_runs.urls import FAB
from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import count, text
from tests.campaign_runs.pages.fab.test_definitions import configure_url, field_error, post, users
from tests.support.campaigns_folder import campaigns_folder, process_context  # noqa: F401
from tests.support.definitions import valid_definition
from tests.support.inbox_smtp import Inbox, inbox_smtp

__all__ = ["users"]  # the fixture logging test users in

DAG_ID = "cr_ui_trial"
TEXT = valid_definition(DAG_ID)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[Path]:
    """A private campaigns folder holding the campaign, and a sink directory nothing may create."""
    with campaigns_folder(tmp_path, monkeypatch, TEXT) as path:
        yield path


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with inbox_smtp(monkeypatch) as handler:
        yield handler


def form(**changes: str) -> dict[str, str]:
    """The Configure form as the page fills it from the saved YAML, with ``changes``."""
    state = definitions.definition_of(DAG_ID)
    return {**definition_form.form_of(yaml.safe_load(TEXT)), "base_sha": state.sha or "", **changes}


def results(response: Any) -> str:
    """The answers' HTML."""
    found = re.search(r'<section id="cr-trial-results".*?</section>', response.text, re.S)
    assert found, "no results in the page: " + text(response)[:300]
    return found.group(0)


def trial_error(response: Any) -> str:
    found = re.search(r'data-field="trial"[^>]*>(.*?)</div>', response.text, re.S)
    return " ".join(unescape(found.group(1)).split()) if found else ""


def untouched(folder: Path, tmp_path: Path) -> None:
    """The campaign is version 1 as saved; nothing of a run was written."""
    assert (folder / f"{DAG_ID}.yaml").read_text() == TEXT
    assert [e.version for e in definitions.history(DAG_ID) if e.version] == [1]
    assert count(run_summary) == 0 and not (tmp_path / "sinks").exists()


def test_configure_offers_both_and_the_form_chooses_transport_connection_and_delivery(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    page = users("alice").get(configure_url(DAG_ID))

    assert f'formaction="{FAB.check_path(DAG_ID)}"' in page.text
    assert f'formaction="{FAB.test_send_path(DAG_ID)}"' in page.text
    assert 'name="trial.to"' in page.text and 'name="trial.channel"' in page.text
    for name in ("channels.email.transport", "channels.email.conn_id", "channels.sms.delivery", "delivery"):
        assert f'name="{name}"' in page.text, name
    assert re.search(r'<option value="ses"\s*>ses</option>', page.text)
    assert 'id="cr-send-test"' not in users("alice").get(f"{FAB.new_path()}").text


def test_send_test_sends_the_unsaved_form_to_the_given_addresses_escaped_and_saves_nothing(
    folder: Path, users: Callable[[str], TestClient], inbox: Inbox, tmp_path: Path
) -> None:
    changes = {"channels.email.subject": "New <b>$first_name</b>", "trial.to": "ann@example.org\r\nbob@example.org"}

    response = post(users("alice"), FAB.test_send_path(DAG_ID), form(**changes))

    assert response.status_code == 200, text(response)[:500]
    subjects = {subject for _, subject in inbox.received()}
    assert sorted(to for to, _ in inbox.received()) == ["ann@example.org", "bob@example.org"]
    (subject,) = subjects
    assert subject.startswith("[TEST] New <b>") and subject.endswith("</b>")
    shown = results(response)
    assert len(re.findall(r'<tr data-channel="email" data-sent="yes">', shown)) == 2
    assert "New <b>" not in response.text and "[TEST] New &lt;b&gt;" in shown
    assert "New &lt;b&gt;$first_name&lt;/b&gt;" in response.text  # the unsaved change stays in the form
    entries = [e for e in definitions.history(DAG_ID) if e.kind == "test_send"]
    assert [(e.actor, e.version) for e in entries] == [("alice", None)] and "example.org" not in str(entries[0])
    untouched(folder, tmp_path)


def test_check_connections_shows_each_channel(
    folder: Path, users: Callable[[str], TestClient], inbox: Inbox, tmp_path: Path
) -> None:
    sms = {"channels.sms.enabled": "on", "channels.sms.text": "Hi", "channels.sms.delivery": "dry_run"}

    response = post(users("bob"), FAB.check_path(DAG_ID), form(**sms))

    assert response.status_code == 200, text(response)[:500]
    shown = results(response)
    assert re.search(r'<tr data-channel="email" data-ok="yes">.*?smtp: connected', shown, re.S)
    assert re.search(r'<tr data-channel="sms" data-ok="yes">.*?dry run: nothing is sent', shown, re.S)
    assert inbox.attempts == [] and count(campaign_event) == 1
    untouched(folder, tmp_path)


@pytest.mark.parametrize(
    ("changes", "slot", "words"),
    [
        ({"trial.to": "\n".join(f"u{n}@example.org" for n in range(11))}, "trial", "11 addresses"),
        ({"trial.to": "ann@example.org, <b>ann@</b>"}, "trial", "'<b>ann@</b>' is not an email address"),
        ({"trial.to": ""}, "trial", "Give at least one address"),
        ({"trial.to": "ann@example.org", "trial.channel": "push"}, "trial", "Unknown channel 'push'"),
        ({"trial.to": "ann@example.org", "channels.email.batch_size": "0"}, "channels.email.batch_size", "at least 1"),
        ({"trial.to": "ann@example.org", "channels.email.transport": "pigeon"}, "channels.email.transport", "pigeon"),
    ],
)
def test_bad_input_is_shown_beside_its_field_and_nothing_is_sent(
    folder: Path,
    users: Callable[[str], TestClient],
    inbox: Inbox,
    tmp_path: Path,
    changes: dict[str, str],
    slot: str,
    words: str,
) -> None:
    response = post(users("alice"), FAB.test_send_path(DAG_ID), form(**changes))

    assert response.status_code == 422, text(response)[:500]
    shown = trial_error(response) if slot == "trial" else field_error(response, slot)
    assert words in shown, shown
    assert 'id="cr-trial-results"' not in response.text and "<b>ann@" not in response.text
    assert inbox.attempts == [] and count(campaign_event) == 1
    untouched(folder, tmp_path)


def test_both_need_the_csrf_token_and_what_configure_needs(
    folder: Path, users: Callable[[str], TestClient], inbox: Inbox, tmp_path: Path
) -> None:
    data = form(**{"trial.to": "ann@example.org"})
    alice = users("alice")
    for url in (FAB.test_send_path(DAG_ID), FAB.check_path(DAG_ID)):
        refused = post(alice, url, data, token=False)
        assert refused.status_code == 400 and 'id="cr-trial-results"' not in refused.text
        for username in ("viewer", "editor"):
            forbidden = post(users(username), url, data)
            assert forbidden.status_code == 403 and 'id="cr-trial-results"' not in forbidden.text
    assert post(alice, FAB.check_path("cr_no_such"), data).status_code == 404
    assert inbox.attempts == [] and count(campaign_event) == 1
    untouched(folder, tmp_path)


def test_the_form_writes_transport_connection_and_delivery_into_the_yaml(folder: Path) -> None:
    changes = {
        "delivery": "dry_run",
        "channels.email.transport": "ses",
        "channels.email.conn_id": "aws_mail",
        "channels.email.delivery": "",
    }
    data = definition_form.mapping_of(form(**changes), yaml.safe_load(TEXT))
    assert data["delivery"] == "dry_run"
    assert {k: data["channels"]["email"].get(k) for k in ("transport", "conn_id", "delivery")} == {
        "transport": "ses",
        "conn_id": "aws_mail",
        "delivery": None,
    }
    assert definition_form.form_of(data)["channels.email.transport"] == "ses"
    assert "transport" not in definition_form.mapping_of(form(), yaml.safe_load(TEXT))["channels"]["email"]
    posted = {k: v for k, v in form().items() if k != "delivery"}  # an older page: the YAML's value is kept
    assert definition_form.mapping_of(posted, {**yaml.safe_load(TEXT), "delivery": "dry_run"})["delivery"] == "dry_run"


def test_a_webhook_channel_from_the_form_is_tried_as_a_dry_run(
    folder: Path, users: Callable[[str], TestClient], inbox: Inbox, tmp_path: Path
) -> None:
    webhook = {
        "channels.webhook.enabled": "on",
        "channels.webhook.body": '{"user": "$id", "plan": "$plan"}',
        "channels.webhook.conn_id": "crm_hook",
        "channels.webhook.delivery": "dry_run",
        "trial.to": "crm-7",
        "trial.channel": "webhook",
    }

    response = post(users("alice"), FAB.test_send_path(DAG_ID), form(**webhook))

    assert response.status_code == 200, text(response)[:500]
    shown = unescape(results(response))
    assert re.search(r'<tr data-channel="webhook" data-sent="no">.*?crm-7.*?dry run: not sent', shown, re.S)
    assert '{"campaign_test":"[TEST]","user":"crm-7","plan":"gold"}' in shown
    checks = results(post(users("alice"), FAB.check_path(DAG_ID), form(**webhook)))
    assert re.search(r'<tr data-channel="webhook" data-ok="yes"><td>webhook</td><td>http \(dry run\)</td>', checks)
    assert inbox.attempts == [] and not (tmp_path / "sinks").exists()
    assert (folder / f"{DAG_ID}.yaml").read_text() == TEXT
