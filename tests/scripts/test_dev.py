"""The ``make run`` launcher (scripts/dev.py) and its SMTP sink, run for real."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shlex
import signal
import smtplib
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pytest

from scripts.dev import SHIPPED, airflow_settings, audience_lines, config_from_env, group_members, load_secrets
from scripts.mailsink import MailSink, describe
from tests.support.airflow_env import RESERVED_PORTS, free_port
from tests.support.definitions import valid_definition

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = {"api-server", "scheduler", "dag-processor", "triggerer"}


def _two_ports() -> tuple[int, int]:
    """Two different free loopback ports."""
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


def _send(port: int, subject: str) -> None:
    """Send one plain-text email to the sink with smtplib."""
    message = EmailMessage()
    message["From"] = "campaign-runs@example.com"
    message["To"] = "ada@example.com"
    message["Subject"] = subject
    message.set_content("Run scheduled__2025-01-01 was stopped.")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(message)


def _parse(path: Path) -> EmailMessage:
    """Read an .eml file back."""
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_mail_sink_writes_one_eml_per_email(tmp_path: Path) -> None:
    """One email sent with smtplib gives exactly one .eml file with that subject, and one callback."""
    mail_dir = tmp_path / "mail"
    port = free_port()
    received: list[tuple[Path, str]] = []
    with MailSink(mail_dir, port=port, on_message=lambda path, msg: received.append((path, msg["Subject"]))):
        _send(port, "[Campaign Runs] Run stopped: spring-sale")
    files = sorted(mail_dir.iterdir())
    assert [path.suffix for path in files] == [".eml"]
    parsed = _parse(files[0])
    assert parsed["Subject"] == "[Campaign Runs] Run stopped: spring-sale"
    assert parsed["To"] == "ada@example.com"
    assert parsed.get_content() == "Run scheduled__2025-01-01 was stopped.\r\n"  # stored as received (CRLF)
    assert received == [(files[0], "[Campaign Runs] Run stopped: spring-sale")]
    line = describe(files[0], parsed)
    assert "campaign-runs@example.com -> ada@example.com: [Campaign Runs] Run stopped: spring-sale" in line
    assert line.endswith(f"[{files[0].name}]")


def test_mail_sink_keeps_every_email(tmp_path: Path) -> None:
    """Three emails make three files, in arrival order."""
    port = free_port()
    with MailSink(tmp_path, port=port):
        for number in range(3):
            _send(port, f"email {number}")
    assert [_parse(path)["Subject"] for path in sorted(tmp_path.glob("*.eml"))] == ["email 0", "email 1", "email 2"]
    assert list(tmp_path.glob("*.part")) == []


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    """The dev instance's keys survive restarts and only the owner can read them."""
    first = load_secrets(tmp_path)
    assert sorted(first) == ["api_secret_key", "fernet_key", "jwt_secret"]
    assert load_secrets(tmp_path) == first
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600


def test_ports_and_home_come_from_the_environment(tmp_path: Path) -> None:
    """``CAMPAIGN_RUNS_HOME``, ``CAMPAIGN_RUNS_PORT`` and ``CAMPAIGN_RUNS_SMTP_PORT`` override the defaults."""
    default = config_from_env({})
    assert (default.home, default.port, default.smtp_port) == (REPO / ".airflow", 8080, 8025)
    custom = config_from_env(
        {"CAMPAIGN_RUNS_HOME": str(tmp_path), "CAMPAIGN_RUNS_PORT": "18111", "CAMPAIGN_RUNS_SMTP_PORT": "18112"}
    )
    assert (custom.home, custom.port, custom.smtp_port, custom.url) == (
        tmp_path,
        18111,
        18112,
        "http://localhost:18111",
    )
    with pytest.raises(SystemExit, match="CAMPAIGN_RUNS_PORT must be a TCP port number"):
        config_from_env({"CAMPAIGN_RUNS_PORT": "http"})


def test_new_under_make_runs_settings_writes_the_instances_folder_not_the_clone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None
) -> None:
    """``make run`` points ``[campaign_runs] definitions_folder`` at ``<home>/campaigns``; the DAGs stay the clone's."""
    from campaign_runs.core import definitions
    from campaign_runs.settings import get_settings

    config = config_from_env({"CAMPAIGN_RUNS_HOME": str(tmp_path / "home")})
    settings = airflow_settings(config, {"fernet_key": "f", "api_secret_key": "a", "jwt_secret": "j"})
    assert settings["AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER"] == str(tmp_path / "home" / "campaigns")
    assert settings["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO / "dags") and SHIPPED == REPO / "dags" / "campaigns"
    for name in ("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", "AIRFLOW__CORE__DAGS_FOLDER"):
        monkeypatch.setenv(name, settings[name])
    config.campaigns_dir.mkdir(parents=True)
    get_settings.cache_clear()
    shipped_before = sorted(path.name for path in SHIPPED.iterdir())
    try:
        saved = definitions.create_definition(valid_definition("cr_make_run_new"), actor="alice", note="Mine")
        assert saved.written
        assert (config.campaigns_dir / "cr_make_run_new.yaml").read_text() == valid_definition("cr_make_run_new")
        assert sorted(path.name for path in SHIPPED.iterdir()) == shipped_before
        assert "cr_make_run_new" in "\n".join(audience_lines(SHIPPED, config.campaigns_dir))
        shipped = definitions.definition_of("weekly_newsletter")  # a shipped example: read-only under make run
        assert not shipped.folder_writable and "one of the campaigns shipped in the DAGs folder" in shipped.reason
    finally:
        (SHIPPED / "cr_make_run_new.yaml").unlink(missing_ok=True)  # never leave a file in the clone
        get_settings.cache_clear()


def _get(url: str) -> tuple[int, bytes]:
    """Status and body of a GET (error statuses included)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait_for_health(port: int, launcher: subprocess.Popen[bytes], output: Path) -> dict[str, dict[str, str]]:
    """Poll the api-server's health endpoint until it answers 200."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert launcher.poll() is None, f"launcher exited early:\n{output.read_text()}"
        try:
            status, body = _get(f"http://127.0.0.1:{port}/api/v2/monitor/health")
        except OSError:
            status, body = 0, b""
        if status == 200:
            health: dict[str, dict[str, str]] = json.loads(body)
            return health
        time.sleep(1)
    raise AssertionError(f"api-server not healthy in 300 s:\n{output.read_text()}")


def _wait_for_line(output: Path, pattern: str, timeout: float = 30) -> str:
    """The first line of the launcher's output that matches ``pattern``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in output.read_text().splitlines():
            if re.search(pattern, line):
                return line
        time.sleep(0.2)
    raise AssertionError(f"no line matching {pattern!r} in:\n{output.read_text()}")


def _env_file(path: Path) -> dict[str, str]:
    """The variables of the launcher's ``dev.env``."""
    variables = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            name, _, value = shlex.split(line)[1].partition("=")
            variables[name] = value
    return variables


def _new_campaign_lands_in_the_home_and_loads(port: int, home: Path, env: dict[str, str], work: Path) -> None:
    """New (``airflow campaigns create``) writes ``<home>/campaigns``, not the clone; Airflow loads it from there."""
    definition = work / "cr_launcher_new.yaml"
    definition.write_text(valid_definition("cr_launcher_new").replace("owner: alice", "owner: admin"))
    try:
        subprocess.run(
            [sys.executable, "-m", "airflow", "campaigns", "create", "--file", str(definition), "--user", "admin",
             "--note", "Launcher test", "--yes"],
            env=env, cwd=work, check=True, capture_output=True, timeout=180,
        )  # fmt: skip
        assert (home / "campaigns" / "cr_launcher_new.yaml").read_text() == definition.read_text()
        assert not (REPO / "dags" / "campaigns" / "cr_launcher_new.yaml").exists()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/auth/token",
            data=json.dumps({"username": "admin", "password": "admin"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            token = json.loads(response.read())["access_token"]
        dag = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v2/dags/cr_launcher_new", headers={"Authorization": f"Bearer {token}"}
        )
        deadline = time.monotonic() + 180
        while True:  # the shipped loader, woken by the save, reads the instance's folder too
            try:
                with urllib.request.urlopen(dag, timeout=10) as response:
                    assert json.loads(response.read())["dag_id"] == "cr_launcher_new"
                    return
            except urllib.error.HTTPError as error:
                assert error.code == 404 and time.monotonic() < deadline, "Airflow did not load the new campaign"
            time.sleep(1)
    finally:
        (REPO / "dags" / "campaigns" / "cr_launcher_new.yaml").unlink(missing_ok=True)  # never left in the clone


@pytest.mark.slow
def test_make_run_serves_airflow_and_ctrl_c_stops_every_child(tmp_path: Path) -> None:
    """``python -m scripts.dev``: healthy api-server, login page, mail to the sink, SIGINT ends every child."""
    port, smtp_port = _two_ports()
    assert not {port, smtp_port} & RESERVED_PORTS
    home = tmp_path / "home"
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
    env.update(CAMPAIGN_RUNS_HOME=str(home), CAMPAIGN_RUNS_PORT=str(port), CAMPAIGN_RUNS_SMTP_PORT=str(smtp_port))
    output = tmp_path / "launcher.out"
    with output.open("wb") as handle:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "scripts.dev"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    children: dict[str, int] = {}
    try:
        health = _wait_for_health(port, launcher, output)
        assert health["metadatabase"] == {"status": "healthy"}

        status, body = _get(f"http://127.0.0.1:{port}/auth/login/")
        assert status == 200
        assert b'name="username"' in body
        assert b'name="password"' in body

        children = {
            match[1]: int(match[2])
            for match in re.finditer(r"^started (\S+) \(pid (\d+), log ", output.read_text(), re.MULTILINE)
        }
        assert set(children) == COMPONENTS
        _wait_for_line(output, rf"^Campaign Runs is up: http://localhost:{port}$")
        _wait_for_line(output, r"^  login   admin / admin \(admin@example.com\)$")

        # Airflow's own email code, configured only by the launcher's environment, reaches the sink.
        airflow_env = {name: value for name, value in env.items() if not name.startswith("CAMPAIGN_RUNS")}
        airflow_env.update(_env_file(home / "dev.env"))
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from airflow.utils.email import send_email; "
                "send_email('ada@example.com', 'Launcher test', '<p>hello</p>')",
            ],
            env=airflow_env,
            cwd=tmp_path,
            check=True,
            capture_output=True,
            timeout=120,
        )
        mail = sorted((home / "mail").glob("*.eml"))
        assert len(mail) == 1
        assert _parse(mail[0])["Subject"] == "Launcher test"
        _wait_for_line(output, r"^mail \d\d:\d\d:\d\d: campaign-runs@example.com -> ada@example.com: Launcher test ")
        _wait_for_line(output, r"^  campaigns dags/campaigns/ \(shipped, read-only here\); yours in ")

        _new_campaign_lands_in_the_home_and_loads(port, home, airflow_env, tmp_path)

        os.kill(launcher.pid, signal.SIGINT)
        assert launcher.wait(timeout=90) == 0
        lines = output.read_text().splitlines()
        assert lines[-2:] == ["stopping api-server, scheduler, dag-processor, triggerer ...", "stopped"]
        for name, pid in children.items():
            assert group_members(pid) == [], f"{name} left processes behind"
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if launcher.poll() is None:
            launcher.terminate()
            launcher.wait(timeout=60)
        for pid in children.values():
            if group_members(pid):
                os.killpg(pid, signal.SIGKILL)
