"""``airflow campaigns check CAMPAIGN`` and ``airflow campaigns test-send CAMPAIGN --to ADDRESS ...``.

Both try the campaign's saved definition and need what Configure needs: ``--user`` with the "Campaign
Definitions" permission and edit rights on the campaign's runs. ``check`` tries each channel's Connection without
sending; ``test-send`` sends ``[TEST]`` messages to the given addresses only (at most 10), once, outside any run:
no ledger, no Monitor count, no suppression list; a dry-run channel sends nothing and shows its message. Each
exits 1 when a Connection or a message failed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from campaign_runs.adapters.cli import ARG_OUTPUT, ARG_VERBOSE, ActionCommand, arg
from campaign_runs.cli.support import CliError, edge, printer

MAX_ADDRESSES = 10  # factory.trial.MAX_ADDRESSES
MAX_ADDRESS_CHARS = 4096  # a push token's longest
FIELDS_BYTES = 16 * 1024

ARG_CAMPAIGN = arg(("campaign",), metavar="CAMPAIGN", help="The campaign's id (its DAG id)")
ARG_USER = arg(
    ("--user",),
    metavar="USERNAME",
    required=True,
    help="The acting user: needs what Configure needs (the Campaign Definitions permission, edit rights on the "
    "campaign's runs) where the auth manager can look users up; recorded in the campaign's history",
)
ARG_TO = arg(
    ("--to",),
    metavar="ADDRESS",
    dest="to",
    action="append",
    required=True,
    help=f"Where a test message goes: an email address, an E.164 phone number or a push token (repeatable, at "
    f"most {MAX_ADDRESSES}); each goes to the campaign's channel it fits unless --channel says which",
)
ARG_CHANNEL = arg(("--channel",), metavar="CHANNEL", default=None, help="Send on this channel only (email, sms...)")


def fields_object(text: str) -> dict[str, Any]:
    """An argparse type: ``--fields``, a JSON object of at most 16 KiB, as the templates' values."""
    from campaign_runs.factory.documents import DocumentError, load_json_object

    try:
        return load_json_object(text, max_bytes=FIELDS_BYTES)
    except DocumentError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


ARG_FIELDS = arg(
    ("--fields",),
    metavar="JSON",
    type=fields_object,
    default=None,
    help="The templates' values as a JSON object, e.g. '{\"first_name\": \"Ann\"}' (default: the audience's first row)",
)


def _require_configure(username: str, dag_id: str) -> None:
    from campaign_runs.core.action_rights import require_rights
    from campaign_runs.core.definition_rights import require_manager

    require_manager(username, "PUT")
    require_rights(username, dag_id, "configure")


@edge
def campaigns_check(args: argparse.Namespace) -> None:
    """``airflow campaigns check CAMPAIGN --user USERNAME``: each channel's Connection tried, nothing sent."""
    from campaign_runs.core.trials import check_connections

    _require_configure(args.user, args.campaign)
    checks = [asdict(check) for check in check_connections(args.campaign)]
    if args.output in ("json", "yaml"):
        printer().print_object({"campaign": args.campaign, "checks": checks}, args.output)
    else:
        printer().print_as(checks, args.output)
    failed = [check["channel"] for check in checks if not check["ok"]]
    if failed:
        raise CliError(f"the Connection of {', '.join(failed)} failed (see the answer above).")


def _checked_to(to: list[str]) -> list[str]:
    if len(to) > MAX_ADDRESSES:
        raise CliError(f"{len(to)} addresses: a test goes to at most {MAX_ADDRESSES}; nothing was sent.")
    for address in to:
        if len(address) > MAX_ADDRESS_CHARS or not address.isprintable():
            raise CliError(f"--to {address[:40]!r}... is not an address (printable, {MAX_ADDRESS_CHARS} at most).")
    return to


def _print_sends(sends: list[dict[str, Any]], output: str) -> None:
    if output in ("json", "yaml"):
        printer().print_as(sends, output)
        return
    printer().print_as([{k: v for k, v in send.items() if k != "content"} for send in sends], output)
    shown: set[str] = set()
    for send in sends:
        if send["channel"] not in shown:  # one message per channel: the others differ only by the address
            shown.add(send["channel"])
            print(f"\n{send['channel']} message:")
            for name, value in send["content"].items():
                print(f"  {name}: " + str(value).replace("\n", "\n    "))


@edge
def campaigns_test_send(args: argparse.Namespace) -> None:
    """``airflow campaigns test-send CAMPAIGN --to ADDRESS [--to ...] [--channel C] [--fields JSON] --user U``."""
    from campaign_runs.core.trials import send_test_messages

    to = _checked_to(args.to)
    _require_configure(args.user, args.campaign)
    sends = send_test_messages(args.campaign, actor=args.user, to=to, channel=args.channel, fields=args.fields)
    rows = [asdict(send) for send in sends]
    _print_sends(rows, args.output)
    failed = [row["to"] for row in rows if not row["sent"] and not row["answer"].startswith("dry run")]
    if failed:
        raise CliError(f"{len(failed)} of {len(rows)} test messages were not sent (see the answers above).")
    if not any(row["sent"] for row in rows):
        print("Nothing was sent: every channel tried is a dry run.", file=sys.stderr)


TRIAL_COMMANDS = (
    ActionCommand(
        name="check",
        help="Check connections: try each channel's Connection of a campaign without sending anything",
        func=campaigns_check,
        args=(ARG_CAMPAIGN, ARG_USER, ARG_OUTPUT, ARG_VERBOSE),
    ),
    ActionCommand(
        name="test-send",
        help="Send test: [TEST] messages of a campaign to the given addresses only, outside any run (no ledger, "
        "no Monitor count, no suppression); a dry-run channel shows its message and sends nothing",
        func=campaigns_test_send,
        args=(ARG_CAMPAIGN, ARG_TO, ARG_CHANNEL, ARG_FIELDS, ARG_USER, ARG_OUTPUT, ARG_VERBOSE),
    ),
)
