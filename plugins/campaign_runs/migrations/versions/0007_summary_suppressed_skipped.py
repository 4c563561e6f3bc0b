"""What a run's channel held back: recipients suppressed and snapshot rows skipped, kept in its summary.

Revision ID: cr0007
Revises: cr0006
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "cr0007"
down_revision = "cr0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """``suppressed`` (a count, 0 for earlier rows) and ``skipped`` (JSON by reason) on ``campaign_run_summary``."""
    with op.batch_alter_table("campaign_run_summary") as batch:
        batch.add_column(sa.Column("suppressed", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("skipped", sa.Text, nullable=True))


def downgrade() -> None:
    """Drop what ``upgrade`` added."""
    with op.batch_alter_table("campaign_run_summary") as batch:
        batch.drop_column("skipped")
        batch.drop_column("suppressed")
