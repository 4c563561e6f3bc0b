"""URLs of the plugin's pages, for emails and for the React UI's external views."""

from __future__ import annotations

from urllib.parse import quote

# The FAB provider serves plugin views under this prefix inside the API server.
FAB_PREFIX = "/pluginsv2"
ROUTE_BASE = "/campaigns"


def campaign_path(dag_id: str) -> str:
    """Path of the campaign display."""
    return f"{FAB_PREFIX}{ROUTE_BASE}/display/{quote(dag_id, safe='')}"


def run_path(dag_id: str, run_id: str) -> str:
    """Path of a run's details."""
    return f"{campaign_path(dag_id)}/run/{quote(run_id, safe='')}"


def absolute(base_url: str, path: str) -> str:
    """``path`` under the configured base URL."""
    return f"{base_url.rstrip('/')}{path}"
