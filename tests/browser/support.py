"""Shared by the browser tests and scripts.screenshots: Chromium, login, a real Airflow stack, axe-core."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.airflow_env import REPO, VENV_BIN, free_port
from tests.support.processes import AirflowStack, airflow_stack, settle_earlier_modules, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PLUGIN = "/pluginsv2/campaigns"
AXE_SOURCE = Path(__file__).parent  # package.json and package-lock.json pin axe-core
AXE_DIR = VENV_BIN.parent / "axe"  # npm ci installs here (inside the git-ignored venv), as `make axe` does
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"


def stack_env(base_url: str, smtp_port: int, log_root: Path, dags_folder: Path) -> dict[str, str]:
    """Environment of an api-server + dag-processor + scheduler on the current metadata DB."""
    return {
        **os.environ,
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__CAMPAIGN_RUNS__BASE_URL": base_url,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
        "AIRFLOW__SMTP__SMTP_PORT": str(smtp_port),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(log_root / "task-logs"),
    }


def _forget_other_modules_emails() -> None:
    """Empty the outbox: this stack's housekeeper would send earlier modules' pending emails to this test's SMTP."""
    from airflow.utils.session import create_session
    from campaign_runs.tables import email_outbox
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(delete(email_outbox))


@contextmanager
def running_stack(
    smtp_port: int, log_root: Path, dags_folder: Path, extra_env: dict[str, str] | None = None
) -> Iterator[AirflowStack]:
    """api-server, dag-processor and scheduler, each in its own process group, stopped on exit.

    ``extra_env`` adds or overrides variables, e.g. another auth manager (``tests.support.auth_managers``).
    """
    _forget_other_modules_emails()
    settle_earlier_modules()
    port = free_port()
    env = {**stack_env(f"http://127.0.0.1:{port}", smtp_port, log_root, dags_folder), **(extra_env or {})}
    with airflow_stack(env, log_root / "logs") as processes:
        processes.start("api-server", port=port)
        processes.start("dag-processor")
        processes.start("scheduler")
        processes.wait_healthy(timeout=180)
        yield processes


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (no browser download)."""
    if not CHROMIUM.exists():
        raise AssertionError(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


def login(page: Any, base_url: str, username: str, password: str) -> None:
    """Log in through Airflow's own login page (FAB's ``/auth/login/``, SimpleAuthManager's ``/auth/login``)."""
    page.goto(f"{base_url}/")
    page.wait_for_url(lambda url: "/auth/login" in url)
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.locator('input[type="submit"], button[type="submit"]').first.click()
    page.wait_for_url(lambda url: "/auth/login" not in url)


def api_client(base_url: str, username: str, password: str) -> httpx.Client:
    """Airflow's REST API (and the plugin's) with a JWT from ``/auth/token``."""
    client = httpx.Client(base_url=base_url, timeout=30)
    token = client.post("/auth/token", json={"username": username, "password": password})
    assert token.status_code in (200, 201), token.text
    client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return client


def trigger(api: httpx.Client, dag_id: str, run_id: str, timeout: float = 120) -> str:
    """Trigger a run; retried while the freshly started dag-processor has the DAG briefly unknown (404)."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"dag_run_id": run_id, "logical_date": None})
        if response.status_code == 200:
            return run_id
        assert response.status_code == 404 and time.monotonic() < deadline, response.text
        time.sleep(0.5)


def failed_run(api: httpx.Client, dag_id: str, prefix: str) -> str:
    """A run triggered through Airflow's REST API and marked failed there."""
    run_id = trigger(api, dag_id, f"manual__{prefix}_{time.time_ns()}")
    marked = api.patch(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", json={"state": "failed"})
    assert marked.status_code == 200, marked.text
    # A task already running when the run was marked may still end it in success: once no task is left
    # running, mark it again, so the run stays failed whatever its tasks did meanwhile.
    wait_until(lambda: not _unfinished_tasks(api, dag_id, run_id), timeout=60)
    marked = api.patch(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", json={"state": "failed"})
    assert marked.status_code == 200, marked.text
    wait_until(lambda: campaign_status(api, dag_id, run_id) == "failed", timeout=60)
    return run_id


def _unfinished_tasks(api: httpx.Client, dag_id: str, run_id: str) -> list[str]:
    """Task ids of the run that are queued or running in Airflow."""
    response = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    assert response.status_code == 200, response.text
    busy = ("queued", "running", "scheduled", "restarting", "up_for_retry", "deferred")
    return [ti["task_id"] for ti in response.json()["task_instances"] if ti.get("state") in busy]


def campaign_status(api: httpx.Client, dag_id: str, run_id: str) -> str | None:
    """The run's status as the plugin's REST API reads it."""
    response = api.get(f"/campaign-runs/campaigns/{dag_id}/runs/{run_id}")
    return response.json().get("status") if response.status_code == 200 else None


def axe_source() -> str:
    """axe-core's browser bundle, installed with ``npm ci`` from the pinned lock file when missing."""
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise AssertionError("npm is missing: cannot install axe-core (make axe)")
        AXE_DIR.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(AXE_SOURCE / name, AXE_DIR / name)
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=AXE_DIR,
            check=True,
            timeout=300,
        )
    return AXE_JS.read_text()


def axe_violations(page_or_frame: Any, source: str, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """Run axe-core in the page and return its violations of the given impacts, one line each."""
    if not page_or_frame.evaluate("() => typeof window.axe === 'object'"):
        page_or_frame.add_script_tag(content=source)
    results = page_or_frame.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations'], "
        "runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
    )
    return [
        f"{v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
        for v in results["violations"]
        if v["impact"] in impacts
    ]


__all__ = ["PLUGIN", "REPO", "AirflowStack", "wait_until"]


@contextmanager
def unpaused_api(base_url: str, username: str, password: str, dag_ids: tuple[str, ...]) -> Iterator[httpx.Client]:
    """A REST client once the first of ``dag_ids`` is served, with all of them unpaused (created paused)."""
    client = api_client(base_url, username, password)
    try:
        wait_until(lambda: client.get(f"/api/v2/dags/{dag_ids[0]}").status_code == 200, timeout=120)
        for dag_id in dag_ids:
            assert client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).status_code == 200
        yield client
    finally:
        client.close()


@contextmanager
def logged_in_page(browser: Any, base_url: str, username: str, password: str) -> Iterator[Any]:
    """A 1440 x 1000 page logged in as ``username``, waiting up to 30 s for real processes."""
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)  # real processes, possibly beside another browser test
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    login(page, base_url, username, password)
    try:
        yield page
    finally:
        context.close()


def wait_until_listed(page: Any, stack: AirflowStack, dag_id: str) -> None:
    """Reload the campaigns page until ``dag_id`` is listed, not waiting for Airflow (the stack's logs if not)."""

    def listed() -> bool:
        page.reload()
        row = page.locator(f'#cr-campaigns tr[data-dag-id="{dag_id}"]')
        return row.count() == 1 and row.locator(".cr-badge.waiting").count() == 0

    try:
        wait_until(listed, timeout=180, interval=2)
    except AssertionError:
        raise AssertionError(stack.logs()) from None
