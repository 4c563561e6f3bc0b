"""A refused action's page keeps its address usable (FAB's pages; the plugin's own: ``test_views_live_ui.py``).

Airflow's Campaigns menu keeps its URL in step with its frame's and loads the frame again when the address it
reads back differs from the one shown: the pages' paths keep a run id's ``:`` and ``+`` as they are, so the
address of a refused form's answer comes back unchanged. Opened with GET (a reload of that address), an
action's address leads to the run's page, never to "run 'RUN_ID/skip' does not exist". The browser test
``tests/browser/test_refusals_in_airflow.py`` goes through every way in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import BASE, login

RUN_ID = "manual__2026-12-07T10:00:00.123456+00:00"
SHOWN = "manual__2026-12-07T10:00:00.123456+00:00"  # in the pages' paths as it is: no %3A, no %2B


def check_refused_address(client: TestClient, base: str, run_id: str) -> None:
    """A run page's form addresses, a refused Skip, and a GET of its address, on the host at ``base``."""
    run_path = f"{base}/display/cr_campaign/run/{SHOWN}"
    page = client.get(run_path)
    assert page.status_code == 200, page.text[:300]
    assert f'action="{run_path}/skip"' in page.text

    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    refused = client.post(f"{run_path}/skip", data={"note": "   ", "csrf_token": token.group(1), "origin": "run"})
    assert refused.status_code == 422, refused.text[:300]
    assert "A note is required: say why you take this action." in refused.text

    again = client.get(f"{run_path}/skip")  # the frame reloaded at the answer's address
    assert (again.status_code, again.headers["location"]) == (303, run_path)
    assert f'Run <span id="cr-run-id">{run_id}</span>' in client.get(again.headers["location"]).text
    unknown = client.get(f"{base}/display/cr_campaign/run/no_such_run")
    assert unknown.status_code == 404 and "does not exist" in unknown.text


def test_a_refused_action_s_address_reads_back_unchanged_and_leads_to_the_run(
    api_app: Any, make_run: Callable[..., str]
) -> None:
    run_id = make_run("cr_campaign", state="failed", run_id=RUN_ID)
    with login(api_app, "alice") as client:
        check_refused_address(client, BASE, run_id)
