"""How the FAB pages read (issue 25, Looks): work list, campaigns page, Monitor charts, history, schedule preview."""

# ruff: noqa: F811  (pytest fixtures imported from other test modules)
from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import unescape

from campaign_runs.core.events import record_event
from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import BASE, HOSTILE, stopped_run, text, users  # noqa: F401
from tests.campaign_runs.pages.fab.test_monitor import _chart, admin, history  # noqa: F401

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def rows_of(html: str) -> dict[str, str]:
    """The work list's rows by run id."""
    return dict(re.findall(r'<tr data-run-id="([^"]+)">(.*?)</tr>', html, re.S))


def menu_of(row: str) -> str:
    """The row's one action menu (a ``<details>``): every form of the row is inside it."""
    menus = re.findall(r'<details class="cr-menu">.*?</details>', row, re.S)
    assert len(menus) == 1, row
    assert len(re.findall(r"<form\b", row)) == len(re.findall(r"<form\b", menus[0])) > 0
    return menus[0]


def fields_of(form: str) -> dict[str, str]:
    """The hidden fields a form posts, by name."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def test_the_work_list_is_named_as_the_nav_and_each_row_has_one_action_menu(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    alice, admin_ = users("alice"), users("admin")
    run_id = stopped_run(make_run, alice)

    everyone = admin_.get(f"{BASE}/worklist")
    assert "<title>My work list - Campaign Runs</title>" in everyone.text
    assert "<h1>My work list</h1>" in everyone.text and "Work lists of everyone" not in everyone.text
    assert "Everyone's entries (you are a work-list admin)" in unescape(everyone.text)
    assert re.findall(r"<th>([^<]+)</th>", everyone.text.split('id="cr-worklist"', 1)[1].split("</thead>")[0]) == [
        "Run",
        "Campaign",
        "Assigned to",
        "Why",
        "Note",
        "Since",
        "Actions",
    ]
    menu = menu_of(rows_of(everyone.text)[run_id])
    assert f'<summary aria-label="Actions on run {run_id}">Actions</summary>' in menu
    forms = re.findall(r'<form class="cr-action cr-(\w+)".*?</form>', menu, re.S)
    assert forms == ["restart", "skip", "reassign"]
    assert all(CSRF.search(form) for form in re.findall(r"<form\b.*?</form>", menu, re.S))
    assert '<label for="cr-reassign-1">To user</label>' in menu

    mine = alice.get(f"{BASE}/worklist")
    assert "<h1>My work list</h1>" in mine.text and "work-list admin" not in mine.text
    alices = menu_of(rows_of(mine.text)[run_id])
    assert re.findall(r'<form class="cr-action cr-(\w+)"', alices) == ["restart", "skip"]

    # The menu's Skip form posts as the old inline form did: its CSRF token and fields, then back to the list.
    skip = re.search(r'<form class="cr-action cr-skip"[^>]*action="([^"]+)".*?</form>', alices, re.S)
    assert skip is not None
    posted = alice.post(unescape(skip.group(1)), data={**fields_of(skip.group(0)), "note": "Done by hand"})
    assert (posted.status_code, posted.headers["location"]) == (303, f"{BASE}/worklist")
    assert run_id not in rows_of(alice.get(f"{BASE}/worklist").text)


def test_the_campaigns_page_reads_state_stuck_stops_timezones_and_links_to_emails(
    users: Callable[[str], TestClient],
) -> None:
    page = users("viewer").get(f"{BASE}/list")
    assert page.status_code == 200
    head = page.text.split('id="cr-campaigns"', 1)[1].split("</thead>", 1)[0]
    headers = [" ".join(unescape(re.sub(r"<[^>]+>", " ", h)).split()) for h in re.findall(r"<th>(.*?)</th>", head)]
    assert headers[:8] == ["Name ▲", "Owner", "Channels", "Audience", "Schedule", "Timezone", "Next run", "State"]
    assert "Paused" not in headers
    row = re.search(r'data-dag-id="cr_campaign">(.*?)</tr>', page.text, re.S)
    assert row and '<td class="cr-timezone">Europe/Paris</td>' in row.group(1)
    shown = text(page)
    assert re.search(r"Stuck stopping \(over \d+m \d\ds\) none ", shown), shown
    assert "stopping for over" not in shown
    search = re.search(r'<input type="search"[^>]*>', page.text)
    assert search and 'placeholder="Name, description or owner"' in search.group(0)
    assert 'aria-label="Search campaigns by name, description or owner"' in search.group(0)
    links = re.search(r'<nav class="cr-toolbar" id="cr-page-links".*?</nav>', page.text, re.S)
    assert links and f'<a id="cr-emails-link" href="{BASE}/emails/">Emails</a>' in links.group(0)
    assert users("viewer").get(f"{BASE}/emails/").status_code == 200


def test_the_monitor_charts_label_their_x_axis_with_the_runs_dates(admin: TestClient, history: dict[str, str]) -> None:
    page = admin.get(f"{BASE}/monitor/cr_campaign")
    assert page.status_code == 200
    chart = _chart(page.text)
    assert len(chart["dates"]) == len(chart["runs"]) > 0
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", day) for day in chart["dates"])
    span = f"from {chart['dates'][0]} to {chart['dates'][-1]}"
    assert f'aria-label="Messages per run, by run date (UTC), {span}"' in page.text
    assert f'aria-label="Run duration in seconds, by run date (UTC), {span}"' in page.text
    assert 'title: {display: true, text: "Run date (UTC)"}' in page.text
    assert "ticks: {display: false}" not in page.text  # the axis was unlabelled


def test_the_version_history_lists_changed_fields_not_raw_json(
    users: Callable[[str], TestClient], airflow_db: None
) -> None:
    from airflow.utils.session import create_session

    details = {"run_id": "manual__x", "conf": {"audience_size": 10, "subject": HOSTILE}, "backfill": ["a", "b"]}
    with create_session() as session:
        record_event(session, dag_id="cr_campaign", kind="run_now", actor="alice", note="", details=json.dumps(details))
    display = users("alice").get(f"{BASE}/display/cr_campaign")
    assert display.status_code == 200
    versions = re.search(r'<table id="cr-versions">.*?</table>', display.text, re.S)
    assert versions
    changes = re.search(r'<ul class="cr-changes">.*?</ul>', versions.group(0), re.S)
    assert changes, versions.group(0)
    listed = re.findall(r"<li>(.*?)</li>", changes.group(0))
    items = [" ".join(unescape(re.sub(r"<[^>]+>", " ", li)).split()) for li in listed]
    assert items == [
        "run id: manual__x",
        "conf.audience size: 10",
        f"conf.subject: {HOSTILE}",
        "backfill: a, b",
    ]
    assert '{"run_id"' not in unescape(versions.group(0))  # no raw JSON
    assert HOSTILE not in display.text and "&lt;script&gt;" in changes.group(0)


def test_the_schedule_preview_of_a_utc_campaign_has_one_time_column(users: Callable[[str], TestClient]) -> None:
    alice = users("alice")
    query = {"mode": "cron", "cron": "0 9 * * MON"}
    utc = alice.get(f"{BASE}/new/preview.json", params={**query, "timezone": "UTC"}).json()
    paris = alice.get(f"{BASE}/new/preview.json", params={**query, "timezone": "Europe/Paris"}).json()
    assert (utc["one_zone"], paris["one_zone"]) == (True, False)
    form = alice.get(f"{BASE}/new")
    assert '<th id="cr-preview-local">In <span id="cr-preview-zone">' in form.text
    script = alice.get(f"{BASE}/new/static/definition_form.js").text
    assert 'document.getElementById("cr-preview-local").hidden = oneZone;' in script
