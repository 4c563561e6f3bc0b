"""The run adapter's schedule page on a real metadata DB: order, totals, skipped runs, status filters, paging."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from campaign_runs.adapters import runs
from campaign_runs.domain import RunStatus, utcnow
from campaign_runs.tables import run_record
from sqlalchemy import insert

MakeRun = Callable[..., str]


def record(dag_id: str, run_id: str, status: str | None, **values: Any) -> None:
    """Write the plugin's record of a run straight into ``campaign_run_record``."""
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(
            insert(run_record).values(
                dag_id=dag_id, run_id=run_id, status=status, version=1, updated_at=utcnow(), **values
            )
        )


def page(
    dag_id: str = "cr_campaign",
    *,
    include_skipped: bool = False,
    statuses: Sequence[RunStatus] = (),
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[str], int]:
    """``schedule_page``: the run ids of the page, in order, and the total."""
    from airflow.utils.session import create_session

    with create_session() as session:
        found, total = runs.schedule_page(
            dag_id,
            include_skipped=include_skipped,
            statuses=list(statuses),
            limit=limit,
            offset=offset,
            session=session,
        )
        return [r.run_id for r in found], total


def one_run_per_status(make_run: MakeRun) -> tuple[dict[RunStatus, list[str]], list[str]]:
    """Runs of ``cr_campaign`` in every displayed status, and all of them newest first; one run of another DAG."""
    created = {
        RunStatus.QUEUED: [make_run(state="queued")],
        RunStatus.RUNNING: [make_run(state="running", ti_states={"send_email": "running"})],
        RunStatus.FAILED: [make_run(state="failed")],
        RunStatus.COMPLETED: [make_run(state="success")],
        RunStatus.STOPPING: [make_run(state="failed", ti_states={"send_email": "running"})],
        RunStatus.STOPPED: [make_run(state="failed")],
        RunStatus.SKIPPED: [make_run(state="failed")],
    }
    record("cr_campaign", created[RunStatus.STOPPING][0], "stopping", stop_requested_by="alice")
    record("cr_campaign", created[RunStatus.STOPPED][0], "stopped", stop_requested_by="alice")
    record("cr_campaign", created[RunStatus.SKIPPED][0], "skipped")
    # A restarted run has a record without a status of its own: Airflow's state decides.
    restarted = make_run(state="queued")
    record("cr_campaign", restarted, None, restart_of_run_id=created[RunStatus.SKIPPED][0])
    created[RunStatus.QUEUED].append(restarted)
    other = make_run("cr_depends", state="failed")
    record("cr_depends", other, "skipped")
    # make_run gives each new run a later date, so the newest is the one created last.
    newest_first = [*[ids[0] for ids in created.values()], restarted][::-1]
    return created, newest_first


def test_newest_runs_come_first_with_the_total(make_run: MakeRun) -> None:
    """Runs of the campaign only, newest first, and how many there are."""
    run_ids = [make_run(state=state) for state in ("failed", "success", "running", "queued", "failed")]
    make_run("cr_depends", state="failed")
    assert page() == (run_ids[::-1], 5)
    assert page("cr_depends")[1] == 1
    assert page("cr_slow") == ([], 0)


def test_skipped_runs_are_hidden_unless_asked_for(make_run: MakeRun) -> None:
    """Skipped runs are neither shown nor counted, unless asked for or filtered on."""
    first, skipped, last = (make_run(state="failed") for _ in range(3))
    record("cr_campaign", skipped, "skipped")
    other = make_run("cr_depends", state="failed")
    record("cr_depends", other, "skipped")  # another campaign's skipped run does not change this one's total
    assert page() == ([last, first], 2)
    assert page(include_skipped=True) == ([last, skipped, first], 3)
    assert page(statuses=[RunStatus.SKIPPED]) == ([skipped], 1)
    assert page(statuses=[RunStatus.FAILED], include_skipped=True) == ([last, first], 2)


@pytest.mark.parametrize(
    "status",
    [
        RunStatus.QUEUED,
        RunStatus.RUNNING,
        RunStatus.FAILED,
        RunStatus.COMPLETED,
        RunStatus.STOPPING,
        RunStatus.STOPPED,
        RunStatus.SKIPPED,
    ],
    ids=str,
)
def test_each_displayed_status_filters_its_runs(make_run: MakeRun, status: RunStatus) -> None:
    """Filtering on one status gives exactly the runs displayed with it, newest first, and their number."""
    created, _ = one_run_per_status(make_run)
    expected = created[status][::-1]
    assert page(statuses=[status]) == (expected, len(expected))
    assert page(statuses=[status], include_skipped=True) == (expected, len(expected))


def test_several_statuses_filter_their_union(make_run: MakeRun) -> None:
    """Filtering on several statuses gives the runs of any of them, newest first."""
    created, newest_first = one_run_per_status(make_run)
    wanted = [RunStatus.FAILED, RunStatus.STOPPED, RunStatus.COMPLETED]
    expected = [r for r in newest_first if any(r in created[s] for s in wanted)]
    assert page(statuses=wanted) == (expected, 3)
    assert page() == ([r for r in newest_first if r not in created[RunStatus.SKIPPED]], 7)
    assert page(include_skipped=True) == (newest_first, 8)


def test_pages_follow_each_other_without_overlap(make_run: MakeRun) -> None:
    """Limit and offset cut consecutive pages of the newest-first list; every page has the full total."""
    run_ids = [make_run(state="failed") for _ in range(8)]
    record("cr_campaign", run_ids[5], "skipped")
    shown = [r for r in run_ids[::-1] if r != run_ids[5]]
    first, second, third = (page(limit=3, offset=offset) for offset in (0, 3, 6))
    assert (first[1], second[1], third[1]) == (7, 7, 7)
    assert (len(first[0]), len(second[0]), len(third[0])) == (3, 3, 1)
    assert not set(first[0]) & set(second[0])
    assert first[0] + second[0] + third[0] == shown
    assert page(limit=3, offset=9) == ([], 7)
    failed = [page(statuses=[RunStatus.FAILED], limit=2, offset=offset) for offset in (0, 2, 4, 6)]
    assert [ids for ids, _ in failed] == [shown[0:2], shown[2:4], shown[4:6], shown[6:]]
    assert {total for _, total in failed} == {7}


def test_the_total_ignores_records_of_deleted_runs(make_run: MakeRun) -> None:
    """A skipped run deleted in Airflow leaves its record behind; the total counts only runs that exist."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    kept, deleted, other = (make_run(state="failed") for _ in range(3))
    record("cr_campaign", deleted, RunStatus.SKIPPED.value)
    with create_session() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id == "cr_campaign", DagRun.run_id == deleted))
    assert page() == ([other, kept], 2)
