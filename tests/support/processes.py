"""Start real Airflow processes (api-server, scheduler, dag-processor, triggerer, celery worker) for tests.

Each process runs in its own process group and is stopped by that group, never by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import psutil

from tests.support.airflow_env import VENV_BIN, free_port
from tests.support.subscribers import subscribers_environment

COMMANDS: dict[str, list[str]] = {
    "api-server": ["api-server", "--host", "127.0.0.1"],
    # No log server: the api-server reads the task logs from the shared log folder, and its fixed port (8793)
    # would be taken by whichever stack of the test session started first.
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
    "celery-worker": ["celery", "worker", "--concurrency", "2"],
}
EXIT_GRACE = 1.0  # seconds a process whose shutdown is done gets to exit before SIGKILL (see stop_all)


@dataclass
class AirflowProcess:
    """One Airflow component started as a child process in its own process group."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process, logging to ``log_path``."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            [str(VENV_BIN / "airflow"), *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Signal the whole process group, wait, then SIGKILL what is left.

        10 s: an API server still holding a browser's keep-alive connections waits for them until then.
        """
        self.signal(sig)
        self.reap(time.monotonic() + timeout)

    def signal(self, sig: int, *, group: bool = True) -> None:
        """Send ``sig`` to the whole process group, or (``group=False``) to the process alone."""
        if self.popen is None:
            return
        with suppress(ProcessLookupError):
            if group:
                os.killpg(self.popen.pid, sig)
            else:
                self.popen.send_signal(sig)

    def outside_group(self) -> list[psutil.Process]:
        """The process's descendants in process groups of their own (task processes)."""
        if not self.alive():
            return []
        assert self.popen is not None
        try:
            descendants = psutil.Process(self.popen.pid).children(recursive=True)
        except psutil.Error:
            return []
        return [child for child in descendants if _group(child) not in (None, self.popen.pid)]

    def reap(self, deadline: float) -> None:
        """Wait for the process until ``deadline`` (``time.monotonic()``), then SIGKILL what is left of its group."""
        if self.popen is None:
            return
        with suppress(subprocess.TimeoutExpired):
            self.popen.wait(max(0.0, deadline - time.monotonic()))
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def kill(self) -> None:
        """Kill the process group at once (a crash)."""
        self.stop(signal.SIGKILL, timeout=10)

    def tail(self, lines: int = 60) -> str:
        """The end of the process's log."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _reap_when(process: AirflowProcess, done: Callable[[], bool], deadline: float) -> None:
    """Wait until the process has exited or ``done()`` (then ``EXIT_GRACE`` more), at most until ``deadline``."""
    while process.alive() and time.monotonic() < deadline:
        with suppress(psutil.Error):
            if done():
                break
        time.sleep(0.05)
    process.reap(min(deadline, time.monotonic() + EXIT_GRACE))


def _childless(process: AirflowProcess) -> bool:
    """Whether the process has no child process left (its workers, parsers, log server ended and reaped)."""
    return not psutil.Process(process.pid).children()


def _closed(port: int) -> bool:
    """Whether nothing accepts connections on the loopback ``port`` any more."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _group(process: psutil.Process) -> int | None:
    """The process group of ``process``, None once it is gone."""
    try:
        return os.getpgid(process.pid)
    except ProcessLookupError:
        return None


@dataclass
class AirflowStack:
    """A set of Airflow processes sharing one environment."""

    env: dict[str, str]
    log_dir: Path
    processes: dict[str, AirflowProcess] = field(default_factory=dict)
    api_ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The shipped weekly_newsletter reads Connection subscribers_db, as under make run; an env that names
        # its own keeps it.
        self.env = {**subscribers_environment(), **self.env}

    def start(self, component: str, *, name: str | None = None, port: int | None = None) -> AirflowProcess:
        """Start ``component``; an api-server gets a free port unless given one."""
        name = name or component
        args = list(COMMANDS[component])
        if component == "api-server":
            port = port or free_port()
            args += ["--port", str(port)]
            self.api_ports[name] = port
        process = AirflowProcess(name, args, dict(self.env), self.log_dir / f"{name}.log")
        process.start()
        self.processes[name] = process
        return process

    def url(self, name: str = "api-server") -> str:
        """Base URL of an api-server of the stack."""
        return f"http://127.0.0.1:{self.api_ports[name]}"

    def wait_healthy(self, name: str = "api-server", timeout: float = 120.0) -> None:
        """Wait until the api-server answers its health endpoint."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.processes[name].alive():
                raise AssertionError(f"{name} exited:\n{self.processes[name].tail()}")
            try:
                with urllib.request.urlopen(f"{self.url(name)}/api/v2/monitor/health", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"{name} not healthy after {timeout}s:\n{self.processes[name].tail()}")

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stop every process this stack started: all but the api-servers at once, then the api-servers at once.

        The task processes still running are killed first (the Task SDK puts each in a process group of its own; a
        scheduler's LocalExecutor waits for them). Each other process gets SIGTERM alone, so that it ends its own
        children (a LocalExecutor worker killed by a group signal can leave its task queue locked: the scheduler
        then waits for it until the SIGKILL). The api-servers go last: the ending tasks report to them.

        A process is SIGKILLed with its group ``EXIT_GRACE`` after its shutdown is done (its children gone; an
        api-server's port closed): what it would do after that is Python's interpreter teardown, seconds long
        for a process this size.
        """
        processes = list(self.processes.values())
        others = [p for p in processes if p.name not in self.api_ports]
        for task in [task for process in others for task in process.outside_group()]:
            with suppress(psutil.Error):
                task.kill()
        for process in others:
            process.signal(signal.SIGTERM, group=False)
        deadline = time.monotonic() + timeout
        for process in others:
            _reap_when(process, partial(_childless, process), deadline)
        servers = [p for p in processes if p.name in self.api_ports]
        for process in servers:
            process.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in servers:
            _reap_when(process, partial(_closed, self.api_ports[process.name]), deadline)

    def logs(self, lines: int = 60) -> str:
        """The tail of every process's log, for failure messages."""
        return "\n".join(f"==== {name}\n{p.tail(lines)}" for name, p in self.processes.items())


def settle_earlier_modules() -> None:
    """Leave a new stack's scheduler none of the runs earlier modules left unfinished in this worker's metadata DB.

    In-process tests create runs no process will ever run, and a stopped stack may leave some. A new scheduler would
    examine them before its own module's (oldest scheduling decision first, 20 a loop) and spend its executor slots
    on tasks whose DAG files its dags folder does not hold. They end failed, their unfinished tasks too.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import State
    from sqlalchemy import or_, select, tuple_, update

    unfinished_runs = select(DagRun.dag_id, DagRun.run_id).where(DagRun.state.in_(("queued", "running")))
    with create_session() as session:
        session.execute(
            update(TaskInstance)
            .where(
                tuple_(TaskInstance.dag_id, TaskInstance.run_id).in_(unfinished_runs),
                or_(TaskInstance.state.is_(None), TaskInstance.state.in_(list(State.unfinished))),
            )
            .values(state="failed"),
            execution_options={"synchronize_session": False},
        )
        session.execute(
            update(DagRun)
            .where(DagRun.state.in_(("queued", "running")))
            .values(state="failed", end_date=datetime.now(UTC)),
            execution_options={"synchronize_session": False},
        )


RUNNING: list[AirflowStack] = []  # the stacks of this test process, for the process logs of a failed test


@contextmanager
def airflow_stack(env: dict[str, str], log_dir: Path) -> Iterator[AirflowStack]:
    """An ``AirflowStack`` whose processes are all stopped on exit."""
    stack = AirflowStack(env=env, log_dir=log_dir)
    RUNNING.append(stack)
    try:
        yield stack
    finally:
        RUNNING.remove(stack)
        stack.stop_all()


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.1, message: str = "") -> float:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until true; return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
