"""The import-linter contracts say what their names say: every adapter is either open to the edges or forbidden,
and a contract breaks when an edge imports a forbidden adapter or a page host the other (checked on a copy)."""

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


def broken(tmp_path: Path, module: str, line: str, contract: str) -> subprocess.CompletedProcess[str]:
    """``lint-imports --contract contract`` on a copy of the package whose ``module`` (a path) has one more line."""
    copy = tmp_path / "plugins" / "campaign_runs"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "static", "templates"))
    probed = copy / module
    probed.write_text(probed.read_text() + f"\n{line}  # noqa: E402\n")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    lint_imports = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint_imports), "--no-cache", "--contract", contract],
        cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "plugins"), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_an_edge_importing_a_forbidden_adapter_breaks_the_contract(tmp_path: Path) -> None:
    """The probe: a FAB page given one import of ``adapters.runs`` on a copy of the package is refused."""
    line = "from campaign_runs.adapters import runs as _probe"
    result = broken(tmp_path, "pages/fab/campaigns.py", line, "edges")
    assert result.returncode != 0, result.stdout
    assert "campaign_runs.pages.fab.campaigns -> campaign_runs.adapters.runs" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("module", "line", "imported"),
    [
        ("pages/fab/emails.py", "from campaign_runs.pages.asgi import support as _probe", "campaign_runs.pages.asgi"),
        ("pages/asgi/emails.py", "from campaign_runs.pages.fab import http as _probe", "campaign_runs.pages.fab"),
        ("pages/builders.py", "from campaign_runs.pages.fab import http as _probe", "campaign_runs.pages.fab"),
    ],
)
def test_a_page_host_importing_the_other_breaks_the_contract(
    tmp_path: Path, module: str, line: str, imported: str
) -> None:
    """The probe: one host importing the other, or the host-neutral page code importing a host, is refused."""
    result = broken(tmp_path, module, line, "page-hosts")
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout and imported in result.stdout, result.stdout


def test_host_neutral_page_code_importing_flask_breaks_the_contract(tmp_path: Path) -> None:
    """The probe: ``pages/forms.py`` given one import of Flask is refused."""
    result = broken(tmp_path, "pages/forms.py", "import flask as _probe", "pages-host-neutral")
    assert result.returncode != 0, result.stdout
    assert "campaign_runs.pages.forms -> flask" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        ("plugin.py", "import flask as _probe", "campaign_runs.plugin -> flask"),
        ("listeners.py", "from campaign_runs import core as _probe", "campaign_runs.listeners -> campaign_runs.core"),
    ],
)
def test_the_plugin_or_listeners_importing_the_ui_or_core_breaks_the_contract(
    tmp_path: Path, module: str, line: str, expected: str
) -> None:
    """The probe: a module-level import of Flask in the plugin, or of the core in the listeners, is refused."""
    result = broken(tmp_path, module, line, "light")
    assert result.returncode != 0, result.stdout
    assert expected in result.stdout, result.stdout
