"""The overview on the campaigns page: messages from run summaries and live runs, work, stuck stops, outbox."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from campaign_runs.core import summaries
from campaign_runs.core.overview import stuck_after
from campaign_runs.domain import utcnow
from campaign_runs.tables import email_outbox, run_record, worklist_entry
from sqlalchemy import insert
from starlette.testclient import TestClient

from tests.campaign_runs.core.test_restart_options import report_progress
from tests.campaign_runs.pages.fab.test_campaigns import login

PAGE = "/pluginsv2/campaigns/list"


@pytest.fixture
def admin(api_app: Any) -> Iterator[TestClient]:
    with login(api_app, "admin") as client:
        yield client


def overview_of(html: str) -> dict[str, str]:
    """The overview's numbers by element id, and the stuck runs' text."""
    block = html.split('id="cr-overview"', 1)[1].split("</dl>", 1)[0]
    found = {key: value for key, value in re.findall(r'<span id="cr-([\w-]+)">([^<]*)</span>', block)}
    found["worklist"] = re.search(r'id="cr-overview-worklist"[^>]*>(\d+)</a>', block).group(1)  # type: ignore[union-attr]
    found["stuck"] = unescape(re.sub(r"<[^>]+>", "", block.split('id="cr-stuck-runs"', 1)[1].split("</dd>", 1)[0]))
    return found


def test_the_campaigns_page_shows_the_overview(admin: TestClient, make_run: Any) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    from tests.campaign_runs.conftest import TEST_DAG_IDS

    with create_session() as session:  # this worker's database may hold runs of other modules' campaigns
        session.execute(delete(DagRun).where(DagRun.dag_id.not_in(TEST_DAG_IDS)))
    done = make_run("cr_campaign", state="success")
    report_progress("cr_campaign", done, "email", {"total": 10, "sent": 7, "failed": 3})
    summaries.finalise_ended(backfill=True)
    going = make_run("cr_slow", state="running")
    report_progress("cr_slow", going, "email", {"total": 10, "sent": 2, "failed": 0})
    stuck = make_run("cr_campaign", state="running")
    now = utcnow()
    with create_session() as session:
        session.execute(
            insert(run_record).values(
                dag_id="cr_campaign",
                run_id=stuck,
                status="stopping",
                stop_requested_by="alice",
                stop_requested_at=now - stuck_after() - timedelta(minutes=1),
                updated_at=now,
            )
        )
        session.execute(
            insert(worklist_entry).values(
                dag_id="cr_campaign", run_id=done, assignee="bob", reason="stopped", note="", created_at=now
            )
        )
        session.execute(
            insert(email_outbox).values(
                dag_id="cr_campaign",
                run_id=done,
                kind="stopped",
                username="bob",
                subject="s",
                body_html="b",
                message_id="<overview@test>",
                status="pending",
                attempts=0,
                next_attempt_at=now + timedelta(hours=1),
                created_at=now - timedelta(minutes=5),
            )
        )
    page = admin.get(PAGE)
    assert page.status_code == 200, page.text[:500]
    seen = overview_of(page.text)
    assert (seen["sent-today"], seen["failed-today"], seen["sent-7-days"], seen["failed-7-days"]) == (
        "9",
        "3",
        "9",
        "3",
    )
    assert (seen["worklist"], seen["outbox-backlog"]) == ("1", "1")
    assert seen["outbox-oldest"].startswith("5m ")
    assert f"cr_campaign / {stuck}" in seen["stuck"]
