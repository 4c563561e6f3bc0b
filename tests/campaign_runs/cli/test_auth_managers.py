"""The CLI's ``--user`` and the email chain under SimpleAuthManager (``airflow standalone``'s).

The action runs as the real ``airflow`` executable (the plugin's commands wired through the entry point under
this auth manager, configured by the environment alone); the other commands run in this process under the same
configuration (``tests.support.auth_managers.active``), through Airflow's own CLI parser.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.campaign_runs.cli.test_runs import cli, ok, run_status, user_error
from tests.support import auth_managers
from tests.support.fixtures import outbox_rows

pytestmark = pytest.mark.slow  # runs the real `airflow campaigns` command


def test_cli_checks_users_against_simple_auth_manager_and_says_when_no_email_goes(
    tmp_path: Path, make_run: Any
) -> None:
    run_id = make_run("cr_campaign", state="failed")
    with auth_managers.active("simple", tmp_path):
        # A user SimpleAuthManager does not know: refused, nothing recorded.
        refused = cli("skip", "cr_campaign", run_id, "--note", "n", "--user", "ghost", "--yes")
        user_error(refused, "User 'ghost' does not exist", "simple_auth_manager_users", "alice")
        assert run_status("cr_campaign", run_id) == "failed" and outbox_rows() == []

        # A FAB-only user is no user of SimpleAuthManager's ("editor" exists only in FAB's table).
        user_error(cli("skip", "cr_campaign", run_id, "--note", "n", "--user", "editor", "--yes"), "'editor'")

        # alice is a configured user without an address: the action is done and recorded, the CLI says why no
        # email. A process of its own: the `airflow` executable, configured by its environment only.
        args = ("skip", "cr_campaign", run_id, "--note", "Duplicate", "--user", "alice", "--yes")
        done = ok(cli(*args, env=dict(os.environ)))
        said = f"Run {run_id} is skipped; the campaign goes on with its schedule. Campaign cr_campaign: "
        said += "failed -> skipped."
        assert said in done.out  # no email: the pages' sentence for an actor without an address
        assert "No email could be sent: User 'alice' has no email address." in done.out
        assert "airflow campaigns users set-email alice ADDRESS" in done.out
        assert run_status("cr_campaign", run_id) == "skipped"
        [row] = outbox_rows()
        assert (row["username"], row["status"], row["last_error"]) == (
            "alice",
            "undeliverable",
            "User 'alice' has no email address.",
        )

        user_error(cli("users", "set-email", "alice", "not-an-address"), "is not an email address")
        ok(cli("users", "set-email", "alice", "alice@own.example"))
        shown = ok(cli("users", "email", "alice", "-o", "json")).json()
    assert shown == {"username": "alice", "email": "alice@own.example", "source": "campaign_runs", "reason": None}
