"""The loader: the shipped campaigns beside it and ``[campaign_runs] definitions_folder``; an id in both: neither."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from campaign_runs.factory.loader import LOADER_FILE, load_campaigns

from tests.conftest import REPO
from tests.support.definitions import valid_definition


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """A shipped campaigns folder with the repository's loader and one campaign."""
    folder = tmp_path / "dags" / "campaigns"
    folder.mkdir(parents=True)
    shutil.copyfile(REPO / "dags" / "campaigns" / LOADER_FILE, folder / LOADER_FILE)
    (folder / "cr_shipped.yaml").write_text(valid_definition("cr_shipped"))
    return folder


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``[campaign_runs] definitions_folder``: another folder, as ``make run`` sets it (``.airflow/campaigns``)."""
    folder = tmp_path / "home" / "campaigns"
    folder.mkdir(parents=True)
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(folder))
    return folder


def loaded(folder: Path) -> tuple[dict[str, str], list[str]]:
    namespace: dict[str, object] = {}
    errors = load_campaigns(folder, namespace)
    return errors, sorted(namespace)


def test_the_loader_builds_the_shipped_campaigns_and_the_definitions_folders(shipped: Path, local: Path) -> None:
    (local / "cr_local.yaml").write_text(valid_definition("cr_local"))

    assert loaded(shipped) == ({}, ["campaign__cr_local", "campaign__cr_shipped"])


def test_without_a_definitions_folder_the_loader_builds_its_own_folder_only(
    shipped: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "cr_elsewhere.yaml").write_text(valid_definition("cr_elsewhere"))
    monkeypatch.delenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", raising=False)

    assert loaded(shipped) == ({}, ["campaign__cr_shipped"])


def test_an_id_in_both_folders_is_loaded_from_neither_and_the_error_names_no_server_path(
    shipped: Path, local: Path, tmp_path: Path
) -> None:
    (local / "cr_shipped.yaml").write_text(valid_definition("cr_shipped").replace("Spring", "Autumn"))
    (local / "cr_local.yaml").write_text(valid_definition("cr_local"))

    errors, dags = loaded(shipped)

    assert dags == ["campaign__cr_local"]  # the clash hides no other campaign
    assert list(errors) == ["cr_shipped.yaml"]
    assert "campaign 'cr_shipped' is defined twice" in errors["cr_shipped.yaml"]
    assert "definitions_folder" in errors["cr_shipped.yaml"] and str(tmp_path) not in errors["cr_shipped.yaml"]


def test_a_definitions_folder_with_a_loader_of_its_own_is_left_to_that_loader(shipped: Path, local: Path) -> None:
    shutil.copyfile(shipped / LOADER_FILE, local / LOADER_FILE)
    (local / "cr_local.yaml").write_text(valid_definition("cr_local"))

    assert loaded(shipped) == ({}, ["campaign__cr_shipped"])
    assert loaded(local) == ({}, ["campaign__cr_local"])


def test_its_own_folder_as_definitions_folder_is_read_once(shipped: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(shipped))

    assert loaded(shipped) == ({}, ["campaign__cr_shipped"])
