"""The campaign pages refuse bad input with 400 and the reason in the page, before anything changes.

NUL bytes, control characters and invalid UTF-8 anywhere in the path, the query or a form; page numbers
out of range; over-long ids, searches, keys and query strings; unknown sorts, origins and flags; a missing
or wrong CSRF token. A too-long note stays 422, as in the REST API.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from campaign_runs.pages import forms
from campaign_runs.tables import run_action, worklist_entry
from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import (
    BASE,
    badge,
    count,
    csrf_token,
    dag_run_count,
    flashes,
    record_status,
    run_url,
    set_ti_state,
)
from tests.campaign_runs.pages.fab.test_campaigns import login as login_

LONG_ID = "x" * 251
ROW = re.compile(r'class="cr-row" data-(?:run|dag)-id="([^"]+)"')
PAGE_RULE = "The page must be a whole number from 1 to 100000; {} is not."

LONG_NOTE_REFUSED = (
    "The note is 2001 characters long; the limit is 2000: shorten it by 1 character (a note is never cut). "
    "Nothing was changed."
)


@pytest.fixture(scope="module")
def logged_in(api_app: Any) -> Iterator[dict[str, TestClient]]:
    """One client per test user, logged in once for the module (a login costs five times a page)."""
    clients: dict[str, TestClient] = {}
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture
def users(api_app: Any, logged_in: dict[str, TestClient]) -> Callable[[str], TestClient]:
    """Any test user's client, logged in through FAB's login form, with no message of an earlier test pending."""

    def make(username: str) -> TestClient:
        if username not in logged_in:
            logged_in[username] = login_(api_app, username)
        client = logged_in[username]
        page = client.get(f"{BASE}/list")  # shows (so clears) what an earlier test left to flash
        assert page.status_code == 200, page.text[:500]
        return client

    return make


def refused(response: Any, message: str, status: int = 400) -> None:
    """The answer is ``status`` with exactly ``message``: in the page, or as a JSON poll's detail."""
    assert response.status_code == status, response.text[:500]
    if response.headers["content-type"].startswith("application/json"):
        assert response.json() == {"detail": message}
    else:
        assert flashes(response) == [message]
        assert "Back to the campaigns" in response.text  # the plugin's error page, not a server error


# ------------------------------------------------------------------ query strings of every page

BAD_QUERIES = [
    ("/list?page=99999999999999999999", PAGE_RULE.format("'99999999999999999999'")),
    ("/list?page=-1", PAGE_RULE.format("'-1'")),
    ("/list?page=0", PAGE_RULE.format("'0'")),
    ("/list?page=abc", PAGE_RULE.format("'abc'")),
    ("/list?page=100001", PAGE_RULE.format("'100001'")),
    ("/list?q=a%00b", "The search contains a NUL character."),
    ("/list?q=a%01b", "The search contains the control character U+0001."),
    ("/list?q=a%0Ab", "The search contains the control character U+000A."),
    ("/list?q=%FF%FE", "The query string is not valid UTF-8."),
    (f"/list?q={'q' * 251}", "The search is 251 characters long; the limit is 250."),
    (f"/list?other={'o' * 4100}", "The query string is 4106 bytes long; the limit is 4096."),
    (
        "/list?sort=bogus",
        "The query parameter 'sort' must be one of 'dag_id', 'owner', 'next_run', 'paused'; 'bogus' is not.",
    ),
    ("/list?sort=%00", "The query parameter 'sort' contains a NUL character."),
    ("/list?desc=yes", "The query parameter 'desc' must be one of '', '0', '1'; 'yes' is not."),
    ("/list?a%00=1", "A query parameter name contains a NUL character."),
    ("/display/cr_campaign?page=99999999999999999999", PAGE_RULE.format("'99999999999999999999'")),
    ("/display/cr_campaign?page=-1", PAGE_RULE.format("'-1'")),
    ("/display/cr_campaign?page=1.5", PAGE_RULE.format("'1.5'")),
    ("/display/cr_campaign?show_skipped=%00", "The query parameter 'show_skipped' contains a NUL character."),
    (
        "/display/cr_campaign?show_skipped=2",
        "The query parameter 'show_skipped' must be one of '', '0', '1'; '2' is not.",
    ),
    ("/display/cr_campaign/status.json?page=99999999999999999999", PAGE_RULE.format("'99999999999999999999'")),
    ("/display/cr_campaign/status.json?page=abc", PAGE_RULE.format("'abc'")),
    ("/worklist?mine=%00", "The query parameter 'mine' contains a NUL character."),
    ("/worklist?mine=maybe", "The query parameter 'mine' must be one of '', '0', '1'; 'maybe' is not."),
    ("/worklist?x=%C3%28", "The query string is not valid UTF-8."),
]


@pytest.mark.parametrize(("path", "message"), BAD_QUERIES)
def test_bad_query_parameters_are_400_with_the_reason(
    users: Callable[[str], TestClient], path: str, message: str
) -> None:
    refused(users("admin").get(f"{BASE}{path}"), message)


def test_bad_query_on_the_run_pages_is_400_and_the_run_is_untouched(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    run_id = make_run("cr_campaign", state="running")
    client = users("admin")
    refused(
        client.get(f"{run_url('cr_campaign', run_id)}?tab=%00"), "The query parameter 'tab' contains a NUL character."
    )
    refused(
        client.get(f"{run_url('cr_campaign', run_id)}/status.json?x=%1B"),
        "The query parameter 'x' contains the control character U+001B.",
    )
    assert badge(client.get(run_url("cr_campaign", run_id))) == "running"


def test_a_page_past_the_last_is_empty_as_in_the_rest_api(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    run_id = make_run("cr_campaign", state="success")
    client = users("admin")
    far = client.get(f"{BASE}/display/cr_campaign", params={"page": forms.PAGE_MAX})
    assert far.status_code == 200
    assert ROW.findall(far.text) == []
    assert client.get(f"{BASE}/display/cr_campaign/status.json", params={"page": 500}).json() == {"runs": []}
    listed = client.get(f"{BASE}/list", params={"page": forms.PAGE_MAX})
    assert listed.status_code == 200 and ROW.findall(listed.text) == []
    assert ROW.findall(client.get(f"{BASE}/display/cr_campaign", params={"page": "001"}).text) == [run_id]


def test_page_rules_are_the_rest_apis() -> None:
    """The same limits as the API: its last page, its id and user-name lengths."""
    from campaign_runs.api.app import app
    from campaign_runs.domain import ID_MAX, USERNAME_MAX

    schema = app.openapi()
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/campaigns/{dag_id}/runs"]["get"]["parameters"]}
    assert parameters["page"]["maximum"] == forms.PAGE_MAX
    assert parameters["dag_id"]["maxLength"] == forms.LIMITS["dag_id"] == ID_MAX
    assert forms.LIMITS["to_user"] == USERNAME_MAX


# ------------------------------------------------------------------ path segments

BAD_PATHS = [
    ("/display/cr%00campaign", "The campaign id contains a NUL character."),
    ("/display/cr%07campaign", "The campaign id contains the control character U+0007."),
    (f"/display/{LONG_ID}", "The campaign id is 251 characters long; the limit is 250."),
    ("/display/cr%FFcampaign", "The campaign id is not valid UTF-8 text."),
    ("/display/cr%00campaign/status.json", "The campaign id contains a NUL character."),
    ("/display/cr_campaign/run/a%00b", "The run id contains a NUL character."),
    (f"/display/cr_campaign/run/{LONG_ID}", "The run id is 251 characters long; the limit is 250."),
    ("/display/cr_campaign/run/a%7Fb/status.json", "The run id contains the control character U+007F."),
    (f"/display/{LONG_ID}/run/x/status.json", "The campaign id is 251 characters long; the limit is 250."),
]


@pytest.mark.parametrize(("path", "message"), BAD_PATHS)
def test_bad_path_segments_are_400_with_the_reason(users: Callable[[str], TestClient], path: str, message: str) -> None:
    refused(users("admin").get(f"{BASE}{path}"), message)


def test_airflows_own_pages_are_not_guarded(api_app: Any) -> None:
    """The guard is on the plugin's blueprint only: Airflow's login page does not answer it."""
    with TestClient(api_app, follow_redirects=False) as client:
        response = client.get("/auth/login/", params={"next": "/x", "junk": "a\x01b"})
        assert response.status_code == 200
        assert "control character" not in response.text


# ------------------------------------------------------------------ Stop / Restart / Skip forms


def nothing_changed(dag_id: str, run_id: str, runs: int) -> None:
    assert count(run_action) == 0
    assert record_status(dag_id, run_id) is None
    assert dag_run_count(dag_id) == runs


BAD_ACTION_FORMS = [
    ({"note": "a\x00b"}, "The note contains a NUL character."),
    ({"note": "a\x01b"}, "The note contains the control character U+0001."),
    ({"note": "ok", "origin": "display\x00"}, "The field 'origin' contains a NUL character."),
    (
        {"note": "ok", "origin": "elsewhere"},
        "The field 'origin' must be one of 'display', 'run', 'worklist'; 'elsewhere' is not.",
    ),
    ({"note": "ok", "unpause": "yes"}, "The field 'unpause' must be one of '', 'on'; 'yes' is not."),
    ({"note": "ok", "idempotency_key": "k" * 257}, "The idempotency key is 257 characters long; the limit is 256."),
    ({"note": "ok", "idempotency_key": "k\x00"}, "The idempotency key contains a NUL character."),
    ({"note": "ok", "extra": "e" * 1025}, "The field 'extra' is 1025 characters long; the limit is 1024."),
    ({"note": "ok", "x\x00": "1"}, "A field name contains a NUL character."),
]


@pytest.mark.parametrize("action", ["stop", "restart", "skip"])
@pytest.mark.parametrize(("fields", "message"), BAD_ACTION_FORMS)
def test_bad_action_form_fields_are_400_and_nothing_changes(
    users: Callable[[str], TestClient],
    make_run: Callable[..., str],
    action: str,
    fields: dict[str, str],
    message: str,
) -> None:
    run_id = make_run("cr_campaign", state="running" if action == "stop" else "failed")
    client = users("alice")
    token = csrf_token(client.get(f"{BASE}/list").text)
    response = client.post(f"{run_url('cr_campaign', run_id)}/{action}", data={**fields, "csrf_token": token})
    refused(response, message)
    nothing_changed("cr_campaign", run_id, runs=1)
    assert badge(client.get(run_url("cr_campaign", run_id))) == ("running" if action == "stop" else "failed")


def test_invalid_utf8_in_a_form_is_400_and_nothing_changes(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    run_id = make_run("cr_campaign", state="running")
    client = users("alice")
    token = csrf_token(client.get(f"{BASE}/list").text)
    response = client.post(
        f"{run_url('cr_campaign', run_id)}/stop",
        content=b"note=caf%E9&csrf_token=" + token.encode(),  # Latin-1, not UTF-8
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    refused(response, "The form is not valid UTF-8.")
    nothing_changed("cr_campaign", run_id, runs=1)


BAD_ACTION_PATHS = [
    ("cr%00campaign", "{run}", "stop", "The campaign id contains a NUL character."),
    (LONG_ID, "{run}", "stop", "The campaign id is 251 characters long; the limit is 250."),
    ("cr_campaign", "{run}%00", "stop", "The run id contains a NUL character."),
    ("cr_campaign", LONG_ID, "stop", "The run id is 251 characters long; the limit is 250."),
    ("cr_campaign", "{run}", "st%00op", "The action contains a NUL character."),
    ("cr_campaign", "{run}", "s" * 251, "The action is 251 characters long; the limit is 250."),
    ("cr_campaign", "{run}", "stop?page=%00", "The page contains a NUL character."),
]


@pytest.mark.parametrize(("dag_id", "run_id", "action", "message"), BAD_ACTION_PATHS)
def test_bad_action_paths_are_400_and_nothing_changes(
    users: Callable[[str], TestClient],
    make_run: Callable[..., str],
    dag_id: str,
    run_id: str,
    action: str,
    message: str,
) -> None:
    running = make_run("cr_campaign", state="running")
    client = users("alice")
    token = csrf_token(client.get(f"{BASE}/list").text)
    url = f"{BASE}/display/{dag_id}/run/{run_id.format(run=running)}/{action}"
    refused(client.post(url, data={"note": "halt", "csrf_token": token}), message)
    nothing_changed("cr_campaign", running, runs=1)


def test_unknown_action_stays_404_as_in_the_rest_api(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    run_id = make_run("cr_campaign", state="running")
    client = users("alice")
    token = csrf_token(client.get(f"{BASE}/list").text)
    response = client.post(f"{run_url('cr_campaign', run_id)}/explode", data={"note": "x", "csrf_token": token})
    refused(response, "Unknown action 'explode'; the actions are stop, restart, skip.", status=404)
    nothing_changed("cr_campaign", run_id, runs=1)


def test_too_long_note_stays_422_as_in_the_rest_api(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    run_id = make_run("cr_campaign", state="running")
    client = users("alice")
    token = csrf_token(client.get(f"{BASE}/list").text)
    response = client.post(f"{run_url('cr_campaign', run_id)}/stop", data={"note": "n" * 2001, "csrf_token": token})
    assert response.status_code == 422
    assert flashes(response) == [LONG_NOTE_REFUSED]
    nothing_changed("cr_campaign", run_id, runs=1)


@pytest.mark.parametrize(
    ("token", "message"),
    [(None, "The CSRF token is missing."), ("forged", "The CSRF token is invalid."), ("a\x00b", None)],
)
def test_missing_or_wrong_csrf_token_is_400_with_the_reason(
    users: Callable[[str], TestClient], make_run: Callable[..., str], token: str | None, message: str | None
) -> None:
    run_id = make_run("cr_campaign", state="running")
    client = users("alice")
    data = {"note": "halt"} if token is None else {"note": "halt", "csrf_token": token}
    response = client.post(f"{run_url('cr_campaign', run_id)}/stop", data=data)
    assert response.status_code == 400
    assert len(flashes(response)) == 1 and "CSRF token" in flashes(response)[0]
    if message is not None:
        refused(response, message)
    nothing_changed("cr_campaign", run_id, runs=1)
    reassign = client.post(f"{BASE}/worklist/reassign", data={"dag_id": "cr_campaign", "run_id": run_id})
    refused(reassign, "The CSRF token is missing.")


# ------------------------------------------------------------------ work-list reassign form


@pytest.fixture
def on_alices_list(users: Callable[[str], TestClient], make_run: Callable[..., str]) -> str:
    """A run alice stopped, now on her work list."""
    from campaign_runs import core

    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "running"})
    alice = users("alice")
    token = csrf_token(alice.get(f"{BASE}/list").text)
    assert (
        alice.post(f"{run_url('cr_campaign', run_id)}/stop", data={"note": "halt", "csrf_token": token}).status_code
        == 303
    )
    set_ti_state("cr_campaign", run_id, "build_audience", "failed")
    core.finish_stopping_runs()
    assert count(worklist_entry, run_id=run_id, assignee="alice") == 1
    return run_id


BAD_REASSIGN_FORMS = [
    ({"dag_id": "cr\x00campaign"}, "The campaign id contains a NUL character."),
    ({"dag_id": LONG_ID}, "The campaign id is 251 characters long; the limit is 250."),
    ({"run_id": "{run}\x00"}, "The run id contains a NUL character."),
    ({"run_id": LONG_ID}, "The run id is 251 characters long; the limit is 250."),
    ({"run_id": "{run}\n"}, "The run id contains the control character U+000A."),
    ({"to_user": "b\x00ob"}, "The user name contains a NUL character."),
    ({"to_user": "b" * 257}, "The user name is 257 characters long; the limit is 256."),
    ({"to_user": "bob\x1b"}, "The user name contains the control character U+001B."),
    ({"note": "moved\x00"}, "The note contains a NUL character."),
]


@pytest.mark.parametrize(("fields", "message"), BAD_REASSIGN_FORMS)
def test_bad_reassign_fields_are_400_and_nothing_changes(
    users: Callable[[str], TestClient], on_alices_list: str, fields: dict[str, str], message: str
) -> None:
    admin = users("admin")
    token = csrf_token(admin.get(f"{BASE}/worklist").text)
    data = {"dag_id": "cr_campaign", "run_id": on_alices_list, "to_user": "bob", "csrf_token": token}
    data.update({name: value.format(run=on_alices_list) for name, value in fields.items()})
    refused(admin.post(f"{BASE}/worklist/reassign", data=data), message)
    assert count(worklist_entry, run_id=on_alices_list, assignee="alice") == 1
    assert count(run_action, run_id=on_alices_list) == 1  # the stop only


def test_too_long_reassign_note_stays_422(users: Callable[[str], TestClient], on_alices_list: str) -> None:
    admin = users("admin")
    token = csrf_token(admin.get(f"{BASE}/worklist").text)
    data = {"dag_id": "cr_campaign", "run_id": on_alices_list, "to_user": "bob", "note": "n" * 2001}
    response = admin.post(f"{BASE}/worklist/reassign", data={**data, "csrf_token": token})
    refused(response, LONG_NOTE_REFUSED, status=422)
    assert count(worklist_entry, run_id=on_alices_list, assignee="alice") == 1
