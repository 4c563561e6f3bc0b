"""New campaign, Configure and the campaign actions through the FAB pages, with a real login, on the real DB.

Each test has its own definitions folder (``[campaign_runs] definitions_folder``); the factory that validates
is the one in the repository's DAGs folder, as the dag-processor runs it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import yaml
from campaign_runs.core import definitions
from campaign_runs.settings import get_settings
from campaign_runs.tables import campaign_event, run_action
from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import (
    BASE,
    HOSTILE,
    count,
    csrf_token,
    dag_run_count,
    flashes,
    is_paused,
    login,
    run_url,
    text,
)
from tests.support.fixtures import one_dag_user

NEW = f"{BASE}/new"
FORM = {
    "id": "cr_ui_campaign",
    "description": "Spring promotion for testers.",
    "owner": "alice",
    "owner_email": "alice@example.com",
    "schedule.mode": "cron",
    "schedule.cron": "0 9 * * MON",
    "schedule.preset": "@daily",
    "schedule.timezone": "Europe/Paris",
    "schedule.start_date": "2026-01-05",
    "audience.segment": "testers",
    "audience.criteria": "{plan: gold}",
    "audience.size": "50",
    "channels.email.enabled": "on",
    "channels.email.subject": "Spring for $first_name",
    "channels.email.body": "Hello $first_name,\nyour $plan plan has a gift.",
    "channels.email.batch_size": "25",
    "channels.email.rate_limit_per_second": "",
    "channels.sms.text": "",
    "channels.sms.sender": "",
    "channels.sms.batch_size": "",
    "channels.sms.rate_limit_per_second": "",
    "note": "Spring",
}


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[Path]:
    """A private, writable campaigns folder for this test."""
    path = tmp_path / "campaigns"
    path.mkdir()
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


SCHEDULE_COLUMNS = ("next_dagrun", "next_dagrun_data_interval_start", "next_dagrun_data_interval_end")


@pytest.fixture(autouse=True)
def keep_schedules(airflow_db: None) -> Iterator[None]:
    """Put back the test DAGs' next runs, which Resume moves: other modules count statements that depend on them."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select, update

    from tests.campaign_runs.conftest import TEST_DAG_IDS

    columns = [getattr(DagModel, name) for name in (*SCHEDULE_COLUMNS, "next_dagrun_create_after")]
    with create_session() as session:
        saved = session.execute(select(DagModel.dag_id, *columns).where(DagModel.dag_id.in_(TEST_DAG_IDS))).all()
    yield
    with create_session() as session:
        for row in saved:
            values = {column.key: row[index + 1] for index, column in enumerate(columns)}
            session.execute(update(DagModel).where(DagModel.dag_id == row.dag_id).values(**values))


@pytest.fixture
def users(api_app: Any) -> Iterator[Callable[[str], TestClient]]:
    """Log in any test user; clients are closed at the end."""
    clients: list[TestClient] = []

    def make(username: str) -> TestClient:
        client = login(api_app, username)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def configure_url(dag_id: str) -> str:
    return f"{BASE}/display/{dag_id}/configure"


def action_url(dag_id: str, action: str) -> str:
    return f"{BASE}/display/{dag_id}/actions/{action}"


def post(client: TestClient, url: str, data: dict[str, str], *, token: bool = True) -> Any:
    """Submit a form as the browser does, with the CSRF token of the campaigns page."""
    fields = dict(data)
    if token:
        fields["csrf_token"] = csrf_token(client.get(f"{BASE}/list").text)
    return client.post(url, data=fields)


def slot_html(response: Any, slot: str) -> str:
    """The HTML of the form's field ``slot``: from its container to the next field's."""
    match = re.search(rf'data-slot="{re.escape(slot)}"(.*?)(?=data-slot="|</fieldset>)', response.text, re.S)
    assert match, f"no field {slot} in the page"
    return match.group(1)


def field_error(response: Any, slot: str) -> str:
    """The error shown beside field ``slot`` (inside its container), '' when none."""
    found = re.search(
        r'<div class="cr-error cr-field-error"[^>]*data-field="([^"]+)"[^>]*>(.*?)</div>',
        slot_html(response, slot),
        re.S,
    )
    if found is None:
        return ""
    assert found.group(1) == slot
    return " ".join(unescape(found.group(2)).split())


def input_value(response: Any, name: str) -> str | None:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', response.text)
    return unescape(match.group(1)) if match else None


def create(folder: Path, dag_id: str = "cr_ui_campaign") -> definitions.SavedDefinition:
    """Version 1 of a campaign saved through the core (as New does)."""
    from campaign_runs.pages import definition_form

    text_ = definitions.dump(definition_form.mapping_of({**FORM, "id": dag_id}))
    return definitions.create_definition(text_, actor="alice", note="first")


# ------------------------------------------------------------------ New


def test_the_form_renders_for_who_may_create_and_the_button_only_for_them(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    alice, viewer = users("alice"), users("viewer")

    page = alice.get(NEW)

    assert page.status_code == 200
    for name in ("id", "schedule.cron", "schedule.timezone", "audience.criteria", "channels.push.deep_link"):
        assert f'name="{name}"' in page.text
    assert 'id="cr-preview"' in page.text and f'src="{NEW}/static/definition_form.js"' in page.text
    assert 'name="csrf_token"' in page.text
    script = alice.get(f"{NEW}/static/definition_form.js")
    assert script.status_code == 200 and "preview" in script.text
    assert alice.get(f"{NEW}/static/chart.umd.min.js").status_code == 404
    assert 'id="cr-new-campaign"' in alice.get(f"{BASE}/list").text
    assert 'id="cr-new-campaign"' not in viewer.get(f"{BASE}/list").text


@pytest.mark.parametrize(("paused", "word"), [("True", "paused"), ("False", "active")])
def test_new_says_whether_the_campaign_starts_paused_and_which_slot_runs_first(
    folder: Path, users: Callable[[str], TestClient], monkeypatch: pytest.MonkeyPatch, paused: str, word: str
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", paused)

    page = users("alice").get(NEW)

    first = re.search(r'<p class="cr-muted" id="cr-first-run">(.*?)</p>', page.text, re.S)
    assert first is not None
    assert f"starts <strong>{word}</strong>" in first.group(1)
    assert "never a slot that passed before the campaign existed" in " ".join(first.group(1).split())


def test_new_writes_the_yaml_and_the_campaigns_page_shows_it_waiting(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    alice = users("alice")

    saved = post(alice, NEW, FORM)

    assert saved.status_code == 303, text(saved)
    assert saved.headers["location"].endswith(f"{BASE}/list")
    data = yaml.safe_load((folder / "cr_ui_campaign.yaml").read_text())
    assert data["schedule"] == {
        "cron": "0 9 * * MON",
        "timezone": "Europe/Paris",
        "start_date": __import__("datetime").date(2026, 1, 5),
        "catchup": False,
    }
    assert data["audience"] == {"segment": "testers", "criteria": {"plan": "gold"}, "size": 50}
    assert data["channels"] == {
        "email": {
            "subject": "Spring for $first_name",
            "body": "Hello $first_name,\nyour $plan plan has a gift.",
            "batch_size": 25,
        }
    }
    [entry] = definitions.history("cr_ui_campaign")
    assert (entry.kind, entry.actor, entry.note, entry.version) == ("created", "alice", "Spring", 1)
    listed = alice.get(f"{BASE}/list")
    waiting = re.search(r'<section id="cr-waiting".*?</section>', listed.text, re.S)
    assert waiting, "no waiting box"
    assert 'data-waiting-id="cr_ui_campaign"' in waiting.group(0)
    assert "waiting for Airflow to load it" in waiting.group(0)
    assert "cr_ui_campaign: Saved; waiting for Airflow to load it." in flashes(listed)


BAD_INPUTS = [
    ({"audience.criteria": "{plan: [gold"}, "audience.criteria", "is not valid YAML or JSON", 422),
    ({"audience.criteria": "{plan: [gold"}, "audience.criteria", "the [ opened at line 1, column 8 is not closed", 422),
    ({"audience.criteria": "- a list"}, "audience.criteria", "must be a mapping", 422),
    ({"schedule.timezone": "Mars/Olympus"}, "schedule.timezone", "unknown timezone 'Mars/Olympus'", 422),
    ({"schedule.cron": "0 0 9 * * MON"}, "schedule.cron", "is not a valid five-field cron expression", 422),
    ({"schedule.cron": "61 9 * * MON"}, "schedule.cron", "is not a valid five-field cron expression", 422),
    ({"id": "cr_campaign"}, "id", "is taken: campaign cr_campaign", 409),
    ({"id": "../x"}, "id", "no path", 422),
    ({"id": "a/b"}, "id", "no path", 422),
    ({"channels.email.body": "Hi $voucher"}, "channels.email.body", "unknown placeholder $voucher", 422),
    ({"channels.email.subject": "x" * 10_001}, "channels.email.subject", "the limit is 10000", 422),
    ({"channels.email.batch_size": "0"}, "channels.email.batch_size", "must be at least 1, got 0", 422),
    ({"channels.email.batch_size": "ten"}, "channels.email.batch_size", "must be a whole number", 422),
    ({"channels.email.rate_limit_per_second": "-2"}, "channels.email.rate_limit_per_second", "more than 0", 422),
    ({"channels.email.rate_limit_per_second": "0"}, "channels.email.rate_limit_per_second", "more than 0", 422),
    ({"channels.email.rate_limit_per_second": "nan"}, "channels.email.rate_limit_per_second", "must be a number", 422),
    ({"schedule.start_date": ""}, "schedule.start_date", "is required", 422),
    ({"schedule.start_date": "2026-13-01"}, "schedule.start_date", "is not a date", 422),
    ({"schedule.mode": "preset", "schedule.preset": "@fortnightly"}, "schedule.preset", "choose one of", 422),
    ({"owner_email": "nobody"}, "owner_email", "is not an email address", 422),
    ({"channels.sms.enabled": "on"}, "channels.sms.text", "is required", 422),
]


@pytest.mark.parametrize(("change", "slot", "words", "status"), BAD_INPUTS, ids=lambda v: str(v)[:40])
def test_every_bad_input_is_shown_beside_its_field_and_nothing_is_written(
    folder: Path, users: Callable[[str], TestClient], change: dict[str, str], slot: str, words: str, status: int
) -> None:
    alice = users("alice")

    response = post(alice, NEW, {**FORM, **change, "description": HOSTILE, "note": HOSTILE})

    assert response.status_code == status, text(response)[:300]
    assert words in field_error(response, slot)
    others = [name for name in re.findall(r'data-slot="([^"]+)"', response.text) if name != slot]
    assert not [name for name in others if field_error(response, name)]  # only the field at fault
    assert HOSTILE not in response.text  # what the user typed is escaped
    assert input_value(response, "description") == HOSTILE  # kept, escaped
    assert list(folder.iterdir()) == []
    assert count(campaign_event) == 0


def test_anonymous_users_are_sent_to_log_in(api_app: Any, folder: Path) -> None:
    with TestClient(api_app, follow_redirects=False) as client:
        for url in (NEW, configure_url("cr_campaign")):
            response = client.get(url)
            assert response.status_code == 302 and "/auth/login/?next=" in response.headers["location"]
        assert client.get(f"{NEW}/preview.json", params={"cron": "0 9 * * *"}).status_code == 401
        assert client.post(action_url("cr_campaign", "pause"), data={"note": "x"}).status_code in (400, 401)
    assert not is_paused("cr_campaign") and list(folder.iterdir()) == []


def test_a_save_without_the_csrf_token_is_refused(folder: Path, users: Callable[[str], TestClient]) -> None:
    response = post(users("alice"), NEW, FORM, token=False)

    assert response.status_code == 400
    assert "CSRF" in text(response)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("username", ["viewer", "editor"])
def test_who_lacks_the_definitions_permission_gets_403(
    folder: Path, users: Callable[[str], TestClient], username: str
) -> None:
    client = users(username)

    assert client.get(NEW).status_code == 403
    refused = post(client, NEW, FORM)
    assert refused.status_code == 403
    assert "You may not create campaigns" in " ".join(flashes(refused))
    assert client.get(configure_url("cr_campaign")).status_code == 403
    assert list(folder.iterdir()) == []


def test_the_schedule_preview_says_it_in_words_with_ten_times_in_both_zones(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    alice = users("alice")

    shown = alice.get(f"{NEW}/preview.json", params={"mode": "cron", "cron": "0 9 * * MON", "timezone": "Europe/Paris"})

    assert shown.status_code == 200
    data = shown.json()
    assert data["description"] == "At 09:00, only on Monday"
    assert len(data["times"]) == 10
    assert all(t["local"].endswith(("CET", "CEST")) and " 09:00:00 " in t["local"] for t in data["times"])
    assert all(t["utc"].endswith("UTC") and re.search(r" 0[78]:00:00 UTC$", t["utc"]) for t in data["times"])
    preset = alice.get(f"{NEW}/preview.json", params={"mode": "preset", "preset": "@daily", "timezone": "UTC"}).json()
    assert preset["description"] == "At 00:00" and len(preset["times"]) == 10
    manual = alice.get(f"{NEW}/preview.json", params={"mode": "manual", "timezone": "UTC"}).json()
    assert manual["times"] == [] and "manually" in manual["description"]
    bad = alice.get(f"{NEW}/preview.json", params={"mode": "cron", "cron": "61 9 * * *", "timezone": "UTC"})
    assert bad.status_code == 422 and bad.json()["field"] == "schedule.cron"
    zone = alice.get(f"{NEW}/preview.json", params={"mode": "cron", "cron": "0 9 * * *", "timezone": "Mars/Olympus"})
    assert zone.status_code == 422 and zone.json()["field"] == "schedule.timezone"


def test_a_read_only_folder_offers_the_yaml_to_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, users: Callable[[str], TestClient]
) -> None:
    missing = tmp_path / "not-a-folder"
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(missing))
    get_settings.cache_clear()

    response = post(users("alice"), NEW, {**FORM, "description": HOSTILE})

    assert response.status_code == 200
    yaml_text = re.search(r'<pre class="cr-params" id="cr-yaml">(.*?)</pre>', response.text, re.S)
    assert yaml_text and "id: cr_ui_campaign" in yaml_text.group(1)
    assert 'data-copy-target="cr-yaml"' in response.text
    assert "cannot be written" in text(response)
    assert HOSTILE not in response.text
    assert not missing.exists() and count(campaign_event) == 0


# ------------------------------------------------------------------ Configure


def test_configure_prefills_saves_a_version_and_the_display_shows_the_history(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    first = create(folder)
    bob = users("bob")

    page = bob.get(configure_url("cr_ui_campaign"))

    assert page.status_code == 200
    assert input_value(page, "schedule.cron") == "0 9 * * MON"
    assert input_value(page, "base_sha") == first.sha
    assert input_value(page, "channels.email.batch_size") == "25"
    saved = post(
        bob,
        configure_url("cr_ui_campaign"),
        {**FORM, "schedule.cron": "0 10 * * TUE", "base_sha": first.sha, "note": HOSTILE},
    )
    assert saved.status_code == 303, text(saved)[:300]
    assert "0 10 * * TUE" in (folder / "cr_ui_campaign.yaml").read_text()
    versions = [(e.version, e.actor) for e in definitions.history("cr_ui_campaign")]
    assert versions == [(2, "bob"), (1, "alice")]


LOADER = """\"\"\"Airflow DAGs of the campaign files here (a DAG file must name both words to be parsed).\"\"\"

from pathlib import Path

from campaign_runs.factory.loader import load_campaigns

load_campaigns(Path(__file__).parent, globals())
"""


def load_into_airflow(folder: Path) -> None:
    """What the dag-processor does with the folder: its one loader's DAGs, written to the metadata DB."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    (folder / "loader.py").write_text(LOADER)
    bag = DagBag(str(folder))
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)


@pytest.fixture
def loaded_id() -> Iterator[str]:
    """The id of a campaign a test loads into Airflow; its DAG is deleted afterwards."""
    yield "cr_ui_loaded"
    from airflow.api.common.delete_dag import delete_dag
    from airflow.exceptions import DagNotFound

    with contextlib.suppress(DagNotFound):
        delete_dag("cr_ui_loaded")


def test_a_loaded_campaign_stops_waiting_and_its_display_shows_versions_with_diffs(
    folder: Path, users: Callable[[str], TestClient], loaded_id: str
) -> None:
    first = create(folder, loaded_id)
    alice = users("alice")
    edited = {**FORM, "id": loaded_id, "schedule.cron": "30 8 * * *", "base_sha": first.sha, "note": HOSTILE}
    assert post(alice, configure_url(loaded_id), edited).status_code == 303
    assert 'data-waiting-id="cr_ui_loaded"' in alice.get(f"{BASE}/list").text  # waiting, not in Airflow yet

    load_into_airflow(folder)

    listed = alice.get(f"{BASE}/list")
    assert 'id="cr-waiting"' not in listed.text
    row = re.search(r'<tr class="cr-row"[^>]*data-dag-id="cr_ui_loaded">.*?</tr>', listed.text, re.S)
    assert row and "waiting for Airflow" not in row.group(0)
    display = alice.get(f"{BASE}/display/{loaded_id}")
    assert display.status_code == 200
    versions = re.search(r'<table id="cr-versions">.*?</table>', display.text, re.S)
    assert versions, "no version history"
    assert re.findall(r'data-version="(\d+)"', versions.group(0)) == ["2", "1"]
    assert "+      cron: 30 8 * * *" in unescape(versions.group(0)) or "+  cron: 30 8 * * *" in unescape(
        versions.group(0)
    )
    assert HOSTILE not in display.text and "&lt;script&gt;" in versions.group(0)
    assert f'href="{configure_url(loaded_id)}"' in display.text


def test_a_stale_save_gets_409_with_what_changed_and_keeps_the_input(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    first = create(folder)
    alice, bob = users("alice"), users("bob")
    assert (
        post(
            alice, configure_url("cr_ui_campaign"), {**FORM, "schedule.cron": "0 10 * * TUE", "base_sha": first.sha}
        ).status_code
        == 303
    )
    on_disk = (folder / "cr_ui_campaign.yaml").read_text()

    stale = post(
        bob,
        configure_url("cr_ui_campaign"),
        {**FORM, "audience.size": "70", "base_sha": first.sha, "note": "<b>mine</b>"},
    )

    assert stale.status_code == 409
    conflict = re.search(r'<div class="cr-paused-note" id="cr-conflict">.*?</div>', stale.text, re.S)
    assert conflict and "+  cron: 0 10 * * TUE" in conflict.group(0) and "-  cron: 0 9 * * MON" in conflict.group(0)
    assert input_value(stale, "audience.size") == "70"
    assert "&lt;b&gt;mine&lt;/b&gt;" in stale.text
    assert input_value(stale, "base_sha") == definitions.sha_of(on_disk)
    assert (folder / "cr_ui_campaign.yaml").read_text() == on_disk
    assert [e.version for e in definitions.history("cr_ui_campaign")] == [2, 1]
    display = alice.get(f"{BASE}/display/cr_ui_campaign")
    assert display.status_code in (200, 404)  # not loaded by Airflow in this test: no DAG yet


def test_configure_refuses_a_bad_field_beside_it_and_writes_nothing(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    first = create(folder)
    before = (folder / "cr_ui_campaign.yaml").read_text()

    response = post(
        users("alice"),
        configure_url("cr_ui_campaign"),
        {**FORM, "schedule.timezone": "Nowhere/City", "base_sha": first.sha},
    )

    assert response.status_code == 422
    assert "unknown timezone" in field_error(response, "schedule.timezone")
    assert (folder / "cr_ui_campaign.yaml").read_text() == before
    assert count(campaign_event) == 1


def test_configure_of_a_python_campaign_is_read_only_and_says_why(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    alice = users("alice")

    page = alice.get(configure_url("cr_campaign"))

    assert page.status_code == 200
    assert 'id="cr-read-only"' in page.text and 'id="cr-definition"' not in page.text
    assert "cr_campaign is written in Python" in text(page)
    posted = post(alice, configure_url("cr_campaign"), {**FORM, "id": "cr_campaign", "base_sha": "x"})
    assert 'id="cr-definition"' not in posted.text
    assert list(folder.iterdir()) == [] and count(campaign_event) == 0
    display = alice.get(f"{BASE}/display/cr_campaign")
    assert 'id="cr-configure"' in display.text and "read-only: cr_campaign is written in Python" in text(display)


# ------------------------------------------------------------------ campaign actions


def test_pause_and_resume_from_the_display_with_a_note(folder: Path, users: Callable[[str], TestClient]) -> None:
    alice = users("alice")
    display = alice.get(f"{BASE}/display/cr_campaign")
    assert 'id="cr-campaign-pause"' in display.text and 'id="cr-campaign-resume"' not in display.text

    paused = post(alice, action_url("cr_campaign", "pause"), {"note": "Holidays"})

    assert paused.status_code == 303 and is_paused("cr_campaign")
    display = alice.get(f"{BASE}/display/cr_campaign")
    assert "Paused cr_campaign." in flashes(display)
    resume = re.search(r'<form class="cr-action cr-campaign-resume".*?</form>', display.text, re.S)
    assert resume and 'id="cr-campaign-run_now"' not in display.text
    assert re.findall(r'name="missed" value="([a-z]+)"', resume.group(0)) == ["all", "latest", "none"]
    assert "Run only the most recent missed slot" in resume.group(0)
    again = post(alice, action_url("cr_campaign", "pause"), {"note": "twice"})
    assert again.status_code == 409 and "already paused" in " ".join(flashes(again))
    bad = post(alice, action_url("cr_campaign", "resume"), {"note": "back", "missed": "some"})
    assert bad.status_code == 400 and is_paused("cr_campaign")
    resumed = post(alice, action_url("cr_campaign", "resume"), {"note": "Back", "missed": "none"})
    assert resumed.status_code == 303 and not is_paused("cr_campaign")
    kinds = [(e.kind, e.note) for e in definitions.history("cr_campaign")]
    assert kinds == [("resume", "Back"), ("pause", "Holidays")]


def test_run_now_starts_a_run_with_params_and_opens_its_page(folder: Path, users: Callable[[str], TestClient]) -> None:
    alice = users("alice")
    before = dag_run_count("cr_campaign")

    refused = post(alice, action_url("cr_campaign", "run_now"), {"note": "go", "conf": "[1, 2]"})
    assert refused.status_code == 422 and "must be a JSON object" in " ".join(flashes(refused))
    started = post(alice, action_url("cr_campaign", "run_now"), {"note": "Go", "conf": '{"audience_size": 7}'})

    assert started.status_code == 303, text(started)[:300]
    run_id = re.search(r"/run/([^/?]+)$", started.headers["location"])
    assert run_id and dag_run_count("cr_campaign") == before + 1
    run_page = alice.get(started.headers["location"])
    assert run_page.status_code == 200
    assert re.search(r'id="cr-dag-version">v\d+ ', run_page.text)
    assert "Started run manual__" in " ".join(flashes(run_page))


def test_stop_all_with_nothing_to_stop_is_refused(folder: Path, users: Callable[[str], TestClient]) -> None:
    response = post(users("alice"), action_url("cr_campaign", "stop_all"), {"note": "all"})

    assert response.status_code == 409
    assert "has no run to stop" in " ".join(flashes(response))


def test_campaign_actions_need_edit_rights_and_csrf(folder: Path, users: Callable[[str], TestClient]) -> None:
    viewer, alice = users("viewer"), users("alice")

    assert 'id="cr-campaign-actions"' not in viewer.get(f"{BASE}/display/cr_campaign").text
    refused = post(viewer, action_url("cr_campaign", "pause"), {"note": "x"})
    assert refused.status_code == 403 and not is_paused("cr_campaign")
    assert post(alice, action_url("cr_campaign", "pause"), {"note": "x"}, token=False).status_code == 400
    assert post(alice, action_url("cr_campaign", "explode"), {"note": "x"}).status_code == 404
    assert not is_paused("cr_campaign") and count(campaign_event) == 0


def test_restart_refuses_params_that_are_not_an_object(
    folder: Path, users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    run_id = make_run("cr_campaign", state="failed")
    alice = users("alice")
    page = alice.get(run_url("cr_campaign", run_id))
    assert re.search(r'<form class="cr-action cr-restart".*?name="params"', page.text, re.S)

    response = post(alice, f"{run_url('cr_campaign', run_id)}/restart", {"note": "fixed", "params": "[1]"})

    assert response.status_code == 422
    assert "must be a JSON object" in " ".join(flashes(response))
    assert input_value(response, "params") == "[1]"


ALIAS_BOMB = "{a: &a [x,x,x,x,x,x,x,x,x], b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a], c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]}"


@pytest.mark.parametrize(
    ("params", "words"),
    [
        (ALIAS_BOMB, "is not valid JSON"),
        ("{audience_size: 5}", "is not valid JSON"),
        ('{"audience_size": ' + "[" * 400 + "]" * 400 + "}", "nested deeper than 16 levels"),
    ],
)
def test_restart_params_are_strict_json_and_never_expand(
    folder: Path, users: Callable[[str], TestClient], make_run: Callable[..., str], params: str, words: str
) -> None:
    run_id = make_run("cr_campaign", state="failed")
    alice = users("alice")

    response = post(alice, f"{run_url('cr_campaign', run_id)}/restart", {"note": "fixed", "params": params})

    assert response.status_code == 422
    assert words in " ".join(flashes(response))
    assert count(run_action) == 0


def test_the_campaigns_page_lists_broken_definitions(folder: Path, users: Callable[[str], TestClient]) -> None:
    (folder / "broken_one.yaml").write_text("id: broken_one\nowner: <b>x</b>\n")

    listed = users("alice").get(f"{BASE}/list")

    box = re.search(r'<section class="cr-paused-note" id="cr-broken".*?</section>', listed.text, re.S)
    assert box, "no broken box"
    row = re.search(r'<tr data-file="broken_one.yaml">(.*?)</tr>', box.group(0), re.S)
    assert row and "<code>description</code>" in row.group(1) and "is required" in row.group(1)
    assert 'data-waiting-id="broken_one"' not in listed.text  # it will not load: not "waiting"


def test_restart_with_params_runs_the_current_configuration_with_the_overrides(
    folder: Path, users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    run_id = make_run("cr_campaign", state="failed")

    response = post(
        users("alice"), f"{run_url('cr_campaign', run_id)}/restart", {"note": "fixed", "params": '{"audience_size": 7}'}
    )

    assert response.status_code == 303, text(response)[:300]
    with create_session() as session:
        conf = session.scalar(
            select(DagRun.conf).where(DagRun.dag_id == "cr_campaign", DagRun.run_id.startswith("restart__"))
        )
    assert conf is not None and conf["audience_size"] == 7 and conf["campaign_restart_of"] == run_id


def test_who_may_change_runs_but_not_create_them_gets_pause_but_not_run_now_nor_configure(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    editor = users("editor")

    display = editor.get(f"{BASE}/display/cr_campaign")

    assert 'id="cr-campaign-pause"' in display.text
    assert 'id="cr-campaign-run_now"' not in display.text and 'id="cr-configure"' not in display.text
    refused = post(editor, action_url("cr_campaign", "run_now"), {"note": "go"})
    assert refused.status_code == 403 and count(campaign_event) == 0


def test_dag_versions_of_many_runs_take_one_statement_per_500(make_run: Callable[..., str]) -> None:
    from campaign_runs.adapters import dag_versions
    from campaign_runs.adapters.session import create_session

    from tests.campaign_runs.pages.fab.test_queries import counted

    made = [make_run("cr_campaign", state="success") for _ in range(3)]
    with create_session() as session, counted() as few:
        found = dag_versions.version_numbers("cr_campaign", made, session)
    with create_session() as session, counted() as many:
        more = dag_versions.version_numbers("cr_campaign", [*made, *(f"none_{n}" for n in range(600))], session)

    assert set(found) == set(made) and all(isinstance(v, int) and v >= 1 for v in found.values())
    assert more == found  # runs that do not exist are left out
    assert (len(few), len(many)) == (1, 2)


def test_stop_all_stops_every_active_run_with_one_note(
    folder: Path, users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    from tests.campaign_runs.pages.fab.test_campaigns import record_status

    running = [make_run("cr_campaign", state="running", ti_states={"build_audience": "running"}) for _ in range(2)]
    done = make_run("cr_campaign", state="success")

    response = post(users("alice"), action_url("cr_campaign", "stop_all"), {"note": "Wrong <i>segment</i>"})

    assert response.status_code == 303
    assert [record_status("cr_campaign", run_id) for run_id in running] == ["stopping", "stopping"]
    assert record_status("cr_campaign", done) is None
    [entry] = definitions.history("cr_campaign")
    assert (entry.kind, entry.note) == ("stop_all", "Wrong <i>segment</i>")


def _broken_files_shown(client: TestClient) -> list[str]:
    page = client.get(f"{BASE}/list")
    assert page.status_code == 200
    return sorted(re.findall(r'<tr data-file="([^"]+)">', page.text))


def test_broken_definitions_are_shown_only_to_who_may_read_the_campaign_or_create_campaigns(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    for name in ("cr_campaign", "cr_slow", "no_dag_yet"):
        (folder / f"{name}.yaml").write_text(f"id: {name}\ntoken: s3cr3t-{name}: x\n")  # a YAML error, said in words
    everything = ["cr_campaign.yaml", "cr_slow.yaml", "no_dag_yet.yaml"]
    outside = folder.parent / "outside.yaml"
    outside.write_text("id: cr_depends\ntoken: s3cr3t-outside: x\n")
    (folder / "cr_depends.yaml").symlink_to(outside)  # never read through: no error quotes its target

    assert _broken_files_shown(users("alice")) == everything  # Op: may create campaigns
    assert "s3cr3t-outside" not in users("admin").get(f"{BASE}/list").text
    assert _broken_files_shown(users("viewer")) == ["cr_campaign.yaml", "cr_slow.yaml"]  # may read every DAG
    one_dag = users(one_dag_user())
    assert _broken_files_shown(one_dag) == ["cr_slow.yaml"]
    page = one_dag.get(f"{BASE}/list").text
    assert "invalid YAML: a second &#39;: &#39; at line 2, column 22" in page  # cr_slow's error, no parser text
    assert "s3cr3t-cr_campaign" not in page and "s3cr3t-no_dag_yet" not in page
