"""``airflow campaigns emails ...``: the email outbox from the command line (list, resend)."""

from __future__ import annotations

import argparse

from campaign_runs.adapters.cli import ARG_OUTPUT, ARG_VERBOSE, ActionCommand, GroupCommand, arg
from campaign_runs.cli.support import CliError, edge, printer

EMAIL_STATUSES = ("pending", "sent", "failed", "undeliverable")
_TABLE_COLUMNS = ("id", "dag_id", "run_id", "kind", "recipient", "status", "attempts", "last_error", "created_at")

ARG_STATUS = arg(
    ("--status",),
    metavar="STATUS",
    choices=EMAIL_STATUSES,
    default=None,
    help="Show only emails with this status: " + ", ".join(EMAIL_STATUSES),
)
ARG_EMAIL_CAMPAIGN = arg(("--campaign",), metavar="CAMPAIGN", default=None, help="Show only this campaign's emails")
ARG_EMAIL_LIMIT = arg(("--limit",), metavar="N", type=int, default=100, help="How many emails to show, newest first")
ARG_EMAIL_ID = arg(("email_id",), metavar="ID", type=int, help="The email's id (from `emails list`)")
ARG_ADMIN = arg(
    ("--user",),
    metavar="USERNAME",
    required=True,
    help="The acting user: an administrator (may edit users); the resend is kept in the run's history",
)


@edge
def emails_list(args: argparse.Namespace) -> None:
    """``airflow campaigns emails list [--status STATUS] [--campaign CAMPAIGN]``."""
    from campaign_runs.core.emails import list_emails
    from campaign_runs.presenters import email_row

    if args.limit < 1:
        raise CliError("--limit must be 1 or more.")
    rows = [email_row(e) for e in list_emails(status=args.status, dag_id=args.campaign, limit=args.limit)]
    if args.output in ("table", "plain"):
        rows = [{k: row[k] for k in _TABLE_COLUMNS} for row in rows]
    printer().print_as(rows, args.output)


@edge
def emails_resend(args: argparse.Namespace) -> None:
    """``airflow campaigns emails resend ID --user USERNAME``."""
    from campaign_runs.core import wait_for_deliveries
    from campaign_runs.core.emails import resend_email
    from campaign_runs.presenters import email_row

    email = resend_email(args.email_id, args.user)
    wait_for_deliveries(timeout=60)  # the process is about to exit; the housekeeper retries anything unsent
    if args.output in ("json", "yaml"):
        printer().print_object(email_row(email), args.output)
        return
    print(f"Email {email.id} to {email.recipient} is pending again (attempts reset); it is being sent now.")


EMAILS_COMMAND = GroupCommand(
    name="emails",
    help="The email outbox: list emails (e.g. the failed ones) and resend a failed one",
    subcommands=(
        ActionCommand(
            name="list",
            help="List emails, newest first, with status, recipient, attempts and last error",
            func=emails_list,
            args=(ARG_STATUS, ARG_EMAIL_CAMPAIGN, ARG_EMAIL_LIMIT, ARG_OUTPUT, ARG_VERBOSE),
        ),
        ActionCommand(
            name="resend",
            help="Resend a failed or undeliverable email (administrators only): pending again, attempts reset",
            func=emails_resend,
            args=(ARG_EMAIL_ID, ARG_ADMIN, ARG_OUTPUT, ARG_VERBOSE),
        ),
    ),
)
