"""``airflow campaigns ...``: the operators' command line (thin: parse, call the core, print).

Registered through the provider's ``cli`` key (``provider_info.py``). Only Airflow's CLI declarations
(``adapters.cli``) are imported at module level so that ``airflow --help`` stays fast; handlers import
the core lazily.

Output: listing and detail commands take ``-o/--output table|json|yaml|plain``. JSON and YAML keep
types (numbers, booleans, null) and write times as ISO 8601 in UTC. Listing commands print an
array of objects; ``show`` and ``run`` print one object. Field names are stable:

* campaigns (``list``, ``show``): ``id``, ``description``, ``owners``, ``channels``, ``audience``,
  ``audience_label``, ``dry_run``, ``dry_run_channels``, ``schedule``, ``schedule_description``, ``timezone``,
  ``paused``, ``next_run_after``, ``last_run_id``, ``last_status``, ``active_runs``, ``open_worklist``
  (+ ``owner_emails``, ``tags``, ``params``, ``doc_md`` in ``show``);
* runs (``runs``, ``run``): ``run_id`` (null for an upcoming slot), ``status``, ``run_type``,
  ``logical_date``, ``run_after``, ``data_interval_start``, ``data_interval_end``, ``start_date``,
  ``end_date``, ``duration_seconds``, ``tasks_done``, ``tasks_total``, ``progress_percent``, ``note``,
  ``restart_of``, ``replaced_by``, ``allowed_actions``, ``slot`` (``at``, ``data_interval_start``,
  ``data_interval_end``: the slot it serves; a restart's is its first run's) (+ ``dry_run_channels``,
  ``audience``, ``progress`` with ``suppressed``, ``skipped`` by reason, ``delivery`` and ``dry_run``,
  ``tasks``, ``history`` in ``run``);
* actions (``stop``, ``restart``, ``skip``): ``action_id``, ``action``, ``dag_id``, ``run_id``, ``actor``,
  ``status_before``, ``status_after``, ``new_run_id``, ``replayed``;
* work list (``worklist``, ``reassign``): ``id``, ``dag_id``, ``run_id``, ``assignee``, ``reason``,
  ``note``, ``created_at``, ``resolved_at``, ``resolution``.

Exit codes: 0 on success; 1 with one line on standard error for an unknown campaign, run or user, an
action the run's status does not allow, a refused note, a conflict, a refused confirmation or a
database that is not migrated; 2 for a usage error (argparse).
"""

from __future__ import annotations

from campaign_runs.adapters.cli import GroupCommand
from campaign_runs.cli.audience import AUDIENCE_COMMAND
from campaign_runs.cli.definitions import DEFINITION_COMMANDS
from campaign_runs.cli.emails import EMAILS_COMMAND
from campaign_runs.cli.maintenance import DB_CLEAN_COMMAND, HOUSEKEEPING_COMMAND
from campaign_runs.cli.monitor import MONITOR_COMMAND
from campaign_runs.cli.runs import RUN_COMMANDS
from campaign_runs.cli.suppressions import SUPPRESSIONS_COMMAND
from campaign_runs.cli.trials import TRIAL_COMMANDS
from campaign_runs.cli.users import USERS_COMMAND

CAMPAIGNS_COMMANDS = (
    *RUN_COMMANDS,
    HOUSEKEEPING_COMMAND,
    EMAILS_COMMAND,
    MONITOR_COMMAND,
    USERS_COMMAND,
    SUPPRESSIONS_COMMAND,
    DB_CLEAN_COMMAND,
    *DEFINITION_COMMANDS,
    AUDIENCE_COMMAND,
    *TRIAL_COMMANDS,
)


def get_cli_commands() -> list[GroupCommand]:
    """The ``airflow campaigns`` command group (the provider's ``cli`` entry)."""
    return [
        GroupCommand(
            name="campaigns",
            help="Marketing campaigns: run schedules, Stop / Restart / Skip, work list",
            subcommands=CAMPAIGNS_COMMANDS,
        )
    ]
