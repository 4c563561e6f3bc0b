"""New, Configure and the campaign actions under SimpleAuthManager: a page that says why, never a 500.

Those pages are FAB's only; their ``/pluginsv2`` URLs (bookmarks, links in emails, the README) lead to the plugin's own
pages, which name the command line and REST equivalents.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import is_paused
from tests.support import auth_managers
from tests.support.fixtures import PASSWORD

UI = "/campaign-runs/ui"


@pytest.fixture(scope="module")
def app(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from airflow.api_fastapi.app import create_app

    with auth_managers.active("simple", tmp_path_factory.mktemp("simple")):
        yield create_app()


def login(app: Any, username: str = "alice") -> TestClient:
    client = TestClient(app, follow_redirects=False)
    token = client.post("/auth/token", json={"username": username, "password": PASSWORD})
    assert token.status_code == 201, token.text
    client.cookies.set("_token", token.json()["access_token"])
    return client


def text(response: Any, *, inline: bool = False) -> str:
    """The page's words; ``inline``: tags dropped without a space (``(<code>x</code>)`` reads ``(x)``)."""
    return " ".join(unescape(re.sub(r"<[^>]+>", "" if inline else " ", response.text)).split())


@pytest.mark.parametrize(
    ("method", "fab_path", "ui_path", "words"),
    [
        (
            "GET",
            "/campaigns/new",
            "/new",
            ["airflow campaigns create --file <id>.yaml", "POST /campaign-runs/campaigns"],
        ),
        (
            "GET",
            "/campaigns/display/cr_campaign/configure",
            "/display/cr_campaign/configure",
            ["airflow campaigns edit cr_campaign --set", "PUT /campaign-runs/campaigns/cr_campaign/definition"],
        ),
        (
            "POST",
            "/campaigns/display/cr_campaign/actions/pause",
            "/display/cr_campaign/actions/pause",
            ["airflow campaigns trigger|pause|resume|stop-all cr_campaign", "/campaigns/cr_campaign/actions/"],
        ),
    ],
)
def test_a_fab_only_url_leads_to_a_page_that_names_the_cli_and_rest_equivalents(
    app: Any, method: str, fab_path: str, ui_path: str, words: list[str]
) -> None:
    alice = login(app)

    sent = alice.request(method, f"/pluginsv2{fab_path}", data={"note": "x"} if method == "POST" else None)

    assert (sent.status_code, sent.headers["location"]) == (303 if method == "POST" else 302, f"{UI}{ui_path}")
    page = alice.get(sent.headers["location"])
    assert page.status_code == 404
    shown = text(page)
    assert "is a page of Flask-AppBuilder's auth manager (FAB)" in shown
    assert "This Airflow runs another one (SimpleAuthManager)" in text(page, inline=True)
    assert all(word in shown for word in words), shown
    assert 'href="/campaign-runs/docs"' in page.text
    assert alice.get("/campaign-runs/docs").status_code == 200  # the API's reference the page links to


def test_the_pages_are_behind_the_login_and_change_nothing(app: Any) -> None:
    anonymous = TestClient(app, follow_redirects=False)
    assert anonymous.get(f"{UI}/new").headers["location"].startswith("/auth/login?next=")
    assert anonymous.post(f"{UI}/display/cr_campaign/actions/pause").status_code == 401
    posted = login(app).post(f"{UI}/display/cr_campaign/actions/pause", data={"note": "x"})
    assert posted.status_code == 404 and "Back to cr_campaign" in text(posted)
    assert not is_paused("cr_campaign")
