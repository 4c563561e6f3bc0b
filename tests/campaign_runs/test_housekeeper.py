"""The housekeeper thread and the listeners that start it only in the scheduler."""

from __future__ import annotations

import sys

import pytest
from campaign_runs import core, listeners
from campaign_runs.housekeeper import Housekeeper

from tests.support.fixtures import SmtpSink
from tests.support.processes import wait_until


def test_housekeeper_finishes_stops_and_sends_in_the_background(make_run, smtp_server: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="queued")
    core.stop_run("cr_campaign", run_id, actor="alice", note="bg")
    keeper = Housekeeper(interval=0.1)
    keeper.start()
    try:
        assert keeper.running
        [message] = smtp_server.wait_for(1, timeout=20)
        assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_campaign stopped"
        wait_until(lambda: [e.run_id for e in core.worklist("alice")] == [run_id], timeout=10)
    finally:
        keeper.stop()
    assert not keeper.running


def job() -> object:
    """An Airflow Job object without running its constructor (which fires the listeners itself)."""
    from airflow.jobs.job import Job

    return Job.__new__(Job)


@pytest.mark.parametrize(
    ("component", "argv", "starts"),
    [
        (job(), ["airflow", "scheduler"], True),
        (job(), ["airflow", "triggerer"], False),
        (job(), ["airflow", "dag-processor"], False),
        (object(), ["airflow", "scheduler"], False),  # e.g. the task runner's marker
    ],
)
def test_listener_starts_the_housekeeper_only_in_the_scheduler(
    monkeypatch: pytest.MonkeyPatch, component: object, argv: list[str], starts: bool
) -> None:
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(listeners, "_housekeeper", None)
    started: list[bool] = []
    monkeypatch.setattr(Housekeeper, "start", lambda self: started.append(True))
    listeners.on_starting(component)
    assert started == ([True] if starts else [])
