"""The JSON API mounted on Airflow's real API-server app, through Airflow's real authentication."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.fixtures import PASSWORD, body_of, outbox_rows
from tests.support.processes import wait_until

PREFIX = "/campaign-runs"
ALL_DONE = {"build_audience": "success", "send_email": "success", "send_sms": "success", "summarise": "success"}


@pytest.fixture(scope="module")
def client(airflow_db: None) -> Iterator[TestClient]:
    """Airflow's API server app (``create_app``) with the plugin mounted by ``fastapi_apps``."""
    from airflow.api_fastapi.app import create_app, purge_cached_app

    app = create_app()
    with TestClient(app) as test_client:
        yield test_client
    purge_cached_app()


def _token(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/auth/token", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def admin(client: TestClient) -> dict[str, str]:
    return _token(client, "admin")


@pytest.fixture(scope="module")
def alice(client: TestClient) -> dict[str, str]:
    return _token(client, "alice")


@pytest.fixture(scope="module")
def viewer(client: TestClient) -> dict[str, str]:
    return _token(client, "viewer")


def problem(response: Any, status: int, code: str, *fragments: str) -> str:
    """An error answer: the status, ``{"detail", "code"}`` and a detail naming the problem."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail", "code"}, body
    assert body["code"] == code, body
    for fragment in fragments:
        assert fragment in body["detail"], body
    return body["detail"]


def run_status(dag_id: str, run_id: str) -> str:
    from campaign_runs import core

    return core.get_run(dag_id, run_id).status


def actions_of(dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """The run's rows in the plugin's action table, read directly."""
    from airflow.utils.session import create_session
    from campaign_runs.tables import run_action
    from sqlalchemy import select

    with create_session() as session:
        query = select(run_action).where(run_action.c.dag_id == dag_id, run_action.c.run_id == run_id)
        return [dict(row) for row in session.execute(query.order_by(run_action.c.id)).mappings()]


ROUTES = [
    ("GET", "/campaigns", None),
    ("GET", "/campaigns/cr_campaign", None),
    ("GET", "/campaigns/cr_campaign/runs", None),
    ("GET", "/campaigns/cr_campaign/runs/some_run", None),
    ("POST", "/campaigns/cr_campaign/runs/some_run/stop", {"note": "n"}),
    ("POST", "/campaigns/cr_campaign/runs/some_run/restart", {"note": "n"}),
    ("POST", "/campaigns/cr_campaign/runs/some_run/skip", {"note": "n"}),
    ("POST", "/campaigns/cr_campaign/runs/some_run/reassign", {"to": "bob"}),
    ("GET", "/worklist", None),
    ("POST", "/emails/1/resend", None),
    ("GET", "/me/email", None),
    ("PUT", "/me/email", {"email": "someone@example.com"}),
    ("GET", "/campaigns/cr_campaign/metrics", None),
    ("GET", "/overview", None),
    ("GET", "/definitions/schema", None),
    ("POST", "/definitions/validate", {"yaml": "id: x"}),
    ("POST", "/definitions/preview", {"cron": "@daily"}),
    ("POST", "/campaigns", {"yaml": "id: x"}),
    ("GET", "/campaigns/cr_campaign/definition", None),
    ("PUT", "/campaigns/cr_campaign/definition", {"set": ["a=1"], "base_sha": "x"}),
    ("GET", "/campaigns/cr_campaign/history", None),
    ("GET", "/campaigns/cr_campaign/audience", None),
    ("POST", "/campaigns/cr_campaign/check", {}),
    ("POST", "/campaigns/cr_campaign/test-send", {"to": ["a@example.com"]}),
    ("GET", "/suppressions", None),
    ("POST", "/suppressions", {"channel": "email", "address": "a@example.com", "reason": "manual"}),
    ("DELETE", "/suppressions/email/a@example.com", None),
    ("POST", "/suppressions/import", None),
    ("GET", "/suppressions/export", None),
    ("POST", "/campaigns/cr_campaign/actions/pause", {"note": "n"}),
]


def test_every_route_needs_authentication(client: TestClient) -> None:
    for method, path, body in ROUTES:
        anonymous = client.request(method, PREFIX + path, json=body)
        problem(anonymous, 401, "unauthorized", "Not authenticated")
        forged = client.request(method, PREFIX + path, json=body, headers={"Authorization": "Bearer not-a-jwt"})
        problem(forged, 403, "forbidden")


def test_list_and_get_campaigns(
    client: TestClient, admin: dict[str, str], viewer: dict[str, str], make_run: Any
) -> None:
    make_run("cr_campaign", state="failed", ti_states={"send_sms": "failed"})
    make_run("cr_campaign", state="running")

    listing = client.get(f"{PREFIX}/campaigns", headers=admin)
    assert listing.status_code == 200, listing.text
    campaigns = {c["id"]: c for c in listing.json()["campaigns"]}
    assert {"cr_campaign", "cr_depends", "cr_slow", "cr_stubborn"} <= set(campaigns)
    assert "cr_plain" not in campaigns
    assert listing.json()["total_entries"] == len(campaigns)
    campaign = campaigns["cr_campaign"]
    assert campaign["schedule"] == "0 9 * * MON" and "Monday" in campaign["schedule_description"]
    assert campaign["channels"] == ["email", "sms"] and campaign["audience"] == "testers"
    assert campaign["audience_label"] == "demo audience (synthetic)"
    assert (campaign["last_status"], campaign["active_runs"], campaign["open_worklist"]) == ("running", 1, 0)
    assert campaign["is_paused"] is False and campaign["next_run_after"]

    searched = client.get(f"{PREFIX}/campaigns", params={"search": "newsletter", "limit": 1}, headers=viewer)
    assert searched.status_code == 200, searched.text
    assert [c["id"] for c in searched.json()["campaigns"]] == ["cr_campaign"]

    detail = client.get(f"{PREFIX}/campaigns/cr_campaign", headers=viewer)
    assert detail.status_code == 200, detail.text
    about = detail.json()
    assert about["timezone"] == "Europe/Paris"
    assert (about["audience"], about["audience_label"]) == ("testers", "demo audience (synthetic)")
    assert about["params"] == {"audience_size": 100}
    assert "testers" in about["doc_md"]
    assert about["owner_emails"] == ["growth@example.com"]
    assert "campaign" in about["tags"]
    assert (campaign["dry_run"], campaign["dry_run_channels"]) == (False, [])

    problem(client.get(f"{PREFIX}/campaigns/no_such_dag", headers=admin), 404, "not_found", "no_such_dag")
    problem(client.get(f"{PREFIX}/campaigns/cr_plain", headers=admin), 404, "not_a_campaign", "not a campaign")
    problem(client.get(f"{PREFIX}/campaigns", params={"limit": 0}, headers=admin), 422, "invalid_request", "limit")


def test_run_schedule(client: TestClient, viewer: dict[str, str], make_run: Any) -> None:
    from campaign_runs import core

    done = make_run("cr_campaign", state="success", ti_states=ALL_DONE)
    failed = make_run("cr_campaign", state="failed", ti_states={"send_sms": "failed"})
    skipped = make_run("cr_campaign", state="failed")
    core.skip_run("cr_campaign", skipped, actor="alice", note="Skipped for the test")
    running = make_run("cr_campaign", state="running")
    url = f"{PREFIX}/campaigns/cr_campaign/runs"

    schedule = client.get(url, params={"upcoming": 3}, headers=viewer).json()
    assert [u["status"] for u in schedule["upcoming"]] == ["scheduled"] * 3
    slots = [u["run_after"] for u in schedule["upcoming"]]
    assert slots == sorted(slots)
    assert [r["run_id"] for r in schedule["runs"]] == [running, failed, done]
    assert schedule["runs"][1]["allowed_actions"] == ["restart", "skip"]
    assert (schedule["total_entries"], schedule["page"], schedule["pages"]) == (3, 1, 1)

    with_skipped = client.get(url, params={"include_skipped": "true", "upcoming": 0}, headers=viewer).json()
    assert with_skipped["upcoming"] == []
    assert [r["run_id"] for r in with_skipped["runs"]] == [running, skipped, failed, done]
    assert with_skipped["runs"][1]["status"] == "skipped" and with_skipped["runs"][1]["note"] == "Skipped for the test"

    filtered = client.get(url, params=[("status", "failed"), ("status", "completed")], headers=viewer).json()
    assert [r["run_id"] for r in filtered["runs"]] == [failed, done] and filtered["upcoming"] == []
    only_upcoming = client.get(url, params={"status": "scheduled", "upcoming": 2}, headers=viewer).json()
    assert len(only_upcoming["upcoming"]) == 2 and only_upcoming["runs"] == []

    page2 = client.get(url, params={"page": 2, "page_size": 2}, headers=viewer).json()
    assert [r["run_id"] for r in page2["runs"]] == [done]
    assert (page2["upcoming"], page2["total_entries"], page2["pages"]) == ([], 3, 2)

    problem(client.get(url, params={"page": 0}, headers=viewer), 422, "invalid_request", "page")
    problem(client.get(url, params={"status": "bogus"}, headers=viewer), 422, "invalid_request", "status")
    problem(client.get(url, params={"page_size": 1000}, headers=viewer), 422, "invalid_request", "page_size")
    problem(client.get(f"{PREFIX}/campaigns/nope/runs", headers=viewer), 404, "not_found")


def _latest_dag_version(dag_id: str) -> int:
    from airflow.models.dag_version import DagVersion
    from airflow.utils.session import create_session

    with create_session() as session:
        version = DagVersion.get_latest_version(dag_id, session=session)
        assert version is not None
        return int(version.version_number)


def test_run_details(client: TestClient, viewer: dict[str, str], make_run: Any) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from campaign_runs import core

    run_id = make_run("cr_campaign", state="failed", ti_states={"build_audience": "success", "send_sms": "failed"})
    with create_session() as session:
        XComModel.set(
            "campaign_progress",
            {"channel": "sms", "total": 10, "sent": 4, "failed": 6, "in_doubt": 1},
            dag_id="cr_campaign",
            task_id="send_sms",
            run_id=run_id,
            session=session,
        )
    core.skip_run("cr_campaign", run_id, actor="bob", note="SMS gateway down")

    response = client.get(f"{PREFIX}/campaigns/cr_campaign/runs/{run_id}", headers=viewer)
    assert response.status_code == 200, response.text
    detail = response.json()
    assert (detail["dag_id"], detail["run_id"], detail["status"]) == ("cr_campaign", run_id, "skipped")
    assert detail["dag_version"] == _latest_dag_version("cr_campaign")  # the version the run was created with
    progress = {p["channel"]: p for p in detail["progress"]}
    assert progress["sms"] == {
        "channel": "sms",
        "task_id": "send_sms",
        "task_state": "skipped",  # Skip releases every unfinished task
        "total": 10,
        "sent": 4,
        "failed": 6,
        "in_doubt": 1,
        "suppressed": 0,  # a report without the keys: nobody held back
        "skipped": {},
        "percent": 100,
        "delivery": "",  # build_audience returned nothing: a live channel's transport is not known
        "dry_run": False,
    }
    assert progress["email"]["total"] is None
    assert (progress["email"]["suppressed"], progress["email"]["skipped"]) == (None, None)
    assert detail["audience"] == {
        "source": None,
        "label": "",
        "demo": False,
        "recipients": None,
        "snapshot_rows": None,
        "snapshot_seconds": None,
        "snapshot_reused": False,
        "task_state": "success",
        "error": None,
        "log_path": None,
        "summary": "not reported (build_audience success)",
    }
    assert {t["task_id"]: t["state"] for t in detail["tasks"]} == {
        "build_audience": "success",
        "send_email": "skipped",
        "send_sms": "skipped",
        "summarise": "skipped",
    }
    (entry,) = detail["history"]
    assert (entry["action"], entry["actor"], entry["note"]) == ("skip", "bob", "SMS gateway down")
    assert (entry["status_before"], entry["status_after"]) == ("failed", "skipped")

    problem(client.get(f"{PREFIX}/campaigns/cr_campaign/runs/nope", headers=viewer), 404, "not_found", "nope")
    problem(client.get(f"{PREFIX}/campaigns/cr_campaign/runs/a%00b", headers=viewer), 404, "not_found")


def test_run_details_give_the_audience_and_what_each_channel_held_back(
    client: TestClient, viewer: dict[str, str], make_run: Any
) -> None:
    from tests.campaign_runs.core.test_restart_options import report_progress
    from tests.support.fixtures import DEMO_AUDIENCE, SQL_AUDIENCE, report_audience

    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    report_audience("cr_campaign", run_id, SQL_AUDIENCE)
    skipped = {"no_consent": 40, "invalid_address": 7}
    report_progress(
        "cr_campaign", run_id, "email", {"total": 1200, "sent": 600, "failed": 2, "suppressed": 3, "skipped": skipped}
    )
    detail = client.get(f"{PREFIX}/campaigns/cr_campaign/runs/{run_id}", headers=viewer).json()
    assert detail["progress"][0] == {
        "channel": "email",
        "task_id": "send_email",
        "task_state": None,
        "total": 1200,
        "sent": 600,
        "failed": 2,
        "in_doubt": 0,
        "suppressed": 3,
        "skipped": {"no_consent": 40, "invalid_address": 7},
        "percent": 50,
        "delivery": "",
        "dry_run": False,
    }
    assert detail["audience"] == {
        "source": "sql",
        "label": "SQL query on Connection subscribers_db",
        "demo": False,
        "recipients": 1250,
        "snapshot_rows": 1250,
        "snapshot_seconds": 0.842,
        "snapshot_reused": False,
        "task_state": "success",
        "error": None,
        "log_path": None,
        "summary": "SQL query on Connection subscribers_db: 1,250 recipients (snapshot: 1,250 rows in 0.84 s)",
    }

    demo = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    report_audience("cr_campaign", demo, DEMO_AUDIENCE)
    shown = client.get(f"{PREFIX}/campaigns/cr_campaign/runs/{demo}", headers=viewer).json()["audience"]
    assert (shown["source"], shown["label"], shown["demo"], shown["recipients"]) == (
        "demo",
        "demo audience (synthetic)",
        True,
        100,
    )
    assert shown["summary"] == "demo audience (synthetic): 100 recipients"


def test_campaigns_and_run_details_say_dry_runs(
    client: TestClient, viewer: dict[str, str], make_run: Any, dry_run_tags: Any
) -> None:
    """The campaign's tags say which channels are dry runs; a run's details say how it froze each channel."""
    from tests.support.fixtures import EMAIL_LIVE_SMS_DRY, report_frozen_channels

    dry_run_tags("cr_campaign", "dry-run:sms")
    dry_run_tags("cr_depends", "dry-run", "dry-run:email")
    listing = client.get(f"{PREFIX}/campaigns", headers=viewer).json()["campaigns"]
    found = {c["id"]: (c["dry_run"], c["dry_run_channels"]) for c in listing}
    assert (found["cr_campaign"], found["cr_depends"], found["cr_slow"]) == (
        (False, ["sms"]),
        (True, ["email"]),
        (False, []),
    )
    about = client.get(f"{PREFIX}/campaigns/cr_campaign", headers=viewer).json()
    assert (about["dry_run"], about["dry_run_channels"]) == (False, ["sms"])

    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    report_frozen_channels("cr_campaign", run_id, EMAIL_LIVE_SMS_DRY)
    detail = client.get(f"{PREFIX}/campaigns/cr_campaign/runs/{run_id}", headers=viewer).json()
    assert detail["dry_run_channels"] == ["sms"]
    assert [(p["channel"], p["delivery"], p["dry_run"]) for p in detail["progress"]] == [
        ("email", "smtp", False),
        ("sms", "dry run", True),
    ]


def test_a_failed_build_audience_says_where_its_message_is(
    client: TestClient, viewer: dict[str, str], make_run: Any
) -> None:
    from urllib.parse import quote

    run_id = make_run("cr_campaign", state="failed", ti_states={"build_audience": "failed"})
    audience = client.get(f"{PREFIX}/campaigns/cr_campaign/runs/{run_id}", headers=viewer).json()["audience"]
    assert audience["error"] == audience["summary"] == "audience could not be read; see the build_audience log"
    assert audience["log_path"] == f"/dags/cr_campaign/runs/{quote(run_id, safe='')}/tasks/build_audience"
    assert (audience["task_state"], audience["recipients"]) == ("failed", None)


def test_stop_idempotency_email_worklist_and_reassign(
    client: TestClient, admin: dict[str, str], alice: dict[str, str], make_run: Any, smtp_server: Any
) -> None:
    from campaign_runs import core

    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    url = f"{PREFIX}/campaigns/cr_campaign/runs/{run_id}/stop"
    key = {"Idempotency-Key": "stop-once-1"}

    first = client.post(url, json={"note": "Wrong audience"}, headers={**admin, **key})
    assert first.status_code == 200, first.text
    result = first.json()
    assert (result["action"], result["actor"], result["run_id"]) == ("stop", "admin", run_id)
    assert (result["status_before"], result["status_after"], result["replayed"]) == ("running", "stopping", False)

    again = client.post(url, json={"note": "Wrong audience"}, headers={**admin, **key})
    assert again.status_code == 200, again.text
    assert again.json()["action_id"] == result["action_id"] and again.json()["replayed"] is True
    assert len(core.run_history("cr_campaign", run_id)) == 1

    # Without the key, a second stop is refused: the run is no longer active.
    problem(client.post(url, json={"note": "Again"}, headers=admin), 409, "not_allowed", "Stop is not allowed")

    core.housekeeping_pass()
    assert run_status("cr_campaign", run_id) == "stopped"
    (message,) = smtp_server.wait_for(1)
    assert "admin@example.com" in message["X-Envelope-To"]
    assert run_id in str(message["Subject"]) and "Wrong audience" in body_of(message)

    mine = client.get(f"{PREFIX}/worklist", headers=admin).json()
    assert [(i["run_id"], i["assignee"], i["reason"]) for i in mine["items"]] == [(run_id, "admin", "stopped")]
    assert client.get(f"{PREFIX}/worklist", headers=alice).json() == {"items": [], "total_entries": 0}

    moved = client.post(
        f"{PREFIX}/campaigns/cr_campaign/runs/{run_id}/reassign", json={"to": "alice", "note": "Yours"}, headers=admin
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["assignee"], moved.json()["run_id"]) == ("alice", run_id)
    assert [i["run_id"] for i in client.get(f"{PREFIX}/worklist", headers=alice).json()["items"]] == [run_id]
    everyone = client.get(f"{PREFIX}/worklist", params={"all": "true", "include_resolved": "true"}, headers=admin)
    assert [i["assignee"] for i in everyone.json()["items"]] == ["alice"]

    reassign_url = f"{PREFIX}/campaigns/cr_campaign/runs/{run_id}/reassign"
    problem(client.post(reassign_url, json={"to": "ghost"}, headers=admin), 404, "not_found", "ghost")
    problem(client.post(reassign_url, json={"to": ""}, headers=admin), 422, "invalid_request", "to")
    other = make_run("cr_campaign", state="failed")
    problem(
        client.post(f"{PREFIX}/campaigns/cr_campaign/runs/{other}/reassign", json={"to": "bob"}, headers=admin),
        404,
        "not_found",
        "nobody's work list",
    )


def test_read_only_users_cannot_act(
    client: TestClient, viewer: dict[str, str], alice: dict[str, str], make_run: Any
) -> None:
    run_id = make_run("cr_campaign", state="running")
    failed = make_run("cr_campaign", state="failed")
    base = f"{PREFIX}/campaigns/cr_campaign/runs"
    problem(client.post(f"{base}/{run_id}/stop", json={"note": "no"}, headers=viewer), 403, "forbidden")
    problem(client.post(f"{base}/{failed}/restart", json={"note": "no"}, headers=viewer), 403, "forbidden")
    problem(client.post(f"{base}/{failed}/skip", json={"note": "no"}, headers=viewer), 403, "forbidden")
    problem(client.post(f"{base}/{failed}/reassign", json={"to": "bob"}, headers=viewer), 403, "forbidden")
    assert run_status("cr_campaign", run_id) == "running"
    assert run_status("cr_campaign", failed) == "failed"
    # Everyone's work list is for administrators only.
    problem(client.get(f"{PREFIX}/worklist", params={"all": "true"}, headers=alice), 403, "forbidden", "administrators")
    problem(client.get(f"{PREFIX}/worklist", params={"all": "true"}, headers=viewer), 403, "forbidden")
    assert client.get(f"{PREFIX}/worklist", headers=viewer).status_code == 200


def test_one_permission_rule_per_action_for_non_admins_and_roles_without_create(
    client: TestClient, alice: dict[str, str], make_run: Any, smtp_server: Any
) -> None:
    """Reassign is for work-list admins (alice is Op); Restart also needs "create" on DAG runs (editor lacks it)."""
    from campaign_runs import core

    editor = _token(client, "editor")
    base = f"{PREFIX}/campaigns/cr_campaign/runs"
    stopped = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    core.stop_run("cr_campaign", stopped, actor="alice", note="Wrong audience")
    core.housekeeping_pass()
    detail = problem(
        client.post(f"{base}/{stopped}/reassign", json={"to": "bob"}, headers=alice), 403, "forbidden", "administrators"
    )
    assert "'alice'" in detail
    assert [(e.assignee, e.resolved_at) for e in core.worklist(None)] == [("alice", None)]

    problem(client.post(f"{base}/{stopped}/restart", json={"note": "Retry"}, headers=editor), 403, "forbidden")
    assert run_status("cr_campaign", stopped) == "stopped"
    skipped = client.post(f"{base}/{stopped}/skip", json={"note": "Not needed"}, headers=editor)  # edit is enough
    assert skipped.status_code == 200, skipped.text
    assert run_status("cr_campaign", stopped) == "skipped"


def test_restart_skip_and_refusals(
    client: TestClient, admin: dict[str, str], alice: dict[str, str], make_run: Any, smtp_server: Any
) -> None:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from campaign_runs import core
    from sqlalchemy import select

    done = make_run("cr_campaign", state="success", ti_states=ALL_DONE)
    to_restart = make_run("cr_campaign", state="failed", ti_states={"send_sms": "failed"})
    to_skip = make_run("cr_campaign", state="failed", ti_states={"send_sms": "failed"})
    base = f"{PREFIX}/campaigns/cr_campaign/runs"

    problem(client.post(f"{base}/{done}/skip", json={"note": "x"}, headers=admin), 409, "not_allowed", "completed")
    problem(client.post(f"{base}/{to_skip}/skip", json={"note": "  "}, headers=admin), 422, "invalid_note", "required")
    problem(client.post(f"{base}/{to_skip}/skip", json={}, headers=admin), 422, "invalid_note")
    problem(client.post(f"{base}/{to_skip}/skip", json={"note": 5}, headers=admin), 422, "invalid_request", "note")
    problem(
        client.post(f"{base}/{to_skip}/skip", json={"note": "x", "extra": 1}, headers=admin), 422, "invalid_request"
    )
    problem(client.post(f"{base}/{to_skip}/skip", content=b"not json", headers=admin), 422, "invalid_request")
    problem(client.post(f"{base}/{to_skip}/skip", headers=admin), 422, "invalid_request")
    problem(client.post(f"{base}/{to_skip}/skip", json={"note": "a\x00b"}, headers=admin), 422, "invalid_request")
    problem(client.post(f"{base}/{to_skip}/skip", json={"note": "x" * 5000}, headers=admin), 422, "invalid_note")
    problem(client.post(f"{base}/nope/skip", json={"note": "x"}, headers=admin), 404, "not_found")
    problem(
        client.post(f"{PREFIX}/campaigns/cr_plain/runs/r/skip", json={"note": "x"}, headers=admin),
        404,
        "not_a_campaign",
    )
    assert run_status("cr_campaign", to_skip) == "failed"

    with create_session() as session:
        session.scalar(select(DagModel).where(DagModel.dag_id == "cr_campaign")).is_paused = True
    restart_url = f"{base}/{to_restart}/restart"
    problem(client.post(restart_url, json={"note": "Fixed"}, headers=alice), 409, "paused", "paused")
    restarted = client.post(restart_url, json={"note": "Fixed", "unpause": True}, headers=alice)
    assert restarted.status_code == 200, restarted.text
    assert restarted.json()["new_run_id"].startswith("restart__")
    assert run_status("cr_campaign", to_restart) == "skipped"
    assert run_status("cr_campaign", restarted.json()["new_run_id"]) == "queued"

    key = {"Idempotency-Key": "skip-1"}
    skipped = client.post(f"{base}/{to_skip}/skip", json={"note": "Not worth it"}, headers={**admin, **key})
    replayed = client.post(f"{base}/{to_skip}/skip", json={"note": "Not worth it"}, headers={**admin, **key})
    assert skipped.status_code == replayed.status_code == 200
    (skip_action,) = [a for a in actions_of("cr_campaign", to_skip) if a["action"] == "skip"]
    expected = {
        "action_id": skip_action["id"],
        "action": "skip",
        "dag_id": "cr_campaign",
        "run_id": to_skip,
        "actor": "admin",
        "status_before": "failed",
        "status_after": "skipped",
        "new_run_id": None,
    }
    assert skipped.json() == {**expected, "replayed": False}
    assert replayed.json() == {**expected, "replayed": True}
    assert len(actions_of("cr_campaign", to_skip)) == 1  # the replay recorded nothing

    messages = smtp_server.wait_for(2)
    assert sorted(str(m["X-Envelope-To"]) for m in messages) == ["admin@example.com", "alice@example.com"]
    assert any("restarted as" in str(m["Subject"]) for m in messages)
    # A replayed request must not send a second email. Once both emails are recorded as sent, a
    # housekeeping pass run here and now is the next chance to send anything: it must find nothing.
    wait_until(lambda: [r["status"] for r in outbox_rows()].count("sent") >= 2, timeout=30, message="2 emails sent")
    assert core.housekeeping_pass() == ([], 0)
    assert len(smtp_server.messages) == 2, smtp_server.subjects()
    rows = outbox_rows()
    assert [(r["kind"], r["run_id"], r["recipient"]) for r in rows] == [
        ("restarted", to_restart, "alice@example.com"),
        ("skipped", to_skip, "admin@example.com"),
    ]
    assert [(r["status"], r["attempts"]) for r in rows] == [("sent", 1), ("sent", 1)]


def test_unknown_paths_and_methods_answer_json(client: TestClient, admin: dict[str, str]) -> None:
    problem(client.get(f"{PREFIX}/nothing-here", headers=admin), 404, "not_found")
    problem(client.delete(f"{PREFIX}/campaigns/cr_campaign", headers=admin), 405, "method_not_allowed")


def test_domain_errors_map_to_statuses() -> None:
    import asyncio

    from campaign_runs.api.errors import _domain_error
    from campaign_runs.domain import (
        Action,
        ActionNotAllowedError,
        CampaignPausedError,
        CampaignRunsError,
        ConflictError,
        InvalidNoteError,
        NotACampaignError,
        NotFoundError,
        RunStatus,
    )

    not_allowed = "Stop is not allowed for a run that is completed; it is allowed when the run is queued, running."
    cases = [
        (NotFoundError("Run 'r' does not exist."), 404, "not_found", "Run 'r' does not exist."),
        (NotACampaignError("DAG 'd' is not a campaign."), 404, "not_a_campaign", "DAG 'd' is not a campaign."),
        (ActionNotAllowedError(Action.STOP, RunStatus.COMPLETED), 409, "not_allowed", not_allowed),
        (ConflictError("Lost a race."), 409, "conflict", "Lost a race."),
        (CampaignPausedError("Campaign 'c' is paused."), 409, "paused", "Campaign 'c' is paused."),
        (InvalidNoteError("A note is required."), 422, "invalid_note", "A note is required."),
        (CampaignRunsError("Something else."), 400, "error", "Something else."),
    ]
    for error, status, code, detail in cases:
        response = asyncio.run(_domain_error(None, error))  # type: ignore[arg-type]
        assert response.status_code == status, (error, response.body)
        assert response.headers["content-type"] == "application/json"
        assert json.loads(response.body) == {"detail": detail, "code": code}


def test_openapi_declares_every_response(client: TestClient) -> None:
    schema = client.get(f"{PREFIX}/openapi.json").json()
    assert schema["info"]["title"] == "Campaign Runs API"
    assert schema["servers"] == [{"url": PREFIX}]
    operations = [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()]
    assert {(m.upper(), p) for p, m, _ in operations} == {
        (m, p.replace("cr_campaign", "{dag_id}").replace("some_run", "{run_id}").replace("/1/", "/{outbox_id}/"))
        if not p.startswith("/suppressions/email/")
        else (m, "/suppressions/{channel}/{address}")
        for m, p in ((m, p.replace("/actions/pause", "/actions/{action}")) for m, p, _ in ROUTES)
    }
    for path, method, operation in operations:
        responses = operation["responses"]
        assert {"200", "401", "403"} <= set(responses), (path, method)
        if operation.get("parameters") or operation.get("requestBody") or path == "/suppressions/import":
            assert "422" in responses, (path, method)  # an input that can be invalid is answered 422
        if "{dag_id}" in path:
            assert "404" in responses, (path, method)
        # Validate and preview change nothing; adding an address already listed is not a conflict (added: false).
        if method == "post" and not path.startswith(("/definitions/", "/suppressions")):
            assert "409" in responses, (path, method)
        for status, response in responses.items():
            if not status.startswith("2"):
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[1] in ("ErrorResponse", "DefinitionErrorResponse"), (path, method, status)
        assert operation.get("security"), (path, method)
    assert "HTTPValidationError" not in schema["components"]["schemas"]
