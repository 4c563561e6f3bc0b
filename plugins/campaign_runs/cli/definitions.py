"""``airflow campaigns create|validate|edit|export|history|schema`` and the campaign actions on the command line.

New and Configure write the campaign's YAML into the campaigns folder (``[campaign_runs] definitions_folder``,
by default ``<dags_folder>/campaigns``) as a new version; ``--user`` needs the "Campaign Definitions"
permission where the auth manager can look the user up (``edit`` also edit rights on the campaign's runs, as
Configure on the pages and in the API). ``edit`` reads the current version first and saves
only over that one, so a save by someone else in between is refused (the 409 of the API).
``trigger``, ``pause``, ``resume`` and ``stop-all`` are the campaign actions: a note, the history, an email; their
``--user`` needs the rights the pages and the API ask for (``core.action_rights``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from campaign_runs.adapters.cli import ARG_OUTPUT, ARG_VERBOSE, ARG_YES, ActionCommand, arg
from campaign_runs.cli.support import CliError, confirm, edge, json_object, printer

MISSED = ("all", "latest", "none")

ARG_ID = arg(("campaign",), metavar="CAMPAIGN", help="The campaign's id (its DAG id)")
ARG_FILE = arg(("--file",), metavar="FILE", required=True, help="The campaign's YAML file ('-': standard input)")
ARG_EDIT_FILE = arg(("--file",), metavar="FILE", default=None, help="The whole new YAML ('-': standard input)")
ARG_SET = arg(
    ("--set",),
    metavar="KEY=VALUE",
    dest="assignments",
    action="append",
    default=None,
    help="Change one setting, e.g. --set schedule.cron='0 8 * * MON' (repeatable; the value is read as YAML)",
)
ARG_NOTE = arg(
    ("--note",),
    metavar="TEXT",
    default=None,
    help="Why; kept in the campaign's history (the actions require one unless the note_required setting is off)",
)
ARG_USER = arg(
    ("--user",),
    metavar="USERNAME",
    required=True,
    help="The acting user: checked against the auth manager's users and their rights where it can list them "
    "(FAB, SimpleAuthManager), otherwise recorded as given; emails go to that user's address",
)
ARG_CONF = arg(("--conf",), metavar="JSON", type=json_object, default=None, help="Params overrides as a JSON object")
ARG_MISSED = arg(
    ("--missed",),
    choices=MISSED,
    default="none",
    help="Slots missed while paused: run all of them (Airflow backfill), only the latest, or none (default)",
)


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read {path}: {error}") from None


def _saved_row(saved: Any) -> dict[str, Any]:
    fields = ("dag_id", "written", "version", "sha", "message", "diff")
    return {**{k: getattr(saved, k) for k in fields}, "yaml": saved.text}


def _print_saved(saved: Any, output: str) -> None:
    if output in ("json", "yaml"):
        printer().print_object(_saved_row(saved), output)
        return
    if saved.written:
        print(f"{saved.dag_id}: version {saved.version} saved (sha {saved.sha[:12]}). {saved.message}")
        return
    print(f"{saved.dag_id}: nothing written. {saved.message}", file=sys.stderr)
    sys.stdout.write(saved.text)


@edge
def campaigns_create(args: argparse.Namespace) -> None:
    """``airflow campaigns create --file F --user USERNAME``."""
    from campaign_runs.core.definition_rights import require_manager
    from campaign_runs.core.definition_text import validate_text
    from campaign_runs.core.definitions import create_definition

    text = _read(args.file)
    require_manager(args.user, "POST")
    dag_id, _ = validate_text(text)
    confirm(args, f"Create campaign {dag_id}?")
    _print_saved(create_definition(text, actor=args.user, note=args.note), args.output)


@edge
def campaigns_validate(args: argparse.Namespace) -> None:
    """``airflow campaigns validate --file F``: exit 0 when the dag-processor will load it and its audience reads."""
    from campaign_runs.core.definition_text import validate_definition

    dag_id, _ = validate_definition(_read(args.file))
    if args.output in ("json", "yaml"):
        printer().print_object({"dag_id": dag_id, "valid": True}, args.output)
    else:
        print(f"{args.file}: campaign {dag_id} is valid.")


@edge
def campaigns_edit(args: argparse.Namespace) -> None:
    """``airflow campaigns edit CAMPAIGN (--set KEY=VALUE ... | --file F) --user USERNAME``."""
    from campaign_runs.core.action_rights import require_rights
    from campaign_runs.core.definition_rights import require_manager
    from campaign_runs.core.definitions import apply_settings, definition_of, diff_of, update_definition

    if (args.file is None) == (args.assignments is None):
        raise CliError("give either --set KEY=VALUE (repeatable) or --file FILE.")
    require_manager(args.user, "PUT")
    require_rights(args.user, args.campaign, "configure")
    state = definition_of(args.campaign)  # the version this edit starts from
    if not state.editable or state.text is None or state.sha is None:
        raise CliError(f"{args.campaign} cannot be configured here: {state.reason}")
    text = _read(args.file) if args.file is not None else apply_settings(state.text, args.assignments)
    if text == state.text:
        raise CliError("nothing to change: the new YAML is the current one.")
    if not args.yes and args.output not in ("json", "yaml"):
        print(diff_of(state.text, text, f"{args.campaign}.yaml"), end="")
    confirm(args, f"Save a new version of campaign {args.campaign} (now version {state.version})?")
    saved = update_definition(args.campaign, text, base_sha=state.sha, actor=args.user, note=args.note)
    _print_saved(saved, args.output)


@edge
def campaigns_export(args: argparse.Namespace) -> None:
    """``airflow campaigns export CAMPAIGN``: the campaign's YAML (-o json/yaml: with sha, version, editable)."""
    from campaign_runs.core.definitions import definition_of

    state = definition_of(args.campaign)
    if args.output in ("json", "yaml"):
        fields = ("dag_id", "sha", "version", "editable", "reason", "folder_writable")
        printer().print_object({**{k: getattr(state, k) for k in fields}, "yaml": state.text}, args.output)
        return
    if state.text is None:
        raise CliError(state.reason)
    sys.stdout.write(state.text)


@edge
def campaigns_history(args: argparse.Namespace) -> None:
    """``airflow campaigns history CAMPAIGN``: versions and campaign actions, newest first."""
    from campaign_runs.core.definitions import history

    rows = []
    for entry in history(args.campaign):
        details = json.loads(entry.details) if entry.details else None
        fields = ("id", "created_at", "kind", "version", "actor", "note")
        rows.append(
            {**{k: getattr(entry, k) for k in fields}, "sha": entry.sha, "details": details, "diff": entry.diff}
        )
    if args.output in ("table", "plain"):
        rows = [{k: v for k, v in row.items() if k not in ("diff", "sha")} for row in rows]
    printer().print_as(rows, args.output)


@edge
def campaigns_schema(args: argparse.Namespace) -> None:
    """``airflow campaigns schema``: the JSON Schema of a campaign definition."""
    from campaign_runs.core.definition_schema import definition_schema

    if args.output == "yaml":
        printer().print_object(definition_schema(), "yaml")
    else:
        print(json.dumps(definition_schema(), indent=2))


def _campaign_action(args: argparse.Namespace, action: str, question: str, **options: Any) -> None:
    from campaign_runs import core
    from campaign_runs.core.action_rights import require_rights
    from campaign_runs.core.campaign_actions import perform_campaign_action
    from campaign_runs.core.users import email_of, no_email_notice

    core.get_campaign(args.campaign)  # an unknown campaign is an error before the question
    require_rights(args.user, args.campaign, action)  # the pages' and the API's rule, before anything changes
    confirm(args, question.format(campaign=args.campaign))
    result = perform_campaign_action(action, args.campaign, actor=args.user, note=args.note, **options)
    core.wait_for_deliveries(timeout=60)  # the process is about to exit; the housekeeper retries anything unsent
    notice = no_email_notice(email_of(args.user))
    if args.output in ("json", "yaml"):
        fields = ("event_id", "action", "dag_id", "actor", "message", "run_ids", "outcomes", "backfill_id")
        printer().print_object({k: getattr(result, k) for k in fields}, args.output)
    else:
        print(result.message)
        for run_id, outcome in result.outcomes.items() if action == "stop_all" else ():
            print(f"  {run_id}: {outcome}")
    if notice:
        print(notice, file=sys.stderr)


@edge
def campaigns_trigger(args: argparse.Namespace) -> None:
    """``airflow campaigns trigger CAMPAIGN [--conf JSON]``: Run now."""
    _campaign_action(args, "run_now", "Start a run of campaign {campaign} now?", conf=args.conf)


@edge
def campaigns_pause(args: argparse.Namespace) -> None:
    """``airflow campaigns pause CAMPAIGN``."""
    _campaign_action(args, "pause", "Pause campaign {campaign}?")


@edge
def campaigns_resume(args: argparse.Namespace) -> None:
    """``airflow campaigns resume CAMPAIGN --missed all|latest|none``."""
    question = f"Resume campaign {{campaign}} (missed runs: {args.missed})?"
    _campaign_action(args, "resume", question, missed=args.missed)


@edge
def campaigns_stop_all(args: argparse.Namespace) -> None:
    """``airflow campaigns stop-all CAMPAIGN``: stop every queued or running run."""
    _campaign_action(args, "stop_all", "Stop every active run of campaign {campaign}?")


_WRITE = (ARG_NOTE, ARG_USER, ARG_YES, ARG_OUTPUT, ARG_VERBOSE)
_ACTION = (ARG_ID, ARG_NOTE, ARG_USER, ARG_YES, ARG_OUTPUT, ARG_VERBOSE)

DEFINITION_COMMANDS = (
    ActionCommand(
        name="create",
        help="Create a campaign from a YAML file (written to the campaigns folder; Airflow loads it)",
        func=campaigns_create,
        args=(ARG_FILE, *_WRITE),
    ),
    ActionCommand(
        name="validate",
        help="Check a campaign YAML file as the dag-processor will load it, and that a SQL or file audience can be "
        "read with the columns its templates and mappings name; errors name the field",
        func=campaigns_validate,
        args=(ARG_FILE, ARG_OUTPUT, ARG_VERBOSE),
    ),
    ActionCommand(
        name="edit",
        help="Configure a campaign: --set KEY=VALUE changes or a whole new --file; saved as a new version",
        func=campaigns_edit,
        args=(ARG_ID, ARG_SET, ARG_EDIT_FILE, *_WRITE),
    ),
    ActionCommand(
        name="export",
        help="Print a campaign's YAML definition",
        func=campaigns_export,
        args=(ARG_ID, ARG_OUTPUT, ARG_VERBOSE),
    ),
    ActionCommand(
        name="history",
        help="Show a campaign's versions (who, when, note) and campaign actions, newest first",
        func=campaigns_history,
        args=(ARG_ID, ARG_OUTPUT, ARG_VERBOSE),
    ),
    ActionCommand(
        name="trigger",
        help="Run now: start a run of a campaign, optionally with params overrides (email)",
        func=campaigns_trigger,
        args=(ARG_ID, ARG_CONF, *_ACTION[1:]),
    ),
    ActionCommand(
        name="pause", help="Pause a campaign: no new scheduled run (email)", func=campaigns_pause, args=_ACTION
    ),
    ActionCommand(
        name="resume",
        help="Resume a paused campaign; --missed says which missed slots run (email)",
        func=campaigns_resume,
        args=(ARG_ID, ARG_MISSED, *_ACTION[1:]),
    ),
    ActionCommand(
        name="stop-all",
        help="Stop every queued or running run of a campaign, with one note (one email)",
        func=campaigns_stop_all,
        args=_ACTION,
    ),
    ActionCommand(
        name="schema",
        help="Print the JSON Schema of a campaign definition (-o yaml: as YAML)",
        func=campaigns_schema,
        args=(ARG_OUTPUT, ARG_VERBOSE),
    ),
)
