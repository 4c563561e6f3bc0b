"""The campaign pages issue a number of SQL statements that does not grow with runs or campaigns.

Runs and campaigns are created by bulk INSERTs copied from a real row, then each page is fetched
through a real login while counting the statements sent on Airflow's engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, insert, select
from starlette.testclient import TestClient

from tests.campaign_runs.test_views import login

BASE = "/pluginsv2/campaigns"
BULK_RUN_PREFIX = "bulk__"
BULK_DAG_PREFIX = "bulk_campaign_"


@pytest.fixture(scope="module")
def api_app(airflow_db: None) -> Any:
    """The API server's FastAPI app, with FAB's login rate limit raised."""
    from airflow.api_fastapi.app import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__FAB__AUTH_RATE_LIMIT", "1000 per 1 second")
        return create_app()


@pytest.fixture
def admin(api_app: Any) -> Iterator[TestClient]:
    with login(api_app, "admin") as client:
        yield client


@contextmanager
def counted() -> Iterator[list[str]]:
    """Every SQL statement sent on Airflow's engine inside the block."""
    from airflow import settings

    statements: list[str] = []

    def before_cursor_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(settings.engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield statements
    finally:
        event.remove(settings.engine, "before_cursor_execute", before_cursor_execute)


def page_queries(client: TestClient, url: str) -> int:
    with counted() as statements:
        response = client.get(url)
    assert response.status_code == 200, response.text[:500]
    return len(statements)


def copy_rows(table: Any, template: dict[str, Any], rows: list[dict[str, Any]], skip: tuple[str, ...] = ()) -> None:
    """Bulk INSERT of ``rows``, each a copy of ``template`` with some columns changed."""
    from airflow.utils.session import create_session

    base = {key: value for key, value in template.items() if key not in skip}
    with create_session() as session:
        for start in range(0, len(rows), 1000):
            session.execute(insert(table), [{**base, **row} for row in rows[start : start + 1000]])


def row_of(table: Any, *where: Any) -> dict[str, Any]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return dict(session.execute(select(table).where(*where)).mappings().one())


@pytest.fixture
def bulk_runs(make_run: Callable[..., str]) -> Iterator[Callable[[int], None]]:
    """Add older runs of cr_campaign by bulk INSERT (copies of a real run); removed afterwards."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    template_id = make_run("cr_campaign", state="failed")
    table = DagRun.__table__
    template = row_of(table, table.c.dag_id == "cr_campaign", table.c.run_id == template_id)
    oldest = template["logical_date"] - timedelta(days=400)
    made = 0

    def add(count: int) -> None:
        nonlocal made
        rows = []
        for number in range(made, made + count):
            moment = oldest - timedelta(minutes=number)
            rows.append(
                {
                    "run_id": f"{BULK_RUN_PREFIX}{number:06d}",
                    "logical_date": moment,
                    "run_after": moment,
                    "queued_at": moment,
                    "start_date": moment,
                    "end_date": moment + timedelta(minutes=1),
                    "data_interval_start": moment,
                    "data_interval_end": moment + timedelta(days=1),
                    "state": "success" if number % 3 else "failed",
                }
            )
        copy_rows(table, template, rows, skip=("id",))
        made += count

    yield add
    with create_session() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id == "cr_campaign", DagRun.run_id.startswith(BULK_RUN_PREFIX)))


@pytest.fixture
def bulk_campaigns(airflow_db: None) -> Iterator[Callable[[int], None]]:
    """Add campaign DAGs by bulk INSERT (copies of cr_campaign's rows); removed afterwards."""
    from airflow.models.dag import DagModel, DagOwnerAttributes, DagTag
    from airflow.utils.session import create_session

    dag_table = DagModel.__table__
    template = row_of(dag_table, dag_table.c.dag_id == "cr_campaign")
    made = 0

    def add(count: int) -> None:
        nonlocal made
        ids = [f"{BULK_DAG_PREFIX}{number:05d}" for number in range(made, made + count)]
        copy_rows(dag_table, template, [{"dag_id": dag_id} for dag_id in ids])
        tags = [{"dag_id": d, "name": n} for d in ids for n in ("campaign", "channel:email", "audience:bulk")]
        copy_rows(DagTag.__table__, {}, tags)
        owners = [{"dag_id": d, "owner": "growth", "link": "mailto:growth@example.com"} for d in ids]
        copy_rows(DagOwnerAttributes.__table__, {}, owners)
        made += count

    yield add
    with create_session() as session:
        for model in (DagTag, DagOwnerAttributes, DagModel):
            session.execute(delete(model).where(model.dag_id.startswith(BULK_DAG_PREFIX)))


def test_campaign_display_queries_do_not_grow_with_runs(
    admin: TestClient, make_run: Callable[..., str], bulk_runs: Callable[[int], None]
) -> None:
    # The first page always shows the same newest runs; only older history grows.
    for state in ("running", "failed", "success"):
        make_run("cr_campaign", state=state)
    bulk_runs(40)
    url = f"{BASE}/display/cr_campaign"
    page_queries(admin, url)  # warm-up: first-request set-up is not part of the page
    small = page_queries(admin, url)
    small_schedule = admin.get(url)
    assert "Page 1 of 2" in small_schedule.text

    bulk_runs(10_000 - 44)
    large = page_queries(admin, url)
    large_schedule = admin.get(url)
    assert "Page 1 of 400" in large_schedule.text
    assert len(re.findall(r'class="cr-row" data-run-id=', large_schedule.text)) == 25
    print(f"campaign display: {small} statements with 44 runs, {large} with 10,000 runs")
    assert small == large
    assert large <= 40

    # The same holds for the run schedule's JSON statuses.
    status = f"{BASE}/display/cr_campaign/status.json"
    assert page_queries(admin, status) == page_queries(admin, status)


def test_campaigns_page_queries_do_not_grow_with_campaigns(
    admin: TestClient, make_run: Callable[..., str], bulk_campaigns: Callable[[int], None]
) -> None:
    make_run("cr_campaign", state="running")
    bulk_campaigns(5)
    url = f"{BASE}/list"
    page_queries(admin, url)
    small = page_queries(admin, url)
    assert len(re.findall(r"data-dag-id=", admin.get(url).text)) >= 9

    bulk_campaigns(495)
    large = page_queries(admin, url)
    listed = admin.get(url)
    assert len(re.findall(r"data-dag-id=", listed.text)) == 50
    assert (
        re.search(r"(\d+) campaigns", listed.text) and int(re.search(r"(\d+) campaigns", listed.text).group(1)) >= 504
    )
    searched = page_queries(admin, f"{url}?q=bulk_campaign_004&sort=owner&desc=1")
    print(f"campaigns page: {small} statements with 9 campaigns, {large} with 504; search {searched}")
    assert small == large
    assert large <= 30
