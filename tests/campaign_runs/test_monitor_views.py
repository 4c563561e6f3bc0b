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
from tests.campaign_runs.test_views import login

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
    columns = ("run_id", "channel", "sent", "failed", "in_doubt", "total", "stops", "restarts", "skips")
    assert [{k: r[k] for k in columns} for r in lines] == [{k: r[k] for k in columns} for r in table]


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
    from campaign_runs.views_monitor import table_html

    row = {
        "run_id": 'manual__<script>"x"</script>',
        "status": "completed",
        "run_after": None,
        "duration_seconds": 65.0,
        "channel": "e&mail",
        "sent": 3,
        "failed": 1,
        "in_doubt": 0,
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
    assert 'href="/pluginsv2/campaigns/display/cr_campaign/run/manual__%3Cscript%3E"' in html
