"""Campaign-level history (definition versions, Run now, Pause, Resume, Stop all) and quiet stops.

Revision ID: cr0005
Revises: cr0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from airflow.utils.sqlalchemy import UtcDateTime

revision = "cr0005"
down_revision = "cr0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The ``campaign_event`` table and ``campaign_run_record.stop_email``."""
    op.create_table(
        "campaign_event",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("content_sha", sa.String(64), nullable=True),
        sa.Column("definition", sa.Text, nullable=True),
        sa.Column("diff", sa.Text, nullable=True),
        sa.Column("details", sa.Text, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("dag_id", "version", name="uq_campaign_event_version"),
    )
    op.create_index("idx_campaign_event_dag", "campaign_event", ["dag_id", "id"])
    with op.batch_alter_table("campaign_run_record") as batch:
        batch.add_column(sa.Column("stop_email", sa.Boolean, nullable=False, server_default=sa.true()))


def downgrade() -> None:
    """Drop what ``upgrade`` added."""
    with op.batch_alter_table("campaign_run_record") as batch:
        batch.drop_column("stop_email")
    op.drop_index("idx_campaign_event_dag", table_name="campaign_event")
    op.drop_table("campaign_event")
