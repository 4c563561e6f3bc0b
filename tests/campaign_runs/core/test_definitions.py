"""New and Configure in the core: validation naming the field, atomic files, versions, optimistic edits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_runs.core import definition_status, definition_text, definitions
from campaign_runs.domain import (
    ConflictError,
    DefinitionConflictError,
    DefinitionInvalidError,
    NotFoundError,
    utcnow,
)
from campaign_runs.factory.schedule_state import read_not_before
from campaign_runs.settings import get_settings
from campaign_runs.tables import campaign_event

from tests.campaign_runs.core.helpers import count
from tests.support.definitions import bad_inputs, valid_definition

VALID = valid_definition("cr_new_campaign")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[Path]:
    """A private, writable campaigns folder."""
    path = tmp_path / "campaigns"
    path.mkdir()
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def test_new_writes_the_file_and_version_one_and_waits_for_airflow(folder: Path) -> None:
    saved = definitions.create_definition(VALID, actor="alice", note="Spring")

    assert saved.written and saved.version == 1 and saved.dag_id == "cr_new_campaign"
    assert (folder / "cr_new_campaign.yaml").read_text() == VALID
    assert sorted(p.name for p in folder.iterdir()) == [".campaign-runs", "cr_new_campaign.yaml"]  # no temp file
    assert [p.name for p in (folder / ".campaign-runs").iterdir()] == ["cr_new_campaign.json"]
    written = read_not_before(folder, "cr_new_campaign")
    assert written is not None and abs((written - utcnow()).total_seconds()) < 60  # the moment it was created
    entry = definitions.history("cr_new_campaign")[0]
    assert (entry.kind, entry.actor, entry.note, entry.version) == ("created", "alice", "Spring", 1)
    assert "+id: cr_new_campaign" in (entry.diff or "")
    assert definition_status.waiting_definitions() == ["cr_new_campaign"]
    assert definition_status.broken_definitions() == []


@pytest.mark.parametrize(("change", "field", "words"), bad_inputs("cr_new_campaign"))
def test_bad_input_names_its_field_and_writes_nothing(
    folder: Path, change: tuple[str, str], field: str, words: str
) -> None:
    text = VALID.replace(*change)
    assert text != VALID
    with pytest.raises(DefinitionInvalidError) as raised:
        definitions.create_definition(text, actor="alice", note="")
    assert raised.value.field == field
    assert words in str(raised.value)
    assert list(folder.iterdir()) == []
    assert count(campaign_event) == 0


def test_an_oversized_template_is_refused(folder: Path) -> None:
    text = VALID.replace('body: "Hello', 'body: "' + "x" * 10_001 + " Hello")
    with pytest.raises(
        DefinitionInvalidError, match=r"channels.email.body: is \d+ characters long; the limit is 10000"
    ):
        definitions.create_definition(text, actor="alice", note="")


def test_an_id_that_clashes_with_a_dag_or_a_file_is_refused(folder: Path) -> None:
    with pytest.raises(ConflictError) as taken:
        definitions.create_definition(VALID.replace("cr_new_campaign", "cr_campaign"), actor="alice", note="")
    assert str(taken.value) == (  # which campaign has the id, in words: no loader file, no server path
        "The id 'cr_campaign' is taken: campaign cr_campaign (Weekly test newsletter) already uses it. "
        "Choose another id."
    )
    definitions.create_definition(VALID, actor="alice", note="")
    with pytest.raises(ConflictError, match="the campaigns folder already has a campaign with it"):
        definitions.create_definition(VALID, actor="bob", note="")
    assert count(campaign_event) == 1


def test_configure_saves_a_new_version_with_its_diff_and_refuses_a_stale_save(folder: Path) -> None:
    first = definitions.create_definition(VALID, actor="alice", note="")
    edited = VALID.replace('"0 9 * * MON"', '"0 10 * * TUE"')

    saved = definitions.update_definition("cr_new_campaign", edited, base_sha=first.sha, actor="bob", note="Tuesdays")

    assert saved.version == 2
    assert '-  cron: "0 9 * * MON"' in saved.diff and '+  cron: "0 10 * * TUE"' in saved.diff
    assert (folder / "cr_new_campaign.yaml").read_text() == edited
    with pytest.raises(DefinitionConflictError) as raised:  # a second save from the same starting version
        definitions.update_definition(
            "cr_new_campaign", VALID.replace("size: 50", "size: 60"), base_sha=first.sha, actor="admin", note=""
        )
    assert '+  cron: "0 10 * * TUE"' in raised.value.changes  # what bob changed meanwhile
    assert raised.value.current_sha == saved.sha
    assert (folder / "cr_new_campaign.yaml").read_text() == edited
    assert [e.version for e in definitions.history("cr_new_campaign")] == [2, 1]


def test_a_hand_written_file_becomes_version_one_at_its_first_change(folder: Path) -> None:
    (folder / "cr_new_campaign.yaml").write_text(VALID)
    state = definitions.definition_of("cr_new_campaign")
    assert state.editable and state.version == 0

    definitions.update_definition(
        "cr_new_campaign", VALID.replace("size: 50", "size: 70"), base_sha=state.sha or "", actor="bob", note="More"
    )

    kinds = [(e.kind, e.version) for e in definitions.history("cr_new_campaign")]
    assert kinds == [("configured", 2), ("found", 1)]


def test_a_python_campaign_is_read_only_and_says_why(folder: Path) -> None:
    state = definitions.definition_of("cr_campaign")
    assert not state.editable and state.text is None
    assert "written in Python" in state.reason
    with pytest.raises(NotFoundError):
        definitions.definition_of("no_such_campaign")


def test_a_read_only_folder_offers_the_yaml_and_writes_nothing(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only mount (simulated: the tests run as root, who can write any folder) gets the YAML to commit."""
    monkeypatch.setattr(definitions.files, "writable", lambda path: False)

    saved = definitions.create_definition(VALID, actor="alice", note="")

    assert not saved.written and saved.text == VALID and "cannot be written" in saved.message
    assert list(folder.iterdir()) == [] and count(campaign_event) == 0


def test_set_assignments_change_dotted_keys_with_yaml_values(folder: Path) -> None:
    text = definitions.apply_settings(VALID, ["schedule.cron=0 8 * * *", "channels.email.batch_size=40"])
    assert "cron: 0 8 * * *" in text and "batch_size: 40" in text
    assert definition_text.validate_text(text)[0] == "cr_new_campaign"
    with pytest.raises(DefinitionInvalidError, match="is not key=value"):
        definitions.apply_settings(VALID, ["schedule.cron"])


def test_broken_files_are_listed_with_their_error(folder: Path) -> None:
    (folder / "cr_broken.yaml").write_text(VALID.replace("cr_new_campaign", "cr_broken").replace("Europe/Paris", "X/Y"))
    (folder / "cr_misnamed.yaml").write_text(VALID)
    broken = {b.file: (b.field, b.message) for b in definition_status.broken_definitions()}
    assert broken["cr_broken.yaml"][0] == "schedule.timezone"
    assert broken["cr_misnamed.yaml"] == ("id", "is 'cr_new_campaign' but the file is named cr_misnamed.yaml")


def test_the_preview_describes_the_cron_and_crosses_dst_in_the_campaign_timezone(folder: Path) -> None:
    preview = definition_status.preview_schedule("30 2 * * *", "Europe/Paris", count=400)
    assert preview.description == "At 02:30"
    assert len(preview.times) == 400
    offsets = {t.local.utcoffset() for t in preview.times}
    assert len(offsets) == 2  # winter and summer time both appear within 400 days
    for fire in preview.times:
        assert fire.utc.timestamp() == fire.local.timestamp()  # the same instant (== is False in a DST fold)
    assert all(b.utc > a.utc for a, b in zip(preview.times, preview.times[1:], strict=False))
    manual = definition_status.preview_schedule(None, "UTC")
    assert manual.times == [] and "manually" in manual.description
    with pytest.raises(DefinitionInvalidError) as raised:
        definition_status.preview_schedule("0 0 9 * * MON", "UTC")
    assert raised.value.field == "schedule.cron"


def test_a_save_marks_the_loader_changed_so_airflow_parses_it_next(folder: Path) -> None:
    import os

    loader = folder / "campaigns.py"
    loader.write_text("# the loader\n")
    os.utime(loader, (1_000_000, 1_000_000))

    definitions.create_definition(VALID, actor="alice", note="")

    assert loader.stat().st_mtime > 1_000_000
    assert loader.read_text() == "# the loader\n"


@pytest.mark.parametrize("zone", ["Europe", "x" * 300])
def test_a_timezone_that_names_a_folder_or_is_too_long_is_a_field_error(folder: Path, zone: str) -> None:
    with pytest.raises(DefinitionInvalidError) as raised:
        definitions.create_definition(VALID.replace("Europe/Paris", zone), actor="alice", note="")
    assert raised.value.field == "schedule.timezone" and "unknown timezone" in str(raised.value)


def test_a_cron_change_airflow_does_not_load_in_time_is_saved_and_says_so(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cr_campaign is a DAG Airflow knows; no dag-processor runs here, so its new schedule is never loaded."""
    from campaign_runs.core import running_definition

    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__RESUME_WAIT_SECONDS", "0.5")
    get_settings.cache_clear()
    text = valid_definition("cr_campaign")
    (folder / "cr_campaign.yaml").write_text(text)
    state = definitions.definition_of("cr_campaign")
    edited = text.replace('"0 9 * * MON"', '"0 10 * * TUE"')

    saved = definitions.update_definition("cr_campaign", edited, base_sha=state.sha or "", actor="alice", note="")

    assert saved.written and saved.message == running_definition.NOT_LOADED
    assert (folder / "cr_campaign.yaml").read_text() == edited
    content = definitions.update_definition(
        "cr_campaign", edited.replace("size: 50", "size: 60"), base_sha=saved.sha, actor="alice", note=""
    )
    assert content.message == "Saved; waiting for Airflow to reload it."  # no schedule change: no wait
