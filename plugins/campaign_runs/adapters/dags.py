"""DAGs as campaigns: DagModel rows, tags, owner links, the serialized DAG and its timetable."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.models.dag import DagModel, DagOwnerAttributes, DagTag
from sqlalchemy import func, or_, select

from campaign_runs.domain import utcnow

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy.orm import Session

MAX_SLOTS_SCANNED = 10_000
DAG_CACHE_SIZE = 256
SORT_COLUMNS = {
    "dag_id": DagModel.dag_id,
    "owner": DagModel.owners,
    "next_run": DagModel.next_dagrun_create_after,
    "paused": DagModel.is_paused,
}


@dataclass(frozen=True)
class DagInfo:
    """What the core reads of a DAG's DagModel row."""

    dag_id: str
    description: str
    owners: str
    timetable_summary: str | None
    timetable_description: str | None
    is_paused: bool
    next_dagrun_create_after: datetime | None
    model: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class DagDefinition:
    """What the core reads of a DAG's latest serialized version."""

    params: dict[str, Any]
    timezone: str
    doc_md: str | None
    dag: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class SlotInfo:
    """One upcoming schedule slot from the timetable."""

    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    run_after: datetime


def _info(model: DagModel) -> DagInfo:
    return DagInfo(
        dag_id=model.dag_id,
        description=model.description or "",
        owners=model.owners or "",
        timetable_summary=model.timetable_summary,
        timetable_description=model.timetable_description,
        is_paused=bool(model.is_paused),
        next_dagrun_create_after=model.next_dagrun_create_after,
        model=model,
    )


def get_dag(dag_id: str, session: Session) -> DagInfo | None:
    """The DagModel row of ``dag_id``."""
    model = session.scalar(select(DagModel).where(DagModel.dag_id == dag_id))
    return _info(model) if model is not None else None


def dag_has_tag(dag_id: str, tag: str, session: Session) -> bool:
    """Whether ``dag_id`` carries ``tag``."""
    return (session.scalar(select(func.count()).where(DagTag.dag_id == dag_id, DagTag.name == tag)) or 0) > 0


def list_tagged_dags(
    tag: str,
    *,
    dag_ids: Sequence[str] | None,
    search: str | None,
    sort: str,
    descending: bool,
    limit: int,
    offset: int,
    session: Session,
) -> tuple[list[DagInfo], int]:
    """Non-stale DAGs tagged ``tag`` (only ``dag_ids`` when given, matching ``search``): a page and the total."""
    query = select(DagModel).where(
        DagModel.dag_id.in_(select(DagTag.dag_id).where(DagTag.name == tag)), DagModel.is_stale.is_(False)
    )
    if dag_ids is not None:
        # Filter only by the campaigns the caller may not read: a long IN list costs PostgreSQL far more than
        # the query itself, and whoever may read every DAG (an admin) needs none.
        tagged = set(session.scalars(select(DagTag.dag_id).where(DagTag.name == tag)))
        readable = tagged.intersection(dag_ids)
        if readable != tagged:
            query = query.where(DagModel.dag_id.in_(sorted(readable)))
    if search:
        text = search.lower()  # matched literally: % and _ are not wildcards
        query = query.where(
            or_(
                func.lower(DagModel.dag_id).contains(text, autoescape=True),
                func.lower(func.coalesce(DagModel.description, "")).contains(text, autoescape=True),
                func.lower(func.coalesce(DagModel.owners, "")).contains(text, autoescape=True),
            )
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    column = SORT_COLUMNS.get(sort, DagModel.dag_id)
    query = query.order_by(column.desc() if descending else column.asc(), DagModel.dag_id)
    return [_info(m) for m in session.scalars(query.limit(limit).offset(offset))], total


def tags_of(dag_ids: Sequence[str], session: Session) -> dict[str, list[str]]:
    """Tags of each DAG, in one query."""
    tags: dict[str, list[str]] = defaultdict(list)
    if dag_ids:
        for dag_id, name in session.execute(
            select(DagTag.dag_id, DagTag.name).where(DagTag.dag_id.in_(dag_ids)).order_by(DagTag.name)
        ):
            tags[dag_id].append(name)
    return tags


def owner_links_of(dag_ids: Sequence[str], session: Session) -> dict[str, dict[str, str]]:
    """``owner_links`` of each DAG (owner -> link), in one query."""
    links: dict[str, dict[str, str]] = defaultdict(dict)
    if dag_ids:
        for dag_id, owner, link in session.execute(
            select(DagOwnerAttributes.dag_id, DagOwnerAttributes.owner, DagOwnerAttributes.link).where(
                DagOwnerAttributes.dag_id.in_(dag_ids)
            )
        ):
            links[dag_id][owner] = link
    return links


@functools.cache
def _dag_bag() -> Any:
    """One cache of deserialized DAGs per process, keyed by DAG version (thread-safe, bounded)."""
    from airflow.models.dagbag import CachedDBDagBag

    return CachedDBDagBag(
        load_op_links=False, cache_size=DAG_CACHE_SIZE, cache_ttl=0, stats_prefix="campaign_runs.dags"
    )


def get_definition(dag_id: str, session: Session) -> DagDefinition | None:
    """The latest serialized version of ``dag_id``: params, timezone, docs and timetable."""
    from airflow.models.dag_version import DagVersion

    version = DagVersion.get_latest_version(dag_id, session=session)
    dag = _dag_bag().get_dag(version.id, session) if version is not None else None
    if dag is None:
        return None
    return DagDefinition(
        params={key: dag.params[key] for key in dag.params} if dag.params else {},
        timezone=str(getattr(dag.timetable, "_timezone", None) or dag.timezone),
        doc_md=dag.doc_md,
        dag=dag,
    )


def upcoming_slots(definition: DagDefinition, dag: DagInfo, count: int) -> list[SlotInfo]:
    """The next ``count`` future slots of the timetable, as ``airflow dags next-execution`` computes them."""
    from airflow.timetables.base import TimeRestriction

    slots: list[SlotInfo] = []
    if count <= 0:
        return slots
    now = utcnow()
    timetable = definition.dag.timetable
    restriction = TimeRestriction(earliest=None, latest=None, catchup=True)
    info = timetable.next_run_info_from_dag_model(dag_model=dag.model)
    # The DAG's stored next run goes stale while no scheduler runs: skip slots already in the past.
    for _ in range(MAX_SLOTS_SCANNED):
        if info is None or len(slots) >= count:
            break
        if info.run_after >= now:
            interval = info.data_interval
            slots.append(
                SlotInfo(
                    logical_date=info.logical_date,
                    data_interval_start=interval.start if interval else None,
                    data_interval_end=interval.end if interval else None,
                    run_after=info.run_after,
                )
            )
        info = timetable.next_dagrun_info_v2(last_dagrun_info=info, restriction=restriction)
    return slots


def set_paused(dag: DagInfo, paused: bool) -> None:
    """Pause or unpause a DAG (in the caller's transaction)."""
    dag.model.is_paused = paused


_definitions: OrderedDict[tuple[str, str], DagDefinition] = OrderedDict()
_definitions_lock = threading.Lock()


def _definition_of(dag: Any) -> DagDefinition:
    return DagDefinition(
        params={key: dag.params[key] for key in dag.params} if dag.params else {},
        timezone=str(getattr(dag.timetable, "_timezone", None) or dag.timezone),
        doc_md=dag.doc_md,
        dag=dag,
    )


def latest_definitions(dag_ids: Sequence[str], session: Session) -> dict[str, DagDefinition]:
    """The latest serialized version of each DAG, in at most two queries whatever their number.

    One query finds each DAG's latest version and its ``dag_hash``; a second loads only the versions this
    process has not deserialized yet (kept per version and hash, bounded like the DAG cache).
    """
    from airflow.models.dag_version import DagVersion
    from airflow.models.serialized_dag import SerializedDagModel

    if not dag_ids:
        return {}
    ranked = (
        select(
            DagVersion.dag_id.label("dag_id"),
            SerializedDagModel.dag_version_id.label("version_id"),
            SerializedDagModel.dag_hash.label("dag_hash"),
            func.row_number()
            .over(partition_by=DagVersion.dag_id, order_by=DagVersion.version_number.desc())
            .label("rn"),
        )
        .join(SerializedDagModel, SerializedDagModel.dag_version_id == DagVersion.id)
        .where(DagVersion.dag_id.in_(list(dag_ids)))
        .subquery()
    )
    rows = session.execute(
        select(ranked.c.dag_id, ranked.c.version_id, ranked.c.dag_hash).where(ranked.c.rn == 1)
    ).all()
    latest = {row.dag_id: (str(row.version_id), row.dag_hash) for row in rows}
    with _definitions_lock:
        missing = [row.version_id for row in rows if (str(row.version_id), row.dag_hash) not in _definitions]
    if missing:
        for model in session.scalars(select(SerializedDagModel).where(SerializedDagModel.dag_version_id.in_(missing))):
            model.load_op_links = False
            dag = model.dag
            if dag is not None:
                with _definitions_lock:
                    _definitions[(str(model.dag_version_id), model.dag_hash)] = _definition_of(dag)
                    while len(_definitions) > DAG_CACHE_SIZE:
                        _definitions.popitem(last=False)
    found: dict[str, DagDefinition] = {}
    with _definitions_lock:
        for dag_id, key in latest.items():
            if key in _definitions:
                _definitions.move_to_end(key)
                found[dag_id] = _definitions[key]
    return found
