"""Page speed at scale: the plugin's pages and REST API against Airflow's own, on the same database, in one run.

Seeds a private metadata DB with one campaign of 10,000 runs and 500 campaigns, then times, through the
API server's ASGI app in-process (same app, same DB, same login), like with like:

- each HTML page against the data calls Airflow's own UI makes for the same view: the campaign display and
  the Monitor against the DAG grid's (DAG details, grid structure, grid runs, TI summaries of 50 or 100 runs),
  the campaigns page against the Dags list's (``/ui/dags``);
- each JSON endpoint against Airflow's REST endpoint for as many rows (``dagRuns``, ``dags``), the overview
  against the dashboard's data calls.

Warm: the median of ``--repeat`` requests after one, interleaved with Airflow's. Cold: the first request in a
new process (an API server just restarted: per-process caches empty), ``--cold`` times each, median.

Run with ``python -m benchmarks.pages [--runs 10000] [--campaigns 500] [--repeat 20] [--cold 3] [--postgres]``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.report import recorded  # noqa: E402
from tests.support import airflow_env  # noqa: E402

BIG_CAMPAIGN = "cr_campaign"


def prepare_environment(postgres: bool) -> str | None:
    """Point Airflow at a fresh private DB and migrate it; returns the PostgreSQL DB name to drop."""
    home = Path(tempfile.mkdtemp(prefix="campaign-runs-bench-"))
    database = f"campaign_runs_bench_{os.getpid()}" if postgres else ""
    os.environ.update(airflow_env.environment(home, backend="postgres" if postgres else "sqlite", pg_database=database))
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"  # Airflow logs to stdout: keep the results file to figures
    if postgres:
        airflow_env.create_pg_database(database)
    airflow_env.migrate(dict(os.environ))
    return database or None


def seed(runs: int, campaigns: int) -> None:
    """Test campaigns and users, ``runs`` runs (4 tasks each) of one campaign, ``campaigns`` more campaigns."""
    import pendulum
    from airflow.models.dag import DagModel, DagTag
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from campaign_runs.tables import run_summary
    from sqlalchemy import insert

    from tests.support.fixtures import create_users, sync_test_dags

    sync_test_dags()
    create_users()
    start = pendulum.datetime(2020, 1, 1, tz="UTC")
    states = ["success", "failed", "success", "success"]
    tasks = ["build_audience", "send_email", "send_sms", "summarise"]
    batch = 2000
    for first in range(0, runs, batch):
        with create_session(scoped=False) as session:
            run_rows, ti_rows, summary_rows = [], [], []
            for n in range(first, min(runs, first + batch)):
                when = start.add(hours=n)
                run_id = f"scheduled__{when.isoformat()}"
                state = states[n % len(states)]
                run_rows.append(
                    {
                        "dag_id": BIG_CAMPAIGN,
                        "run_id": run_id,
                        "run_type": DagRunType.SCHEDULED,
                        "_state": state,  # the column "state" (DagRun.state is a synonym, ignored by a bulk insert)
                        "logical_date": when,
                        "run_after": when,
                        "data_interval_start": when,
                        "data_interval_end": when.add(hours=1),
                        "queued_at": when,
                        "start_date": when,
                        "end_date": when.add(minutes=5),
                        "triggered_by": DagRunTriggeredByType.TIMETABLE,
                        "span_status": "ended",
                        "clear_number": 0,
                        "conf": {},
                    }
                )
                for channel in ("email", "sms"):
                    summary_rows.append(
                        {
                            "dag_id": BIG_CAMPAIGN,
                            "run_id": run_id,
                            "channel": channel,
                            "total": 1000,
                            "sent": 990 if state == "success" else 400,
                            "failed": 10 if state == "success" else 600,
                            "in_doubt": 0,
                            "status": "completed" if state == "success" else "failed",
                            "started_at": when,
                            "ended_at": when.add(minutes=5),
                            "duration_seconds": 300.0,
                            "finalised": True,
                            "updated_at": when.add(minutes=5),
                        }
                    )
                for task_id in tasks:
                    ti_rows.append(
                        {
                            "dag_id": BIG_CAMPAIGN,
                            "run_id": run_id,
                            "task_id": task_id,
                            "map_index": -1,
                            "state": state if task_id == "send_email" else "success",
                            "try_number": 1,
                            "max_tries": 0,
                            "pool": "default_pool",
                            "pool_slots": 1,
                            "span_status": "ended",
                            "start_date": when,
                            "end_date": when.add(minutes=1),
                        }
                    )
            session.execute(insert(DagRun), run_rows)
            session.execute(insert(TaskInstance), ti_rows)
            session.execute(insert(run_summary), summary_rows)
    with create_session(scoped=False) as session:
        session.execute(
            insert(DagModel),
            [
                {
                    "dag_id": f"bench_campaign_{n:04d}",
                    "bundle_name": "dags-folder",
                    "fileloc": "bench.py",
                    "is_paused": False,
                    "is_stale": False,
                    "owners": "growth",
                    "description": f"Benchmark campaign {n}",
                    "timetable_summary": "0 9 * * MON",
                    "timetable_description": "At 09:00, only on Monday",
                    "max_active_tasks": 16,
                    "max_active_runs": 16,
                    "max_consecutive_failed_dag_runs": 0,
                    "has_task_concurrency_limits": False,
                }
                for n in range(campaigns)
            ],
        )
        session.execute(
            insert(DagTag),
            [
                {"dag_id": f"bench_campaign_{n:04d}", "name": tag}
                for n in range(campaigns)
                for tag in ("campaign", "channel:email")
            ],
        )


def login(client, username: str = "admin", password: str = "secret-password") -> str:  # type: ignore[no-untyped-def]
    """Log in through FAB's form (cookie for the pages) and get a JWT (for the REST APIs)."""
    page = client.get("/auth/login/")
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    data = {"username": username, "password": password}
    if match:
        data["csrf_token"] = match.group(1)
    response = client.post("/auth/login/", data=data, follow_redirects=True)
    assert response.status_code == 200, response.status_code
    token = client.post("/auth/token", json={"username": username, "password": password})
    assert token.status_code in (200, 201), token.text
    return str(token.json()["access_token"])


@dataclass(frozen=True)
class Comparison:
    """One of the plugin's endpoints against the Airflow calls that give the same view or the same rows."""

    label: str
    ours: str
    ours_bearer: bool  # the REST API takes the JWT; the pages take the login cookie
    airflow_label: str
    theirs: tuple[str, ...]  # all called, one after the other, with the JWT: their times add up


def comparisons() -> list[Comparison]:
    """What is compared: HTML pages with Airflow's UI data calls for the same view, JSON with JSON of as many rows."""
    import datetime as dt

    week_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    runs = f"/api/v2/dags/{BIG_CAMPAIGN}/dagRuns"
    return [
        Comparison(
            "campaign display (HTML, first page)", f"/pluginsv2/campaigns/display/{BIG_CAMPAIGN}", False,
            "Airflow's DAG grid data, 50 runs", grid_calls(50),
        ),
        Comparison(
            "campaigns page (HTML, first page)", "/pluginsv2/campaigns/list", False,
            "Airflow's Dags list data, 50 DAGs", ("/ui/dags?limit=50",),
        ),
        Comparison(
            "run schedule (JSON API, 50 runs)", f"/campaign-runs/campaigns/{BIG_CAMPAIGN}/runs?page_size=50", True,
            "Airflow's dagRuns, 50 runs", (f"{runs}?limit=50",),
        ),
        Comparison(
            "campaigns (JSON API, 100)", "/campaign-runs/campaigns?limit=100", True,
            "Airflow's dags, 100", ("/api/v2/dags?limit=100",),
        ),
        Comparison(
            "monitor (HTML, 100 runs)", f"/pluginsv2/campaigns/monitor/{BIG_CAMPAIGN}?limit=100", False,
            "Airflow's DAG grid data, 100 runs", grid_calls(100),
        ),
        Comparison(
            "monitor metrics (JSON API, 100 runs)", f"/campaign-runs/campaigns/{BIG_CAMPAIGN}/metrics?limit=100", True,
            "Airflow's dagRuns, 100 runs", (f"{runs}?limit=100",),
        ),
        Comparison(
            "overview (JSON API)", "/campaign-runs/overview", True,
            "Airflow's dashboard data",
            ("/ui/dashboard/dag_stats", f"/ui/dashboard/historical_metrics_data?start_date={week_ago}"),
        ),
    ]  # fmt: skip


def grid_calls(limit: int) -> tuple[str, ...]:
    """The calls Airflow's UI makes to show a DAG's grid of its latest ``limit`` runs."""
    from urllib.parse import urlencode

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        latest = session.scalars(
            select(DagRun.run_id).where(DagRun.dag_id == BIG_CAMPAIGN).order_by(DagRun.run_after.desc()).limit(limit)
        ).all()
    return (
        f"/api/v2/dags/{BIG_CAMPAIGN}/details",
        f"/ui/grid/structure/{BIG_CAMPAIGN}?limit={limit}",
        f"/ui/grid/runs/{BIG_CAMPAIGN}?limit={limit}&order_by=-run_after",
        f"/ui/grid/ti_summaries/{BIG_CAMPAIGN}?{urlencode([('run_ids', run_id) for run_id in latest])}",
    )


class Client:
    """The API server's ASGI app in this process, logged in as admin (cookie for the pages, JWT for the APIs)."""

    def __init__(self) -> None:
        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        self.client = TestClient(create_app(), base_url="http://localhost")
        self.bearer = {"Authorization": f"Bearer {login(self.client)}"}

    def get(self, path: str, bearer: bool) -> None:
        """One request, which must succeed."""
        response = self.client.get(path, headers=self.bearer if bearer else {})
        assert response.status_code == 200, (path, response.status_code, response.text[:300])

    def side(self, comparison: Comparison, side: str) -> Callable[[], None]:
        """A call of the plugin's endpoint (``ours``) or of all of Airflow's (``theirs``)."""
        if side == "ours":
            return lambda: self.get(comparison.ours, comparison.ours_bearer)
        return lambda: [self.get(path, True) for path in comparison.theirs] and None


def timed_pair(ours: Callable[[], object], theirs: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median seconds of ``repeat`` calls of each after one warm-up, interleaved so load hits both alike."""
    ours()
    theirs()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for call, kept in ((ours, samples[0]), (theirs, samples[1])):
            started = time.perf_counter()
            call()
            kept.append(time.perf_counter() - started)
    return statistics.median(samples[0]), statistics.median(samples[1])


def probe(index: int, side: str) -> None:
    """In a new process (an API server just restarted): print the seconds of the first call of one side."""
    call = Client().side(comparisons()[index], side)
    started = time.perf_counter()
    call()
    print(f"{time.perf_counter() - started:.6f}")


def cold(index: int, rounds: int) -> tuple[float, float]:
    """Median seconds of the first call of each side, each in a fresh process, ``rounds`` times, alternated."""
    import subprocess

    samples: dict[str, list[float]] = {"ours": [], "theirs": []}
    for round_ in range(rounds):
        for side in ("ours", "theirs") if round_ % 2 == 0 else ("theirs", "ours"):
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.pages", "--probe", str(index), "--side", side],
                capture_output=True, text=True, check=True, cwd=REPO,
            )  # fmt: skip
            samples[side].append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(samples["ours"]), statistics.median(samples["theirs"])


def main() -> None:
    """Seed, time warm and cold, print."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--campaigns", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=20, help="warm requests per endpoint (median)")
    parser.add_argument("--cold", type=int, default=3, help="fresh processes per endpoint (median); 0: warm only")
    parser.add_argument("--postgres", action="store_true", help="use PostgreSQL on 127.0.0.1:5432")
    parser.add_argument("--probe", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--side", choices=("ours", "theirs"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe is not None:  # a cold measurement, in the environment its parent prepared
        probe(args.probe, args.side)
        return

    database = prepare_environment(args.postgres)
    try:
        seeded = time.perf_counter()
        seed(args.runs, args.campaigns)
        print(f"seeded {args.runs} runs and {args.campaigns} campaigns in {time.perf_counter() - seeded:.1f}s")
        report(Client(), args)
    finally:
        if database:
            from airflow import settings

            if settings.engine is not None:
                settings.engine.dispose()
            airflow_env.drop_pg_database(database)


def report(client: Client, args: argparse.Namespace) -> None:
    """The table: warm medians, then cold ones (first request after a restart), ratio ours / Airflow's."""
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"{backend}, in-process ASGI client. Warm: median of {args.repeat} requests, interleaved with Airflow's. "
        f"Cold: median of {args.cold} first requests, each in a new process."
    )
    print(f"{'plugin endpoint':38} {'Airflow calls':34} {'warm ms':>15} {'ratio':>6}  {'cold ms':>15} {'ratio':>6}")
    for index, comparison in enumerate(comparisons()):
        ours_s, theirs_s = timed_pair(client.side(comparison, "ours"), client.side(comparison, "theirs"), args.repeat)
        line = (
            f"{comparison.label:38} {comparison.airflow_label:34} {ours_s * 1000:7.1f}/{theirs_s * 1000:7.1f}"
            f" {ours_s / theirs_s:5.2f}x"
        )
        if args.cold:
            ours_c, theirs_c = cold(index, args.cold)
            line += f"  {ours_c * 1000:7.1f}/{theirs_c * 1000:7.1f} {ours_c / theirs_c:5.2f}x"
        print(line, flush=True)
    for comparison in comparisons():
        print(f"\n{comparison.airflow_label}: " + ", ".join(path.split("?")[0] for path in comparison.theirs), end="")
    print()


if __name__ == "__main__":
    if "--probe" in sys.argv:  # one cold measurement for its parent: no results file of its own
        main()
    else:
        with recorded("pages", "pages-postgres" if "--postgres" in sys.argv else "pages"):
            main()
