"""Fixtures of the plugin's tests: every test starts with no runs of the test campaigns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from campaign_runs.domain import utcnow
from campaign_runs.settings import get_settings
from campaign_runs.tables import (
    campaign_event,
    email_outbox,
    run_action,
    run_record,
    run_summary,
    user_email,
    worklist_entry,
)
from sqlalchemy import delete, select

from tests.support.fixtures import TEST_DAGS

TEST_DAG_IDS = ("cr_campaign", "cr_depends", "cr_plain", "cr_slow", "cr_stubborn")
SCHEDULE_FIELDS = (
    "next_dagrun",
    "next_dagrun_data_interval_start",
    "next_dagrun_data_interval_end",
    "next_dagrun_create_after",
)
_schedules: dict[str, dict[str, Any]] = {}  # each test DAG's next run as first synced: Resume moves it


def _reset_schedules(session: Any) -> None:
    """Put back the test DAGs' next runs and finish their backfills (Resume's "all" starts one)."""
    from airflow.models.backfill import Backfill
    from airflow.models.dag import DagModel
    from sqlalchemy import update

    models = list(session.scalars(select(DagModel).where(DagModel.dag_id.in_(TEST_DAG_IDS))))
    for model in models:
        saved = _schedules.setdefault(model.dag_id, {name: getattr(model, name) for name in SCHEDULE_FIELDS})
        for name, value in saved.items():
            setattr(model, name, value)
        model.is_paused = False
    session.execute(
        update(Backfill)
        .where(Backfill.dag_id.in_(TEST_DAG_IDS), Backfill.completed_at.is_(None))
        .values(completed_at=utcnow())
    )


@pytest.fixture(autouse=True)
def clean_state(airflow_db: None) -> Iterator[None]:
    """Delete the test DAGs' runs and every plugin row; unpause the test DAGs and put back their next runs."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    get_settings.cache_clear()
    with create_session() as session:
        for table in (email_outbox, worklist_entry, run_action, run_record, user_email, run_summary, campaign_event):
            session.execute(delete(table))
        for dag_run in session.scalars(select(DagRun).where(DagRun.dag_id.in_(TEST_DAG_IDS))):
            session.delete(dag_run)
        _reset_schedules(session)
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def api_app(airflow_db: None) -> Any:
    """The API server's FastAPI app (Airflow's API, FAB's app and /pluginsv2), shared by the page tests."""
    from airflow.api_fastapi.app import create_app

    with pytest.MonkeyPatch.context() as patch:
        # FAB allows 5 logins per 40 s per address; the page tests log in anew in every test.
        patch.setenv("AIRFLOW__FAB__AUTH_RATE_LIMIT", "1000 per 1 second")
        return create_app()


__all__ = ["TEST_DAGS"]
