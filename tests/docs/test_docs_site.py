"""The documentation site builds with ``mkdocs build --strict``, and its reference pages hold what the code declares."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.static

BUILD_SECONDS = 60


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built with --strict (every warning, broken link or anchor is an error) into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING -" not in output, output
    assert elapsed < BUILD_SECONDS, f"the docs build took {elapsed:.0f} s"
    return out


def page(site: Path, path: str) -> str:
    """The HTML of a built page."""
    return (site / path / "index.html").read_text(encoding="utf-8")


def test_strict_mode_checks_links_and_anchors() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["strict"] is True
    checks = ("omitted_files", "absolute_links", "unrecognized_links", "not_found", "anchors")
    assert {name: config["validation"][name] for name in checks} == dict.fromkeys(checks, "warn")


def _commands(prefix: str, commands: Any) -> Iterator[str]:
    for command in commands:
        if hasattr(command, "subcommands"):
            yield from _commands(f"{prefix} {command.name}", command.subcommands)
        else:
            yield f"{prefix} {command.name}"


def test_the_cli_reference_has_every_command_and_argument(site: Path) -> None:
    from campaign_runs.cli.commands import get_cli_commands

    html = page(site, "reference/cli")
    group = get_cli_commands()[0]
    names = list(_commands(f"airflow {group.name}", group.subcommands))
    assert len(names) > 30
    missing = [name for name in names if f"<code>{name}</code>" not in html]
    assert missing == []
    assert "<code>--resend-in-doubt</code>" in html


def test_the_rest_reference_has_every_route(site: Path) -> None:
    from campaign_runs.api.app import app

    html = page(site, "reference/rest")
    routes = [(method.upper(), path) for path, methods in app.openapi()["paths"].items() for method in methods]
    assert len(routes) > 20
    missing = [route for route in routes if f"{route[0]} <code>/campaign-runs{route[1]}</code>" not in html]
    assert missing == []


def test_the_configuration_reference_has_every_option(site: Path) -> None:
    from campaign_runs.provider_info import get_provider_info

    html = page(site, "reference/configuration")
    options = get_provider_info()["config"]["campaign_runs"]["options"]
    missing = [name for name in options if f"<code>AIRFLOW__CAMPAIGN_RUNS__{name.upper()}</code>" not in html]
    assert missing == []


def test_the_yaml_reference_has_every_field_and_the_schema(site: Path) -> None:
    from campaign_runs.core.definition_schema import definition_schema

    html = page(site, "reference/yaml-schema")
    schema = definition_schema()
    for name in schema["properties"]:
        assert f"<code>{name}</code>" in html
    for channel, body in schema["properties"]["channels"]["properties"].items():
        assert f"<code>channels.{channel}</code>" in html
        assert all(f"<code>{field}</code>" in html for field in body["properties"])
    assert schema["$id"] in html


def test_included_files_and_migrations_are_pages(site: Path) -> None:
    assert "At most once, and the window of doubt" in page(site, "reference/campaign-files")
    assert "What the plugin trusts" in page(site, "explanation/security")
    versions = sorted((REPO / "plugins" / "campaign_runs" / "migrations" / "versions").glob("[0-9]*.py"))
    upgrade = page(site, "how-to/upgrade")
    assert all(f"<code>cr{path.name[:4]}</code>" in upgrade for path in versions)


def test_the_docs_show_the_package_version(site: Path) -> None:
    from campaign_runs import __version__

    assert f"Campaign Runs <code>{__version__}</code>" in page(site, "")
