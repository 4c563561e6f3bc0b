"""``airflow campaigns ...``: the real command line against the test metadata DB.

Commands run in this process through Airflow's own CLI parser (the confirmation prompt on a pseudo-terminal as
standard input); the tests that need a process of their own (another database, the ``airflow`` entry point
itself) run ``airflow`` as a subprocess.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select, text

from tests.support.cli_runner import run_in_process
from tests.support.fixtures import body_of

AIRFLOW = str(Path(sys.executable).parent / "airflow")
TIMEOUT = 180
ALL_DONE = {"build_audience": "success", "send_email": "success", "send_sms": "success", "summarise": "success"}


@dataclass
class Result:
    args: tuple[str, ...]
    rc: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def __str__(self) -> str:
        return f"airflow campaigns {' '.join(self.args)} -> {self.rc}\nstdout: {self.out}\nstderr: {self.err}"


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``airflow campaigns ARGS`` in this process, or as a subprocess with ``env`` (stdin not a terminal)."""
    if env is None:
        return Result(args, *run_in_process(["campaigns", *args]))
    return cli_subprocess(*args, env=env)


def cli_subprocess(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the real ``airflow`` executable (stdin not a terminal)."""
    proc = subprocess.run(
        [AIRFLOW, "campaigns", *args],
        env=env or dict(os.environ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return Result(args, proc.returncode, proc.stdout, proc.stderr)


def cli_many(*commands: tuple[str, ...]) -> list[Result]:
    """Run several independent commands, one after the other (in process: output is captured per command)."""
    return [cli(*command) for command in commands]


def ok(result: Result) -> Result:
    assert result.rc == 0, str(result)
    assert "Traceback" not in result.err, str(result)
    return result


def user_error(result: Result, *fragments: str) -> str:
    """Exit code 1, exactly one line on stderr naming the problem, no traceback."""
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert result.rc == 1, str(result)
    assert len(lines) == 1, str(result)
    assert lines[0].startswith("Error: "), str(result)
    for fragment in fragments:
        assert fragment in lines[0], str(result)
    return lines[0]


def run_status(dag_id: str, run_id: str) -> str:
    from campaign_runs import core

    return core.get_run(dag_id, run_id).status


def set_progress(dag_id: str, run_id: str, channel: str, total: int, sent: int, failed: int) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        XComModel.set(
            "campaign_progress",
            {"channel": channel, "total": total, "sent": sent, "failed": failed},
            dag_id=dag_id,
            task_id=f"send_{channel}",
            run_id=run_id,
            session=session,
        )


@pytest.mark.slow  # starts the `airflow` executable
def test_help_documents_every_command_and_option() -> None:
    from campaign_runs.cli.commands import get_cli_commands

    (group,) = get_cli_commands()
    assert group.name == "campaigns"
    names = {c.name for c in group.subcommands}
    assert names == {
        "list",
        "show",
        "runs",
        "run",
        "stop",
        "restart",
        "skip",
        "worklist",
        "reassign",
        "housekeeping",
        "emails",
        "monitor",
        "users",
        "db-clean",
        "audience",
        "suppressions",
        "check",
        "test-send",
        *("create", "validate", "edit", "export", "history", "trigger", "pause", "resume", "stop-all", "schema"),
    }
    nested = [(c, sub) for c in group.subcommands for sub in getattr(c, "subcommands", ())]
    assert {(c.name, sub.name) for c, sub in nested} == {
        ("emails", "list"),
        ("emails", "resend"),
        ("users", "set-email"),
        ("users", "email"),
        *(("suppressions", name) for name in ("list", "add", "remove", "import", "export")),
    }
    for _, sub in nested:
        assert sub.help and all(arg.kwargs.get("help") for arg in sub.args), sub.name
    for command in [c for c in group.subcommands if not hasattr(c, "subcommands")]:
        assert command.help
        for arg in command.args:
            assert arg.kwargs.get("help"), (command.name, arg.flags)
        flags = {f for arg in command.args for f in arg.flags}
        assert "-v" in flags, command.name
        if command.name in ("list", "show", "runs", "run", "worklist"):
            assert {"-o", "--output"} <= flags, command.name
        if command.name in ("stop", "restart", "skip"):
            assert {"--note", "--user", "--yes"} <= flags, command.name
    restart_flags = {f for c in group.subcommands if c.name == "restart" for a in c.args for f in a.flags}
    assert {"--unpause", "--resend-in-doubt"} <= restart_flags

    top = ok(cli_subprocess("--help"))  # the installed `airflow` entry point knows the group
    for name in names:
        assert name in top.out


def test_list_and_show(make_run: Any) -> None:
    make_run("cr_campaign", state="failed", ti_states={"send_sms": "failed"})
    make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    listing, table, shown = cli_many(("list", "-o", "json"), ("list",), ("show", "cr_campaign", "-o", "json"))

    campaigns = {c["id"]: c for c in ok(listing).json()}
    assert {"cr_campaign", "cr_depends", "cr_slow", "cr_stubborn"} <= set(campaigns)
    assert "cr_plain" not in campaigns
    campaign = campaigns["cr_campaign"]
    assert campaign["schedule"] == "0 9 * * MON"
    assert "Monday" in campaign["schedule_description"]
    assert campaign["timezone"] == "Europe/Paris"
    assert campaign["paused"] is False
    assert campaign["next_run_after"]
    assert campaign["last_status"] == "running"
    assert campaign["active_runs"] == 1
    assert campaign["open_worklist"] == 0
    assert campaign["channels"] == ["email", "sms"]

    lines = ok(table).out.splitlines()
    assert "id" in lines[0] and "timezone" in lines[0] and "next_run_after" in lines[0]
    row = next(line for line in lines if line.startswith("cr_campaign "))
    assert "Europe/Paris" in row and "0 9 * * MON" in row
    assert "cr_plain" not in table.out

    detail = ok(shown).json()
    assert isinstance(detail, dict)
    assert detail["id"] == "cr_campaign"
    assert detail["description"] == "Weekly test newsletter"
    assert detail["owners"] == ["growth"]
    assert detail["owner_emails"] == ["growth@example.com"]
    assert detail["audience"] == "testers"
    assert detail["audience_label"] == "demo audience (synthetic)"
    assert detail["params"] == {"audience_size": 100}
    assert "testers" in detail["doc_md"]
    assert "campaign" in detail["tags"]


def test_runs_schedule_with_upcoming_filters_and_limit(make_run: Any) -> None:
    from campaign_runs import core

    done = make_run("cr_campaign", state="success", ti_states=ALL_DONE)
    failed = make_run("cr_campaign", state="failed", ti_states={"send_sms": "failed"})
    skipped = make_run("cr_campaign", state="failed")
    core.skip_run("cr_campaign", skipped, actor="alice", note="Skipped for the test")
    running = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})

    default, with_skipped, only_failed, limited = cli_many(
        ("runs", "cr_campaign", "--upcoming", "3", "-o", "json"),
        ("runs", "cr_campaign", "--upcoming", "0", "--include-skipped", "-o", "json"),
        ("runs", "cr_campaign", "--state", "failed", "--state", "completed", "-o", "json"),
        ("runs", "cr_campaign", "--upcoming", "1", "--limit", "1", "-o", "plain"),
    )

    rows = ok(default).json()
    assert [r["status"] for r in rows[:3]] == ["scheduled"] * 3
    assert all(r["run_id"] is None for r in rows[:3])
    slots = [r["run_after"] for r in rows[:3]]
    assert slots == sorted(slots, reverse=True), "the soonest upcoming slot sits right above the past runs"
    assert [r["run_id"] for r in rows[3:]] == [running, failed, done]  # skipped hidden, newest first
    assert rows[3]["status"] == "running" and rows[3]["allowed_actions"] == ["stop"]
    assert rows[4]["status"] == "failed" and rows[4]["allowed_actions"] == ["restart", "skip"]
    assert rows[5]["status"] == "completed" and rows[5]["tasks_done"] == rows[5]["tasks_total"] == 4

    assert [r["run_id"] for r in ok(with_skipped).json()] == [running, skipped, failed, done]
    assert ok(with_skipped).json()[1]["status"] == "skipped"
    assert ok(with_skipped).json()[1]["note"] == "Skipped for the test"
    assert [r["run_id"] for r in ok(only_failed).json()] == [failed, done]

    lines = ok(limited).out.splitlines()
    assert lines[0].split()[:2] == ["run_id", "status"]
    assert "(upcoming)" in lines[1] and "scheduled" in lines[1]
    assert running in lines[2] and len([line for line in lines[1:] if line.strip()]) == 2
    assert "of 3 past runs" in limited.err


def test_run_details_progress_tasks_history(make_run: Any) -> None:
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success", "send_email": "running"})
    set_progress("cr_campaign", run_id, "email", total=200, sent=90, failed=10)
    detail_json, detail_table = cli_many(("run", "cr_campaign", run_id, "-o", "json"), ("run", "cr_campaign", run_id))

    detail = ok(detail_json).json()
    assert detail["run_id"] == run_id and detail["status"] == "running"
    assert detail["allowed_actions"] == ["stop"]
    progress = {p["channel"]: p for p in detail["progress"]}
    assert progress["email"] == {
        "channel": "email",
        "task_id": "send_email",
        "task_state": "running",
        "total": 200,
        "sent": 90,
        "failed": 10,
        "in_doubt": 0,  # a report without the key: nobody in doubt
        "suppressed": 0,
        "skipped": {},
        "percent": 50,
        "delivery": "",
        "dry_run": False,
    }
    assert progress["sms"]["total"] is None and progress["sms"]["task_id"] == "send_sms"
    assert {t["task_id"]: t["state"] for t in detail["tasks"]}["build_audience"] == "success"
    assert detail["history"] == []

    table = ok(detail_table).out
    for heading in ("Progress per channel", "Tasks", "History", "tasks_progress"):
        assert heading in table
    assert "send_email" in table and "200" in table


def test_run_details_give_the_audience_suppressed_and_skipped(make_run: Any) -> None:
    from tests.campaign_runs.core.test_restart_options import report_progress
    from tests.support.fixtures import DEMO_AUDIENCE, report_audience

    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    report_audience("cr_campaign", run_id, DEMO_AUDIENCE)
    skipped = {"no_consent": 4, "invalid_address": 1}
    report_progress(
        "cr_campaign", run_id, "email", {"total": 95, "sent": 10, "failed": 0, "suppressed": 2, "skipped": skipped}
    )
    failed = make_run("cr_campaign", state="failed", ti_states={"build_audience": "failed"})
    as_json, as_plain, failed_plain = cli_many(
        ("run", "cr_campaign", run_id, "-o", "json"),
        ("run", "cr_campaign", run_id, "-o", "plain"),
        ("run", "cr_campaign", failed, "-o", "plain"),
    )
    detail = ok(as_json).json()
    email = {p["channel"]: p for p in detail["progress"]}["email"]
    assert (email["total"], email["suppressed"], email["skipped"]) == (95, 2, {"no_consent": 4, "invalid_address": 1})
    assert (detail["audience"]["label"], detail["audience"]["demo"], detail["audience"]["recipients"]) == (
        "demo audience (synthetic)",
        True,
        100,
    )
    lines = [" ".join(line.split()) for line in ok(as_plain).out.splitlines()]
    assert "audience demo audience (synthetic): 100 recipients" in lines
    (row,) = [line for line in lines if line.startswith("email send_email")]
    # no task state yet; no transport known (nothing frozen) and not a dry run
    assert row == "email send_email 95 10 0 0 2 5 (invalid address: 1, no consent: 4) 10 no"
    lines = [" ".join(line.split()) for line in ok(failed_plain).out.splitlines()]
    assert "audience audience could not be read; see the build_audience log" in lines
    assert (
        f"audience_log /dags/cr_campaign/runs/{failed.replace(':', '%3A').replace('+', '%2B')}/tasks/build_audience"
        in lines
    )


def test_stop_flow_worklist_reassign_and_email(make_run: Any, smtp_server: Any) -> None:
    from campaign_runs import core

    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})

    refused = cli("stop", "cr_campaign", run_id, "--note", "Wrong audience", "--user", "alice")
    user_error(refused, "not a terminal", "--yes")
    assert run_status("cr_campaign", run_id) == "running"

    stopped = ok(cli("stop", "cr_campaign", run_id, "--note", "Wrong audience", "--user", "alice", "--yes"))
    assert f"Run {run_id} is stopping; " in stopped.out  # the pages' sentence, then the status change
    assert "Campaign cr_campaign: running -> stopping." in stopped.out
    assert run_status("cr_campaign", run_id) in ("stopping", "stopped")

    housekeeping = ok(cli("housekeeping", "--once"))
    assert "1 run finished stopping; 1 email sent" in housekeeping.out
    assert run_status("cr_campaign", run_id) == "stopped"
    (message,) = smtp_server.wait_for(1)
    assert "alice@example.com" in message["X-Envelope-To"]
    assert "stopped" in str(message["Subject"]) and run_id in str(message["Subject"])
    assert "Wrong audience" in body_of(message)

    mine, everyone = cli_many(("worklist", "--user", "alice", "-o", "json"), ("worklist", "--all", "-o", "json"))
    (entry,) = ok(mine).json()
    assert entry["dag_id"] == "cr_campaign" and entry["run_id"] == run_id
    assert entry["assignee"] == "alice" and entry["reason"] == "stopped" and entry["note"] == "Wrong audience"
    assert [e["run_id"] for e in ok(everyone).json()] == [run_id]

    # Reassigning is for work-list administrators on every surface: alice (Op) is refused, admin may.
    refused = cli("reassign", "cr_campaign", run_id, "--to", "bob", "--user", "alice", "--note", "Mine now")
    user_error(refused, "Only work-list administrators may reassign", "'alice'")
    moved = ok(cli("reassign", "cr_campaign", run_id, "--to", "bob", "--user", "admin", "--note", "Bob owns SMS"))
    assert "bob's work list" in moved.out
    assert [e["assignee"] for e in ok(cli("worklist", "--all", "-o", "json")).json()] == ["bob"]
    actions = [(h.action, h.actor, h.note) for h in core.run_history("cr_campaign", run_id)]
    assert actions == [("stop", "alice", "Wrong audience"), ("reassign", "admin", "Bob owns SMS")]


def table_rows(text: str) -> list[dict[str, str]]:
    """The rows of an ``airflow`` table (``a | b`` cells under a ``===+===`` rule), keyed by column."""
    lines = [[cell.strip() for cell in line.split("|")] for line in text.splitlines() if "|" in line]
    assert lines, f"no table in {text!r}"
    header, *rows = lines
    return [dict(zip(header, row, strict=True)) for row in rows]


def worklist_in_db() -> dict[str, dict[str, Any]]:
    """The work-list table, read directly, by run id."""
    from airflow.utils.session import create_session
    from campaign_runs.tables import worklist_entry

    with create_session() as session:
        return {row["run_id"]: dict(row) for row in session.execute(select(worklist_entry)).mappings()}


def test_worklist_with_entries_in_table_and_json(make_run: Any, smtp_server: Any) -> None:
    from campaign_runs import core

    wrong = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    legal = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    bobs = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    core.stop_run("cr_campaign", wrong, actor="alice", note="Wrong audience")
    core.stop_run("cr_campaign", legal, actor="alice", note="Legal review, see ticket 42")
    core.stop_run("cr_campaign", bobs, actor="bob", note="Bob stopped this one")
    assert worklist_in_db() == {}  # a run lands on the work list when its stop is finished
    assert "3 runs finished stopping; 3 emails sent" in ok(cli("housekeeping", "--once")).out

    stored = worklist_in_db()
    assert set(stored) == {wrong, legal, bobs}
    newest_first = sorted(stored.values(), key=lambda e: (e["created_at"], e["id"]), reverse=True)
    alices = [e for e in newest_first if e["assignee"] == "alice"]
    notes = {wrong: "Wrong audience", legal: "Legal review, see ticket 42", bobs: "Bob stopped this one"}
    expected = [
        {
            "id": e["id"],
            "dag_id": "cr_campaign",
            "run_id": e["run_id"],
            "assignee": "alice",
            "reason": "stopped",
            "note": notes[e["run_id"]],
            "created_at": e["created_at"].isoformat(),
            "resolved_at": None,
            "resolution": None,
        }
        for e in alices
    ]
    assert {e["run_id"] for e in expected} == {wrong, legal}

    table, as_json, everyone = cli_many(
        ("worklist", "--user", "alice"),
        ("worklist", "--user", "alice", "-o", "json"),
        ("worklist", "--all", "-o", "json"),
    )
    assert ok(as_json).json() == expected
    assert table_rows(ok(table).out) == [
        {key: "" if value is None else str(value) for key, value in row.items()} for row in expected
    ]
    assert bobs not in table.out
    assert [(e["run_id"], e["assignee"]) for e in ok(everyone).json()] == [
        (e["run_id"], e["assignee"]) for e in newest_first
    ]


def test_restart_skip_and_paused_campaign(make_run: Any, smtp_server: Any) -> None:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    to_restart = make_run("cr_campaign", state="failed", ti_states={"send_sms": "failed"})
    to_skip = make_run("cr_campaign", state="failed", ti_states={"send_sms": "failed"})
    with create_session() as session:
        session.scalar(select(DagModel).where(DagModel.dag_id == "cr_campaign")).is_paused = True

    paused = cli("restart", "cr_campaign", to_restart, "--note", "Audience fixed", "--user", "alice", "--yes")
    user_error(paused, "paused")
    restarted, skipped = cli_many(
        ("restart", "cr_campaign", to_restart, "--note", "Audience fixed", "--user", "alice", "--yes", "--unpause"),
        ("skip", "cr_campaign", to_skip, "--note", "Not worth it", "--user", "bob", "--yes", "-o", "json"),
    )
    assert f"Run {to_restart} is skipped and restarted as run restart__" in ok(restarted).out
    result = ok(skipped).json()
    assert result["action"] == "skip" and result["actor"] == "bob" and result["run_id"] == to_skip
    assert (result["status_before"], result["status_after"], result["replayed"]) == ("failed", "skipped", False)

    assert run_status("cr_campaign", to_restart) == "skipped"
    assert run_status("cr_campaign", to_skip) == "skipped"
    with create_session() as session:
        assert session.scalar(select(DagModel.is_paused).where(DagModel.dag_id == "cr_campaign")) is False
    messages = smtp_server.wait_for(2)
    recipients = sorted(str(m["X-Envelope-To"]) for m in messages)
    assert recipients == ["alice@example.com", "bob@example.com"]
    assert any("restarted as" in str(m["Subject"]) for m in messages)


def test_user_errors_exit_1_with_one_line(make_run: Any) -> None:
    done = make_run("cr_campaign", state="success", ti_states=ALL_DONE)
    failed = make_run("cr_campaign", state="failed")
    results = cli_many(
        ("show", "no_such_campaign"),
        ("runs", "cr_plain"),
        ("run", "cr_campaign", "no_such_run"),
        ("stop", "cr_campaign", done, "--note", "x", "--user", "alice", "--yes"),
        ("skip", "cr_campaign", failed, "--note", "x", "--user", "ghost", "--yes"),
        ("skip", "cr_campaign", failed, "--note", "   ", "--user", "alice", "--yes"),
        ("worklist", "--user", "ghost"),
        ("reassign", "cr_campaign", failed, "--to", "bob", "--user", "admin"),
    )
    expected = [
        ("Campaign 'no_such_campaign' does not exist",),
        ("not a campaign",),
        ("Run 'no_such_run'", "does not exist"),
        ("Stop is not allowed", "completed"),
        ("User 'ghost' does not exist",),
        ("note is required",),
        ("User 'ghost' does not exist",),
        ("on nobody's work list",),
    ]
    for result, fragments in zip(results, expected, strict=True):
        user_error(result, *fragments)
    assert run_status("cr_campaign", failed) == "failed"  # nothing changed


@contextmanager
def _table_hidden(name: str) -> Iterator[None]:
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(text(f"ALTER TABLE {name} RENAME TO {name}_hidden"))
    try:
        yield
    finally:
        with create_session() as session:
            session.execute(text(f"ALTER TABLE {name}_hidden RENAME TO {name}"))


@pytest.mark.slow  # starts the `airflow` executable
def test_database_not_migrated(tmp_path: Path, make_run: Any) -> None:
    make_run("cr_campaign", state="running")
    with _table_hidden("campaign_run_record"):
        missing_ours = cli("list")
    user_error(missing_ours, "Campaign Runs tables are missing", "airflow db migrate")

    empty = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'empty.db'}"}
    user_error(cli("list", env=empty), "not migrated", "airflow db migrate")


@contextmanager
def typed_on_a_terminal(reply: str) -> Iterator[None]:
    """Standard input a real terminal (a pseudo-terminal) on which ``reply`` and Enter were typed."""
    master, slave = pty.openpty()
    try:
        os.write(master, reply.encode() + b"\n")
        with open(slave, closefd=False) as terminal, pytest.MonkeyPatch.context() as patch:
            assert terminal.isatty()
            patch.setattr(sys, "stdin", terminal)
            yield
    finally:
        os.close(master)
        os.close(slave)


def test_confirmation_on_a_terminal(make_run: Any) -> None:
    """On a terminal the command asks; ``y`` stops the run, ``n`` cancels it and changes nothing.

    In this process with a pseudo-terminal as standard input: the ``airflow`` entry point is covered by
    ``test_help_documents_every_command_and_option``; starting it twice here cost seconds each.
    """
    yes_run = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    no_run = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})

    def answer(run_id: str, reply: str) -> Result:
        with typed_on_a_terminal(reply):
            return cli("stop", "cr_campaign", run_id, "--note", "Typed", "--user", "alice")

    yes, no = answer(yes_run, "y"), answer(no_run, "n")
    assert yes.rc == 0, yes
    assert "[y/N]" in yes.out and f"Run {yes_run} is stopping; " in yes.out
    assert no.rc == 1 and "cancelled" in no.err and "Traceback" not in no.err, no
    assert run_status("cr_campaign", yes_run) in ("stopping", "stopped")
    assert run_status("cr_campaign", no_run) == "running"


@pytest.mark.parametrize("output", ["table", "json", "yaml", "plain"])
def test_output_formats_render_in_process(output: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every ``--output`` renders the same rows (in-process: no subprocess needed per format)."""
    import argparse

    from campaign_runs.cli import runs as campaigns_cli

    campaigns_cli.campaigns_worklist(
        argparse.Namespace(user="alice", all=False, include_resolved=True, output=output, verbose=False)
    )
    printed = capsys.readouterr().out
    if output == "json":
        assert json.loads(printed) == []
    elif output == "yaml":
        assert yaml.safe_load(printed) == []
    else:
        assert "No data found" in printed


@pytest.mark.parametrize(
    ("command", "values", "message"),
    [
        ("runs", {"campaign": "cr_campaign", "upcoming": None, "limit": 0, "page": 1}, "--limit must be 1 or more"),
        ("runs", {"campaign": "cr_campaign", "upcoming": -1, "limit": None, "page": 1}, "--upcoming must be 0 or more"),
        ("worklist", {"user": "alice", "all": True, "include_resolved": False}, "either --user USERNAME or --all"),
        ("housekeeping", {"once": True, "interval": 0.0}, "--interval must be more than 0"),
    ],
)
def test_argument_errors_in_process(command: str, values: dict[str, Any], message: str) -> None:
    import argparse

    from campaign_runs.cli.commands import get_cli_commands

    (handler,) = [c.func for c in get_cli_commands()[0].subcommands if c.name == command]
    args = argparse.Namespace(output="json", verbose=False, state=None, include_skipped=False, **values)
    with pytest.raises(SystemExit) as exit_info:
        handler(args)
    assert str(exit_info.value).startswith("Error: ") and message in str(exit_info.value)


def test_restart_resend_in_doubt_and_db_clean(make_run: Any, smtp_server: Any) -> None:
    from tests.campaign_runs.core.helpers import dag_run

    failed = make_run("cr_campaign", state="failed")
    set_progress("cr_campaign", failed, "email", total=600, sent=30, failed=0)
    restarted, dry, unconfirmed, bad = cli_many(
        (
            "restart",
            "cr_campaign",
            failed,
            "--note",
            "Resend",
            "--user",
            "alice",
            "--yes",
            "--resend-in-doubt",
            "-o",
            "json",
        ),
        ("db-clean", "--older-than", "30", "--dry-run"),
        ("db-clean", "--older-than", "30"),
        ("db-clean", "--older-than", "0", "--yes"),
    )
    new_run_id = ok(restarted).json()["new_run_id"]
    assert dag_run("cr_campaign", new_run_id).conf["campaign_resend_in_doubt"] is True
    assert ok(dry).out.startswith("Would remove 0 emails, 0 work-list entries and 0 actions older than ")
    user_error(unconfirmed, "pass --yes to confirm")
    user_error(bad, "--older-than must be 1 day or more")
    refused = cli("stop", "cr_campaign", new_run_id, "--note", "x", "--user", "alice", "--yes", "--resend-in-doubt")
    assert refused.rc == 2 and "unrecognized arguments: --resend-in-doubt" in refused.err  # a restart-only option


def test_emails_list_and_resend_a_failed_email(make_run: Any, smtp_server: Any) -> None:
    from airflow.utils.session import create_session
    from campaign_runs import core
    from campaign_runs.tables import email_outbox
    from sqlalchemy import update

    run_id = make_run("cr_campaign", state="failed")
    core.skip_run("cr_campaign", run_id, actor="alice", note="Skip it")
    assert core.wait_for_deliveries(30)
    smtp_server.wait_for(1)
    with create_session() as session:  # as delivery leaves it after its last failed attempt
        session.execute(update(email_outbox).values(status="failed", attempts=10, last_error="SMTPDataError: 554"))
    listed, not_admin, unknown = cli_many(
        ("emails", "list", "--status", "failed", "-o", "json"),
        ("emails", "resend", "1", "--user", "alice"),
        ("emails", "resend", "999999", "--user", "admin"),
    )
    [email] = ok(listed).json()
    assert (email["run_id"], email["status"], email["attempts"], email["recipient"]) == (
        run_id,
        "failed",
        10,
        "alice@example.com",
    )
    user_error(not_admin, "administrators")
    user_error(unknown, "999999")
    resent = ok(cli("emails", "resend", str(email["id"]), "--user", "admin"))
    assert f"Email {email['id']} to alice@example.com is pending again" in resent.out
    messages = smtp_server.wait_for(2)
    assert messages[0]["Message-ID"] == messages[1]["Message-ID"]
    assert ok(cli("emails", "list", "--status", "failed", "-o", "json")).json() == []


# ---------------------------------------------------------------- the acting user's rights

RUN_COMMANDS = ("stop", "restart", "skip")
CAMPAIGN_COMMANDS = ("trigger", "pause", "resume", "stop-all")


def _set_paused(dag_id: str, paused: bool) -> None:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == dag_id).values(is_paused=paused))


def _campaign_state(dag_id: str = "cr_campaign") -> dict[str, Any]:
    """Everything an action could change: Airflow's runs and pause flag, the plugin's statuses and records."""
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from campaign_runs.tables import campaign_event, email_outbox, run_action, worklist_entry

    from tests.campaign_runs.core.helpers import count

    with create_session() as session:
        runs = sorted(session.execute(select(DagRun.run_id, DagRun.state).where(DagRun.dag_id == dag_id)).all())
        paused = session.scalar(select(DagModel.is_paused).where(DagModel.dag_id == dag_id))
    return {
        "runs": [(run_id, str(state)) for run_id, state in runs],
        "statuses": {run_id: run_status(dag_id, run_id) for run_id, _ in runs},
        "paused": paused,
        "rows": [count(table) for table in (campaign_event, email_outbox, run_action, worklist_entry)],
    }


def _acting(command: str, run_id: str, username: str) -> tuple[str, ...]:
    target = ("cr_campaign", run_id) if command in RUN_COMMANDS else ("cr_campaign",)
    return (command, *target, "--note", "Not mine to do", "--user", username, "--yes")


def _set_up(command: str, make_run: Any) -> str:
    """A run (and pause flag) the command is allowed for: the refusal must come from the user's rights."""
    run_id = make_run("cr_campaign", state="running" if command in ("stop", "stop-all") else "failed")
    _set_paused("cr_campaign", command == "resume")
    return str(run_id)


@pytest.mark.parametrize("command", RUN_COMMANDS + CAMPAIGN_COMMANDS)
def test_a_viewer_is_refused_every_action_and_nothing_changes(command: str, make_run: Any) -> None:
    run_id = _set_up(command, make_run)
    before = _campaign_state()

    refused = cli(*_acting(command, run_id, "viewer"))

    user_error(
        refused, "User 'viewer' may not", "campaign 'cr_campaign'", "on the campaign's runs", "nothing was changed"
    )
    assert _campaign_state() == before


@pytest.mark.parametrize("command", ["restart", "trigger"])
def test_creating_a_run_needs_create_rights_as_on_the_pages(command: str, make_run: Any) -> None:
    # "editor" (RunEditor) may edit the runs of every DAG but not create one: Restart and Run now are refused.
    run_id = _set_up(command, make_run)
    before = _campaign_state()
    user_error(cli(*_acting(command, run_id, "editor")), "User 'editor' may not", "edit and create rights")
    assert _campaign_state() == before


def test_a_user_with_edit_rights_on_the_runs_may_act_whatever_the_role(make_run: Any) -> None:
    run_id = _set_up("skip", make_run)
    ok(cli(*_acting("skip", run_id, "editor")))  # a custom role, not Op: the rights decide
    assert run_status("cr_campaign", run_id) == "skipped"
    ok(cli(*_acting("pause", run_id, "admin")))
    assert _campaign_state()["paused"] is True


def test_edit_needs_edit_rights_on_the_runs_too(make_run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
    from campaign_runs.core import definitions
    from campaign_runs.settings import get_settings

    from tests.support.definitions import valid_definition

    # A role with "Campaign Definitions" but only read rights on the DAGs: Configure is not for it (pages, API).
    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        role = sm.find_role("DefinitionsOnly") or sm.add_role("DefinitionsOnly")
        for action, resource in (
            ("can_read", "DAGs"),
            ("can_read", "DAG Runs"),
            ("can_edit", "Campaign Definitions"),
            ("can_create", "Campaign Definitions"),
            ("can_read", "Campaign Definitions"),
        ):
            sm.add_permission_to_role(role, sm.create_permission(action, resource))
        if not sm.find_user(username="definer"):
            sm.add_user("definer", "Def", "Iner", "definer@example.com", role, password="secret-password")
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(tmp_path))
    get_settings.cache_clear()
    text_before = valid_definition("cr_cli_rights")
    definitions.create_definition(text_before, actor="alice", note="")

    refused = cli("edit", "cr_cli_rights", "--set", "audience.size=9", "--user", "definer", "--yes")

    user_error(refused, "User 'definer' may not configure campaign 'cr_cli_rights'", "edit rights")
    assert (tmp_path / "cr_cli_rights.yaml").read_text() == text_before
    ok(cli("edit", "cr_cli_rights", "--set", "audience.size=9", "--user", "alice", "--yes"))


def test_simple_auth_manager_users_get_the_same_rule(make_run: Any, tmp_path: Path) -> None:
    from tests.support import auth_managers

    run_id = _set_up("skip", make_run)
    with auth_managers.active("simple", tmp_path):
        before = _campaign_state()
        user_error(cli(*_acting("skip", run_id, "viewer")), "User 'viewer' may not skip runs of")
        assert _campaign_state() == before
        ok(cli(*_acting("skip", run_id, "alice")))  # role USER may edit DAG runs under SimpleAuthManager
    assert run_status("cr_campaign", run_id) == "skipped"
