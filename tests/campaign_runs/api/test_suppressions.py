"""One-click unsubscribe without a login, and the suppression list in the REST API (administrators only)."""

# ruff: noqa: F811  (pytest fixtures imported from test_api)
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from campaign_runs.factory.suppression import open_suppressions
from campaign_runs.factory.unsubscribe import unsubscribe_token
from fastapi.testclient import TestClient

from tests.campaign_runs.api.test_runs import PREFIX, admin, alice, client, problem  # noqa: F401

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def sink_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private ``[campaign_runs] sink_dir``: the list is its ``suppressions.sqlite``."""
    path = tmp_path / "sinks"
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__SINK_DIR", str(path))
    yield path


def listed(sink_dir: Path) -> list[tuple[str, str, str, str, str, str]]:
    """Every entry, read straight from the list."""
    with open_suppressions(sink_dir=sink_dir) as suppressions:
        return [(s.channel, s.address, s.reason, s.source, s.actor, s.created_at) for s in suppressions.every()]


@pytest.fixture
def anonymous(client: TestClient) -> Iterator[TestClient]:
    """The API server with no token and no cookie."""
    with TestClient(client.app, follow_redirects=False) as fresh:
        yield fresh


def page_headers(response: Any) -> None:
    """What every unsubscribe page answers with: HTML, nosniff, never cached, framed or referred."""
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_one_click_unsubscribes_without_a_login_and_again_changes_nothing(
    anonymous: TestClient, sink_dir: Path
) -> None:
    token = unsubscribe_token("Carol@Example.com", "cr_campaign")
    url = f"{PREFIX}/unsubscribe/{token}"
    shown = anonymous.get(url)
    assert shown.status_code == 200, shown.text
    page_headers(shown)
    assert '<form method="post" id="cr-unsubscribe-form">' in shown.text
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in shown.text
    assert "Carol@Example.com" in shown.text
    assert listed(sink_dir) == []  # a GET (a link scanner) changes nothing

    done = anonymous.post(url, data=ONE_CLICK)  # form-encoded, as mail providers post it
    assert done.status_code == 200, done.text
    page_headers(done)
    assert "No more campaign emails go to" in done.text
    first = listed(sink_dir)
    assert [row[:5] for row in first] == [("email", "carol@example.com", "unsubscribed", "cr_campaign", "recipient")]

    again = anonymous.post(url, files={"List-Unsubscribe": (None, "One-Click")})  # multipart, RFC 8058's first choice
    assert (again.status_code, again.text) == (200, done.text)  # the same answer: nothing tells it was listed
    assert listed(sink_dir) == first


def _altered(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def test_a_forged_or_altered_token_or_no_one_click_body_is_a_clear_400_and_changes_nothing(
    anonymous: TestClient, sink_dir: Path
) -> None:
    token = unsubscribe_token("dave@example.com", "cr_campaign")
    forged = unsubscribe_token("dave@example.com", "cr_campaign", key=b"someone else's key")
    for bad, message in (
        (forged, "The unsubscribe link is not valid: it was altered or not made by us."),
        (_altered(token), "The unsubscribe link is not valid: it was altered or not made by us."),
        ("u1.bm9wZQ", "The unsubscribe link is malformed: it is not a complete link from our emails."),
        ("u1." + "A" * 1300, "The unsubscribe link is too long (1303 characters; at most 1200)."),
    ):
        for answer in (
            anonymous.get(f"{PREFIX}/unsubscribe/{bad}"),
            anonymous.post(f"{PREFIX}/unsubscribe/{bad}", data=ONE_CLICK),
        ):
            assert answer.status_code == 400, answer.text
            page_headers(answer)
            assert f'<p class="error" id="cr-unsubscribe-error">{message}</p>' in answer.text
    url = f"{PREFIX}/unsubscribe/{token}"
    for body in ({}, {"List-Unsubscribe": "Yes"}, {"List-Unsubscribe": "One-Click" + "x" * 5000}):
        refused = anonymous.post(url, data=body)
        assert refused.status_code == 400 and "its body must be List-Unsubscribe=One-Click" in refused.text
    markup = anonymous.get(f"{PREFIX}/unsubscribe/%3Csvg%20onload=alert(1)%3E")
    assert markup.status_code == 400 and "<svg" not in markup.text
    assert listed(sink_dir) == []


def test_only_the_unsubscribe_pages_answer_without_a_login(anonymous: TestClient, admin: dict[str, str]) -> None:
    for method, path in (
        ("GET", "/suppressions"),
        ("POST", "/suppressions"),
        ("DELETE", "/suppressions/email/a@example.com"),
        ("POST", "/suppressions/import"),
        ("GET", "/suppressions/export"),
        ("GET", "/campaigns"),
    ):
        problem(anonymous.request(method, PREFIX + path), 401, "unauthorized", "Not authenticated")
    paths = anonymous.get(f"{PREFIX}/openapi.json").json()["paths"]
    assert not [path for path in paths if "unsubscribe" in path]  # pages for people, not the JSON API
    assert {
        "/suppressions",
        "/suppressions/{channel}/{address}",
        "/suppressions/import",
        "/suppressions/export",
    } <= set(paths)


def test_an_administrator_manages_the_list(client: TestClient, admin: dict[str, str], sink_dir: Path) -> None:
    added = client.post(
        f"{PREFIX}/suppressions", json={"channel": "email", "address": "Eve@Example.com"}, headers=admin
    )
    assert (added.status_code, added.json()) == (200, {"channel": "email", "address": "Eve@Example.com", "added": True})
    again = client.post(
        f"{PREFIX}/suppressions",
        json={"channel": "email", "address": "eve@example.com", "reason": "bounced"},
        headers=admin,
    )
    assert again.json()["added"] is False
    csv = b"channel,address,reason\nsms,+33612345678,complained\npush,token-1,\n"
    imported = client.post(f"{PREFIX}/suppressions/import", content=csv, headers={**admin, "Content-Type": "text/csv"})
    assert (imported.status_code, imported.json()) == (200, {"added": 2, "already_listed": 0})

    first = client.get(f"{PREFIX}/suppressions", params={"limit": 2}, headers=admin).json()
    assert [(s["channel"], s["address"], s["reason"], s["source"], s["actor"]) for s in first["suppressions"]] == [
        ("email", "eve@example.com", "manual", "rest api", "admin"),
        ("sms", "+33612345678", "complained", "rest api import", "admin"),
    ]
    assert (first["next_after"], first["counts"]) == ("sms:+33612345678", {"email": 1, "sms": 1, "push": 1})
    rest = client.get(f"{PREFIX}/suppressions", params={"limit": 2, "after": first["next_after"]}, headers=admin)
    assert [s["address"] for s in rest.json()["suppressions"]] == ["token-1"] and rest.json()["next_after"] is None
    only_sms = client.get(f"{PREFIX}/suppressions", params={"channel": "sms"}, headers=admin).json()
    assert [s["address"] for s in only_sms["suppressions"]] == ["+33612345678"]

    exported = client.get(f"{PREFIX}/suppressions/export", headers=admin)
    assert exported.status_code == 200 and exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert exported.headers["content-disposition"] == 'attachment; filename="suppressions.csv"'
    times = {row[1]: row[5] for row in listed(sink_dir)}
    assert exported.text == (
        "channel,address,reason,source,actor,created_at\r\n"
        f"email,eve@example.com,manual,rest api,admin,{times['eve@example.com']}\r\n"
        f"sms,+33612345678,complained,rest api import,admin,{times['+33612345678']}\r\n"
        f"push,token-1,manual,rest api import,admin,{times['token-1']}\r\n"
    )

    removed = client.delete(f"{PREFIX}/suppressions/email/EVE@example.com", headers=admin)
    assert (removed.status_code, removed.json()["added"]) == (200, False)
    problem(client.delete(f"{PREFIX}/suppressions/email/eve@example.com", headers=admin), 404, "not_found", "nothing")
    assert [row[1] for row in listed(sink_dir)] == ["+33612345678", "token-1"]


def test_bad_inputs_and_non_administrators_are_refused_and_change_nothing(
    client: TestClient, admin: dict[str, str], alice: dict[str, str], sink_dir: Path
) -> None:
    base = f"{PREFIX}/suppressions"
    csv_header = {"Content-Type": "text/csv"}
    for method, path, kwargs in (
        ("GET", base, {}),
        ("POST", base, {"json": {"channel": "email", "address": "x@example.com"}}),
        ("DELETE", f"{base}/email/x@example.com", {}),
        ("POST", f"{base}/import", {"content": b"channel,address,reason\nemail,x@example.com,manual\n"}),
        ("GET", f"{base}/export", {}),
    ):
        problem(client.request(method, path, headers=alice, **kwargs), 403, "forbidden", "work-list administrators")
    problem(
        client.post(base, json={"channel": "fax", "address": "x"}, headers=admin), 422, "invalid_request", "channel"
    )
    problem(
        client.post(base, json={"channel": "email", "address": "x", "reason": "spam"}, headers=admin),
        422,
        "invalid_request",
        "reason",
    )
    problem(
        client.post(base, json={"channel": "email", "address": "not an address"}, headers=admin),
        422,
        "invalid_option",
        "'not an address' is not a email address (invalid address); nothing was added.",
    )
    problem(
        client.post(
            f"{base}/import",
            content=b"channel,address,reason\nemail,a@example.com,\nsms,12,\n",
            headers={**admin, **csv_header},
        ),
        422,
        "invalid_option",
        "Line 3: '12' is not a sms address",
    )
    problem(
        client.post(f"{base}/import", content=b"x" * (5 * 1024 * 1024 + 1), headers={**admin, **csv_header}),
        422,
        "invalid_option",
        "The file is over 5242880 bytes; nothing was imported.",
    )
    problem(client.get(base, params={"after": "fax:1"}, headers=admin), 422, "invalid_option", "page cursor")
    problem(client.get(base, params={"limit": 0}, headers=admin), 422, "invalid_request", "limit")
    assert listed(sink_dir) == []


def test_every_edge_offers_the_lists_channels_reasons_and_limits() -> None:
    from typing import get_args

    from campaign_runs.api import suppressions as api_suppressions
    from campaign_runs.cli import suppressions as cli_suppressions
    from campaign_runs.core import suppressions
    from campaign_runs.factory.suppression import CHANNELS, REASONS
    from campaign_runs.factory.unsubscribe import PATH
    from campaign_runs.pages import suppressions as views_suppressions

    assert get_args(api_suppressions.Channel) == CHANNELS == cli_suppressions.CHANNELS == views_suppressions.CHANNELS
    assert get_args(api_suppressions.Reason) == REASONS == cli_suppressions.REASONS
    assert sorted(views_suppressions.REASONS) == sorted(REASONS)
    limits = {api_suppressions.MAX_IMPORT_BYTES, cli_suppressions.MAX_IMPORT_BYTES, views_suppressions.MAX_IMPORT_BYTES}
    assert limits == {suppressions.MAX_IMPORT_BYTES}
    assert f"{PREFIX}/unsubscribe" == PATH  # the links in the emails name the route the API serves
