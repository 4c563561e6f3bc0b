"""New and Configure under SimpleAuthManager: only the users who may change the configuration (ADMIN, OP) may."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_runs.settings import get_settings
from campaign_runs.tables import campaign_event
from fastapi.testclient import TestClient

from tests.campaign_runs.api.test_definitions import DAG_ID, VALID
from tests.campaign_runs.core.helpers import count
from tests.support import auth_managers
from tests.support.fixtures import PASSWORD

PREFIX = "/campaign-runs"


@pytest.fixture(scope="module")
def client(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """Airflow's API-server app under SimpleAuthManager (admin: ADMIN, alice: USER, viewer: VIEWER)."""
    from airflow.api_fastapi.app import create_app

    with auth_managers.active("simple", tmp_path_factory.mktemp("simple")), TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "campaigns"
    path.mkdir()
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def _login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/auth/token", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_only_admin_and_op_may_create_and_configure(client: TestClient, folder: Path) -> None:
    for username in ("alice", "viewer"):
        refused = client.post(f"{PREFIX}/campaigns", json={"yaml": VALID}, headers=_login(client, username))
        assert refused.status_code == 403, refused.text
        assert "Campaign Definitions" in refused.json()["detail"]
    assert list(folder.iterdir()) == [] and count(campaign_event) == 0
    admin = _login(client, "admin")
    created = client.post(f"{PREFIX}/campaigns", json={"yaml": VALID, "note": "As admin"}, headers=admin)
    assert created.status_code == 201, created.text
    body = {"set": ["audience.size=70"], "base_sha": created.json()["sha"]}
    url = f"{PREFIX}/campaigns/{DAG_ID}/definition"
    assert client.put(url, json=body, headers=_login(client, "alice")).status_code == 403
    saved = client.put(url, json=body, headers=admin)
    assert saved.status_code == 200 and saved.json()["version"] == 2, saved.text


def test_the_cli_user_is_checked_the_same_way(client: TestClient) -> None:
    from campaign_runs.core.definition_rights import require_manager
    from campaign_runs.domain import NotFoundError, NotPermittedError

    require_manager("admin", "POST")
    with pytest.raises(NotPermittedError, match="may not configure campaigns"):
        require_manager("alice", "PUT")
    with pytest.raises(NotFoundError, match="simple_auth_manager_users"):
        require_manager("nobody", "POST")
