"""Shared pytest fixtures: a real SMTP server, FAB users, test campaign DAGs and runs in the metadata DB."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pendulum
import pytest
from aiosmtpd.controller import Controller

from tests.support.airflow_env import free_port

TEST_DAGS = Path(__file__).parent / "dags"

USERS = {
    # username: (role, email)
    "admin": ("Admin", "admin@example.com"),
    "alice": ("Op", "alice@example.com"),
    "bob": ("Op", "bob@example.com"),
    "viewer": ("Viewer", "viewer@example.com"),
    "nomail": ("Op", ""),
    "editor": ("RunEditor", "editor@example.com"),
}
# A custom role that may edit DAG runs but not create them: Restart (which creates a run) is not for it.
CUSTOM_ROLES = {
    "RunEditor": [
        ("can_read", "DAGs"),
        ("can_edit", "DAGs"),
        ("can_read", "DAG Runs"),
        ("can_edit", "DAG Runs"),
        ("can_read", "Task Instances"),
        ("can_read", "Website"),
    ],
}
PASSWORD = "secret-password"


@dataclass
class SmtpSink:
    """A real SMTP server (aiosmtpd) that keeps every message it receives."""

    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content or envelope.content)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Message]:
        """Wait until at least ``count`` messages arrived; return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} emails, got {len(self.messages)}: {self.subjects()}")

    def subjects(self) -> list[str]:
        """Subjects received so far."""
        with self._lock:
            return [str(m["Subject"]) for m in self.messages]

    def forget(self) -> None:
        """Drop every message received so far (a server shared by tests, handed to the next one)."""
        with self._lock:
            self.messages.clear()


def start_smtp(port: int | None = None) -> tuple[Controller, SmtpSink]:
    """Start an aiosmtpd server on loopback."""
    sink = SmtpSink("127.0.0.1", port or free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    return controller, sink


@pytest.fixture
def smtp_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    """A real SMTP server; Airflow's ``[smtp]`` settings point at it for the test."""
    controller, sink = start_smtp()
    monkeypatch.setenv("AIRFLOW__SMTP__SMTP_PORT", str(sink.port))
    try:
        yield sink
    finally:
        controller.stop()


def body_of(message: Message) -> str:
    """The decoded text of every part of a message."""
    parts = message.walk() if message.is_multipart() else [message]
    texts = []
    for part in parts:
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            texts.append(payload.decode(part.get_content_charset() or "utf-8"))
    return "\n".join(texts)


def part_of(message: Message, content_type: str) -> str:
    """The decoded text of the message's one part of ``content_type`` (``text/plain``, ``text/html``)."""
    (part,) = [p for p in message.walk() if p.get_content_type() == content_type]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


def create_users(users: dict[str, tuple[str, str]] = USERS) -> None:
    """Create FAB users (idempotent) through FAB's own security manager."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        for role_name, grants in CUSTOM_ROLES.items():
            role = sm.find_role(role_name) or sm.add_role(role_name)
            for action, resource in grants:
                sm.add_permission_to_role(role, sm.create_permission(action, resource))
        for username, (role_name, email) in users.items():
            if sm.find_user(username=username):
                continue
            role = sm.find_role(role_name)
            user = sm.add_user(
                username=username,
                first_name=username.capitalize(),
                last_name="Test",
                email=email or f"{username}@placeholder.invalid",
                role=role,
                password=PASSWORD,
            )
            assert user, f"could not create user {username}"
            if not email:
                # FAB insists on an address when creating; a user without one is stored with an empty one.
                from airflow.providers.fab.auth_manager.models import User
                from sqlalchemy import update

                sm.session.execute(update(User).where(User.username == username).values(email=""))
                sm.session.commit()


def one_dag_user() -> str:
    """FAB user "slowonly": may read one campaign, cr_slow, and create none."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        role = sm.find_role("OnlySlow") or sm.add_role("OnlySlow")
        for action, resource in (("can_read", "DAG:cr_slow"), ("can_read", "DAG Runs"), ("can_read", "Website")):
            sm.add_permission_to_role(role, sm.create_permission(action, resource))
        if not sm.find_user(username="slowonly"):
            sm.add_user("slowonly", "Slow", "Only", "slowonly@example.com", role, password=PASSWORD)
    return "slowonly"


def sync_test_dags() -> None:
    """Parse the test campaign DAGs and write them to the metadata DB, as the dag-processor does."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(str(TEST_DAGS))
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Test campaigns and users in the (already migrated) metadata DB."""
    sync_test_dags()
    create_users()


_run_numbers = itertools.count(1)


@pytest.fixture
def make_run(airflow_db: None) -> Callable[..., Any]:
    """Create a DagRun of a test DAG in ``state`` with task instances in the given states."""
    from airflow.models.dagbag import DBDagBag
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    def make(
        dag_id: str = "cr_campaign",
        *,
        state: str = "running",
        ti_states: dict[str, str | None] | None = None,
        logical_date: pendulum.DateTime | None = None,
        run_id: str | None = None,
    ) -> str:
        number = next(_run_numbers)
        logical = logical_date or pendulum.datetime(2026, 1, 1, tz="UTC").add(hours=number)
        rid = run_id or f"test__{os.getpid()}_{number}"
        with create_session() as session:
            dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
            assert dag is not None, dag_id
            dag_run = dag.create_dagrun(
                run_id=rid,
                logical_date=logical,
                data_interval=(logical, logical.add(days=1)),
                run_after=logical,
                run_type=DagRunType.SCHEDULED,
                triggered_by=DagRunTriggeredByType.TEST,
                state=DagRunState(state),
                start_date=pendulum.now("UTC") if state != "queued" else None,
                session=session,
            )
            for ti in session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=dag_run.run_id):
                if ti_states and ti.task_id in ti_states:
                    ti.state = ti_states[ti.task_id]
            if state in ("success", "failed"):
                dag_run.end_date = pendulum.now("UTC")
        return rid

    return make


PROBE_KIND = "probe"


def outbox_rows() -> list[dict[str, Any]]:
    """Every row of the plugin's email outbox, oldest first, read straight from the table."""
    from airflow.utils.session import create_session
    from campaign_runs.tables import email_outbox
    from sqlalchemy import select

    with create_session() as session:
        return [dict(row) for row in session.execute(select(email_outbox).order_by(email_outbox.c.id)).mappings()]


_probe_numbers = itertools.count(1)


def wait_for_housekeeping_pass(sink: SmtpSink, timeout: float = 30.0) -> str:
    """Wait until a housekeeper (in whatever process) completes one more delivery pass; return the probe's subject.

    Writes a due email of kind ``probe`` straight into the outbox (no action sends it) and waits until
    ``sink`` receives it. Delivery takes due rows in id order, so the pass that sent the probe, the
    newest row, went through every email that was due before it.
    """
    from airflow.utils.session import create_session
    from campaign_runs.tables import email_outbox
    from sqlalchemy import insert

    token = f"{os.getpid()}-{next(_probe_numbers)}"
    subject = f"[probe] housekeeping pass {token}"
    now = pendulum.now("UTC")
    with create_session() as session:
        session.execute(
            insert(email_outbox).values(
                dag_id="probe",
                run_id=subject,
                kind=PROBE_KIND,
                username="probe",
                recipient="probe@example.com",
                subject=subject,
                body_html="<p>probe</p>",
                message_id=f"<probe.{token}@probe.invalid>",
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    deadline = time.monotonic() + timeout
    while subject not in sink.subjects():
        if time.monotonic() > deadline:
            raise AssertionError(f"no housekeeping pass delivered {subject!r} within {timeout}s: {sink.subjects()}")
        time.sleep(0.05)
    return subject


# What ``build_audience`` returns (XCom ``return_value``): a SQL source's snapshot, and the demo audience.
SQL_AUDIENCE: dict[str, Any] = {
    "source": "sql",
    "label": "SQL query on Connection subscribers_db",
    "size": 1250,
    "snapshot": {"rows": 1250, "seconds": 0.842, "source": "SQL query on Connection subscribers_db", "reused": False},
}
DEMO_AUDIENCE: dict[str, Any] = {
    "source": "demo",
    "label": "demo audience (synthetic)",
    "size": 100,
    "segment": "testers",
}


def report_audience(dag_id: str, run_id: str, value: dict[str, Any]) -> None:
    """What a ``build_audience`` task's return value leaves in Airflow's XCom table."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        XComModel.set("return_value", value, dag_id=dag_id, task_id="build_audience", run_id=run_id, session=session)


def frozen_channels(channels: dict[str, Any], delivery: str = "live") -> dict[str, Any]:
    """``build_audience``'s channels as a run froze them, for a campaign declaring ``channels`` (the YAML's shape).

    Built by the real factory (``parse_spec``, then ``asdict`` as ``build_audience`` does), so the keys are its own.
    """
    from dataclasses import asdict

    from campaign_runs.factory.factory import FROZEN_KEY
    from campaign_runs.factory.spec import parse_spec

    data = {
        "id": "frozen",
        "description": "Channels as a run froze them.",
        "owner": "growth",
        "owner_email": "growth@example.com",
        "schedule": {"cron": None, "start_date": "2026-01-01"},
        "audience": {"segment": "testers"},
        "channels": channels,
        "delivery": delivery,
    }
    return {FROZEN_KEY: {c.name: asdict(c) for c in parse_spec(data, TEST_DAGS / "frozen.yaml").channels}}


# Email over SMTP, SMS as a dry run (the shipped examples' channels); and every channel a dry run.
EMAIL_LIVE_SMS_DRY = {"email": {"subject": "Hi", "body": "Hello"}, "sms": {"text": "Hi", "delivery": "dry_run"}}


def report_frozen_channels(dag_id: str, run_id: str, channels: dict[str, Any], delivery: str = "live") -> None:
    """What a demo run's ``build_audience`` returns with its frozen ``channels`` (XCom ``return_value``)."""
    report_audience(dag_id, run_id, {**DEMO_AUDIENCE, **frozen_channels(channels, delivery)})


@pytest.fixture
def dry_run_tags() -> Iterator[Callable[..., None]]:
    """Add tags to a test DAG, as the factory tags a dry run (``dry-run``, ``dry-run:<channel>``); removed after."""
    from airflow.models.dag import DagTag
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    added: list[tuple[str, str]] = []

    def add(dag_id: str, *names: str) -> None:
        with create_session() as session:
            for name in names:
                session.add(DagTag(name=name, dag_id=dag_id))
                added.append((dag_id, name))

    yield add
    with create_session() as session:
        for dag_id, name in added:
            session.execute(delete(DagTag).where(DagTag.dag_id == dag_id, DagTag.name == name))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test's report carries the log tail of every Airflow process this test process is running."""
    from tests.support.processes import RUNNING

    report = yield
    if report.failed and RUNNING:
        for number, stack in enumerate(RUNNING):
            report.sections.append((f"Airflow processes ({number})", stack.logs(lines=120)))
        report.sections.append(("Airflow processes of no running stack", _other_airflow_processes()))
    return report


def _other_airflow_processes() -> str:
    """Every ``airflow`` process outside this test process's stacks: one left running may share the DB."""
    import psutil

    from tests.support.processes import RUNNING

    ours = set()
    for stack in RUNNING:
        for process in stack.processes.values():
            with suppress(psutil.Error):
                root = psutil.Process(process.pid)
                ours |= {root.pid, *(child.pid for child in root.children(recursive=True))}
    lines = []
    for process in psutil.process_iter(["pid", "ppid", "cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if "airflow" in command and process.info["pid"] not in ours and process.info["pid"] != os.getpid():
            lines.append(f"{process.info['pid']} (parent {process.info['ppid']}): {command[:160]}")
    return "\n".join(lines) or "none"
