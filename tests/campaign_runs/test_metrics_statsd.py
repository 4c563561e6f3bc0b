"""Metrics reach a real StatsD listener through Airflow's pipeline (``[metrics] statsd_on``), from a core action."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

SCRIPT = """
from campaign_runs import core
core.stop_run("cr_campaign", {run_id!r}, actor="alice", note="Metrics check")
core.housekeeping_pass()
"""


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A UDP socket on a free port: what a StatsD server receives."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


def _received(sock: socket.socket) -> list[str]:
    lines: list[str] = []
    sock.settimeout(0.5)
    while True:
        try:
            packet = sock.recv(65536)
        except TimeoutError:
            return lines
        lines.extend(packet.decode().splitlines())


def _run_with_statsd(listener: socket.socket, script: str) -> list[str]:
    """Run ``script`` in a process with ``[metrics] statsd_on`` aimed at ``listener``; our metric lines it got."""
    env = {
        **os.environ,
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(listener.getsockname()[1]),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return [line for line in _received(listener) if line.startswith("airflow.campaign_runs.")]


def test_a_stop_and_a_housekeeping_pass_send_their_metrics(
    listener: socket.socket, make_run: Any, smtp_server: Any
) -> None:
    _finalise_earlier_runs()
    run_id = make_run("cr_campaign", state="running")
    ours = _run_with_statsd(listener, SCRIPT.format(run_id=run_id))
    timers = [line for line in ours if line.startswith("airflow.campaign_runs.stop_to_stopped:")]
    assert len(timers) == 1 and re.fullmatch(r"airflow\.campaign_runs\.stop_to_stopped:\d+(\.\d+)?\|ms", timers[0])
    assert sorted(line for line in ours if line not in timers) == [
        "airflow.campaign_runs.action.stop:1|c",
        "airflow.campaign_runs.email.sent:1|c",
        "airflow.campaign_runs.outbox.backlog:0|g",
    ]


def _finalise_earlier_runs() -> None:
    """Summarise the ended runs other tests of this process left, so the process under test sees only its own."""
    from campaign_runs.core import summaries

    summaries.finalise_ended(backfill=True)


SUMMARISE = """
from campaign_runs.core import summaries
assert summaries.finalise_ended(backfill=True) == 1
"""


def test_a_finalised_run_summary_sends_messages_per_campaign_and_channel(
    listener: socket.socket, make_run: Any
) -> None:
    from tests.campaign_runs.core.test_restart_options import report_progress

    _finalise_earlier_runs()
    run_id = make_run("cr_campaign", state="success")
    report_progress("cr_campaign", run_id, "email", {"total": 10, "sent": 7, "failed": 3})
    report_progress("cr_campaign", run_id, "sms", {"total": 5, "sent": 5, "failed": 0})
    assert sorted(_run_with_statsd(listener, SUMMARISE)) == sorted(
        [
            "airflow.campaign_runs.messages.sent:7|c",
            "airflow.campaign_runs.messages.sent.cr_campaign.email:7|c",
            "airflow.campaign_runs.messages.failed:3|c",
            "airflow.campaign_runs.messages.failed.cr_campaign.email:3|c",
            "airflow.campaign_runs.messages.sent:5|c",
            "airflow.campaign_runs.messages.sent.cr_campaign.sms:5|c",
        ]
    )
    # Summarised again (the listener and the backfill both saw it): nothing is counted twice.
    assert _run_with_statsd(listener, SUMMARISE.replace("== 1", "== 0")) == []
