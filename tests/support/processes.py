"""Start real Airflow processes (api-server, scheduler, dag-processor, triggerer, celery worker) for tests.

Each process runs in its own process group and is stopped by that group, never by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.airflow_env import VENV_BIN, free_port
from tests.support.subscribers import subscribers_environment

COMMANDS: dict[str, list[str]] = {
    "api-server": ["api-server", "--host", "127.0.0.1"],
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
    "celery-worker": ["celery", "worker", "--concurrency", "2"],
}


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
        if self.popen is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)
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
            time.sleep(0.5)
        raise AssertionError(f"{name} not healthy after {timeout}s:\n{self.processes[name].tail()}")

    def stop_all(self) -> None:
        """Stop every process this stack started."""
        for process in reversed(list(self.processes.values())):
            process.stop()

    def logs(self) -> str:
        """The tail of every process's log, for failure messages."""
        return "\n".join(f"==== {name}\n{p.tail()}" for name, p in self.processes.items())


@contextmanager
def airflow_stack(env: dict[str, str], log_dir: Path) -> Iterator[AirflowStack]:
    """An ``AirflowStack`` whose processes are all stopped on exit."""
    stack = AirflowStack(env=env, log_dir=log_dir)
    try:
        yield stack
    finally:
        stack.stop_all()


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.1, message: str = "") -> float:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until true; return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
