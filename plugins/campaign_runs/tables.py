"""The plugin's own tables, on their own MetaData (never Airflow's Base)."""

from __future__ import annotations

from airflow.utils.sqlalchemy import UtcDateTime
from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)

metadata = MetaData()

ID_LENGTH = 250  # Airflow's dag_id / run_id length.

# One row per run the plugin has touched: its own status and the links between restarted runs.
run_record = Table(
    "campaign_run_record",
    metadata,
    Column("dag_id", String(ID_LENGTH), primary_key=True),
    Column("run_id", String(ID_LENGTH), primary_key=True),
    Column("status", String(20), nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Column("stop_requested_by", String(256), nullable=True),
    Column("stop_requested_at", UtcDateTime, nullable=True),
    Column("stopped_at", UtcDateTime, nullable=True),
    Column("restart_of_run_id", String(ID_LENGTH), nullable=True),
    Column("replaced_by_run_id", String(ID_LENGTH), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    # The Airflow DagRun (id, clear number) the status was set on: after a clear or a delete in Airflow it
    # no longer applies, and the run shows Airflow's own state again.
    # (SQLite reuses the id of a deleted last row, so the DagRun's created_at completes its identity.)
    Column("dag_run_id", Integer, nullable=True),
    Column("dag_run_created_at", UtcDateTime, nullable=True),
    Column("clear_number", Integer, nullable=True),
    # False when the stop was one of a "Stop all": that action sends one summary email instead.
    Column("stop_email", Boolean, nullable=False, default=True, server_default=true()),
    Index("idx_campaign_run_record_status", "status"),
)

# Every action ever taken, with its note: the history.
run_action = Table(
    "campaign_run_action",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dag_id", String(ID_LENGTH), nullable=False),
    Column("run_id", String(ID_LENGTH), nullable=False),
    Column("action", String(20), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("status_before", String(20), nullable=False),
    Column("status_after", String(20), nullable=False),
    Column("new_run_id", String(ID_LENGTH), nullable=True),
    # The DagRun acted on (id, created_at): a reused run_id starts with a clean history.
    Column("dag_run_id", Integer, nullable=True),
    Column("dag_run_created_at", UtcDateTime, nullable=True),
    Column("idempotency_key", String(256), nullable=True),
    # SHA-256 of the request the key was first used with (action, run, body): another request is refused.
    Column("request_fingerprint", String(64), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("actor", "idempotency_key", name="uq_campaign_run_action_idempotency"),
    Index("idx_campaign_run_action_run", "dag_id", "run_id"),
    Index("idx_campaign_run_action_created", "created_at"),
)

# Runs assigned to people; open while resolved_at is NULL.
worklist_entry = Table(
    "campaign_worklist_entry",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dag_id", String(ID_LENGTH), nullable=False),
    Column("run_id", String(ID_LENGTH), nullable=False),
    Column("assignee", String(256), nullable=False),
    Column("reason", String(20), nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("action_id", Integer, ForeignKey("campaign_run_action.id"), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("resolved_by", String(256), nullable=True),
    Column("resolution", String(20), nullable=True),
    Index("idx_campaign_worklist_assignee_open", "assignee", "resolved_at"),
    Index("idx_campaign_worklist_run", "dag_id", "run_id"),
)

# Emails written in the same transaction as the action, delivered after commit.
email_outbox = Table(
    "campaign_email_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("action_id", Integer, ForeignKey("campaign_run_action.id"), nullable=True),
    Column("dag_id", String(ID_LENGTH), nullable=False),
    Column("run_id", String(ID_LENGTH), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("username", String(256), nullable=False),
    Column("recipient", String(512), nullable=True),
    Column("subject", String(512), nullable=False),
    Column("body_html", Text, nullable=False),
    Column("body_text", Text, nullable=True),  # the plain-text alternative, rendered with the HTML
    Column("message_id", String(256), nullable=False, unique=True),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("claim_token", String(64), nullable=True),
    Column("claimed_until", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Index("idx_campaign_email_outbox_due", "status", "next_attempt_at"),
    Index("idx_campaign_email_outbox_created", "created_at"),
)

# A user's email address as set in Campaign Runs (``email``), and the last address the auth manager's user
# object carried (``auth_manager_email``), for processes that cannot ask the auth manager (the scheduler).
user_email = Table(
    "campaign_user_email",
    metadata,
    Column("username", String(256), primary_key=True),
    Column("email", String(512), nullable=True),
    Column("auth_manager_email", String(512), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Messages of one channel of one run, with the run's status and timing: written when the run ends or its stop
# finishes (``finalised``), so the Monitor and the overview read one row per run and channel instead of XCom.
run_summary = Table(
    "campaign_run_summary",
    metadata,
    Column("dag_id", String(ID_LENGTH), primary_key=True),
    Column("run_id", String(ID_LENGTH), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("total", Integer, nullable=False, default=0),
    Column("sent", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("in_doubt", Integer, nullable=False, default=0),
    # On the suppression list when their message was due (not in ``total``), and the snapshot's rows the channel
    # skipped: JSON ``{reason: count}`` (no_id, invalid_address, no_address, no_consent, duplicate).
    Column("suppressed", Integer, nullable=False, default=0),
    Column("skipped", Text, nullable=True),
    Column("status", String(20), nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("duration_seconds", Float, nullable=True),
    Column("finalised", Boolean, nullable=False, default=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("idx_campaign_run_summary_dag_ended", "dag_id", "ended_at"),
    Index("idx_campaign_run_summary_ended", "ended_at"),
)

# What happened to a campaign as a whole: each saved definition (a numbered version with its YAML and the diff
# from the one before) and each campaign action (Run now, Pause, Resume, Stop all), with who, when and the note.
campaign_event = Table(
    "campaign_event",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dag_id", String(ID_LENGTH), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("version", Integer, nullable=True),
    Column("content_sha", String(64), nullable=True),
    Column("definition", Text, nullable=True),
    Column("diff", Text, nullable=True),
    Column("details", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("dag_id", "version", name="uq_campaign_event_version"),
    Index("idx_campaign_event_dag", "dag_id", "id"),
)

# Default grants the plugin made once (FAB: "Campaign Definitions" to Admin and Op): a role listed here is never
# granted it again, so an administrator's later revocation stays.
permission_grant = Table(
    "campaign_permission_grant",
    metadata,
    Column("resource", String(250), primary_key=True),
    Column("role", String(64), primary_key=True),
    Column("granted_at", UtcDateTime, nullable=False),
)
