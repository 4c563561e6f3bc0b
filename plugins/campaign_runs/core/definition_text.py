"""A definition's text read and checked as the dag-processor will read it: parsed, validated, its audience's
source read for its columns (nothing written, nothing sent).

Saving (``definitions``), previews (``audiences``) and trials all check with this module, which imports neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from campaign_runs.adapters import connections
from campaign_runs.adapters import definitions as files
from campaign_runs.core import definition_folders
from campaign_runs.core.definition_errors import validate_data
from campaign_runs.domain import DefinitionInvalidError
from campaign_runs.factory.documents import DocumentError, document_problem, load_yaml
from campaign_runs.settings import get_settings

if TYPE_CHECKING:
    from pathlib import Path

MAX_DEFINITION_BYTES = 64 * 1024


def folder() -> Path:
    """The campaigns folder New and Configure write."""
    return files.definitions_folder(get_settings().definitions_folder)


def load_text(text: str) -> Any:
    """The YAML document of ``text``, or ``DefinitionInvalidError``."""
    if len(text.encode("utf-8")) > MAX_DEFINITION_BYTES:
        raise DefinitionInvalidError("", f"the definition is larger than {MAX_DEFINITION_BYTES // 1024} KiB")
    if "\x00" in text:
        raise DefinitionInvalidError("", "the definition contains a NUL character")
    try:
        data = load_yaml(text, max_bytes=MAX_DEFINITION_BYTES)
    except (yaml.YAMLError, DocumentError) as error:
        raise DefinitionInvalidError("", f"invalid YAML: {document_problem(error)}") from None
    if not isinstance(data, dict):
        raise DefinitionInvalidError("", "a campaign definition is a YAML mapping (id, description, schedule...)")
    return data


def validate_text(text: str) -> tuple[str, Any]:
    """Validate a definition as the dag-processor will; its id and spec, or ``DefinitionErrors`` naming them all."""
    return validate_data(load_text(text))


class AudienceUnreadableError(DefinitionInvalidError):
    """The audience's source cannot be read now: the Connection, the database's or the file's own message."""

    code = "audience_unreadable"


def spec_in_folder(dag_id: str, text: str) -> Any:
    """The campaign spec of ``text``, parsed as the dag-processor will from ``<campaigns folder>/<id>.yaml``."""
    try:
        where = definition_folders.home_of(dag_id) or folder()  # a relative file url is read from beside the file
        return files.parse(load_text(text), str(files.path_of(where, dag_id)))
    except files.SpecRejected as error:
        raise DefinitionInvalidError(error.problem.field, error.problem.message) from error


def require_readable_audience(dag_id: str, text: str, spec: Any) -> None:
    """Refuse a SQL or file audience whose source cannot be read, or that templates or mappings do not match."""
    if spec.audience.is_demo:
        return
    from campaign_runs.factory.preview import audience_problems

    connections.use_server_secrets()
    problems = audience_problems(spec_in_folder(dag_id, text))
    if problems:
        first, *rest = problems
        raise DefinitionInvalidError(first.field, first.message + "".join(f"; also {p}" for p in rest))


def validate_definition(text: str) -> tuple[str, Any]:
    """``validate_text``, then the audience's source read for its columns (``require_readable_audience``)."""
    dag_id, spec = validate_text(text)
    require_readable_audience(dag_id, text, spec)
    return dag_id, spec
