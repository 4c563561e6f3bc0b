"""Schedules keep their word, with a real dag-processor and scheduler re-parsing every 2 s the whole time.

Each campaign is hourly and "created" four hours ago (its state file says so), ran its slot three hours ago (or
one hour ago), and has been paused since: Resume ``none``, ``latest`` and ``all`` must create exactly the runs
the README's table says, for catchup off and on, and go on doing so for at least three parse intervals.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
from campaign_runs.core import campaign_actions, definitions
from campaign_runs.domain import ConflictError
from campaign_runs.factory.schedule_state import state_path, state_text
from campaign_runs.settings import get_settings

from tests.browser.support import running_stack
from tests.dags.campaigns.runs import task_states, wait_run_done
from tests.support.airflow_env import REPO
from tests.support.fixtures import SmtpSink, start_smtp
from tests.support.processes import AirflowStack, wait_until

pytestmark = pytest.mark.slow

PARSE_INTERVAL = 2  # [dag_processor] min_file_process_interval of the stack
WATCH_SECONDS = 4 * PARSE_INTERVAL  # at least three parse intervals after each action
TEMPLATE = """\
id: {dag_id}
description: Schedule promise test.
owner: alice
owner_email: alice@example.com
schedule:
  cron: "{cron}"
  timezone: UTC
  start_date: 2025-01-01
  catchup: {catchup}
audience:
  segment: testers
  size: 2
  population: 100
channels:
  email:
    subject: "{subject}"
    body: "Hello $first_name"
    batch_size: 10
{extra}"""


def definition(dag_id: str, *, cron: str = "0 * * * *", catchup: bool = False, **more: str) -> str:
    values = {"subject": "Weekly news", "extra": ""} | more
    return TEMPLATE.format(dag_id=dag_id, cron=cron, catchup=str(catchup).lower(), **values)


def hour(offset: int) -> pendulum.DateTime:
    return pendulum.now("UTC").start_of("hour").add(hours=offset)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A DAGs folder with the campaigns loader; this process writes its campaigns as New would."""
    root = tmp_path_factory.mktemp("schedule-e2e")
    campaigns = root / "dags" / "campaigns"
    campaigns.mkdir(parents=True)
    shutil.copyfile(REPO / "dags" / "campaigns" / "campaigns.py", campaigns / "campaigns.py")
    patch = pytest.MonkeyPatch()
    patch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(campaigns))
    patch.setenv("AIRFLOW__CAMPAIGN_RUNS__RESUME_WAIT_SECONDS", "90")
    get_settings.cache_clear()
    yield campaigns
    patch.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def sink() -> Iterator[SmtpSink]:
    controller, server = start_smtp()
    yield server
    controller.stop()


@pytest.fixture(autouse=True)
def clean_state() -> None:
    """Not the folder's: it deletes the test DAGs' runs and unpauses them, under this module's running scheduler.

    Airflow's scheduler ends (``ObjectDeletedError`` raised again in its own error handler) when a run it is
    scheduling is deleted, and ``cr_depends`` (``@daily``, its next run put back to the session's first) is due
    whenever it is unpaused: a scheduler creates its run at once.
    """


def set_test_dags_paused(paused: bool) -> None:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    from tests.campaign_runs.conftest import TEST_DAG_IDS

    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id.in_(TEST_DAG_IDS)).values(is_paused=paused))


@pytest.fixture(scope="module")
def stack(
    folder: Path, sink: SmtpSink, airflow_db: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowStack]:
    """This module's Airflow; the session's test DAGs are paused meanwhile, and active again after (as synced)."""
    from tests.support.fixtures import sync_test_dags

    extra = {
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(PARSE_INTERVAL),
        # Airflow rewrites a serialized DAG at most this often (default 30 s): Resume waits for that rewrite.
        "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "1",
    }
    set_test_dags_paused(True)
    try:
        with running_stack(sink.port, tmp_path_factory.mktemp("schedule-e2e-logs"), folder.parent, extra) as stack:
            yield stack
    finally:
        sync_test_dags()  # this module's dag-processor marked them stale: its folder does not hold them
        set_test_dags_paused(False)


def away_from(minute: int, margin: float = 150.0) -> None:
    """Wait while the clock is within ``margin`` seconds before ``minute`` of the hour: no slot turns mid-test."""
    now = pendulum.now("UTC")
    boundary = now.start_of("hour").add(minutes=minute)
    if boundary < now:
        boundary = boundary.add(hours=1)
    if (boundary - now).total_seconds() < margin:
        time.sleep((boundary - now).total_seconds() + 1)


def dag_model(dag_id: str) -> Any:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        model = session.get(DagModel, dag_id)
        if model is not None:
            session.expunge(model)
        return model


def run_ids(dag_id: str) -> list[tuple[str, str]]:
    """(run id, run type) of every run of ``dag_id``, by slot."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(DagRun.run_id, DagRun.run_type).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after)
        )
        return [(run_id, str(getattr(run_type, "value", run_type))) for run_id, run_type in rows]


def runs_of(dag_id: str) -> list[tuple[str, pendulum.DateTime | None]]:
    """(run type, slot) of every run Airflow has of ``dag_id``, oldest first."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(DagRun.run_type, DagRun.run_after).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after)
        )
        return [(str(run_type), pendulum.instance(after) if after else None) for run_type, after in rows]


def serialized(dag_id: str) -> bool:
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session

    with create_session() as session:
        return DBDagBag().get_latest_version_of_dag(dag_id, session=session) is not None


def loaded(dag_id: str, stack: AirflowStack, check: Callable[[Any], bool] = lambda model: True) -> Any:
    """Wait until Airflow has parsed and serialized ``dag_id`` and ``check`` holds of its DagModel."""
    try:
        wait_until(
            lambda: (m := dag_model(dag_id)) is not None and check(m) and serialized(dag_id), timeout=120, interval=0.5
        )
    except AssertionError as error:
        raise AssertionError(f"{dag_id} not loaded as expected: {dag_model(dag_id)!r}\n{stack.logs()}") from error
    return dag_model(dag_id)


def finished(dag_id: str, run_id: str) -> str:
    """``wait_run_done``, its failure saying whether Airflow still had the DAG active (a stale DAG's runs wait)."""
    try:
        return wait_run_done(dag_id, run_id)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{as_airflow_has_it(dag_id)}") from error


def as_airflow_has_it(dag_id: str) -> str:
    """The DagModel flags that decide whether the scheduler looks at the DAG's runs at all."""
    model = dag_model(dag_id)
    flags = {name: getattr(model, name, None) for name in ("is_stale", "is_paused", "last_parsed_time")}
    return f"DagModel of {dag_id}: {flags}"


def watch(dag_ids: list[str], seconds: float = WATCH_SECONDS) -> dict[str, set[Any]]:
    """Every next run Airflow showed for each DAG while polling for ``seconds``."""
    seen: dict[str, set[Any]] = {dag_id: set() for dag_id in dag_ids}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for dag_id in dag_ids:
            model = dag_model(dag_id)
            seen[dag_id].add(
                pendulum.instance(model.next_dagrun_create_after) if model.next_dagrun_create_after else None
            )
        time.sleep(0.25)
    return seen


def create(dag_ids: list[str], stack: AirflowStack, **options: Any) -> None:
    """Create campaigns as New does (each gets its "not before": now) and wait until Airflow has loaded them."""
    for dag_id in dag_ids:
        definitions.create_definition(definition(dag_id, **options.get(dag_id, {})), actor="alice", note="e2e")
    for dag_id in dag_ids:
        loaded(dag_id, stack)


def missed_while_paused(folder: Path, dag_id: str, last_ran: int) -> None:
    """Make ``dag_id`` a campaign created four hours ago whose last run was ``last_ran`` hours ago, paused since."""
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    campaign_actions.pause(dag_id, actor="alice", note="e2e")
    state_path(folder, dag_id).write_text(state_text(hour(-4)))
    slot = hour(-last_ran)
    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
        assert dag is not None
        dag.create_dagrun(
            run_id=f"scheduled__{slot.isoformat()}",
            logical_date=slot,
            data_interval=(slot, slot),
            run_after=slot,
            run_type=DagRunType.SCHEDULED,
            triggered_by=DagRunTriggeredByType.TEST,
            state=DagRunState.SUCCESS,
            session=session,
        )


CASES = [
    # (dag id, catchup, hours since the last run, Resume's missed choice, slots Airflow must create)
    ("cr_sched_none_once", False, 1, "none", []),
    ("cr_sched_none_many", False, 3, "none", []),
    ("cr_sched_none_catchup", True, 3, "none", []),
    ("cr_sched_latest", False, 3, "latest", [0]),
    ("cr_sched_latest_catchup", True, 3, "latest", [0]),
    ("cr_sched_all", False, 3, "all", [-2, -1, 0]),
    ("cr_sched_all_catchup", True, 3, "all", [-2, -1, 0]),
]
NEW = "cr_sched_new"  # created active with a past start_date and catchup off
CONFIGURED = "cr_sched_configure"  # its cron changes after it was loaded


def test_each_schedule_promise_holds_while_airflow_reparses(folder: Path, stack: AirflowStack) -> None:
    """Resume none / latest / all, a new campaign and a Configure of the cron, watched over three parse intervals."""
    away_from(0, margin=150)
    started = hour(0)
    create([case[0] for case in CASES] + [NEW, CONFIGURED], stack, **{case[0]: {"catchup": case[1]} for case in CASES})
    for dag_id, _, last_ran, _, _ in CASES:
        missed_while_paused(folder, dag_id, last_ran)
    (folder / "campaigns.py").touch()
    for dag_id, catchup, last_ran, _, _ in CASES:
        first_missed = hour(-last_ran + 1) if catchup else hour(0)
        loaded(dag_id, stack, lambda model, first=first_missed: model.next_dagrun_create_after == first)
    for dag_id, _, _, missed, _ in CASES:  # each Resume waits until Airflow has loaded its new instant
        campaign_actions.resume(dag_id, actor="alice", note="e2e", missed=missed)
    later = next(m for m in range(10, 60) if (pendulum.now("UTC").minute + m) % 60 not in (0, 59))
    new_minute = (pendulum.now("UTC").minute + later) % 60  # at least ten minutes away: no run during the test
    new_cron = f"{new_minute} * * * *"
    state = definitions.definition_of(CONFIGURED)
    changed = (state.text or "").replace('"0 * * * *"', f'"{new_cron}"')
    definitions.update_definition(CONFIGURED, changed, base_sha=state.sha or "", actor="alice", note="e2e")

    seen = watch([case[0] for case in CASES] + [NEW, CONFIGURED])

    assert hour(0) == started, "the hour turned during the test"
    created = {dag_id: [slot for _, slot in runs_of(dag_id)[1:]] for dag_id, *_ in CASES}
    assert created == {dag_id: [hour(offset) for offset in slots] for dag_id, _, _, _, slots in CASES}
    for dag_id, *_ in CASES:
        assert seen[dag_id] == {hour(1)}, dag_id  # at every poll: the next slot, no missed one in between
        assert not dag_model(dag_id).is_paused
    (latest_run,) = [run_id for run_id, kind in run_ids("cr_sched_latest") if kind == "scheduled"][1:]
    assert finished("cr_sched_latest", latest_run) == "success"  # a slot Resume asked for really sends
    assert task_states("cr_sched_latest", latest_run)["build_audience"] == "success"
    assert runs_of(NEW) == [] and seen[NEW] == {hour(1)}  # not the slot that passed before it existed
    assert not dag_model(NEW).is_paused
    assert runs_of(CONFIGURED) == [] and len(seen[CONFIGURED]) == 1, seen[CONFIGURED]  # never the old hour(1)
    (next_run,) = seen[CONFIGURED]
    assert next_run.minute == new_minute and pendulum.now("UTC") < next_run <= pendulum.now("UTC").add(hours=1)


def test_a_shape_change_waits_for_the_running_run_and_content_applies_from_the_next(
    folder: Path, stack: AirflowStack, sink: SmtpSink
) -> None:
    from airflow.utils.session import create_session
    from campaign_runs.adapters import runs as airflow_runs

    from tests.dags.campaigns.runs import run_messages, subject

    dag_id = "cr_sched_shape"
    text = definition(dag_id, cron="manual", extra="    rate_limit_per_second: 5\n").replace("size: 2", "size: 30")
    definitions.create_definition(text, actor="alice", note="e2e")
    loaded(dag_id, stack)

    def trigger(run_id: str) -> None:
        with create_session() as session:
            airflow_runs.trigger_run(dag_id, run_id=run_id, conf={}, user="alice", note="", session=session)

    trigger("manual__shape_1")
    try:
        wait_until(lambda: run_messages(sink.messages, "manual__shape_1"), timeout=120, message="first email sent")
    except AssertionError as error:
        states = task_states(dag_id, "manual__shape_1")
        raise AssertionError(f"{error}\ntasks: {states}\n{as_airflow_has_it(dag_id)}") from error
    sha = definitions.definition_of(dag_id).sha

    with_sms = text + '  sms:\n    text: "Hi $first_name"\n'
    with pytest.raises(ConflictError, match="manual__shape_1"):
        definitions.update_definition(dag_id, with_sms, base_sha=sha, actor="alice", note="add sms")
    changed = text.replace("Weekly news", "New subject")
    assert definitions.update_definition(dag_id, changed, base_sha=sha, actor="alice", note="subject").written

    assert finished(dag_id, "manual__shape_1") == "success"
    first = run_messages(sink.messages, "manual__shape_1")
    assert len(first) == 30 and {subject(message) for message in first} == {"Weekly news"}
    trigger("manual__shape_2")
    assert finished(dag_id, "manual__shape_2") == "success"
    assert {subject(message) for message in run_messages(sink.messages, "manual__shape_2")} == {"New subject"}
