"""The Campaign Runs core: every business rule, shared by the pages, the REST API, the CLI and the listeners.

The transaction rule, for every public function here: it takes ``session: Session = NEW_SESSION``.
Called without a session it runs in one transaction of its own, committed on success and rolled back
on error; called with the caller's session it never commits, and the caller decides. A refused request
raises a domain error (``campaign_runs.domain``) before it changes anything, or after a rollback.
Two functions work through many independent items and commit once per item, as their docstrings say:
``finish_stopping_runs`` (one transaction per run) and ``notify.deliver`` (one per email). Emails an
action writes are sent after its transaction commits, by the core itself (``delivery``).

The core reaches Airflow only through ``campaign_runs.adapters``.
"""

from __future__ import annotations

from campaign_runs.core.actions import (
    parse_action,
    perform,
    require_user,
    restart_run,
    skip_run,
    stop_run,
)
from campaign_runs.core.campaigns import get_campaign, list_campaigns
from campaign_runs.core.delivery import deliver_soon, wait_for_deliveries
from campaign_runs.core.details import run_details
from campaign_runs.core.dto import (
    ActionResult,
    CampaignDetail,
    CampaignDisplay,
    CampaignSummary,
    ChannelProgress,
    HistoryEntry,
    RunDetails,
    RunSchedule,
    RunView,
    TaskView,
    UpcomingRun,
    WorklistItem,
)
from campaign_runs.core.housekeeping import housekeeping_pass
from campaign_runs.core.schedule import campaign_display, get_run, run_history, run_schedule, upcoming_runs
from campaign_runs.core.served_slot import RESTART_CONF_RUN, RESTART_CONF_SLOT
from campaign_runs.core.stops import finish_stopping_runs
from campaign_runs.core.worklist import reassign, worklist

__all__ = [
    "RESTART_CONF_RUN",
    "RESTART_CONF_SLOT",
    "ActionResult",
    "CampaignDetail",
    "CampaignDisplay",
    "CampaignSummary",
    "ChannelProgress",
    "HistoryEntry",
    "RunDetails",
    "RunSchedule",
    "RunView",
    "TaskView",
    "UpcomingRun",
    "WorklistItem",
    "campaign_display",
    "deliver_soon",
    "finish_stopping_runs",
    "get_campaign",
    "get_run",
    "housekeeping_pass",
    "list_campaigns",
    "parse_action",
    "perform",
    "reassign",
    "require_user",
    "restart_run",
    "run_details",
    "run_history",
    "run_schedule",
    "skip_run",
    "stop_run",
    "upcoming_runs",
    "wait_for_deliveries",
    "worklist",
]
