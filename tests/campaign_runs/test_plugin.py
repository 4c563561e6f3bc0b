"""The plugin registers exactly once, from the installed package or from the plugins folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.airflow_env import REPO

# Loads plugins in a fresh interpreter and reports what registered and which modules of ours exist.
PROBE = r"""
import importlib.metadata, importlib_metadata, json, sys
if {hide_distribution}:
    for md in (importlib.metadata, importlib_metadata):
        def hide(real):
            def distributions(*args, **kw):
                return (d for d in real(*args, **kw) if d.metadata["Name"].replace("_", "-").lower() != "campaign-runs")
            return distributions
        md.distributions = hide(md.distributions)  # entry_points() reads distributions() too
from airflow import plugins_manager
plugins, errors = plugins_manager._get_plugins()
ours = [p for p in plugins if p.name == "campaign_runs"]
ours_modules = sorted(
    name for name, module in sys.modules.items()
    if getattr(module, "__file__", None) and "campaign_runs" in (module.__file__ or "")
)
print(json.dumps({
    "count": len(ours),
    "source": str(ours[0].source) if ours else None,
    "errors": errors,
    "modules": ours_modules,
    "listeners": [l.__name__ for p in ours for l in p.listeners],
}))
"""


def probe(plugins_folder: Path, *, hide_distribution: bool) -> dict:  # type: ignore[type-arg]
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder)}
    if hide_distribution:
        # Without the installed package only the plugins folder can provide ``campaign_runs``.
        env["PYTHONPATH"] = str(plugins_folder)
    out = subprocess.run(
        [sys.executable, "-c", PROBE.replace("{hide_distribution}", str(hide_distribution))],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def assert_loaded_once(result: dict) -> None:  # type: ignore[type-arg]
    assert result["count"] == 1, result
    assert result["errors"] == {}, result
    assert result["listeners"] == ["campaign_runs.listeners"]
    # Every module of ours lives in the package: none was executed again as a top-level module.
    assert all(name.startswith("campaign_runs") for name in result["modules"]), result["modules"]
    assert len(result["modules"]) == len(set(result["modules"]))


def test_installed_package_registers_once_through_its_entry_point() -> None:
    result = probe(REPO / "plugins", hide_distribution=False)
    assert_loaded_once(result)
    assert "EntryPoint(name='campaign_runs'" in result["source"]
    # The loader still executes the plugins-folder shim, which stands aside when the package is installed.
    assert "campaign_runs_plugin" in result["modules"]


def test_plugins_folder_registers_once_without_the_installed_package(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    shutil.copytree(REPO / "plugins", folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    result = probe(folder, hide_distribution=True)
    assert_loaded_once(result)
    assert result["source"].endswith("campaign_runs_plugin.py"), result["source"]
    assert "campaign_runs_plugin" in result["modules"]


def test_provider_info_documents_every_option() -> None:
    from campaign_runs.provider_info import get_provider_info
    from campaign_runs.settings import OPTIONS

    info = get_provider_info()
    assert info["package-name"] == "campaign-runs"
    assert info["db-managers"] == ["campaign_runs.db_manager.CampaignRunsDBManager"]
    options = info["config"]["campaign_runs"]["options"]
    assert set(options) == set(OPTIONS)
    assert options["note_max_length"] == {
        "description": OPTIONS["note_max_length"][1],
        "version_added": "0.1.0",
        "type": "integer",
        "example": None,
        "default": "2000",
        "sensitive": False,
    }
