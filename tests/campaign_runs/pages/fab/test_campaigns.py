"""Campaign pages through a real login (FAB auth manager) on the real metadata DB, in-process.

The API server's FastAPI app is built as ``airflow api-server`` builds it; users log in through the
FAB login form at ``/auth/login/`` and then use ``/pluginsv2/campaigns/...`` with the cookies it set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any
from urllib.parse import quote

import pytest
from campaign_runs import core
from campaign_runs.tables import run_action, run_record, worklist_entry
from sqlalchemy import func, select
from starlette.testclient import TestClient

from tests.support.fixtures import PASSWORD, body_of

BASE = "/pluginsv2/campaigns"
CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|name="csrf-token" content="([^"]+)"')
HOSTILE = '<script>alert("pwned")</script>'


# ------------------------------------------------------------------ helpers


def csrf_token(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1) or match.group(2)


def login(app: Any, username: str) -> TestClient:
    """A client logged in through the FAB login form, with that form's CSRF token."""
    client = TestClient(app, follow_redirects=False)
    page = client.get("/auth/login/")
    assert page.status_code == 200, page.text
    response = client.post(
        "/auth/login/", data={"username": username, "password": PASSWORD, "csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 302, response.text
    assert "_token" in client.cookies
    return client


@pytest.fixture
def users(api_app: Any) -> Iterator[Callable[[str], TestClient]]:
    """Log in any test user; clients are closed at the end."""
    clients: list[TestClient] = []

    def make(username: str) -> TestClient:
        client = login(api_app, username)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def run_url(dag_id: str, run_id: str) -> str:
    return f"{BASE}/display/{quote(dag_id, safe='')}/run/{quote(run_id, safe='')}"


def text(response: Any) -> str:
    """The page with tags removed and whitespace collapsed, for exact phrase checks."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def flashes(response: Any) -> list[str]:
    return [
        unescape(m).strip()
        for m in re.findall(r'<div class="cr-flash [a-z]+" role="alert">(.*?)</div>', response.text, re.S)
    ]


def badge(response: Any, element_id: str = "cr-run-status") -> str:
    match = re.search(
        rf'id="{element_id}">\s*<span class="cr-badge [a-z]+" data-status="([a-z]+)">([a-z]+)</span>', response.text
    )
    assert match, f"no badge in #{element_id}"
    assert match.group(1) == match.group(2)
    return match.group(2)


def row_actions(response: Any, run_id: str) -> list[str]:
    """Actions offered in place on a run's row of the run schedule (buttons opening a dialog)."""
    row = re.search(rf'<tr class="cr-row" data-run-id="{re.escape(run_id)}".*?</tr>', response.text, re.S)
    assert row, f"no row for {run_id}"
    return re.findall(
        r'<button type="button" class="cr-act" data-action="([a-z]+)" aria-haspopup="dialog">', row.group(0)
    )


def row_status(response: Any, run_id: str) -> str | None:
    """Status badge of a run's row in the run schedule, None when the row is not shown."""
    row = re.search(rf'<tr class="cr-row" data-run-id="{re.escape(run_id)}".*?</tr>', response.text, re.S)
    if row is None:
        return None
    status = re.search(r'<td class="cr-status"><span class="cr-badge [a-z]+" data-status="([a-z]+)">', row.group(0))
    assert status
    return status.group(1)


def post_action(
    client: TestClient,
    dag_id: str,
    run_id: str,
    action: str,
    note: str = "",
    *,
    origin: str = "run",
    token: bool = True,
    follow: bool = False,
    **extra: str,
) -> Any:
    """Submit an action form the way the browser does: CSRF token from the page, note, origin."""
    data = {"note": note, "origin": origin, **extra}
    if token:
        data["csrf_token"] = csrf_token(client.get(f"{BASE}/list").text)
    return client.post(f"{run_url(dag_id, run_id)}/{action}", data=data, follow_redirects=follow)


def count(table: Any, **where: Any) -> int:
    from airflow.utils.session import create_session

    with create_session() as session:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        return session.scalar(query) or 0


def record_status(dag_id: str, run_id: str) -> str | None:
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.scalar(
            select(run_record.c.status).where(run_record.c.dag_id == dag_id, run_record.c.run_id == run_id)
        )


def dag_run_count(dag_id: str) -> int:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.scalar(select(func.count()).where(DagRun.dag_id == dag_id)) or 0


def set_ti_state(dag_id: str, run_id: str, task_id: str, state: str) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(
            update(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id)
            .values(state=state)
        )


def set_paused(dag_id: str, paused: bool) -> None:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == dag_id).values(is_paused=paused))


def is_paused(dag_id: str) -> bool:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return bool(session.scalar(select(DagModel.is_paused).where(DagModel.dag_id == dag_id)))


def push_progress(dag_id: str, run_id: str, task_id: str, value: dict[str, Any]) -> None:
    """What a ``send_<channel>`` task's ``xcom_push("campaign_progress", ...)`` leaves in the DB."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        dag_run_id = session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        session.add(
            XComModel(
                dag_run_id=dag_run_id,
                task_id=task_id,
                map_index=-1,
                key="campaign_progress",
                dag_id=dag_id,
                run_id=run_id,
                value=value,
            )
        )


def write_failed_task_log(dag_id: str, run_id: str, task_id: str, error: str) -> None:
    """The structured log a failed first try leaves where Airflow's log reader looks for it."""
    import json
    from pathlib import Path

    from airflow.configuration import conf
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.log.log_reader import TaskLogReader
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.scalar(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id
            )
        )
        ti.try_number = 1
        session.flush()
        relative = TaskLogReader().log_handler._render_filename(ti, 1, session=session)
    path = Path(conf.get("logging", "base_log_folder")) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        {"timestamp": "2026-03-02T08:00:01.000000Z", "level": "info", "event": "Sending batch 1", "logger": "task"},
        {
            "timestamp": "2026-03-02T08:00:02.000000Z",
            "level": "error",
            "event": "Task failed with exception",
            "logger": "task",
            "error_detail": [{"exc_type": "AirflowFailException", "exc_value": error, "frames": []}],
        },
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def stopped_run(make_run: Callable[..., str], client: TestClient) -> str:
    """A run of cr_campaign that ``client``'s user stopped and that has now stopped."""
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "running"})
    assert post_action(client, "cr_campaign", run_id, "stop", "halt").status_code == 303
    set_ti_state("cr_campaign", run_id, "build_audience", "failed")
    core.finish_stopping_runs()
    assert record_status("cr_campaign", run_id) == "stopped"
    return run_id


# ------------------------------------------------------------------ login, navigation


def test_anonymous_user_is_sent_to_the_login_page(api_app: Any) -> None:
    with TestClient(api_app, follow_redirects=False) as client:
        response = client.get(f"{BASE}/list")
        assert response.status_code == 302
        assert "/auth/login/?next=" in response.headers["location"]
        assert client.get(f"{run_url('cr_campaign', 'x')}/status.json").status_code == 401
        assert client.post(f"{run_url('cr_campaign', 'x')}/stop", data={"note": "x"}).status_code in (400, 401)


def test_plugin_declares_the_nav_entry_and_the_dag_and_run_tabs() -> None:
    from campaign_runs.plugin import CampaignRunsPlugin

    views = {view["destination"]: view for view in CampaignRunsPlugin.external_views}
    assert views["nav"]["name"] == "Campaigns"
    assert views["nav"]["href"] == f"{BASE}/list"
    assert views["dag"]["href"] == f"{BASE}/display/{{DAG_ID}}"
    assert views["dag_run"]["href"] == f"{BASE}/display/{{DAG_ID}}/run/{{RUN_ID}}"
    assert all(view.get("url_route") for view in views.values())


def test_plugins_api_lists_the_campaigns_nav_entry(users: Callable[[str], TestClient]) -> None:
    response = users("admin").get("/api/v2/plugins")
    assert response.status_code == 200, response.text
    [plugin] = [p for p in response.json()["plugins"] if p["name"] == "campaign_runs"]
    assert {v["name"]: v["destination"] for v in plugin["external_views"]} == {
        "Campaigns": "nav",
        "Campaign": "dag",
        "Campaign run": "dag_run",
    }


def test_login_is_recognised_with_the_database_session_backend(airflow_db: None, make_run: Callable[..., str]) -> None:
    """With ``[fab] session_backend = database`` the views know the user from Airflow's API token cookie."""
    from airflow.api_fastapi.app import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__FAB__SESSION_BACKEND", "database")
        patch.setenv("AIRFLOW__FAB__AUTH_RATE_LIMIT", "1000 per 1 second")
        app = create_app()
    run_id = make_run("cr_campaign", state="running")
    with login(app, "alice") as alice:
        listed = alice.get(f"{BASE}/list")
        assert listed.status_code == 200
        assert "Signed in as <strong>alice</strong>" in listed.text
        response = post_action(alice, "cr_campaign", run_id, "stop", "from a database session")
        assert response.status_code == 303
        assert count(run_action, run_id=run_id, actor="alice", note="from a database session") == 1
    with TestClient(app, follow_redirects=False) as anonymous:
        anonymous.cookies.set("_token", "not-a-token")
        assert anonymous.get(f"{BASE}/list").status_code == 302


# ------------------------------------------------------------------ campaigns page


def test_campaigns_page_lists_campaigns_with_their_state(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    make_run("cr_campaign", state="failed")
    make_run("cr_campaign", state="running")
    set_paused("cr_depends", True)
    response = users("viewer").get(f"{BASE}/list")
    assert response.status_code == 200
    page = text(response)
    ids = re.findall(r'<tr class="cr-row" data-href="[^"]+" data-dag-id="([^"]+)"', response.text)
    assert [i for i in ids if i.startswith("cr_")] == ["cr_campaign", "cr_depends", "cr_slow", "cr_stubborn"]
    row = re.search(r'data-dag-id="cr_campaign">(.*?)</tr>', response.text, re.S)
    assert row
    cells = [
        " ".join(unescape(re.sub(r"<[^>]+>", " ", c)).split())
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    ]
    assert cells[0] == "cr_campaign Weekly test newsletter"
    assert cells[1:4] == ["growth", "email, sms", "demo audience (synthetic) testers"]
    assert '<strong class="cr-demo">demo audience (synthetic)</strong>' in row.group(1)
    assert cells[4].startswith("0 9 * * MON ")
    assert cells[5] == "Europe/Paris"  # the zone its schedule runs in
    assert cells[7] == "active"  # the State column
    assert cells[8] == "running"  # the last run
    assert cells[9:] == ["1", "0", "0"]  # active runs, open work list, failed emails
    depends = re.search(r'data-dag-id="cr_depends">(.*?)</tr>', response.text, re.S)
    assert depends and 'data-status="paused"' in depends.group(1)
    assert "cr_plain" not in page


def test_campaigns_page_and_about_mark_dry_run_campaigns_and_channels(
    users: Callable[[str], TestClient], dry_run_tags: Callable[..., None]
) -> None:
    """Tagged as the factory tags them: a campaign with one dry-run channel, and one whose every channel is."""
    dry_run_tags("cr_campaign", "dry-run:sms")
    dry_run_tags("cr_depends", "dry-run", "dry-run:email")
    client = users("viewer")
    page = client.get(f"{BASE}/list").text

    def channels_cell(dag_id: str) -> str:
        row = re.search(rf'data-dag-id="{dag_id}">(.*?)</tr>', page, re.S)
        assert row
        cell = re.search(r'<td class="cr-channels">(.*?)</td>', row.group(1), re.S)
        assert cell
        return cell.group(1)

    badge = r'<span class="cr-badge dry-run" data-delivery="dry-run" title="A dry run sends nothing[^"]*">'
    assert channels_cell("cr_campaign").startswith("email, sms<br>")
    assert re.search(badge + "dry run: sms</span>", channels_cell("cr_campaign"))
    assert re.search(badge + "dry run</span>", channels_cell("cr_depends"))
    assert "dry-run" not in channels_cell("cr_slow")  # every channel live: no badge
    about = client.get(f"{BASE}/display/cr_campaign").text
    found = re.search(r"<dt>Channels</dt><dd>(.*?)</dd>", about, re.S)
    assert found and " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split()) == "email, sms dry run: sms"
    assert 'class="cr-badge dry-run"' in found.group(1)


def test_campaigns_page_searches_and_sorts(users: Callable[[str], TestClient]) -> None:
    client = users("viewer")
    found = client.get(f"{BASE}/list", params={"q": "SLOW"})
    ids = re.findall(r'data-dag-id="([^"]+)"', found.text)
    assert ids == ["cr_slow"]
    assert "1 campaign" in text(found)
    descending = client.get(f"{BASE}/list", params={"sort": "dag_id", "desc": "1"})
    ids = [i for i in re.findall(r'data-dag-id="([^"]+)"', descending.text) if i.startswith("cr_")]
    assert ids == ["cr_stubborn", "cr_slow", "cr_depends", "cr_campaign"]
    hostile = client.get(f"{BASE}/list", params={"q": HOSTILE})
    assert HOSTILE not in hostile.text
    assert "&lt;script&gt;" in hostile.text


def test_campaigns_page_shows_only_campaigns_the_user_may_read(
    api_app: Any, users: Callable[[str], TestClient]
) -> None:
    from tests.support.fixtures import one_dag_user

    client = users(one_dag_user())
    ids = re.findall(r'data-dag-id="([^"]+)"', client.get(f"{BASE}/list").text)
    assert ids == ["cr_slow"]
    refused = client.get(f"{BASE}/display/cr_campaign")
    assert refused.status_code == 403
    assert flashes(refused) == ["You may not see campaign cr_campaign."]
    assert client.get(f"{BASE}/display/cr_slow").status_code == 200


# ------------------------------------------------------------------ campaign display


def test_campaign_display_shows_about_and_the_run_schedule(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    older = make_run(
        "cr_campaign",
        state="success",
        ti_states=dict.fromkeys(("build_audience", "send_email", "send_sms", "summarise"), "success"),
    )
    newer = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    push_progress("cr_campaign", newer, "send_email", {"channel": "email", "total": 40, "sent": 10, "failed": 0})
    client = users("alice")
    response = client.get(f"{BASE}/display/cr_campaign")
    assert response.status_code == 200
    about = re.search(r'<dl class="cr-about" id="cr-about">(.*?)</dl>', response.text, re.S)
    assert about
    pairs = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", about.group(1), re.S))
    plain = {k: " ".join(unescape(re.sub(r"<[^>]+>", "", v)).split()) for k, v in pairs.items()}
    assert plain["Description"] == "Weekly test newsletter"
    assert plain["Owner"] == "growth <growth@example.com>"
    assert plain["Audience"] == "demo audience (synthetic), segment testers"
    assert plain["Channels"] == "email, sms"
    assert plain["Schedule"].startswith("0 9 * * MON · ")
    assert plain["Schedule"].endswith("(Europe/Paris)")
    assert '"audience_size": 100' in plain["Configuration"]
    assert "<strong>testers</strong>" in response.text  # the doc, rendered from Markdown

    schedule = re.search(r'<table id="cr-schedule".*?</table>', response.text, re.S)
    assert schedule
    statuses = re.findall(r'data-status="([a-z]+)"', schedule.group(0))
    assert statuses[:5] == ["scheduled"] * 5  # upcoming slots first
    assert statuses[5:] == ["running", "completed"]  # then past runs, newest first
    rows = re.findall(r'data-run-id="([^"]+)"', schedule.group(0))
    assert rows == [newer, older]
    assert row_status(response, older) == "completed"
    # Alice may act in place: the running run's row offers Stop, the finished one nothing.
    assert row_actions(response, newer) == ["stop"]
    assert row_actions(response, older) == []
    assert 'data-href="' + run_url("cr_campaign", newer) + '"' in response.text  # the dialog posts under it
    # Messages, not tasks: 10 of 40 sent so far; the finished run's tasks are all done but it reported none.
    messages = [
        " ".join(re.sub(r"<[^>]+>", " ", cell).split())
        for cell in re.findall(r'<td class="cr-bar cr-messages">(.*?)</td>', schedule.group(0), re.S)
    ]
    assert messages == ["25% 10 of 40 sent", "0% not reported"]


def test_viewer_sees_the_schedule_without_action_links(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    run_id = make_run("cr_campaign", state="failed")
    response = users("viewer").get(f"{BASE}/display/cr_campaign")
    assert row_status(response, run_id) == "failed"
    assert "#restart" not in response.text and "#skip" not in response.text
    assert row_actions(response, run_id) == []
    assert "<dialog" not in response.text and "<form" not in response.text.split('id="cr-schedule"')[1]


def test_run_schedule_is_paginated(
    users: Callable[[str], TestClient], make_run: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from campaign_runs.settings import get_settings

    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__PAGE_SIZE", "2")
    get_settings.cache_clear()
    run_ids = [make_run("cr_campaign", state="success") for _ in range(3)]
    client = users("viewer")
    first = client.get(f"{BASE}/display/cr_campaign")
    assert re.findall(r'class="cr-row" data-run-id="([^"]+)"', first.text) == run_ids[::-1][:2]
    assert "Page 1 of 2" in text(first)
    second = client.get(f"{BASE}/display/cr_campaign", params={"page": 2})
    assert re.findall(r'class="cr-row" data-run-id="([^"]+)"', second.text) == [run_ids[0]]
    assert 'data-status="scheduled"' not in second.text  # upcoming slots only on the first page


def test_unknown_dags_and_runs_are_404(users: Callable[[str], TestClient]) -> None:
    client = users("admin")
    missing = client.get(f"{BASE}/display/no_such_dag")
    assert missing.status_code == 404
    assert flashes(missing) == ["Campaign 'no_such_dag' does not exist."]
    assert client.get(run_url("cr_campaign", "nope")).status_code == 404
    assert client.get(f"{BASE}/display/cr_plain/status.json").status_code == 404  # JSON stays an error


def test_campaign_tabs_of_a_dag_that_is_not_a_campaign_say_how_to_make_it_one(
    users: Callable[[str], TestClient], make_run: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow shows the Campaign tab on every DAG: on a plain DAG it explains, it is not an error page."""
    from campaign_runs.settings import get_settings

    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__CAMPAIGN_TAG", "campaign")
    get_settings.cache_clear()
    client = users("admin")
    plain = client.get(f"{BASE}/display/cr_plain")
    assert plain.status_code == 200
    assert flashes(plain) == []
    assert "cr_plain is not a campaign" in text(plain)
    assert "add the tag campaign to the DAG (the [campaign_runs] campaign_tag setting names it)" in text(plain)
    run_id = make_run("cr_plain", state="success")
    run_tab = client.get(run_url("cr_plain", run_id))
    assert run_tab.status_code == 200
    assert f"This DAG and its run {run_id} has no campaign display: only DAGs tagged campaign" in text(run_tab)

    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__CAMPAIGN_TAG", "marketing")  # the configured tag is named
    get_settings.cache_clear()
    try:
        renamed = client.get(f"{BASE}/display/cr_plain")
        assert renamed.status_code == 200
        assert "add the tag marketing to the DAG" in text(renamed)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


# ------------------------------------------------------------------ run details


def test_run_details_show_progress_tasks_and_history(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    run_id = make_run(
        "cr_campaign",
        state="running",
        ti_states={"build_audience": "success", "send_email": "running", "send_sms": "failed"},
        run_id="scheduled__2026-03-02T08:00:00+00:00",  # ':' and '+' as in Airflow's run ids
    )
    push_progress("cr_campaign", run_id, "send_email", {"channel": "email", "total": 200, "sent": 50, "failed": 10})
    push_progress("cr_campaign", run_id, "send_sms", {"channel": "sms", "total": 100, "sent": 100, "failed": 0})
    write_failed_task_log("cr_campaign", run_id, "send_sms", "SMS gateway refused <b>batch 3</b>")
    response = users("alice").get(run_url("cr_campaign", run_id))
    assert response.status_code == 200, response.text[:500]
    assert badge(response) == "running"
    assert re.search(r"Work id</dt><dd><code>scheduled__2026-03-02T08:00:00\+00:00</code>", response.text)
    channels = {
        m[0]: (m[1], m[2], m[3], m[4])
        for m in re.findall(
            r'<tr data-channel="(\w+)">.*?<span class="cr-percent">(\d+)%</span>.*?'
            r'class="cr-sent">(\d+)<.*?class="cr-failed">(\d+)<.*?class="cr-total">(\d+)<',
            response.text,
            re.S,
        )
    }
    assert channels == {"email": ("30", "50", "10", "200"), "sms": ("100", "100", "0", "100")}
    overall = re.search(r'id="cr-overall">.*?<span class="cr-percent">(\d+)%', response.text, re.S)
    assert overall and overall.group(1) == "53"  # (60 + 100) of 300 messages
    tasks = dict(re.findall(r'<tr data-task-id="(\w+)">.*?data-status="([a-z_]+)"', response.text, re.S))
    assert tasks == {"build_audience": "success", "send_email": "running", "send_sms": "failed", "summarise": "none"}
    assert re.findall(r'<div class="cr-error cr-failure">(.*?)</div>', response.text) == [
        "AirflowFailException: SMS gateway refused &lt;b&gt;batch 3&lt;/b&gt;"
    ]
    assert (
        f'href="/dags/cr_campaign/runs/{quote(run_id, safe="")}/tasks/send_email" target="_top">log</a>'
        in response.text
    )
    assert 'id="stop"' in response.text and 'id="restart"' not in response.text
    assert "No action taken on this run." in response.text


def test_status_json_reports_status_and_channel_progress(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    push_progress("cr_campaign", run_id, "send_email", {"channel": "email", "total": 10, "sent": 4, "failed": 1})
    client = users("viewer")
    data = client.get(f"{run_url('cr_campaign', run_id)}/status.json").json()
    assert (data["status"], data["active"], data["progress_percent"], data["overall_percent"]) == (
        "running",
        True,
        25,
        50,
    )
    assert data["channels"] == [  # every declared channel, as in the REST API and the CLI
        {
            "channel": "email",
            "total": 10,
            "sent": 4,
            "failed": 1,
            "in_doubt": 0,
            "suppressed": 0,
            "skipped": {},
            "skipped_text": "0",
            "percent": 50,
        },
        {
            "channel": "sms",
            "total": None,
            "sent": None,
            "failed": None,
            "in_doubt": None,
            "suppressed": None,
            "skipped": None,
            "skipped_text": "",
            "percent": None,
        },
    ]
    assert data["allowed_actions"] == ["stop"]
    schedule = client.get(f"{BASE}/display/cr_campaign/status.json").json()
    assert [(r["run_id"], r["status"]) for r in schedule["runs"]] == [(run_id, "running")]


def channel_cells(html: str, channel: str) -> dict[str, str]:
    """The run page's numbers of one channel, by column class (sent, failed, in-doubt, suppressed, skipped, total)."""
    row = re.search(rf'<tr data-channel="{channel}">(.*?)</tr>', html, re.S)
    assert row, channel
    found = re.findall(r'<td class="cr-([a-z-]+)">(.*?)</td>', row.group(1), re.S)
    return {name: " ".join(unescape(re.sub(r"<[^>]+>", " ", value)).split()) for name, value in found}


def audience_shown(html: str) -> str:
    found = re.search(r'<dt>Audience</dt><dd id="cr-audience"[^>]*>(.*?)</dd>', html, re.S)
    assert found
    return " ".join(unescape(re.sub(r"<[^>]+>", "", found.group(1))).split())


def test_run_details_show_suppressed_skipped_and_the_audience(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    from tests.support.fixtures import SQL_AUDIENCE, report_audience

    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    report_audience("cr_campaign", run_id, SQL_AUDIENCE)
    progress = {"total": 1200, "sent": 600, "failed": 2, "in_doubt": 1, "suppressed": 3}
    skipped = {"no_consent": 40, "invalid_address": 7, "<b>new</b>": 1}
    push_progress("cr_campaign", run_id, "send_email", {"channel": "email", **progress, "skipped": skipped})
    client = users("viewer")
    page = client.get(run_url("cr_campaign", run_id)).text
    assert channel_cells(page, "email") == {
        "bar": "50%",
        "sent": "600",
        "failed": "2",
        "in-doubt": "1",
        "suppressed": "3",
        "skipped": "48 (invalid address: 7, no consent: 40, <b>new</b>: 1)",
        "total": "1200",
    }
    assert "&lt;b&gt;new&lt;/b&gt;: 1" in page and "<b>new</b>" not in page  # escaped
    assert channel_cells(page, "sms") == {
        "bar": "0%",
        "sent": "",
        "failed": "",
        "in-doubt": "",
        "suppressed": "",
        "skipped": "",
        "total": "not reported yet",
    }
    assert "<th>Total</th>" in page and ">Suppressed</abbr></th>" in page and ">Skipped</abbr></th>" in page
    assert audience_shown(page) == (
        "SQL query on Connection subscribers_db: 1,250 recipients (snapshot: 1,250 rows in 0.84 s)"
    )
    polled = client.get(f"{run_url('cr_campaign', run_id)}/status.json").json()["channels"][0]
    assert (polled["suppressed"], polled["skipped"]) == (3, skipped)
    assert polled["skipped_text"] == "48 (invalid address: 7, no consent: 40, <b>new</b>: 1)"


def test_run_details_say_the_demo_audience_and_an_empty_snapshot_plainly(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    from tests.support.fixtures import DEMO_AUDIENCE, SQL_AUDIENCE, report_audience

    client = users("viewer")
    demo = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    report_audience("cr_campaign", demo, DEMO_AUDIENCE)
    page = client.get(run_url("cr_campaign", demo)).text
    assert audience_shown(page) == "demo audience (synthetic): 100 recipients"
    assert '<strong class="cr-demo">demo audience (synthetic)</strong>' in page
    empty = make_run("cr_campaign", state="success", ti_states={"build_audience": "success"})
    snapshot = {"rows": 0, "seconds": 0.02, "source": SQL_AUDIENCE["label"], "reused": False}
    report_audience("cr_campaign", empty, {**SQL_AUDIENCE, "size": 0, "snapshot": snapshot})
    shown = audience_shown(client.get(run_url("cr_campaign", empty)).text)
    assert shown == "SQL query on Connection subscribers_db: 0 recipients (the snapshot is empty)"
    waiting = make_run("cr_campaign", state="queued")
    assert audience_shown(client.get(run_url("cr_campaign", waiting)).text) == "not read yet"


def delivery_cells(html: str) -> dict[str, tuple[str, str]]:
    """The run page's Transport column: channel -> (its text, its ``data-dry-run`` flag)."""
    rows = re.findall(
        r'<tr data-channel="([^"]+)">.*?<td class="cr-delivery" data-dry-run="(1?)">(.*?)</td>', html, re.S
    )
    return {channel: (" ".join(re.sub(r"<[^>]+>", " ", cell).split()), flag) for channel, flag, cell in rows}


def test_run_details_say_which_channels_are_a_dry_run_as_the_run_froze_them(
    users: Callable[[str], TestClient], make_run: Callable[..., str], dry_run_tags: Callable[..., None]
) -> None:
    from tests.support.fixtures import EMAIL_LIVE_SMS_DRY, report_frozen_channels

    client = users("viewer")
    partly = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    report_frozen_channels("cr_campaign", partly, EMAIL_LIVE_SMS_DRY)
    page = client.get(run_url("cr_campaign", partly)).text
    assert delivery_cells(page) == {"email": ("smtp", ""), "sms": ("dry run", "1")}
    assert '<td class="cr-delivery" data-dry-run="1"><span class="cr-badge dry-run"' in page
    delivery = re.search(r'<dt>Delivery</dt><dd id="cr-delivery">(.*?)</dd>', page, re.S)
    assert delivery and " ".join(re.sub(r"<[^>]+>", " ", delivery.group(1)).split()) == (
        "dry run: sms nothing is sent on those channels: their messages are written to a local file"
    )
    whole = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    report_frozen_channels(
        "cr_campaign", whole, {"email": {"subject": "s", "body": "b"}, "sms": {"text": "t"}}, "dry_run"
    )
    page = client.get(run_url("cr_campaign", whole)).text
    assert delivery_cells(page) == {"email": ("smtp (dry run)", "1"), "sms": ("dry run", "1")}  # delivery: dry_run
    assert '<dd id="cr-delivery"><span class="cr-badge dry-run"' in page and ">dry run</span>" in page
    # The campaign now says email is a dry run too: a run that froze its channels keeps its own words.
    dry_run_tags("cr_campaign", "dry-run", "dry-run:email", "dry-run:sms")
    assert delivery_cells(client.get(run_url("cr_campaign", partly)).text)["email"] == ("smtp", "")
    waiting = make_run("cr_campaign", state="queued")  # nothing frozen yet: the campaign's tags say it
    assert delivery_cells(client.get(run_url("cr_campaign", waiting)).text) == {
        "email": ("dry run", "1"),
        "sms": ("dry run", "1"),
    }


def test_run_details_of_a_live_run_name_the_transport_and_no_dry_run(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    from tests.support.fixtures import report_frozen_channels

    client = users("viewer")
    live = make_run("cr_campaign", state="running", ti_states={"build_audience": "success"})
    report_frozen_channels("cr_campaign", live, {"email": {"subject": "s", "body": "b"}})
    page = client.get(run_url("cr_campaign", live)).text
    # email froze smtp; sms (declared since) froze nothing and no tag says it is a dry run: not known yet.
    assert delivery_cells(page) == {"email": ("smtp", ""), "sms": ("not reported yet", "")}
    assert 'id="cr-delivery"' not in page and 'class="cr-badge dry-run"' not in page


def test_a_failed_build_audience_shows_its_message_or_where_to_read_it(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    client = users("alice")
    logged = make_run("cr_campaign", state="failed", ti_states={"build_audience": "failed"})
    error = "The audience could not be read (SQL query on Connection crm): relation <subscribers> does not exist"
    write_failed_task_log("cr_campaign", logged, "build_audience", error)
    page = client.get(run_url("cr_campaign", logged)).text
    assert audience_shown(page) == f"{error} build_audience log"  # from the task's log, escaped
    assert "&lt;subscribers&gt;" in page and "<subscribers>" not in page
    log_link = f'href="/dags/cr_campaign/runs/{quote(logged, safe="")}/tasks/build_audience" target="_top"'
    assert f'<a id="cr-audience-log" {log_link}>build_audience log</a>' in page
    unread = make_run("cr_campaign", state="failed", ti_states={"build_audience": "failed"})
    page = client.get(run_url("cr_campaign", unread)).text
    assert audience_shown(page) == "audience could not be read; see the build_audience log build_audience log"
    assert f'href="/dags/cr_campaign/runs/{quote(unread, safe="")}/tasks/build_audience"' in page


# ------------------------------------------------------------------ actions


def test_stop_with_a_note_reads_stopping_then_stopped_with_email_and_work_list(
    users: Callable[[str], TestClient], make_run: Callable[..., str], smtp_server: Any
) -> None:
    run_id = make_run("cr_campaign", state="running", ti_states={"build_audience": "success", "send_email": "running"})
    alice = users("alice")
    page = alice.get(run_url("cr_campaign", run_id))
    assert 'action="' + run_url("cr_campaign", run_id) + '/stop"' in page.text
    assert "Add Note" in page.text and '<button type="submit" name="submit" value="stop">Stop run</button>' in page.text
    assert ">Submit</button>" not in page.text

    response = post_action(alice, "cr_campaign", run_id, "stop", "Wrong audience")
    assert response.status_code == 303
    assert response.headers["location"] == run_url("cr_campaign", run_id)
    shown = alice.get(response.headers["location"])
    assert flashes(shown) == [
        f"Run {run_id} is stopping; you will get an email when it has stopped, and it will be on your work list."
    ]
    assert badge(shown) == "stopping"
    assert record_status("cr_campaign", run_id) == "stopping"
    assert count(run_action, run_id=run_id, action="stop", actor="alice", note="Wrong audience") == 1

    set_ti_state("cr_campaign", run_id, "send_email", "failed")  # the task process ended
    core.housekeeping_pass()
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_campaign stopped"
    assert message["To"] == "alice@example.com"
    assert f"Work id: <code>{run_id}</code>" in body_of(message)

    stopped = alice.get(run_url("cr_campaign", run_id))
    assert badge(stopped) == "stopped"
    assert 'id="restart"' in stopped.text and 'id="skip"' in stopped.text and 'id="stop"' not in stopped.text
    history = re.search(r'<table id="cr-history">(.*?)</table>', stopped.text, re.S)
    assert history and "running &rarr; stopping" in history.group(1) and "Wrong audience" in history.group(1)

    worklist = alice.get(f"{BASE}/worklist")
    assert re.findall(r'<tr data-run-id="([^"]+)"', worklist.text) == [run_id]
    assert re.findall(r'<tr data-run-id="([^"]+)"', users("bob").get(f"{BASE}/worklist").text) == []


def test_restart_from_the_work_list_queues_a_linked_run_and_emails(
    users: Callable[[str], TestClient], make_run: Callable[..., str], smtp_server: Any
) -> None:
    alice = users("alice")
    run_id = stopped_run(make_run, alice)
    worklist = alice.get(f"{BASE}/worklist")
    assert f'action="{run_url("cr_campaign", run_id)}/restart"' in worklist.text
    response = post_action(alice, "cr_campaign", run_id, "restart", "Audience fixed", origin="worklist")
    assert response.status_code == 303
    assert response.headers["location"] == f"{BASE}/worklist"
    after = alice.get(f"{BASE}/worklist")
    [new_run_id] = [r for r in re.findall(r"restart__\S+?__" + re.escape(run_id), flashes(after)[0])]
    assert flashes(after) == [
        f"Run {run_id} is skipped and restarted as run {new_run_id}, which is queued and starts shortly; "
        "an email is on its way to you."
    ]
    assert re.findall(r'<tr data-run-id="([^"]+)"', after.text) == []  # resolved
    assert record_status("cr_campaign", run_id) == "skipped"
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_campaign restarted as {new_run_id}"

    new_page = alice.get(run_url("cr_campaign", new_run_id))
    assert badge(new_page) == "queued"
    assert f'id="cr-restart-of" href="{run_url("cr_campaign", run_id)}"' in new_page.text
    old_page = alice.get(run_url("cr_campaign", run_id))
    assert badge(old_page) == "skipped"
    assert f'id="cr-replaced-by" href="{run_url("cr_campaign", new_run_id)}"' in old_page.text
    display = alice.get(f"{BASE}/display/cr_campaign")
    assert row_status(display, new_run_id) == "queued"
    assert row_status(display, run_id) is None  # skipped runs are hidden after refresh


def test_a_role_that_may_edit_but_not_create_runs_may_skip_but_not_restart(
    users: Callable[[str], TestClient], make_run: Callable[..., str], smtp_server: Any
) -> None:
    editor = users("editor")  # a custom role: edit DAG runs, no "create"
    run_id = make_run("cr_campaign", state="failed")
    page = editor.get(run_url("cr_campaign", run_id))
    assert page.status_code == 200, page.text
    assert 'class="cr-action cr-skip"' in page.text and 'class="cr-action cr-restart"' not in page.text
    refused = post_action(editor, "cr_campaign", run_id, "restart", "Retry")
    assert refused.status_code == 403 and "may not restart" in refused.text
    assert (record_status("cr_campaign", run_id), count(run_action)) == (None, 0)
    assert post_action(editor, "cr_campaign", run_id, "skip", "Not needed").status_code == 303


def test_restart_from_the_page_resends_in_doubt_only_when_ticked(
    users: Callable[[str], TestClient], make_run: Callable[..., str], smtp_server: Any
) -> None:
    from tests.campaign_runs.core.helpers import dag_run

    alice = users("alice")
    ticked, plain = make_run("cr_campaign", state="failed"), make_run("cr_campaign", state="failed")
    assert 'name="resend_in_doubt"' in alice.get(run_url("cr_campaign", ticked)).text
    assert post_action(alice, "cr_campaign", ticked, "restart", "Resend", resend_in_doubt="on").status_code == 303
    assert post_action(alice, "cr_campaign", plain, "restart", "Plain").status_code == 303
    conf = {r: dag_run("cr_campaign", core.get_run("cr_campaign", r).replaced_by or "").conf for r in (ticked, plain)}
    assert conf[ticked]["campaign_resend_in_doubt"] is True
    assert "campaign_resend_in_doubt" not in conf[plain]
    refused = post_action(
        alice, "cr_campaign", make_run("cr_campaign", state="running"), "stop", "x", resend_in_doubt="on"
    )
    assert refused.status_code == 422 and "options of restart" in unescape(refused.text)


def test_skip_from_the_display_keeps_the_run_visible_until_refresh(
    users: Callable[[str], TestClient], make_run: Callable[..., str], smtp_server: Any
) -> None:
    run_id = make_run("cr_campaign", state="failed")
    alice = users("alice")
    response = post_action(alice, "cr_campaign", run_id, "skip", "Not needed this week", origin="display")
    assert response.status_code == 303
    assert response.headers["location"] == f"{BASE}/display/cr_campaign"  # no keep= in the URL: F5 hides it
    kept = alice.get(response.headers["location"])
    assert flashes(kept) == [
        f"Run {run_id} is skipped; the campaign goes on with its schedule and an email is on its way to you."
    ]
    assert row_status(kept, run_id) == "skipped"
    assert row_status(alice.get(f"{BASE}/display/cr_campaign"), run_id) is None
    assert row_status(alice.get(f"{BASE}/display/cr_campaign", params={"show_skipped": "1"}), run_id) == "skipped"
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_campaign skipped"
    assert message["To"] == "alice@example.com"


def test_restart_of_a_paused_campaign_is_refused_then_offers_to_unpause(
    users: Callable[[str], TestClient], make_run: Callable[..., str], smtp_server: Any
) -> None:
    run_id = make_run("cr_campaign", state="failed")
    set_paused("cr_campaign", True)
    alice = users("alice")
    runs_before = dag_run_count("cr_campaign")
    refused = post_action(alice, "cr_campaign", run_id, "restart", "try again")
    assert refused.status_code == 409
    assert flashes(refused) == [
        "Campaign 'cr_campaign' is paused, so a restarted run would not start. "
        "Unpause the campaign first, or ask to unpause it with the restart."
    ]
    assert '<input type="checkbox" name="unpause"> unpause the campaign' in refused.text
    assert ">try again</textarea>" in refused.text  # the note is kept
    assert (dag_run_count("cr_campaign"), count(run_action), record_status("cr_campaign", run_id)) == (
        runs_before,
        0,
        None,
    )

    accepted = post_action(alice, "cr_campaign", run_id, "restart", "try again", unpause="on")
    assert accepted.status_code == 303
    assert not is_paused("cr_campaign")
    assert dag_run_count("cr_campaign") == runs_before + 1
    assert record_status("cr_campaign", run_id) == "skipped"
    smtp_server.wait_for(1)


# ------------------------------------------------------------------ refusals


def test_action_the_status_does_not_allow_is_409_with_a_flash(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    run_id = make_run("cr_campaign", state="running")
    response = post_action(users("alice"), "cr_campaign", run_id, "skip", "no")
    assert response.status_code == 409
    assert flashes(response) == [
        "Skip is not allowed for a run that is running; it is allowed when the run is failed, stopped."
    ]
    assert badge(response) == "running"
    assert count(run_action) == 0
    assert record_status("cr_campaign", run_id) is None


def test_viewer_may_not_act_403_and_nothing_changes(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    running = make_run("cr_campaign", state="running")
    failed = make_run("cr_campaign", state="failed")
    viewer = users("viewer")
    page = viewer.get(run_url("cr_campaign", failed))
    assert page.status_code == 200
    assert "<form" not in page.text  # no action forms for a viewer
    for run_id, action in ((running, "stop"), (failed, "restart"), (failed, "skip")):
        response = post_action(viewer, "cr_campaign", run_id, action, "sneaky")
        assert response.status_code == 403
        assert flashes(response) == [f"You may not {action} runs of campaign cr_campaign."]
    assert count(run_action) == 0
    assert (record_status("cr_campaign", running), record_status("cr_campaign", failed)) == (None, None)
    assert dag_run_count("cr_campaign") == 2
    reassign = viewer.post(
        f"{BASE}/worklist/reassign",
        data={"dag_id": "cr_campaign", "run_id": failed, "to_user": "viewer", "csrf_token": csrf_token(page.text)},
    )
    assert reassign.status_code == 403


def test_post_without_csrf_token_is_400_and_nothing_changes(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    run_id = make_run("cr_campaign", state="running")
    alice = users("alice")
    response = post_action(alice, "cr_campaign", run_id, "stop", "no token", token=False)
    assert response.status_code == 400
    assert "CSRF token is missing" in response.text
    forged = post_action(alice, "cr_campaign", run_id, "stop", "bad token", token=False, csrf_token="forged")
    assert forged.status_code == 400
    assert count(run_action) == 0
    assert record_status("cr_campaign", run_id) is None
    assert badge(alice.get(run_url("cr_campaign", run_id))) == "running"


def test_hostile_note_is_shown_as_text(users: Callable[[str], TestClient], make_run: Callable[..., str]) -> None:
    run_id = make_run("cr_campaign", state="running")
    alice = users("alice")
    assert post_action(alice, "cr_campaign", run_id, "stop", HOSTILE, origin="display").status_code == 303
    for page in (alice.get(run_url("cr_campaign", run_id)), alice.get(f"{BASE}/display/cr_campaign")):
        assert HOSTILE not in page.text
        assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page.text


def test_over_long_note_is_refused_and_nothing_changes(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    run_id = make_run("cr_campaign", state="running")
    alice = users("alice")
    response = post_action(alice, "cr_campaign", run_id, "stop", "x" * 2001)
    assert response.status_code == 422  # the same status the REST API answers (one error mapping)
    too_long = (
        "The note is 2001 characters long; the limit is 2000: shorten it by 1 character (a note is never cut). "
        "Nothing was changed."
    )
    assert flashes(response) == [too_long]
    assert f'<div class="cr-error">{too_long}</div>' in response.text
    empty = post_action(alice, "cr_campaign", run_id, "stop", "   ")
    assert empty.status_code == 422
    assert flashes(empty) == ["A note is required: say why you take this action."]
    assert count(run_action) == 0
    assert record_status("cr_campaign", run_id) is None


def test_unknown_action_is_404(users: Callable[[str], TestClient], make_run: Callable[..., str]) -> None:
    run_id = make_run("cr_campaign", state="running")
    assert post_action(users("alice"), "cr_campaign", run_id, "explode", "x").status_code == 404
    assert post_action(users("alice"), "cr_campaign", run_id, "reassign", "x").status_code == 404
    assert count(run_action) == 0


# ------------------------------------------------------------------ work list


def test_admin_sees_everyones_work_list_and_reassigns(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    alice = users("alice")
    run_id = stopped_run(make_run, alice)
    admin = users("admin")
    everyone = admin.get(f"{BASE}/worklist")
    assert "<h1>My work list</h1>" in everyone.text
    assert "Everyone's entries (you are a work-list admin)" in unescape(everyone.text)
    row = re.search(rf'<tr data-run-id="{re.escape(run_id)}">.*?</tr>', everyone.text, re.S)
    assert row and '<td class="cr-assignee">alice</td>' in row.group(0)
    assert re.findall(r'<tr data-run-id="([^"]+)"', admin.get(f"{BASE}/worklist", params={"mine": "1"}).text) == []
    # Alice is not an admin: her page has no reassign form and she may not post one.
    assert "cr-reassign" not in alice.get(f"{BASE}/worklist").text
    refused = alice.post(
        f"{BASE}/worklist/reassign",
        data={
            "dag_id": "cr_campaign",
            "run_id": run_id,
            "to_user": "alice",
            "csrf_token": csrf_token(alice.get(f"{BASE}/worklist").text),
        },
    )
    assert refused.status_code == 403
    assert flashes(refused) == ["Only administrators may reassign work-list entries."]
    token = csrf_token(everyone.text)

    moved = admin.post(
        f"{BASE}/worklist/reassign",
        data={"dag_id": "cr_campaign", "run_id": run_id, "to_user": "bob", "csrf_token": token},
    )
    assert moved.status_code == 303
    assert flashes(admin.get(moved.headers["location"])) == [f"Run {run_id} is now on the work list of bob."]
    assert count(worklist_entry, run_id=run_id, assignee="bob") == 1
    assert re.findall(r'<tr data-run-id="([^"]+)"', users("bob").get(f"{BASE}/worklist").text) == [run_id]
    assert re.findall(r'<tr data-run-id="([^"]+)"', alice.get(f"{BASE}/worklist").text) == []

    unknown = admin.post(
        f"{BASE}/worklist/reassign",
        data={"dag_id": "cr_campaign", "run_id": run_id, "to_user": "nobody", "csrf_token": token},
    )
    assert unknown.status_code == 404
    assert flashes(unknown) == ["User 'nobody' does not exist."]


# ------------------------------------------------------------------ the display as its users see it


def dialog(response: Any, action: str) -> str:
    found = re.search(rf'<dialog class="cr-dialog" id="cr-dialog-{action}".*?</dialog>', response.text, re.S)
    assert found, f"no {action} dialog"
    return found.group(0)


def test_display_rows_offer_their_actions_in_dialogs_with_note_and_submit(
    users: Callable[[str], TestClient], make_run: Callable[..., str]
) -> None:
    running = make_run("cr_campaign", state="running")
    failed = make_run("cr_campaign", state="failed")
    response = users("alice").get(f"{BASE}/display/cr_campaign")
    assert (row_actions(response, running), row_actions(response, failed)) == (["stop"], ["restart", "skip"])
    token = csrf_token(response.text)
    for action in ("stop", "restart", "skip"):
        shown = dialog(response, action)
        assert f'<input type="hidden" name="csrf_token" value="{token}">' in shown
        assert '<input type="hidden" name="origin" value="display">' in shown
        assert '<input type="hidden" name="idempotency_key"' in shown
        assert f'<label for="cr-dialog-{action}-note">Add Note</label>' in shown
        assert f'<textarea id="cr-dialog-{action}-note" name="note" data-note-max="2000" ' in shown
        assert f'aria-describedby="cr-dialog-{action}-note-count" required' in shown  # the limit, beside it
        assert f'<button type="submit" name="submit" value="{action}">{action.capitalize()} run</button>' in shown
    what = {a: " ".join(unescape(re.sub(r"<[^>]+>", " ", dialog(response, a))).split()) for a in ("restart", "skip")}
    assert "The run is marked skipped and a new run is created and started in its slot" in what["restart"]
    assert "The run is marked skipped and the campaign continues with its schedule." in what["skip"]
    assert "unpause" not in dialog(response, "restart")  # only offered when the campaign is paused


def test_skip_from_a_row_dialog_then_refresh_and_show_skipped(
    users: Callable[[str], TestClient], make_run: Callable[..., str], smtp_server: Any
) -> None:
    run_id = make_run("cr_campaign", state="failed")
    alice = users("alice")
    response = post_action(alice, "cr_campaign", run_id, "skip", "From the row", origin="display")
    assert response.status_code == 303
    assert "keep" not in response.headers["location"]
    shown = alice.get(response.headers["location"])
    assert row_status(shown, run_id) == "skipped"  # kept once, marked skipped
    assert row_actions(shown, run_id) == []
    # The in-place updates list the skipped run too, so the row stays while the user stays on the page.
    polled = alice.get(f"{BASE}/display/cr_campaign/status.json")
    assert (run_id, "skipped") in [(r["run_id"], r["status"]) for r in polled.json()["runs"]]
    # A poll never rewrites the session cookie (a poll crossing an action would drop its flash and value).
    assert "session=" in shown.headers.get("set-cookie", "")
    assert "session=" not in polled.headers.get("set-cookie", "")
    assert "session=" not in alice.get(f"{run_url('cr_campaign', run_id)}/status.json").headers.get("set-cookie", "")
    assert row_status(alice.get(f"{BASE}/display/cr_campaign"), run_id) is None  # F5: gone
    assert row_status(alice.get(f"{BASE}/display/cr_campaign"), run_id) is None
    assert row_status(alice.get(f"{BASE}/display/cr_campaign", params={"show_skipped": "1"}), run_id) == "skipped"
    # Another user's display is not affected by Alice's one-time value.
    other = make_run("cr_campaign", state="failed")
    post_action(alice, "cr_campaign", other, "skip", "again", origin="display")
    assert row_status(users("bob").get(f"{BASE}/display/cr_campaign"), other) is None
    smtp_server.wait_for(2)


def test_restart_from_a_row_dialog_shows_the_new_run_and_keeps_the_old_once(
    users: Callable[[str], TestClient], make_run: Callable[..., str], smtp_server: Any
) -> None:
    run_id = make_run("cr_campaign", state="failed")
    alice = users("alice")
    response = post_action(alice, "cr_campaign", run_id, "restart", "Retry from the row", origin="display")
    assert response.status_code == 303
    assert response.headers["location"] == f"{BASE}/display/cr_campaign"
    shown = alice.get(response.headers["location"])
    [new_run_id] = re.findall(r'data-run-id="(restart__[^"]+)"', shown.text)
    assert flashes(shown) == [
        f"Run {run_id} is skipped and restarted as run {new_run_id}, which is queued and starts shortly; "
        "an email is on its way to you."
    ]
    assert (row_status(shown, new_run_id), row_status(shown, run_id)) == ("queued", "skipped")
    again = alice.get(f"{BASE}/display/cr_campaign")
    assert (row_status(again, new_run_id), row_status(again, run_id)) == ("queued", None)
    smtp_server.wait_for(1)


@pytest.fixture
def dag_row() -> Iterator[Callable[..., None]]:
    """Change cr_campaign's DagModel row for one test; restored afterwards."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    columns = ("is_paused", "next_dagrun", "next_dagrun_create_after")
    with create_session() as session:
        saved = session.execute(
            select(*(getattr(DagModel, c) for c in columns)).where(DagModel.dag_id == "cr_campaign")
        ).one()

    def change(**values: Any) -> None:
        with create_session() as session:
            session.execute(update(DagModel).where(DagModel.dag_id == "cr_campaign").values(**values))

    yield change
    change(**dict(zip(columns, saved, strict=True)))


def test_next_run_is_never_in_the_past_and_reads_paused_when_paused(
    users: Callable[[str], TestClient], dag_row: Callable[..., None]
) -> None:
    import pendulum

    stale = pendulum.datetime(2026, 1, 5, 8, tz="UTC")  # left behind while no scheduler ran
    dag_row(is_paused=False, next_dagrun=stale, next_dagrun_create_after=stale)
    [summary] = [c for c in core.list_campaigns()[0] if c.dag_id == "cr_campaign"]
    now = pendulum.now("UTC")
    assert summary.next_run_after is not None and summary.next_run_after > now
    local = pendulum.instance(summary.next_run_after).in_timezone("Europe/Paris")
    assert (local.day_of_week, local.hour, local.minute) == (pendulum.MONDAY, 9, 0)
    assert summary.next_run_after - now <= pendulum.duration(weeks=1)
    assert core.get_campaign("cr_campaign").summary.next_run_after == summary.next_run_after
    client = users("viewer")
    listed = client.get(f"{BASE}/list")
    next_cell = re.search(r'data-dag-id="cr_campaign">.*?<td class="cr-next-run">(.*?)</td>', listed.text, re.S)
    assert next_cell and next_cell.group(1).startswith(summary.next_run_after.strftime("%Y-%m-%d %H:%M"))
    display = client.get(f"{BASE}/display/cr_campaign")
    assert (
        re.search(r'<dd id="cr-next-run">(.*?)</dd>', display.text)
        .group(1)
        .startswith(  # type: ignore[union-attr]
            summary.next_run_after.strftime("%Y-%m-%d %H:%M")
        )
    )

    future = now.add(days=3)
    dag_row(next_dagrun=future, next_dagrun_create_after=future)  # a scheduler keeps it ahead: shown as stored
    [ahead] = [c for c in core.list_campaigns()[0] if c.dag_id == "cr_campaign"]
    assert ahead.next_run_after == future

    dag_row(is_paused=True, next_dagrun=stale, next_dagrun_create_after=stale)
    [paused] = [c for c in core.list_campaigns()[0] if c.dag_id == "cr_campaign"]
    assert paused.next_run_after is None
    listed = client.get(f"{BASE}/list")
    assert re.search(r'data-dag-id="cr_campaign">.*?<td class="cr-next-run">paused</td>', listed.text, re.S)
    display = client.get(f"{BASE}/display/cr_campaign")
    assert '<dd id="cr-next-run">paused</dd>' in display.text
    assert (
        "Paused: no run starts, and Run now is not offered, until the campaign is resumed; "
        "then it goes on at the next slot. Someone who may change its runs can resume it."
    ) in text(display)
    assert 'id="cr-resume-link"' not in display.text  # a viewer may not resume it
    schedule = re.search(r'<table id="cr-schedule".*?</table>', display.text, re.S)
    assert schedule and 'data-status="scheduled"' not in schedule.group(0)  # no upcoming runs while paused


def test_restart_dialog_offers_to_unpause_a_paused_campaign(
    users: Callable[[str], TestClient], make_run: Callable[..., str], dag_row: Callable[..., None]
) -> None:
    make_run("cr_campaign", state="failed")
    dag_row(is_paused=True)
    response = users("alice").get(f"{BASE}/display/cr_campaign")
    assert '<input type="checkbox" name="unpause">' in dialog(response, "restart")


def test_campaign_docs_render_tables_without_raw_html_or_unsafe_links() -> None:
    from campaign_runs.pages.format import render_markdown

    html = render_markdown(
        "| channel | size |\n| --- | ---: |\n| email | **5000** |\n\n"
        "<script>alert(1)</script> [bad](javascript:alert(1)) [good](https://example.com/x)"
    )
    assert "<table>" in html and "<th>channel</th>" in html and '<th style="text-align:right">size</th>' in html
    assert '<td>email</td>\n<td style="text-align:right"><strong>5000</strong></td>' in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript' not in html
    assert '<a href="https://example.com/x">good</a>' in html
