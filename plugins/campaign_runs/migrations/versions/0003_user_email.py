"""Email addresses users set in Campaign Runs, and the last one their auth manager gave.

Revision ID: cr0003
Revises: cr0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from airflow.utils.sqlalchemy import UtcDateTime

revision = "cr0003"
down_revision = "cr0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The ``campaign_user_email`` table."""
    op.create_table(
        "campaign_user_email",
        sa.Column("username", sa.String(256), primary_key=True),
        sa.Column("email", sa.String(512), nullable=True),
        sa.Column("auth_manager_email", sa.String(512), nullable=True),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    """Drop what ``upgrade`` added."""
    op.drop_table("campaign_user_email")
