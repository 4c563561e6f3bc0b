"""Durable per-run, per-channel message counts, so the Monitor and the overview need not read every XCom.

Revision ID: cr0004
Revises: cr0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from airflow.utils.sqlalchemy import UtcDateTime

revision = "cr0004"
down_revision = "cr0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The ``campaign_run_summary`` table and its indexes by end date."""
    op.create_table(
        "campaign_run_summary",
        sa.Column("dag_id", sa.String(250), primary_key=True),
        sa.Column("run_id", sa.String(250), primary_key=True),
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("sent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("in_doubt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=True),
        sa.Column("ended_at", UtcDateTime, nullable=True),
        sa.Column("duration_seconds", sa.Float, nullable=True),
        sa.Column("finalised", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("idx_campaign_run_summary_dag_ended", "campaign_run_summary", ["dag_id", "ended_at"])
    op.create_index("idx_campaign_run_summary_ended", "campaign_run_summary", ["ended_at"])


def downgrade() -> None:
    """Drop what ``upgrade`` added."""
    op.drop_index("idx_campaign_run_summary_ended", table_name="campaign_run_summary")
    op.drop_index("idx_campaign_run_summary_dag_ended", table_name="campaign_run_summary")
    op.drop_table("campaign_run_summary")
