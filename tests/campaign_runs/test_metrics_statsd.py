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


def test_a_stop_and_a_housekeeping_pass_send_their_metrics(
    listener: socket.socket, make_run: Any, smtp_server: Any
) -> None:
    run_id = make_run("cr_campaign", state="running")
    env = {
        **os.environ,
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(listener.getsockname()[1]),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(run_id=run_id)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ours = [line for line in _received(listener) if line.startswith("airflow.campaign_runs.")]
    timers = [line for line in ours if line.startswith("airflow.campaign_runs.stop_to_stopped:")]
    assert len(timers) == 1 and re.fullmatch(r"airflow\.campaign_runs\.stop_to_stopped:\d+(\.\d+)?\|ms", timers[0])
    assert sorted(line for line in ours if line not in timers) == [
        "airflow.campaign_runs.action.stop:1|c",
        "airflow.campaign_runs.email.sent:1|c",
        "airflow.campaign_runs.outbox.backlog:0|g",
    ]
