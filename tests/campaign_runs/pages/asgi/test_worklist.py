"""The work list of the plugin's own pages (SimpleAuthManager): named as the nav, one action menu per row."""

# ruff: noqa: F811  (pytest fixtures imported from test_auth_managers_pages)
from __future__ import annotations

import re
from html import unescape
from typing import Any

from tests.campaign_runs.pages.asgi.test_campaigns import CSRF, UI, app, login, run_url  # noqa: F401  (fixture)


def test_the_work_list_matches_the_fab_one_title_and_one_menu_per_row(app: Any, make_run: Any) -> None:
    from campaign_runs import core

    run_id = make_run("cr_campaign", state="running")
    alice = login(app, "alice")
    details = alice.get(run_url(run_id))
    token = CSRF.search(details.text)
    assert token is not None
    stopped = alice.post(f"{run_url(run_id)}/stop", data={"note": "For the list", "csrf_token": token.group(1)})
    assert stopped.status_code == 303
    core.housekeeping_pass()

    seen_as = (("alice", ["restart", "skip"], False), ("admin", ["restart", "skip", "reassign"], True))
    for username, forms, admin in seen_as:
        page = login(app, username).get(f"{UI}/worklist")
        assert page.status_code == 200, page.text[:300]
        assert "<h1>My work list</h1>" in page.text and "Work lists of everyone" not in page.text
        assert ("Everyone's entries (you are a work-list admin)" in unescape(page.text)) is admin
        row = re.search(rf'<tr data-run-id="{re.escape(run_id)}">(.*?)</tr>', page.text, re.S)
        assert row, page.text
        menus = re.findall(r'<details class="cr-menu">.*?</details>', row.group(1), re.S)
        assert len(menus) == 1
        assert len(re.findall(r"<form\b", row.group(1))) == len(forms)
        assert re.findall(r'<form class="cr-action cr-(\w+)"', menus[0]) == forms
        assert len(CSRF.findall(menus[0])) == len(forms)
