"""The import-linter contracts say what their names say: every adapter is either open to the edges or forbidden,
and a contract breaks when an edge imports a forbidden adapter (checked on a copy of the package)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.static

PACKAGE = REPO / "plugins" / "campaign_runs"
EDGE_ADAPTERS = {"auth", "api_security", "cli", "fork_guard"}  # identity, API security, the CLI, the housekeeper


def contracts() -> dict[str, dict[str, object]]:
    """The contracts of pyproject.toml by id (those that have one)."""
    found = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    return {str(contract["id"]): contract for contract in found if "id" in contract}


def test_every_adapter_is_open_to_the_edges_or_forbidden_to_them() -> None:
    """A new adapter must be placed: listed as forbidden to the edges, or named here as one they may use."""
    adapters = {path.stem for path in (PACKAGE / "adapters").glob("*.py") if path.stem != "__init__"}
    forbidden = {
        str(module).removeprefix("campaign_runs.adapters.")
        for module in contracts()["edges"]["forbidden_modules"]  # type: ignore[attr-defined]
        if str(module).startswith("campaign_runs.adapters.")
    }
    assert forbidden | EDGE_ADAPTERS == adapters and not forbidden & EDGE_ADAPTERS


def test_an_edge_importing_a_forbidden_adapter_breaks_the_contract(tmp_path: Path) -> None:
    """The probe: views.py given one import of ``adapters.runs`` on a copy of the package is refused."""
    copy = tmp_path / "plugins" / "campaign_runs"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "static", "templates"))
    views = copy / "views.py"
    views.write_text(views.read_text() + "\nfrom campaign_runs.adapters import runs as _probe  # noqa: E402\n")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--contract", "edges"],
        cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "plugins"), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode != 0, result.stdout
    assert "campaign_runs.views -> campaign_runs.adapters.runs" in result.stdout, result.stdout
