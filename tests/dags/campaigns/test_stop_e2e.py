"""Stop during dispatch with a real scheduler, api-server, dag-processor and LocalExecutor workers."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.dags.campaigns.runs import (
    mark_run_failed,
    run_messages,
    scheduler_stack,
    sink_records,
    task_states,
    trigger,
    wait_for_dag,
    wait_quiet,
    xcoms,
)

SIZE, BATCH, RATE = 2000, 20, 50


@pytest.mark.slow
def test_stop_takes_effect_within_one_batch(smtp_server: Any, sink_dir: Path, tmp_path: Path) -> None:
    """After Stop (Airflow's mark-failed), each channel sends at most the batch in flight."""
    dag_id = "flash_sale"
    conf: dict[str, Any] = {"audience_size": SIZE}
    for channel in ("email", "sms", "push"):
        conf[f"{channel}_batch_size"] = BATCH
        conf[f"{channel}_rate_limit_per_second"] = RATE
    with scheduler_stack(dict(os.environ), tmp_path / "logs") as stack:
        wait_for_dag(dag_id, stack)
        run_id = trigger(dag_id, conf, run_id=f"stop_test_{os.getpid()}_{time.time_ns()}")

        def counts() -> dict[str, int]:
            return {
                "email": len(run_messages(smtp_server.messages, run_id)),
                "sms": len(sink_records(sink_dir, dag_id, "sms")),
                "push": len(sink_records(sink_dir, dag_id, "push")),
            }

        deadline = time.monotonic() + 180
        while min(counts().values()) < 3 * BATCH:
            assert time.monotonic() < deadline, f"channels never all sent: {counts()}\n{stack.logs()}"
            time.sleep(0.02)
        at_request = counts()
        mark_run_failed(dag_id, run_id)
        stopped_at = time.monotonic()
        final = {channel: wait_quiet(lambda c=channel: counts()[c], quiet_seconds=3) for channel in at_request}
        quiet = time.monotonic() - stopped_at

        progress = {c: xcoms(dag_id, run_id).get((f"send_{c}", "campaign_progress")) for c in at_request}
        states = task_states(dag_id, run_id)
    for channel, before in at_request.items():
        assert final[channel] - before <= BATCH, (channel, before, final[channel])
        assert final[channel] < SIZE
        assert progress[channel] is not None
        assert progress[channel]["sent"] == final[channel], (channel, progress[channel], final[channel])
    assert states["summarise"] == "skipped"
    assert {states[f"send_{c}"] for c in at_request} == {"failed"}
    assert quiet < 30
