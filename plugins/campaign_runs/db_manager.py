"""DB manager: ``airflow db migrate`` creates and upgrades the plugin's own tables."""

from __future__ import annotations

from pathlib import Path

from airflow.utils.db_manager import BaseDBManager

from campaign_runs.tables import metadata

PACKAGE_DIR = Path(__file__).parent


class CampaignRunsDBManager(BaseDBManager):
    """Manages the ``campaign_*`` tables with their own Alembic version table."""

    metadata = metadata
    version_table_name = "alembic_version_campaign_runs"
    migration_dir = str(PACKAGE_DIR / "migrations")
    alembic_file = str(PACKAGE_DIR / "alembic.ini")
    supports_table_dropping = True
    revision_heads_map = {
        "0.1.0": "cr0001",
        "0.2.0": "cr0002",
        "0.3.0": "cr0003",
        "0.4.0": "cr0004",
        "0.5.0": "cr0005",
        "0.6.0": "cr0006",
        "0.7.0": "cr0007",
    }
