"""Under SimpleAuthManager, New, Configure, the Monitor and Restart with params in headless Chromium, on real processes.

A real api-server, dag-processor and scheduler run with SimpleAuthManager and its users; the plugin's own pages
(``/campaign-runs/ui``) serve every page there. The admin creates a campaign through New, waits until the
dag-processor has loaded it, configures it (a smaller audience, saved as version 2), opens its Monitor, and
restarts a failed run with params overrides; the new run really carries them (Airflow's REST API reads its conf).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.browser.support import api_client, chromium, failed_run, login, running_stack, wait_until_listed
from tests.browser.test_new_campaign_ui import dags_folder, fill_new_campaign
from tests.support import auth_managers
from tests.support.fixtures import PASSWORD, SmtpSink
from tests.support.processes import AirflowStack, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

USER = "admin"  # SimpleAuthManager: only OP and ADMIN may change the configuration (create campaigns)
DAG_ID = "spring_sale_simple"
UI = "/campaign-runs/ui"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The stack's DAGs folder: the campaigns loader (no campaign yet) and the test DAGs."""
    return dags_folder(tmp_path)


@pytest.fixture
def stack(tmp_path: Path, folder: Path, smtp_server: SmtpSink, airflow_db: None) -> Iterator[AirflowStack]:
    """api-server + dag-processor + scheduler under SimpleAuthManager; the loader is re-read every 2 s."""
    extra = {**auth_managers.environment("simple", tmp_path), "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "2"}
    with running_stack(smtp_server.port, tmp_path, folder, extra) as processes:
        yield processes


@pytest.fixture
def admin_api(stack: AirflowStack) -> Iterator[httpx.Client]:
    """Airflow's REST API (and the plugin's) as SimpleAuthManager's admin."""
    client = api_client(stack.url(), USER, PASSWORD)
    try:
        yield client
    finally:
        client.close()


def restarted_confs(api: httpx.Client) -> list[dict[str, Any]]:
    """The conf of each run of the campaign that restarts another, as Airflow's REST API reads it."""
    response = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 100})
    assert response.status_code == 200, response.text
    return [run.get("conf") or {} for run in response.json()["dag_runs"] if run["dag_run_id"].startswith("restart__")]


def test_new_configure_monitor_and_restart_with_params(
    stack: AirflowStack, admin_api: httpx.Client, folder: Path
) -> None:
    from playwright.sync_api import expect

    base = stack.url()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        login(page, base, USER, PASSWORD)

        # New, from the campaigns page of the plugin's own pages: the form posts there, with its CSRF token.
        page.goto(f"{base}{UI}/list")
        page.locator("#cr-new-campaign").click()
        expect(page.locator("h1")).to_have_text("New campaign")
        assert page.url == f"{base}{UI}/new"
        fill_new_campaign(page)
        page.fill('[name="id"]', DAG_ID)
        expect(page.locator("#cr-preview-description")).to_have_text("At 09:00, only on Monday")
        page.locator("#cr-save").click()
        expect(page.locator(".cr-flash.success")).to_have_text(f"{DAG_ID}: Saved; waiting for Airflow to load it.")
        wait_until_listed(page, stack, DAG_ID)

        # Configure: the form prefilled from the YAML; a changed field is saved as version 2.
        page.get_by_role("link", name=DAG_ID, exact=True).click()
        page.locator("#cr-configure").click()
        assert page.url == f"{base}{UI}/display/{DAG_ID}/configure"
        expect(page.locator('[name="audience.size"]')).to_have_value("5")
        page.fill('[name="audience.size"]', "4")
        page.fill('[name="note"]', "Smaller test audience")
        page.locator("#cr-save").click()
        expect(page.locator(".cr-flash.success")).to_contain_text("Saved; waiting for Airflow to reload it.")
        expect(page.locator('#cr-versions tr[data-version="2"]')).to_contain_text("Smaller test audience")
        saved = yaml.safe_load((folder / "campaigns" / f"{DAG_ID}.yaml").read_text())
        assert saved["audience"]["size"] == 4

        # The Monitor, from the display.
        page.locator("#cr-monitor-link").click()
        expect(page.locator("h1")).to_contain_text(f"Monitor {DAG_ID}")
        assert page.url.startswith(f"{base}{UI}/monitor/{DAG_ID}")

        # Restart a failed run with params overrides: the new run carries them.
        try:
            run_id = failed_run(admin_api, DAG_ID, f"simple_{time.time_ns()}")
        except AssertionError:
            raise AssertionError(stack.logs()) from None
        page.goto(f"{base}{UI}/display/{DAG_ID}/run/{run_id}")
        restart = page.locator("form#restart")
        restart.locator("textarea").fill("Retry with five recipients")
        restart.locator('input[name="params"]').fill('{"audience_size": 5}')
        restart.locator("button[type=submit]").click()
        expect(page.locator(".cr-flash.success")).to_contain_text(f"Run {run_id} is skipped and restarted as run")

    wait_until(lambda: len(restarted_confs(admin_api)) == 1, timeout=60)
    [conf] = restarted_confs(admin_api)
    assert conf["audience_size"] == 5 and conf["campaign_restart_of"] == run_id
    run = admin_api.get(f"/campaign-runs/campaigns/{DAG_ID}/runs/{run_id}").json()
    assert [(h["action"], h["actor"], h["note"]) for h in run["history"]] == [
        ("restart", USER, "Retry with five recipients")
    ]
