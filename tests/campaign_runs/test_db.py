"""``airflow db migrate`` creates our tables through our DB manager and migrations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from campaign_runs.models import metadata
from sqlalchemy import create_engine, inspect, text

from tests.support.airflow_env import VENV_BIN


def test_migrate_creates_our_tables_with_their_own_version_table() -> None:
    from airflow import settings

    tables = set(inspect(settings.engine).get_table_names())
    assert set(metadata.tables) <= tables
    assert "alembic_version_campaign_runs" in tables
    with settings.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version_campaign_runs")).scalar() == "cr0001"
        # Airflow's own version table still says Airflow's revision, not ours.
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() != "cr0001"


def test_migration_files_build_the_same_schema_as_the_models(tmp_path: Path) -> None:
    """Upgrade a blank SQLite DB with the migration scripts and compare with the ORM metadata."""
    url = f"sqlite:///{tmp_path / 'blank.db'}"
    env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}
    script = (
        "from airflow.utils.session import create_session\n"
        "from campaign_runs.db import CampaignRunsDBManager\n"
        "with create_session() as s:\n"
        "    CampaignRunsDBManager(s).upgradedb(use_migration_files=True)\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, timeout=120)
    inspector = inspect(create_engine(url))
    for name, table in metadata.tables.items():
        columns = {c["name"] for c in inspector.get_columns(name)}
        assert columns == {c.name for c in table.columns}, name
    assert VENV_BIN.exists()
