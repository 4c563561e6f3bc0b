"""Stop latency: the plugin's Stop vs Airflow's mark-failed on the shipped cart_abandonment DAG, and on a plain loop.

Run with ``python -m benchmarks.stop_latency`` from the repository root. It creates a private
AIRFLOW_HOME (SQLite, LocalExecutor, the plugin loaded), an SMTP sink, and starts api-server, dag-processor and
scheduler on free ports; everything is stopped by process group at the end. For each setting (batch 20 at
50/s, batch 250 at 10/s, batch 250 with no rate limit over 4 email connections, the plain loop's too) it stops
runs mid-batch three ways, five times each by default, and prints the median and maximum, per way, of the time
from the stop call returning to the last email received, and of how many emails arrived after it:

- plugin Stop: ``campaign_runs.core.stop_run`` (what the UI, REST API and CLI call) on cart_abandonment;
- mark-failed: Airflow's own ``set_dag_run_state_to_failed`` on cart_abandonment;
- mark-failed, plain loop: the same on a DAG whose email loop never checks its run (Airflow kills it).

cart_abandonment is the shipped campaign with the demo audience (synthetic), whose size a run's conf sets
(``audience_size``); its "not before" instant is set a day ahead, so no scheduled slot runs during the benchmark.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

from benchmarks.private_airflow import environment
from benchmarks.report import recorded

REPO = Path(__file__).resolve().parent.parent
CAMPAIGN_ID = "cart_abandonment"
PLAIN_ID = "bench_plain_sender"
RUN_HEADER = "X-Campaign-Run-Id"
AUDIENCE = 5000
# batch, messages/s (0: no limit), stop after this many emails (mid-batch), email connections
SETTINGS = ((20, 50.0, 50, 1), (250, 10.0, 30, 1), (250, 0.0, 1000, 4))
CAMPAIGN_FILES = (f"{CAMPAIGN_ID}.yaml", "campaigns.py")  # the shipped definition and the loader of every YAML
WAYS = ("plugin Stop", "mark-failed", "mark-failed, plain loop")

PLAIN_DAG = f'''"""Airflow DAG with a plain email loop that never checks its run: Airflow kills it at a heartbeat."""

from __future__ import annotations

import smtplib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage

import pendulum
from airflow.sdk import DAG, conf, get_current_context, task


@task(task_id="send_email")
def send_email() -> int:
    """Send ``audience_size`` emails in batches at the conf's rate over ``email_connections`` SMTP connections."""
    dag_run = get_current_context()["dag_run"]
    settings = dag_run.conf or {{}}
    size = int(settings.get("audience_size", {AUDIENCE}))
    batch_size = int(settings.get("email_batch_size", 20))
    rate = float(settings.get("email_rate_limit_per_second", 50))
    connections = int(settings.get("email_connections", 1))
    host, port = conf.get("smtp", "smtp_host"), conf.getint("smtp", "smtp_port")
    started, sent, lock = time.monotonic(), [0], threading.Lock()

    def send_slice(positions: range) -> None:
        with smtplib.SMTP(host, port, timeout=10) as client:
            for position in positions:
                with lock:
                    due, sent[0] = (started + sent[0] / rate if rate > 0 else 0.0), sent[0] + 1
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())
                message = EmailMessage()
                message["From"] = "bench@example.com"
                message["To"] = f"user{{position}}@example.com"
                message["Subject"] = "Benchmark"
                message["{RUN_HEADER}"] = dag_run.run_id
                message.set_content("Hello")
                client.send_message(message)

    with ThreadPoolExecutor(connections) as pool:
        for start in range(0, size, batch_size):
            end = min(start + batch_size, size)
            list(pool.map(send_slice, [range(start + i, end, connections) for i in range(connections)]))
    return sent[0]


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
            self.arrivals.setdefault(str(message[RUN_HEADER]).strip(), []).append(time.monotonic())
        return "250 OK"

    def times(self, run_id: str) -> list[float]:
        """Arrival times of a run's messages."""
        with self.lock:
            return list(self.arrivals.get(run_id, []))


@dataclass(frozen=True)
class Trial:
    """One stop measured."""

    way: str
    setting: str
    sent_before: int
    sent_after: int
    latency: float


def prepare(home: Path, smtp_port: int) -> dict[str, str]:
    """A private Airflow environment with the shipped demo campaign and the plain loop; exported here too."""
    import datetime as dt

    from campaign_runs.factory.schedule_state import state_path, state_text

    dags = home / "dags"
    dags.mkdir(parents=True)
    for name in CAMPAIGN_FILES:
        shutil.copy(REPO / "dags" / "campaigns" / name, dags / name)
    state = state_path(dags, CAMPAIGN_ID)  # no scheduled (hourly) run while the stops are measured
    state.parent.mkdir()
    state.write_text(state_text(dt.datetime.now(dt.UTC) + dt.timedelta(days=1)))
    (dags / f"{PLAIN_ID}.py").write_text(PLAIN_DAG)
    return environment(home, dags, smtp_port)


def stop(way: str, dag_id: str, run_id: str) -> None:
    """Stop a run the given way."""
    from tests.dags.campaigns.runs import mark_run_failed, plugin_stop

    if way == "plugin Stop":
        plugin_stop(dag_id, run_id, note="stop-latency benchmark")
    else:
        mark_run_failed(dag_id, run_id)


def setting_label(batch: int, rate: float, connections: int) -> str:
    """``batch 250 at 10/s`` or ``batch 250, no limit, 4 conn.``."""
    pace = f" at {rate:g}/s" if rate > 0 else ", no limit"
    return f"batch {batch}{pace}" + (f", {connections} conn." if connections > 1 else "")


def measure(way: str, sink: TimedSink, batch: int, rate: float, stop_after: int, connections: int) -> Trial:
    """Trigger a run, stop it mid-batch after ``stop_after`` emails, time the last email after the stop."""
    from tests.dags.campaigns.runs import plugin_users, trigger, wait_quiet

    plugin_users()
    dag_id = PLAIN_ID if way.endswith("plain loop") else CAMPAIGN_ID
    conf: dict[str, Any] = {"audience_size": AUDIENCE * 4 if rate <= 0 else AUDIENCE, "email_connections": connections}
    for channel in ("email", "sms", "push"):
        conf[f"{channel}_batch_size"] = batch
        conf[f"{channel}_rate_limit_per_second"] = rate
    run_id = trigger(dag_id, conf, run_id=f"bench_{dag_id}_{time.time_ns()}")
    deadline = time.monotonic() + 180
    while len(sink.times(run_id)) < stop_after:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{dag_id}: run {run_id} never started sending")
        time.sleep(0.01)
    sent_before = len(sink.times(run_id))
    stop(way, dag_id, run_id)
    stopped = time.monotonic()
    wait_quiet(lambda: len(sink.times(run_id)), quiet_seconds=4, timeout=120)
    after = [t for t in sink.times(run_id) if t > stopped]
    latency = max(after) - stopped if after else 0.0
    return Trial(way, setting_label(batch, rate, connections), sent_before, len(after), latency)


def main() -> None:
    """Run the benchmark and print, per setting and way, stop -> last message and messages after stop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="stops measured per setting and way")
    parser.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOME")
    args = parser.parse_args()

    from aiosmtpd.controller import Controller

    from tests.support.airflow_env import free_port

    home = Path(tempfile.mkdtemp(prefix="campaign-stop-bench-"))
    sink = TimedSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    trials: list[Trial] = []
    try:
        env = prepare(home, port)
        from tests.dags.campaigns.runs import scheduler_stack, wait_for_dag

        with scheduler_stack(env, home / "logs") as stack:
            wait_for_dag(CAMPAIGN_ID, stack)
            wait_for_dag(PLAIN_ID, stack)
            for batch, rate, stop_after, connections in SETTINGS:
                for _ in range(args.trials):
                    for way in WAYS:
                        trial = measure(way, sink, batch, rate, stop_after, connections)
                        trials.append(trial)
                        print(
                            f"  {trial.setting:<29} {way:<24} sent before stop {trial.sent_before:>4}"
                            f"  after {trial.sent_after:>4}  stop -> last message {trial.latency:6.3f} s",
                            flush=True,
                        )
    finally:
        controller.stop()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)

    summary(trials, args.trials)


def summary(trials: list[Trial], count: int) -> None:
    """Median and maximum per setting and way: stop call returned -> last email, and emails after the stop."""
    print(f"\nOver {count} trials each (stop call returned -> last email received; emails after the stop)")
    print(f"  {'setting':<29} {'way':<24} {'median':>9} {'max':>9} {'after: median':>14} {'max':>5}")
    for setting in dict.fromkeys(t.setting for t in trials):
        for way in WAYS:
            chosen = [t for t in trials if (t.way, t.setting) == (way, setting)]
            latency = [t.latency for t in chosen]
            after = [t.sent_after for t in chosen]
            print(
                f"  {setting:<29} {way:<24} {statistics.median(latency):7.3f} s {max(latency):7.3f} s"
                f" {statistics.median(after):14g} {max(after):5d}"
            )


if __name__ == "__main__":
    with recorded("stop_latency"):
        main()
