"""The plugin's own pages (``/campaign-runs/ui``, non-FAB auth managers): markup, nosniff, CSRF and cookies.

Markup in any path or query parameter of any route (read from the FastAPI app, so a new route is covered with
no change here) never comes back unescaped in a page, and every answer of the plugin's FastAPI apps carries
``X-Content-Type-Options: nosniff``. A CSRF token is tied to its user's session; over https every cookie the
pages set is ``Secure``, and the flash cookie is ``SameSite=strict``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.campaign_runs.pages.asgi.test_campaigns import CSRF, UI, app, login, run_url  # noqa: F401  (fixture)
from tests.campaign_runs.pages.fab.test_markup import PATH_MARKUPS, Route, check, folder, mounted, sweep  # noqa: F401

pytestmark = pytest.mark.sweep  # inputs, not the database, are the point: run once, on SQLite


def ui_routes(api_app: Any) -> list[Route]:
    """Every route of the pages' FastAPI app, as mounted in the API server, once per method."""
    pages = mounted(mounted(api_app, "/campaign-runs"), "/ui")
    routes = []
    for route in pages.routes:
        pattern = re.sub(r"\{([^}:]+)(?::[^}]+)?\}", r"{\1}", route.path)
        params = tuple(route.param_convertors)
        for method in sorted(set(route.methods or ()) - {"HEAD"}):
            routes.append(Route(method, UI + pattern, params))
    return routes


@pytest.fixture
def real(make_run: Callable[..., str], folder: Path) -> dict[str, str]:  # noqa: F811
    """Path values that name things that exist: a campaign, a running run (stopped by the sweep's POST)."""
    run_id = make_run("cr_campaign", state="running")
    return {"dag_id": "cr_campaign", "run_id": run_id, "target": f"{run_id}/stop", "outbox_id": "1"}


def cookies_of(response: Any) -> dict[str, SimpleCookie]:
    """The cookies an answer sets, by name, with their attributes."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        found.update({name: cookie for name in cookie})
    return found


def test_the_ui_routes_are_found(app: Any) -> None:  # noqa: F811
    patterns = {route.pattern for route in ui_routes(app)}
    assert {
        f"{UI}/list",
        f"{UI}/display/{{dag_id}}/run/{{run_id}}",
        f"{UI}/display/{{dag_id}}/run/{{target}}",
        f"{UI}/emails/{{outbox_id}}/resend",
        f"{UI}/worklist/email",
    } <= patterns


def test_markup_in_any_parameter_of_any_ui_page_comes_back_escaped(
    app: Any,  # noqa: F811
    real: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = login(app, "admin")
    token = CSRF.search(admin.get(f"{UI}/worklist").text)
    assert token is not None
    assert sweep(admin, ui_routes(app), real, token.group(1), monkeypatch) > 300
    anonymous = TestClient(app, follow_redirects=False)
    for markup in PATH_MARKUPS:
        check(anonymous.get(f"{UI}/display/x", params={"q": markup}), PATH_MARKUPS)


def test_every_answer_of_the_plugins_apps_is_nosniff(app: Any) -> None:  # noqa: F811
    anonymous = TestClient(app, follow_redirects=False)
    for path in ("/campaign-runs/campaigns", "/campaign-runs/no-such-route", f"{UI}/list", f"{UI}/no-such-page"):
        answer = anonymous.get(path)
        assert answer.status_code in (302, 401, 404), (path, answer.status_code)
        assert answer.headers["x-content-type-options"] == "nosniff", path


def test_a_csrf_token_of_one_users_session_is_refused_in_anothers(app: Any, make_run: Any) -> None:  # noqa: F811
    from campaign_runs import core
    from campaign_runs.pages.asgi.support import CSRF_COOKIE

    run_id = make_run("cr_campaign", state="running")
    alice, bob = login(app, "alice"), login(app, "bob")
    alices = alice.get(run_url(run_id))
    token = CSRF.search(alices.text)
    assert token is not None and alice.cookies.get(CSRF_COOKIE)
    # Bob's browser made to carry Alice's CSRF cookie and token (a cookie set from a sibling host, a leaked page).
    bob.cookies.set(CSRF_COOKIE, alice.cookies[CSRF_COOKIE])
    refused = bob.post(f"{run_url(run_id)}/stop", data={"note": "Not Bob's token", "csrf_token": token.group(1)})
    assert refused.status_code == 400 and "CSRF" in refused.text
    assert core.get_run("cr_campaign", run_id).status == "running"
    assert core.run_history("cr_campaign", run_id) == []

    bobs = login(app, "bob")
    own = CSRF.search(bobs.get(run_url(run_id)).text)
    assert own is not None
    stopped = bobs.post(f"{run_url(run_id)}/stop", data={"note": "Bob's own token", "csrf_token": own.group(1)})
    assert stopped.status_code == 303, stopped.text[:500]


def flash_round(client: TestClient) -> dict[str, dict[str, SimpleCookie]]:
    """Save My email (a flash for the next page) and show it: the cookies each of the three answers set."""
    from campaign_runs.pages.asgi.support import CSRF_COOKIE, FLASH_COOKIE

    page = client.get(f"{UI}/worklist")
    assert page.status_code == 200
    token = CSRF.search(page.text)
    assert token is not None
    saved = client.post(f"{UI}/worklist/email", data={"email": "alice@own.example", "csrf_token": token.group(1)})
    assert saved.status_code == 303, saved.text[:500]
    shown = client.get(saved.headers["location"])
    assert "alice@own.example" in shown.text
    answers = {"page": cookies_of(page), "saved": cookies_of(saved), "shown": cookies_of(shown)}
    assert CSRF_COOKIE in answers["page"] and FLASH_COOKIE in answers["saved"] and FLASH_COOKIE in answers["shown"]
    return answers


def test_over_https_every_cookie_the_pages_set_is_secure(app: Any) -> None:  # noqa: F811
    from campaign_runs.pages.asgi.support import CSRF_COOKIE

    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    client.cookies.set("_token", login(app, "alice").cookies["_token"])  # Airflow's JWT, as after a login
    for answer, cookies in flash_round(client).items():
        for name, cookie in cookies.items():
            assert cookie[name]["secure"] and cookie[name]["httponly"], (answer, name)
    plain = login(app, "alice").get(f"{UI}/worklist")  # over http the cookies still work: not Secure
    assert not cookies_of(plain)[CSRF_COOKIE][CSRF_COOKIE]["secure"]


def test_the_flash_cookie_is_same_site_strict(app: Any) -> None:  # noqa: F811
    from campaign_runs.pages.asgi.support import FLASH_COOKIE

    answers = flash_round(login(app, "alice"))
    for answer in ("saved", "shown"):
        cookie = answers[answer][FLASH_COOKIE][FLASH_COOKIE]
        assert cookie["samesite"].lower() == "strict" and cookie["httponly"], answer
