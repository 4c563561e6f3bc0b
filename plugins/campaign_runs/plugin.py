"""The Airflow plugin: declarations only.

Every process that loads plugins imports this module (task processes too, for ``listeners``), so the FAB
views and the FastAPI app are imported on first read of ``appbuilder_views`` / ``fastapi_apps``: only the
API server reads them.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from campaign_runs import listeners
from campaign_runs.lazy import Computed, Lazy
from campaign_runs.urls import FAB_BASE, UI_BASE


def _fastapi_apps() -> list[dict[str, Any]]:
    """The JSON API, mounted under ``/campaign-runs``."""
    from campaign_runs.api.app import app

    return [{"app": app, "url_prefix": "/campaign-runs", "name": "Campaign Runs API"}]


def _appbuilder_views() -> list[dict[str, Any]]:
    """The campaign pages, served by the FAB provider under ``/pluginsv2/campaigns``."""
    from campaign_runs.pages.fab.campaigns import CampaignsView
    from campaign_runs.pages.fab.definitions import CampaignDefinitionsView
    from campaign_runs.pages.fab.emails import CampaignEmailsView
    from campaign_runs.pages.fab.monitor import CampaignMonitorView
    from campaign_runs.pages.fab.suppressions import CampaignSuppressionsView
    from campaign_runs.pages.fab.users import CampaignUsersView

    views = [CampaignsView(), CampaignEmailsView(), CampaignUsersView(), CampaignMonitorView()]
    views += [CampaignDefinitionsView(), CampaignSuppressionsView()]
    return [{"view": view} for view in views]


def _timetables() -> list[type[Any]]:
    """The campaign timetable, registered so the scheduler can read the DAGs that use it."""
    from campaign_runs.factory.timetable import CampaignTimetable

    return [CampaignTimetable]


def _external_views() -> list[dict[str, Any]]:
    """Airflow UI entries: FAB's ``/pluginsv2`` pages under FAB, the plugin's own ``/campaign-runs/ui`` otherwise."""
    from campaign_runs.adapters.auth import uses_fab

    base = FAB_BASE if uses_fab() else UI_BASE
    return [
        {
            "name": "Campaigns",
            "href": f"{base}/list",
            "destination": "nav",
            "url_route": "campaigns",
            "nav_top_level": True,
        },
        {"name": "Campaign", "href": f"{base}/display/{{DAG_ID}}", "destination": "dag", "url_route": "campaign"},
        {
            "name": "Campaign run",
            "href": f"{base}/display/{{DAG_ID}}/run/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "campaign-run",
        },
    ]


class CampaignRunsPlugin(AirflowPlugin):
    """Campaign Runs: campaign display, Stop / Restart / Skip, work list."""

    name = "campaign_runs"
    listeners = [listeners]
    fastapi_apps = Lazy(_fastapi_apps)
    appbuilder_views = Lazy(_appbuilder_views)
    external_views = Computed(_external_views)
    timetables = Lazy(_timetables)
