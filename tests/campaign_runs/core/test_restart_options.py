"""Restart's options (core.actions): resend in doubt on request only, and options no other action takes."""

from __future__ import annotations

from typing import Any

import pytest
from campaign_runs import core
from campaign_runs.domain import InvalidOptionError
from campaign_runs.tables import run_action

from tests.campaign_runs.core.helpers import count, dag_run

RESEND = "campaign_resend_in_doubt"


def report_progress(dag_id: str, run_id: str, channel: str, value: dict[str, Any]) -> None:
    """What a ``send_<channel>`` task's progress push leaves in Airflow's XCom table."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        XComModel.set(
            "campaign_progress",
            {"channel": channel, **value},
            dag_id=dag_id,
            task_id=f"send_{channel}",
            run_id=run_id,
            session=session,
        )


def failed_run(make_run: Any) -> str:
    return str(make_run("cr_campaign", state="failed", ti_states={"build_audience": "success"}))


def test_a_restart_resends_in_doubt_only_when_asked_and_never_inherits_it(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    plain = core.restart_run("cr_campaign", failed_run(make_run), actor="alice", note="Fixed")
    assert RESEND not in dag_run("cr_campaign", plain.new_run_id).conf

    asked = core.restart_run("cr_campaign", failed_run(make_run), actor="alice", note="Fixed", resend_in_doubt=True)
    assert dag_run("cr_campaign", asked.new_run_id).conf[RESEND] is True

    with create_session() as session:  # the run that resent in doubt failed too; its restart asks nothing
        session.execute(update(DagRun).where(DagRun.run_id == asked.new_run_id).values(state="failed"))
    again = core.restart_run("cr_campaign", asked.new_run_id, actor="alice", note="Once more")
    assert RESEND not in dag_run("cr_campaign", again.new_run_id).conf


@pytest.mark.parametrize("action", ["stop", "skip"])
@pytest.mark.parametrize("option", ["unpause", "resend_in_doubt"])
def test_restart_options_on_another_action_are_refused_and_change_nothing(make_run, action, option) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="running" if action == "stop" else "failed")
    before = core.get_run("cr_campaign", run_id).status
    with pytest.raises(InvalidOptionError, match=f"options of restart, not of {action}"):
        core.perform(action, "cr_campaign", run_id, actor="alice", note="x", **{option: True})
    assert core.get_run("cr_campaign", run_id).status == before
    assert count(run_action) == 0


def test_run_details_show_recipients_in_doubt_per_channel_mapped_tasks_summed(make_run) -> None:  # type: ignore[no-untyped-def]
    run_id = failed_run(make_run)
    report_progress("cr_campaign", run_id, "email", {"total": 600, "sent": 30, "failed": 0, "in_doubt": 2})
    report_progress("cr_campaign", run_id, "sms", {"total": 10, "sent": 10, "failed": 0})  # an older task: no key
    details = core.run_details("cr_campaign", run_id)
    by_channel = {c.channel: c for c in details.channels}
    assert (by_channel["email"].sent, by_channel["email"].in_doubt) == (30, 2)
    assert by_channel["sms"].in_doubt == 0


@pytest.mark.parametrize("resend", [False, True])
def test_the_restart_email_gives_the_in_doubt_count_and_what_the_new_run_does(make_run, smtp_server, resend) -> None:  # type: ignore[no-untyped-def]
    from tests.support.fixtures import part_of

    run_id = failed_run(make_run)
    report_progress("cr_campaign", run_id, "email", {"total": 600, "sent": 30, "failed": 0, "in_doubt": 2})
    core.restart_run("cr_campaign", run_id, actor="alice", note="Fixed", resend_in_doubt=resend)
    core.wait_for_deliveries(10)
    [message] = smtp_server.wait_for(1)
    for part in (part_of(message, "text/plain"), part_of(message, "text/html")):
        assert "2 recipients were in doubt" in part
        assert ("sends them the message once more" in part) is resend
        assert ("does not send to them again" in part) is not resend


def test_a_restart_with_nobody_in_doubt_says_nothing_about_it(make_run, smtp_server) -> None:  # type: ignore[no-untyped-def]
    from tests.support.fixtures import part_of

    core.restart_run("cr_campaign", failed_run(make_run), actor="alice", note="Fixed")
    core.wait_for_deliveries(10)
    [message] = smtp_server.wait_for(1)
    assert "in doubt" not in part_of(message, "text/plain")


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"audience_size": 5}
    for _ in range(levels):
        value = {"nested": value}
    return value


@pytest.mark.parametrize("action", ["restart", "skip", "stop"])
def test_an_unknown_run_is_refused_before_the_request_is_fingerprinted(monkeypatch, airflow_db, action) -> None:  # type: ignore[no-untyped-def]
    from campaign_runs.core import records
    from campaign_runs.domain import NotFoundError

    def fingerprint(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("the request was fingerprinted before its run was looked up")

    monkeypatch.setattr(records, "request_fingerprint", fingerprint)
    options = {"params": deep(200)} if action == "restart" else {}
    with pytest.raises(NotFoundError):
        core.perform(action, "cr_campaign", "no_such_run", actor="alice", note="x", **options)


def test_params_nested_past_the_cap_are_refused_and_change_nothing(make_run) -> None:  # type: ignore[no-untyped-def]
    run_id = failed_run(make_run)
    with pytest.raises(InvalidOptionError, match="params: nested deeper than 16 levels"):
        core.restart_run("cr_campaign", run_id, actor="alice", note="x", params=deep(20))
    assert core.get_run("cr_campaign", run_id).status == "failed"
    assert count(run_action) == 0


def test_run_now_conf_nested_past_the_cap_is_refused(airflow_db) -> None:  # type: ignore[no-untyped-def]
    from campaign_runs.core import campaign_actions

    with pytest.raises(InvalidOptionError, match="conf: nested deeper than 16 levels"):
        campaign_actions.run_now("cr_campaign", actor="alice", note="x", conf=deep(20))
