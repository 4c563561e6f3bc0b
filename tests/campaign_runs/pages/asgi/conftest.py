"""The ``host`` fixture of the tests that run a page on both hosts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.campaign_runs.pages.asgi.hosts import FAB_BASE, UI, Host, token_login
from tests.campaign_runs.pages.fab.test_campaigns import login as fab_login
from tests.support import auth_managers


@pytest.fixture(scope="module", params=["fab", "simple"])
def host(request: pytest.FixtureRequest, airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """Each host in turn, its app created under its auth manager."""
    from airflow.api_fastapi.app import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__FAB__AUTH_RATE_LIMIT", "1000 per 1 second")  # a login per test
        with auth_managers.active(request.param, tmp_path_factory.mktemp(request.param)):
            if request.param == "fab":
                yield Host(create_app(), fab_login, FAB_BASE, "alice")
            else:
                yield Host(create_app(), token_login, UI, "admin")
