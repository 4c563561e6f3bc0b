"""Stop latency: cooperative stop of a campaign channel task vs Airflow's own mark-failed on a plain loop.

Run with ``python -m benchmarks.stop_latency`` from the repository root. It creates a private
AIRFLOW_HOME (SQLite, LocalExecutor), an SMTP sink, and starts api-server, dag-processor and
scheduler on free ports; everything is stopped by process group at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CAMPAIGN_ID = "bench_campaign"
PLAIN_ID = "bench_plain_sender"
RUN_HEADER = "X-Campaign-Run-Id"

CAMPAIGN_YAML = f"""\
id: {CAMPAIGN_ID}
description: Stop-latency benchmark campaign (email only).
owner: bench
owner_email: bench@example.com
schedule:
  cron: null
  start_date: 2025-01-01
audience:
  segment: bench_audience
  size: 5000
  population: 100000
channels:
  email:
    subject: "Benchmark $first_name"
    body: "Hello $first_name"
    batch_size: 20
    rate_limit_per_second: 50
"""

CAMPAIGN_LOADER = '''"""Airflow DAG of the benchmark campaign declared in the YAML file beside this one."""

from __future__ import annotations

from campaign_factory import campaign_dag

dag = campaign_dag(__file__)
'''

PLAIN_DAG = f'''"""Airflow DAG with a plain email loop that never checks its run: Airflow kills it at a heartbeat."""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage

import pendulum
from airflow.sdk import DAG, conf, get_current_context, task


@task(task_id="send_email")
def send_email(size: int = 5000, batch_size: int = 20, rate: float = 50.0) -> int:
    """Send ``size`` emails in batches at ``rate`` per second, one SMTP connection per batch."""
    run_id = get_current_context()["dag_run"].run_id
    host, port = conf.get("smtp", "smtp_host"), conf.getint("smtp", "smtp_port")
    started, sent = time.monotonic(), 0
    for start in range(0, size, batch_size):
        with smtplib.SMTP(host, port, timeout=10) as client:
            for position in range(start, min(start + batch_size, size)):
                delay = started + sent / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                message = EmailMessage()
                message["From"] = "bench@example.com"
                message["To"] = f"user{{position}}@example.com"
                message["Subject"] = "Benchmark"
                message["{RUN_HEADER}"] = run_id
                message.set_content("Hello")
                client.send_message(message)
                sent += 1
    return sent


with DAG("{PLAIN_ID}", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False):
    send_email()
'''


@dataclass
class TimedSink:
    """SMTP handler that records the arrival time of every message, per run id."""

    arrivals: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Record one message."""
        message = message_from_bytes(envelope.original_content or envelope.content)
        with self.lock:
            self.arrivals.setdefault(str(message[RUN_HEADER]), []).append(time.monotonic())
        return "250 OK"

    def times(self, run_id: str) -> list[float]:
        """Arrival times of a run's messages."""
        with self.lock:
            return list(self.arrivals.get(run_id, []))


@dataclass(frozen=True)
class Trial:
    """One stop measured."""

    dag_id: str
    sent_before: int
    sent_after: int
    latency: float


def prepare(home: Path, smtp_port: int) -> dict[str, str]:
    """A private Airflow environment with the benchmark DAGs; exported into this process too."""
    from tests.support import airflow_env

    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / f"{CAMPAIGN_ID}.yaml").write_text(CAMPAIGN_YAML)
    (dags / f"{CAMPAIGN_ID}.py").write_text(CAMPAIGN_LOADER)
    (dags / f"{PLAIN_ID}.py").write_text(PLAIN_DAG)
    env = dict(os.environ)
    env.update(airflow_env.environment(home))
    pythonpath = [str(REPO / "dags"), str(REPO), env.get("PYTHONPATH", "")]
    env.update(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__SMTP__SMTP_PORT": str(smtp_port),
            "AIRFLOW__CAMPAIGN_RUNS__SINK_DIR": str(home / "sinks"),
            "PYTHONPATH": os.pathsep.join(part for part in pythonpath if part),
        }
    )
    os.environ.update(env)
    airflow_env.migrate(env)
    return env


def measure(dag_id: str, sink: TimedSink, conf: dict[str, Any], batches_before: int, batch: int) -> Trial:
    """Trigger a run, Stop it in the middle of a batch, and time the last message after the request."""
    from tests.dags.campaigns.runs import mark_run_failed, trigger, wait_quiet

    run_id = trigger(dag_id, conf, run_id=f"bench_{dag_id}_{time.time_ns()}")
    deadline = time.monotonic() + 180
    while len(sink.times(run_id)) < batches_before * batch + batch // 2:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{dag_id}: run {run_id} never started sending")
        time.sleep(0.01)
    requested = time.monotonic()
    sent_before = len(sink.times(run_id))
    mark_run_failed(dag_id, run_id)
    wait_quiet(lambda: len(sink.times(run_id)), quiet_seconds=4, timeout=120)
    times = sink.times(run_id)
    after = [t for t in times if t > requested]
    return Trial(dag_id, sent_before, len(after), max(after) - requested if after else 0.0)


def main() -> None:
    """Run the benchmark and print both latencies and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="stops measured per DAG")
    parser.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOME")
    args = parser.parse_args()

    from aiosmtpd.controller import Controller

    from tests.support.airflow_env import free_port

    home = Path(tempfile.mkdtemp(prefix="campaign-stop-bench-"))
    sink = TimedSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    batch, rate = 20, 50.0
    try:
        env = prepare(home, port)
        from tests.dags.campaigns.runs import scheduler_stack, wait_for_dag

        with scheduler_stack(env, home / "logs") as stack:
            wait_for_dag(CAMPAIGN_ID, stack)
            wait_for_dag(PLAIN_ID, stack)
            campaign_conf = {"audience_size": 5000, "email_batch_size": batch, "email_rate_limit_per_second": rate}
            plain_conf: dict[str, Any] = {}
            trials: list[Trial] = []
            for _ in range(args.trials):
                trials.append(measure(CAMPAIGN_ID, sink, campaign_conf, 3, batch))
                trials.append(measure(PLAIN_ID, sink, plain_conf, 3, batch))
    finally:
        controller.stop()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)

    print(f"Stop latency (Stop request -> last message sent), batch {batch}, {rate:g} msg/s, {args.trials} trials")
    for trial in trials:
        kind = "cooperative" if trial.dag_id == CAMPAIGN_ID else "airflow mark-failed"
        counts = f"sent before stop {trial.sent_before:>4}  after {trial.sent_after:>4}"
        print(f"  {kind:<20} {counts}  latency {trial.latency:6.3f} s")
    cooperative = statistics.median(t.latency for t in trials if t.dag_id == CAMPAIGN_ID)
    native = statistics.median(t.latency for t in trials if t.dag_id == PLAIN_ID)
    print(f"cooperative stop (campaign channel task):   median {cooperative:.3f} s")
    print(f"Airflow mark-failed (plain loop, heartbeat): median {native:.3f} s")
    print(
        f"ratio native / cooperative: {native / cooperative:.1f}x"
        if cooperative > 0
        else "ratio: cooperative stop sent nothing after the request"
    )


if __name__ == "__main__":
    main()
