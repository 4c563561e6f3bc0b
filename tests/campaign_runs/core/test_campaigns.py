"""Campaigns (core.campaigns): which DAGs are campaigns, their summaries, search, sort and About."""

from __future__ import annotations

import pytest
from campaign_runs import core
from campaign_runs.domain import NotACampaignError, NotFoundError


def test_list_campaigns_shows_only_tagged_dags(make_run) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="failed")
    campaigns, total = core.list_campaigns(dag_ids=["cr_campaign", "cr_depends", "cr_plain"])
    assert total == 2
    by_id = {c.dag_id: c for c in campaigns}
    assert set(by_id) == {"cr_campaign", "cr_depends"}
    newsletter = by_id["cr_campaign"]
    assert newsletter.owners == ["growth"]
    assert newsletter.owner_emails == ["growth@example.com"]
    assert newsletter.channels == ["email", "sms"]
    assert newsletter.audience == "testers"
    assert newsletter.schedule == "0 9 * * MON"
    assert newsletter.last_run_id == run_id
    assert newsletter.last_status == "failed"
    assert newsletter.active_runs == 0


def test_search_and_sort(airflow_db) -> None:  # type: ignore[no-untyped-def]
    campaigns, total = core.list_campaigns(search="DEPENDS", dag_ids=["cr_campaign", "cr_depends"])
    assert (total, [c.dag_id for c in campaigns]) == (1, ["cr_depends"])
    campaigns, _ = core.list_campaigns(dag_ids=["cr_campaign", "cr_depends"], descending=True)
    assert [c.dag_id for c in campaigns] == ["cr_depends", "cr_campaign"]


def test_unknown_and_non_campaign_dags_are_refused(airflow_db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFoundError, match="'nope' does not exist"):
        core.get_campaign("nope")
    with pytest.raises(NotACampaignError, match="not a campaign"):
        core.run_schedule("cr_plain")


def test_campaign_about(airflow_db) -> None:  # type: ignore[no-untyped-def]
    detail = core.get_campaign("cr_campaign")
    assert detail.timezone == "Europe/Paris"
    assert detail.params == {"audience_size": 100}
    assert "testers" in (detail.doc_md or "")
    assert detail.summary.description == "Weekly test newsletter"
