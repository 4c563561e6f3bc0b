"""``airflow campaigns suppressions ...``: the suppression list from the command line (work-list administrators).

``list`` (paged, by channel), ``add``, ``remove``, ``import --file CSV`` (header ``channel,address,reason``) and
``export`` (CSV on standard output, or ``--file``). Every command names its acting user (``--user``), who must be
a work-list administrator; a refused command changes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from campaign_runs.adapters.cli import ARG_OUTPUT, ARG_VERBOSE, ActionCommand, GroupCommand, arg
from campaign_runs.cli.support import CliError, edge, printer

CHANNELS = ("email", "sms", "push")  # factory.suppression.CHANNELS, not imported: `airflow --help` stays fast
REASONS = ("unsubscribed", "bounced", "complained", "manual", "invalid")
MAX_IMPORT_BYTES = 5 * 1024 * 1024  # core.suppressions.MAX_IMPORT_BYTES

ARG_ADMIN = arg(
    ("--user",),
    metavar="USERNAME",
    required=True,
    help="The acting user: a work-list administrator (may edit users); recorded as who added an address",
)
ARG_CHANNEL = arg(("channel",), metavar="CHANNEL", choices=CHANNELS, help="The channel: " + ", ".join(CHANNELS))
ARG_ADDRESS = arg(("address",), metavar="ADDRESS", help="The email address, phone number or push token")
ARG_REASON = arg(("--reason",), metavar="REASON", choices=REASONS, default="manual", help="Why: " + ", ".join(REASONS))
ARG_FILTER = arg(("--channel",), metavar="CHANNEL", choices=CHANNELS, default=None, help="Only this channel's entries")
ARG_AFTER = arg(
    ("--after",), metavar="CURSOR", default="", help="Start after this cursor (the next page's, printed on stderr)"
)
ARG_LIMIT = arg(("--limit",), metavar="N", type=int, default=100, help="How many entries to show (1 to 1000)")
ARG_IMPORT_FILE = arg(
    ("--file",), metavar="CSV", required=True, help="CSV file with the header channel,address,reason (5 MiB at most)"
)
ARG_EXPORT_FILE = arg(("--file",), metavar="CSV", default=None, help="Write the CSV here instead of standard output")


@edge
def suppressions_list(args: argparse.Namespace) -> None:
    """``airflow campaigns suppressions list [--channel C] [--after CURSOR] [--limit N] --user USERNAME``."""
    from campaign_runs.core.suppressions import list_suppressions

    page = list_suppressions(args.user, channel=args.channel, after=args.after, limit=args.limit)
    printer().print_as([entry.as_dict() for entry in page.entries], args.output)
    if page.next_after is not None:
        print(f"More entries: --after {page.next_after}", file=sys.stderr)


@edge
def suppressions_add(args: argparse.Namespace) -> None:
    """``airflow campaigns suppressions add CHANNEL ADDRESS [--reason R] --user USERNAME``."""
    from campaign_runs.core.suppressions import add_suppression

    added = add_suppression(args.user, args.channel, args.address, reason=args.reason, source="cli")
    state = "is now suppressed" if added else "was already suppressed (its first entry is kept)"
    print(f"{args.address} {state} on {args.channel}.")


@edge
def suppressions_remove(args: argparse.Namespace) -> None:
    """``airflow campaigns suppressions remove CHANNEL ADDRESS --user USERNAME``."""
    from campaign_runs.core.suppressions import remove_suppression

    remove_suppression(args.user, args.channel, args.address)
    print(f"{args.address} is off the {args.channel} suppression list; campaigns may send to it again.")


@edge
def suppressions_import(args: argparse.Namespace) -> None:
    """``airflow campaigns suppressions import --file CSV --user USERNAME``: every row, or none."""
    from campaign_runs.core.suppressions import import_suppressions

    path = Path(args.file)
    try:
        with path.open("rb") as source:
            data = source.read(MAX_IMPORT_BYTES + 1)
    except OSError as error:
        raise CliError(f"cannot read {args.file}: {error.strerror or error}.") from None
    if len(data) > MAX_IMPORT_BYTES:
        raise CliError(f"{args.file} is over {MAX_IMPORT_BYTES} bytes; nothing was imported (split it).")
    added, kept = import_suppressions(args.user, data, source=f"cli import {path.name}"[:200])
    print(f"Imported {args.file}: {added} added, {kept} already on the list.")


@edge
def suppressions_export(args: argparse.Namespace) -> None:
    """``airflow campaigns suppressions export [--file CSV] --user USERNAME``."""
    from campaign_runs.core.suppressions import export_suppressions

    lines = export_suppressions(args.user)
    if args.file is None:
        for chunk in lines:
            sys.stdout.write(chunk)
        return
    try:
        with open(args.file, "w", encoding="utf-8", newline="") as target:
            target.writelines(lines)
    except OSError as error:
        raise CliError(f"cannot write {args.file}: {error.strerror or error}.") from None
    print(f"Exported the suppression list to {args.file}.")


SUPPRESSIONS_COMMAND = GroupCommand(
    name="suppressions",
    help="The suppression list: addresses no campaign sends to (work-list administrators)",
    subcommands=(
        ActionCommand(
            name="list",
            help="List suppressed addresses by channel, then address",
            func=suppressions_list,
            args=(ARG_FILTER, ARG_AFTER, ARG_LIMIT, ARG_ADMIN, ARG_OUTPUT, ARG_VERBOSE),
        ),
        ActionCommand(
            name="add",
            help="Suppress an address on a channel: no campaign sends to it from its next message on",
            func=suppressions_add,
            args=(ARG_CHANNEL, ARG_ADDRESS, ARG_REASON, ARG_ADMIN, ARG_VERBOSE),
        ),
        ActionCommand(
            name="remove",
            help="Take an address off a channel's suppression list",
            func=suppressions_remove,
            args=(ARG_CHANNEL, ARG_ADDRESS, ARG_ADMIN, ARG_VERBOSE),
        ),
        ActionCommand(
            name="import",
            help="Add the rows of a CSV file (channel,address,reason); a bad row, named by its line, adds nothing",
            func=suppressions_import,
            args=(ARG_IMPORT_FILE, ARG_ADMIN, ARG_VERBOSE),
        ),
        ActionCommand(
            name="export",
            help="Write the whole list as CSV (channel,address,reason,source,actor,created_at)",
            func=suppressions_export,
            args=(ARG_EXPORT_FILE, ARG_ADMIN, ARG_VERBOSE),
        ),
    ),
)
