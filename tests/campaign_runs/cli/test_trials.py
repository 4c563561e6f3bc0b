"""``airflow campaigns check`` and ``airflow campaigns test-send``, in process, against a real SMTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_runs.core import definitions
from campaign_runs.tables import campaign_event, run_summary

from tests.campaign_runs.cli.test_definitions import cli, fails
from tests.campaign_runs.core.helpers import count
from tests.support.campaigns_folder import campaigns_folder, process_context  # noqa: F401
from tests.support.definitions import valid_definition
from tests.support.inbox_smtp import Inbox, inbox_smtp

DAG_ID = "cr_cli_trial"
TEXT = valid_definition(DAG_ID)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[Path]:
    """A private campaigns folder holding the campaign, and a sink directory nothing may create."""
    with campaigns_folder(tmp_path, monkeypatch, TEXT) as path:
        yield path


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with inbox_smtp(monkeypatch) as handler:
        yield handler


def sent_nothing(inbox: Inbox, tmp_path: Path) -> None:
    assert inbox.attempts == [] and count(campaign_event) == 1
    assert count(run_summary) == 0 and not (tmp_path / "sinks").exists()


def test_test_send_sends_to_the_given_addresses_and_prints_each_answer_and_the_message(
    capsys: pytest.CaptureFixture[str], folder: Path, inbox: Inbox, tmp_path: Path
) -> None:
    fields = json.dumps({"first_name": "Zoé", "plan": "silver"})
    argv = ("test-send", DAG_ID, "--to", "ann@example.org", "--to", "bob@example.org", "--fields", fields)

    out, _ = cli(capsys, *argv, "--channel", "email", "--user", "alice", "-o", "plain")

    assert sorted(inbox.received()) == [
        ("ann@example.org", "[TEST] Spring for Zoé"),
        ("bob@example.org", "[TEST] Spring for Zoé"),
    ]
    assert "ann@example.org" in out and "bob@example.org" in out and "sent" in out
    assert "subject: [TEST] Spring for Zoé" in out and "your silver plan has a gift." in out
    (entry,) = [e for e in definitions.history(DAG_ID) if e.kind == "test_send"]
    assert entry.actor == "alice" and "example.org" not in (entry.details or "")
    rows = json.loads(cli(capsys, "test-send", DAG_ID, "--to", "cy@example.org", "--user", "bob", "-o", "json")[0])
    assert [(r["channel"], r["to"], r["sent"], r["answer"]) for r in rows] == [
        ("email", "cy@example.org", True, "sent")
    ]
    assert rows[0]["content"]["subject"].startswith("[TEST] Spring for ")
    assert count(run_summary) == 0 and not (tmp_path / "sinks").exists()


def test_check_prints_each_channel_and_exits_1_when_a_connection_fails(
    capsys: pytest.CaptureFixture[str], folder: Path, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = json.loads(cli(capsys, "check", DAG_ID, "--user", "alice", "-o", "json")[0])
    assert found == {
        "campaign": DAG_ID,
        "checks": [
            {
                "channel": "email",
                "transport": "smtp",
                "conn_id": "campaign_smtp",
                "ok": True,
                "answer": "smtp: connected",
            }
        ],
    }
    login = {"conn_type": "smtp", "host": "127.0.0.1", "port": inbox.port, "login": "shop", "password": "pw-x9"}
    monkeypatch.setenv("AIRFLOW_CONN_CAMPAIGN_SMTP", json.dumps(login))  # a login the server cannot take
    message = fails(capsys, "check", DAG_ID, "--user", "alice")
    assert message == "Error: the Connection of email failed (see the answer above)."
    assert inbox.messages == []


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        ((*[a for n in range(11) for a in ("--to", f"u{n}@example.org")],), "11 addresses: a test goes to at most 10"),
        (("--to", "ann@example.org", "--to", "ann@"), "'ann@' is not an email address"),
        (("--to", "ann@example.org", "--channel", "fax"), "Unknown channel 'fax'"),
        (("--to", "ann@example.org", "--fields", '{"first name": "x"}'), "is not a column name"),
    ],
)
def test_bad_requests_get_one_line_and_nothing_is_sent(
    capsys: pytest.CaptureFixture[str], folder: Path, inbox: Inbox, tmp_path: Path, argv: tuple[str, ...], words: str
) -> None:
    message = fails(capsys, "test-send", DAG_ID, *argv, "--user", "alice")

    assert words in message
    sent_nothing(inbox, tmp_path)


def test_fields_must_be_a_json_object(
    capsys: pytest.CaptureFixture[str], folder: Path, inbox: Inbox, tmp_path: Path
) -> None:
    for fields in ("{not json", "[1, 2]", json.dumps({"x": "y" * 20_000})):
        with pytest.raises(SystemExit) as usage:
            cli(capsys, "test-send", DAG_ID, "--to", "ann@example.org", "--fields", fields, "--user", "alice")
        assert usage.value.code == 2 and "--fields" in capsys.readouterr().err
    sent_nothing(inbox, tmp_path)


@pytest.mark.parametrize("username", ["viewer", "editor"])
def test_who_may_not_configure_is_refused_and_nothing_is_sent(
    capsys: pytest.CaptureFixture[str], folder: Path, inbox: Inbox, tmp_path: Path, username: str
) -> None:
    message = fails(capsys, "test-send", DAG_ID, "--to", "ann@example.org", "--user", username)
    assert f"User {username!r} may not configure" in message
    assert "may not configure" in fails(capsys, "check", DAG_ID, "--user", username)
    sent_nothing(inbox, tmp_path)


def test_an_unknown_campaign_or_user_is_refused(
    capsys: pytest.CaptureFixture[str], folder: Path, inbox: Inbox, tmp_path: Path
) -> None:
    assert "No campaign 'cr_no_such'" in fails(capsys, "check", "cr_no_such", "--user", "alice")
    assert "nobody_here" in fails(capsys, "test-send", DAG_ID, "--to", "ann@example.org", "--user", "nobody_here")
    sent_nothing(inbox, tmp_path)
