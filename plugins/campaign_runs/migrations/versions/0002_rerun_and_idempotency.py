"""Tie a run record to the Airflow DagRun it describes; bind an idempotency key to its request.

Revision ID: cr0002
Revises: cr0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from airflow.utils.sqlalchemy import UtcDateTime

revision = "cr0002"
down_revision = "cr0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """DagRun identity on records and actions, request fingerprints on actions, text bodies on emails."""
    with op.batch_alter_table("campaign_run_record") as batch:
        batch.add_column(sa.Column("dag_run_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("dag_run_created_at", UtcDateTime, nullable=True))
        batch.add_column(sa.Column("clear_number", sa.Integer, nullable=True))
    with op.batch_alter_table("campaign_run_action") as batch:
        batch.add_column(sa.Column("dag_run_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("dag_run_created_at", UtcDateTime, nullable=True))
        batch.add_column(sa.Column("request_fingerprint", sa.String(64), nullable=True))
    with op.batch_alter_table("campaign_email_outbox") as batch:
        batch.add_column(sa.Column("body_text", sa.Text, nullable=True))
    op.create_index("idx_campaign_run_action_created", "campaign_run_action", ["created_at"])
    op.create_index("idx_campaign_email_outbox_created", "campaign_email_outbox", ["created_at"])


def downgrade() -> None:
    """Drop what ``upgrade`` added."""
    op.drop_index("idx_campaign_email_outbox_created", table_name="campaign_email_outbox")
    op.drop_index("idx_campaign_run_action_created", table_name="campaign_run_action")
    with op.batch_alter_table("campaign_email_outbox") as batch:
        batch.drop_column("body_text")
    with op.batch_alter_table("campaign_run_action") as batch:
        batch.drop_column("request_fingerprint")
        batch.drop_column("dag_run_created_at")
        batch.drop_column("dag_run_id")
    with op.batch_alter_table("campaign_run_record") as batch:
        batch.drop_column("clear_number")
        batch.drop_column("dag_run_created_at")
        batch.drop_column("dag_run_id")
