"""Notes over the limit are refused whole on every surface, never cut; shown notes that are shortened say so.

Issue 25, defect 7: the limit is said beside every note field and counted down as the user types (no
``maxlength``, which lets a browser cut a pasted note without a word); the pages, the REST API and the CLI
refuse a longer note with a clear error and change nothing; Airflow's own run note (at most 1,000
characters) and the schedule's "Latest note" end with an ellipsis when shortened, the whole note reachable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from campaign_runs import core
from campaign_runs.tables import run_action
from starlette.testclient import TestClient

from tests.campaign_runs.core.helpers import dag_run
from tests.campaign_runs.pages.fab.test_campaigns import BASE, count, login, post_action, record_status, run_url
from tests.support.cli_runner import run_in_process
from tests.support.fixtures import PASSWORD

TOO_LONG = "The note is 2001 characters long; the limit is 2000: shorten it by 1 character (a note is never cut)."
pytestmark = pytest.mark.usefixtures("smtp_server")  # the actions' emails go somewhere


def test_every_note_field_says_its_limit_and_has_no_maxlength(api_app: Any, make_run: Callable[..., str]) -> None:
    """Run actions, the schedule's dialogs, the campaign actions and New: the limit beside each, no silent cut."""
    run_id = make_run("cr_campaign", state="running")
    client = login(api_app, "alice")
    pages = [client.get(run_url("cr_campaign", run_id)).text, client.get(f"{BASE}/display/cr_campaign").text]
    fields = [field for page in pages for field in re.findall(r"<textarea[^>]*name=\"note\"[^>]*>", page)]
    assert len(fields) >= 4  # the run's Stop, and the schedule's Stop, Restart and Skip dialogs at least
    for page in pages:
        for field in re.findall(r"<textarea[^>]*name=\"note\"[^>]*>", page):
            assert "maxlength" not in field and 'data-note-max="2000"' in field
            field_id = re.search(r'id="([^"]+)"', field)
            assert field_id is not None and f"{field_id.group(1)}-count" in field  # aria-describedby names it
            counter = re.search(rf'id="{re.escape(field_id.group(1))}-count">([^<]*)<', page)
            assert counter is not None and counter.group(1).strip() == "At most 2,000 characters: 2,000 left."
        assert "textarea[data-note-max]" in page  # the count-down script


def test_the_pages_refuse_a_long_note_and_keep_it_for_the_user(api_app: Any, make_run: Callable[..., str]) -> None:
    run_id = make_run("cr_campaign", state="running")
    client = login(api_app, "alice")
    note = "y" * 2001
    response = post_action(client, "cr_campaign", run_id, "stop", note)
    assert response.status_code == 422
    assert f'<div class="cr-error">{TOO_LONG} Nothing was changed.</div>' in response.text
    assert f">{note}</textarea>" in response.text  # kept whole in its field, to shorten
    assert "1 too many; shorten the note (it is never cut)." in response.text
    assert count(run_action) == 0 and record_status("cr_campaign", run_id) is None


def test_the_rest_api_and_the_cli_refuse_a_long_note_and_change_nothing(
    api_app: Any, make_run: Callable[..., str]
) -> None:
    run_id = make_run("cr_campaign", state="running")
    client = TestClient(api_app)
    token = client.post("/auth/token", json={"username": "alice", "password": PASSWORD}).json()["access_token"]
    answer = client.post(
        f"/campaign-runs/campaigns/cr_campaign/runs/{run_id}/stop",
        json={"note": "z" * 2001},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json() == {"detail": f"{TOO_LONG} Nothing was changed.", "code": "invalid_note"}
    code, _, err = run_in_process(
        ["campaigns", "stop", "cr_campaign", run_id, "--note", "z" * 2001, "--user", "alice", "--yes"]
    )
    assert code == 1 and TOO_LONG in err
    assert count(run_action) == 0 and record_status("cr_campaign", run_id) is None


def test_a_note_longer_than_airflow_keeps_is_shortened_there_with_an_ellipsis_and_whole_in_history(
    api_app: Any, make_run: Callable[..., str]
) -> None:
    """Airflow's run note holds 1,000 characters: it ends with "…"; History has the whole note; the list a title."""
    run_id = make_run("cr_campaign", state="running")
    note = "word " * 300  # 1,500 characters, stripped to 1,499
    core.stop_run("cr_campaign", run_id, actor="alice", note=note)
    kept = dag_run("cr_campaign", run_id).note
    assert len(kept) == 1000 and kept.endswith("\u2026") and kept[:-1] == note.strip()[:999].rstrip()
    [entry] = core.run_history("cr_campaign", run_id)
    assert entry.note == note.strip()
    client = login(api_app, "viewer")
    run_page = client.get(run_url("cr_campaign", run_id)).text
    assert 'id="cr-note-shortened">Shortened where Airflow keeps it' in run_page
    assert note.strip() in run_page  # the whole note, in History
    schedule = client.get(f"{BASE}/display/cr_campaign").text
    cell = re.search(rf'data-run-id="{re.escape(run_id)}".*?<td class="cr-note">(.*?)</td>', schedule, re.S)
    assert cell is not None
    shown = re.fullmatch(r'<span title="([^"]*)">([^<]*)&hellip;</span>', cell.group(1))
    assert shown is not None and shown.group(1) == kept and len(shown.group(2)) <= 139


@pytest.mark.browser
def test_the_note_counts_down_and_a_long_note_is_refused_before_it_is_sent(
    api_app: Any, make_run: Callable[..., str]
) -> None:
    """In Chromium, on the run page as served: the count follows typing; over the limit the form does not submit."""
    from tests.browser.support import chromium

    run_id = make_run("cr_campaign", state="running")
    html = login(api_app, "alice").get(run_url("cr_campaign", run_id)).text
    with chromium() as browser:
        page = browser.new_page()
        page.set_content(html)
        field = page.locator("form.cr-stop textarea[name=note]")
        counter = page.locator(f"#{field.get_attribute('id')}-count")
        field.fill("Wrong audience \u2603")  # a snowman is one character, as the server counts
        assert counter.text_content() == "At most 2,000 characters: 1,984 left."
        field.fill("x" * 2003)
        assert counter.text_content() == "At most 2,000 characters: 3 too many; shorten the note (it is never cut)."
        assert field.input_value() == "x" * 2003  # nothing cut
        assert page.evaluate("document.querySelector('form.cr-stop').checkValidity()") is False
        message = page.evaluate("document.querySelector('form.cr-stop textarea[name=note]').validationMessage")
        assert message == "The note is 2,003 characters long; the limit is 2,000."
        field.fill("x" * 2000)
        assert counter.text_content() == "At most 2,000 characters: 0 left."
        assert page.evaluate("document.querySelector('form.cr-stop').checkValidity()") is True
