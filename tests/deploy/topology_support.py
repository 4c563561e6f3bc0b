"""The Celery topology test's stack handle: HTTP calls to the plugin and Airflow, email and outbox checks, users."""

from __future__ import annotations

import collections
import contextlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from tests.support.airflow_env import VENV_BIN
from tests.support.fixtures import PASSWORD, SmtpSink
from tests.support.processes import AirflowStack

STOP_GRACE_SECONDS = 8
EMAIL_CLAIM_SECONDS = 10
PREFIX = "/campaign-runs"
USERS = {"alice": ("Op", "alice@example.com"), "admin": ("Admin", "admin@example.com")}  # username: (role, email)
TIMINGS: list[str] = []


def timing(line: str) -> None:
    """Record and print one ``TIMING`` line (all of them are shown again when the module ends)."""
    TIMINGS.append(f"TIMING {line}")
    print(f"\nTIMING {line}", flush=True)


def subject(kind: str, dag_id: str, run_id: str, new_run_id: str = "") -> str:
    """The subject the plugin gives an email of ``kind`` (default ``[campaign_runs] email_subject_prefix``)."""
    if kind == "restarted":
        return f"[Campaign Runs] Run {run_id} of {dag_id} restarted as {new_run_id}"
    return f"[Campaign Runs] Run {run_id} of {dag_id} {kind}"


@dataclass
class Topology:
    """The running stack plus the handles the scenarios need."""

    stack: AirflowStack
    env: dict[str, str]
    smtp: Controller
    sink: SmtpSink
    engine: sa.engine.Engine
    token: str
    api_names: list[str] = field(default_factory=lambda: ["api-1", "api-2"])
    expected_subjects: list[str] = field(default_factory=list)
    # Emails whose outbox claim a killed process may have held: only these may arrive a second time.
    claimed_by_killed: set[str] = field(default_factory=set)

    # ------------------------------------------------------------ failures and waiting

    def fail(self, message: str) -> AssertionError:
        """An AssertionError carrying the tails of every process's log and the mail received."""
        return AssertionError(
            f"{message}\n---- emails received: {self.sink.subjects()}\n---- process logs:\n{self.stack.logs()}"
        )

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            raise self.fail(message)

    def wait(self, probe: Callable[[], Any], timeout: float, message: str, interval: float = 0.1) -> tuple[Any, float]:
        """Poll ``probe`` until it returns something truthy; return (value, seconds it took)."""
        start = time.monotonic()
        last: Any = None
        while time.monotonic() - start < timeout:
            try:
                last = probe()
            except (httpx.HTTPError, sa.exc.OperationalError) as error:  # a server restarting
                last = error
            else:
                if last:
                    return last, time.monotonic() - start
            time.sleep(interval)
        raise self.fail(f"timed out after {timeout}s waiting for {message}; last value: {last!r}")

    # ------------------------------------------------------------ HTTP

    def client(self, name: str = "api-1") -> httpx.Client:
        return httpx.Client(
            base_url=self.stack.url(name), headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )

    def get(self, path: str, name: str = "api-1") -> Any:
        with self.client(name) as client:
            response = client.get(path)
        self.check(response.status_code == 200, f"GET {path} on {name}: {response.status_code} {response.text}")
        return response.json()

    def unpause(self, dag_id: str) -> bool:
        """Unpause a DAG through the public REST API; False while the dag-processor has not written it yet."""
        with self.client() as client:
            response = client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        return response.status_code == 200 and response.json()["is_paused"] is False

    def trigger(self, dag_id: str, name: str = "api-1") -> str:
        """Trigger a run through Airflow's public REST API."""
        with self.client(name) as client:
            response = client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})
        self.check(response.status_code == 200, f"trigger {dag_id}: {response.status_code} {response.text}")
        return str(response.json()["dag_run_id"])

    def act(
        self, action: str, dag_id: str, run_id: str, note: str, name: str = "api-1"
    ) -> tuple[dict[str, Any], float]:
        """POST a Stop / Restart / Skip through the plugin API; returns (result, seconds the answer took)."""
        started = time.monotonic()
        with self.client(name) as client:
            response = client.post(
                f"{PREFIX}/campaigns/{dag_id}/runs/{quote(run_id, safe='')}/{action}", json={"note": note}
            )
        took = time.monotonic() - started
        self.check(
            response.status_code == 200, f"{action} {dag_id} {run_id} on {name}: {response.status_code} {response.text}"
        )
        return response.json(), took

    def run(self, dag_id: str, run_id: str, name: str = "api-1") -> dict[str, Any]:
        """The run's details from the plugin API."""
        with self.client(name) as client:
            response = client.get(f"{PREFIX}/campaigns/{dag_id}/runs/{quote(run_id, safe='')}")
        self.check(response.status_code == 200, f"GET run {dag_id} {run_id}: {response.status_code} {response.text}")
        return dict(response.json())

    def status(self, dag_id: str, run_id: str, name: str = "api-1") -> str:
        return str(self.run(dag_id, run_id, name)["status"])

    def task_state(self, dag_id: str, run_id: str, name: str = "api-1", task_id: str = "send_email") -> str | None:
        for task in self.run(dag_id, run_id, name).get("tasks", []):
            if task["task_id"] == task_id:
                return task["state"]
        return None

    def wait_sending(self, dag_id: str, run_id: str, name: str = "api-1", timeout: float = 180) -> float:
        """Wait until the run is running and its sending task runs on the worker."""

        def sending() -> bool:
            details = self.run(dag_id, run_id, name)
            states = {t["task_id"]: t["state"] for t in details.get("tasks", [])}
            return details["status"] == "running" and states.get("send_email") == "running"

        return self.wait(sending, timeout, f"{dag_id} {run_id} to be running and sending")[1]

    def wait_status(
        self, dag_id: str, run_id: str, wanted: str, timeout: float, name: str = "api-1"
    ) -> tuple[float, list[str]]:
        """Wait for ``wanted``; return the seconds it took and every status seen on the way."""
        seen: list[str] = []

        def reached() -> bool:
            value = self.status(dag_id, run_id, name)
            if not seen or seen[-1] != value:
                seen.append(value)
            return value == wanted

        took = self.wait(reached, timeout, f"{dag_id} {run_id} to be {wanted} (seen {seen})", interval=0.05)[1]
        return took, seen

    def worklist(self, name: str = "api-1") -> list[dict[str, Any]]:
        return list(self.get(f"{PREFIX}/worklist", name)["items"])

    # ------------------------------------------------------------ email

    def expect_email(self, wanted: str, timeout: float = 60) -> float:
        """Wait for the email with subject ``wanted``; returns the seconds it took."""
        self.expected_subjects.append(wanted)
        return self.wait(lambda: wanted in self.sink.subjects(), timeout, f"email {wanted!r}", interval=0.05)[1]

    def assert_each_email_once(self, settle: float = 3.0) -> None:
        """After a few more housekeeping passes, every expected email arrived exactly once, and nothing else."""
        time.sleep(settle)
        messages = self.sink.wait_for(0)
        counts = collections.Counter(str(m["Subject"]) for m in messages)
        message_ids: dict[str, set[str]] = collections.defaultdict(set)
        for message in messages:
            message_ids[str(message["Subject"])].add(str(message["Message-ID"]))
        retried = {row.subject for row in self.outbox() if row.attempts > 1}
        # A process killed after the SMTP server took an email but before it recorded "sent" cannot be told from
        # one killed before: SMTP has no two-phase commit. The outbox then sends the row again, with the same
        # Message-ID, which mail servers and clients drop. That one copy is allowed for an email a scenario
        # marked as claimed by the process it killed (``claimed_by_killed``); any other copy is a defect.
        resendable = retried & self.claimed_by_killed
        doubled = {
            s: n for s, n in counts.items() if n != 1 and not (n == 2 and len(message_ids[s]) == 1 and s in resendable)
        }
        self.check(not doubled, f"emails received more than once: {doubled}")
        several = {s: sorted(ids) for s, ids in message_ids.items() if len(ids) != 1}
        self.check(not several, f"one email sent as several messages: {several}")
        missing = [s for s in self.expected_subjects if s not in counts]
        self.check(not missing, f"emails never received: {missing}")
        unexpected = [s for s in counts if s not in self.expected_subjects]
        self.check(not unexpected, f"unexpected emails: {unexpected}")

    def outbox(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT id, kind, run_id, subject, status, attempts, last_error, claimed_until, sent_at "
                        "FROM campaign_email_outbox ORDER BY id"
                    )
                )
            )

    def outbox_row(self, wanted_subject: str) -> Any:
        return next((r for r in self.outbox() if r.subject == wanted_subject), None)

    def restart_smtp(self) -> None:
        """Start the SMTP server again on the same port, keeping the messages received so far."""
        self.smtp = Controller(self.sink, hostname=self.sink.host, port=self.sink.port)
        self.smtp.start()

    def ti_pid(self, dag_id: str, run_id: str, task_id: str = "send_email") -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT pid FROM task_instance WHERE dag_id = :d AND run_id = :r AND task_id = :t"),
                {"d": dag_id, "r": run_id, "t": task_id},
            ).scalar()


def create_user(env: dict[str, str], username: str) -> subprocess.Popen[bytes]:
    """Start ``airflow users create`` for ``username`` as a subprocess with the stack's environment."""
    role, email = USERS[username]
    command = ["users", "create", "--username", username, "--role", role, "--email", email]
    command += ["--firstname", username.capitalize(), "--lastname", "Test", "--password", PASSWORD]
    return subprocess.Popen(
        [str(VENV_BIN / "airflow"), *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def finish(process: subprocess.Popen[bytes]) -> None:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output.decode(errors="replace")[-3000:]


def login(base_url: str, username: str) -> str:
    response = httpx.post(f"{base_url}/auth/token", json={"username": username, "password": PASSWORD}, timeout=30)
    assert response.status_code in (200, 201), f"login {username}: {response.status_code} {response.text}"
    return str(response.json()["access_token"])


def show_timings(request: pytest.FixtureRequest) -> None:
    if not TIMINGS:
        return
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n" + "\n".join(TIMINGS), flush=True)
