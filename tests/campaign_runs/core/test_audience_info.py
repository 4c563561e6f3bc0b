"""Audiences as the plugin shows them (core.audience_info): a run's, from build_audience; a campaign's label."""

from __future__ import annotations

from typing import Any

import pytest
from campaign_runs import core
from campaign_runs.core.audience_info import audience_view, campaign_label
from campaign_runs.core.dto import AUDIENCE_UNREAD, AudienceView
from campaign_runs.domain import DEMO_AUDIENCE, SKIP_REASONS, skipped_text

from tests.campaign_runs.core.test_restart_options import failed_run, report_progress
from tests.support.fixtures import DEMO_AUDIENCE as DEMO_RESULT
from tests.support.fixtures import SQL_AUDIENCE, report_audience

LOG = "/dags/cr_campaign/runs/r1/tasks/build_audience"


def test_the_plugin_and_the_factory_say_the_same_words() -> None:
    from campaign_runs.factory import hygiene as snapshot
    from campaign_runs.factory.about import DEMO_LABEL

    assert DEMO_AUDIENCE == DEMO_LABEL
    reasons = (snapshot.NO_ID, snapshot.INVALID, snapshot.MISSING, snapshot.NO_CONSENT, snapshot.DUPLICATE)
    assert tuple(SKIP_REASONS) == reasons


def test_skipped_rows_in_words_known_reasons_first() -> None:
    assert skipped_text({}) == "0"
    assert skipped_text(None) == "0"
    assert skipped_text({"zz_new": 1, "no_consent": 1200, "invalid_address": 2, "duplicate": 0}) == (
        "1,203 (invalid address: 2, no consent: 1,200, zz_new: 1)"
    )


def test_a_sql_snapshot_in_one_line() -> None:
    view = audience_view(SQL_AUDIENCE, "success")
    assert view == AudienceView(
        source="sql",
        label="SQL query on Connection subscribers_db",
        recipients=1250,
        snapshot_rows=1250,
        snapshot_seconds=0.842,
        snapshot_reused=False,
        task_state="success",
    )
    assert view.line == "SQL query on Connection subscribers_db: 1,250 recipients (snapshot: 1,250 rows in 0.84 s)"
    reused = audience_view({**SQL_AUDIENCE, "snapshot": {**SQL_AUDIENCE["snapshot"], "reused": True}})
    assert reused.line == (
        "SQL query on Connection subscribers_db: 1,250 recipients (snapshot reused from the first run of this slot)"
    )


def test_an_empty_snapshot_says_0_recipients_plainly() -> None:
    empty = {**SQL_AUDIENCE, "size": 0, "snapshot": {"rows": 0, "seconds": 0.01, "source": "x", "reused": False}}
    assert audience_view(empty).line == "SQL query on Connection subscribers_db: 0 recipients (the snapshot is empty)"
    assert audience_view({**DEMO_RESULT, "size": 0}).line == f"{DEMO_AUDIENCE}: 0 recipients (the audience is empty)"
    assert audience_view({**DEMO_RESULT, "size": 1}).line == f"{DEMO_AUDIENCE}: 1 recipient"


def test_the_demo_audience_says_it_is_one_older_runs_too() -> None:
    view = audience_view(DEMO_RESULT, "success")
    assert (view.is_demo, view.label, view.recipients, view.snapshot_rows) == (True, DEMO_AUDIENCE, 100, None)
    assert view.line == "demo audience (synthetic): 100 recipients"
    older = audience_view({"campaign": "cr_campaign", "segment": "testers", "size": 7, "population": 50})
    assert (older.source, older.label, older.line) == ("demo", DEMO_AUDIENCE, "demo audience (synthetic): 7 recipients")


def test_a_failed_build_audience_gives_its_message_or_where_to_read_it() -> None:
    logged = "AirflowFailException: The audience could not be read (SQL query on Connection crm): timeout"
    failed = audience_view(None, "failed", logged, LOG)
    assert (failed.error, failed.log_path) == (
        "The audience could not be read (SQL query on Connection crm): timeout",
        LOG,
    )
    assert failed.line == failed.error
    unread = audience_view(None, "failed", None, LOG)
    assert (unread.error, unread.line, unread.log_path) == (AUDIENCE_UNREAD, AUDIENCE_UNREAD, LOG)
    assert AUDIENCE_UNREAD == "audience could not be read; see the build_audience log"
    other = audience_view(None, "failed", "ValueError: boom", LOG)
    assert other.error == "ValueError: boom"


def test_an_audience_not_read_yet() -> None:
    assert audience_view(None, "running").line == "not read yet"
    assert audience_view(None, None).line == "not read yet"
    assert audience_view(None, "skipped").line == "not reported (build_audience skipped)"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("weekly_newsletter", "SQL query on Connection subscribers_db"),
        ("flash_sale", None),  # the file's label, as build_audience gives it
        ("cart_abandonment", DEMO_AUDIENCE),
    ],
)
def test_a_campaign_label_from_its_about_equals_the_label_of_its_runs(name: str, expected: str | None) -> None:
    from campaign_runs.factory.about import about_markdown
    from campaign_runs.factory.sources import source_for
    from campaign_runs.factory.spec import load_spec

    from tests.dags.conftest import CAMPAIGNS

    spec = load_spec(CAMPAIGNS / f"{name}.yaml")
    label = campaign_label(spec.audience.segment, about_markdown(spec))
    assert label == (expected or source_for(spec.audience).label)
    if not spec.audience.is_demo:
        assert label == source_for(spec.audience).label
    if expected is None:
        assert label.startswith("CSV file file://") and label.endswith("/flash_sale.csv")


def test_a_campaign_label_without_about_comes_from_its_tag() -> None:
    assert campaign_label("sql", None) == "SQL query"
    assert campaign_label("file", "Some docs without the heading") == "file"
    assert campaign_label("testers", None) == DEMO_AUDIENCE
    assert campaign_label("", None) == ""
    # A demo segment named like a source: the About's heading tells.
    assert campaign_label("sql", "#### Audience: `sql`, demo audience (synthetic)\n") == DEMO_AUDIENCE


def test_campaigns_carry_their_audience_label(airflow_db: None) -> None:
    from airflow.models.dag import DagTag
    from airflow.utils.session import create_session
    from sqlalchemy import delete, insert

    found = {c.dag_id: c for c in core.list_campaigns(dag_ids=["cr_campaign", "cr_depends"])[0]}
    assert (found["cr_campaign"].audience_label, found["cr_campaign"].audience_is_demo) == (DEMO_AUDIENCE, True)
    assert found["cr_campaign"].audience_text == "demo audience (synthetic), segment testers"
    assert (found["cr_depends"].audience_label, found["cr_depends"].audience_text) == ("", "")
    with create_session() as session:
        session.execute(insert(DagTag).values(dag_id="cr_depends", name="audience:sql"))
    try:
        # A real source's label comes from its About (read for it); this DAG's has no audience heading.
        listed = {c.dag_id: c for c in core.list_campaigns(dag_ids=["cr_campaign", "cr_depends"])[0]}
        assert (listed["cr_depends"].audience_label, listed["cr_depends"].audience_is_demo) == ("SQL query", False)
        assert core.get_campaign("cr_depends").summary.audience_label == "SQL query"
    finally:
        with create_session() as session:
            session.execute(delete(DagTag).where(DagTag.dag_id == "cr_depends", DagTag.name == "audience:sql"))


def test_progress_sums_suppressed_and_skipped_over_a_channel_s_shards() -> None:
    from campaign_runs.adapters.tasks import ProgressReport
    from campaign_runs.core.progress import channel_progress

    shard = {"channel": "email", "total": 300, "sent": 300, "failed": 0, "in_doubt": 0}
    reports = [
        ProgressReport("send_email", 0, {**shard, "suppressed": 2, "skipped": {"no_consent": 5, "invalid_address": 1}}),
        ProgressReport("send_email", 1, {**shard, "suppressed": 1, "skipped": {"no_consent": 4, "duplicate": 2}}),
        ProgressReport("send_sms", -1, {"channel": "sms", "total": 10, "sent": 10, "failed": 0}),  # older: no keys
    ]
    email, sms, push = channel_progress(["email", "sms", "push"], reports, [])
    assert (email.total, email.sent, email.suppressed) == (600, 600, 3)
    assert email.skipped == {"no_consent": 9, "invalid_address": 1, "duplicate": 2}
    assert email.skipped_text == "12 (invalid address: 1, no consent: 9, duplicate: 2)"
    assert (sms.suppressed, sms.skipped, sms.skipped_text) == (0, {}, "0")
    assert (push.total, push.suppressed, push.skipped, push.skipped_text) == (None, None, None, "")


def test_run_details_show_suppressed_skipped_and_the_audience(make_run: Any) -> None:
    run_id = failed_run(make_run)
    report_audience("cr_campaign", run_id, SQL_AUDIENCE)
    progress = {"total": 1200, "sent": 1190, "failed": 10, "suppressed": 3, "skipped": {"no_consent": 47}}
    report_progress("cr_campaign", run_id, "email", progress)
    details = core.run_details("cr_campaign", run_id)
    email = {c.channel: c for c in details.channels}["email"]
    assert (email.total, email.suppressed, email.skipped, email.in_doubt) == (1200, 3, {"no_consent": 47}, 0)
    assert details.audience.line == (
        "SQL query on Connection subscribers_db: 1,250 recipients (snapshot: 1,250 rows in 0.84 s)"
    )
    assert details.audience.task_state == "success"
