"""``airflow campaigns users ...``: where a user's emails go, and the address they get them at."""

from __future__ import annotations

import argparse

from campaign_runs.adapters.cli import ARG_OUTPUT, ARG_VERBOSE, ActionCommand, GroupCommand, arg
from campaign_runs.cli.support import edge, printer

ARG_USERNAME = arg(("username",), metavar="USER", help="The user's name, as the auth manager knows it")
ARG_ADDRESS = arg(("address",), metavar="ADDRESS", help="The email address; an empty string clears it")


def _row(found: object) -> dict[str, object]:
    return {
        "username": getattr(found, "username", None),
        "email": getattr(found, "address", None),
        "source": getattr(found, "source", None),
        "reason": getattr(found, "reason", None),
    }


@edge
def users_set_email(args: argparse.Namespace) -> None:
    """``airflow campaigns users set-email USER ADDRESS``."""
    from campaign_runs.core.users import no_email_notice, set_email

    found = set_email(args.username, args.address)
    if args.output in ("json", "yaml"):
        printer().print_object(_row(found), args.output)
        return
    if not args.address.strip():
        print(f"The address {args.username} set in Campaign Runs is cleared.")
    else:
        print(f"{args.username} set {args.address.strip()} as their address in Campaign Runs.")
    print(no_email_notice(found) or f"Emails to {args.username} go to {found.address} (from {found.source}).")


@edge
def users_email(args: argparse.Namespace) -> None:
    """``airflow campaigns users email USER``: where the user's emails go, and from which link of the chain."""
    from campaign_runs.core.users import email_of

    printer().print_object(_row(email_of(args.username)), args.output)


USERS_COMMAND = GroupCommand(
    name="users",
    help="Users' email addresses: where emails go (auth manager, set in Campaign Runs, user_email_template)",
    subcommands=(
        ActionCommand(
            name="set-email",
            help="Set the address a user gets emails at when the auth manager gives none (empty: clear it)",
            func=users_set_email,
            args=(ARG_USERNAME, ARG_ADDRESS, ARG_OUTPUT, ARG_VERBOSE),
        ),
        ActionCommand(
            name="email",
            help="Show where a user's emails go and from which link of the chain",
            func=users_email,
            args=(ARG_USERNAME, ARG_OUTPUT, ARG_VERBOSE),
        ),
    ),
)
