"""``airflow campaigns monitor CAMPAIGN``: a campaign's numbers across its runs, as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date, datetime

from campaign_runs.adapters.cli import ARG_VERBOSE, ActionCommand, arg
from campaign_runs.cli.support import CliError, edge, printer

OUTPUTS = ("table", "json", "csv", "yaml", "plain")
_TABLE_COLUMNS = (
    "run_id",
    "status",
    "duration_seconds",
    "channel",
    "delivery",
    "sent",
    "failed",
    "in_doubt",
    "suppressed",
    "skipped",
    "total",
    "delivery_rate",
    "stops",
    "restarts",
    "skips",
)


def _end(name: str) -> Callable[[str], date | datetime | None]:
    """``--from`` / ``--to`` read as the Monitor page and the REST API read them (``core.date_range``)."""

    def parse(text: str) -> date | datetime | None:
        from campaign_runs.core.date_range import DateRangeError, parse_end

        try:
            return parse_end(name, text)
        except DateRangeError as error:
            raise argparse.ArgumentTypeError(str(error)) from error

    return parse


ARG_MONITOR_CAMPAIGN = arg(("campaign",), metavar="CAMPAIGN", help="The campaign's id (its DAG id)")
ARG_MONITOR_LIMIT = arg(
    ("--limit",), metavar="N", type=int, default=10, help="How many of the newest runs (1 to 100; 10, 30, 100)"
)
ARG_FROM = arg(
    ("--from",),
    dest="since",
    metavar="DATE",
    type=_end("from"),
    default=None,
    help="Runs from this day or time (ISO, UTC)",
)
ARG_TO = arg(
    ("--to",),
    dest="until",
    metavar="DATE",
    type=_end("to"),
    default=None,
    help="Runs to this day, included, or before this time (ISO, UTC)",
)
ARG_MONITOR_OUTPUT = arg(
    ("-o", "--output"),
    metavar="FORMAT",
    choices=OUTPUTS,
    default="table",
    help="Output: " + ", ".join(OUTPUTS) + " (json adds the status mix, interventions and work-list waits)",
)


@edge
def campaigns_monitor(args: argparse.Namespace) -> None:
    """``airflow campaigns monitor CAMPAIGN [--limit N] [--from DATE] [--to DATE] -o table|json|csv``."""
    from campaign_runs.core import monitor
    from campaign_runs.domain import skipped_text

    if not 1 <= args.limit <= monitor.MAX_LIMIT:
        raise CliError(f"--limit must be between 1 and {monitor.MAX_LIMIT}.")
    found = monitor.campaign_metrics(args.campaign, limit=args.limit, since=args.since, until=args.until)
    if args.output == "csv":
        sys.stdout.write(monitor.table_csv(found))
    elif args.output == "json":
        print(json.dumps({**monitor.summary(found), "rows": monitor.table_rows(found)}, indent=2))
    else:
        rows = [{key: row[key] for key in _TABLE_COLUMNS} for row in monitor.table_rows(found)]
        for row in rows:
            row["skipped"] = skipped_text(row["skipped"])
        printer().print_as(rows, args.output)


MONITOR_COMMAND = ActionCommand(
    name="monitor",
    help="A campaign's numbers across its runs: messages per channel, delivery rate, durations, interventions",
    func=campaigns_monitor,
    args=(ARG_MONITOR_CAMPAIGN, ARG_MONITOR_LIMIT, ARG_FROM, ARG_TO, ARG_MONITOR_OUTPUT, ARG_VERBOSE),
)
