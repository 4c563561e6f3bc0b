"""Every page and every page action through both hosts: FAB's views and the plugin's own pages answer alike.

One walk per host (the ``host`` fixture): each page a user reaches from the navigation answers 200 with its
heading, and each action posted as its form does (CSRF token from the page) changes the same thing and says the
same sentence. The hosts' own test modules go deeper; this one keeps them level.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest
from campaign_runs import core
from campaign_runs.tables import user_email, worklist_entry
from campaign_runs.urls import FAB, UI, PageLinks

from tests.campaign_runs.pages.asgi.hosts import FAB_BASE, Host
from tests.campaign_runs.pages.fab.test_campaigns import (
    count,
    csrf_token,
    dag_run_count,
    flashes,
    is_paused,
    record_status,
    set_paused,
    set_ti_state,
)

PAGES: dict[str, tuple[Callable[[PageLinks], str], str]] = {
    # page: (its path on a host, its heading)
    "campaigns": (lambda links: links.list_path(), "Campaigns"),
    "display": (lambda links: links.campaign_path("cr_campaign"), "cr_campaign"),
    "work list": (lambda links: links.worklist_path(), "My work list"),
    "monitor": (lambda links: links.monitor_path("cr_campaign"), "Monitor cr_campaign"),
    "suppressions": (lambda links: links.suppressions_path(), "Suppression list"),
    "new": (lambda links: links.new_path(), "New campaign"),
    "configure": (lambda links: links.configure_path("cr_campaign"), "Configure cr_campaign"),
}


def links_of(host: Host) -> PageLinks:
    return FAB if host.base == FAB_BASE else UI


def heading(response: Any) -> str:
    match = re.search(r"<h1[^>]*>(.*?)</h1>", response.text, re.S)
    assert match, response.text[:300]
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def followed(client: Any, response: Any) -> Any:
    """The page a 303 after a form leads to (where the flashes are shown)."""
    assert response.status_code == 303, (response.status_code, response.text[:300])
    return client.get(response.headers["location"])


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_answers_with_its_heading(host: Host, make_run: Callable[..., str], page: str) -> None:
    make_run("cr_campaign", state="failed")
    path, title = PAGES[page]

    response = host.client("admin").get(path(links_of(host)))

    assert response.status_code == 200, response.text[:300]
    assert heading(response) == title


def test_the_run_page_answers_with_its_run(host: Host, make_run: Callable[..., str]) -> None:
    run_id = make_run("cr_campaign", state="failed")

    response = host.client("admin").get(links_of(host).run_path("cr_campaign", run_id))

    assert response.status_code == 200 and run_id in heading(response)


def run_action(host: Host, run_id: str, action: str, note: str) -> Any:
    links, client = links_of(host), host.client("admin")
    token = csrf_token(client.get(links.run_path("cr_campaign", run_id)).text)
    posted = client.post(
        links.action_path("cr_campaign", run_id, action), data={"note": note, "origin": "run", "csrf_token": token}
    )
    return followed(client, posted)


def test_stop_skip_and_restart(host: Host, make_run: Callable[..., str], smtp_server: Any) -> None:
    running = make_run("cr_campaign", state="running", ti_states={"build_audience": "running"})
    failed, other = make_run("cr_campaign", state="failed"), make_run("cr_campaign", state="failed")
    before = dag_run_count("cr_campaign")

    stopped = run_action(host, running, "stop", "Wrong list")
    assert record_status("cr_campaign", running) == "stopping"
    set_ti_state("cr_campaign", running, "build_audience", "failed")  # the task saw the stop and ended
    core.finish_stopping_runs()
    skipped = run_action(host, failed, "skip", "Not this week")
    restarted = run_action(host, other, "restart", "Fixed the list")

    assert record_status("cr_campaign", running) == "stopped"
    assert any(f"Run {running}" in flash and "stop" in flash for flash in flashes(stopped)), flashes(stopped)
    assert record_status("cr_campaign", failed) == "skipped"
    assert f"Run {failed} is skipped" in " ".join(flashes(skipped))
    assert record_status("cr_campaign", other) == "skipped" and dag_run_count("cr_campaign") == before + 1
    assert "restart" in " ".join(flashes(restarted)).lower()
    assert count(worklist_entry, run_id=running, assignee="admin") == 1  # a stopped run is on the stopper's list


def campaign_action(host: Host, action: str, **fields: str) -> Any:
    links, client = links_of(host), host.client("admin")
    token = csrf_token(client.get(links.campaign_path("cr_campaign")).text)
    posted = client.post(
        links.campaign_action_path("cr_campaign", action), data={"note": "e2e", "csrf_token": token, **fields}
    )
    return followed(client, posted)


def test_run_now_pause_resume_and_stop_all(host: Host, make_run: Callable[..., str], smtp_server: Any) -> None:
    set_paused("cr_campaign", False)
    before = dag_run_count("cr_campaign")
    running = make_run("cr_campaign", state="running")

    campaign_action(host, "run_now", conf='{"audience_size": 5}')
    assert dag_run_count("cr_campaign") == before + 2
    campaign_action(host, "stop_all")
    assert record_status("cr_campaign", running) == "stopping"
    paused = campaign_action(host, "pause")
    assert is_paused("cr_campaign") and any("paused" in flash.lower() for flash in flashes(paused))
    campaign_action(host, "resume", missed="none")
    assert not is_paused("cr_campaign")


def test_reassign_and_my_email(host: Host, make_run: Callable[..., str], smtp_server: Any) -> None:
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "running"})
    run_action(host, run_id, "stop", "Wrong list")
    set_ti_state("cr_campaign", run_id, "build_audience", "failed")
    core.finish_stopping_runs()
    links, client = links_of(host), host.client("admin")
    token = csrf_token(client.get(links.worklist_path()).text)

    reassigned = client.post(
        links.reassign_path(),
        data={"dag_id": "cr_campaign", "run_id": run_id, "to_user": "bob", "note": "yours", "csrf_token": token},
    )
    email = client.post(links.email_path(), data={"email": "admin@own.example", "csrf_token": token})

    assert reassigned.status_code == 303 and count(worklist_entry, run_id=run_id, assignee="bob") == 1
    assert email.status_code == 303 and count(user_email, username="admin", email="admin@own.example") == 1
