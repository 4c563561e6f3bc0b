"""``python -m scripts.screenshots``: regenerate docs/screenshots/*.png by driving the real UI.

A private AIRFLOW_HOME and SQLite DB are migrated for real, the test campaigns and users are created, then
an api-server, dag-processor and scheduler start (tests/support/processes.py, each in its own process
group, all stopped at the end) and headless Chromium takes the pictures inside Airflow's own UI.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tests.support import airflow_env

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "screenshots"
USER = "alice"
VIEWPORT = {"width": 1280, "height": 800}  # a common laptop screen: the Campaign tab must fit it
SHOTS = {
    "campaign-display.png": "the Campaign tab of a DAG: the run schedule first, an Actions menu per row, then About",
    "action-dialog.png": "Skip from a row's Actions menu: what happens, the note, Skip run",
    "run-details.png": "the Campaign run tab: status, progress per channel, tasks, Stop",
    "campaign-display-dark.png": "the Campaign tab in Airflow's dark mode",
}


def _prepare(home: Path) -> None:
    """Environment, migrated DB, test campaigns and users (this process's Airflow reads the same DB)."""
    os.environ.update(airflow_env.environment(home))
    airflow_env.migrate(dict(os.environ))
    from tests.support.fixtures import create_users, sync_test_dags

    sync_test_dags()
    create_users()


def _shoot(base: str, out: Path) -> None:
    from playwright.sync_api import expect

    from tests.browser.support import api_client, chromium, failed_run, login, trigger, wait_until
    from tests.support.fixtures import PASSWORD

    api = api_client(base, USER, PASSWORD)
    wait_until(lambda: api.get("/api/v2/dags/cr_campaign").status_code == 200, timeout=120)
    for dag_id in ("cr_campaign", "cr_slow"):
        assert api.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).status_code == 200
    failed = failed_run(api, "cr_campaign", "spring_sale")
    running = trigger(api, "cr_slow", "manual__newsletter_resend")
    wait_until(lambda: api.get(f"/campaign-runs/campaigns/cr_slow/runs/{running}").json().get("status") == "running")
    with chromium() as browser:
        page: Any = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(30_000)
        login(page, base, USER, PASSWORD)
        page.goto(f"{base}/dags/cr_campaign/plugin/campaign")
        frame = page.frame_locator("iframe")
        row = frame.locator(f'#cr-schedule tr[data-run-id="{failed}"]')
        expect(row.locator(".cr-status .cr-badge")).to_have_text("failed")
        page.screenshot(path=str(out / "campaign-display.png"), full_page=True)
        row.locator("details.cr-menu > summary").click()  # the row's Actions menu
        row.get_by_role("button", name="Skip run").click()
        frame.locator("#cr-dialog-skip textarea").fill("Audience list not refreshed this week")
        page.screenshot(path=str(out / "action-dialog.png"), full_page=True)
        page.goto(f"{base}/dags/cr_slow/runs/{running}/plugin/campaign-run")
        expect(page.frame_locator("iframe").locator("#cr-run-status .cr-badge")).to_have_text("running")
        page.screenshot(path=str(out / "run-details.png"), full_page=True)
        page.evaluate("() => window.localStorage.setItem('theme', 'dark')")
        page.goto(f"{base}/dags/cr_campaign/plugin/campaign")
        expect(page.frame_locator("iframe").locator("html")).to_have_attribute("data-theme", "dark")
        page.screenshot(path=str(out / "campaign-display-dark.png"), full_page=True)
    api.close()


def main(argv: list[str] | None = None) -> None:
    """Regenerate the screenshots (into ``--out``, docs/screenshots by default)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOME")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="campaign-runs-screenshots-"))
    try:
        _prepare(home)
        from tests.browser.support import running_stack
        from tests.support.fixtures import TEST_DAGS, start_smtp

        controller, sink = start_smtp()
        try:
            with running_stack(sink.port, home, TEST_DAGS) as stack:
                args.out.mkdir(parents=True, exist_ok=True)
                _shoot(stack.url(), args.out)
        finally:
            controller.stop()
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    for name, what in SHOTS.items():
        print(f"{args.out / name}: {what}")


if __name__ == "__main__":
    main()
