"""Provider metadata: registers the CLI, the DB manager and the ``[campaign_runs]`` options."""

from __future__ import annotations

from typing import Any

from campaign_runs import __version__
from campaign_runs.settings import OPTIONS, SECTION, SENSITIVE


def get_provider_info() -> dict[str, Any]:
    """What ``ProvidersManager`` reads from this package."""
    return {
        "package-name": "campaign-runs",
        "name": "Campaign Runs",
        "description": "Marketing campaigns on Apache Airflow: Stop / Restart / Skip runs, work list, emails.",
        "versions": [__version__],
        "db-managers": ["campaign_runs.db_manager.CampaignRunsDBManager"],
        "cli": ["campaign_runs.cli.commands.get_cli_commands"],
        "config": {
            SECTION: {
                "description": "Campaign Runs plugin.",
                "options": {
                    name: {
                        "description": description,
                        "version_added": "0.1.0",
                        "type": _type_of(default),
                        "example": None,
                        "default": default,
                        "sensitive": name in SENSITIVE,
                    }
                    for name, (default, description) in OPTIONS.items()
                },
            }
        },
    }


def _type_of(default: str) -> str:
    if default in ("True", "False"):
        return "boolean"
    if default.isdigit():
        return "integer"
    try:
        float(default)
    except ValueError:
        return "string"
    return "float"
