"""The DAG adapter on a real metadata DB: cached definitions per DAG version, timetable slots, tagged DAG pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pendulum
import pytest
from campaign_runs.adapters import dags

PROBE_DAG = "cr_adapter_probe"
PROBE_SOURCE = '''"""A throwaway DAG the adapter tests write, change and delete."""

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(
    {dag_id!r},
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    tags=["adapter-probe"],
    doc_md={doc_md!r},
    params={params!r},
):
    EmptyOperator(task_id="noop")
'''
CAMPAIGNS = ["cr_campaign", "cr_depends", "cr_slow", "cr_stubborn"]
TEST_DAGS = [*CAMPAIGNS, "cr_plain"]
PARIS = "Europe/Paris"
WriteDag = Callable[[str, dict[str, Any]], None]


def latest_version_id(dag_id: str) -> Any:
    """The id of the DAG's latest DagVersion."""
    from airflow.models.dag_version import DagVersion
    from airflow.utils.session import create_session

    with create_session() as session:
        version = DagVersion.get_latest_version(dag_id, session=session)
        assert version is not None, dag_id
        return version.id


def definition(dag_id: str) -> dags.DagDefinition:
    """``get_definition`` in a session of its own."""
    from airflow.utils.session import create_session

    with create_session() as session:
        found = dags.get_definition(dag_id, session)
    assert found is not None, dag_id
    return found


@pytest.fixture
def write_probe_dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WriteDag]:
    """Write the throwaway DAG to the metadata DB as the dag-processor does; delete it afterwards."""
    from airflow.api.common.delete_dag import delete_dag
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    # The dag-processor rewrites a serialized DAG at most every 30 s by default; these writes follow each other.
    monkeypatch.setenv("AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL", "0")

    def write(doc_md: str, params: dict[str, Any]) -> None:
        (tmp_path / "adapter_probe_dag.py").write_text(
            PROBE_SOURCE.format(dag_id=PROBE_DAG, doc_md=doc_md, params=params)
        )
        bag = DagBag(str(tmp_path))
        assert not bag.import_errors, bag.import_errors
        assert bag.dag_ids == [PROBE_DAG]
        sync_bag_to_db(bag, "dags-folder", None)

    yield write
    with create_session() as session:
        if session.get(DagModel, PROBE_DAG) is not None:
            delete_dag(PROBE_DAG, session=session)


# ------------------------------------------------------------------ get_definition


def test_two_reads_of_the_same_version_return_the_same_deserialized_dag() -> None:
    """The second read of an unchanged DAG comes from the cache: the very same object."""
    first, second = definition("cr_campaign"), definition("cr_campaign")
    assert first.dag is second.dag
    assert first.params == second.params == {"audience_size": 100}
    assert first.timezone == PARIS


def test_a_new_version_of_the_dag_is_read_at_once(write_probe_dag: WriteDag, make_run: Callable[..., str]) -> None:
    """Once a changed DAG is written as a new version, the next read returns its docs and params."""
    write_probe_dag("Probe **version one**.", {"size": 1})
    make_run(PROBE_DAG, state="success")  # a version that has task instances is never rewritten in place
    old_version = latest_version_id(PROBE_DAG)
    before = definition(PROBE_DAG)
    assert (before.doc_md, before.params) == ("Probe **version one**.", {"size": 1})
    assert definition(PROBE_DAG).dag is before.dag  # cached

    write_probe_dag("Probe **version two**.", {"size": 2, "channel": "sms"})
    assert latest_version_id(PROBE_DAG) != old_version
    after = definition(PROBE_DAG)
    assert (after.doc_md, after.params) == ("Probe **version two**.", {"size": 2, "channel": "sms"})
    assert after.dag is not before.dag


def test_an_unknown_dag_has_no_definition() -> None:
    """No serialized DAG, no definition."""
    from airflow.utils.session import create_session

    with create_session() as session:
        assert dags.get_definition("cr_no_such_dag", session) is None


# ------------------------------------------------------------------ upcoming_slots


def slots_with_stale_next_run(dag_id: str, count: int) -> list[dags.SlotInfo]:
    """``upcoming_slots`` while the DAG's stored next run is weeks old, as when no scheduler ran."""
    from airflow.utils.session import create_session

    stale = pendulum.datetime(2026, 1, 5, 8, tz="UTC")  # Monday 09:00 in Paris, long past
    with create_session() as session:
        info = dags.get_dag(dag_id, session)
        found = dags.get_definition(dag_id, session)
        assert info is not None and found is not None
        if info.next_dagrun_create_after is not None:
            info.model.next_dagrun = stale
            info.model.next_dagrun_create_after = stale
        try:
            return dags.upcoming_slots(found, info, count)
        finally:
            session.rollback()  # the shared test DAG keeps its stored next run


def test_upcoming_slots_are_the_next_future_cron_slots_in_order() -> None:
    """Slots already past are skipped; the first one is the next Monday 09:00 Paris time, then weekly."""
    slots = slots_with_stale_next_run("cr_campaign", 5)
    now = pendulum.now("UTC")
    assert len(slots) == 5
    assert all(slot.run_after >= now for slot in slots)
    assert [s.run_after for s in slots] == sorted({s.run_after for s in slots})
    local = [pendulum.instance(s.run_after).in_timezone(PARIS) for s in slots]
    assert {(t.day_of_week, t.hour, t.minute) for t in local} == {(pendulum.MONDAY, 9, 0)}
    assert [b.naive() - a.naive() for a, b in pairwise(local)] == [timedelta(days=7)] * 4
    assert local[0].subtract(weeks=1) < now  # no future slot was left out before the first
    assert all(s.run_after == s.logical_date for s in slots)  # a cron trigger runs at its logical date


def test_upcoming_slots_respect_the_count_and_unscheduled_dags() -> None:
    """No slots for a count of zero, nor for a DAG without a schedule."""
    assert slots_with_stale_next_run("cr_campaign", 0) == []
    assert len(slots_with_stale_next_run("cr_campaign", 2)) == 2
    assert slots_with_stale_next_run("cr_plain", 3) == []


# ------------------------------------------------------------------ list_tagged_dags


def tagged(
    tag: str,
    *,
    dag_ids: list[str] | None = TEST_DAGS,
    search: str | None = None,
    descending: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[str], int]:
    """``list_tagged_dags`` sorted by dag id: the ids of the page and the total."""
    from airflow.utils.session import create_session

    with create_session() as session:
        found, total = dags.list_tagged_dags(
            tag,
            dag_ids=dag_ids,
            search=search,
            sort="dag_id",
            descending=descending,
            limit=limit,
            offset=offset,
            session=session,
        )
        return [d.dag_id for d in found], total


def test_list_tagged_dags_filters_by_tag() -> None:
    """Only DAGs carrying the tag."""
    assert tagged("campaign") == (CAMPAIGNS, 4)
    assert tagged("etl") == (["cr_plain"], 1)
    assert tagged("channel:sms") == (["cr_campaign"], 1)
    assert tagged("audience:testers", dag_ids=None) == (["cr_campaign"], 1)
    assert tagged("no-such-tag", dag_ids=None) == ([], 0)


def test_list_tagged_dags_searches_ids_descriptions_and_owners_ignoring_case() -> None:
    """The search matches part of the dag id, the description or the owners, in any case."""
    assert tagged("campaign", search="STUBBORN") == (["cr_stubborn"], 1)
    assert tagged("campaign", search="depend on THE past") == (["cr_depends"], 1)
    assert tagged("campaign", search="Growth") == (CAMPAIGNS, 4)
    assert tagged("campaign", search="no such campaign") == ([], 0)
    assert tagged("etl", search="growth") == ([], 0)


def test_list_tagged_dags_keeps_only_the_dag_ids_asked_for() -> None:
    """``dag_ids`` restricts the result; an empty list gives nothing."""
    assert tagged("campaign", dag_ids=["cr_slow", "cr_plain", "cr_no_such_dag"]) == (["cr_slow"], 1)
    assert tagged("campaign", dag_ids=[]) == ([], 0)


def test_list_tagged_dags_pages_with_the_full_total() -> None:
    """Limit and offset cut a page of the sorted DAGs; the total counts them all."""
    first = tagged("campaign", limit=3)
    second = tagged("campaign", limit=3, offset=3)
    assert first == (CAMPAIGNS[:3], 4)
    assert second == (CAMPAIGNS[3:], 4)
    assert tagged("campaign", descending=True, limit=2) == (CAMPAIGNS[::-1][:2], 4)
    assert tagged("campaign", limit=2, offset=10) == ([], 4)


def test_list_tagged_dags_leaves_out_stale_dags() -> None:
    """A DAG whose file is gone (stale) is not listed."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.get(DagModel, "cr_slow").is_stale = True
        session.flush()  # not committed: rolled back below
        try:
            found, total = dags.list_tagged_dags(
                "campaign",
                dag_ids=TEST_DAGS,
                search=None,
                sort="dag_id",
                descending=False,
                limit=100,
                offset=0,
                session=session,
            )
            assert ([d.dag_id for d in found], total) == (["cr_campaign", "cr_depends", "cr_stubborn"], 3)
        finally:
            session.rollback()  # the shared test DAG stays fresh


def test_list_tagged_dags_matches_percent_and_underscore_literally() -> None:
    """``%`` and ``_`` in a search are characters to find, not wildcards."""
    assert tagged("campaign", search="%") == ([], 0)
    assert tagged("campaign", search="c%n") == ([], 0)
    assert tagged("campaign", search="cr_stub") == (["cr_stubborn"], 1)
    assert tagged("campaign", search="s_ubborn") == ([], 0)  # as a wildcard, _ would match "stubborn"
