"""New's and Configure's "Preview audience" (FAB pages): the edited YAML's audience, read, escaped, unsaved."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html import unescape
from pathlib import Path

import pytest
import yaml
from campaign_runs.core import definitions
from campaign_runs.pages import definition_form
from campaign_runs.tables import campaign_event
from campaign_runs.urls import FAB
from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import BASE, count, text
from tests.campaign_runs.pages.fab.test_definitions import FORM, NEW, configure_url, field_error, post, users
from tests.support.audience_db import HOSTILE_NAME, create_subscribers, sql_campaign, subscriber_rows
from tests.support.campaigns_folder import campaigns_folder, process_context  # noqa: F401

__all__ = ["users"]  # the fixture logging test users in

DAG_ID = "cr_ui_sql"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[Path]:
    """A private campaigns folder and sink directory."""
    with campaigns_folder(tmp_path, monkeypatch) as path:
        yield path


@pytest.fixture
def subscribers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "subscribers.db"
    for name, value in create_subscribers(path).items():
        monkeypatch.setenv(name, value)
    return path


def section(response: object) -> str:
    """The audience preview's HTML."""
    found = re.search(r'<section id="cr-audience-preview".*?</section>', response.text, re.S)  # type: ignore[attr-defined]
    assert found, "no audience preview in the page"
    return found.group(0)


def test_new_previews_the_demo_audience_of_the_form_and_saves_nothing(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    alice = users("alice")
    page = alice.get(NEW)
    assert f'formaction="{FAB.new_audience_path()}"' in page.text and 'id="cr-preview-audience"' in page.text

    response = post(alice, FAB.new_audience_path(), {**FORM, "audience.size": "7", "note": "<b>x</b>"})

    assert response.status_code == 200, text(response)[:500]
    shown = section(response)
    assert "<strong>demo audience (synthetic)</strong>" in shown and 'data-count="7"' in shown
    assert len(re.findall(r"<tr data-position=", shown)) == 7
    assert re.search(r'<div class="cr-audience-message" data-channel="email">', shown)
    assert "your gold plan has a gift." in unescape(shown)
    assert 'value="7"' in response.text and "&lt;b&gt;x&lt;/b&gt;" in response.text  # the form is kept, escaped
    assert list(folder.iterdir()) == [] and count(campaign_event) == 0


def test_configure_previews_a_sql_audience_escaped_and_writes_nothing(
    folder: Path, users: Callable[[str], TestClient], subscribers: Path, tmp_path: Path
) -> None:
    saved = definitions.create_definition(sql_campaign(DAG_ID), actor="alice", note="")
    before_file, before_rows = (folder / f"{DAG_ID}.yaml").read_text(), subscriber_rows(subscribers)
    alice = users("alice")
    form = {**definition_form.form_of(yaml.safe_load(saved.text)), "base_sha": saved.sha}
    assert 'id="cr-preview-audience"' in alice.get(configure_url(DAG_ID)).text

    response = post(alice, FAB.configure_audience_path(DAG_ID), form)

    assert response.status_code == 200, text(response)[:500]
    shown = section(response)
    assert "<strong>SQL query on Connection subscribers_db</strong>" in shown and 'data-count="4"' in shown
    assert '<td data-skipped="invalid_address">not-an-address' in shown
    assert HOSTILE_NAME not in response.text and "first_name=&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "News for Ann (s0)" in shown
    assert (folder / f"{DAG_ID}.yaml").read_text() == before_file and subscriber_rows(subscribers) == before_rows
    assert [e.version for e in definitions.history(DAG_ID)] == [1] and not (tmp_path / "sinks").exists()


def test_an_unreadable_audience_is_shown_beside_its_query(
    folder: Path, users: Callable[[str], TestClient], subscribers: Path
) -> None:
    saved = definitions.create_definition(sql_campaign(DAG_ID), actor="alice", note="")
    broken = saved.text.replace("FROM subscribers", "FROM missing_table")
    form = {**definition_form.form_of(yaml.safe_load(broken)), "base_sha": saved.sha}

    response = post(users("alice"), FAB.configure_audience_path(DAG_ID), form)

    assert response.status_code == 422
    assert field_error(response, "audience.query") == (
        "the audience cannot be read: the query failed: no such table: missing_table"
    )
    assert 'id="cr-audience-preview"' not in response.text


def test_the_preview_needs_the_csrf_token_and_the_right_to_create(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    alice = users("alice")
    refused = post(alice, FAB.new_audience_path(), FORM, token=False)
    assert refused.status_code == 400 and 'id="cr-audience-preview"' not in refused.text
    viewer = post(users("viewer"), FAB.new_audience_path(), FORM)
    assert viewer.status_code == 403 and 'id="cr-audience-preview"' not in viewer.text
    assert BASE in FAB.new_audience_path() and list(folder.iterdir()) == []


def test_configure_writes_a_sql_audience_from_the_form(
    folder: Path, users: Callable[[str], TestClient], subscribers: Path
) -> None:
    first = definitions.create_definition(
        definitions.dump(definition_form.mapping_of({**FORM, "id": DAG_ID})), actor="alice", note=""
    )
    alice = users("alice")
    page = alice.get(configure_url(DAG_ID))
    assert re.search(r'<option value="demo" selected>', page.text) and 'name="audience.query"' in page.text
    sql = {
        **FORM,
        "id": DAG_ID,
        "base_sha": first.sha,
        "audience.source": "sql",
        "audience.conn_id": "subscribers_db",
        "audience.query": "SELECT subscriber_id, email, first_name, opted_in\nFROM subscribers",
        "audience.columns": "{id: subscriber_id}",
        "audience.consent_column": "opted_in",
        "audience.timeout_seconds": "60",
        "channels.email.body": "Hello $first_name ($subscriber_id)",
    }

    preview = post(alice, FAB.configure_audience_path(DAG_ID), sql)
    assert preview.status_code == 200 and 'data-count="5"' in section(preview)
    assert [e.version for e in definitions.history(DAG_ID)] == [1]  # a preview saves nothing
    saved = post(alice, configure_url(DAG_ID), sql)

    assert saved.status_code == 303, text(saved)[:500]
    audience = yaml.safe_load((folder / f"{DAG_ID}.yaml").read_text())["audience"]
    assert audience == {
        "source": "sql",
        "conn_id": "subscribers_db",
        "query": "SELECT subscriber_id, email, first_name, opted_in\nFROM subscribers",
        "consent_column": "opted_in",
        "columns": {"id": "subscriber_id"},
        "timeout_seconds": 60,
    }
    again = alice.get(configure_url(DAG_ID))
    assert re.search(r'<option value="sql" selected>', again.text)
    assert 'name="audience.columns" rows="2"' in again.text and "{id: subscriber_id}</textarea>" in again.text
    current = definitions.sha_of((folder / f"{DAG_ID}.yaml").read_text())
    refused = post(alice, configure_url(DAG_ID), {**sql, "base_sha": current, "audience.conn_id": "nowhere_db"})
    assert refused.status_code == 422 and "the Connection 'nowhere_db' does not exist" in unescape(refused.text)
    assert [e.version for e in definitions.history(DAG_ID)] == [2, 1]
