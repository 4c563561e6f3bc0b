"""Maintenance commands: ``airflow campaigns housekeeping`` and ``db-clean`` (retention of the plugin's rows)."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import UTC, datetime, timedelta

from campaign_runs.adapters.cli import ARG_OUTPUT, ARG_VERBOSE, ARG_YES, ActionCommand, arg
from campaign_runs.cli.support import CliError, confirm, edge, printer
from campaign_runs.domain import plural

ARG_OLDER_THAN = arg(
    ("--older-than",),
    metavar="DAYS",
    type=int,
    required=True,
    help="Remove finished emails, resolved work-list entries, unreferenced actions and orphaned audience snapshots "
    "older than DAYS days",
)
ARG_DRY_RUN = arg(("--dry-run",), action="store_true", help="Only count what would be removed")
ARG_ONCE = arg(("--once",), action="store_true", help="Run one pass and exit instead of looping")
ARG_INTERVAL = arg(
    ("--interval",),
    metavar="SECONDS",
    type=float,
    default=None,
    help="Seconds between passes; default [campaign_runs] housekeeping_interval",
)


@edge
def campaigns_housekeeping(args: argparse.Namespace) -> None:
    """``airflow campaigns housekeeping [--once]``: follow Airflow, finish stopping runs, send due emails."""
    import time

    from campaign_runs import core
    from campaign_runs.settings import get_settings

    interval = args.interval if args.interval is not None else get_settings().housekeeping_interval
    if interval <= 0:
        raise CliError("--interval must be more than 0 seconds.")
    try:
        while True:
            outbox_ids, sent = core.housekeeping_pass()
            if args.once or outbox_ids or sent:
                print(
                    f"Housekeeping: {plural(len(outbox_ids), 'run')} finished stopping; {plural(sent, 'email')} sent.",
                    flush=True,
                )
            if args.once:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return


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
        f"older than {cutoff:%Y-%m-%d %H:%M} UTC, and {result.snapshots} audience snapshots of runs Airflow no "
        "longer has."
    )


HOUSEKEEPING_COMMAND = ActionCommand(
    name="housekeeping",
    help="Finish stopping runs and send due emails (what the scheduler does), once or in a loop",
    func=campaigns_housekeeping,
    args=(ARG_ONCE, ARG_INTERVAL, ARG_VERBOSE),
)

DB_CLEAN_COMMAND = ActionCommand(
    name="db-clean",
    help="Remove the plugin's finished rows (sent or failed emails, resolved work-list entries, their actions) "
    "older than a number of days, and the audience snapshots of runs Airflow no longer has; pending emails, open "
    "entries, run statuses and the snapshots of existing runs are kept",
    func=campaigns_db_clean,
    args=(ARG_OLDER_THAN, ARG_DRY_RUN, ARG_YES, ARG_OUTPUT, ARG_VERBOSE),
)
