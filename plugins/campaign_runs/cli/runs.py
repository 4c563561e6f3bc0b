"""``airflow campaigns list|show|runs|run|stop|restart|skip|worklist|reassign``: campaigns, runs and the work list."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from campaign_runs.adapters.cli import ARG_OUTPUT, ARG_VERBOSE, ARG_YES, ActionCommand, arg
from campaign_runs.cli.support import CliError, confirm, edge, json_object, printer, run_table_row
from campaign_runs.presenters import (
    action_row,
    campaign_detail,
    campaign_row,
    run_details_row,
    run_row,
    upcoming_row,
    worklist_row,
)

RUN_STATUSES = ("scheduled", "queued", "running", "stopping", "stopped", "failed", "completed", "skipped")

# ---------------------------------------------------------------- arguments

ARG_CAMPAIGN = arg(("campaign",), metavar="CAMPAIGN", help="The campaign's id (its DAG id)")
ARG_RUN_ID = arg(("run_id",), metavar="RUN_ID", help="The run's id (the DAG run id, the 'work id' of emails)")
ARG_UPCOMING = arg(
    ("--upcoming",),
    metavar="N",
    type=int,
    default=None,
    help="How many upcoming (scheduled) runs to show; default [campaign_runs] upcoming_runs, 0 for none",
)
ARG_STATE = arg(
    ("--state",),
    metavar="STATUS",
    action="append",
    choices=RUN_STATUSES,
    help="Show only runs with this status (repeatable): " + ", ".join(RUN_STATUSES),
)
ARG_INCLUDE_SKIPPED = arg(
    ("--include-skipped",), action="store_true", help="Also show skipped runs (hidden by default)"
)
ARG_LIMIT = arg(
    ("--limit",),
    metavar="N",
    type=int,
    default=None,
    help="How many past runs to show; default [campaign_runs] page_size",
)
ARG_PAGE = arg(("--page",), metavar="N", type=int, default=1, help="Page of past runs to show (1 is the newest)")
ARG_NOTE_REQUIRED = arg(
    ("--note",),
    metavar="TEXT",
    required=True,
    help="Why you take this action; kept in the run's history and in the email",
)
ARG_NOTE_OPTIONAL = arg(("--note",), metavar="TEXT", default=None, help="Why you reassign the run (optional)")
ARG_ACTING_USER = arg(
    ("--user",),
    metavar="USERNAME",
    required=True,
    help="The acting user: checked against the auth manager's users and their rights where it can list them "
    "(FAB, SimpleAuthManager), otherwise recorded as given; emails go to that user's address",
)
ARG_UNPAUSE = arg(
    ("--unpause",),
    action="store_true",
    help="Unpause the campaign if it is paused, so that the new run starts",
)
ARG_RESEND_IN_DOUBT = arg(
    ("--resend-in-doubt",),
    action="store_true",
    help="Send once more to the recipients in doubt (claimed by the run, never confirmed); off by default, "
    "since someone in doubt may have received the message",
)
ARG_PARAMS = arg(
    ("--params",),
    metavar="JSON",
    type=json_object,
    default=None,
    help="Params overrides for the new run, as a JSON object validated against the campaign's params "
    "(otherwise the new run uses the campaign's current configuration)",
)
ARG_WORKLIST_USER = arg(("--user",), metavar="USERNAME", default=None, help="Show this user's work list")
ARG_WORKLIST_ALL = arg(("--all",), action="store_true", help="Show everyone's work list (the default)")
ARG_INCLUDE_RESOLVED = arg(("--include-resolved",), action="store_true", help="Also show resolved entries")
ARG_TO = arg(("--to",), metavar="USERNAME", required=True, help="The user who gets the run's work-list entry")


# ---------------------------------------------------------------- handlers


@edge
def campaigns_list(args: argparse.Namespace) -> None:
    """``airflow campaigns list``."""
    from campaign_runs import core

    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        summaries, total = core.list_campaigns(limit=500, offset=offset)
        rows.extend(campaign_row(s, s.timezone or "UTC") for s in summaries)  # as get_campaign says it
        offset += len(summaries)
        if not summaries or offset >= total:
            break
    console = printer()
    if args.output in ("table", "plain"):
        columns = (
            "id",
            "schedule",
            "schedule_description",
            "timezone",
            "paused",
            "next_run_after",
            "last_status",
            "active_runs",
            "open_worklist",
        )
        console.print_as([{k: r[k] for k in columns} for r in rows], args.output)
    else:
        console.print_as(rows, args.output)


@edge
def campaigns_show(args: argparse.Namespace) -> None:
    """``airflow campaigns show CAMPAIGN``."""
    from campaign_runs import core

    printer().print_object(campaign_detail(core.get_campaign(args.campaign)), args.output)


@edge
def campaigns_runs(args: argparse.Namespace) -> None:
    """``airflow campaigns runs CAMPAIGN``: upcoming slots, then past runs newest first."""
    from campaign_runs import core

    for name in ("upcoming", "limit", "page"):
        value = getattr(args, name)
        if value is not None and (value < 0 or (name != "upcoming" and value < 1)):
            raise CliError(f"--{name} must be {'0 or more' if name == 'upcoming' else '1 or more'}.")
    schedule = core.run_schedule(
        args.campaign,
        page=args.page,
        page_size=args.limit,
        upcoming=args.upcoming,
        include_skipped=args.include_skipped,
        statuses=args.state or [],
    )
    # Upcoming slots: the soonest last, right above the newest past run.
    rows = [upcoming_row(slot) for slot in reversed(schedule.upcoming)]
    rows.extend(run_row(run) for run in schedule.runs)
    console = printer()
    if args.output in ("table", "plain"):
        console.print_as([run_table_row(r) for r in rows], args.output)
        if schedule.total > len(schedule.runs):
            print(
                f"Page {schedule.page} of {schedule.pages}: {len(schedule.runs)} of {schedule.total} past runs "
                "(use --page / --limit).",
                file=sys.stderr,
            )
    else:
        console.print_as(rows, args.output)


@edge
def campaigns_run(args: argparse.Namespace) -> None:
    """``airflow campaigns run CAMPAIGN RUN_ID``: status, audience, progress per channel, tasks, history."""
    from campaign_runs import core
    from campaign_runs.domain import skipped_text

    details = run_details_row(core.run_details(args.campaign, args.run_id))
    console = printer()
    if args.output in ("json", "yaml"):
        console.print_object(details, args.output)
        return
    summary = {k: v for k, v in details.items() if k not in ("audience", "progress", "tasks", "history", "emails")}
    summary["tasks_progress"] = (
        f"{details['tasks_done']}/{details['tasks_total']} tasks ({details['progress_percent']}%)"
    )
    summary["slot"] = details["slot"]["at"]  # the slot it serves: a restart's is its first run's
    summary["audience"] = details["audience"]["summary"]
    if details["audience"]["log_path"]:
        summary["audience_log"] = details["audience"]["log_path"]
    for row in details["progress"]:
        row["skipped"] = skipped_text(row["skipped"]) if row["total"] is not None else None
    console.print_object(summary, args.output)
    for title, key in (
        ("Progress per channel", "progress"),
        ("Tasks", "tasks"),
        ("History", "history"),
        ("Emails", "emails"),
    ):
        console.print(f"\n{title}")
        console.print_as(details[key], args.output)


def _act(args: argparse.Namespace, action: str) -> None:
    from campaign_runs import core
    from campaign_runs.core.action_rights import require_rights
    from campaign_runs.core.outcomes import what_next
    from campaign_runs.core.users import email_of, no_email_notice

    run = core.get_run(args.campaign, args.run_id)
    require_rights(args.user, args.campaign, action)  # the pages' and the API's rule, before anything changes
    confirm(args, f"{action.capitalize()} run {args.run_id} of campaign {args.campaign} (now {run.status})?")
    result = core.perform(
        action,
        args.campaign,
        args.run_id,
        actor=args.user,
        note=args.note,
        unpause=bool(getattr(args, "unpause", False)),
        resend_in_doubt=bool(getattr(args, "resend_in_doubt", False)),
        params=getattr(args, "params", None),
    )
    core.wait_for_deliveries(timeout=60)  # the process is about to exit; the housekeeper retries anything unsent
    notice = no_email_notice(email_of(args.user))
    if args.output in ("json", "yaml"):
        printer().print_object(action_row(result), args.output)
        if notice:
            print(notice, file=sys.stderr)
        return
    said = what_next(action, result.run_id, result.new_run_id, emailed=notice is None)  # the pages' sentence
    print(f"{said} Campaign {result.dag_id}: {result.status_before} -> {result.status_after}.")
    if notice:
        print(notice)


@edge
def campaigns_stop(args: argparse.Namespace) -> None:
    """``airflow campaigns stop CAMPAIGN RUN_ID --note TEXT --user USERNAME``."""
    _act(args, "stop")


@edge
def campaigns_restart(args: argparse.Namespace) -> None:
    """``airflow campaigns restart CAMPAIGN RUN_ID --note TEXT --user USERNAME [--unpause] [--params JSON]``."""
    _act(args, "restart")


@edge
def campaigns_skip(args: argparse.Namespace) -> None:
    """``airflow campaigns skip CAMPAIGN RUN_ID --note TEXT --user USERNAME``."""
    _act(args, "skip")


@edge
def campaigns_worklist(args: argparse.Namespace) -> None:
    """``airflow campaigns worklist [--user USERNAME | --all]``."""
    from campaign_runs import core

    if args.user and args.all:
        raise CliError("give either --user USERNAME or --all, not both.")
    if args.user:
        core.require_user(args.user)
    items = core.worklist(args.user or None, include_resolved=args.include_resolved)
    printer().print_as([worklist_row(i) for i in items], args.output)


@edge
def campaigns_reassign(args: argparse.Namespace) -> None:
    """``airflow campaigns reassign CAMPAIGN RUN_ID --to USERNAME --user USERNAME``."""
    from campaign_runs import core

    item = core.reassign(args.campaign, args.run_id, to_user=args.to, actor=args.user, note=args.note)
    if args.output in ("json", "yaml"):
        printer().print_object(worklist_row(item), args.output)
        return
    print(f"Run {item.run_id} of campaign {item.dag_id} is now on {item.assignee}'s work list.")


# ---------------------------------------------------------------- registration

_READ = (ARG_OUTPUT, ARG_VERBOSE)
_ACT = (ARG_CAMPAIGN, ARG_RUN_ID, ARG_NOTE_REQUIRED, ARG_ACTING_USER, ARG_YES, ARG_OUTPUT, ARG_VERBOSE)
RUN_COMMANDS = (
    ActionCommand(
        name="list",
        help="List campaigns with schedule, next run, last status, active runs and open work-list entries",
        func=campaigns_list,
        args=_READ,
    ),
    ActionCommand(
        name="show",
        help="Show a campaign's About information",
        func=campaigns_show,
        args=(ARG_CAMPAIGN, *_READ),
    ),
    ActionCommand(
        name="runs",
        help="Show a campaign's run schedule: upcoming runs, then past runs, newest first",
        func=campaigns_runs,
        args=(ARG_CAMPAIGN, ARG_UPCOMING, ARG_STATE, ARG_INCLUDE_SKIPPED, ARG_LIMIT, ARG_PAGE, *_READ),
    ),
    ActionCommand(
        name="run",
        help="Show a run: status, progress per channel, tasks and history",
        func=campaigns_run,
        args=(ARG_CAMPAIGN, ARG_RUN_ID, *_READ),
    ),
    ActionCommand(
        name="stop",
        help="Stop a queued or running run (it goes to the acting user's work list; email)",
        func=campaigns_stop,
        args=_ACT,
    ),
    ActionCommand(
        name="restart",
        help="Restart a failed or stopped run: mark it skipped and start a new run for the same slot (email)",
        func=campaigns_restart,
        args=(*_ACT[:4], ARG_UNPAUSE, ARG_RESEND_IN_DOUBT, ARG_PARAMS, *_ACT[4:]),
    ),
    ActionCommand(
        name="skip",
        help="Skip a failed or stopped run: mark it skipped, the schedule goes on (email)",
        func=campaigns_skip,
        args=_ACT,
    ),
    ActionCommand(
        name="worklist",
        help="Show open work-list entries (runs assigned to people)",
        func=campaigns_worklist,
        args=(ARG_WORKLIST_USER, ARG_WORKLIST_ALL, ARG_INCLUDE_RESOLVED, *_READ),
    ),
    ActionCommand(
        name="reassign",
        help="Give a run's open work-list entry to another user",
        func=campaigns_reassign,
        args=(ARG_CAMPAIGN, ARG_RUN_ID, ARG_TO, ARG_ACTING_USER, ARG_NOTE_OPTIONAL, *_READ),
    ),
)
