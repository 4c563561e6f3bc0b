"""The campaign display as laid out for Airflow's Campaign tab: the run schedule first, About and the campaign
actions after it, times in the campaign's zone and UTC, buttons named after what they do, and a paused
campaign that says why Run now is gone and offers Resume (with missed slots only for a scheduled campaign)."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from pathlib import Path

import pendulum
from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import BASE, run_url, users  # noqa: F401  (fixture)
from tests.campaign_runs.pages.fab.test_definitions import action_url, folder, post  # noqa: F401  (fixture)


def _position(html: str, marker: str) -> int:
    where = html.find(marker)
    assert where >= 0, f"{marker} not on the page"
    return where


def test_the_run_schedule_comes_first_then_about_then_the_campaign_actions(
    folder: Path,  # noqa: F811
    users: Callable[[str], TestClient],  # noqa: F811
    make_run: Callable[..., str],
) -> None:
    make_run("cr_campaign", state="failed")
    html = users("alice").get(f"{BASE}/display/cr_campaign").text
    order = [
        _position(html, marker)
        for marker in ("<h1>", 'id="cr-schedule"', 'id="cr-about"', 'id="cr-campaign-actions"', 'id="cr-versions"')
    ]
    assert order == sorted(order)
    # About and the actions are sections the user can fold away; the schedule is never folded.
    assert re.search(r'<details class="cr-section" id="cr-about-section" open>\s*<summary><h2>About</h2>', html)
    assert re.search(r'<details class="cr-section" id="cr-campaign-actions-section" open>\s*<summary>', html)
    assert not re.search(r"<details[^>]*>(?:(?!</details>).)*id=\"cr-schedule\"", html, re.S)


def test_schedule_times_show_the_campaigns_zone_and_utc(
    users: Callable[[str], TestClient],  # noqa: F811
    make_run: Callable[..., str],
) -> None:
    slot = pendulum.datetime(2025, 3, 3, 8, tz="UTC")  # 09:00 in Paris (CET)
    run_id = make_run("cr_campaign", state="success", logical_date=slot)
    html = users("viewer").get(f"{BASE}/display/cr_campaign").text
    row = re.search(rf'<tr class="cr-row" data-run-id="{re.escape(run_id)}".*?</tr>', html, re.S)
    assert row, html[:500]
    cell = re.search(r'<td class="cr-slot">(.*?)</td>', row.group(0), re.S)
    assert cell
    assert cell.group(1) == (
        '<time datetime="2025-03-03T08:00:00+00:00" '
        'title="2025-03-03 09:00:00 CET (Europe/Paris) = 2025-03-03 08:00:00 UTC">03 Mar 2025 09:00</time>'
        '<span class="cr-utc">03 Mar 2025 08:00 UTC</span>'
    )
    assert 'data-zone="Europe/Paris"' in html
    assert "Times in Europe/Paris; the slot in UTC too" in text_of(html)


def test_a_utc_campaign_shows_its_times_once(
    users: Callable[[str], TestClient],  # noqa: F811
    make_run: Callable[..., str],
) -> None:
    run_id = make_run("cr_slow", state="failed", logical_date=pendulum.datetime(2025, 3, 3, 8, tz="UTC"))
    html = users("alice").get(f"{BASE}/display/cr_slow").text
    row = re.search(rf'<tr class="cr-row" data-run-id="{re.escape(run_id)}".*?</tr>', html, re.S)
    assert row
    cell = re.search(r'<td class="cr-slot">(.*?)</td>', row.group(0), re.S)
    assert cell and cell.group(1) == (
        '<time datetime="2025-03-03T08:00:00+00:00" title="2025-03-03 08:00:00 UTC">03 Mar 2025 08:00</time>'
    )
    assert "Times in UTC; point at a time" in text_of(html)


def test_action_buttons_say_what_they_do_in_a_menu_per_row(
    users: Callable[[str], TestClient],  # noqa: F811
    make_run: Callable[..., str],
) -> None:
    failed = make_run("cr_campaign", state="failed")
    running = make_run("cr_campaign", state="running")
    alice = users("alice")
    html = alice.get(f"{BASE}/display/cr_campaign").text
    labels = {}
    for run_id in (failed, running):
        row = re.search(rf'<tr class="cr-row" data-run-id="{re.escape(run_id)}".*?</tr>', html, re.S)
        assert row
        menu = re.search(
            r'<details class="cr-menu"><summary aria-label="Actions of run ([^"]+)">Actions</summary>', row.group(0)
        )
        assert menu and menu.group(1) == run_id
        labels[run_id] = re.findall(r'class="cr-act"[^>]*>([^<]+)</button>', row.group(0))
    assert labels == {failed: ["Restart run", "Skip run"], running: ["Stop run"]}
    assert ">Submit</button>" not in html
    run_page = alice.get(run_url("cr_campaign", failed)).text
    assert re.findall(r'<button type="submit" name="submit" value="[a-z]+">([^<]+)</button>', run_page) == [
        "Restart run",
        "Skip run",
    ]


def test_a_viewer_sees_no_action_menu(
    users: Callable[[str], TestClient],  # noqa: F811
    make_run: Callable[..., str],
) -> None:
    run_id = make_run("cr_campaign", state="failed")
    html = users("viewer").get(f"{BASE}/display/cr_campaign").text
    row = re.search(rf'<tr class="cr-row" data-run-id="{re.escape(run_id)}".*?</tr>', html, re.S)
    assert row and '<details class="cr-menu" hidden>' in row.group(0) and "cr-act" not in row.group(0)


def test_paused_says_why_run_now_is_gone_and_offers_resume_with_missed_slots(
    folder: Path,  # noqa: F811
    users: Callable[[str], TestClient],  # noqa: F811
) -> None:
    alice = users("alice")
    assert post(alice, action_url("cr_campaign", "pause"), {"note": "Holidays"}).status_code == 303
    html = alice.get(f"{BASE}/display/cr_campaign").text
    assert 'id="cr-campaign-run_now"' not in html
    note = re.search(r'<p class="cr-paused-note" id="cr-paused">.*?</p>', html, re.S)
    assert note
    assert text_of(note.group(0)) == (
        "paused Paused: no run starts, and Run now is not offered, until the campaign is resumed; "
        "then it goes on at the next slot. Resume…"
    )
    assert '<a class="cr-button" id="cr-resume-link" href="#cr-campaign-resume">' in note.group(0)
    assert _position(html, 'id="cr-paused"') < _position(html, 'id="cr-schedule"')
    resume = re.search(r'<form class="cr-action cr-campaign-resume".*?</form>', html, re.S)
    assert resume and re.findall(r'name="missed" value="([a-z]+)"', resume.group(0)) == ["all", "latest", "none"]


def test_a_manual_campaign_is_not_offered_missed_slots_on_resume(
    folder: Path,  # noqa: F811
    users: Callable[[str], TestClient],  # noqa: F811
) -> None:
    alice = users("alice")
    assert post(alice, action_url("cr_slow", "pause"), {"note": "Holidays"}).status_code == 303
    html = alice.get(f"{BASE}/display/cr_slow").text
    resume = re.search(r'<form class="cr-action cr-campaign-resume".*?</form>', html, re.S)
    assert resume
    assert 'name="missed"' not in resume.group(0) and "missed while paused" not in resume.group(0)
    assert "a campaign without a schedule misses no slot" in text_of(resume.group(0))
    note = re.search(r'<p class="cr-paused-note" id="cr-paused">.*?</p>', html, re.S)
    assert note and "next slot" not in note.group(0)
    resumed = post(alice, action_url("cr_slow", "resume"), {"note": "Back"})
    assert resumed.status_code == 303


def text_of(html: str) -> str:
    """``html`` with tags removed and whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
