"""The two page hosts as the tests meet them: FAB's views and the plugin's own ASGI pages, in one app each.

The ``host`` fixture (this folder's conftest) runs a module once per host (``fab``: FAB's auth manager and
``/pluginsv2``; ``simple``: SimpleAuthManager, ``airflow standalone``'s, and ``/campaign-runs/ui``);
``simple_only`` narrows a test to the second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from tests.support.fixtures import PASSWORD

UI = "/campaign-runs/ui"
FAB_BASE = "/pluginsv2/campaigns"


def token_login(app: Any, username: str) -> TestClient:
    """SimpleAuthManager's login: Airflow's JWT cookie, as its UI keeps it."""
    client = TestClient(app, follow_redirects=False)
    token = client.post("/auth/token", json={"username": username, "password": PASSWORD})
    assert token.status_code == 201, token.text
    client.cookies.set("_token", token.json()["access_token"])
    return client


@dataclass(frozen=True)
class Host:
    """One page host: its app, how a user logs in, where its pages are, and who there may create campaigns."""

    app: Any
    login: Callable[[Any, str], TestClient]
    base: str
    creator: str  # FAB: alice (Op); SimpleAuthManager: admin (only OP and ADMIN may change the configuration)

    def client(self, username: str = "") -> TestClient:
        """A client logged in as ``username`` (the creator by default)."""
        return self.login(self.app, username or self.creator)

    def run_url(self, run_id: str, dag_id: str = "cr_campaign") -> str:
        """The run page, its id quoted as the pages link it (``:`` and ``+`` kept)."""
        return f"{self.base}/display/{dag_id}/run/{quote(run_id, safe=':+')}"


simple_only = pytest.mark.parametrize("host", ["simple"], indirect=True)
