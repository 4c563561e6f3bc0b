"""The suppression list page on both hosts: FAB's ``/pluginsv2`` view and the plugin's own pages (SimpleAuthManager).

The same page code (``pages.suppressions``) behind both: the same template, fields, permission rule (work-list
administrators) and statuses, a CSRF token on every POST, the FAB URLs leading to the plugin's own page under
another auth manager. Every refusal changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_runs.core import suppressions as core
from starlette.testclient import TestClient

from tests.campaign_runs.pages.asgi.hosts import FAB_BASE, UI, Host, simple_only
from tests.campaign_runs.pages.fab.test_campaigns import HOSTILE, csrf_token, flashes
from tests.campaign_runs.pages.fab.test_campaigns import text as words
from tests.campaign_runs.pages.fab.test_suppressions import ROW, listed

CSV = b"channel,address,reason\nsms,+33612345678,bounced\n"


def page_url(host: Host) -> str:
    return f"{host.base}/suppressions/"


@pytest.fixture
def sink_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private ``[campaign_runs] sink_dir``: the list is its ``suppressions.sqlite``."""
    path = tmp_path / "sinks"
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__SINK_DIR", str(path))
    yield path


def links(html: str) -> list[str]:
    """Where the page's links to the suppression list go (nav and campaigns page)."""
    return re.findall(r'<a (?:id="[^"]+" )?href="([^"]*/suppressions/)">Suppression list</a>', html)


# ------------------------------------------------------------------ both hosts


def test_an_administrator_lists_adds_imports_exports_and_removes_on_both_hosts(host: Host, sink_dir: Path) -> None:
    core.add_suppression("admin", "email", "kept@example.com", source=HOSTILE)
    admin = host.login(host.app, "admin")

    page = admin.get(page_url(host))

    assert page.status_code == 200, words(page)[:300]
    assert ROW.findall(page.text) == ["kept@example.com"] and "email: 1, sms: 0, push: 0" in words(page)
    assert HOSTILE not in page.text and "&lt;script&gt;" in page.text
    assert f'action="{page_url(host)}add"' in page.text and f'href="{page_url(host)}export.csv"' in page.text
    token = csrf_token(page.text)
    added = admin.post(
        f"{page_url(host)}add", data={"channel": "email", "address": "New@Example.com", "csrf_token": token}
    )
    assert (added.status_code, added.headers["location"]) == (303, page_url(host)), words(added)[:300]
    assert flashes(admin.get(page_url(host))) == ["New@Example.com is now suppressed on email."]
    upload = {"file": ("list.csv", CSV, "text/csv")}
    imported = admin.post(f"{page_url(host)}import", data={"csrf_token": token, "back_channel": "sms"}, files=upload)
    assert (imported.status_code, imported.headers["location"]) == (303, f"{page_url(host)}?channel=sms")
    shown = admin.get(imported.headers["location"])
    assert flashes(shown) == ["Imported list.csv: 1 added, 0 already on the list."]
    assert ROW.findall(shown.text) == ["+33612345678"]
    exported = admin.get(f"{page_url(host)}export.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert [line.split(",")[1] for line in exported.text.splitlines()[1:]] == [
        "kept@example.com",
        "new@example.com",
        "+33612345678",
    ]
    removed = admin.post(
        f"{page_url(host)}remove", data={"channel": "email", "address": "kept@example.com", "csrf_token": token}
    )
    assert removed.status_code == 303
    assert listed(sink_dir) == [
        ("email", "new@example.com", "manual", "page", "admin"),
        ("sms", "+33612345678", "bounced", "page import list.csv", "admin"),
    ]


def test_refusals_have_the_same_status_on_both_hosts_and_change_nothing(host: Host, sink_dir: Path) -> None:
    core.add_suppression("admin", "email", "kept@example.com")
    admin, alice = host.login(host.app, "admin"), host.login(host.app, "alice")
    token = csrf_token(admin.get(page_url(host)).text)

    missing = admin.post(f"{page_url(host)}add", data={"channel": "email", "address": "new@example.com"})
    bad_channel = admin.post(
        f"{page_url(host)}add", data={"channel": "fax", "address": "x@example.com", "csrf_token": token}
    )
    unknown = admin.post(f"{page_url(host)}remove", data={"channel": "sms", "address": "+3361", "csrf_token": token})
    too_big = admin.post(
        f"{page_url(host)}import", data={"csrf_token": token}, files={"file": ("big.csv", b"x" * (5 * 2**20 + 1))}
    )
    no_file = admin.post(f"{page_url(host)}import", data={"csrf_token": token})
    nul = admin.post(
        f"{page_url(host)}add", data={"channel": "email", "address": "x\x00@example.com", "csrf_token": token}
    )

    assert missing.status_code == 400 and "CSRF token is missing" in " ".join(flashes(missing))
    assert bad_channel.status_code == 422 and "Unknown channel 'fax'" in " ".join(flashes(bad_channel))
    assert unknown.status_code == 404 and too_big.status_code == 413 and no_file.status_code == 400
    assert nul.status_code == 400 and flashes(nul) == ["The address contains a NUL character."]
    refused = alice.get(page_url(host))
    assert refused.status_code == 403 and "kept@example.com" not in refused.text
    assert flashes(refused) == ["Only work-list administrators may manage the suppression list."]
    alices = csrf_token(refused.text)
    for path, data in (
        ("add", {"channel": "email", "address": "new@example.com"}),
        ("remove", {"channel": "email", "address": "kept@example.com"}),
    ):
        assert alice.post(f"{page_url(host)}{path}", data={**data, "csrf_token": alices}).status_code == 403
    assert alice.get(f"{page_url(host)}export.csv").status_code == 403
    anonymous = TestClient(host.app, follow_redirects=False)
    assert anonymous.get(page_url(host)).status_code == 302
    assert listed(sink_dir) == [("email", "kept@example.com", "manual", "manual", "admin")]


def test_the_nav_and_the_campaigns_page_link_the_list_for_administrators_only(host: Host, sink_dir: Path) -> None:
    admin, alice = host.login(host.app, "admin"), host.login(host.app, "alice")

    campaigns, worklist = admin.get(f"{host.base}/list").text, admin.get(f"{host.base}/worklist").text

    assert links(campaigns) == [page_url(host)] * 3  # the top bar, the framed nav, the campaigns page's links
    assert links(worklist) == [page_url(host)] * 2 and links(admin.get(page_url(host)).text) == [page_url(host)] * 2
    assert links(alice.get(f"{host.base}/list").text) == [] and links(alice.get(f"{host.base}/worklist").text) == []


def test_a_page_cursor_as_long_as_a_push_token_is_read_and_a_longer_query_refused(host: Host, sink_dir: Path) -> None:
    token = "t" * 4000
    core.add_suppression("admin", "push", token)
    core.add_suppression("admin", "push", "u" * 4000)
    admin = host.login(host.app, "admin")

    after = admin.get(page_url(host), params={"channel": "push", "after": f"push:{token}"})
    too_long = admin.get(page_url(host), params={"after": "push:" + "t" * 4200})

    assert after.status_code == 200, words(after)[:300]
    assert ROW.findall(after.text) == ["u" * 4000]
    assert too_long.status_code == 400 and flashes(too_long) == [
        "The query string is 4213 bytes long; the limit is 4096."
    ]


# ------------------------------------------------------------------ SimpleAuthManager


@simple_only
def test_another_users_csrf_token_and_no_login_are_refused(host: Host, sink_dir: Path) -> None:
    admin = host.login(host.app, "admin")
    foreign = csrf_token(host.login(host.app, "bob").get(f"{UI}/list").text)
    anonymous = TestClient(host.app, follow_redirects=False)

    refused = admin.post(
        f"{UI}/suppressions/add", data={"channel": "email", "address": "a@b.co", "csrf_token": foreign}
    )
    opened = anonymous.get(f"{UI}/suppressions/")
    posted = anonymous.post(f"{UI}/suppressions/add", data={"channel": "email", "address": "a@b.co"})

    assert refused.status_code == 400 and "The CSRF token is missing or wrong" in words(refused)
    assert opened.status_code == 302 and opened.headers["location"].startswith("/auth/login?next=")
    assert posted.status_code == 401
    assert listed(sink_dir) == []


@simple_only
def test_fab_urls_lead_to_the_list_here(host: Host, sink_dir: Path) -> None:
    admin = host.login(host.app, "admin")

    opened = admin.get(f"{FAB_BASE}/suppressions/", params={"channel": "sms"})
    posted = admin.post(f"{FAB_BASE}/suppressions/add", data={"channel": "email", "address": "a@b.co"})
    followed = admin.get(posted.headers["location"])  # a browser follows a 303 with GET: the list, nothing added

    assert (opened.status_code, opened.headers["location"]) == (302, f"{UI}/suppressions/?channel=sms")
    assert admin.get(opened.headers["location"]).status_code == 200
    assert (posted.status_code, posted.headers["location"]) == (303, f"{UI}/suppressions/add")
    assert (followed.status_code, followed.headers["location"]) == (303, f"{UI}/suppressions/")
    assert admin.get(f"{UI}/suppressions/explode").status_code == 404
    assert listed(sink_dir) == []
