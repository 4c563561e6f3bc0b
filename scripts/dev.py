"""``make run``: Airflow with Campaign Runs on this machine (SQLite, LocalExecutor, FAB login, local mail sink)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from scripts.mailsink import MailSink, describe
from scripts.seed_subscribers import CONN_ENV as SUBSCRIBERS_ENV
from scripts.seed_subscribers import FILE_NAME as SUBSCRIBERS_FILE
from scripts.seed_subscribers import connection_value, seed

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from email.message import EmailMessage
    from types import FrameType

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "dags" / "campaigns"  # the shipped examples; the loader beside them loads the instance's own too
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"
ADMIN_EMAIL = "admin@example.com"
MAIL_FROM = "campaign-runs@example.com"
HEALTH_TIMEOUT_SECONDS = 300.0
STOP_TIMEOUT_SECONDS = 30.0

_print_lock = threading.Lock()


class Interrupted(Exception):
    """Ctrl-C (SIGINT) or SIGTERM arrived while a set-up step was running."""


class SetupFailed(Exception):
    """A set-up step (``airflow db migrate``, ``airflow users create``) exited non-zero."""


@dataclass(frozen=True)
class DevConfig:
    """Where the dev instance lives and which loopback ports it uses."""

    home: Path
    port: int
    smtp_port: int
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        """The address people open in a browser."""
        return f"http://localhost:{self.port}"

    @property
    def mail_dir(self) -> Path:
        """Folder of the received emails (one ``.eml`` file each)."""
        return self.home / "mail"

    @property
    def log_dir(self) -> Path:
        """Folder of the component logs (``<name>.log``)."""
        return self.home / "logs"

    @property
    def subscribers_db(self) -> Path:
        """The seeded SQLite file behind Connection ``subscribers_db`` (the weekly_newsletter's audience)."""
        return self.home / SUBSCRIBERS_FILE

    @property
    def campaigns_dir(self) -> Path:
        """This instance's own campaigns (New and Configure write them here; the shipped ones stay in ``dags/``)."""
        return self.home / "campaigns"

    @property
    def env_file(self) -> Path:
        """Shell file with the instance's ``AIRFLOW__*`` variables, for the airflow CLI."""
        return self.home / "dev.env"


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    """A TCP port from the environment, checked."""
    raw = environ.get(name, "").strip() or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SystemExit(f"{name} must be a TCP port number, not {raw!r}")
    return int(raw)


def config_from_env(environ: Mapping[str, str] | None = None) -> DevConfig:
    """Read ``CAMPAIGN_RUNS_HOME``, ``CAMPAIGN_RUNS_PORT`` and ``CAMPAIGN_RUNS_SMTP_PORT``."""
    environ = os.environ if environ is None else environ
    home = Path(environ.get("CAMPAIGN_RUNS_HOME") or REPO / ".airflow").resolve()
    port = _port(environ, "CAMPAIGN_RUNS_PORT", 8080)
    smtp_port = _port(environ, "CAMPAIGN_RUNS_SMTP_PORT", 8025)
    if port == smtp_port:
        raise SystemExit("CAMPAIGN_RUNS_PORT and CAMPAIGN_RUNS_SMTP_PORT must differ")
    return DevConfig(home=home, port=port, smtp_port=smtp_port)


def _new_fernet_key() -> str:
    """A Fernet key (what ``Fernet.generate_key()`` returns)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def load_secrets(home: Path) -> dict[str, str]:
    """The instance's secret keys: generated on first use, then read from ``home/secrets.json``."""
    path = home / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    factories: dict[str, Callable[[], str]] = {
        "fernet_key": _new_fernet_key,
        "api_secret_key": lambda: secrets.token_urlsafe(32),
        "jwt_secret": lambda: secrets.token_urlsafe(64),
    }
    missing = {name: make() for name, make in factories.items() if not stored.get(name)}
    if missing:
        stored.update(missing)
        home.mkdir(parents=True, exist_ok=True)
        _write_private(path, json.dumps(stored, indent=2) + "\n")
    return stored


def _write_private(path: Path, text: str) -> None:
    """Write a file only the owner can read (it holds secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def airflow_settings(
    config: DevConfig, keys: Mapping[str, str], caller: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The ``AIRFLOW_HOME``, ``AIRFLOW__*`` and ``AIRFLOW_CONN_*`` variables of the dev instance.

    Connection ``subscribers_db`` is the seeded SQLite file, unless the ``caller``'s environment defines it.
    """
    return {
        "AIRFLOW_HOME": str(config.home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{config.home / 'airflow.db'}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "campaign_runs.sqlite_metadata.CONNECT_ARGS",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
        "AIRFLOW__FAB__SESSION_BACKEND": "securecookie",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER": str(config.campaigns_dir),
        "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
        "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
        "AIRFLOW__API__BASE_URL": config.url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{config.host}:{config.port}/execution/",
        "AIRFLOW__SMTP__SMTP_HOST": config.host,
        "AIRFLOW__SMTP__SMTP_PORT": str(config.smtp_port),
        "AIRFLOW__SMTP__SMTP_STARTTLS": "False",
        "AIRFLOW__SMTP__SMTP_SSL": "False",
        "AIRFLOW__SMTP__SMTP_MAIL_FROM": MAIL_FROM,
        SUBSCRIBERS_ENV: (caller or {}).get(SUBSCRIBERS_ENV) or connection_value(config.subscribers_db),
    }


def build_env(config: DevConfig, keys: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
    """The environment of every child: ``base`` (the caller's) overridden by the dev settings."""
    env = dict(base)
    env.update(airflow_settings(config, keys, base))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_env_file(config: DevConfig, settings: Mapping[str, str]) -> None:
    """Write ``dev.env`` so ``. .airflow/dev.env`` points the airflow CLI at this instance."""
    lines = ["# Written by `make run` (scripts/dev.py); source it to use the airflow CLI on this instance."]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in settings.items()]
    _write_private(config.env_file, "\n".join(lines) + "\n")


def seed_subscribers(config: DevConfig, settings: Mapping[str, str]) -> None:
    """Seed the ``subscribers`` table behind Connection ``subscribers_db`` (once), unless the caller brought theirs."""
    if settings[SUBSCRIBERS_ENV] != connection_value(config.subscribers_db):
        say(f"subscribers_db: your own {SUBSCRIBERS_ENV} (nothing seeded)")
        return
    rows, created = seed(config.subscribers_db)
    state = "seeded now" if created else "as left by an earlier run"
    say(f"subscribers_db: table subscribers, {rows:,} rows in {shown(config.subscribers_db)} ({state})")


def audience_lines(*folders: Path) -> list[str]:
    """One line per campaign of ``folders`` (the shipped ones by default): where its audience comes from."""
    import yaml

    lines = []
    for path in sorted(path for folder in folders or (SHIPPED,) for path in folder.glob("*.yaml")):
        try:
            audience = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("audience") or {}
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        source = audience.get("source", "demo")
        where = {
            "sql": f"SQL on Connection {audience.get('conn_id')}",
            "file": f"{str(audience.get('format') or 'csv').upper()} file {audience.get('url')}",
        }.get(source, "demo audience (synthetic)")
        lines.append(f"{path.stem:<20} {where}")
    return lines


def component_commands(config: DevConfig) -> dict[str, list[str]]:
    """The long-running Airflow components, each started as ``python -m airflow ...``."""
    airflow = [sys.executable, "-m", "airflow"]
    return {
        "api-server": [*airflow, "api-server", "--port", str(config.port), "--host", config.host],
        "scheduler": [*airflow, "scheduler", "--skip-serve-logs"],
        "dag-processor": [*airflow, "dag-processor"],
        "triggerer": [*airflow, "triggerer", "--skip-serve-logs"],
    }


def setup_commands() -> dict[str, list[str]]:
    """One-shot steps before the components start: migrate (our tables too), then the admin user."""
    airflow = [sys.executable, "-m", "airflow"]
    return {
        "db-migrate": [*airflow, "db", "migrate"],
        "users-create": [
            *airflow, "users", "create", "--role", "Admin",
            "--username", ADMIN_USERNAME, "--password", ADMIN_PASSWORD, "--email", ADMIN_EMAIL,
            "--firstname", "Ada", "--lastname", "Admin",
        ],
    }  # fmt: skip


def start_group(argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of a new process group, output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n==== {datetime.now().isoformat(timespec='seconds')} {shlex.join(argv)}\n".encode())
        log.flush()
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )


def group_members(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes in process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    """Send ``signum`` to a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def stop_groups(processes: Sequence[subprocess.Popen[bytes]], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM the process group of each process, wait for all of it, SIGKILL what is left after ``timeout``."""
    for process in processes:
        _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            process.poll()
        if all(process.returncode is not None and not group_members(process.pid) for process in processes):
            return
        time.sleep(0.2)
    for process in processes:
        if process.poll() is None or group_members(process.pid):
            say(f"process group {process.pid} still running after {timeout:.0f} s: SIGKILL")
            _signal_group(process.pid, signal.SIGKILL)
    for process in processes:
        process.wait()


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def api_health(config: DevConfig) -> dict[str, object] | None:
    """The api-server's ``/api/v2/monitor/health`` document, or None while it does not answer 200."""
    url = f"http://{config.host}:{config.port}/api/v2/monitor/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            if response.status != 200:
                return None
            return json.loads(response.read())  # type: ignore[no-any-return]
    except (urllib.error.URLError, OSError, ValueError):
        return None


def say(line: str) -> None:
    """Print one line of launcher output at once."""
    with _print_lock:
        print(line, flush=True)


def shown(path: Path) -> str:
    """A path as people read it: relative to the working directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_step(name: str, argv: Sequence[str], env: Mapping[str, str], config: DevConfig, stop: threading.Event) -> None:
    """Run one set-up command in its own process group; stop it if we are asked to stop."""
    log_path = config.log_dir / f"{name}.log"
    started = time.monotonic()
    process = start_group(argv, env, log_path)
    while process.poll() is None:
        if stop.wait(0.2):
            stop_groups([process])
            raise Interrupted(name)
    if process.returncode != 0:
        raise SetupFailed(f"{name} failed (exit {process.returncode}); {shown(log_path)} ends with:\n{_tail(log_path)}")
    say(f"{name}: done in {time.monotonic() - started:.1f} s (log {shown(log_path)})")


def wait_until_healthy(
    config: DevConfig, children: Mapping[str, subprocess.Popen[bytes]], stop: threading.Event
) -> bool:
    """Wait for a 200 with a healthy metadatabase; False if stopped, a child died or time ran out."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
    while time.monotonic() < deadline and not stop.is_set():
        if any(process.poll() is not None for process in children.values()):
            return False
        health = api_health(config)
        metadatabase = health.get("metadatabase") if health else None
        if isinstance(metadatabase, dict) and metadatabase.get("status") == "healthy":
            return True
        stop.wait(1.0)
    return False


def _report_dead(children: Mapping[str, subprocess.Popen[bytes]], config: DevConfig) -> bool:
    """Print a line for each child that exited on its own; True if there was one."""
    dead = False
    for name, process in children.items():
        if process.poll() is not None:
            dead = True
            log_path = config.log_dir / f"{name}.log"
            say(f"{name} exited with code {process.returncode}; {shown(log_path)} ends with:\n{_tail(log_path)}")
    return dead


def main() -> int:
    """Set up, start everything, wait for Ctrl-C, stop exactly what was started."""
    config = config_from_env()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    for name, port in (("CAMPAIGN_RUNS_PORT", config.port), ("CAMPAIGN_RUNS_SMTP_PORT", config.smtp_port)):
        if not port_is_free(config.host, port):
            say(f"port {port} on {config.host} is in use: stop what uses it or set {name}")
            return 1

    keys = load_secrets(config.home)
    config.campaigns_dir.mkdir(parents=True, exist_ok=True)  # New writes here: it must exist to be writable
    settings = airflow_settings(config, keys, os.environ)
    env = build_env(config, keys, os.environ)
    write_env_file(config, settings)
    say(f"AIRFLOW_HOME {shown(config.home)} (SQLite, LocalExecutor, FAB login)")
    say(f"airflow CLI on this instance: . {shown(config.env_file)}")
    seed_subscribers(config, settings)

    try:
        for name, argv in setup_commands().items():
            run_step(name, argv, env, config, stop)
    except Interrupted:
        say("stopped during set-up")
        return 0
    except SetupFailed as failure:
        say(str(failure))
        return 1

    def on_mail(path: Path, message: EmailMessage) -> None:
        say(describe(path, message))

    sink = MailSink(config.mail_dir, host=config.host, port=config.smtp_port, on_message=on_mail)
    sink.start()
    say(f"mail sink: SMTP on {config.host}:{config.smtp_port}, every email saved in {shown(config.mail_dir)}/")

    children: dict[str, subprocess.Popen[bytes]] = {}
    status = 0
    try:
        for name, argv in component_commands(config).items():
            log_path = config.log_dir / f"{name}.log"
            children[name] = start_group(argv, env, log_path)
            say(f"started {name} (pid {children[name].pid}, log {shown(log_path)})")
        say(f"waiting for {config.url}/api/v2/monitor/health ...")
        if wait_until_healthy(config, children, stop):
            say("")
            say(f"Campaign Runs is up: {config.url}")
            say(f"  login   {ADMIN_USERNAME} / {ADMIN_PASSWORD} ({ADMIN_EMAIL})")
            say(f"  mail    {shown(config.mail_dir)}/ (one .eml per email, a line here for each)")
            say(f"  logs    {shown(config.log_dir)}/")
            say(f"  campaigns {shown(SHIPPED)}/ (shipped, read-only here); yours in {shown(config.campaigns_dir)}/")
            say("  audiences:")
            for line in audience_lines(SHIPPED, config.campaigns_dir):
                say(f"    {line}")
            say("Ctrl-C stops everything.")
        elif not stop.is_set() and not any(process.poll() is not None for process in children.values()):
            say(f"the api-server was not healthy within {HEALTH_TIMEOUT_SECONDS:.0f} s; see its log")
        while not stop.is_set():
            if _report_dead(children, config):
                status = 1
                break
            stop.wait(1.0)
    finally:
        say(f"stopping {', '.join(children)} ...")
        stop_groups(list(children.values()))
        sink.stop()
        say("stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
