"""The Airflow plugin: declarations only."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from campaign_runs import listeners


class CampaignRunsPlugin(AirflowPlugin):
    """Campaign Runs: campaign display, Stop / Restart / Skip, work list."""

    name = "campaign_runs"
    listeners = [listeners]
