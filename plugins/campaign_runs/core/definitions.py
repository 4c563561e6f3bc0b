"""New and Configure: campaign YAML files validated by the factory, written atomically, versioned with diffs.

A definition reaches Airflow as a file in the DAG bundle (DAG parsing cannot read the metadata DB): the core
writes ``<definitions folder>/<id>.yaml`` through a temporary file and a rename, and the one loader in that
folder turns it into a DAG at the dag-processor's next pass. Each save is a numbered version in
``campaign_event`` (who, when, the note, the YAML and the diff). Edits are optimistic: the caller names the
content (SHA-256) it started from, and a save over someone else's newer one is refused with their diff.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from campaign_runs.adapters import dags
from campaign_runs.adapters import definitions as files
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core import definition_folders, definition_merge, running_definition
from campaign_runs.core.actions import require_user
from campaign_runs.core.definition_errors import SAFE_ID
from campaign_runs.core.definition_text import (
    MAX_DEFINITION_BYTES,
    folder,
    load_text,
    validate_definition,
    validate_text,
)
from campaign_runs.core.events import record_event, sha_of
from campaign_runs.domain import (
    CampaignRunsError,
    ConflictError,
    DefinitionConflictError,
    DefinitionInvalidError,
    NotFoundError,
    utcnow,
    validate_note,
)
from campaign_runs.factory.documents import DocumentError, document_problem, load_yaml
from campaign_runs.settings import get_settings
from campaign_runs.tables import campaign_event

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.orm import Session

VERSION_KINDS = ("found", "created", "configured")
READ_ONLY_WHY = (
    "The definitions folder {folder} cannot be written (a read-only mount or a git bundle): commit the YAML "
    "below to the DAG bundle yourself."
)


@dataclass(frozen=True)
class DefinitionState:
    """A campaign's definition as Configure shows it."""

    dag_id: str
    text: str | None
    sha: str | None
    version: int
    editable: bool
    reason: str
    folder_writable: bool


@dataclass(frozen=True)
class SavedDefinition:
    """The outcome of New or Configure: written (a new version) or, read-only, the YAML to commit."""

    dag_id: str
    text: str
    sha: str
    written: bool
    version: int | None
    diff: str
    message: str


@dataclass(frozen=True)
class DefinitionVersion:
    """One entry of a campaign's history: a saved version or a campaign action."""

    id: int
    dag_id: str
    kind: str
    actor: str
    note: str
    version: int | None
    sha: str | None
    diff: str | None
    details: str | None
    created_at: datetime


def apply_settings(text: str, assignments: list[str]) -> str:
    """``text`` with each ``dotted.key=value`` set (the value read as YAML: numbers, booleans, lists)."""
    data = load_text(text)
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        path = [part for part in key.strip().split(".") if part]
        if not sep or not path:
            raise DefinitionInvalidError("", f"{assignment!r} is not key=value (e.g. schedule.cron='0 9 * * MON')")
        try:
            value = load_yaml(raw, max_bytes=MAX_DEFINITION_BYTES) if raw.strip() else None
        except (yaml.YAMLError, DocumentError) as error:
            raise DefinitionInvalidError(key, f"value is not valid YAML: {document_problem(error)}") from None
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise DefinitionInvalidError(key, f"{part!r} is not a mapping")
            node = child
        node[path[-1]] = value
    return dump(data)


def dump(data: dict[str, Any]) -> str:
    """YAML text of a definition, keys in the order given."""
    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False))


def diff_of(before: str, after: str, name: str) -> str:
    """A unified diff of two versions of a definition."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"{name} (before)", f"{name} (after)"
    )
    return "".join(lines)


def _latest_version(dag_id: str, session: Session) -> Any:
    return session.execute(
        select(campaign_event)
        .where(campaign_event.c.dag_id == dag_id, campaign_event.c.version.is_not(None))
        .order_by(campaign_event.c.version.desc())
        .limit(1)
    ).one_or_none()


def _text_of_sha(dag_id: str, sha: str, session: Session) -> str | None:
    found: str | None = session.scalar(
        select(campaign_event.c.definition)
        .where(campaign_event.c.dag_id == dag_id, campaign_event.c.content_sha == sha)
        .order_by(campaign_event.c.id.desc())
        .limit(1)
    )
    return found


def _read_definition(where: Path, dag_id: str, *, complete: bool) -> str | None:
    """The text of ``<id>.yaml`` when it is a regular file that defines campaign ``dag_id``, None when there is none.

    With ``complete`` (an id Airflow has no DAG of and no version was saved of) the file must be a whole valid
    definition, one the dag-processor will load; otherwise its ``id:`` must be ``dag_id``.
    """
    name = f"{dag_id}{files.SUFFIX}"
    if not SAFE_ID.fullmatch(dag_id):
        return None
    try:
        text = files.read(files.path_of(where, dag_id))
    except files.NotRegularFile:
        raise NotFoundError(
            f"{name} in {where} is not a regular file (a symbolic link, a folder or a device): it is not read."
        ) from None
    if text is None:
        return None
    try:
        found = validate_text(text)[0] if complete else load_text(text).get("id")
    except CampaignRunsError:
        found = None
    if found != dag_id:
        raise NotFoundError(f"{name} in {where} is not the definition of campaign {dag_id!r}: it is not read.")
    return text


@provide_session
def version_text(dag_id: str, sha: str, *, session: Session = NEW_SESSION) -> str | None:
    """The YAML of the campaign's saved version with content ``sha`` (the base of an edit), None if none was saved."""
    return _text_of_sha(dag_id, sha, session) if sha else None


def _conflict(state: DefinitionState, base_sha: str, text: str, name: str, session: Session) -> DefinitionConflictError:
    """Refuse a save over someone else's newer version, with their diff and yours merged on top of theirs."""
    base = _text_of_sha(state.dag_id, base_sha, session) if base_sha else None
    theirs = state.text or ""
    try:
        found = definition_merge.merge(None if base is None else load_text(base), load_text(theirs), load_text(text))
    except DefinitionInvalidError:  # their file is no definition (written by hand): nothing to merge onto
        found = None
    both = ", ".join(conflict.field for conflict in found.conflicts) if found else ""
    said = f"changed by both of you: {both}" if both else "they changed none of the fields you changed"
    return DefinitionConflictError(
        f"{state.dag_id} was saved by someone else since you opened it; nothing was saved. Reload theirs, or "
        f"apply your changes on top of theirs ({said}).",
        current_sha=state.sha or "",
        changes=diff_of(base or text, theirs, name),
        merged=dump(found.merged) if found else None,
        conflicts=tuple(conflict.as_dict() for conflict in found.conflicts) if found else (),
    )


@provide_session
def definition_of(dag_id: str, *, session: Session = NEW_SESSION) -> DefinitionState:
    """The campaign's YAML and whether Configure may edit it (and why not).

    Only a campaign's own file is read: a regular file (no symbolic link is followed) whose ``id:`` is the id,
    of a DAG Airflow knows or a saved version, or else a whole valid definition Airflow has not loaded yet.
    """
    where = definition_folders.home_of(dag_id) or folder()
    known, fileloc, _ = files.dag_file_of(dag_id, session)
    latest = _latest_version(dag_id, session)
    text = _read_definition(where, dag_id, complete=not known and latest is None)
    if text is None and not known:
        raise NotFoundError(
            f"No campaign {dag_id!r}: no DAG and no file {dag_id}{files.SUFFIX} in the campaigns folder."
        )
    shipped = definition_folders.is_shipped(where)  # read-only here: New and Configure write another folder
    writable = not shipped and files.writable(where)
    version = int(latest.version) if latest is not None else 0
    if text is None:
        source = f"its DAG file {fileloc.replace(chr(92), '/').rsplit('/', 1)[-1]}" if fileloc else "a DAG file"
        why = f"{dag_id} is written in Python ({source}), not in YAML: change it in its code."
        return DefinitionState(dag_id, None, None, version, False, why, writable)
    reason = "" if writable else READ_ONLY_WHY.format(folder=where)
    if shipped:
        reason = definition_folders.SHIPPED_WHY.format(dag_id=dag_id)
    return DefinitionState(dag_id, text, sha_of(text), version, True, reason, writable)


def _flush(session: Session) -> None:
    """Write the version row; a concurrent save of the same version number is a conflict."""
    try:
        session.flush()
    except IntegrityError as error:
        session.rollback()
        raise ConflictError("Someone saved this campaign at the same moment; reload and retry.") from error


def _prepare(text: str, actor: str, note: str | None, session: Session) -> tuple[str, str, Any]:
    settings = get_settings()
    cleaned = validate_note(note, required=False, max_length=settings.note_max_length)
    require_user(actor, session=session)
    dag_id, spec = validate_definition(text)  # and reads a SQL or file audience's columns
    return dag_id, cleaned, spec


def _spec_or_none(text: str) -> Any | None:
    try:
        return validate_text(text)[1]
    except DefinitionInvalidError:
        return None


def _taken(dag_id: str, session: Session) -> str:
    """Why New refuses ``dag_id``: which campaign (or DAG, or file not loaded yet) has it; no server path."""
    dag = dags.get_dag(dag_id, session)
    if dag is None:
        return (
            f"The id {dag_id!r} is taken: the campaigns folder already has a campaign with it that Airflow has not "
            "loaded (yet, or it refused it: see Campaigns). Choose another id."
        )
    if not dags.dag_has_tag(dag_id, get_settings().campaign_tag, session):
        return f"The id {dag_id!r} is taken by an Airflow DAG that is not a campaign. Choose another id."
    about = f" ({dag.description[:80]})" if dag.description else ""
    return f"The id {dag_id!r} is taken: campaign {dag_id}{about} already uses it. Choose another id."


@provide_session
def create_definition(text: str, *, actor: str, note: str | None, session: Session = NEW_SESSION) -> SavedDefinition:
    """New: validate, refuse an id Airflow or the folder already has, write the file, record version 1."""
    dag_id, cleaned, _ = _prepare(text, actor, note, session)
    where = folder()
    path = files.path_of(where, dag_id)
    known, _, _ = files.dag_file_of(dag_id, session)
    if known or definition_folders.home_of(dag_id) is not None:  # a shipped campaign's id is taken too
        raise ConflictError(_taken(dag_id, session))
    if not files.writable(where):
        message = READ_ONLY_WHY.format(folder=where)
        return SavedDefinition(dag_id, text, sha_of(text), False, None, diff_of("", text, path.name), message)
    diff = diff_of("", text, path.name)
    _, version = record_event(session, dag_id=dag_id, kind="created", actor=actor, note=cleaned, text=text, diff=diff)
    _flush(session)
    files.write_not_before(where, dag_id, utcnow())  # before the file: no parse sees the campaign without it
    files.write_atomically(path, text)
    files.touch_loader(where)
    return SavedDefinition(dag_id, text, sha_of(text), True, version, diff, "Saved; waiting for Airflow to load it.")


@provide_session
def update_definition(
    dag_id: str, text: str, *, base_sha: str, actor: str, note: str | None, session: Session = NEW_SESSION
) -> SavedDefinition:
    """Configure: save a new version if the file is still the one the edit started from (``base_sha``)."""
    new_id, cleaned, spec = _prepare(text, actor, note, session)
    if new_id != dag_id:
        raise DefinitionInvalidError("id", f"is {new_id!r}; a campaign keeps its id ({dag_id!r})")
    state = definition_of(dag_id, session=session)
    if not state.editable or state.text is None:
        raise ConflictError(state.reason)
    path = files.path_of(folder(), dag_id)
    if state.sha != base_sha:
        raise _conflict(state, base_sha, text, path.name, session)
    diff = diff_of(state.text, text, path.name)
    before = _spec_or_none(state.text)
    running_definition.check_shape_change(dag_id, before, spec, session)
    if not state.folder_writable:
        return SavedDefinition(dag_id, text, sha_of(text), False, None, diff, state.reason)
    if state.version == 0:  # first change of a file written by hand: keep what it was as version 1
        record_event(
            session, dag_id=dag_id, kind="found", actor="", note="As found in the DAGs folder.", text=state.text
        )
    _, version = record_event(
        session, dag_id=dag_id, kind="configured", actor=actor, note=cleaned, text=text, diff=diff
    )
    _flush(session)
    if files.read(path) != state.text:  # changed on disk while we validated: let the caller retry
        raise ConflictError(f"{path.name} changed on disk during the save; reload and retry.")
    files.write_atomically(path, text)
    files.touch_loader(path.parent)
    message = running_definition.after_save(dag_id, before, spec, session)
    return SavedDefinition(dag_id, text, sha_of(text), True, version, diff, message)


@provide_session
def history(dag_id: str, *, limit: int = 100, session: Session = NEW_SESSION) -> list[DefinitionVersion]:
    """The campaign's versions and campaign actions, newest first."""
    rows = session.execute(
        select(campaign_event)
        .where(campaign_event.c.dag_id == dag_id)
        .order_by(campaign_event.c.id.desc())
        .limit(limit)
    )
    return [
        DefinitionVersion(
            row.id,
            row.dag_id,
            row.kind,
            row.actor,
            row.note,
            row.version,
            row.content_sha,
            row.diff,
            row.details,
            row.created_at,
        )
        for row in rows
    ]
