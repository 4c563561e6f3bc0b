"""The suppression list page (FAB): administrators only, CSRF on every POST, escaped output, refusals change nothing."""

# ruff: noqa: F811  (pytest fixtures imported from test_views)
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from campaign_runs.core import suppressions as core
from campaign_runs.factory.suppression import open_suppressions
from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import BASE, HOSTILE, csrf_token, flashes, text, users  # noqa: F401

PAGE = f"{BASE}/suppressions/"
ROW = re.compile(r'<td class="cr-note cr-suppression-address">([^<]*)</td>')


@pytest.fixture
def sink_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private ``[campaign_runs] sink_dir``: the list is its ``suppressions.sqlite``."""
    path = tmp_path / "sinks"
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__SINK_DIR", str(path))
    yield path


def listed(sink_dir: Path) -> list[tuple[str, str, str, str, str]]:
    """Every entry, read straight from the list."""
    with open_suppressions(sink_dir=sink_dir) as suppressions:
        return [(s.channel, s.address, s.reason, s.source, s.actor) for s in suppressions.every()]


def test_an_administrator_adds_imports_exports_and_removes(users: Any, sink_dir: Path) -> None:
    core.add_suppression("admin", "email", "kept@example.com", source=HOSTILE)
    admin = users("admin")
    page = admin.get(PAGE)
    assert page.status_code == 200, page.text[:300]
    assert ROW.findall(page.text) == ["kept@example.com"]
    assert HOSTILE not in page.text and "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page.text
    assert "email: 1, sms: 0, push: 0" in text(page)

    token = csrf_token(page.text)
    assert admin.post(f"{PAGE}add", data={"channel": "email", "address": "new@example.com"}).status_code == 400
    added = admin.post(f"{PAGE}add", data={"channel": "email", "address": "New@Example.com", "csrf_token": token})
    assert (added.status_code, added.headers["location"]) == (303, PAGE)
    assert flashes(admin.get(PAGE)) == ["New@Example.com is now suppressed on email."]

    upload = {"file": ("list.csv", b"channel,address,reason\nsms,+33612345678,bounced\n", "text/csv")}
    imported = admin.post(f"{PAGE}import", data={"csrf_token": token, "back_channel": "sms"}, files=upload)
    assert (imported.status_code, imported.headers["location"]) == (303, f"{PAGE}?channel=sms")
    shown = admin.get(imported.headers["location"])
    assert flashes(shown) == ["Imported list.csv: 1 added, 0 already on the list."]
    assert ROW.findall(shown.text) == ["+33612345678"]
    assert listed(sink_dir) == [
        ("email", "kept@example.com", "manual", HOSTILE, "admin"),
        ("email", "new@example.com", "manual", "page", "admin"),
        ("sms", "+33612345678", "bounced", "page import list.csv", "admin"),
    ]

    exported = admin.get(f"{PAGE}export.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["x-content-type-options"] == "nosniff"
    assert [line.rsplit(",", 1)[0] for line in exported.text.splitlines()] == [
        "channel,address,reason,source,actor",
        'email,kept@example.com,manual,"<script>alert(""pwned"")</script>",admin',
        "email,new@example.com,manual,page,admin",
        "sms,+33612345678,bounced,page import list.csv,admin",
    ]

    removed = admin.post(f"{PAGE}remove", data={"channel": "email", "address": "kept@example.com", "csrf_token": token})
    assert removed.status_code == 303
    assert [row[1] for row in listed(sink_dir)] == ["new@example.com", "+33612345678"]


def test_bad_inputs_are_refused_with_the_reason_and_change_nothing(users: Any, sink_dir: Path) -> None:
    admin = users("admin")
    token = csrf_token(admin.get(PAGE).text)
    for path, data, files, status, message in (
        (
            "add",
            {"channel": "email", "address": "not an address"},
            None,
            422,
            "'not an address' is not a email address",
        ),
        ("add", {"channel": "fax", "address": "x@example.com"}, None, 422, "Unknown channel 'fax'"),
        ("add", {"channel": "email", "address": "x@example.com", "reason": "spam"}, None, 422, "unknown reason 'spam'"),
        (
            "add",
            {"channel": "email", "address": "x\x00@example.com"},
            None,
            400,
            "The address contains a NUL character.",
        ),
        ("remove", {"channel": "email", "address": "x@example.com"}, None, 404, "is not on the email suppression list"),
        ("import", {}, None, 400, "Choose a CSV file to import"),
        (
            "import",
            {},
            {"file": ("bad.csv", b"channel,address,reason\nemail,a@example.com,\nemail,<svg onload=alert(1)>,\n")},
            422,
            "Line 3: '<svg onload=alert(1)>' is not a email address",
        ),
        ("import", {}, {"file": ("big.csv", b"x" * (5 * 1024 * 1024 + 1))}, 413, "The file is over 5242880 bytes"),
    ):
        answer = admin.post(f"{PAGE}{path}", data={**data, "csrf_token": token}, files=files)
        assert answer.status_code == status, (path, data, answer.text[:500])
        assert [m for m in flashes(answer) if message in m], (message, flashes(answer))
        assert "<svg" not in answer.text
    refused = admin.get(PAGE, params={"channel": "<svg onload=alert(1)>"})
    assert refused.status_code == 422 and "<svg" not in refused.text
    assert listed(sink_dir) == []


def test_only_administrators_and_only_logged_in(users: Any, api_app: Any, sink_dir: Path) -> None:
    core.add_suppression("admin", "email", "kept@example.com")
    alice = users("alice")
    page = alice.get(PAGE)
    assert page.status_code == 403
    assert flashes(page) == ["Only work-list administrators may manage the suppression list."]
    assert "kept@example.com" not in page.text
    token = csrf_token(page.text)
    for path, data in (
        ("add", {"channel": "email", "address": "new@example.com"}),
        ("remove", {"channel": "email", "address": "kept@example.com"}),
    ):
        assert alice.post(f"{PAGE}{path}", data={**data, "csrf_token": token}).status_code == 403
    assert alice.get(f"{PAGE}export.csv").status_code == 403

    anonymous = TestClient(api_app, follow_redirects=False)
    assert anonymous.get(PAGE).status_code == 302
    assert anonymous.get(f"{PAGE}export.csv").status_code == 302
    no_token = anonymous.post(f"{PAGE}add", data={"channel": "email", "address": "new@example.com"})
    assert no_token.status_code == 400 and "The CSRF token is missing." in flashes(no_token)
    login_token = csrf_token(anonymous.get("/auth/login/").text)  # a token of an anonymous session
    posted = anonymous.post(
        f"{PAGE}add", data={"channel": "email", "address": "new@example.com", "csrf_token": login_token}
    )
    assert (posted.status_code, posted.text) == (401, "Not logged in.")
    assert listed(sink_dir) == [("email", "kept@example.com", "manual", "manual", "admin")]
