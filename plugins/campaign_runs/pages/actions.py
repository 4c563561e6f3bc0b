"""The campaign actions of the display (Run now, Pause, Resume, Stop all), for both page hosts.

The host passes the posted fields and its user; the answer is a ``Redirect`` with the messages to show, or the
error page when the core refuses. A refused user (403) or an unknown action (404) is raised as the domain error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from campaign_runs.core.campaign_actions import CAMPAIGN_ACTIONS, MISSED_CHOICES, perform_campaign_action
from campaign_runs.core.users import email_of, no_email_notice
from campaign_runs.domain import CampaignRunsError, NotFoundError
from campaign_runs.http_errors import http_status
from campaign_runs.pages import definition_form, forms, rights
from campaign_runs.pages.builders import PageView, Redirect

if TYPE_CHECKING:
    from campaign_runs.urls import PageLinks

AIRFLOW_SWITCH = (  # Airflow's React UI keeps the DAG it read (react-query: 5 min stale, no refetch on focus)
    "Airflow's own pause switch at the top of this DAG's page shows the change after you reload the page: "
    "Airflow's page keeps the campaign as it read it when it opened."
)


def campaign_action(
    visitor: rights.Visitor, links: PageLinks, dag_id: str, action: str, posted: Mapping[str, str]
) -> PageView | Redirect:
    """Run now (with params overrides), Pause, Resume (missed: all, latest, none) or Stop all, with a note."""
    if action not in CAMPAIGN_ACTIONS:
        raise NotFoundError(f"Unknown campaign action {action!r}.")
    label = definition_form.ACTION_LABELS[action]
    rights.require_action(visitor, action, dag_id, f"use {label} on")  # asked before any core call
    try:
        conf = definition_form.parse_params(posted.get("conf", "")) if action == "run_now" else None
        missed = forms.choice(posted, "missed", MISSED_CHOICES, "none", kind="field")
        result = perform_campaign_action(
            action,
            dag_id,
            actor=visitor.username,
            note=posted.get("note", ""),
            conf=conf,
            missed=missed if action == "resume" else None,
        )
    except CampaignRunsError as error:
        return PageView("error.html", {"title": f"Campaign {dag_id}"}, http_status(error), (("danger", str(error)),))
    flashes = [("success", result.message)]
    if action in ("pause", "resume"):
        flashes.append(("info", AIRFLOW_SWITCH))
    if (notice := no_email_notice(email_of(visitor.username))) is not None:
        flashes.append(("warning", notice))
    if action == "run_now" and result.run_ids:
        return Redirect(links.run_path(dag_id, result.run_ids[0]), tuple(flashes))
    return Redirect(links.campaign_path(dag_id), tuple(flashes))
