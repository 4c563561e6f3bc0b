"""The SQLite metadata DB waits out another process's write instead of failing with "database is locked"."""

from __future__ import annotations

import sqlite3
import threading

import pytest


def test_a_write_waits_for_a_lock_held_longer_than_sqlites_default(airflow_db: None) -> None:
    """Another connection holds the write lock for 6 s (sqlite3 gives up after 5 s by default); the write waits."""
    from airflow import settings
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    if settings.engine is None or settings.engine.dialect.name != "sqlite":
        pytest.skip("the metadata DB of this run is not SQLite")
    holder = sqlite3.connect(str(settings.engine.url.database), isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    held = threading.Timer(6.0, holder.rollback)
    held.start()
    try:
        with create_session() as session:
            session.add(Variable(key="campaign_runs_lock_probe", val="1"))
        with create_session() as session:
            assert session.scalar(select(Variable.key).where(Variable.key == "campaign_runs_lock_probe"))
            session.query(Variable).filter(Variable.key == "campaign_runs_lock_probe").delete()
    finally:
        held.join()
        holder.close()


def test_on_postgresql_the_setting_adds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployment that keeps the setting and moves its metadata DB to PostgreSQL still connects (no 'timeout')."""
    from campaign_runs import sqlite_metadata

    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    assert sqlite_metadata.connect_args() == {}
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:////var/lib/airflow/airflow.db")
    assert sqlite_metadata.connect_args() == {"timeout": 60}
