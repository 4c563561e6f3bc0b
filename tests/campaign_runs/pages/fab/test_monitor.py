"""The Monitor page: renders, its chart data equals its table, its CSV equals its table, Chart.js is served locally."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
from markupsafe import escape
from starlette.testclient import TestClient

from tests.campaign_runs.core.test_monitor import history  # noqa: F401  (fixture)
from tests.campaign_runs.pages.fab.test_campaigns import login

PAGE = "/pluginsv2/campaigns/monitor/cr_campaign"
MARKUP = "<svg onload=alert(1)>"


@pytest.fixture
def admin(api_app: Any) -> Iterator[TestClient]:
    with login(api_app, "admin") as client:
        yield client


def _table(html: str) -> list[dict[str, str]]:
    """The Monitor table's cells by column, read from the page."""
    body = html.split('id="cr-monitor-table"', 1)[1].split("</table>", 1)[0]
    rows = []
    for row in re.findall(r'<tr class="cr-row" data-run-id="([^"]*)"(.*?)</tr>', body, re.S):
        cells = dict(re.findall(r'<td data-col="(\w+)"[^>]*>([^<]*)</td>', row[1]))
        rows.append({"run_id": unescape(row[0]), **{k: unescape(v) for k, v in cells.items()}})
    return rows


def _chart(html: str) -> dict[str, Any]:
    found = re.search(r'<script id="cr-monitor-data" type="application/json">(.*?)</script>', html, re.S)
    assert found is not None
    return dict(json.loads(found.group(1)))


def test_the_chart_data_and_the_csv_equal_the_table(admin: TestClient, history: dict[str, str]) -> None:  # noqa: F811
    page = admin.get(PAGE + "?limit=10")
    assert page.status_code == 200, page.text[:500]
    table = _table(page.text)
    assert {row["run_id"] for row in table} == set(history.values())
    chart = _chart(page.text)
    assert chart["runs"] == list(dict.fromkeys(row["run_id"] for row in reversed(table)))
    for channel, values in chart["sent"].items():
        sent = {r["run_id"]: int(r["sent"]) for r in table if r["channel"] == channel}
        assert values == [sent[run_id] for run_id in chart["runs"]]
    failed: dict[str, int] = {}
    for row in table:
        failed[row["run_id"]] = failed.get(row["run_id"], 0) + int(row["failed"])
    assert chart["failed"] == [failed[run_id] for run_id in chart["runs"]]
    assert failed[history["completed"]] == 10
    assert sum(chart["interventions"]["stop"]) == 1 and sum(chart["interventions"]["skip"]) == 1

    exported = admin.get(PAGE + "/table.csv?limit=10")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(exported.text)))
    columns = ("run_id", "channel", "sent", "failed", "in_doubt", "suppressed", "total", "stops", "restarts", "skips")
    assert [{k: r[k] for k in columns} for r in lines] == [{k: r[k] for k in columns} for r in table]


def test_the_monitor_shows_suppressed_and_skipped_per_run_and_in_total(admin: TestClient, make_run: Any) -> None:
    import pendulum

    from tests.campaign_runs.core.test_restart_options import report_progress

    slot = pendulum.datetime(2042, 1, 1, tz="UTC")
    first = make_run("cr_campaign", state="success", logical_date=slot)
    second = make_run("cr_campaign", state="running", logical_date=slot.add(days=1))
    report_progress("cr_campaign", first, "email", {"total": 8, "sent": 8, "failed": 0, "suppressed": 1})
    skipped = {"no_consent": 2, "invalid_address": 1}
    report_progress(
        "cr_campaign", second, "email", {"total": 9, "sent": 3, "failed": 0, "suppressed": 2, "skipped": skipped}
    )
    page = admin.get(PAGE, params={"from": "2042-01-01", "to": "2042-01-03"})
    assert page.status_code == 200, page.text[:500]
    cells = {(r["run_id"], r["channel"]): (r["suppressed"], r["skipped"]) for r in _table(page.text)}
    assert cells == {
        (second, "email"): ("2", "3 (invalid address: 1, no consent: 2)"),
        (second, "sms"): ("0", "0"),
        (first, "email"): ("1", "0"),
        (first, "sms"): ("0", "0"),
    }
    summary = re.search(r"<dt>Messages</dt><dd>(.*?)</dd>", page.text, re.S)
    assert summary
    messages = " ".join(unescape(re.sub(r"<[^>]+>", "", summary.group(1))).split())
    assert messages == (
        "email: 11 sent, 0 failed, 0 in doubt of 17 (64.7%), 3 suppressed, "
        "skipped: 3 (invalid address: 1, no consent: 2); sms: 0 sent, 0 failed, 0 in doubt of 0, 0 suppressed, "
        "skipped: 0"
    )
    assert "<th>Suppressed</th><th>Skipped</th>" in page.text


def test_the_monitor_says_each_run_s_transport_and_its_dry_runs(admin: TestClient, make_run: Any) -> None:
    import pendulum

    from tests.campaign_runs.core.test_restart_options import report_progress
    from tests.support.fixtures import EMAIL_LIVE_SMS_DRY, report_frozen_channels

    slot = pendulum.datetime(2044, 1, 1, tz="UTC")
    partly = make_run("cr_campaign", state="success", logical_date=slot)
    report_frozen_channels("cr_campaign", partly, EMAIL_LIVE_SMS_DRY)
    whole = make_run("cr_campaign", state="running", logical_date=slot.add(days=1))
    report_frozen_channels("cr_campaign", whole, EMAIL_LIVE_SMS_DRY, "dry_run")  # delivery: dry_run on the campaign
    for run_id in (partly, whole):
        report_progress("cr_campaign", run_id, "sms", {"total": 4, "sent": 4, "failed": 0})
    page = admin.get(PAGE, params={"from": "2044-01-01", "to": "2044-01-03"})
    assert page.status_code == 200, page.text[:500]
    body = page.text.split('id="cr-monitor-table"', 1)[1].split("</table>", 1)[0]
    cells = {
        (run_id, channel): (" ".join(re.sub(r"<[^>]+>", " ", cell).split()), flag)
        for run_id, channel, flag, cell in re.findall(
            r'<tr class="cr-row" data-run-id="([^"]*)" data-channel="([^"]*)".*?'
            r'<td data-col="delivery" data-dry-run="(1?)">(.*?)</td>',
            body,
            re.S,
        )
    }
    assert cells == {
        (whole, "email"): ("smtp (dry run)", "1"),
        (whole, "sms"): ("dry run", "1"),
        (partly, "email"): ("smtp", ""),
        (partly, "sms"): ("dry run", "1"),
    }
    summary = re.search(r"<dt>Messages</dt><dd>(.*?)</dd>", page.text, re.S)
    assert summary
    messages = " ".join(unescape(re.sub(r"<[^>]+>", "", summary.group(1))).split())
    assert messages.startswith("email (smtp / smtp (dry run)): 0 sent")  # live in one run, a dry run in the other
    assert "; sms dry run: 8 sent, 0 failed" in messages
    exported = list(csv.DictReader(io.StringIO(admin.get(PAGE + "/table.csv", params={"from": "2044-01-01"}).text)))
    assert {(r["run_id"], r["channel"]): r["delivery"] for r in exported if r["run_id"] in (partly, whole)} == {
        key: value[0] for key, value in cells.items()
    }


def test_chart_js_is_served_from_the_package_and_linked(admin: TestClient, history: dict[str, str]) -> None:  # noqa: F811
    page = admin.get(PAGE).text
    src = re.search(r'<script src="([^"]+chart\.umd\.min\.js)"></script>', page)
    assert src is not None and src.group(1).startswith("/pluginsv2/")
    script = admin.get(src.group(1))
    assert script.status_code == 200
    assert b"Chart.js v4.6.1" in script.content[:200]
    display = admin.get("/pluginsv2/campaigns/display/cr_campaign").text
    assert 'id="cr-monitor-link" href="/pluginsv2/campaigns/monitor/cr_campaign"' in display


def test_refusals(api_app: Any, admin: TestClient) -> None:
    assert admin.get("/pluginsv2/campaigns/monitor/no_such_dag").status_code == 404
    anonymous = TestClient(api_app, follow_redirects=False)
    assert anonymous.get(PAGE).status_code in (302, 303)
    for params, reason in (
        ({"limit": "50"}, "must be one of '10', '30', '100'"),
        ({"from": "yesterday"}, "'from' must be an ISO date"),
        ({"to": "2026-13-40"}, "'to' must be an ISO date"),
        ({"limit": "10\x00"}, "NUL"),
        ({"from": MARKUP}, f"'from' must be an ISO date such as 2026-11-01; {MARKUP!r} is not."),
        ({"to": f'"><script>{MARKUP}'}, "'to' must be an ISO date"),
        ({"limit": MARKUP}, f"{MARKUP!r} is not."),
    ):
        for path in (PAGE, f"{PAGE}/table.csv"):
            refused = admin.get(path, params=params)
            shown = (path, params, refused.text[:300])
            assert refused.status_code == 400 and str(escape(reason)) in refused.text, shown
            assert refused.headers["content-type"].startswith("text/html")
            assert refused.headers["x-content-type-options"] == "nosniff"
            assert MARKUP not in refused.text and '"><script>' not in refused.text, (path, params)


def test_table_html_escapes_every_text() -> None:
    from campaign_runs.pages.monitor import table_html

    row = {
        "run_id": 'manual__<script>"x"</script>',
        "status": "completed",
        "run_after": None,
        "duration_seconds": 65.0,
        "channel": "e&mail",
        "delivery": "<b>sns</b> (dry run)",
        "sent": 3,
        "failed": 1,
        "in_doubt": 0,
        "suppressed": 2,
        "skipped": {"no_consent": 1, "<b>x</b>": 3},
        "total": 4,
        "delivery_rate": 0.75,
        "stops": 0,
        "restarts": 0,
        "skips": 0,
    }
    html = str(table_html([row], {row["run_id"]: "/pluginsv2/campaigns/display/cr_campaign/run/manual__%3Cscript%3E"}))
    assert "<script>" not in html and "&lt;script&gt;&#34;x&#34;" in html
    assert 'data-channel="e&amp;mail"' in html
    assert '<td data-col="duration_seconds" data-value="65.0">1m 05s</td>' in html
    assert '<td data-col="delivery_rate">75.0%</td>' in html
    assert '<td data-col="suppressed">2</td>' in html
    assert '<td data-col="delivery" data-dry-run="1"><span class="cr-badge dry-run" data-delivery="dry-run">' in html
    assert "&lt;b&gt;sns&lt;/b&gt; (dry run)</span></td>" in html and "<b>sns</b>" not in html
    live = str(table_html([{**row, "delivery": "smtp"}], {row["run_id"]: "/x"}))
    assert '<td data-col="delivery" data-dry-run="">smtp</td>' in live
    assert '<td data-col="skipped">4 (no consent: 1, &lt;b&gt;x&lt;/b&gt;: 3)</td>' in html
    assert 'href="/pluginsv2/campaigns/display/cr_campaign/run/manual__%3Cscript%3E"' in html
