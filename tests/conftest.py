"""Test-session set-up: a private AIRFLOW_HOME and metadata DB (SQLite or PostgreSQL), migrated for real.

Select the database with ``CAMPAIGN_RUNS_TEST_DB=sqlite`` (default) or ``postgres``; the PostgreSQL
server is ``CAMPAIGN_RUNS_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432``). Each session
creates its own database and drops it at the end.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from tests.support import airflow_env  # noqa: E402

_HOME = Path(tempfile.mkdtemp(prefix="campaign-runs-test-"))
_BACKEND = os.environ.get("CAMPAIGN_RUNS_TEST_DB", "sqlite")
_PG_DB = f"campaign_runs_test_{os.getpid()}"
os.environ.update(airflow_env.environment(_HOME, backend=_BACKEND, pg_database=_PG_DB))

pytest_plugins = ["tests.support.fixtures", "tests.support.shared_stack"]


def _is_xdist_controller(config) -> bool:  # type: ignore[no-untyped-def]
    """The xdist controller runs no test; only its workers need a database."""
    return not hasattr(config, "workerinput") and bool(config.getoption("numprocesses", None))


def pytest_configure(config):  # type: ignore[no-untyped-def]
    """Create and migrate the metadata DB once per test process."""
    if _is_xdist_controller(config):
        return
    if _BACKEND == "postgres":
        airflow_env.create_pg_database(_PG_DB)
    airflow_env.migrate(dict(os.environ))


def pytest_unconfigure(config):  # type: ignore[no-untyped-def]
    """Drop the PostgreSQL database this session created."""
    if _BACKEND == "postgres" and not _is_xdist_controller(config):
        from airflow import settings

        if settings.engine is not None:
            settings.engine.dispose()
        airflow_env.drop_pg_database(_PG_DB)
