"""Monitor over REST (metrics, overview), the CLI command, and a statement count constant in the number of runs."""

from __future__ import annotations

import argparse
import csv
import io
import json
from typing import Any

import pytest
from campaign_runs.core import monitor, summaries
from starlette.testclient import TestClient

from tests.campaign_runs.api.test_runs import admin, client, viewer  # noqa: F401  (fixtures)
from tests.campaign_runs.core.test_monitor import history  # noqa: F401  (fixture)
from tests.campaign_runs.core.test_restart_options import report_progress
from tests.campaign_runs.pages.fab.test_queries import counted

PREFIX = "/campaign-runs"


def test_metrics_endpoint_gives_the_core_numbers(
    client: TestClient,  # noqa: F811
    viewer: dict[str, str],  # noqa: F811
    history: dict[str, str],  # noqa: F811
) -> None:
    response = client.get(f"{PREFIX}/campaigns/cr_campaign/metrics?limit=10", headers=viewer)
    assert response.status_code == 200, response.text
    body = response.json()
    by_run = {run["run_id"]: run for run in body["runs"]}
    completed = {c["channel"]: c for c in by_run[history["completed"]]["channels"]}
    assert (completed["email"]["sent"], completed["email"]["failed"], completed["email"]["delivery_rate"]) == (
        90,
        10,
        0.9,
    )
    assert by_run[history["stopped"]]["stops"] == 1
    assert [i["action"] for i in body["interventions"]] == ["stop", "restart", "skip"]
    assert body["status_mix"]["skipped"] == 2
    two = client.get(f"{PREFIX}/campaigns/cr_campaign/metrics?limit=2", headers=viewer).json()
    assert len(two["runs"]) == 2


def test_metrics_give_suppressed_and_skipped_per_channel_and_in_total(
    client: TestClient,  # noqa: F811
    viewer: dict[str, str],  # noqa: F811
    make_run: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import pendulum
    from campaign_runs.cli.monitor import campaigns_monitor

    from tests.support.fixtures import EMAIL_LIVE_SMS_DRY, report_frozen_channels

    slot = pendulum.datetime(2043, 1, 1, tz="UTC")
    run_id = make_run("cr_campaign", state="running", logical_date=slot)
    report_frozen_channels("cr_campaign", run_id, EMAIL_LIVE_SMS_DRY)
    skipped = {"no_consent": 2, "invalid_address": 1}
    report_progress(
        "cr_campaign", run_id, "email", {"total": 9, "sent": 3, "failed": 0, "suppressed": 2, "skipped": skipped}
    )
    params = {"from": "2043-01-01", "to": "2043-01-02"}
    body = client.get(f"{PREFIX}/campaigns/cr_campaign/metrics", params=params, headers=viewer).json()
    (run,) = body["runs"]
    assert run["channels"][0] == {
        "channel": "email",
        "sent": 3,
        "failed": 0,
        "in_doubt": 0,
        "total": 9,
        "suppressed": 2,
        "skipped": {"no_consent": 2, "invalid_address": 1},
        "delivery_rate": 0.3333,
        "delivery": "smtp",
        "dry_run": False,
    }
    assert [(c["channel"], c["suppressed"], c["skipped"]) for c in body["totals"]] == [
        ("email", 2, {"no_consent": 2, "invalid_address": 1}),
        ("sms", 0, {}),
    ]
    assert [(c["channel"], c["delivery"], c["dry_run"]) for c in body["totals"]] == [
        ("email", "smtp", False),
        ("sms", "dry run", True),
    ]
    since, until = pendulum.datetime(2043, 1, 1, tz="UTC"), pendulum.datetime(2043, 1, 2, tz="UTC")
    base = {"campaign": "cr_campaign", "limit": 10, "since": since, "until": until, "verbose": False}
    campaigns_monitor(argparse.Namespace(**base, output="plain"))
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    header = "run_id status duration_seconds channel delivery sent failed in_doubt suppressed skipped total"
    assert lines[0].startswith(header)
    (row,) = [line for line in lines if " email " in line]
    assert row.endswith("email smtp 3 0 0 2 3 (invalid address: 1, no consent: 2) 9 0.3333 0 0 0")
    (row,) = [line for line in lines if " sms " in line]
    assert row.endswith("sms dry run 0 0 0 0 0 0 0 0 0")


@pytest.mark.parametrize(
    ("query", "status"),
    [("limit=0", 422), ("limit=101", 422), ("from=yesterday", 422), ("from=2030-01-02&to=2030-01-01", 422)],
)
def test_metrics_refuses_bad_parameters(client: TestClient, viewer: dict[str, str], query: str, status: int) -> None:  # noqa: F811
    response = client.get(f"{PREFIX}/campaigns/cr_campaign/metrics?{query}", headers=viewer)
    assert response.status_code == status, response.text
    assert client.get(f"{PREFIX}/campaigns/no_such_dag/metrics", headers=viewer).status_code in (403, 404)


def test_overview_endpoint(client: TestClient, admin: dict[str, str], make_run: Any) -> None:  # noqa: F811
    run_id = make_run("cr_campaign", state="success")
    report_progress("cr_campaign", run_id, "email", {"total": 9, "sent": 8, "failed": 1})
    summaries.finalise_ended(backfill=True)  # finished: counted from its summary
    going = make_run("cr_campaign", state="running")
    report_progress("cr_campaign", going, "sms", {"total": 9, "sent": 2, "failed": 0})  # active: from XCom
    response = client.get(f"{PREFIX}/overview", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["sent_today"], body["failed_7_days"], body["outbox_backlog"]) == (10, 1, 0)
    assert client.get(f"{PREFIX}/overview").status_code == 401


def test_cli_monitor_prints_the_table_as_csv_and_json(
    capsys: pytest.CaptureFixture[str],
    history: dict[str, str],  # noqa: F811
) -> None:
    from campaign_runs.cli.monitor import campaigns_monitor

    base = {"campaign": "cr_campaign", "limit": 10, "since": None, "until": None, "verbose": False}
    campaigns_monitor(argparse.Namespace(**base, output="csv"))
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    expected = monitor.table_rows(monitor.campaign_metrics("cr_campaign", limit=10))
    assert [(r["run_id"], r["channel"], int(r["sent"])) for r in rows] == [
        (r["run_id"], r["channel"], r["sent"]) for r in expected
    ]
    campaigns_monitor(argparse.Namespace(**base, output="json"))
    printed = json.loads(capsys.readouterr().out)
    assert printed["rows"] == expected
    assert printed["status_mix"]["completed"] == 1


def test_statements_do_not_grow_with_runs(make_run: Any) -> None:
    def statements() -> int:
        with counted() as seen:
            monitor.campaign_metrics("cr_campaign", limit=100)
        return len(seen)

    for _ in range(2):
        run_id = make_run("cr_campaign", state="success")
        report_progress("cr_campaign", run_id, "email", {"total": 3, "sent": 3, "failed": 0})
    few = statements()
    for _ in range(8):
        run_id = make_run("cr_campaign", state="failed")
        report_progress("cr_campaign", run_id, "sms", {"total": 3, "sent": 1, "failed": 2})
    assert statements() == few
    assert len(monitor.campaign_metrics("cr_campaign", limit=100).runs) == 10
    summaries.finalise_ended(backfill=True)  # now every one reads its summary: XCom is not read at all
    assert statements() == few - 1
