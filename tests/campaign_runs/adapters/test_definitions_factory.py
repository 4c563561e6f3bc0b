"""The API server validates definitions with the installed factory, never with code from the DAGs folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from campaign_runs.adapters import definitions

from tests.support.definitions import valid_definition

PLANTED = """
from pathlib import Path
Path({marker!r}).write_text("planted code ran")
"""


def test_validation_imports_nothing_from_the_dags_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    for name in ("campaign_factory", "factory", "campaign_runs_factory"):
        package = tmp_path / name
        package.mkdir()
        for module in ("__init__", "spec", "schedule"):
            (package / f"{module}.py").write_text(PLANTED.format(marker=str(marker)))
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path))
    path_before = list(sys.path)

    spec_module, schedule_module = definitions.factory()
    spec = definitions.parse(yaml.safe_load(valid_definition("planted_check")), "planted_check.yaml")
    definitions.describe_cron("0 9 * * MON")

    assert spec.id == "planted_check"
    assert not marker.exists()
    assert sys.path == path_before
    package_root = Path(definitions.__file__).resolve().parents[1]
    for module in (spec_module, schedule_module):
        assert Path(module.__file__).resolve().is_relative_to(package_root / "factory")
