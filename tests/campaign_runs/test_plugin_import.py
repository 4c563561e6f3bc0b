"""Loading plugins in a task process registers our listener without importing the UI (FAB views, FastAPI app)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.airflow_env import REPO

# Modules a task process must not import because our plugin is installed: the UI only the API server needs, and
# the core, which the listeners import only when the scheduler starts them (the contracts cannot tell a deferred
# import from a module-level one; this can).
UI_MODULES = ("flask_appbuilder", "flask", "fastapi", "campaign_runs.pages", "campaign_runs.api", "campaign_runs.core")

# What the Task SDK does in every task process: build the listener manager, which loads every plugin.
TASK_PROBE = r"""
import importlib.metadata, importlib_metadata, json, sys
if {hide_distribution}:
    for md in (importlib.metadata, importlib_metadata):
        def hide(real):
            def distributions(*args, **kw):
                return (d for d in real(*args, **kw) if d.metadata["Name"].replace("_", "-").lower() != "campaign-runs")
            return distributions
        md.distributions = hide(md.distributions)
import airflow.sdk
from airflow.sdk.listener import get_listener_manager
manager = get_listener_manager()
print(json.dumps({{
    "hooks": {{
        name: sorted(impl.plugin_name for impl in getattr(manager.hook, name).get_hookimpls())
        for name in ("on_starting", "before_stopping")
    }},
    "imported": [name for name in {modules!r} if name in sys.modules],
}}))
"""

# What ``airflow plugins`` prints comes from ``get_plugin_info``, which reads every lazy attribute.
INFO_PROBE = r"""
import json
from airflow import plugins_manager
info = [p for p in plugins_manager.get_plugin_info() if p["name"] == "campaign_runs"]
print(json.dumps({"info": info, "errors": plugins_manager.get_import_errors()}, default=str))
"""


def run_probe(code: str, env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    """Run ``code`` in a fresh interpreter and return the JSON of its last line."""
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False, timeout=180
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("hide_distribution", [False, True], ids=["entry-point", "plugins-folder"])
def test_task_process_registers_the_listener_without_importing_the_ui(hide_distribution: bool) -> None:
    env = dict(os.environ)
    if hide_distribution:
        # Only the plugins folder's shim can provide the plugin, as in a deployment without the package.
        env["PYTHONPATH"] = str(REPO / "plugins")
    result = run_probe(TASK_PROBE.format(hide_distribution=hide_distribution, modules=UI_MODULES), env)
    assert result["hooks"] == {
        "on_starting": ["campaign_runs.listeners"],
        "before_stopping": ["campaign_runs.listeners"],
    }
    # Airflow itself imports none of these in this path (see benchmarks/plugin_import.py: the no-plugin control).
    assert result["imported"] == [], result["imported"]


def test_lazy_attributes_return_the_real_view_and_app() -> None:
    from campaign_runs.api.app import app
    from campaign_runs.pages.fab.campaigns import CampaignsView
    from campaign_runs.pages.fab.definitions import CampaignDefinitionsView
    from campaign_runs.pages.fab.emails import CampaignEmailsView
    from campaign_runs.pages.fab.monitor import CampaignMonitorView
    from campaign_runs.pages.fab.suppressions import CampaignSuppressionsView
    from campaign_runs.pages.fab.users import CampaignUsersView
    from campaign_runs.plugin import CampaignRunsPlugin
    from fastapi import FastAPI

    plugin = CampaignRunsPlugin()
    views = plugin.appbuilder_views
    assert [type(v["view"]) for v in views] == [
        CampaignsView,
        CampaignEmailsView,
        CampaignUsersView,
        CampaignMonitorView,
        CampaignDefinitionsView,
        CampaignSuppressionsView,
    ]
    apps = plugin.fastapi_apps
    assert apps == [{"app": app, "url_prefix": "/campaign-runs", "name": "Campaign Runs API"}]
    assert isinstance(apps[0]["app"], FastAPI)
    # Built once: the same lists on every read, from the class or from any instance.
    assert CampaignRunsPlugin.appbuilder_views is views is CampaignRunsPlugin().appbuilder_views
    assert CampaignRunsPlugin.fastapi_apps is apps is CampaignRunsPlugin().fastapi_apps


def test_plugin_info_lists_the_view_and_the_app() -> None:
    result = run_probe(INFO_PROBE, dict(os.environ))
    assert result["errors"] == {}, result["errors"]
    [info] = result["info"]
    assert info["listeners"] == ["campaign_runs.listeners"]
    assert [view["view"] for view in info["appbuilder_views"]] == [
        "campaign_runs.pages.fab.campaigns.CampaignsView",
        "campaign_runs.pages.fab.emails.CampaignEmailsView",
        "campaign_runs.pages.fab.users.CampaignUsersView",
        "campaign_runs.pages.fab.monitor.CampaignMonitorView",
        "campaign_runs.pages.fab.definitions.CampaignDefinitionsView",
        "campaign_runs.pages.fab.suppressions.CampaignSuppressionsView",
    ]
    assert info["fastapi_apps"] == [
        {"app": "fastapi.applications.FastAPI", "url_prefix": "/campaign-runs", "name": "Campaign Runs API"}
    ]
