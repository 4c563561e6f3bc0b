"""The campaign pages issue a number of SQL statements that does not grow with runs or campaigns.

Runs and campaigns are created by bulk INSERTs copied from a real row, then each page is fetched
through a real login while counting the statements sent on Airflow's engine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, insert, select
from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import login
from tests.conftest import REPO

BASE = "/pluginsv2/campaigns"
STATEMENTS = REPO / "docs" / "benchmarks" / "statements.json"
BULK_RUN_PREFIX = "bulk__"
BULK_DAG_PREFIX = "bulk_campaign_"


def expected(name: str) -> int:
    """The statements page ``name`` costs, as the docs print them (``docs/benchmarks/statements.json``)."""
    return int(json.loads(STATEMENTS.read_text(encoding="utf-8"))[name]["statements"])


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


def page_queries(client: TestClient, url: str, tries: int = 3) -> int:
    """Statements one request of ``url`` runs: the fewest of ``tries``."""
    counts = []  # the fewest: a cache of Airflow's own refilled once (DAG version, permissions) is not the page's
    for _ in range(tries):
        with counted() as statements:
            response = client.get(url)
        assert response.status_code == 200, response.text[:500]
        counts.append(len(statements))
    return min(counts)


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


def rows_on(client: TestClient, url: str, pattern: str) -> int:
    """How many times ``pattern`` occurs on the page at ``url``."""
    response = client.get(url)
    assert response.status_code == 200, response.text[:500]
    return len(re.findall(pattern, response.text))


def campaign_total() -> int:
    """DAGs tagged ``campaign`` in the metadata DB (counted here, not by the plugin)."""
    from airflow.models.dag import DagModel, DagTag
    from airflow.utils.session import create_session
    from sqlalchemy import func

    with create_session() as session:
        query = (
            select(func.count(func.distinct(DagModel.dag_id)))
            .join(DagTag, DagTag.dag_id == DagModel.dag_id)
            .where(DagTag.name == "campaign", DagModel.is_stale.is_(False))
        )
        return int(session.scalar(query) or 0)


def test_campaign_display_queries_do_not_grow_with_runs(
    admin: TestClient, make_run: Callable[..., str], bulk_runs: Callable[[int], None]
) -> None:
    url = f"{BASE}/display/cr_campaign"
    status = f"{BASE}/display/cr_campaign/status.json"
    row = r'class="cr-row" data-run-id='
    for state in ("running", "failed", "success"):
        make_run("cr_campaign", state=state)
    bulk_runs(0)  # only the template run: 4 runs, fewer than one page
    page_queries(admin, url)  # warm-up: first-request set-up is not part of the page
    page_queries(admin, status)

    # A few runs: every one of them on the first page.
    few = page_queries(admin, url)
    few_status = page_queries(admin, status)
    assert rows_on(admin, url, row) == 4
    assert len(admin.get(status).json()["runs"]) == 4

    # A full first page and a second one.
    bulk_runs(40)
    some = page_queries(admin, url)
    some_status = page_queries(admin, status)
    some_page = admin.get(url).text
    assert "Page 1 of 2" in some_page
    assert len(re.findall(row, some_page)) == 25
    assert len(admin.get(status).json()["runs"]) == 25

    # 10,000 runs: the first page still shows the newest 25.
    bulk_runs(10_000 - 44)
    many = page_queries(admin, url)
    many_status = page_queries(admin, status)
    many_page = admin.get(url).text
    assert "Page 1 of 400" in many_page
    assert len(re.findall(row, many_page)) == 25
    assert len(admin.get(status).json()["runs"]) == 25
    last = page_queries(admin, f"{url}?page=400")
    assert rows_on(admin, f"{url}?page=400", row) == 25

    print(
        f"campaign display: {few} statements with 4 runs, {some} with 44, {many} with 10,000, {last} for page 400; "
        f"status.json: {few_status}, {some_status}, {many_status}"
    )
    assert few == some == many == last
    assert few_status == some_status == many_status
    assert (many, many_status) == (expected("display"), expected("display_json")), "update the docs' figures"


def test_campaigns_page_queries_do_not_grow_with_campaigns(
    admin: TestClient, make_run: Callable[..., str], bulk_campaigns: Callable[[int], None]
) -> None:
    make_run("cr_campaign", state="running")
    url = f"{BASE}/list"
    search = f"{url}?q=bulk_campaign_000&sort=owner&desc=1"
    row = r"data-dag-id="
    before = campaign_total()
    assert before >= 4  # the test campaigns

    bulk_campaigns(5)
    page_queries(admin, url)  # warm-up
    few = page_queries(admin, url)
    few_real = real_source_listed(admin, url)
    few_search = page_queries(admin, search)
    assert rows_on(admin, url, row) == before + 5
    assert rows_on(admin, search, row) == 5  # bulk_campaign_00000 .. 00004

    bulk_campaigns(495)
    many = page_queries(admin, url)
    many_real = real_source_listed(admin, url)
    many_search = page_queries(admin, search)
    listed = admin.get(url).text
    assert len(re.findall(row, listed)) == 50  # one page
    assert f"{before + 500} campaigns" in listed
    searched = admin.get(search).text
    assert len(re.findall(row, searched)) == 50  # bulk_campaign_00000 .. 00099: two pages
    assert "100 campaigns" in searched

    print(
        f"campaigns page: {few} statements with {before + 5} campaigns, {many} with {before + 500}; "
        f"search: {few_search} with 5 matches, {many_search} with 100"
    )
    # Exactly the docs' figure with a few campaigns and with 500 more. A real-source campaign that another test
    # left on page one may add one query for its About (none once its definition is cached): one more, only then.
    figure = expected("campaigns")
    assert few in (figure, figure + few_real), "update the docs' figures"
    assert many in (figure, figure + many_real), "update the docs' figures"
    assert few_search == many_search
    assert many_search == expected("campaigns_search"), "update the docs' figures"


def real_source_listed(admin: TestClient, url: str) -> int:
    """1 when the first page of ``url`` lists a campaign with a real (SQL or file) audience, else 0."""
    listed = admin.get(url).text
    return int(re.search(r'class="cr-audience">(SQL query|CSV file|JSONL file)', listed) is not None)


def bulk_summaries(start: int, count: int) -> None:
    """Finalised summaries (two channels) of bulk runs ``start`` to ``start + count``, as the backfill writes them."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from campaign_runs.tables import run_summary

    ids = [f"{BULK_RUN_PREFIX}{number:06d}" for number in range(start, start + count)]
    with create_session() as session:
        ended = dict(
            session.execute(
                select(DagRun.run_id, DagRun.end_date).where(DagRun.dag_id == "cr_campaign", DagRun.run_id.in_(ids))
            ).all()
        )
    numbers = {"total": 10, "sent": 9, "failed": 1, "in_doubt": 0, "status": "completed", "finalised": True}
    rows = [
        {"run_id": run_id, "channel": channel, "ended_at": ended[run_id], "updated_at": ended[run_id], **numbers}
        for run_id in ids
        for channel in ("email", "sms")
    ]
    copy_rows(run_summary, {"dag_id": "cr_campaign"}, rows)


def test_monitor_queries_do_not_grow_with_runs(
    admin: TestClient, make_run: Callable[..., str], bulk_runs: Callable[[int], None]
) -> None:
    from campaign_runs.core import summaries

    from tests.campaign_runs.core.test_restart_options import report_progress

    url = f"{BASE}/monitor/cr_campaign?limit=100"
    csv_url = f"{BASE}/monitor/cr_campaign/table.csv?limit=100"
    row = r'<tr class="cr-row" data-run-id='
    for state in ("running", "failed", "success"):
        run_id = make_run("cr_campaign", state=state)
        report_progress("cr_campaign", run_id, "email", {"total": 10, "sent": 4, "failed": 1})
    bulk_runs(0)  # the template run
    summaries.finalise_ended(backfill=True)  # the ended ones read their summary, the running one XCom
    page_queries(admin, url)  # warm-up

    few = page_queries(admin, url)
    few_csv = page_queries(admin, csv_url)
    assert rows_on(admin, url, row) == 4 * 2  # a row per run and channel

    bulk_runs(10_000 - 4)
    bulk_summaries(0, 10_000 - 4)
    many = page_queries(admin, url)
    many_csv = page_queries(admin, csv_url)
    page = admin.get(url).text
    assert len(re.findall(row, page)) == 100 * 2
    assert page.count('<td data-col="sent">9</td>') == 96 * 2  # bulk runs: from their summaries

    print(f"monitor (100 runs): {few} statements with 4 runs, {many} with 10,000; CSV: {few_csv}, {many_csv}")
    assert few == many
    assert few_csv == many_csv
    assert (many, many_csv) == (expected("monitor"), expected("monitor_csv")), "update the docs' figures"
