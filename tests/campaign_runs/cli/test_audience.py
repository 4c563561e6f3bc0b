"""``airflow campaigns audience``, ``validate`` of SQL audiences and ``db-clean`` of audience snapshots, in process.

The audience is a SQLite table behind Connection ``subscribers_db`` (an ``AIRFLOW_CONN_`` variable); campaign
files live in a private definitions folder. Nothing here may write a ledger, a snapshot or a campaign file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pendulum
import pytest
import yaml
from campaign_runs.factory.hygiene import SnapshotPlan
from campaign_runs.factory.snapshot import META_TABLE, SNAPSHOT_TABLE, open_snapshots
from campaign_runs.factory.spec import parse_spec
from campaign_runs.tables import campaign_event

from tests.campaign_runs.cli.test_definitions import cli, fails
from tests.campaign_runs.core.helpers import count
from tests.support.audience_db import create_subscribers, sql_campaign, subscriber_rows
from tests.support.campaigns_folder import campaigns_folder, process_context  # noqa: F401

DAG_ID = "cr_sql_news"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private campaigns folder and sink directory."""
    with campaigns_folder(tmp_path, monkeypatch) as path:
        yield path


@pytest.fixture
def subscribers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "subscribers.db"
    for name, value in create_subscribers(path).items():
        monkeypatch.setenv(name, value)
    return path


def campaign_file(folder: Path, text: str) -> Path:
    path = folder / f"{DAG_ID}.yaml"
    path.write_text(text)
    return path


# ---------------------------------------------------------------- audience


def test_audience_prints_the_preview_as_json_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], folder: Path, subscribers: Path, tmp_path: Path
) -> None:
    campaign_file(folder, sql_campaign(DAG_ID))
    before = subscriber_rows(subscribers)

    preview = json.loads(cli(capsys, "audience", DAG_ID, "--limit", "2", "-o", "json")[0])

    assert (preview["campaign"], preview["source"], preview["count"]) == (DAG_ID, "sql", 4)
    assert preview["label"] == "SQL query on Connection subscribers_db"
    assert [(r["id"], r["email"], r["skipped"]) for r in preview["rows"]] == [
        ("s0", "ann@example.org", {"email": None}),
        ("s1", "not-an-address", {"email": "invalid_address"}),
    ]
    assert preview["sendable"] == {"email": 2}
    assert preview["skipped"] == {"email": {"invalid_address": 1, "no_consent": 1}}
    content = {"subject": "Hello Ann", "body": "News for Ann (s0)"}
    assert preview["messages"] == [{"channel": "email", "recipient": "s0", "position": 0, "content": content}]
    assert preview["problems"] == []
    assert subscriber_rows(subscribers) == before
    assert not (tmp_path / "sinks").exists() and [p.name for p in folder.iterdir()] == [f"{DAG_ID}.yaml"]


def test_audience_prints_a_table_with_one_message(
    capsys: pytest.CaptureFixture[str], folder: Path, subscribers: Path
) -> None:
    campaign_file(folder, sql_campaign(DAG_ID))
    out, _ = cli(capsys, "audience", DAG_ID, "--limit", "1")
    lines = out.splitlines()
    assert lines[0] == f"{DAG_ID}: 4 rows from SQL query on Connection subscribers_db (nothing written, nothing sent)."
    assert lines[1] == "  email: 2 to send to before duplicates; skipped: invalid_address 1, no_consent 1"
    assert "ann@example.org" in out and "not-an-address" not in out
    assert lines[-3:] == ["email message to s0 (row 0):", "  subject: Hello Ann", "  body: News for Ann (s0)"]


def test_audience_refuses_what_it_cannot_read_in_one_line(
    capsys: pytest.CaptureFixture[str], folder: Path, subscribers: Path
) -> None:
    assert fails(capsys, "audience", "cr_nowhere") == (
        "Error: No campaign 'cr_nowhere': no DAG and no file cr_nowhere.yaml in the campaigns folder."
    )
    python = fails(capsys, "audience", "cr_campaign")
    assert "The audience of cr_campaign cannot be previewed: cr_campaign is written in Python" in python
    assert fails(capsys, "audience", "cr_campaign", "--limit", "101") == "Error: --limit must be between 0 and 100."
    campaign_file(folder, sql_campaign(DAG_ID).replace("FROM subscribers", "FROM missing_table"))
    assert fails(capsys, "audience", DAG_ID) == (
        "Error: audience.query: the audience cannot be read: the query failed: no such table: missing_table"
    )


# ---------------------------------------------------------------- validate and create


def test_validate_reads_a_sql_audience(
    capsys: pytest.CaptureFixture[str], folder: Path, subscribers: Path, tmp_path: Path
) -> None:
    path = tmp_path / "news.yaml"
    path.write_text(sql_campaign(DAG_ID))
    assert cli(capsys, "validate", "--file", str(path))[0] == f"{path}: campaign {DAG_ID} is valid.\n"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            ("conn_id: subscribers_db", "conn_id: nowhere_db"),
            "Error: audience.conn_id: the Connection 'nowhere_db' does not exist",
        ),
        (
            ("($subscriber_id)", "($voucher)"),
            "Error: channels.email.body: the source has no column 'voucher' (unknown placeholder $voucher: the email "
            "body names a column the source lacks); it returns: subscriber_id, email, first_name, opted_in",
        ),
        (
            ("consent_column: opted_in", "consent_column: agreed"),
            "Error: audience.consent_column: the source has no column 'agreed' (the consent); it returns: "
            "subscriber_id, email, first_name, opted_in",
        ),
        (
            ("FROM subscribers", "FROM missing_table"),
            "Error: audience.query: the query failed: no such table: missing_table",
        ),
    ],
    ids=["unknown-connection", "missing-placeholder-column", "missing-consent-column", "query-error"],
)
def test_validate_and_create_refuse_an_audience_that_does_not_read(
    capsys: pytest.CaptureFixture[str],
    folder: Path,
    subscribers: Path,
    tmp_path: Path,
    change: tuple[str, str],
    error: str,
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(sql_campaign(DAG_ID).replace(*change))
    assert fails(capsys, "validate", "--file", str(bad)) == error
    assert fails(capsys, "create", "--file", str(bad), "--user", "alice", "--yes") == error
    assert list(folder.iterdir()) == [] and count(campaign_event) == 0
    assert not (tmp_path / "sinks").exists()


# ---------------------------------------------------------------- db-clean


def _freeze(sink_dir: Path, slot: str, run_id: str, *, old: bool = True) -> None:
    """A snapshot of slot ``slot`` written by ``run_id`` (long ago unless ``old`` is false)."""
    spec = parse_spec(yaml.safe_load(sql_campaign("cr_campaign")), sink_dir.parent / "cr_campaign.yaml")
    rows = [{"subscriber_id": f"s{n}", "email": f"u{n}@example.org", "opted_in": 1} for n in range(3)]
    with open_snapshots("cr_campaign", sink_dir=sink_dir) as store:
        store.freeze("cr_campaign", slot, run_id, "test", SnapshotPlan.of(spec.audience, spec.channels), rows)
        if old:
            store.execute(f"UPDATE {META_TABLE} SET created_at='2001-01-01T00:00:00Z' WHERE slot=?", (slot,))


def _snapshots(sink_dir: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(sink_dir / "cr_campaign" / "ledger.sqlite") as db:
        return sorted(
            (slot, run_id, rows)
            for slot, run_id, rows in db.execute(
                f"SELECT m.slot, m.run_id, (SELECT COUNT(*) FROM {SNAPSHOT_TABLE} s WHERE s.slot = m.slot) "
                f"FROM {META_TABLE} m"
            )
        )


def _delete_run(run_id: str) -> None:
    """What Airflow's Delete (or ``airflow db clean``) does to a run."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.delete(session.query(DagRun).filter_by(dag_id="cr_campaign", run_id=run_id).one())


def _restarted(run_id: str, original: str, slot_date: str) -> None:
    """Give ``run_id`` the conf of a restart of ``original`` (it reads ``original``'s snapshot)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    slot = {"logical_date": slot_date, "data_interval_start": None, "data_interval_end": None}
    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id="cr_campaign", run_id=run_id).one()
        run.conf = {"campaign_restart_of": original, "campaign_slot": slot}


def test_db_clean_removes_the_snapshots_of_runs_airflow_no_longer_has(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path, make_run: Callable[..., str]
) -> None:
    sink_dir = tmp_path / "sinks"
    kept = make_run("cr_campaign", state="success", logical_date=pendulum.datetime(2026, 2, 1, tz="UTC"))
    gone = make_run("cr_campaign", state="failed", logical_date=pendulum.datetime(2026, 2, 2, tz="UTC"))
    restart = make_run("cr_campaign", state="success", logical_date=pendulum.datetime(2026, 2, 4, tz="UTC"))
    _restarted(restart, "gone_original", "2026-02-03T00:00:00+00:00")
    _freeze(sink_dir, "logical:2026-02-01T00:00:00+00:00", kept)
    _freeze(sink_dir, "logical:2026-02-02T00:00:00+00:00", gone)
    _freeze(sink_dir, "logical:2026-02-03T00:00:00+00:00", "gone_original")  # its restart remains: kept
    _freeze(sink_dir, "logical:2026-02-05T00:00:00+00:00", "gone_recently", old=False)  # younger than the cutoff
    demo_ledger = sink_dir / "cr_depends" / "ledger.sqlite"
    demo_ledger.parent.mkdir()
    with sqlite3.connect(demo_ledger) as db:
        db.execute("CREATE TABLE delivery (x TEXT)")
    _delete_run(gone)
    everything = _snapshots(sink_dir)

    dry = json.loads(cli(capsys, "db-clean", "--older-than", "30", "--dry-run", "-o", "json")[0])
    assert dry["snapshots"] == 1 and _snapshots(sink_dir) == everything
    out, _ = cli(capsys, "db-clean", "--older-than", "30", "--yes")

    assert out.startswith("Removed 0 emails, 0 work-list entries and 0 actions older than ")
    assert out.rstrip().endswith("and 1 audience snapshots of runs Airflow no longer has.")
    assert _snapshots(sink_dir) == [
        ("logical:2026-02-01T00:00:00+00:00", kept, 3),
        ("logical:2026-02-03T00:00:00+00:00", "gone_original", 3),
        ("logical:2026-02-05T00:00:00+00:00", "gone_recently", 3),
    ]
    with sqlite3.connect(demo_ledger) as db:  # a ledger without snapshots is not even given the tables
        assert [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["delivery"]
    assert json.loads(cli(capsys, "db-clean", "--older-than", "30", "--yes", "-o", "json")[0])["snapshots"] == 0
