"""The default grants the plugin made once ("Campaign Definitions" to Admin and Op under FAB).

Revision ID: cr0006
Revises: cr0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from airflow.utils.sqlalchemy import UtcDateTime

revision = "cr0006"
down_revision = "cr0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The ``campaign_permission_grant`` table."""
    op.create_table(
        "campaign_permission_grant",
        sa.Column("resource", sa.String(250), primary_key=True),
        sa.Column("role", sa.String(64), primary_key=True),
        sa.Column("granted_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    """Drop what ``upgrade`` added."""
    op.drop_table("campaign_permission_grant")
