"""Hypothesis fuzzing of the campaign pages: generated paths, queries and forms never give a server error.

A logged-in administrator with a valid CSRF token sends them; any answer that is not a success or a redirect
is 400, 404, 409 or 422 and says why. Deterministic (``derandomize``) and bounded (``max_examples``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import BASE, csrf_token, flashes
from tests.campaign_runs.pages.fab.test_campaigns import login as login_

EXAMPLES = 120
REFUSALS = {400, 404, 409, 422}
# Any character, the troublesome ones often: NUL, controls, a lone surrogate, U+FFFD, '/', '%', non-ASCII.
CHARS = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(["\x00", "\x01", "\n", "\x7f", "\x85", "\ufffd", "/", "%", "?", "&", "=", "+", "é", "…"]),
)
TEXT = st.text(CHARS, max_size=40) | st.sampled_from(["", "1", "-1", "0", "99999999999999999999", "on", "x" * 300])
NUMBERS = st.integers(min_value=-(10**30), max_value=10**30).map(str)
QUERY_NAMES = st.sampled_from(["page", "q", "sort", "desc", "show_skipped", "mine", "other"]) | st.text(
    CHARS, max_size=5
)
QUERY = st.dictionaries(QUERY_NAMES, TEXT | NUMBERS, max_size=4)
FORM_NAMES = st.sampled_from(["note", "origin", "unpause", "idempotency_key", "dag_id", "run_id", "to_user", "x"])
FORM = st.dictionaries(FORM_NAMES, TEXT | st.text(CHARS, max_size=3000), max_size=5)
SEGMENT = TEXT | st.sampled_from(["cr_campaign", "cr_plain", "no_such_dag"])
PAGES = st.sampled_from(
    [
        "/list",
        "/",
        "/worklist",
        "/display/{dag}",
        "/display/{dag}/status.json",
        "/display/{dag}/run/{run}",
        "/display/{dag}/run/{run}/status.json",
    ]
)
ACTIONS = st.sampled_from(["stop", "restart", "skip", "explode"]) | TEXT
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@pytest.fixture
def admin(api_app: Any) -> Iterator[TestClient]:
    with login_(api_app, "admin") as client:
        yield client


def segment(value: str) -> str:
    """A path segment as a browser sends it: every character percent-encoded (invalid UTF-8 kept as is)."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def query(values: dict[str, str]) -> str:
    pairs = [(k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass")) for k, v in values.items()]
    return urlencode(pairs)


def answered_well(response: Any) -> None:
    """Never a server error; a refusal is a declared status that says why."""
    status = response.status_code
    assert status < 500, response.text[:2000]
    if status < 400:
        return
    if status == 405:  # a POST whose path routes to a page (an empty or '/' segment, "status.json"): Flask's
        assert "Method Not Allowed" in response.text
        assert response.request.method == "POST" and not response.url.path.startswith(f"{BASE}/worklist/")
        return
    assert status in REFUSALS, (status, response.text[:500])
    if response.headers.get("content-type", "").startswith("application/json"):
        assert response.json().get("detail"), response.text
    elif flashes(response):
        assert all(flashes(response))
    else:  # a path that routes to no page: Airflow's own "not found"
        assert status == 404 and re.search(r"not found|cannot be found", response.text, re.I), response.text[:500]


def test_generated_page_requests_never_fail(admin: TestClient, make_run: Callable[..., str]) -> None:
    running = make_run("cr_campaign", state="running")

    @given(page=PAGES, dag=SEGMENT, run=SEGMENT | st.just(running), params=QUERY)
    @FUZZ
    def check(page: str, dag: str, run: str, params: dict[str, str]) -> None:
        path = page.format(dag=segment(dag), run=segment(run))
        answered_well(admin.get(f"{BASE}{path}?{query(params)}"))

    check()


def test_generated_action_posts_never_fail(admin: TestClient, make_run: Callable[..., str], smtp_server: Any) -> None:
    runs = [make_run("cr_campaign", state=state) for state in ("running", "failed", "failed")]
    token = csrf_token(admin.get(f"{BASE}/list").text)

    @given(dag=SEGMENT, run=st.sampled_from(runs) | SEGMENT, action=ACTIONS, form=FORM, params=QUERY)
    @FUZZ
    def check(dag: str, run: str, action: str, form: dict[str, str], params: dict[str, str]) -> None:
        url = f"{BASE}/display/{segment(dag)}/run/{segment(run)}/{segment(action)}?{query(params)}"
        body = query({**form, "csrf_token": token})
        headers = {"content-type": "application/x-www-form-urlencoded"}
        answered_well(admin.post(url, content=body.encode(), headers=headers))

    check()


def test_generated_reassign_posts_never_fail(admin: TestClient, make_run: Callable[..., str]) -> None:
    run_id = make_run("cr_campaign", state="failed")
    token = csrf_token(admin.get(f"{BASE}/worklist").text)
    ids = st.sampled_from(["cr_campaign", run_id, "admin", "bob"]) | TEXT

    @given(dag=ids, run=ids, to_user=ids, form=FORM)
    @FUZZ
    def check(dag: str, run: str, to_user: str, form: dict[str, str]) -> None:
        fields = {"dag_id": dag, "run_id": run, "to_user": to_user, **form, "csrf_token": token}
        headers = {"content-type": "application/x-www-form-urlencoded"}
        answered_well(admin.post(f"{BASE}/worklist/reassign", content=query(fields).encode(), headers=headers))

    check()
