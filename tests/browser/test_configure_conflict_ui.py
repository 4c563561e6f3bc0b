"""Two users configure the same campaign at once, in headless Chromium on a real api-server (issue 25, defect 5).

Alice and Bob open Configure at the same version. Alice saves a new cron and subject. Bob, still on the old
form, changes the audience size and the subject too, and saves: he gets Alice's version with his size applied
on top and, beside the subject, both values with a choice, and nothing is saved. Saving without choosing is
refused beside the field; once he takes his subject, the merged version is saved: Alice's cron, his size, his
subject. The conflict page has no serious accessibility violation (axe-core).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.browser.support import (
    PLUGIN,
    axe_source,
    axe_violations,
    chromium,
    logged_in_page,
    stack_env,
)
from tests.support.fixtures import PASSWORD, SmtpSink
from tests.support.processes import AirflowStack, airflow_stack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DAG_ID = "cr_conflict_ui"


@pytest.fixture
def campaigns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[Path]:
    """A campaigns folder of this test's own, for the api-server and for this process alike."""
    from campaign_runs.settings import get_settings

    folder = tmp_path / "campaigns"
    folder.mkdir()
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(folder))
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


@pytest.fixture
def api_server(tmp_path: Path, campaigns: Path, smtp_server: SmtpSink) -> Iterator[AirflowStack]:
    """An api-server alone (Configure needs no scheduler and no dag-processor), stopped by its process group."""
    from tests.support.airflow_env import free_port

    port = free_port()
    dags = tmp_path / "dags"
    dags.mkdir()
    env = stack_env(f"http://127.0.0.1:{port}", smtp_server.port, tmp_path, dags)
    env["AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER"] = str(campaigns)
    with airflow_stack(env, tmp_path / "logs") as processes:
        processes.start("api-server", port=port)
        processes.wait_healthy(timeout=180)
        yield processes


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


def created(campaigns: Path) -> None:
    """Version 1 of the campaign, saved as New saves it."""
    from campaign_runs.core import definitions
    from campaign_runs.pages import definition_form

    form = {
        "id": DAG_ID,
        "description": "Spring promotion for testers.",
        "owner": "alice",
        "owner_email": "alice@example.com",
        "schedule.mode": "cron",
        "schedule.cron": "0 9 * * MON",
        "schedule.timezone": "Europe/Paris",
        "schedule.start_date": "2026-01-05",
        "audience.segment": "testers",
        "audience.size": "50",
        "channels.email.enabled": "on",
        "channels.email.subject": "Spring for $first_name",
        "channels.email.body": "Hello $first_name, spring is here.",
    }
    text = definitions.dump(definition_form.mapping_of(form))
    assert definitions.create_definition(text, actor="alice", note="first").written
    assert (campaigns / f"{DAG_ID}.yaml").exists()


def on_disk(campaigns: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((campaigns / f"{DAG_ID}.yaml").read_text()))


def test_a_stale_configure_offers_a_merge_and_saves_only_what_bob_chose(
    api_server: AirflowStack, campaigns: Path, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    created(campaigns)
    base = api_server.url()
    configure = f"{base}{PLUGIN}/display/{DAG_ID}/configure"
    with (
        logged_in_page(browser, base, "alice", PASSWORD) as alice,
        logged_in_page(browser, base, "bob", PASSWORD) as bob,
    ):
        alice.goto(configure)
        bob.goto(configure)  # both at version 1
        expect(bob.locator('[name="audience.size"]')).to_have_value("50")

        alice.fill('[name="schedule.cron"]', "0 10 * * TUE")
        alice.fill('[name="channels.email.subject"]', "Alice's subject")
        alice.click("#cr-save")
        alice.wait_for_url(lambda url: "/configure" not in url)
        assert on_disk(campaigns)["schedule"]["cron"] == "0 10 * * TUE"
        alices = (campaigns / f"{DAG_ID}.yaml").read_text()

        bob.fill('[name="audience.size"]', "70")
        bob.fill('[name="channels.email.subject"]', "Bob's subject")
        bob.fill("#cr-f-note", "Bigger audience")
        bob.click("#cr-save")

        banner = bob.locator("#cr-conflict")
        expect(banner).to_contain_text(f"Someone else saved {DAG_ID} since you opened it")
        expect(banner.get_by_role("link", name="Reload their version")).to_be_visible()
        expect(bob.locator("#cr-merge-applied")).to_have_text("audience.size: 50 → 70")
        expect(bob.locator('[name="schedule.cron"]')).to_have_value("0 10 * * TUE")  # hers
        expect(bob.locator('[name="audience.size"]')).to_have_value("70")  # his, on top of hers
        expect(bob.locator('[name="channels.email.subject"]')).to_have_value("Alice's subject")  # until he chooses
        choice = bob.locator('[data-slot="channels.email.subject"] [data-conflict="channels.email.subject"]')
        expect(choice.locator('[data-side="theirs"]')).to_have_text("Alice's subject")
        expect(choice.locator('[data-side="yours"]')).to_have_text("Bob's subject")
        expect(bob.locator("#cr-f-note")).to_have_value("Bigger audience")
        expect(bob.locator("#cr-save")).to_have_text("Save the merged version")
        assert axe_violations(bob, axe_source()) == []
        bob.screenshot(path=str(tmp_path / "configure-conflict.png"), full_page=True)
        assert (campaigns / f"{DAG_ID}.yaml").read_text() == alices  # nothing saved yet

        bob.click("#cr-save")  # without a choice

        expect(choice.get_by_role("alert")).to_have_text("Choose one: keep theirs or take yours.")
        assert (campaigns / f"{DAG_ID}.yaml").read_text() == alices

        choice.get_by_label("Take yours").check()
        bob.click("#cr-save")
        bob.wait_for_url(lambda url: "/configure" not in url)

    written = on_disk(campaigns)
    assert written["schedule"]["cron"] == "0 10 * * TUE"  # Alice's change stands
    assert written["audience"]["size"] == 70  # Bob's, applied on top
    assert written["channels"]["email"]["subject"] == "Bob's subject"  # as he chose
    from campaign_runs.core import definitions

    assert [(e.version, e.actor, e.note) for e in definitions.history(DAG_ID)] == [
        (3, "bob", "Bigger audience"),
        (2, "alice", ""),
        (1, "alice", "first"),
    ]
