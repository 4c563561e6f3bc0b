"""``airflow campaigns db-clean``: retention of the plugin's own rows."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import UTC, datetime, timedelta

from campaign_runs.adapters.cli import ARG_OUTPUT, ARG_VERBOSE, ARG_YES, ActionCommand, arg
from campaign_runs.cli_support import CliError, confirm, edge, printer

ARG_OLDER_THAN = arg(
    ("--older-than",),
    metavar="DAYS",
    type=int,
    required=True,
    help="Remove finished emails, resolved work-list entries and unreferenced actions older than DAYS days",
)
ARG_DRY_RUN = arg(("--dry-run",), action="store_true", help="Only count what would be removed")


@edge
def campaigns_db_clean(args: argparse.Namespace) -> None:
    """``airflow campaigns db-clean --older-than DAYS [--dry-run] [--yes]``."""
    from campaign_runs.core.retention import clean

    if args.older_than < 1:
        raise CliError("--older-than must be 1 day or more.")
    cutoff = datetime.now(UTC) - timedelta(days=args.older_than)
    if not args.dry_run:
        confirm(args, f"Remove the plugin's finished rows older than {cutoff:%Y-%m-%d %H:%M} UTC?")
    result = clean(cutoff, dry_run=args.dry_run)
    if args.output in ("json", "yaml"):
        printer().print_object({**dataclasses.asdict(result), "older_than": cutoff.isoformat()}, args.output)
        return
    verb = "Would remove" if result.dry_run else "Removed"
    print(
        f"{verb} {result.emails} emails, {result.worklist_entries} work-list entries and {result.actions} actions "
        f"older than {cutoff:%Y-%m-%d %H:%M} UTC."
    )


DB_CLEAN_COMMAND = ActionCommand(
    name="db-clean",
    help="Remove the plugin's finished rows (sent or failed emails, resolved work-list entries, their actions) "
    "older than a number of days; pending emails, open entries and run statuses are kept",
    func=campaigns_db_clean,
    args=(ARG_OLDER_THAN, ARG_DRY_RUN, ARG_YES, ARG_OUTPUT, ARG_VERBOSE),
)
