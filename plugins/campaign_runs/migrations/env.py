"""Alembic environment of the plugin's own tables."""

from __future__ import annotations

from airflow import settings
from alembic import context

from campaign_runs.db_manager import CampaignRunsDBManager

target_metadata = CampaignRunsDBManager.metadata
version_table = CampaignRunsDBManager.version_table_name


def include_object(_: object, name: str | None, type_: str, *args: object) -> bool:
    """Only look at our own tables."""
    return not (type_ == "table" and name not in target_metadata.tables)


def run_migrations_offline() -> None:
    """Emit SQL without a connection."""
    context.configure(
        url=settings.SQL_ALCHEMY_CONN,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        version_table=version_table,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against Airflow's engine."""
    connectable = settings.engine
    if connectable is None:
        raise RuntimeError("Airflow's database engine is not configured")
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            transaction_per_migration=True,
            target_metadata=target_metadata,
            render_as_batch=True,
            version_table=version_table,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
