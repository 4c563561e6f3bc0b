"""Check connections and Send test in the core: the saved or an unsaved definition, the history, nothing of a run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_runs.core import definitions, trials
from campaign_runs.domain import ConflictError, DefinitionInvalidError, InvalidOptionError, NotFoundError
from campaign_runs.tables import campaign_event, run_summary
from sqlalchemy import select

from tests.campaign_runs.core.helpers import count
from tests.support.campaigns_folder import campaigns_folder, process_context  # noqa: F401
from tests.support.definitions import valid_definition
from tests.support.inbox_smtp import Inbox, inbox_smtp

DAG_ID = "cr_trial_core"
TEXT = valid_definition(DAG_ID).replace(
    "    batch_size: 25\n", '    batch_size: 25\n  sms:\n    text: "Hi $first_name"\n'
)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[Path]:
    """A private campaigns folder holding the campaign (version 1), and a sink directory nothing may create."""
    with campaigns_folder(tmp_path, monkeypatch, TEXT) as path:
        yield path


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with inbox_smtp(monkeypatch) as handler:
        yield handler


def trial_events() -> list[dict[str, object]]:
    """The campaign's test-send history entries."""
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(select(campaign_event).where(campaign_event.c.kind == trials.TEST_SEND_KIND))
        return [dict(row._mapping) for row in rows]


def untouched(folder: Path, tmp_path: Path) -> None:
    """The file is version 1 as saved; no run summary (the Monitor's counts), no ledger, sink or suppression list."""
    assert (folder / f"{DAG_ID}.yaml").read_text() == TEXT
    assert [entry.version for entry in definitions.history(DAG_ID) if entry.version] == [1]
    assert count(run_summary) == 0 and not (tmp_path / "sinks").exists()


def test_a_test_send_is_kept_in_the_history_with_counts_and_no_address(
    folder: Path, inbox: Inbox, tmp_path: Path
) -> None:
    sends = trials.send_test_messages(DAG_ID, actor="alice", to=["ann@example.org", "+33612345678"])

    assert [(s.channel, s.to, s.sent) for s in sends] == [
        ("email", "ann@example.org", True),
        ("sms", "+33612345678", False),
    ]
    subject = sends[0].content["subject"]
    assert subject.startswith("[TEST] Spring for ") and "$" not in subject
    assert inbox.received() == [("ann@example.org", subject)]
    (entry,) = trial_events()
    assert (entry["dag_id"], entry["actor"], entry["note"], entry["version"]) == (DAG_ID, "alice", "", None)
    assert json.loads(str(entry["details"])) == {
        "channel": "each",
        "channels": {
            "email": {"transport": "smtp", "addresses": 1, "sent": 1},
            "sms": {"transport": "dry run", "addresses": 1, "sent": 0},
        },
        "unsaved_definition": False,
        "given_fields": False,
    }
    assert "ann@example.org" not in repr(entry) and "612345678" not in repr(entry)
    untouched(folder, tmp_path)


def test_an_unsaved_definition_is_validated_as_a_save_and_used_instead(
    folder: Path, inbox: Inbox, tmp_path: Path
) -> None:
    unsaved = TEXT.replace("Spring for $first_name", "Summer for $first_name")

    sends = trials.send_test_messages(DAG_ID, actor="bob", to=["bob@example.org"], channel="email", text=unsaved)

    subject = sends[0].content["subject"]
    assert subject.startswith("[TEST] Summer for ") and inbox.received() == [("bob@example.org", subject)]
    assert json.loads(str(trial_events()[0]["details"]))["unsaved_definition"] is True
    checks = trials.check_connections(DAG_ID, text=unsaved.replace("  sms:\n", "  push: {title: T, body: B}\n  sms:\n"))
    assert [(c.channel, c.ok) for c in checks] == [("email", True), ("push", True), ("sms", True)]
    with pytest.raises(DefinitionInvalidError) as invalid:
        trials.send_test_messages(DAG_ID, actor="bob", to=["bob@example.org"], text=unsaved.replace("25", "0"))
    assert invalid.value.field == "channels.email.batch_size"
    with pytest.raises(DefinitionInvalidError, match="a campaign keeps its id"):
        trials.check_connections(DAG_ID, text=unsaved.replace(f"id: {DAG_ID}", "id: cr_other"))
    assert len(inbox.messages) == 1 and len(trial_events()) == 1
    untouched(folder, tmp_path)


def test_refused_requests_send_and_record_nothing(folder: Path, inbox: Inbox, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        trials.send_test_messages("cr_no_such_campaign", actor="alice", to=["ann@example.org"])
    with pytest.raises(ConflictError, match="written in Python"):
        trials.check_connections("cr_campaign")
    with pytest.raises(NotFoundError):
        trials.send_test_messages(DAG_ID, actor="nobody_here", to=["ann@example.org"])
    with pytest.raises(InvalidOptionError, match="'ann@' is not an email address"):
        trials.send_test_messages(DAG_ID, actor="alice", to=["bob@example.org", "ann@"])
    with pytest.raises(InvalidOptionError, match="at most 10"):
        trials.send_test_messages(DAG_ID, actor="alice", to=[f"u{n}@example.org" for n in range(11)])
    with pytest.raises(InvalidOptionError, match="Unknown channel 'fax'"):
        trials.send_test_messages(DAG_ID, actor="alice", to=["ann@example.org"], channel="fax")
    with pytest.raises(InvalidOptionError, match="not a list or object"):
        trials.send_test_messages(DAG_ID, actor="alice", to=["ann@example.org"], fields={"plan": [1]})
    assert inbox.attempts == [] and trial_events() == [] and count(campaign_event) == 1
    untouched(folder, tmp_path)
