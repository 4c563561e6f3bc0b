"""One version: ``__version__``, read by pyproject, the provider info, the OpenAPI document, the docs, the changelog."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from types import SimpleNamespace

import pytest
from campaign_runs import __version__

from tests.conftest import REPO

pytestmark = pytest.mark.static

RELEASED = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", re.M)


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_the_version_is_semantic() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_pyproject_reads_the_package_version() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "campaign_runs.__version__"}


def test_the_provider_info_and_the_openapi_document_say_the_package_version() -> None:
    from campaign_runs.api.app import app
    from campaign_runs.provider_info import get_provider_info

    assert get_provider_info()["versions"] == [__version__]
    assert app.openapi()["info"]["version"] == __version__


def test_the_docs_hook_sets_the_package_version() -> None:
    spec = importlib.util.spec_from_file_location("docs_reference_hook", REPO / "docs" / "hooks" / "reference.py")
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    config = hook.on_config(SimpleNamespace(extra={"version": ""}))
    assert config.extra["version"] == __version__


def test_the_changelog_s_latest_release_is_the_package_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## (.+)$", text, re.M)
    released = RELEASED.findall(text)
    assert sections[0] == "[Unreleased]"
    assert len(released) == len(sections) - 1, "every section but Unreleased is '## [X.Y.Z] - YYYY-MM-DD'"
    assert released[0][0] == __version__
    versions = [_key(version) for version, _ in released]
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions)
    dates = [date for _, date in released]
    assert dates == sorted(dates, reverse=True)
