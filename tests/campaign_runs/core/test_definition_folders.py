"""Two campaigns folders, as ``make run`` has them: the shipped one in the DAG bundle, and the one New writes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from campaign_runs.core import definition_folders, definition_status, definitions, not_before
from campaign_runs.domain import ConflictError
from campaign_runs.factory.loader import LOADER_FILE
from campaign_runs.settings import get_settings
from campaign_runs.tables import campaign_event

from tests.campaign_runs.core.helpers import count
from tests.conftest import REPO
from tests.support.definitions import valid_definition

SHIPPED_ID = "cr_shipped_example"
SHIPPED_TEXT = valid_definition(SHIPPED_ID)


@dataclass(frozen=True)
class Folders:
    shipped: Path
    local: Path


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[Folders]:
    """A DAGs folder with the loader and one shipped campaign; ``definitions_folder`` outside it, as ``make run``'s."""
    shipped = tmp_path / "dags" / "campaigns"
    shipped.mkdir(parents=True)
    shutil.copyfile(REPO / "dags" / "campaigns" / LOADER_FILE, shipped / LOADER_FILE)
    (shipped / f"{SHIPPED_ID}.yaml").write_text(SHIPPED_TEXT)
    os.utime(shipped / LOADER_FILE, (1_000_000_000, 1_000_000_000))
    local = tmp_path / "home" / "campaigns"
    local.mkdir(parents=True)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path / "dags"))
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(local))
    get_settings.cache_clear()
    yield Folders(shipped, local)
    get_settings.cache_clear()


def test_new_writes_the_local_folder_and_wakes_the_shipped_loader(folders: Folders) -> None:
    saved = definitions.create_definition(valid_definition("cr_local_one"), actor="alice", note="Mine")

    assert saved.written
    assert (folders.local / "cr_local_one.yaml").read_text() == valid_definition("cr_local_one")
    assert (folders.local / ".campaign-runs" / "cr_local_one.json").is_file()
    assert sorted(p.name for p in folders.shipped.iterdir()) == [LOADER_FILE, f"{SHIPPED_ID}.yaml"]  # nothing new
    assert (folders.shipped / LOADER_FILE).stat().st_mtime > 1_000_000_000  # the loader that reads it re-parses
    assert definition_folders.every() == [folders.local, folders.shipped]


def test_a_shipped_campaign_is_read_only_says_why_and_configure_writes_nothing(folders: Folders) -> None:
    state = definitions.definition_of(SHIPPED_ID)

    assert state.text == SHIPPED_TEXT and state.editable and not state.folder_writable
    assert f"{SHIPPED_ID} is one of the campaigns shipped in the DAGs folder" in state.reason
    assert "[campaign_runs] definitions_folder" in state.reason and str(folders.shipped) not in state.reason
    edited = SHIPPED_TEXT.replace("size: 50", "size: 60")

    saved = definitions.update_definition(SHIPPED_ID, edited, base_sha=state.sha or "", actor="alice", note="")

    assert not saved.written and saved.text == edited and saved.message == state.reason
    assert (folders.shipped / f"{SHIPPED_ID}.yaml").read_text() == SHIPPED_TEXT
    assert list(folders.local.iterdir()) == [] and count(campaign_event) == 0


def test_new_refuses_the_id_of_a_shipped_campaign(folders: Folders) -> None:
    with pytest.raises(ConflictError, match=f"The id '{SHIPPED_ID}' is taken"):
        definitions.create_definition(SHIPPED_TEXT, actor="alice", note="")

    assert list(folders.local.iterdir()) == [] and count(campaign_event) == 0


def test_resume_writes_a_shipped_campaigns_promise_beside_its_file(folders: Folders) -> None:
    found = not_before.campaign_file(SHIPPED_ID)

    assert found is not None and found.folder == folders.shipped


def test_an_id_in_both_folders_is_refused_everywhere_without_a_server_path(folders: Folders, tmp_path: Path) -> None:
    (folders.local / f"{SHIPPED_ID}.yaml").write_text(SHIPPED_TEXT)

    with pytest.raises(ConflictError) as twice:
        definitions.definition_of(SHIPPED_ID)

    assert str(twice.value) == definition_folders.defined_twice(SHIPPED_ID)
    assert f"Campaign '{SHIPPED_ID}' is defined twice" in str(twice.value) and str(tmp_path) not in str(twice.value)
    listed = [entry for entry in definition_status.broken_definitions() if entry.file == f"{SHIPPED_ID}.yaml"]
    assert [entry.message for entry in listed] == [str(twice.value)]
    with pytest.raises(ConflictError, match="defined twice"):
        not_before.campaign_file(SHIPPED_ID)


def test_the_default_definitions_folder_is_the_shipped_one_and_writable(
    folders: Folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER")
    get_settings.cache_clear()

    state = definitions.definition_of(SHIPPED_ID)

    assert definition_folders.every() == [folders.shipped]
    assert state.folder_writable and state.reason == ""
