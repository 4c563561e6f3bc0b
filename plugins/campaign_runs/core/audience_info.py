"""Audiences: a run's (what its ``build_audience`` task returned, or why it failed) and a campaign's label.

A run's audience is read from the ``return_value`` XCom of ``build_audience``: for a real source
``{"source": "sql"|"file", "label", "size", "snapshot": {"rows", "seconds", "reused"}}``, for the demo one
``{"source": "demo", "label": DEMO_AUDIENCE, "size"}`` (older demo runs carry neither ``source`` nor ``label``).
Airflow keeps no exception text of a failed task in its database: the message is the last error of the task's
log when the caller reads logs anyway (the run page, for who may read them), else ``AUDIENCE_UNREAD`` and a link.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from campaign_runs import urls
from campaign_runs.adapters import tasks
from campaign_runs.core.dto import AUDIENCE_UNREAD, AudienceView
from campaign_runs.domain import DEMO_AUDIENCE

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.orm import Session

    from campaign_runs.adapters.tasks import TaskRow

AUDIENCE_TASK = tasks.AUDIENCE_TASK
# The factory's About (doc_md) names the audience in this heading: "#### Audience: SQL query on Connection `crm`",
# "#### Audience: `segment`, demo audience (synthetic)".
ABOUT_HEADING = "#### Audience: "
# ``audience:<segment>`` tags of real sources (any other segment is the demo audience's), as labels without docs.
REAL_SEGMENTS = {"sql": "SQL query", "file": "file"}
READ_ERROR = "The audience could not be read"


def _count(value: Any) -> int | None:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return None


def _seconds(value: Any) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def _message(failure: str | None) -> str:
    """The build_audience error from its log (without the exception's class name), or ``AUDIENCE_UNREAD``."""
    if not failure:
        return AUDIENCE_UNREAD
    start = failure.find(READ_ERROR)
    return failure[start:] if start >= 0 else failure


def audience_view(
    value: Mapping[str, Any] | None, task_state: str | None = None, failure: str | None = None, log_path: str = ""
) -> AudienceView:
    """The view of ``build_audience``'s result, state and (when read) log error."""
    if task_state == "failed":
        reported = value.get("error") if value is not None else None  # the factory's own words, when it said them
        error = reported if isinstance(reported, str) and reported else _message(failure)
        return AudienceView(task_state=task_state, error=error, log_path=log_path or None)
    if value is None:
        return AudienceView(task_state=task_state)
    source = str(value.get("source") or "demo")
    snapshot = value.get("snapshot")
    snapshot = snapshot if isinstance(snapshot, dict) else {}
    return AudienceView(
        source=source,
        label=str(value.get("label") or (DEMO_AUDIENCE if source == "demo" else source)),
        recipients=_count(value.get("size")),
        snapshot_rows=_count(snapshot.get("rows")) if snapshot else None,
        snapshot_seconds=_seconds(snapshot.get("seconds")) if snapshot else None,
        snapshot_reused=bool(snapshot.get("reused")),
        task_state=task_state,
    )


def run_audience(
    dag_id: str, run_id: str, task_rows: list[TaskRow], failures: Mapping[str, str], result: Mapping[str, Any] | None
) -> AudienceView:
    """The run's audience: ``build_audience``'s ``result`` (``tasks.audience_result``), its state and log error."""
    state = next((row.state for row in task_rows if row.task_id == AUDIENCE_TASK), None)
    return audience_view(
        result,
        state,
        failures.get(AUDIENCE_TASK),
        urls.airflow_task_path(dag_id, run_id, AUDIENCE_TASK),
    )


def email_facts(dag_id: str, run_id: str, session: Session) -> dict[str, Any] | None:
    """What a run's email says of its audience (label, demo or not, recipients); None before it was read."""
    view = audience_view(tasks.audience_result(dag_id, run_id, session))
    if view.recipients is None:
        return None
    return {"label": view.label, "demo": view.is_demo, "recipients": view.recipients, "text": view.recipients_text}


def campaign_label(segment: str, doc_md: str | None) -> str:
    """A campaign's audience label: from its About's audience heading, else from its ``audience:`` tag.

    The factory writes the heading; without it (a DAG written by hand, no definition read) ``sql`` and ``file``
    are real sources and any other segment is the demo audience. A demo segment named ``sql`` or ``file`` is
    told apart by the heading.
    """
    for line in (doc_md or "").splitlines():
        if line.startswith(ABOUT_HEADING):
            text = " ".join(line.removeprefix(ABOUT_HEADING).replace("`", "").split())
            return DEMO_AUDIENCE if text.endswith(DEMO_AUDIENCE) else text
    return REAL_SEGMENTS.get(segment, DEMO_AUDIENCE if segment else "")


def needs_docs(segment: str) -> bool:
    """Whether a campaign's label needs its About (a real source's label names its Connection or file)."""
    return segment in REAL_SEGMENTS
