"""``airflow campaigns audience CAMPAIGN``: who the campaign's audience holds now, read from its source.

Nothing is written and nothing is sent: every row is counted, the first ``--limit`` are shown with the reason a
run would skip each on each channel, and one message per channel is rendered for the first row it would send to.
"""

from __future__ import annotations

import argparse
from typing import Any

from campaign_runs.adapters.cli import ARG_OUTPUT, ARG_VERBOSE, ActionCommand, arg
from campaign_runs.cli.support import CliError, edge, printer

MAX_ROWS = 100
ADDRESS_OF = {"email": "email", "sms": "phone", "push": "push_token"}

ARG_CAMPAIGN = arg(("campaign",), metavar="CAMPAIGN", help="The campaign's id (its DAG id)")
ARG_ROWS = arg(
    ("--limit",),
    metavar="N",
    type=int,
    default=10,
    help=f"How many rows to show, 0 to {MAX_ROWS} (default 10); every row of the source is counted",
)


def _row(row: dict[str, Any], channels: list[str]) -> dict[str, Any]:
    shown: dict[str, Any] = {"position": row["position"], "id": row["id"]}
    for channel in channels:
        shown[ADDRESS_OF.get(channel, channel)] = row.get(ADDRESS_OF.get(channel, ""), "")
        shown[f"{channel} skipped"] = row["skipped"].get(channel) or ""
    return {**shown, "fields": row["fields"]}


def _print_text(preview: dict[str, Any], output: str) -> None:
    print(f"{preview['campaign']}: {preview['count']} rows from {preview['label']} (nothing written, nothing sent).")
    channels = list(preview["sendable"])
    for channel in channels:
        skipped = ", ".join(f"{reason} {count}" for reason, count in preview["skipped"][channel].items()) or "none"
        print(f"  {channel}: {preview['sendable'][channel]} to send to before duplicates; skipped: {skipped}")
    for problem in preview["problems"]:
        print(f"Problem: {problem}")
    if preview["rows"]:
        printer().print_as([_row(row, channels) for row in preview["rows"]], output)
    for message in preview["messages"]:
        print(f"\n{message['channel']} message to {message['recipient']} (row {message['position']}):")
        for name, value in message["content"].items():
            print(f"  {name}: " + str(value).replace("\n", "\n    "))


@edge
def campaigns_audience(args: argparse.Namespace) -> None:
    """``airflow campaigns audience CAMPAIGN [--limit N]``: count, first rows, one message per channel."""
    from campaign_runs.core.audiences import preview_campaign

    if not 0 <= args.limit <= MAX_ROWS:
        raise CliError(f"--limit must be between 0 and {MAX_ROWS}.")
    preview = preview_campaign(args.campaign, limit=args.limit).as_dict()
    if args.output in ("json", "yaml"):
        printer().print_object(preview, args.output)
        return
    _print_text(preview, args.output)


AUDIENCE_COMMAND = ActionCommand(
    name="audience",
    help="Preview a campaign's audience from its source: row count, first rows with what a run would skip, one "
    "message per channel; nothing is written or sent",
    func=campaigns_audience,
    args=(ARG_CAMPAIGN, ARG_ROWS, ARG_OUTPUT, ARG_VERBOSE),
)
