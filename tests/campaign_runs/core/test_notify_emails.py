"""The three emails (stopped, restarted, skipped) as received over SMTP: multipart with a plain-text part.

Each email is ``multipart/alternative``: a ``text/plain`` part first, then the HTML one. Both carry the
work id, the campaign, the note and the links, which open Airflow's UI on the DAG's Campaign tab and the
run's Campaign run tab (and the new run's, for a restart).
"""

from __future__ import annotations

from email.message import Message
from typing import Any
from urllib.parse import quote

import pytest
from campaign_runs import core
from campaign_runs.core import notify

# [api] base_url of the test environment; [campaign_runs] base_url is empty, so links start with it.
BASE_URL = "http://airflow.example.com"
NOTE = 'Budget <b>"frozen"</b> & co'


def campaign_tab(dag_id: str) -> str:
    return f"{BASE_URL}/dags/{quote(dag_id, safe='')}/plugin/campaign"


def run_tab(dag_id: str, run_id: str) -> str:
    return f"{BASE_URL}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/plugin/campaign-run"


def parts(message: Message) -> tuple[str, str]:
    """The decoded plain-text and HTML parts, checking the message is multipart/alternative, text first."""
    assert message.get_content_type() == "multipart/alternative"
    payload = message.get_payload()
    assert isinstance(payload, list)
    assert [part.get_content_type() for part in payload] == ["text/plain", "text/html"]
    decoded = []
    for part in payload:
        raw = part.get_payload(decode=True)
        assert isinstance(raw, bytes)
        decoded.append(raw.decode(part.get_content_charset() or "utf-8"))
    return decoded[0], decoded[1]


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


def check_common(text: str, html: str, run_id: str) -> None:
    """What every kind says in both parts: greeting, work id, campaign, note, the links into Airflow's UI."""
    assert "Hello alice," in text and "<p>Hello alice,</p>" in html
    assert f"Work id: {run_id}\n" in text and f"Work id: <code>{run_id}</code>" in html
    assert "Campaign: cr_campaign\n" in text and "of campaign <strong>cr_campaign</strong>" in html
    assert f"Your note: {NOTE}\n" in text  # as typed: plain text is never rendered as HTML
    assert "Your note: Budget &lt;b&gt;&#34;frozen&#34;&lt;/b&gt; &amp; co</p>" in html
    assert f"Open the campaign: {campaign_tab('cr_campaign')}\n" in text
    assert f'<a href="{campaign_tab("cr_campaign")}">Open the campaign</a>' in html
    assert "/pluginsv2/" not in text + html  # never the bare plugin page: Airflow's UI around it


def test_skipped_email(make_run: Any, smtp_server: Any) -> None:
    run_id = make_run("cr_campaign", state="failed", run_id="scheduled__2026-03-02T08:00:00+00:00")
    core.skip_run("cr_campaign", run_id, actor="alice", note=NOTE)
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_campaign skipped"
    text, html = parts(message)
    check_common(text, html, run_id)
    assert "was marked skipped.\nThe campaign goes on with the rest of its schedule." in text
    assert f"Open the run: {run_tab('cr_campaign', run_id)}\n" in text
    assert f'<a href="{run_tab("cr_campaign", run_id)}">Open the run</a>' in html
    assert "%2B00%3A00/plugin/campaign-run" in text  # run ids are quoted in the path


def test_restarted_email_names_and_links_the_new_run(make_run: Any, smtp_server: Any) -> None:
    run_id = make_run("cr_campaign", state="failed")
    new_run_id = core.restart_run("cr_campaign", run_id, actor="alice", note=NOTE).new_run_id
    assert new_run_id
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_campaign restarted as {new_run_id}"
    text, html = parts(message)
    check_common(text, html, run_id)
    assert f"New run: {new_run_id}\n" in text and f"New run: <code>{new_run_id}</code>" in html
    assert f"restarted\nas the new run {new_run_id}, which is now queued." in text
    assert f"Open the new run: {run_tab('cr_campaign', new_run_id)}\n" in text
    assert f'<a href="{run_tab("cr_campaign", new_run_id)}">Open the new run</a>' in html
    assert f"Open the restarted run: {run_tab('cr_campaign', run_id)}\n" in text
    assert f'<a href="{run_tab("cr_campaign", run_id)}">Open the restarted run</a>' in html


def test_stopped_email(make_run: Any, smtp_server: Any) -> None:
    run_id = make_run("cr_campaign", state="running", ti_states={"send_email": "running"})
    core.stop_run("cr_campaign", run_id, actor="alice", note=NOTE)
    set_ti_state("cr_campaign", run_id, "send_email", "failed")
    core.housekeeping_pass()
    [message] = smtp_server.wait_for(1)
    assert message["Subject"] == f"[Campaign Runs] Run {run_id} of cr_campaign stopped"
    text, html = parts(message)
    check_common(text, html, run_id)
    assert "has stopped, as you asked.\nIt is now on your work list." in text
    assert f"Open the run: {run_tab('cr_campaign', run_id)}\n" in text
    assert f'<a href="{run_tab("cr_campaign", run_id)}">Open the run</a>' in html


def test_links_follow_the_plugins_tab_routes() -> None:
    """The email links use the url_route of the plugin's external views, as Airflow's UI routes them."""
    from campaign_runs.plugin import CampaignRunsPlugin

    routes = {view["destination"]: view["url_route"] for view in CampaignRunsPlugin.external_views}
    context = notify.action_context("my dag", "manual__1", "n", "restart__1")
    assert context["campaign_url"] == f"{BASE_URL}/dags/my%20dag/plugin/{routes['dag']}"
    assert context["run_url"] == f"{BASE_URL}/dags/my%20dag/runs/manual__1/plugin/{routes['dag_run']}"
    assert context["new_run_url"] == f"{BASE_URL}/dags/my%20dag/runs/restart__1/plugin/{routes['dag_run']}"


def test_a_custom_email_backend_still_gets_the_html(
    make_run: Any, monkeypatch: pytest.MonkeyPatch, smtp_server: Any
) -> None:
    """``[email] email_backend`` is honoured: a custom backend is called (HTML only, its signature has no text)."""
    sent: list[dict[str, Any]] = []

    def backend(to: str, subject: str, html_content: str, **kwargs: Any) -> None:
        sent.append({"to": to, "subject": subject, "html": html_content, "headers": kwargs.get("custom_headers")})

    monkeypatch.setattr("tests.campaign_runs.core.test_notify_emails.custom_backend", backend, raising=False)
    monkeypatch.setenv("AIRFLOW__EMAIL__EMAIL_BACKEND", "tests.campaign_runs.core.test_notify_emails.custom_backend")
    run_id = make_run("cr_campaign", state="failed")
    core.skip_run("cr_campaign", run_id, actor="alice", note=NOTE)
    core.wait_for_deliveries(10)
    [email] = sent
    assert email["to"] == "alice@example.com"
    assert f"Work id: <code>{run_id}</code>" in email["html"]
    assert email["headers"]["Message-ID"].startswith("<campaign-runs.")
    assert smtp_server.messages == []


def test_a_demo_run_s_email_says_demo_audience_and_the_recipient_count(make_run: Any, smtp_server: Any) -> None:
    from tests.support.fixtures import DEMO_AUDIENCE, report_audience

    run_id = make_run("cr_campaign", state="failed", ti_states={"build_audience": "success"})
    report_audience("cr_campaign", run_id, DEMO_AUDIENCE)
    core.skip_run("cr_campaign", run_id, actor="alice", note=NOTE)
    [message] = smtp_server.wait_for(1)
    text, html = parts(message)
    check_common(text, html, run_id)
    line = "demo audience (synthetic), 100 recipients (generated for examples, not real people)"
    assert f"Campaign: cr_campaign\nAudience: {line}\nYour note:" in text
    assert "<p>Audience: <strong>demo audience (synthetic)</strong>, 100 recipients (generated for examples," in html


def test_a_dry_run_s_email_says_so_as_the_run_froze_its_channels(make_run: Any, smtp_server: Any) -> None:
    """One channel a dry run, then every channel (the campaign's ``delivery: dry_run``); a live run says nothing."""
    from tests.support.fixtures import EMAIL_LIVE_SMS_DRY, report_frozen_channels

    partly = make_run("cr_campaign", state="failed", ti_states={"build_audience": "success"})
    report_frozen_channels("cr_campaign", partly, EMAIL_LIVE_SMS_DRY)
    core.skip_run("cr_campaign", partly, actor="alice", note=NOTE)
    whole = make_run("cr_campaign", state="failed", ti_states={"build_audience": "success"})
    report_frozen_channels("cr_campaign", whole, EMAIL_LIVE_SMS_DRY, "dry_run")
    core.skip_run("cr_campaign", whole, actor="alice", note=NOTE)
    live = make_run("cr_campaign", state="failed", ti_states={"build_audience": "success"})
    report_frozen_channels("cr_campaign", live, {"email": {"subject": "s", "body": "b"}})  # sms: no tag says dry
    core.skip_run("cr_campaign", live, actor="alice", note=NOTE)
    messages = {str(m["Subject"]): m for m in smtp_server.wait_for(3)}

    text, html = parts(messages[f"[Campaign Runs] Run {partly} of cr_campaign skipped"])
    check_common(text, html, partly)
    line = "dry run on sms (nothing is sent, messages are written to a local file there); email over smtp"
    audience = "demo audience (synthetic), 100 recipients (generated for examples, not real people)"
    assert f"Audience: {audience}\nDelivery: {line}\nYour note:" in text
    assert (
        "<p>Delivery: <strong>dry run on sms</strong> (nothing is sent, messages are written to a local file " in html
    )
    text, html = parts(messages[f"[Campaign Runs] Run {whole} of cr_campaign skipped"])
    assert "\nDelivery: dry run (nothing is sent, messages are written to a local file on every channel)\n" in text
    assert "<p>Delivery: <strong>dry run</strong> (nothing is sent" in html
    text, html = parts(messages[f"[Campaign Runs] Run {live} of cr_campaign skipped"])
    assert "Delivery" not in text + html and "dry run" not in text + html


def test_a_campaign_action_s_email_says_the_campaign_s_dry_runs(
    make_run: Any, smtp_server: Any, dry_run_tags: Any
) -> None:
    """Stop all (an email about the campaign's runs) says what the campaign's tags say."""
    from campaign_runs.core import campaign_actions

    dry_run_tags("cr_campaign", "dry-run:sms")
    make_run("cr_campaign", state="running")
    campaign_actions.stop_all("cr_campaign", actor="alice", note=NOTE)
    core.wait_for_deliveries(10)
    [message] = smtp_server.wait_for(1)
    text, html = parts(message)
    assert "Campaign: cr_campaign\nDelivery: dry run on sms (nothing is sent, messages are written to a local " in text
    assert "there); email\nYour note:" in text  # email: live, its transport not named by the campaign's tags
    assert "<p>Delivery: <strong>dry run on sms</strong>" in html


def test_a_real_audience_s_email_gives_its_label_and_count_and_none_before_it_is_read(
    make_run: Any, smtp_server: Any
) -> None:
    from tests.support.fixtures import SQL_AUDIENCE, report_audience

    read = make_run("cr_campaign", state="failed", ti_states={"build_audience": "success"})
    report_audience("cr_campaign", read, {**SQL_AUDIENCE, "label": "SQL query on Connection <crm>"})
    core.skip_run("cr_campaign", read, actor="alice", note=NOTE)
    unread = make_run("cr_campaign", state="failed", ti_states={"build_audience": "failed"})
    core.skip_run("cr_campaign", unread, actor="alice", note=NOTE)
    messages = {str(m["Subject"]): m for m in smtp_server.wait_for(2)}
    text, html = parts(messages[f"[Campaign Runs] Run {read} of cr_campaign skipped"])
    assert "Audience: SQL query on Connection <crm>, 1,250 recipients\n" in text
    assert "<p>Audience: SQL query on Connection &lt;crm&gt;, 1,250 recipients</p>" in html
    assert "demo" not in text + html
    text, html = parts(messages[f"[Campaign Runs] Run {unread} of cr_campaign skipped"])
    assert "Audience" not in text + html
    assert "Campaign: cr_campaign\nYour note:" in text
