"""Campaigns: which DAGs are campaigns, their summaries and their About information."""

from __future__ import annotations

from typing import TYPE_CHECKING

from campaign_runs.adapters import dags, runs
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core import emails, records
from campaign_runs.core.audience_info import campaign_label, needs_docs
from campaign_runs.core.channel_delivery import dry_run_channels
from campaign_runs.core.dto import CampaignDetail, CampaignSummary
from campaign_runs.domain import NotACampaignError, NotFoundError, derive_status, utcnow
from campaign_runs.settings import get_settings

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from sqlalchemy.orm import Session

    from campaign_runs.adapters.dags import DagDefinition, DagInfo


def require_campaign(dag_id: str, session: Session) -> DagInfo:
    """The campaign's DAG, or ``NotFoundError`` / ``NotACampaignError``."""
    dag = dags.get_dag(dag_id, session)
    if dag is None:
        raise NotFoundError(f"Campaign {dag_id!r} does not exist.")
    tag = get_settings().campaign_tag
    if not dags.dag_has_tag(dag_id, tag, session):
        raise NotACampaignError(f"DAG {dag_id!r} is not a campaign (it has no {tag!r} tag).")
    return dag


@provide_session
def list_campaigns(
    *,
    search: str | None = None,
    dag_ids: Sequence[str] | None = None,
    sort: str = "dag_id",
    descending: bool = False,
    limit: int = 100,
    offset: int = 0,
    session: Session = NEW_SESSION,
) -> tuple[list[CampaignSummary], int]:
    """Campaigns (optionally only ``dag_ids``, matching ``search``), a page of them and the total."""
    found, total = dags.list_tagged_dags(
        get_settings().campaign_tag,
        dag_ids=dag_ids,
        search=search,
        sort=sort,
        descending=descending,
        limit=limit,
        offset=offset,
        session=session,
    )
    return summaries(found, session), total


def _stale(dag: DagInfo, now: datetime) -> bool:
    """Whether the DAG row's next run is in the past (no scheduler has moved it on) while it is not paused."""
    stored = dag.next_dagrun_create_after
    return not dag.is_paused and stored is not None and stored < now


def next_run_after(dag: DagInfo, definition: DagDefinition | None, now: datetime) -> datetime | None:
    """When the campaign runs next, never in the past: None when paused or when no slot is left.

    The DAG row's ``next_dagrun_create_after`` when it is still ahead; otherwise the next slot after now
    from the timetable (the row goes stale while no scheduler runs).
    """
    if dag.is_paused:
        return None
    if not _stale(dag, now):
        return dag.next_dagrun_create_after
    if definition is None:
        return None
    slots = dags.upcoming_slots(definition, dag, 1)
    return slots[0].run_after if slots else None


def _tagged(prefix: str, dag_tags: list[str]) -> list[str]:
    """The values of a DAG's ``<prefix>:<value>`` tags (``channel:email`` -> ``email``)."""
    return [t.split(":", 1)[1] for t in dag_tags if t.startswith(f"{prefix}:")]


def _with_docs(
    ids: list[str], segments: dict[str, str], definitions: Mapping[str, DagDefinition], session: Session
) -> Mapping[str, DagDefinition]:
    """``definitions`` and those of the real-source campaigns (their label names a Connection or file): two queries."""
    wanted = [dag_id for dag_id in ids if needs_docs(segments[dag_id]) and dag_id not in definitions]
    return {**definitions, **dags.latest_definitions(wanted, session)} if wanted else definitions


def _emails(owner_links: dict[str, str]) -> list[str]:
    """The addresses of a DAG's ``mailto:`` owner links."""
    return [link.removeprefix("mailto:") for link in owner_links.values() if link.startswith("mailto:")]


def _label(segment: str, definition: DagDefinition | None) -> str:
    """The campaign's audience label, from its About when read."""
    return campaign_label(segment, definition.doc_md if definition is not None else None)


def _timezone(definition: DagDefinition | None) -> str:
    """The zone a campaign's schedule runs in, or empty when no version of it is serialized yet."""
    return definition.timezone if definition is not None else ""


def summaries(
    found: list[DagInfo],
    session: Session,
    tags: dict[str, list[str]] | None = None,
    definitions: Mapping[str, DagDefinition] | None = None,
) -> list[CampaignSummary]:
    """Summaries of campaigns, in a constant number of queries (``tags``, ``definitions`` when already read)."""
    ids = [d.dag_id for d in found]
    if not ids:
        return []
    now = utcnow()
    tags = tags if tags is not None else dags.tags_of(ids, session)
    segments = {dag_id: next(iter(_tagged("audience", tags.get(dag_id, []))), "") for dag_id in ids}
    if definitions is None:  # every campaign's: its timezone is listed (cached per version: one query when warm)
        definitions = dags.latest_definitions(ids, session)
    definitions = _with_docs(ids, segments, definitions, session)
    owner_links = dags.owner_links_of(ids, session)
    last_runs = runs.latest_runs(ids, session)
    active = runs.active_run_counts(ids, session)
    open_entries = records.open_worklist_counts(ids, session)
    failed_emails = emails.failed_counts(ids, session)
    result = []
    for dag in found:
        last = last_runs.get(dag.dag_id)
        # A "stopping" record is shown as such here; the run page resolves it exactly.
        last_status = derive_status(last[1], last[2], 1).value if last is not None else None
        channels = _tagged("channel", tags.get(dag.dag_id, []))
        result.append(
            CampaignSummary(
                dag_id=dag.dag_id,
                description=dag.description,
                owners=[o.strip() for o in dag.owners.split(",") if o.strip()],
                owner_emails=_emails(owner_links.get(dag.dag_id, {})),
                channels=channels,
                audience=segments[dag.dag_id],
                schedule=dag.timetable_summary,
                schedule_description=dag.timetable_description,
                is_paused=dag.is_paused,
                next_run_after=next_run_after(dag, definitions.get(dag.dag_id), now),
                last_run_id=last[0] if last is not None else None,
                last_status=last_status,
                active_runs=active.get(dag.dag_id, 0),
                open_worklist=open_entries.get(dag.dag_id, 0),
                failed_emails=failed_emails.get(dag.dag_id, 0),
                audience_label=_label(segments[dag.dag_id], definitions.get(dag.dag_id)),
                dry_run_channels=dry_run_channels(tags.get(dag.dag_id, []), channels),
                timezone=_timezone(definitions.get(dag.dag_id)),
            )
        )
    return result


def detail(dag: DagInfo, definition: DagDefinition | None, session: Session) -> CampaignDetail:
    """A campaign's About information from its DAG row and serialized definition."""
    tags = dags.tags_of([dag.dag_id], session)
    return CampaignDetail(
        summary=summaries([dag], session, tags, {dag.dag_id: definition} if definition is not None else {})[0],
        timezone=definition.timezone if definition is not None else "UTC",
        doc_md=definition.doc_md if definition is not None else None,
        params=definition.params if definition is not None else {},
        tags=tags.get(dag.dag_id, []),
    )


@provide_session
def get_campaign(dag_id: str, *, session: Session = NEW_SESSION) -> CampaignDetail:
    """A campaign's About information."""
    dag = require_campaign(dag_id, session)
    return detail(dag, dags.get_definition(dag_id, session), session)
