"""The Monitor's date range, one rule on the page, the REST API and the CLI: both days of a range are in it.

A refused range keeps the page's form, its values and the reason beside the field; the API answers 422 and
the CLI refuses the argument, each with the same words.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any

import pendulum
import pytest
from campaign_runs.core import date_range
from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import login
from tests.campaign_runs.pages.fab.test_monitor import PAGE, _table
from tests.support.fixtures import PASSWORD

METRICS = "/campaign-runs/campaigns/cr_campaign/metrics"
DAY = pendulum.datetime(2045, 6, 1, tz="UTC")


@pytest.fixture
def admin(api_app: Any) -> Iterator[TestClient]:
    with login(api_app, "admin") as client:
        yield client


@pytest.fixture
def three_days(make_run: Callable[..., str]) -> list[str]:
    """Runs at 00:00 and 23:30 of the day, and at 00:00 of the next one."""
    slots = (DAY, DAY.add(hours=23, minutes=30), DAY.add(days=1))
    return [make_run("cr_campaign", state="success", logical_date=slot) for slot in slots]


def field_error(html: str, name: str) -> str | None:
    """The reason shown beside a field of the Monitor's form, None when there is none."""
    found = re.search(
        rf'<span class="cr-error cr-field-error" id="cr-range-{name}-error"[^>]*>(.*?)</span>', html, re.S
    )
    return unescape(found.group(1)).strip() if found else None


def test_a_one_day_range_is_that_day_on_the_page_and_in_its_csv(admin: TestClient, three_days: list[str]) -> None:
    first, late, next_day = three_days
    page = admin.get(PAGE, params={"from": "2045-06-01", "to": "2045-06-01"})
    assert page.status_code == 200, page.text[:500]
    assert {row["run_id"] for row in _table(page.text)} == {first, late}
    assert 'value="2045-06-01"' in page.text and field_error(page.text, "to") is None
    exported = admin.get(f"{PAGE}/table.csv", params={"from": "2045-06-01", "to": "2045-06-01"})
    assert exported.status_code == 200
    assert {line.split(",")[0] for line in exported.text.splitlines()[1:]} == {first, late}
    two_days = admin.get(PAGE, params={"from": "2045-06-01", "to": "2045-06-02"})
    assert {row["run_id"] for row in _table(two_days.text)} == {first, late, next_day}


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        (
            {"from": "2045-06-02", "to": "2045-06-01"},
            "to",
            "'to' must be on or after 'from': the range would be empty.",
        ),
        ({"from": "yesterday", "to": "2045-06-01"}, "from", "'from' must be an ISO date such as 2026-11-01"),
        ({"from": "2045-06-01", "to": "2045-13-40"}, "to", "'to' must be an ISO date such as 2026-11-01"),
    ],
)
def test_a_refused_range_keeps_the_form_with_the_reason_beside_the_field(
    admin: TestClient, three_days: list[str], params: dict[str, str], field: str, reason: str
) -> None:
    page = admin.get(PAGE, params={**params, "limit": "30"})
    assert page.status_code == 400, page.text[:500]
    assert 'id="cr-monitor-form"' in page.text
    shown = field_error(page.text, field)
    assert shown is not None and shown.startswith(reason), shown
    other = "from" if field == "to" else "to"
    assert field_error(page.text, other) is None
    assert re.search(rf'id="cr-range-{field}" name="{field}" value="[^"]*" aria-invalid="true"', page.text)
    for name, value in params.items():  # the values as sent, kept in the form
        assert f'name="{name}" value="{value}"' in page.text
    assert '<option value="30" selected>' in page.text
    assert 'id="cr-monitor-table"' not in page.text and 'id="cr-monitor-data"' not in page.text


def test_the_rest_api_and_the_cli_read_the_range_as_the_page_does(
    api_app: Any, three_days: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from campaign_runs.cli.monitor import ARG_FROM, ARG_TO, campaigns_monitor

    first, late, _ = three_days
    with TestClient(api_app) as client:
        token = client.post("/auth/token", json={"username": "viewer", "password": PASSWORD}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        one_day = client.get(METRICS, params={"from": "2045-06-01", "to": "2045-06-01"}, headers=headers)
        assert one_day.status_code == 200, one_day.text
        body = one_day.json()
        assert {run["run_id"] for run in body["runs"]} == {first, late}
        assert (pendulum.parse(body["since"]), pendulum.parse(body["until"])) == (DAY, DAY.add(days=1))
        moment = client.get(METRICS, params={"from": "2045-06-01T00:00", "to": "2045-06-02T00:00"}, headers=headers)
        assert {run["run_id"] for run in moment.json()["runs"]} == {first, late}  # a time: the range ends before it
        reversed_ = client.get(METRICS, params={"from": "2045-06-02", "to": "2045-06-01"}, headers=headers)
        assert reversed_.status_code == 422
        assert "'to' must be on or after 'from'" in reversed_.json()["detail"]
        bad = client.get(METRICS, params={"from": "yesterday"}, headers=headers)
        assert bad.status_code == 422
        assert "'from' must be an ISO date such as 2026-11-01; 'yesterday' is not." in bad.json()["detail"]

    parse_from, parse_to = ARG_FROM.kwargs["type"], ARG_TO.kwargs["type"]
    since, until = parse_from("2045-06-01"), parse_to("2045-06-01")
    campaigns_monitor(
        argparse.Namespace(campaign="cr_campaign", limit=10, since=since, until=until, verbose=False, output="csv")
    )
    printed = capsys.readouterr().out.splitlines()[1:]
    assert {line.split(",")[0] for line in printed} == {first, late}
    with pytest.raises(argparse.ArgumentTypeError, match="'from' must be an ISO date such as 2026-11-01"):
        parse_from("yesterday")


def test_the_rule_of_a_range() -> None:
    day = pendulum.date(2045, 6, 1)
    assert date_range.bounds(day, day) == (DAY, DAY.add(days=1))
    assert date_range.bounds(None, day) == (None, DAY.add(days=1))
    assert date_range.bounds(DAY, DAY.add(hours=1)) == (DAY, DAY.add(hours=1))  # times: as given
    naive = date_range.parse_end("from", "2045-06-01T08:00")
    assert date_range.bounds(naive, None)[0] == DAY.add(hours=8)  # UTC unless it says otherwise
    with pytest.raises(date_range.DateRangeError) as refused:
        date_range.bounds(DAY, DAY)  # an empty span of time
    assert (refused.value.field, str(refused.value)) == ("to", "'to' must be after 'from': the range would be empty.")
    assert date_range.parse_end("to", "") is None
