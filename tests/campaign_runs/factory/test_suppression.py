"""The suppression list as runs meet it: checked before each message, fed by permanent SMTP refusals.

Each run here is the real task code (``build_audience`` then ``send_channel``) against a real SMTP server, with the
ledger, snapshot and suppression list on a SQLite file or on PostgreSQL (``[campaign_runs] ledger_conn_id``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from campaign_runs.factory.documents import load_yaml
from campaign_runs.factory.factory import build_audience, send_channel
from campaign_runs.factory.spec import parse_spec
from campaign_runs.factory.suppression import SuppressionError, SuppressionList, open_suppressions

from tests.support.ledger_db import connect_args, connection_uri, ledger_database
from tests.support.recording_smtp import RecordingSmtp, recording_smtp

CAMPAIGN = """
id: {id}
description: Newsletter from a CSV file.
owner: lifecycle
owner_email: lifecycle@example.com
schedule: {{cron: null, timezone: UTC, start_date: 2025-01-01}}
audience:
  source: file
  url: people.csv
  columns: {{id: person_id}}
channels:
  email: {{subject: "Hello $first_name", body: "News", batch_size: 3}}
"""
SLOT = dt.datetime(2026, 5, 4, 9, tzinfo=dt.UTC)


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingSmtp]:
    """A real SMTP server; Airflow's ``[smtp]`` settings point at it."""
    with recording_smtp() as (handler, port):
        monkeypatch.setenv("AIRFLOW__SMTP__SMTP_PORT", str(port))
        yield handler


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """This module's own PostgreSQL ledger database, dropped at the end."""
    with ledger_database("suppression") as name:
        yield name


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_conn(request: pytest.FixtureRequest, sink_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``[campaign_runs] ledger_conn_id``: none (SQLite files under the sink dir) or a PostgreSQL Connection."""
    if request.param == "sqlite":
        monkeypatch.delenv("AIRFLOW__CAMPAIGN_RUNS__LEDGER_CONN_ID", raising=False)
        return ""
    monkeypatch.setenv("AIRFLOW_CONN_CAMPAIGN_LEDGER_SUPP", connection_uri(request.getfixturevalue("pg_database")))
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__LEDGER_CONN_ID", "campaign_ledger_supp")
    return "campaign_ledger_supp"


def campaign(folder: Path, monkeypatch: pytest.MonkeyPatch, emails: list[str]) -> Any:
    """A campaign (fresh id: the PostgreSQL ledger is shared by the module) whose CSV lists ``emails``."""
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__AUDIENCE_FILE_ROOTS", str(folder))
    lines = ["person_id,email,first_name", *(f"r{n:02d},{email},Name{n}" for n, email in enumerate(emails))]
    (folder / "people.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    campaign_id = f"supp_{uuid.uuid4().hex[:8]}"
    text = CAMPAIGN.format(id=campaign_id)
    return parse_spec(load_yaml(text), folder / f"{campaign_id}.yaml")


@dataclass
class TaskInstance:
    """What send_channel asks of its task instance: the run's state, and a place for its progress."""

    dag_id: str
    progress: list[dict[str, Any]] = field(default_factory=list)

    def get_dagrun_state(self, dag_id: str, run_id: str) -> str:
        return "running"

    def xcom_push(self, key: str, value: Any) -> None:
        self.progress.append(value)


def run_email(spec: Any, run_id: str, logical_date: dt.datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """One run of the campaign's tasks: its snapshot, then its email channel; (result, last progress published)."""
    return run_channel(spec, "email", run_id, logical_date)


def run_channel(
    spec: Any, channel: str, run_id: str, logical_date: dt.datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One run of the campaign's tasks: its snapshot, then ``channel``; (result, last progress published)."""
    dag_run = SimpleNamespace(
        run_id=run_id,
        conf={},
        logical_date=logical_date,
        data_interval_start=logical_date,
        data_interval_end=logical_date,
        run_type="manual",
        run_after=logical_date,
    )
    ti = TaskInstance(spec.id)
    context: dict[str, Any] = {"dag_run": dag_run, "params": {}, "ti": ti}
    plan = build_audience(spec, context)  # type: ignore[arg-type]
    result = send_channel(spec, channel, plan, context)  # type: ignore[arg-type]
    return result, ti.progress[-1]


def people(count: int) -> list[str]:
    """``count`` good addresses."""
    return [f"user{n:02d}@example.org" for n in range(count)]


def test_an_address_suppressed_mid_run_gets_no_later_message_of_that_run(
    tmp_path: Path, sink_dir: Path, smtp: RecordingSmtp, ledger_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unsubscribed (in another case) after the 4th message: the 10th recipient is held back and counted."""
    spec = campaign(tmp_path, monkeypatch, people(12))

    def unsubscribe_after_fourth(count: int) -> None:
        if count == 4:  # as the API or the CLI would: its own connection to the list
            with open_suppressions(sink_dir=sink_dir, conn_id=ledger_conn) as suppressions:
                suppressions.add("email", "USER09@Example.ORG", reason="unsubscribed", source="link", actor="user09")

    smtp.after_message = unsubscribe_after_fourth
    result, progress = run_email(spec, "manual__mid_run", SLOT)

    sent_to = smtp.sent_to("manual__mid_run")
    assert "user09@example.org" not in sent_to
    assert sent_to == [address for address in people(12) if address != "user09@example.org"]
    assert (result["sent"], result["failed"], result["suppressed"], result["total"]) == (11, 0, 1, 11)
    assert (progress["sent"], progress["suppressed"], progress["total"]) == (11, 1, 11)  # complete for summarise


def test_a_permanent_refusal_bounces_the_address_and_a_later_run_skips_it(
    tmp_path: Path, sink_dir: Path, smtp: RecordingSmtp, ledger_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """550 at RCPT: on the list as bounced (the SMTP reply as its source); a 450 is only a failure, tried again."""
    emails = [*people(4), "Gone@Example.org", *[f"more{n}@example.org" for n in range(3)], "busy@example.org"]
    spec = campaign(tmp_path, monkeypatch, emails)
    smtp.refuse = {
        "gone@example.org": "550 5.1.1 <gone@example.org>: no such mailbox",
        "busy@example.org": "450 4.2.1 mailbox busy, try later",
    }

    first, first_progress = run_email(spec, "manual__first", SLOT)
    assert "Gone@Example.org" not in smtp.sent_to("manual__first")
    assert (first["sent"], first["failed"] + first["suppressed"]) == (7, 2)
    assert first_progress["sent"] + first_progress["failed"] == first_progress["total"]
    with open_suppressions(sink_dir=sink_dir, conn_id=ledger_conn) as suppressions:
        [entry] = [e for e in suppressions.every("email") if e.address == "gone@example.org"]
        assert (entry.channel, entry.address, entry.reason, entry.actor) == (
            "email",
            "gone@example.org",
            "bounced",
            "system",
        )
        assert entry.source.startswith("SMTP 550 5.1.1 <gone@example.org>: no such mailbox"), entry.source
        assert suppressions.contains("email", " GONE@example.ORG ")
        assert not suppressions.contains("email", "busy@example.org")  # 4xx: temporary, not suppressed

    smtp.attempts.clear()
    second, _ = run_email(spec, "manual__second", SLOT + dt.timedelta(days=7))  # the next slot
    assert "busy@example.org" in smtp.attempts  # tried again, refused again
    assert (second["sent"], second["failed"], second["suppressed"], second["total"]) == (7, 1, 1, 8)
    assert smtp.sent_to("manual__second") == smtp.sent_to("manual__first")  # no message to the bounced address


def test_a_suppressed_address_is_not_even_offered_to_the_smtp_server(
    tmp_path: Path, sink_dir: Path, smtp: RecordingSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bounced address gets no RCPT TO either: repeated refusals at RCPT hurt the sender's reputation."""
    spec = campaign(tmp_path, monkeypatch, people(3))
    with open_suppressions(sink_dir=sink_dir) as suppressions:
        suppressions.add("email", "user01@example.org", reason="bounced", source="SMTP 550", actor="system")
    result, _ = run_email(spec, "manual__offered", SLOT)
    assert (result["sent"], result["suppressed"]) == (2, 1)
    assert "user01@example.org" not in smtp.attempts


@pytest.fixture(params=["sqlite", "postgres"])
def suppression_list(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SuppressionList]:
    """A fresh list on one backend."""
    if request.param == "sqlite":
        with SuppressionList.sqlite(tmp_path / "suppressions.sqlite") as local:
            yield local
        return
    with SuppressionList.postgresql(connect_args(request.getfixturevalue("pg_database"))) as shared:
        shared._execute("DELETE FROM campaign_suppression")  # this module's database: the runs' entries go
        yield shared


def test_the_list_compares_addresses_as_channels_do(suppression_list: SuppressionList) -> None:
    """Emails in any case, phone numbers without punctuation; the first entry is kept; invalid input is refused."""
    assert suppression_list.add("email", " Ann@Example.ORG ", reason="unsubscribed", source="link", actor="ann")
    assert not suppression_list.add("email", "ann@example.org", reason="bounced", source="SMTP 550", actor="system")
    assert suppression_list.add("sms", "+33 6 12-34-56-78", reason="manual", source="cli", actor="ops")
    assert suppression_list.contains("email", "ANN@example.org")
    assert suppression_list.contains("sms", "+33612345678") and not suppression_list.contains("push", "+33612345678")
    assert [(e.address, e.reason) for e in suppression_list.every("email")] == [("ann@example.org", "unsubscribed")]
    assert suppression_list.count() == {"email": 1, "sms": 1}
    with pytest.raises(SuppressionError, match="is not a sms address"):
        suppression_list.add("sms", "0612345678", reason="manual", source="cli", actor="ops")
    with pytest.raises(SuppressionError, match="unknown reason"):
        suppression_list.add("email", "b@example.org", reason="because", source="cli", actor="ops")
    with pytest.raises(SuppressionError, match="unknown channel"):
        suppression_list.contains("fax", "123")
    assert suppression_list.remove("email", "ANN@EXAMPLE.ORG") and not suppression_list.remove(
        "email", "ann@example.org"
    )
