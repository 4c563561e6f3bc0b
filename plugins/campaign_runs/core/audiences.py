"""A campaign's audience checked and previewed for people: its source read, nothing written, nothing sent.

Only the API server, the pages and the CLI call this (never the dag-processor): validating or saving a
definition with a SQL or file audience reads the source's column names (``factory.preview.check_audience``), so a
Connection that does not exist or a template naming a column the source lacks is refused before it is saved. A
definition is read as the dag-processor will read it: from its place in the campaigns folder (a file audience's
relative path is relative to it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from campaign_runs.adapters import connections
from campaign_runs.core.definition_text import AudienceUnreadableError, spec_in_folder, validate_text
from campaign_runs.core.definitions import definition_of
from campaign_runs.domain import ConflictError, InvalidOptionError

if TYPE_CHECKING:
    from campaign_runs.factory.preview import AudiencePreview

MAX_LIMIT = 100  # factory.preview.MAX_LIMIT: rows a preview shows at most


def _preview(spec: Any, limit: int) -> AudiencePreview:
    from campaign_runs.factory.preview import preview_audience
    from campaign_runs.factory.sources import AudienceSourceError

    if not 0 <= limit <= MAX_LIMIT:
        raise InvalidOptionError(f"The limit must be between 0 and {MAX_LIMIT} rows, not {limit}.")
    connections.use_server_secrets()
    field = {"sql": "audience.query", "file": "audience.url"}.get(spec.audience.source, "audience")
    try:
        return preview_audience(spec, limit)
    except AudienceSourceError as error:
        raise AudienceUnreadableError(field, f"the audience cannot be read: {error}") from error


def preview_definition(text: str, *, limit: int = 10) -> AudiencePreview:
    """The audience of a definition being edited (New, Configure), read now; nothing is written."""
    dag_id, _ = validate_text(text)
    return _preview(spec_in_folder(dag_id, text), limit)


def preview_campaign(dag_id: str, *, limit: int = 10) -> AudiencePreview:
    """The audience of campaign ``dag_id`` as its YAML declares it now, read now; nothing is written."""
    state = definition_of(dag_id)
    if state.text is None:
        raise ConflictError(f"The audience of {dag_id} cannot be previewed: {state.reason}")
    return _preview(spec_in_folder(dag_id, state.text), limit)
