"""Throughput: campaign channels as real tasks of real runs vs plain ``smtplib`` into the same SMTP server.

Run with ``python -m benchmarks.throughput`` from the repository root (``--quick`` for 2,000 and 10,000
recipients). It creates a private AIRFLOW_HOME (SQLite, LocalExecutor, the plugin loaded), an SMTP sink
(aiosmtpd, counting messages per run and recipient), and starts api-server, dag-processor and scheduler on free
ports; everything is stopped by process group at the end. For each audience size it measures, one after the
other while the Airflow processes are up:

- plain ``smtplib``, one connection: a process sending a message of the email channel's shape (same headers and
  body size, bytes formatted per recipient) with ``sendmail``; the reference of every ratio;
- the email channel, ``connections: 1``: a run of a one-channel campaign under the scheduler;
- the email channel's sending code without the ledger, with the SQLite ledger and with the PostgreSQL ledger,
  each in a child process on one connection (``benchmarks.ledger_cost``): what exactly-once costs;
- N plain ``smtplib`` senders in parallel (N processes, one connection each);
- the email channel, ``connections: N``;
- the SMS and push channels into their JSON-lines sinks.

Rates are messages over the time from the first to the last message received (task start-up excluded).
The peak RSS of each channel task is its ``VmHWM``, polled while it runs. Every run is checked for
exactly-once: as many distinct recipients as messages.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import shutil
import smtplib
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.ledger_cost import VARIANTS, postgres_available
from benchmarks.private_airflow import environment
from benchmarks.report import recorded

REPO = Path(__file__).resolve().parent.parent
POPULATION = 1_000_000
CAMPAIGNS = {
    "bench_email": 'email: {subject: "Flash sale: -40%, $first_name", body: "$first_name, 40% off for three hours."}',
    "bench_sms": 'sms: {text: "FLASH SALE -40% for 3 hours, $first_name: example.com/sale", sender: EXAMPLE}',
    "bench_push": 'push: {title: "Flash sale is live", body: "-40% for 3 hours, $first_name"}',
}
YAML = """id: {id}
description: Throughput benchmark campaign.
owner: bench
owner_email: bench@example.com
schedule: {{cron: null, start_date: 2025-01-01}}
audience: {{segment: bench_{id}, size: 1000, population: {population}}}
channels:
  {channel}
"""
# "Airflow" and "DAG" in the file: the dag-processor's safe mode skips files without both words.
LOADER = (
    '"""Airflow DAG of the YAML beside."""\n\nfrom campaign_runs.factory import campaign_dag\n\n'
    + "dag = campaign_dag(__file__)\n"
)
RUN_ID = re.compile(rb"X-Campaign-Run-Id: ([^\r\n]+)")
RECIPIENT = re.compile(rb"X-Campaign-Recipient: ([^\r\n]+)")
PLAIN_MESSAGE = (
    "From: campaigns@example.com\r\nX-Campaign-Id: bench_email\r\nX-Campaign-Run-Id: {run}\r\n"
    'MIME-Version: 1.0\r\nContent-Type: text/plain; charset="utf-8"\r\nTo: {to}\r\n'
    "Subject: Flash sale: -40%, Alice\r\nMessage-ID: <{n}.bench@example.com>\r\nX-Campaign-Recipient: {rid}\r\n"
    "Content-Transfer-Encoding: 7bit\r\n\r\nAlice, 40% off for three hours.\r\n"
)


@dataclass
class Arrivals:
    """Messages of one run: count, distinct recipients, first and last arrival."""

    count: int = 0
    first: float = 0.0
    last: float = 0.0
    recipients: set[bytes] = field(default_factory=set)


@dataclass
class CountingSink:
    """aiosmtpd handler that keeps only counts and times per run (no parsing: the server stays fast)."""

    runs: dict[bytes, Arrivals] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Count one message."""
        content = envelope.original_content or envelope.content
        run, recipient = RUN_ID.search(content), RECIPIENT.search(content)
        now = time.monotonic()
        with self.lock:
            arrivals = self.runs.setdefault(run.group(1).strip() if run else b"", Arrivals(first=now))
            arrivals.count += 1
            arrivals.last = now
            if recipient:
                arrivals.recipients.add(recipient.group(1).strip())
        return "250 OK"

    def of(self, run_id: str) -> Arrivals:
        """The arrivals of one run."""
        with self.lock:
            return self.runs.get(run_id.encode(), Arrivals())


@dataclass(frozen=True)
class Result:
    """One measured sender."""

    label: str
    size: int
    messages: int
    distinct: int
    seconds: float
    peak_rss_mb: float | None = None
    reference: str | None = "plain smtplib, 1 connection"

    @property
    def rate(self) -> float:
        """Messages per second."""
        return (self.messages - 1) / self.seconds if self.seconds > 0 else 0.0


def plain_sender(port: int, run_id: str, start: int, count: int) -> None:
    """Send ``count`` messages on one SMTP connection with ``sendmail`` (a child process)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        for n in range(start, start + count):
            to = f"user.{n}@example.com"
            message = PLAIN_MESSAGE.format(run=run_id, to=to, n=n, rid=f"plain-{n:08d}").encode()
            client.sendmail("campaigns@example.com", [to], message)


def plain(sink: CountingSink, port: int, size: int, senders: int) -> Result:
    """``senders`` processes sending ``size`` messages between them, one connection each."""
    run_id = f"plain_{senders}_{time.time_ns()}"
    context = multiprocessing.get_context("spawn")
    share = size // senders
    processes = [context.Process(target=plain_sender, args=(port, run_id, i * share, share)) for i in range(senders)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    arrivals = sink.of(run_id)
    label = "plain smtplib, 1 connection" if senders == 1 else f"plain smtplib, {senders} senders"
    seconds = arrivals.last - arrivals.first
    return Result(label, size, arrivals.count, len(arrivals.recipients), seconds, None, reference=None)


def ledger_variant(sink: CountingSink, port: int, size: int, variant: str) -> Result:
    """The email channel's sending code in a child process, with or without the ledger (``ledger_cost``)."""
    from benchmarks.ledger_cost import run_variant

    subject, body = "Flash sale: -40%, $first_name", "$first_name, 40% off for three hours."
    arrivals = sink.of(run_variant(variant, port, size, 500, subject, body))
    seconds = arrivals.last - arrivals.first
    return Result(f"email code, {variant}", size, arrivals.count, len(arrivals.recipients), seconds, None)


def prepare(home: Path, smtp_port: int) -> dict[str, str]:
    """A private Airflow environment with the benchmark campaigns; exported here too."""
    dags = home / "dags"
    dags.mkdir(parents=True)
    for dag_id, channel in CAMPAIGNS.items():
        (dags / f"{dag_id}.yaml").write_text(YAML.format(id=dag_id, channel=channel, population=POPULATION))
        (dags / f"{dag_id}.py").write_text(LOADER)
    # Airflow logs to stdout: ERROR keeps its warnings out of the results file, as in benchmarks.pages
    return environment(home, dags, smtp_port, AIRFLOW__LOGGING__LOGGING_LEVEL="ERROR")


def peak_rss(dag_id: str, run_id: str, task_id: str, done: threading.Event, found: list[float]) -> None:
    """Poll the task process's ``VmHWM`` (peak resident set, kB) until ``done``; append the last in MB."""
    from tests.dags.campaigns.runs import task_pid

    peak, pid = 0.0, None
    while not done.is_set():
        pid = pid or task_pid(dag_id, run_id, task_id)  # one metadata query per 0.2 s until the task started
        try:
            status = Path(f"/proc/{pid}/status").read_text() if pid else ""
        except OSError:
            status = ""
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) / 1024)
        time.sleep(0.05 if pid else 0.2)
    found.append(peak)


def channel_run(dag_id: str, size: int, conf: dict[str, Any], sink: CountingSink, home: Path) -> Result:
    """Trigger one run, wait for it to succeed; rate from the SMTP server (email) or the sink file's times."""
    from tests.dags.campaigns.runs import trigger, wait_run_done

    channel = dag_id.removeprefix("bench_")
    run_id = trigger(dag_id, {"audience_size": size, **conf}, run_id=f"{dag_id}_{size}_{time.time_ns()}")
    done, found = threading.Event(), list[float]()
    poller = threading.Thread(target=peak_rss, args=(dag_id, run_id, f"send_{channel}", done, found), daemon=True)
    poller.start()
    state = wait_run_done(dag_id, run_id, timeout=3600)
    done.set()
    poller.join()
    if state != "success":
        raise RuntimeError(f"{dag_id} run {run_id} ended {state}; logs under {home / 'logs'}")
    connections = int(conf.get(f"{channel}_connections", 1))
    label = f"{channel} channel" + (
        f", {connections} connection{'s' * (connections > 1)}" if channel == "email" else ""
    )
    if channel == "email":
        arrivals = sink.of(run_id)
        reference = f"plain smtplib, {connections} senders" if connections > 1 else "plain smtplib, 1 connection"
        seconds = arrivals.last - arrivals.first
        return Result(label, size, arrivals.count, len(arrivals.recipients), seconds, found[0], reference)
    return sink_result(label, size, home / "sinks" / dag_id / f"{channel}.jsonl", run_id, found[0])


def sink_result(label: str, size: int, path: Path, run_id: str, rss: float) -> Result:
    """A sink channel's result from its JSON-lines file."""
    import datetime as dt
    import json

    times, recipients = [], set()
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if record["run_id"] == run_id:
                times.append(dt.datetime.fromisoformat(record["sent_at"]).timestamp())
                recipients.add(record["recipient"])
    return Result(label, size, len(times), len(recipients), max(times) - min(times), rss)


def measure(sink: CountingSink, port: int, home: Path, size: int, senders: int) -> list[Result]:
    """Every sender for one audience size, printed as it completes; each plain reference before and after."""
    email = {"email_batch_size": 500}
    variants = [v for v in VARIANTS if v != "PostgreSQL ledger" or postgres_available()]
    steps: list[Callable[[], Result]] = [
        lambda: plain(sink, port, size, 1),
        lambda: channel_run("bench_email", size, {**email, "email_connections": 1}, sink, home),
        lambda: plain(sink, port, size, 1),
        *(lambda variant=variant: ledger_variant(sink, port, size, variant) for variant in variants),
        lambda: plain(sink, port, size, 1),
        lambda: plain(sink, port, size, senders),
        lambda: channel_run("bench_email", size, {**email, "email_connections": senders}, sink, home),
        lambda: plain(sink, port, size, senders),
        lambda: channel_run("bench_sms", size, {"sms_batch_size": 1000, "sms_rate_limit_per_second": 0}, sink, home),
        lambda: channel_run("bench_push", size, {"push_batch_size": 1000}, sink, home),
    ]
    results: list[Result] = []
    for step in steps:
        results.append(step())
        show(results[-1], results)
    return results


def reference_rate(results: list[Result], index: int) -> float | None:
    """Mean rate of the reference runs just before and just after ``results[index]`` (either, if only one ran)."""
    result = results[index]

    def is_reference(other: Result) -> bool:
        return other.label == result.reference and other.size == result.size

    before = next((r.rate for r in reversed(results[:index]) if is_reference(r)), None)
    after = next((r.rate for r in results[index + 1 :] if is_reference(r)), None)
    rates = [rate for rate in (before, after) if rate is not None]
    return sum(rates) / len(rates) if rates else None


def show(result: Result, results: list[Result]) -> None:
    """One line: messages/s, peak RSS, exactly-once check, ratio to the reference run just before it."""
    reference = reference_rate(results, len(results) - 1)
    ratio = f"{result.rate / reference:5.2f}x {result.reference} (before)" if reference else ""
    rss = f"peak RSS {result.peak_rss_mb:6.0f} MB" if result.peak_rss_mb else " " * 16
    once = "exactly once" if result.distinct == result.messages == result.size else "NOT EXACTLY ONCE"
    print(f"  {result.size:>7,}  {result.label:<30} {result.rate:8.0f} msg/s  {rss}  {once}  {ratio}", flush=True)


def ratios(results: list[Result]) -> None:
    """Each channel's rate over the mean of its reference's runs just before and just after it."""
    print("\nRatios (reference: mean of the plain runs just before and after)")
    for index, result in enumerate(results):
        reference = reference_rate(results, index) if result.reference else None
        if reference is None:
            continue
        print(
            f"  {result.size:>7,}  {result.label:<30} {result.rate / reference:5.2f}x"
            f" {result.reference} ({reference:.0f}/s)"
        )


def main() -> None:
    """Run the benchmark and print one line per sender and size, then the memory growth of the channel tasks."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="audience sizes")
    parser.add_argument("--quick", action="store_true", help="sizes 2,000 and 10,000")
    parser.add_argument("--connections", type=int, default=4, help="N: parallel senders and email connections")
    parser.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOME")
    args = parser.parse_args()
    sizes = [2_000, 10_000] if args.quick else args.sizes

    from aiosmtpd.controller import Controller

    from tests.dags.campaigns.runs import scheduler_stack, wait_for_dag
    from tests.support.airflow_env import free_port

    home = Path(tempfile.mkdtemp(prefix="campaign-throughput-bench-"))
    sink, port = CountingSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    results: list[Result] = []
    try:
        env = prepare(home, port)
        with scheduler_stack(env, home / "logs") as stack:
            for dag_id in CAMPAIGNS:
                wait_for_dag(dag_id, stack)
            print(f"  {'size':>7}  {'sender':<30} {'rate':>14}  {'task':<16}  {'ledger':<12}  ratio", flush=True)
            for size in sizes:
                results += measure(sink, port, home, size, args.connections)
    finally:
        controller.stop()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    ratios(results)
    print(f"\nPeak RSS of the channel tasks, {sizes[0]:,} -> {sizes[-1]:,} recipients")
    for label in dict.fromkeys(r.label for r in results if r.peak_rss_mb):
        small, large = (next(r for r in results if (r.label, r.size) == (label, s)) for s in (sizes[0], sizes[-1]))
        growth = (large.peak_rss_mb or 0) - (small.peak_rss_mb or 0)
        print(f"  {label:<30} {small.peak_rss_mb:6.0f} MB -> {large.peak_rss_mb:6.0f} MB  ({growth:+.0f} MB)")


if __name__ == "__main__":
    with recorded("throughput"):
        main()
