"""A restarted run's slot is the slot it serves (its first run's), not when it was restarted: core, REST, CLI, pages."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

import pendulum
import pytest
from campaign_runs import core
from sqlalchemy import select, update
from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import BASE, login, run_url
from tests.support.cli_runner import run_in_process
from tests.support.fixtures import PASSWORD

SLOT = pendulum.datetime(2026, 3, 2, 8, tz="UTC")
pytestmark = pytest.mark.usefixtures("smtp_server")  # the actions' emails go somewhere


def failed_restart(make_run: Callable[..., str]) -> tuple[str, str]:
    """A failed scheduled run of the 2026-03-02 08:00 slot and the run that restarted it (queued now)."""
    run_id = make_run("cr_campaign", state="failed", logical_date=SLOT)
    return run_id, str(core.restart_run("cr_campaign", run_id, actor="alice", note="Fixed").new_run_id)


def set_conf(run_id: str, conf: dict[str, Any]) -> None:
    """Replace a run's conf in the metadata DB."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(update(DagRun).where(DagRun.run_id == run_id).values(conf=conf))


def run_after(run_id: str) -> dt.datetime:
    """When Airflow says the run was due."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        due = session.scalar(select(DagRun.run_after).where(DagRun.run_id == run_id))
    assert due is not None
    return due


def test_a_restart_serves_the_slot_of_the_run_it_restarts(make_run: Callable[..., str]) -> None:
    """The restart was created now (its own logical date is none, its run_after now); its slot is 08:00."""
    original, restart = failed_restart(make_run)
    new = core.get_run("cr_campaign", restart)
    assert new.logical_date is None and new.run_after is not None and new.run_after > SLOT.add(days=1)
    assert (new.slot.at, new.slot.data_interval_start, new.slot.data_interval_end) == (SLOT, SLOT, SLOT.add(days=1))
    assert core.get_run("cr_campaign", original).slot.at == SLOT  # a run serves its own slot
    again = make_run("cr_campaign", state="failed", logical_date=SLOT.add(hours=1))
    assert core.get_run("cr_campaign", again).slot.at == SLOT.add(hours=1)


def test_a_restart_of_a_run_without_a_logical_date_serves_when_that_run_was_due(
    make_run: Callable[..., str],
) -> None:
    """Run now has no logical date: its restart shows when Run now asked, even from a conf kept before run_after."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from campaign_runs.core.campaign_actions import run_now

    [triggered] = run_now("cr_campaign", actor="alice", note="Now").run_ids
    with create_session() as session:
        session.execute(update(DagRun).where(DagRun.run_id == triggered).values(state="failed"))
    asked_at = run_after(triggered)
    restart = str(core.restart_run("cr_campaign", triggered, actor="alice", note="Again").new_run_id)
    assert run_after(restart) > asked_at
    assert core.get_run("cr_campaign", restart).slot.at == asked_at
    older = {"campaign_restart_of": triggered, "campaign_slot": {"logical_date": None}}  # kept before run_after
    set_conf(restart, older)
    assert core.get_run("cr_campaign", restart).slot.at == asked_at


def test_the_rest_api_gives_the_slot_a_restart_serves(api_app: Any, make_run: Callable[..., str]) -> None:
    """``slot`` in a run, in the run schedule and in run details; the Airflow dates stay as Airflow has them."""
    original, restart = failed_restart(make_run)
    client = TestClient(api_app)
    token = client.post("/auth/token", json={"username": "viewer", "password": PASSWORD}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    details = client.get(f"/campaign-runs/campaigns/cr_campaign/runs/{restart}", headers=headers)
    assert details.status_code == 200, details.text
    body = details.json()
    assert body["slot"] == {
        "at": "2026-03-02T08:00:00Z",
        "data_interval_start": "2026-03-02T08:00:00Z",
        "data_interval_end": "2026-03-03T08:00:00Z",
    }
    assert body["logical_date"] is None and body["restart_of"] == original
    schedule = client.get(
        "/campaign-runs/campaigns/cr_campaign/runs?upcoming=0&include_skipped=true", headers=headers
    ).json()
    slots = {run["run_id"]: run["slot"]["at"] for run in schedule["runs"]}
    assert slots == {original: "2026-03-02T08:00:00Z", restart: "2026-03-02T08:00:00Z"}


def test_the_cli_shows_the_slot_a_restart_serves(make_run: Callable[..., str]) -> None:
    """``runs`` (JSON and table) and ``run`` (table) say 08:00 for the restart, not when it was restarted."""
    _, restart = failed_restart(make_run)
    code, out, err = run_in_process(["campaigns", "runs", "cr_campaign", "--upcoming", "0", "-o", "json"])
    assert code == 0, err
    [row] = [row for row in json.loads(out) if row["run_id"] == restart]
    assert row["slot"]["at"].startswith("2026-03-02T08:00:00")
    code, out, err = run_in_process(["campaigns", "runs", "cr_campaign", "--upcoming", "0", "-o", "plain"])
    assert code == 0, err
    assert out.splitlines()[0].split()[:3] == ["run_id", "status", "slot"]
    [line] = [line for line in out.splitlines() if restart in line]
    assert "2026-03-02" in line
    code, out, err = run_in_process(["campaigns", "run", "cr_campaign", restart, "-o", "plain"])
    assert code == 0, err
    assert re.search(r"^slot\s+2026-03-02[ T]08:00:00", out, re.M), out


@pytest.mark.parametrize("page", ["schedule", "run"])
def test_the_pages_show_the_slot_a_restart_serves(api_app: Any, make_run: Callable[..., str], page: str) -> None:
    """The run schedule's Slot column and the run page's Slot say 08:00, and the run page when it restarted."""
    _, restart = failed_restart(make_run)
    client = login(api_app, "viewer")
    if page == "schedule":
        html = client.get(f"{BASE}/display/cr_campaign").text
        row = re.search(rf'data-run-id="{re.escape(restart)}".*?</tr>', html, re.S)
        assert row is not None
        slot = re.search(r'<td class="cr-slot"><time datetime="([^"]+)" title="([^"]+)">', row.group(0))
        assert slot, row.group(0)
        assert slot.groups() == (
            "2026-03-02T08:00:00+00:00",
            "2026-03-02 09:00:00 CET (Europe/Paris) = 2026-03-02 08:00:00 UTC",
        )
        return
    html = client.get(run_url("cr_campaign", restart)).text
    slot = re.search(r'<dd id="cr-slot">(.*?)</dd>', html, re.S)
    assert slot is not None
    assert slot.group(1).startswith('2026-03-02 08:00:00 UTC <span class="cr-muted">(data 2026-03-02 08:00:00 UTC')
    restarted = pendulum.instance(run_after(restart)).strftime("%Y-%m-%d %H:%M:%S")
    assert f"the slot of the run it restarts; restarted {restarted} UTC" in slot.group(1)
