"""The REST API under every kind of auth manager: FAB, SimpleAuthManager, and one whose users carry an email.

Real logins (``POST /auth/token`` of the active auth manager) and real tokens on Airflow's API-server app.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import auth_managers
from tests.support.fixtures import PASSWORD, outbox_rows

PREFIX = "/campaign-runs"
# Where alice's emails go when nothing is configured, under each auth manager.
ALICE_BY_AUTH_MANAGER = {"fab": "alice@example.com", "simple": None, "email": "alice@idp.example"}


@pytest.fixture(scope="module", params=["fab", "simple", "email"])
def manager(
    request: pytest.FixtureRequest, airflow_db: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The auth manager the module's tests run under."""
    with auth_managers.active(request.param, tmp_path_factory.mktemp(request.param)):
        yield request.param


@pytest.fixture(scope="module")
def client(manager: str) -> Iterator[TestClient]:
    """Airflow's API-server app built under ``manager``."""
    from airflow.api_fastapi.app import create_app

    with TestClient(create_app()) as test_client:
        yield test_client


def login(client: TestClient, username: str) -> dict[str, str]:
    """A real token from the active auth manager's ``/auth/token``."""
    response = client.post("/auth/token", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def skip(client: TestClient, headers: dict[str, str], run_id: str, note: str = "Skip it") -> dict[str, Any]:
    response = client.post(f"{PREFIX}/campaigns/cr_campaign/runs/{run_id}/skip", json={"note": note}, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_the_acting_user_is_whoever_the_auth_manager_says(client: TestClient, manager: str, make_run: Any) -> None:
    from campaign_runs import core

    alice = login(client, "alice")
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    stop = client.post(f"{PREFIX}/campaigns/cr_campaign/runs/{run_id}/stop", json={"note": "Wrong list"}, headers=alice)
    assert stop.status_code == 200, stop.text
    assert (stop.json()["actor"], stop.json()["status_after"]) == ("alice", "stopping")
    assert [h.actor for h in core.run_history("cr_campaign", run_id)] == ["alice"]
    core.housekeeping_pass()
    items = client.get(f"{PREFIX}/worklist", headers=alice).json()["items"]
    assert [(i["run_id"], i["assignee"]) for i in items] == [(run_id, "alice")]


def test_work_list_administrators_are_who_the_auth_manager_allows(client: TestClient, make_run: Any) -> None:
    viewer, alice, admin = (login(client, name) for name in ("viewer", "alice", "admin"))
    for headers in (viewer, alice):
        refused = client.get(f"{PREFIX}/worklist", params={"all": "true"}, headers=headers)
        assert refused.status_code == 403, refused.text
    assert client.get(f"{PREFIX}/worklist", params={"all": "true"}, headers=admin).status_code == 200

    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    stop = client.post(f"{PREFIX}/campaigns/cr_campaign/runs/{run_id}/stop", json={"note": "n"}, headers=alice)
    assert stop.status_code == 200, stop.text
    from campaign_runs import core

    core.housekeeping_pass()
    url = f"{PREFIX}/campaigns/cr_campaign/runs/{run_id}/reassign"
    assert client.post(url, json={"to": "bob"}, headers=alice).json()["code"] == "forbidden"
    unknown = client.post(url, json={"to": "ghost"}, headers=admin)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found"), unknown.text
    assert "User 'ghost' does not exist" in unknown.json()["detail"]
    moved = client.post(url, json={"to": "bob"}, headers=admin)
    assert (moved.status_code, moved.json()["assignee"]) == (200, "bob"), moved.text


def test_the_email_chain_link_by_link(
    client: TestClient, manager: str, make_run: Any, smtp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Auth manager's user, then the address set in Campaign Runs, then the template; else undeliverable."""
    from campaign_runs.settings import get_settings

    alice = login(client, "alice")
    mine = client.get(f"{PREFIX}/me/email", headers=alice).json()
    expected = ALICE_BY_AUTH_MANAGER[manager]
    assert (mine["username"], mine["email"]) == ("alice", expected)
    assert mine["source"] == ("auth_manager" if expected else None)

    skip(client, alice, make_run("cr_campaign", state="failed"))
    first = outbox_rows()[-1]
    if expected:
        assert (first["recipient"], first["last_error"]) == (expected, None)
        assert smtp_server.wait_for(1)[-1]["X-Envelope-To"] == expected
        return
    # Nothing resolves: the action is done and recorded, the outbox row says why.
    assert (first["status"], first["recipient"], first["last_error"]) == (
        "undeliverable",
        None,
        "User 'alice' has no email address.",
    )
    assert "has no email address" in mine["reason"]

    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__USER_EMAIL_TEMPLATE", "{username}@template.example")
    get_settings.cache_clear()
    templated = client.get(f"{PREFIX}/me/email", headers=alice).json()
    assert (templated["email"], templated["source"]) == ("alice@template.example", "template")

    bad = client.put(f"{PREFIX}/me/email", json={"email": "not an address"}, headers=alice)
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_option"), bad.text
    chosen = client.put(f"{PREFIX}/me/email", json={"email": "alice@own.example"}, headers=alice)
    assert chosen.status_code == 200, chosen.text
    assert (chosen.json()["email"], chosen.json()["source"]) == ("alice@own.example", "campaign_runs")
    skip(client, alice, make_run("cr_campaign", state="failed"))
    assert smtp_server.wait_for(1)[-1]["X-Envelope-To"] == "alice@own.example"

    cleared = client.put(f"{PREFIX}/me/email", json={"email": ""}, headers=alice).json()
    assert (cleared["email"], cleared["source"]) == ("alice@template.example", "template")


def test_the_last_address_of_an_auth_manager_that_cannot_list_users_is_remembered(
    manager: str, monkeypatch: pytest.MonkeyPatch, make_run: Any
) -> None:
    """Keycloak cannot list users: the acting user's address is kept for the scheduler's emails."""
    if manager != "email":
        pytest.skip("the stand-in's users carry an address")
    from airflow.utils.session import create_session
    from campaign_runs import core
    from campaign_runs.adapters import auth

    monkeypatch.setattr(auth, "directory", auth.UserDirectory)  # a manager that lists no users
    user = auth_managers.EmailUser(username="carol", role="user", email="carol@idp.example")
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    with auth.acting_as(user) as actor:
        core.stop_run("cr_campaign", run_id, actor=actor, note="n")
    core.housekeeping_pass()  # no acting user here, as in the scheduler
    assert [(r["username"], r["recipient"]) for r in outbox_rows()] == [("carol", "carol@idp.example")]
    with create_session() as session:
        found = auth.resolve_email("carol", session)
        assert (found.known, found.source) == (True, "auth_manager")
        assert auth.resolve_email("dave", session).reason == "User 'dave' has no email address."
