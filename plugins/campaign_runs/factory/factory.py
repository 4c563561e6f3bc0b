"""Turns a campaign spec into an Airflow DAG: build_audience -> send_<channel> (parallel) -> summarise."""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import DAG, TriggerRule, get_current_context, task

from campaign_runs.factory.about import DEMO_LABEL, about_markdown, campaign_params, campaign_tags
from campaign_runs.factory.audience import AudiencePlan, Shard, plan_audience, slot_for_run
from campaign_runs.factory.channels import ChannelAdapter, DeliveryContext, Pacer
from campaign_runs.factory.dispatch import Dispatcher, resend_requested
from campaign_runs.factory.hygiene import SnapshotPlan
from campaign_runs.factory.keys import AUDIENCE_ERROR_KEY, PROGRESS_KEY
from campaign_runs.factory.ledger import open_ledger
from campaign_runs.factory.schedule import timetable
from campaign_runs.factory.schedule_state import with_schedule_state
from campaign_runs.factory.snapshot import open_snapshots
from campaign_runs.factory.snapshot_audience import SnapshotAudience
from campaign_runs.factory.sources import AudienceSourceError, bindings, source_for
from campaign_runs.factory.spec import CampaignSpec, ChannelSpec, load_spec
from campaign_runs.factory.suppression import open_suppressions

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Context
    from airflow.sdk.bases.operator import BaseOperator

    from campaign_runs.factory.audience import Audience, RunSlot
    from campaign_runs.factory.ledger import DeliveryLedger
    from campaign_runs.factory.suppression import SuppressionList
    from campaign_runs.factory.timetable import CampaignTimetable

log = logging.getLogger(__name__)
SINK_DIR_OPTION = ("campaign_runs", "sink_dir")
LEDGER_CONN_OPTION = ("campaign_runs", "ledger_conn_id")
SUMMARY_FIELDS = ("channel", "sent", "failed", "total", "in_doubt")
FROZEN_KEY = "channels"  # build_audience's XCom: every channel's settings as the run started
PROGRESS_INTERVAL = 0.5  # seconds between two progress pushes of a channel task (one Execution API call each)


def sink_directory() -> Path:
    """Where sinks and ledgers live: ``[campaign_runs] sink_dir``, default ``$AIRFLOW_HOME/campaign_sinks``."""
    from airflow.sdk import conf

    configured = conf.get(*SINK_DIR_OPTION, fallback="")
    if configured:
        return Path(configured).expanduser()
    home = os.environ.get("AIRFLOW_HOME") or str(Path("~/airflow").expanduser())
    return Path(home) / "campaign_sinks"


def ledger_conn_id() -> str:
    """``[campaign_runs] ledger_conn_id``: the Connection of a shared ledger database; empty for SQLite files."""
    from airflow.sdk import conf

    return str(conf.get(*LEDGER_CONN_OPTION, fallback="") or "").strip()


def _skip_unscheduled_slot(spec: CampaignSpec, dag_run: Any) -> None:
    """Send nothing for a scheduled run whose slot the campaign's schedule, as it is now, no longer holds.

    The timetable already keeps such slots from being created; this covers a run created from a definition
    Airflow had not yet re-parsed (a Resume or a Configure of the cron a moment before).
    """
    from airflow.sdk.exceptions import AirflowSkipException

    table = campaign_timetable(spec)
    if dag_run.run_type != "scheduled" or table is None or table.allows(dag_run.run_after):
        return
    raise AirflowSkipException(
        f"Run {dag_run.run_id} is for slot {dag_run.run_after.isoformat()}, which is not a slot of the campaign's "
        f"schedule ({spec.schedule.expression}, not before {table.not_before}): nothing is sent."
    )


def build_audience(spec: CampaignSpec, context: Context) -> dict[str, Any]:
    """Resolve the run's slot (or the restarted run's slot) and freeze its audience for the channel tasks.

    A real source (SQL, file) is read once per slot into the snapshot; the demo audience is a pure function of
    the slot, so it is described, not written.
    """
    dag_run = context["dag_run"]
    _skip_unscheduled_slot(spec, dag_run)
    slot, restart_of = slot_for_run(
        run_id=dag_run.run_id,
        conf=dag_run.conf,
        logical_date=dag_run.logical_date,
        data_interval_start=dag_run.data_interval_start,
        data_interval_end=dag_run.data_interval_end,
    )
    frozen = {FROZEN_KEY: {channel.name: asdict(channel) for channel in spec.channels}}
    if not spec.audience.is_demo:
        try:
            return {**_snapshot(spec, slot, restart_of, dag_run.run_id, context["params"]), **frozen}
        except Exception as error:  # run details show the reason without reading the log
            if (ti := context.get("ti")) is not None:
                ti.xcom_push(AUDIENCE_ERROR_KEY, str(error)[:2000])
            raise
    plan = plan_audience(
        campaign=spec.id,
        segment=spec.audience.segment,
        criteria=spec.audience.criteria,
        size=int(context["params"].get("audience_size", spec.audience.size)),
        population=spec.audience.population,
        rotate_per_slot=spec.audience.rotate_per_slot,
        slot=slot,
        restart_of=restart_of,
    )
    log.info("Audience %s (%s): %d recipients for slot %s", plan.segment, DEMO_LABEL, plan.size, slot.key)
    return {**plan.to_xcom(), "source": "demo", "label": DEMO_LABEL, **frozen}


def _snapshot(spec: CampaignSpec, slot: RunSlot, restart_of: str | None, run_id: str, params: Any) -> dict[str, Any]:
    """Read the source into the slot's snapshot (or find the one written by the run this one restarts)."""
    from airflow.sdk.exceptions import AirflowFailException

    source = source_for(spec.audience)
    try:
        with open_snapshots(spec.id, sink_dir=sink_directory(), conn_id=ledger_conn_id()) as store:
            info = store.freeze(
                spec.id,
                slot.key,
                run_id,
                source.label,
                SnapshotPlan.of(spec.audience, spec.channels),
                source.rows(bindings(slot, slot.run_id, dict(params or {}))),
            )
    except AudienceSourceError as error:
        raise AirflowFailException(f"The audience could not be read ({source.label}): {error}") from error
    verb = "found (written by an earlier run of this slot)" if info.reused else f"written in {info.seconds:.2f} s"
    log.info("Audience snapshot of slot %s: %d recipients, %s", slot.key, info.rows, verb)
    return {
        "campaign": spec.id,
        "segment": spec.audience.segment,
        "source": spec.audience.source,
        "label": source.label,
        "size": info.rows,
        "slot": {**slot.as_dict(), "run_id": slot.run_id},
        "slot_key": slot.key,
        "restart_of": restart_of,
        "snapshot": info.as_xcom(),
    }


def frozen_channel(spec: CampaignSpec, name: str, plan_data: dict[str, Any]) -> ChannelSpec:
    """Channel ``name`` as the run's ``build_audience`` found it: a Configure during the run applies to the next one."""
    frozen = plan_data.get(FROZEN_KEY, {}).get(name)
    return ChannelSpec(**frozen) if isinstance(frozen, dict) else spec.channel(name)


def send_channel(
    spec: CampaignSpec, name: str, plan_data: dict[str, Any], context: Context, shard: Shard | None = None
) -> dict[str, Any]:
    """Dispatch one channel (or one shard of it) in batches, publishing progress and stopping when the run stops."""
    from airflow.sdk.exceptions import AirflowFailException

    # ``kill -USR1 <pid>`` writes every thread's stack into the task log: what a channel task is waiting on.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    ti = context["ti"]
    run_id = context["dag_run"].run_id
    channel = frozen_channel(spec, name, plan_data)
    sink_dir, conn_id, slot_key = sink_directory(), ledger_conn_id(), str(plan_data["slot_key"])
    shard = shard or Shard()
    overrides = context["dag_run"].conf or {}  # the run's own params; the defaults are the frozen channel's

    def own_ledger() -> DeliveryLedger:
        return open_ledger(spec.id, slot_key, name, sink_dir=sink_dir, conn_id=conn_id)

    with ExitStack() as stack:
        suppressions = stack.enter_context(open_suppressions(sink_dir=sink_dir, conn_id=conn_id))
        audience = _audience(spec, name, plan_data, sink_dir, conn_id, stack)
        ledger = stack.enter_context(own_ledger())
        result = Dispatcher(
            plan=audience,
            adapter=_adapter(spec, channel, run_id, slot_key, overrides, shard, sink_dir, suppressions),
            ledger=ledger,
            batch_size=int(overrides.get(f"{name}_batch_size", channel.batch_size)),
            run_state=lambda: _state_name(ti.get_dagrun_state(ti.dag_id, run_id)),
            publish=lambda progress: ti.xcom_push(PROGRESS_KEY, progress),
            run_id=run_id,
            resend_in_doubt=resend_requested(overrides),
            connections=int(overrides.get(f"{name}_connections", channel.connections)),
            shard=shard,
            progress_interval=PROGRESS_INTERVAL,
            ledger_factory=own_ledger if conn_id else None,  # PostgreSQL: a connection per sender thread
            background_checks=True,
            suppressions=suppressions,
        ).run()
    if result.stopped:
        raise AirflowFailException(f"Run {run_id} is {result.stop_state}: {name} stopped after {result.sent} messages")
    return result.as_dict()


def _adapter(
    spec: CampaignSpec,
    channel: ChannelSpec,
    run_id: str,
    slot_key: str,
    overrides: dict[str, Any],
    shard: Shard,
    sink_dir: Path,
    suppressions: SuppressionList,
) -> ChannelAdapter:
    """The channel's adapter for this run, paced at the run's rate (shared by the channel's shards)."""
    name = channel.name
    delivery = DeliveryContext(
        campaign=spec.id,
        run_id=run_id,
        channel=name,
        settings=channel.settings,
        sink_dir=sink_dir,
        campaign_values={"campaign_id": spec.id, "campaign_description": spec.description, "run_id": run_id},
        suppressions=suppressions,
        conn_id=channel.conn_id,
        slot_key=slot_key,
    )
    rate = float(overrides.get(f"{name}_rate_limit_per_second", channel.rate_limit_per_second))
    return ChannelAdapter.for_transport(name, channel.adapter_transport)(delivery, Pacer(rate / shard.count))


def _audience(
    spec: CampaignSpec, name: str, plan_data: dict[str, Any], sink_dir: Path, conn_id: str, stack: ExitStack
) -> Audience:
    """Channel ``name``'s view of the run's audience: its slot's snapshot, or the demo plan."""
    if plan_data.get("source", "demo") == "demo":
        return AudiencePlan.from_xcom(plan_data)
    store = stack.enter_context(open_snapshots(spec.id, sink_dir=sink_dir, conn_id=conn_id))
    checked_as = spec.channel(name).hygiene_channel or name  # a webhook reaches whom its address's channel may
    return SnapshotAudience(store, spec.id, str(plan_data["slot_key"]), checked_as, int(plan_data["size"]))


def _state_name(state: Any) -> str:
    """``running`` for ``DagRunState.RUNNING`` or ``"running"``."""
    return str(getattr(state, "value", state))


def summarise(spec: CampaignSpec, context: Context) -> dict[str, Any]:
    """Collect the last progress of every channel; fail the run when a channel did not finish (crash, kill)."""
    from airflow.sdk.exceptions import AirflowFailException

    ti = context["ti"]
    summary: dict[str, Any] = {}
    unfinished: list[str] = []
    for channel in spec.channels:
        progress = channel_progress(ti, channel)
        if progress is None or progress["sent"] + progress["failed"] < progress["total"]:
            unfinished.append(channel.name)
        summary[channel.name] = progress or {"channel": channel.name, "total": 0, "sent": 0, "failed": 0, "in_doubt": 0}
    for item in summary.values():
        log.info("%s: %d sent, %d failed of %d, %d in doubt", *(item.get(k, 0) for k in SUMMARY_FIELDS))
    if unfinished:
        # The run's state follows this leaf task: a channel cut short must leave the run failed (restartable).
        raise AirflowFailException(f"Channels not finished: {', '.join(unfinished)}; restart the run to finish them")
    return {"campaign": spec.id, "complete": True, "channels": summary}


def channel_progress(ti: Any, channel: ChannelSpec) -> dict[str, Any] | None:
    """The last progress of a channel, its shards added up; None when a shard never reported."""
    task_id = f"send_{channel.name}"
    if channel.shards == 1:
        return cast("dict[str, Any] | None", ti.xcom_pull(task_ids=task_id, key=PROGRESS_KEY))
    parts = ti.xcom_pull(task_ids=task_id, key=PROGRESS_KEY, map_indexes=list(range(channel.shards)))
    if any(part is None for part in parts):
        return None
    total: dict[str, Any] = {"channel": channel.name}
    for key in ("total", "sent", "failed", "in_doubt", "suppressed", "retried"):
        total[key] = sum(int(part.get(key, 0)) for part in parts)
    for key in ("skipped", "reasons"):
        added: dict[str, int] = {}
        for part in parts:
            for reason, count in (part.get(key) or {}).items():
                added[reason] = added.get(reason, 0) + int(count)
        total[key] = added
    return total


def _task(task_id: str, body: Callable[..., dict[str, Any]], **kwargs: Any) -> Callable[..., Any]:
    """A TaskFlow task named ``task_id`` that calls ``body`` with the task context."""

    def run(*args: Any) -> dict[str, Any]:
        return body(*args, get_current_context())

    run.__name__ = task_id
    run.__doc__ = body.__doc__
    return task(task_id=task_id, multiple_outputs=False, **kwargs)(run)


def campaign_timetable(spec: CampaignSpec) -> CampaignTimetable | None:
    """The campaign's timetable: its cron from its "not before" instant on; None for a manual campaign."""
    schedule = spec.schedule
    return timetable(schedule.expression, schedule.timezone, schedule.not_before) if schedule.expression else None


def build_dag(spec: CampaignSpec) -> DAG:
    """The campaign DAG for one spec, carrying the metadata the Campaign Runs plugin reads."""
    schedule = spec.schedule
    with DAG(
        dag_id=spec.id,
        description=spec.description,
        schedule=timetable(schedule.expression, schedule.timezone, schedule.not_before)
        if schedule.expression
        else None,
        start_date=schedule.start_date,
        catchup=schedule.catchup,
        tags=campaign_tags(spec),
        default_args={"owner": spec.owner, "retries": 0},
        owner_links={spec.owner: f"mailto:{spec.owner_email}"},
        doc_md=about_markdown(spec),
        params=campaign_params(spec),
    ) as dag:
        audience = _task("build_audience", lambda context: build_audience(spec, context))()
        sends: list[BaseOperator] = []
        for channel in spec.channels:
            name = channel.name
            if channel.shards > 1:
                mapped = _sharded_task(spec, channel).partial(plan=audience).expand(shard=list(range(channel.shards)))
                sends.append(mapped.operator)
                continue
            body = _bind_channel(spec, name)
            sends.append(_task(f"send_{name}", body)(audience).operator)
        sends >> _task("summarise", lambda context: summarise(spec, context), trigger_rule=TriggerRule.ALL_DONE)()
    return dag


def _bind_channel(spec: CampaignSpec, name: str) -> Callable[[dict[str, Any], Context], dict[str, Any]]:
    def body(plan: dict[str, Any], context: Context) -> dict[str, Any]:
        return send_channel(spec, name, plan, context)

    body.__doc__ = f"Send the {name} channel."
    return body


def _sharded_task(spec: CampaignSpec, channel: ChannelSpec) -> Any:
    """``send_<channel>`` mapped over its shards: task instance ``i`` sends to positions ``p % shards == i``."""
    name, count = channel.name, channel.shards

    def run(plan: dict[str, Any], shard: int) -> dict[str, Any]:
        return send_channel(spec, name, plan, get_current_context(), Shard(shard, count))

    run.__name__ = f"send_{name}"
    run.__doc__ = f"Send one of the {count} shards of the {name} channel."
    return task(task_id=f"send_{name}", multiple_outputs=False)(run)


def campaign_dag(loader_file: str) -> DAG:
    """The DAG declared by the YAML file beside ``loader_file`` (same name, ``.yaml``)."""
    return build_dag(with_schedule_state(load_spec(Path(loader_file).with_suffix(".yaml"))))
