"""Plugins-folder entry: registers Campaign Runs when the package is not installed with its entry point."""

from __future__ import annotations

from importlib.metadata import entry_points

if not any(ep.value.startswith("campaign_runs.") for ep in entry_points(group="airflow.plugins")):
    from campaign_runs.plugin import CampaignRunsPlugin

    __all__ = ["CampaignRunsPlugin"]
