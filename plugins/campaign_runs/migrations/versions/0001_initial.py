"""Create the campaign_* tables.

Revision ID: cr0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from airflow.utils.sqlalchemy import UtcDateTime

revision = "cr0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the plugin's tables."""
    op.create_table(
        "campaign_run_record",
        sa.Column("dag_id", sa.String(250), primary_key=True),
        sa.Column("run_id", sa.String(250), primary_key=True),
        sa.Column("status", sa.String(20), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("stop_requested_by", sa.String(256), nullable=True),
        sa.Column("stop_requested_at", UtcDateTime, nullable=True),
        sa.Column("stopped_at", UtcDateTime, nullable=True),
        sa.Column("restart_of_run_id", sa.String(250), nullable=True),
        sa.Column("replaced_by_run_id", sa.String(250), nullable=True),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("idx_campaign_run_record_status", "campaign_run_record", ["status"])
    op.create_table(
        "campaign_run_action",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("status_before", sa.String(20), nullable=False),
        sa.Column("status_after", sa.String(20), nullable=False),
        sa.Column("new_run_id", sa.String(250), nullable=True),
        sa.Column("idempotency_key", sa.String(256), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("actor", "idempotency_key", name="uq_campaign_run_action_idempotency"),
    )
    op.create_index("idx_campaign_run_action_run", "campaign_run_action", ["dag_id", "run_id"])
    op.create_table(
        "campaign_worklist_entry",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("assignee", sa.String(256), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("action_id", sa.Integer, sa.ForeignKey("campaign_run_action.id"), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("resolved_at", UtcDateTime, nullable=True),
        sa.Column("resolved_by", sa.String(256), nullable=True),
        sa.Column("resolution", sa.String(20), nullable=True),
    )
    op.create_index(
        "idx_campaign_worklist_assignee_open", "campaign_worklist_entry", ["assignee", "resolved_at"]
    )
    op.create_index("idx_campaign_worklist_run", "campaign_worklist_entry", ["dag_id", "run_id"])
    op.create_table(
        "campaign_email_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("action_id", sa.Integer, sa.ForeignKey("campaign_run_action.id"), nullable=True),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("recipient", sa.String(512), nullable=True),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("body_html", sa.Text, nullable=False),
        sa.Column("message_id", sa.String(256), nullable=False, unique=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UtcDateTime, nullable=False),
        sa.Column("claim_token", sa.String(64), nullable=True),
        sa.Column("claimed_until", UtcDateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("sent_at", UtcDateTime, nullable=True),
    )
    op.create_index("idx_campaign_email_outbox_due", "campaign_email_outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    """Drop the plugin's tables."""
    for table in ("campaign_email_outbox", "campaign_worklist_entry", "campaign_run_action", "campaign_run_record"):
        op.drop_table(table)
