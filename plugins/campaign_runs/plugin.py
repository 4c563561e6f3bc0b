"""The Airflow plugin: declarations only."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from campaign_runs import listeners, views
from campaign_runs.api import app as api_app
from campaign_runs.view_links import BASE as VIEWS_BASE


class CampaignRunsPlugin(AirflowPlugin):
    """Campaign Runs: campaign display, Stop / Restart / Skip, work list."""

    name = "campaign_runs"
    listeners = [listeners]
    fastapi_apps = [{"app": api_app, "url_prefix": "/campaign-runs", "name": "Campaign Runs API"}]
    appbuilder_views = [{"view": views.CampaignsView()}]
    external_views = [
        {
            "name": "Campaigns",
            "href": f"{VIEWS_BASE}/list",
            "destination": "nav",
            "url_route": "campaigns",
            "nav_top_level": True,
        },
        {
            "name": "Campaign",
            "href": f"{VIEWS_BASE}/display/{{DAG_ID}}",
            "destination": "dag",
            "url_route": "campaign",
        },
        {
            "name": "Campaign run",
            "href": f"{VIEWS_BASE}/display/{{DAG_ID}}/run/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "campaign-run",
        },
    ]
