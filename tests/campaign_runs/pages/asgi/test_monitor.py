"""The Monitor under SimpleAuthManager (``airflow standalone``'s): the plugin's own pages serve it as FAB's host does.

The same builder (``pages.monitor``) behind both hosts: the same template, query parameters and their checks, CSV
and permission rule; one test reads the same figures through both.
"""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.campaign_runs.core.test_monitor import history  # noqa: F401  (fixture)
from tests.campaign_runs.pages.asgi.hosts import UI, Host, simple_only
from tests.campaign_runs.pages.fab.test_monitor import _chart, _table
from tests.campaign_runs.pages.fab.test_monitor_range import field_error, three_days  # noqa: F401  (fixture)

PAGE = f"{UI}/monitor/cr_campaign"


def page_url(host: Host) -> str:
    return f"{host.base}/monitor/cr_campaign"


def words(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def summary(html: str) -> str:
    """The Messages line of the Monitor's summary."""
    found = re.search(r"<dt>Messages</dt><dd>(.*?)</dd>", html, re.S)
    assert found is not None
    return " ".join(unescape(re.sub(r"<[^>]+>", "", found.group(1))).split())


@simple_only
def test_the_monitor_page_is_served_with_its_charts_csv_and_links(host: Host, history: dict[str, str]) -> None:  # noqa: F811
    admin = host.login(host.app, "admin")
    page = admin.get(PAGE, params={"limit": "30"})
    assert page.status_code == 200, page.text[:500]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert {row["run_id"] for row in _table(page.text)} == set(history.values())
    assert '<option value="30" selected>' in page.text
    chart = _chart(page.text)
    assert all(link.startswith(f"{UI}/display/cr_campaign/run/") for link in chart["links"]), chart["links"]
    csv_href = re.search(r'<a id="cr-monitor-csv" href="([^"]+)"', page.text)
    assert csv_href is not None and unescape(csv_href.group(1)) == f"{PAGE}/table.csv?limit=30"
    src = re.search(r'<script src="([^"]+chart\.umd\.min\.js)"></script>', page.text)
    assert src is not None and src.group(1) == f"{UI}/monitor/static/chart.umd.min.js"
    script = admin.get(src.group(1))
    assert script.status_code == 200 and b"Chart.js v4.6.1" in script.content[:200]
    assert admin.get(f"{UI}/monitor/static/..%2Fpages%2Fmonitor.py").status_code == 404
    display = admin.get(f"{UI}/display/cr_campaign").text
    assert f'id="cr-monitor-link" href="{PAGE}"' in display
    bookmark = admin.get("/pluginsv2/campaigns/monitor/cr_campaign?limit=30")  # FAB's URL leads to this page
    assert (bookmark.status_code, bookmark.headers["location"]) == (302, f"{PAGE}?limit=30")


@simple_only
def test_a_one_day_range_is_that_day_on_the_page_and_in_its_csv(host: Host, three_days: list[str]) -> None:  # noqa: F811
    first, late, next_day = three_days
    viewer = host.login(host.app, "viewer")
    one_day = {"from": "2045-06-01", "to": "2045-06-01"}
    page = viewer.get(PAGE, params=one_day)
    assert page.status_code == 200, page.text[:500]
    assert {row["run_id"] for row in _table(page.text)} == {first, late}
    assert 'value="2045-06-01"' in page.text and field_error(page.text, "to") is None
    exported = viewer.get(f"{PAGE}/table.csv", params=one_day)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"] == 'attachment; filename="cr_campaign-monitor.csv"'
    assert {line["run_id"] for line in csv.DictReader(io.StringIO(exported.text))} == {first, late}
    two_days = viewer.get(PAGE, params={"from": "2045-06-01", "to": "2045-06-02"})
    assert {row["run_id"] for row in _table(two_days.text)} == {first, late, next_day}


@simple_only
def test_a_refused_range_keeps_the_form_with_the_reason_beside_the_field(host: Host, three_days: list[str]) -> None:  # noqa: F811
    viewer = host.login(host.app, "viewer")
    sent = {"from": "2045-06-02", "to": "2045-06-01", "limit": "30"}
    page = viewer.get(PAGE, params=sent)
    assert page.status_code == 400, page.text[:500]
    assert 'id="cr-monitor-form"' in page.text and field_error(page.text, "from") is None
    assert field_error(page.text, "to") == "'to' must be on or after 'from': the range would be empty."
    assert re.search(r'id="cr-range-to" name="to" value="2045-06-01" aria-invalid="true"', page.text)
    assert 'name="from" value="2045-06-02"' in page.text and '<option value="30" selected>' in page.text
    assert 'id="cr-monitor-table"' not in page.text and 'id="cr-monitor-data"' not in page.text
    bad = viewer.get(PAGE, params={"from": "yesterday"})
    assert bad.status_code == 400 and field_error(bad.text, "from") == (
        "'from' must be an ISO date such as 2026-11-01; 'yesterday' is not."
    )
    for params, reason in (({"from": "yesterday"}, "'from' must be an ISO date"), ({"limit": "50"}, "must be one of")):
        refused = viewer.get(f"{PAGE}/table.csv", params=params)  # the CSV has no form: the error page
        assert refused.status_code == 400 and reason in words(refused.text), refused.text[:300]
        assert refused.headers["content-type"].startswith("text/html")
    markup = "<svg onload=alert(1)>"
    for path in (PAGE, f"{PAGE}/table.csv"):
        escaped = viewer.get(path, params={"limit": markup})
        assert escaped.status_code == 400 and markup not in escaped.text
    assert viewer.get(f"{UI}/monitor/no_such_dag").status_code == 404


@simple_only
def test_a_user_who_may_not_read_the_campaign_is_refused(
    host: Host,
    history: dict[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    allowed = SimpleAuthManager.is_authorized_dag

    def is_authorized_dag(self: Any, *, method: str, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        if user.get_name() == "bob" and details is not None and details.id == "cr_campaign":
            return False  # bob may read no run of cr_campaign
        return bool(allowed(self, method=method, user=user, access_entity=access_entity, details=details))

    monkeypatch.setattr(SimpleAuthManager, "is_authorized_dag", is_authorized_dag)
    bob = host.login(host.app, "bob")
    for path in (PAGE, f"{PAGE}/table.csv"):
        refused = bob.get(path)
        assert refused.status_code == 403, (path, refused.text[:300])
        assert "You may not see campaign cr_campaign." in words(refused.text)
        assert history["completed"] not in refused.text and 'id="cr-monitor-table"' not in refused.text
    assert host.login(host.app, "alice").get(PAGE).status_code == 200
    anonymous = TestClient(host.app, follow_redirects=False)
    assert anonymous.get(PAGE).headers["location"].startswith("/auth/login?next=")


def test_both_hosts_show_the_same_figures(host: Host, history: dict[str, str]) -> None:  # noqa: F811
    admin = host.login(host.app, "admin")
    page = admin.get(page_url(host), params={"limit": "10"})
    assert page.status_code == 200, page.text[:500]
    table = _table(page.text)
    cells = {(r["run_id"], r["channel"]): (r["sent"], r["failed"], r["in_doubt"], r["total"]) for r in table}
    assert cells[(history["completed"], "email")] == ("90", "10", "0", "100")
    assert cells[(history["completed"], "sms")] == ("50", "0", "0", "50")
    assert cells[(history["stopped"], "email")] == ("40", "2", "3", "100")
    assert cells[(history["failed"], "sms")] == ("5", "15", "0", "20")
    stopped = next(r for r in table if r["run_id"] == history["stopped"])
    assert (stopped["stops"], stopped["restarts"], stopped["skips"]) == ("1", "1", "0")
    assert summary(page.text).startswith("email: 130 sent, 12 failed, 3 in doubt of 200 (65.0%)")
    assert "sms: 55 sent, 15 failed, 0 in doubt of 70 (78.6%)" in summary(page.text)
    chart = _chart(page.text)
    assert chart["failed"][chart["runs"].index(history["completed"])] == 10
    assert sum(chart["interventions"]["stop"]) == 1 and sum(chart["interventions"]["skip"]) == 1
    assert all(link.startswith(f"{host.base}/display/cr_campaign/run/") for link in chart["links"])
    exported = list(csv.DictReader(io.StringIO(admin.get(f"{page_url(host)}/table.csv", params={"limit": "10"}).text)))
    columns = ("run_id", "channel", "sent", "failed", "in_doubt", "total", "stops", "restarts", "skips")
    assert [{k: r[k] for k in columns} for r in exported] == [{k: r[k] for k in columns} for r in table]
