"""Page speed at scale: the plugin's pages against Airflow's own REST API on the same database, in one run.

Seeds a private metadata DB with one campaign of 10,000 runs and 500 campaigns, then times, through the
API server's ASGI app in-process (same app, same DB, same login):

- the campaign display (``/pluginsv2/campaigns/display/<dag>``) vs ``/api/v2/dags/<dag>/dagRuns?limit=50``
- the campaigns page (``/pluginsv2/campaigns/list``) vs ``/api/v2/dags?limit=100``
- the plugin's JSON run schedule and campaigns (``/campaign-runs/...``) vs the same Airflow endpoints
- the Monitor page and its JSON metrics for 100 runs (finished runs read from their summaries, as the
  housekeeper's backfill leaves them) vs ``/api/v2/dags/<dag>/dagRuns?limit=100``
- the overview across campaigns (``/campaign-runs/overview``) vs ``/api/v2/dags?limit=100``

Run with ``python -m benchmarks.pages [--runs 10000] [--campaigns 500] [--repeat 20] [--postgres]``.
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
    from campaign_runs.models import run_summary
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


def main() -> None:
    """Seed, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--campaigns", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--postgres", action="store_true", help="use PostgreSQL on 127.0.0.1:5432")
    args = parser.parse_args()

    database = prepare_environment(args.postgres)
    try:
        seeded = time.perf_counter()
        seed(args.runs, args.campaigns)
        print(f"seeded {args.runs} runs and {args.campaigns} campaigns in {time.perf_counter() - seeded:.1f}s")

        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        client = TestClient(create_app(), base_url="http://localhost")
        token = login(client)
        bearer = {"Authorization": f"Bearer {token}"}

        def get(path: str, headers: dict[str, str] | None = None) -> Callable[[], object]:
            def call() -> object:
                response = client.get(path, headers=headers or {})
                assert response.status_code == 200, (path, response.status_code, response.text[:300])
                return response

            return call

        pairs = [
            (
                "campaign display (HTML, first page)",
                get(f"/pluginsv2/campaigns/display/{BIG_CAMPAIGN}"),
                f"/api/v2/dags/{BIG_CAMPAIGN}/dagRuns?limit=50",
                get(f"/api/v2/dags/{BIG_CAMPAIGN}/dagRuns?limit=50", bearer),
            ),
            (
                "campaigns page (HTML, first page)",
                get("/pluginsv2/campaigns/list"),
                "/api/v2/dags?limit=100",
                get("/api/v2/dags?limit=100", bearer),
            ),
            (
                "run schedule (JSON API)",
                get(f"/campaign-runs/campaigns/{BIG_CAMPAIGN}/runs?page_size=50", bearer),
                f"/api/v2/dags/{BIG_CAMPAIGN}/dagRuns?limit=50",
                get(f"/api/v2/dags/{BIG_CAMPAIGN}/dagRuns?limit=50", bearer),
            ),
            (
                "campaigns (JSON API)",
                get("/campaign-runs/campaigns?limit=100", bearer),
                "/api/v2/dags?limit=100",
                get("/api/v2/dags?limit=100", bearer),
            ),
            (
                "monitor (HTML, 100 runs)",
                get(f"/pluginsv2/campaigns/monitor/{BIG_CAMPAIGN}?limit=100"),
                f"/api/v2/dags/{BIG_CAMPAIGN}/dagRuns?limit=100",
                get(f"/api/v2/dags/{BIG_CAMPAIGN}/dagRuns?limit=100", bearer),
            ),
            (
                "monitor metrics (JSON API, 100 runs)",
                get(f"/campaign-runs/campaigns/{BIG_CAMPAIGN}/metrics?limit=100", bearer),
                f"/api/v2/dags/{BIG_CAMPAIGN}/dagRuns?limit=100",
                get(f"/api/v2/dags/{BIG_CAMPAIGN}/dagRuns?limit=100", bearer),
            ),
            (
                "overview (JSON API)",
                get("/campaign-runs/overview", bearer),
                "/api/v2/dags?limit=100",
                get("/api/v2/dags?limit=100", bearer),
            ),
        ]
        backend = "PostgreSQL" if args.postgres else "SQLite"
        print(f"{backend}, median of {args.repeat} requests each (interleaved with Airflow's), in-process ASGI client")
        print(f"{'plugin endpoint':38} {'ms':>8}   {'Airflow endpoint':45} {'ms':>8}  ratio")
        for label, ours, airflow_label, theirs in pairs:
            ours_s, theirs_s = timed_pair(ours, theirs, args.repeat)
            print(
                f"{label:38} {ours_s * 1000:8.1f}   {airflow_label:45} {theirs_s * 1000:8.1f}  "
                f"{ours_s / theirs_s:5.2f}x"
            )
    finally:
        if database:
            from airflow import settings

            if settings.engine is not None:
                settings.engine.dispose()
            airflow_env.drop_pg_database(database)


if __name__ == "__main__":
    with recorded("pages"):
        main()
