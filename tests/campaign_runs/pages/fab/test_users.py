"""My email on the FAB work list: the form, a CSRF-protected POST, and the address the emails then go to."""

# ruff: noqa: F811  (pytest fixtures imported from test_views)
from __future__ import annotations

import re
from typing import Any

from tests.campaign_runs.pages.fab.test_campaigns import BASE, csrf_token, flashes, text, users  # noqa: F401

EMAIL = f"{BASE}/worklist/email"
FORM = re.compile(r'<form id="cr-my-email"[^>]*action="([^"]+)"')


def address_of(username: str) -> tuple[str | None, str | None]:
    """Where ``username``'s emails go by the chain, and from which link."""
    from campaign_runs.core.users import email_of

    found = email_of(username)
    return found.address, found.source


def test_a_user_without_an_address_sets_one_on_the_work_list(users: Any) -> None:
    nomail = users("nomail")
    page = nomail.get(f"{BASE}/worklist")
    assert page.status_code == 200, page.text[:300]
    form = FORM.search(page.text)
    assert form is not None and form.group(1) == EMAIL
    assert "No email could be sent: User 'nomail' has no email address." in text(page)

    assert nomail.post(EMAIL, data={"email": "nomail@own.example"}).status_code == 400  # no CSRF token
    assert address_of("nomail") == (None, None)

    saved = nomail.post(EMAIL, data={"email": "nomail@own.example", "csrf_token": csrf_token(page.text)})
    assert (saved.status_code, saved.headers["location"]) == (303, f"{BASE}/worklist")
    assert address_of("nomail") == ("nomail@own.example", "campaign_runs")
    shown = nomail.get(f"{BASE}/worklist")
    assert flashes(shown) == ["Your emails go to nomail@own.example."]
    assert "Your emails go to nomail@own.example (campaign runs)." in text(shown)
    assert 'value="nomail@own.example"' in shown.text

    cleared = nomail.post(EMAIL, data={"email": "", "csrf_token": csrf_token(shown.text)})
    assert cleared.status_code == 303 and address_of("nomail") == (None, None)


def test_a_bad_address_is_refused_and_fab_addresses_come_first(users: Any) -> None:
    alice = users("alice")
    page = alice.get(f"{BASE}/worklist")
    assert "Your emails go to alice@example.com (auth manager)." in text(page)
    refused = alice.post(EMAIL, data={"email": "not an address", "csrf_token": csrf_token(page.text)})
    assert refused.status_code == 422 and "'not an address' is not an email address" in text(refused)
    saved = alice.post(EMAIL, data={"email": "alice@own.example", "csrf_token": csrf_token(page.text)})
    assert saved.status_code == 303
    assert address_of("alice") == ("alice@example.com", "auth_manager")  # FAB's own address wins
    assert "Your emails go to alice@example.com (auth manager)." in text(alice.get(f"{BASE}/worklist"))


def test_anonymous_users_cannot_set_an_address(api_app: Any) -> None:
    from starlette.testclient import TestClient

    anonymous = TestClient(api_app, follow_redirects=False)
    page = anonymous.get("/auth/login/")
    response = anonymous.post(EMAIL, data={"email": "x@example.com", "csrf_token": csrf_token(page.text)})
    assert response.status_code == 401 and address_of("x") == (None, None)
