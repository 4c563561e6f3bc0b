"""New, Configure and the campaign actions through the JSON API on Airflow's real API-server app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from campaign_runs.core import definition_text, definitions
from campaign_runs.core.definition_schema import component_schema, definition_schema
from campaign_runs.settings import get_settings
from campaign_runs.tables import campaign_event
from fastapi.testclient import TestClient

from tests.campaign_runs.core.helpers import count
from tests.support.definitions import bad_inputs, valid_definition
from tests.support.fixtures import PASSWORD, one_dag_user

PREFIX = "/campaign-runs"
DAG_ID = "cr_api_new"
VALID = valid_definition(DAG_ID)
# Every bad input of the issue: (change to VALID, the field named, words of the detail).
BAD_INPUTS = bad_inputs(DAG_ID)
BAD_IDS = [
    "invalid-yaml",
    "unknown-field",
    "unknown-timezone",
    "cron-6-fields",
    "cron-out-of-range",
    "id-dotdot",
    "id-slash",
    "unknown-placeholder",
    "oversized-template",
    "batch-size-0",
    "negative-rate",
    "zero-rate",
    "yaml-anchor",
    "yaml-deep-nesting",
    "nested-criterion",
    "long-dotted-owner-email",
    "owner-email-without-dot",
    "from-name-crlf",
    "id-ending-in-newline",
]


@pytest.fixture(scope="module")
def client(airflow_db: None) -> Iterator[TestClient]:
    from airflow.api_fastapi.app import create_app, purge_cached_app

    with TestClient(create_app()) as test_client:
        yield test_client
    purge_cached_app()


@pytest.fixture(scope="module")
def openapi(client: TestClient) -> Any:
    """The plugin's OpenAPI document, to check real answers against (Schemathesis)."""
    import schemathesis

    return schemathesis.openapi.from_asgi(f"{PREFIX}/openapi.json", client.app)


@pytest.fixture(scope="module")
def tokens(client: TestClient) -> dict[str, dict[str, str]]:
    """A bearer header per test user."""
    found = {}
    for username in ("admin", "alice", "bob", "viewer", "editor"):
        response = client.post("/auth/token", json={"username": username, "password": PASSWORD})
        assert response.status_code == 201, response.text
        found[username] = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return found


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private, writable campaigns folder."""
    path = tmp_path / "campaigns"
    path.mkdir()
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def error(response: Any, status: int, code: str, *fragments: str) -> dict[str, Any]:
    """An error answer with its status, code and a detail naming the problem."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    for fragment in fragments:
        assert fragment in body["detail"], body
    return dict(body)


def run_conf(dag_id: str, run_id: str) -> dict[str, Any]:
    """The conf Airflow keeps for a run."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one()
        return dict(run.conf or {})


def nothing_written(folder: Path) -> None:
    assert list(folder.iterdir()) == []
    assert count(campaign_event) == 0


def create(client: TestClient, headers: dict[str, str], text: str = VALID, note: str = "Spring") -> Any:
    return client.post(f"{PREFIX}/campaigns", json={"yaml": text, "note": note}, headers=headers)


# ---------------------------------------------------------------- schema, validate, preview


def test_the_schema_is_served_and_published_in_the_openapi_document(
    client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    served = client.get(f"{PREFIX}/definitions/schema", headers=tokens["viewer"])
    assert served.status_code == 200, served.text
    assert served.json() == definition_schema()
    assert served.json()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    document = client.get(f"{PREFIX}/openapi.json").json()
    assert document["components"]["schemas"]["CampaignDefinition"] == component_schema()
    body = document["components"]["schemas"]["DefinitionBody"]["properties"]["definition"]
    assert {"$ref": "#/components/schemas/CampaignDefinition"} in body["anyOf"]
    assert client.get(f"{PREFIX}/definitions/schema").status_code == 401


def test_validate_accepts_yaml_or_a_json_object_and_writes_nothing(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path
) -> None:
    url = f"{PREFIX}/definitions/validate"
    answer = client.post(url, json={"yaml": VALID}, headers=tokens["viewer"])
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"dag_id": DAG_ID, "valid": True}
    as_object = json.loads(json.dumps(definition_text.load_text(VALID), default=str))
    assert client.post(url, json={"definition": as_object}, headers=tokens["viewer"]).json()["valid"] is True
    error(client.post(url, json={}, headers=tokens["viewer"]), 422, "invalid_option", "either as `yaml`")
    both = {"yaml": VALID, "definition": as_object}
    error(client.post(url, json=both, headers=tokens["viewer"]), 422, "invalid_option", "either as `yaml`")
    nothing_written(folder)


@pytest.mark.parametrize(("change", "field", "words"), BAD_INPUTS, ids=BAD_IDS)
def test_validate_names_the_field_of_every_bad_input(
    client: TestClient, tokens: dict[str, dict[str, str]], change: tuple[str, str], field: str, words: str
) -> None:
    text = VALID.replace(*change)
    assert text != VALID
    body = error(
        client.post(f"{PREFIX}/definitions/validate", json={"yaml": text}, headers=tokens["alice"]),
        422,
        "invalid_definition",
        words,
    )
    assert body["field"] == field


def test_preview_describes_the_schedule_in_both_timezones(
    client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    url = f"{PREFIX}/definitions/preview"
    answer = client.post(
        url, json={"cron": "30 2 * * *", "timezone": "Europe/Paris", "count": 3}, headers=tokens["viewer"]
    )
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["description"] == "At 02:30" and len(preview["times"]) == 3
    for fire in preview["times"]:
        assert fire["local"].endswith(("+01:00", "+02:00")) and fire["utc"].endswith(("Z", "+00:00"))
        assert "T02:30:00" in fire["local"]
    manual = client.post(url, json={"cron": None}, headers=tokens["viewer"]).json()
    assert manual["times"] == [] and "manually" in manual["description"]
    bad_zone = error(
        client.post(url, json={"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, headers=tokens["viewer"]),
        422,
        "invalid_definition",
        "unknown timezone",
    )
    assert bad_zone["field"] == "schedule.timezone"
    folder_zone = client.post(url, json={"cron": "0 9 * * *", "timezone": "Europe"}, headers=tokens["viewer"])
    assert error(folder_zone, 422, "invalid_definition", "unknown timezone")["field"] == "schedule.timezone"
    six = error(client.post(url, json={"cron": "0 0 9 * * MON"}, headers=tokens["viewer"]), 422, "invalid_definition")
    assert six["field"] == "schedule.cron"
    error(client.post(url, json={"cron": "* * * * *", "count": 0}, headers=tokens["viewer"]), 422, "invalid_request")


# ---------------------------------------------------------------- New


def test_create_writes_the_file_and_version_one(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path
) -> None:
    answer = create(client, tokens["alice"])
    assert answer.status_code == 201, answer.text
    saved = answer.json()
    assert (saved["dag_id"], saved["written"], saved["version"]) == (DAG_ID, True, 1)
    assert saved["sha"] == definitions.sha_of(VALID) and "waiting for Airflow" in saved["message"]
    assert (folder / f"{DAG_ID}.yaml").read_text() == VALID
    entry = definitions.history(DAG_ID)[0]
    assert (entry.kind, entry.actor, entry.note) == ("created", "alice", "Spring")
    again = error(create(client, tokens["bob"]), 409, "conflict", "is taken")
    assert "field" not in again
    assert count(campaign_event) == 1


def test_create_refuses_an_id_of_an_existing_dag(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path
) -> None:
    error(create(client, tokens["admin"], VALID.replace(DAG_ID, "cr_campaign")), 409, "conflict", "cr_campaign")
    nothing_written(folder)


@pytest.mark.parametrize(("change", "field", "words"), BAD_INPUTS, ids=BAD_IDS)
def test_create_refuses_every_bad_input_and_writes_nothing(
    client: TestClient,
    tokens: dict[str, dict[str, str]],
    folder: Path,
    change: tuple[str, str],
    field: str,
    words: str,
) -> None:
    body = error(create(client, tokens["alice"], VALID.replace(*change)), 422, "invalid_definition", words)
    assert body["field"] == field
    nothing_written(folder)


@pytest.mark.parametrize("username", ["viewer", "editor"])
def test_create_needs_the_campaign_definitions_permission(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path, username: str
) -> None:
    error(create(client, tokens[username]), 403, "forbidden", "Campaign Definitions", username)
    nothing_written(folder)


def test_a_read_only_folder_answers_the_yaml_to_commit(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(definitions.files, "writable", lambda path: False)
    answer = create(client, tokens["alice"])
    assert answer.status_code == 200, answer.text
    saved = answer.json()
    assert (saved["written"], saved["version"], saved["yaml"]) == (False, None, VALID)
    assert "cannot be written" in saved["message"]
    nothing_written(folder)


# ---------------------------------------------------------------- Configure


def test_get_the_definition_with_its_etag(client: TestClient, tokens: dict[str, dict[str, str]], folder: Path) -> None:
    create(client, tokens["alice"])
    answer = client.get(f"{PREFIX}/campaigns/{DAG_ID}/definition", headers=tokens["viewer"])
    assert answer.status_code == 200, answer.text
    state = answer.json()
    assert (state["yaml"], state["version"], state["editable"], state["reason"]) == (VALID, 1, True, "")
    assert answer.headers["ETag"] == f'"{state["sha"]}"' and state["sha"] == definitions.sha_of(VALID)
    python = client.get(f"{PREFIX}/campaigns/cr_campaign/definition", headers=tokens["viewer"]).json()
    assert (python["yaml"], python["editable"]) == (None, False) and "written in Python" in python["reason"]
    error(client.get(f"{PREFIX}/campaigns/no_such/definition", headers=tokens["viewer"]), 404, "not_found")


def test_configure_saves_a_version_and_a_second_save_of_the_same_version_gets_409(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path
) -> None:
    first = create(client, tokens["alice"]).json()
    url = f"{PREFIX}/campaigns/{DAG_ID}/definition"
    tuesday = VALID.replace('"0 9 * * MON"', '"0 10 * * TUE"')
    saved = client.put(url, json={"yaml": tuesday, "base_sha": first["sha"], "note": "Tuesdays"}, headers=tokens["bob"])
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 2 and '+  cron: "0 10 * * TUE"' in saved.json()["diff"]

    stale = client.put(
        url, json={"yaml": VALID.replace("size: 50", "size: 60"), "base_sha": first["sha"]}, headers=tokens["admin"]
    )
    body = error(stale, 409, "definition_conflict", "saved by someone else")
    assert '+  cron: "0 10 * * TUE"' in body["changes"] and body["current_sha"] == saved.json()["sha"]
    assert (folder / f"{DAG_ID}.yaml").read_text() == tuesday

    by_etag = client.put(
        url, json={"set": ["audience.size=70"]}, headers={**tokens["admin"], "If-Match": f'"{body["current_sha"]}"'}
    )
    assert by_etag.status_code == 200, by_etag.text
    assert "size: 70" in (folder / f"{DAG_ID}.yaml").read_text() and by_etag.json()["version"] == 3
    history = client.get(f"{PREFIX}/campaigns/{DAG_ID}/history", headers=tokens["viewer"]).json()
    assert [(e["kind"], e["version"], e["actor"]) for e in history["entries"]] == [
        ("configured", 3, "admin"),
        ("configured", 2, "bob"),
        ("created", 1, "alice"),
    ]
    assert history["entries"][1]["note"] == "Tuesdays"


def test_a_stale_configure_gets_409_with_yours_merged_on_theirs_and_the_fields_both_changed(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path
) -> None:
    first = create(client, tokens["alice"]).json()
    url = f"{PREFIX}/campaigns/{DAG_ID}/definition"
    theirs = {"set": ["schedule.cron=0 10 * * TUE", "channels.email.subject=Theirs"], "base_sha": first["sha"]}
    saved = client.put(url, json=theirs, headers=tokens["bob"]).json()
    yours = {"set": ["audience.size=70", "channels.email.subject=Yours"], "base_sha": first["sha"]}

    body = error(client.put(url, json=yours, headers=tokens["admin"]), 409, "definition_conflict", "both of you")

    assert body["current_sha"] == saved["sha"] and "channels.email.subject" in body["detail"]
    assert body["conflicts"] == [
        {
            "field": "channels.email.subject",
            "path": ["channels", "email", "subject"],
            "base": "Spring for $first_name\n",
            "theirs": "Theirs\n",
            "yours": "Yours\n",
        }
    ]
    merged = yaml.safe_load(body["merged"])
    assert (merged["schedule"]["cron"], merged["audience"]["size"]) == ("0 10 * * TUE", 70)
    assert merged["channels"]["email"]["subject"] == "Theirs"  # theirs until the caller chooses
    assert "size: 50" in (folder / f"{DAG_ID}.yaml").read_text()  # nothing saved
    again = client.put(url, json={"yaml": body["merged"], "base_sha": body["current_sha"]}, headers=tokens["admin"])
    assert again.status_code == 200, again.text
    assert yaml.safe_load((folder / f"{DAG_ID}.yaml").read_text())["audience"]["size"] == 70


def test_configure_refuses_bad_requests_and_writes_nothing(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path
) -> None:
    sha = create(client, tokens["alice"]).json()["sha"]
    url = f"{PREFIX}/campaigns/{DAG_ID}/definition"
    alice = tokens["alice"]
    error(client.put(url, json={"yaml": VALID}, headers=alice), 422, "invalid_option", "base_sha")
    error(client.put(url, json={"yaml": VALID, "set": ["a=1"], "base_sha": sha}, headers=alice), 422, "invalid_option")
    bad = client.put(url, json={"set": ["channels.email.batch_size=0"], "base_sha": sha}, headers=alice)
    assert error(bad, 422, "invalid_definition", "at least 1")["field"] == "channels.email.batch_size"
    renamed = client.put(url, json={"yaml": VALID.replace(DAG_ID, "cr_other"), "base_sha": sha}, headers=alice)
    assert error(renamed, 422, "invalid_definition", "keeps its id")["field"] == "id"
    for username in ("viewer", "editor"):
        refused = client.put(url, json={"set": ["audience.size=9"], "base_sha": sha}, headers=tokens[username])
        error(refused, 403, "forbidden")
    assert (folder / f"{DAG_ID}.yaml").read_text() == VALID
    assert [e.version for e in definitions.history(DAG_ID)] == [1]


def test_configure_of_a_python_campaign_is_refused_with_the_reason(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path
) -> None:
    url = f"{PREFIX}/campaigns/cr_campaign/definition"
    for body in (
        {"set": ["audience.size=9"], "base_sha": "x"},
        {"yaml": VALID.replace(DAG_ID, "cr_campaign"), "base_sha": "x"},
    ):
        error(client.put(url, json=body, headers=tokens["admin"]), 409, "conflict", "written in Python")
    nothing_written(folder)


# ---------------------------------------------------------------- campaign actions


def _act(client: TestClient, headers: dict[str, str], action: str, dag_id: str = "cr_campaign", **body: Any) -> Any:
    return client.post(f"{PREFIX}/campaigns/{dag_id}/actions/{action}", json={"note": "Test", **body}, headers=headers)


def _paused(dag_id: str) -> bool:
    from campaign_runs import core

    return bool(core.get_campaign(dag_id).summary.is_paused)


def test_pause_resume_and_their_history(client: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    paused = _act(client, tokens["alice"], "pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["action"] == "pause" and _paused("cr_campaign")
    error(_act(client, tokens["alice"], "pause"), 409, "not_allowed", "already paused")
    error(_act(client, tokens["alice"], "resume", missed="sometimes"), 422, "invalid_request", "missed")
    error(_act(client, tokens["alice"], "pause", missed="all"), 422, "invalid_option", "missed is an option of resume")
    resumed = _act(client, tokens["editor"], "resume", missed="none")
    assert resumed.status_code == 200, resumed.text
    assert "slots missed while it was paused do not run." in resumed.json()["message"] and not _paused("cr_campaign")
    entries = client.get(f"{PREFIX}/campaigns/cr_campaign/history", headers=tokens["viewer"]).json()["entries"]
    assert [(e["kind"], e["actor"], e["note"]) for e in entries] == [
        ("resume", "editor", "Test"),
        ("pause", "alice", "Test"),
    ]
    assert entries[0]["details"]["missed"] == "none"


def test_run_now_needs_create_rights_and_validates_its_conf(
    client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    from campaign_runs import core

    error(_act(client, tokens["viewer"], "run_now"), 403, "forbidden")
    error(_act(client, tokens["editor"], "run_now"), 403, "forbidden", "may not start runs")
    started = _act(client, tokens["alice"], "run_now", conf={"audience_size": 7})
    assert started.status_code == 200, started.text
    (run_id,) = started.json()["run_ids"]
    assert core.get_run("cr_campaign", run_id).status == "queued"
    error(_act(client, tokens["alice"], "stop_all", conf={}), 422, "invalid_option", "conf is an option of run_now")
    _act(client, tokens["alice"], "pause")
    error(_act(client, tokens["alice"], "run_now"), 409, "paused", "resume it first")


def test_stop_all_stops_every_active_run(client: TestClient, tokens: dict[str, dict[str, str]], make_run: Any) -> None:
    error(_act(client, tokens["alice"], "stop_all"), 409, "not_allowed", "no run to stop")
    running = make_run("cr_campaign", state="running")
    queued = make_run("cr_campaign", state="queued")
    stopped = _act(client, tokens["alice"], "stop_all", note="Wrong segment")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["outcomes"] == {running: "stopping", queued: "stopping"}
    error(_act(client, tokens["alice"], "explode"), 422, "invalid_request")
    error(_act(client, tokens["alice"], "pause", dag_id="no_such_campaign"), 404, "not_found")


def test_restart_takes_validated_params_overrides(
    client: TestClient, tokens: dict[str, dict[str, str]], make_run: Any
) -> None:
    failed = make_run("cr_campaign", state="failed", ti_states={"send_sms": "failed"})
    url = f"{PREFIX}/campaigns/cr_campaign/runs/{failed}"
    error(
        client.post(f"{url}/skip", json={"note": "n", "params": {"audience_size": 1}}, headers=tokens["alice"]),
        422,
        "invalid_option",
        "params",
    )
    restarted = client.post(
        f"{url}/restart", json={"note": "Smaller", "params": {"audience_size": 9}}, headers=tokens["alice"]
    )
    assert restarted.status_code == 200, restarted.text
    assert run_conf("cr_campaign", restarted.json()["new_run_id"])["audience_size"] == 9


def test_real_answers_conform_to_the_openapi_document(
    openapi: Any, tokens: dict[str, dict[str, str]], folder: Path
) -> None:
    """Every status these routes answer, with real data, is declared and matches its schema (headers too)."""

    def call(path: str, method: str, expect: int, user: str = "admin", **parts: Any) -> Any:
        response = openapi[path][method].Case(**parts).call_and_validate(headers=tokens[user])
        assert response.status_code == expect, response.text
        return response.json()

    campaign = {"dag_id": DAG_ID}
    call("/definitions/schema", "GET", 200)
    call("/definitions/validate", "POST", 200, body={"yaml": VALID})
    call("/definitions/validate", "POST", 422, body={"yaml": VALID.replace("Europe/Paris", "Mars/Olympus")})
    call("/definitions/preview", "POST", 200, body={"cron": "@daily", "timezone": "Asia/Tokyo"})
    sha = call("/campaigns", "POST", 201, body={"yaml": VALID, "note": "New"})["sha"]
    call("/campaigns", "POST", 409, body={"yaml": VALID})
    call("/campaigns", "POST", 403, user="viewer", body={"yaml": VALID})
    call("/campaigns/{dag_id}/definition", "GET", 200, path_parameters=campaign)
    body = {"set": ["audience.size=60"], "base_sha": sha}
    call("/campaigns/{dag_id}/definition", "PUT", 200, path_parameters=campaign, body=body)
    conflict = call("/campaigns/{dag_id}/definition", "PUT", 409, path_parameters=campaign, body=body)
    assert conflict["current_sha"] and conflict["changes"]
    call("/campaigns/{dag_id}/history", "GET", 200, path_parameters=campaign)
    action = {"dag_id": "cr_campaign", "action": "pause"}
    call("/campaigns/{dag_id}/actions/{action}", "POST", 200, path_parameters=action, body={"note": "Hold"})
    call("/campaigns/{dag_id}/actions/{action}", "POST", 409, path_parameters=action, body={"note": "Hold"})


# ---------------------------------------------------------------- reading a definition: only a campaign's own file

SECRET = "not-for-the-api-7f3a"


def _secret_file(tmp_path: Path, dag_id: str) -> Path:
    """A file outside the campaigns folder that even looks like the campaign (its id), with a secret in it."""
    path = tmp_path / f"elsewhere_{dag_id}.yaml"
    path.write_text(valid_definition(dag_id).replace("Spring promotion for testers.", SECRET))
    return path


def test_a_symbolic_link_is_not_followed(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path, tmp_path: Path
) -> None:
    assert create(client, tokens["alice"]).status_code == 201
    (folder / f"{DAG_ID}.yaml").unlink()
    (folder / f"{DAG_ID}.yaml").symlink_to(_secret_file(tmp_path, DAG_ID))
    (folder / "cr_campaign.yaml").symlink_to(_secret_file(tmp_path, "cr_campaign"))  # a DAG Airflow knows

    for dag_id in (DAG_ID, "cr_campaign"):
        answer = client.get(f"{PREFIX}/campaigns/{dag_id}/definition", headers=tokens["admin"])
        error(answer, 404, "not_found", f"{dag_id}.yaml", "not a regular file")
        assert SECRET not in answer.text


def test_a_yaml_file_that_is_no_campaign_is_not_read(
    client: TestClient, tokens: dict[str, dict[str, str]], folder: Path
) -> None:
    # No DAG and no saved version of that id, and no campaign definition either: some other YAML file.
    (folder / "stray.yaml").write_text(f"id: stray\npassword: {SECRET}\n")
    # The file of a campaign Airflow knows, but its content is something else.
    (folder / "cr_campaign.yaml").write_text(f"id: not_cr_campaign\npassword: {SECRET}\n")
    (folder / "cr_slow.yaml").write_text(f"password: {SECRET}\n")

    for dag_id in ("stray", "cr_campaign", "cr_slow"):
        answer = client.get(f"{PREFIX}/campaigns/{dag_id}/definition", headers=tokens["admin"])
        error(answer, 404, "not_found", f"{dag_id}.yaml", f"is not the definition of campaign '{dag_id}'")
        assert SECRET not in answer.text


def test_reading_a_definition_needs_read_access_to_its_dag(client: TestClient, folder: Path) -> None:
    one_dag_user()  # may read one DAG, cr_slow
    login = client.post("/auth/token", json={"username": "slowonly", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    definitions.create_definition(VALID, actor="alice", note="")

    for dag_id in (DAG_ID, "cr_campaign"):
        answer = client.get(f"{PREFIX}/campaigns/{dag_id}/definition", headers=headers)
        error(answer, 403, "forbidden")
        assert "audience" not in answer.text
    readable = client.get(f"{PREFIX}/campaigns/cr_slow/definition", headers=headers)
    assert readable.status_code == 200 and "written in Python" in readable.json()["reason"]
