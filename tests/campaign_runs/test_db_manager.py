"""``airflow db migrate`` creates our tables through our DB manager and migrations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from campaign_runs import __version__
from campaign_runs.db_manager import CampaignRunsDBManager
from campaign_runs.tables import metadata
from sqlalchemy import UniqueConstraint, create_engine, inspect, text
from sqlalchemy.engine import Inspector

OUR_TABLES = {
    "campaign_run_record",
    "campaign_run_action",
    "campaign_worklist_entry",
    "campaign_email_outbox",
    "campaign_user_email",
    "campaign_run_summary",
    "campaign_event",
    "campaign_permission_grant",
}
VERSION_TABLE = "alembic_version_campaign_runs"
HEAD = "cr0007"


def schema_of(inspector: Inspector, name: str) -> dict[str, Any]:
    """What a table looks like in a database: columns (with nullability), indexes, unique keys, foreign keys."""
    return {
        "columns": {c["name"]: bool(c["nullable"]) for c in inspector.get_columns(name)},
        "primary_key": sorted(inspector.get_pk_constraint(name)["constrained_columns"]),
        "indexes": {i["name"]: list(i["column_names"]) for i in inspector.get_indexes(name) if not i.get("unique")},
        "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)),
        "foreign_keys": sorted(
            (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
            for f in inspector.get_foreign_keys(name)
        ),
    }


def schema_of_model(name: str) -> dict[str, Any]:
    """The same description, from the ORM metadata."""
    table = metadata.tables[name]
    # Named constraints, and columns declared ``unique=True``: both are unique constraints in the database.
    unique = {
        tuple(c.name for c in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    }
    unique |= {(c.name,) for c in table.columns if c.unique}
    return {
        "columns": {c.name: bool(c.nullable) for c in table.columns},
        "primary_key": sorted(c.name for c in table.primary_key.columns),
        "indexes": {i.name: [c.name for c in i.columns] for i in table.indexes if not i.unique},
        "unique": sorted(unique),
        "foreign_keys": sorted(
            ((fk.parent.name,), fk.column.table.name, (fk.column.name,)) for fk in table.foreign_keys
        ),
    }


def test_the_db_manager_manages_exactly_our_four_tables_up_to_one_head() -> None:
    from airflow.utils.session import create_session

    assert set(metadata.tables) == OUR_TABLES
    assert CampaignRunsDBManager.version_table_name == VERSION_TABLE
    with create_session() as session:
        script = CampaignRunsDBManager(session).get_script_object()
    assert script.get_heads() == [HEAD]
    assert CampaignRunsDBManager.revision_heads_map[__version__] == HEAD


def test_migrate_creates_our_tables_with_their_own_version_table() -> None:
    """The test session's DB went through the real ``airflow db migrate``; look at what it left."""
    from airflow import settings
    from airflow.utils.db import _get_alembic_config
    from airflow.utils.db_manager import RunDBManager
    from airflow.utils.session import create_session
    from alembic.script import ScriptDirectory

    # ``airflow db migrate`` finds our manager through the provider info.
    assert OUR_TABLES | {VERSION_TABLE} <= RunDBManager().get_required_table_names()

    inspector = inspect(settings.engine)
    assert OUR_TABLES | {VERSION_TABLE} <= set(inspector.get_table_names())
    for name in sorted(OUR_TABLES):
        assert schema_of(inspector, name) == schema_of_model(name), name

    with create_session() as session:
        manager = CampaignRunsDBManager(session)
        head = manager.get_script_object().get_current_head()
        assert head == HEAD
        assert manager.get_current_revision() == head
        assert manager.check_migration() is True
        assert session.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all() == [head]
        # Airflow's own version table still says Airflow's revision, not ours.
        airflow_heads = ScriptDirectory.from_config(_get_alembic_config()).get_heads()
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == airflow_heads
        assert head not in airflow_heads


ROUND_TRIP = """
import json
from alembic import command
from sqlalchemy import inspect, text
from airflow import settings
from airflow.utils.session import create_session
from campaign_runs.db_manager import CampaignRunsDBManager

def state():
    inspector = inspect(settings.engine)
    tables = sorted(inspector.get_table_names())
    versions = []
    if CampaignRunsDBManager.version_table_name in tables:
        with settings.engine.connect() as conn:
            query = "SELECT version_num FROM " + CampaignRunsDBManager.version_table_name
            versions = [row[0] for row in conn.execute(text(query))]
    return {"tables": tables, "versions": versions}

stages = {}
with create_session() as s:
    CampaignRunsDBManager(s).upgradedb(use_migration_files=True)
stages["upgraded"] = state()
with create_session() as s:
    command.downgrade(CampaignRunsDBManager(s).get_alembic_config(), "base")
stages["downgraded"] = state()
with create_session() as s:
    CampaignRunsDBManager(s).upgradedb(use_migration_files=True)
with create_session() as s:
    stages["current_revision"] = CampaignRunsDBManager(s).get_current_revision()
stages["upgraded_again"] = state()
print("STAGES " + json.dumps(stages))
"""


def test_migration_files_build_the_same_schema_as_the_models_and_downgrade_cleanly(tmp_path: Path) -> None:
    """Upgrade a blank SQLite DB with the migration scripts, down to base and up again; compare with the ORM."""
    url = f"sqlite:///{tmp_path / 'blank.db'}"
    env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}
    proc = subprocess.run(
        [sys.executable, "-c", ROUND_TRIP], env=env, check=False, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("STAGES ")]
    stages = json.loads(line.removeprefix("STAGES "))

    at_head = {"tables": sorted(OUR_TABLES | {VERSION_TABLE}), "versions": [HEAD]}
    assert stages["upgraded"] == at_head
    # Down to base: our tables are gone, the version table says no revision.
    assert set(stages["downgraded"]["tables"]) <= {VERSION_TABLE}
    assert stages["downgraded"]["versions"] == []
    assert stages["upgraded_again"] == at_head
    assert stages["current_revision"] == HEAD

    inspector = inspect(create_engine(url))
    for name in sorted(OUR_TABLES):
        assert schema_of(inspector, name) == schema_of_model(name), name
