"""Pydantic models of New, Configure and the campaign actions in the JSON API (``api.definitions``)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import Path, Request
from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, RootModel, field_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from campaign_runs.api.from_dto import DtoModel, FromDto
from campaign_runs.api.schemas import NO_NUL, ErrorResponse
from campaign_runs.core.campaign_actions import CampaignActionResult
from campaign_runs.core.definition_status import FireTime, SchedulePreview
from campaign_runs.core.definitions import DefinitionState, DefinitionVersion, SavedDefinition
from campaign_runs.domain import ID_MAX, InvalidOptionError, NotFoundError

TEXT_MAX = 1_000_000  # the core refuses a definition over 64 KiB with a clear message; this bounds the request
Note = Field(default=None, max_length=100_000, pattern=NO_NUL, description="Why; kept in the campaign's history.")


class CampaignDefinition(RootModel[dict[str, Any]]):
    """A campaign definition as a JSON object: the YAML file's shape (its JSON Schema is the core's)."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The hand-written schema of ``core.definition_schema``, not the generic ``dict`` one."""
        from campaign_runs.core.definition_schema import component_schema

        return component_schema()


class DefinitionSchemaOut(RootModel[dict[str, Any]]):
    """A JSON Schema document (draft 2020-12): the schema of `CampaignDefinition`, with `$schema` and `$id`."""


class ConflictOut(BaseModel):
    """A field you and someone else both changed, to different values, since your version (409)."""

    field: str = Field(description="The dotted field, e.g. `channels.email.subject`.")
    path: list[str] = Field(description="The field's keys, from the top of the definition.")
    base: str | None = Field(description="Its value in your version, as YAML; null: not set (or not known).")
    theirs: str | None = Field(description="Its value in the version saved meanwhile, as YAML; null: not set.")
    yours: str | None = Field(description="Your value, as YAML; null: you removed it.")


class DefinitionErrorResponse(ErrorResponse):
    """An error about a definition: the field that is wrong, or (409) what someone else saved meanwhile."""

    field: str | None = Field(default=None, description="422: the dotted field that is wrong (empty: the file).")
    changes: str | None = Field(default=None, description="409: their changes since your version (unified diff).")
    current_sha: str | None = Field(default=None, description="409: the sha of the version saved meanwhile.")
    merged: str | None = Field(
        default=None,
        description="409: their version with your changes applied on top, field by field (YAML); each field in "
        "`conflicts` holds theirs. Nothing was saved: choose for each conflict, then PUT it with `base_sha` = "
        "`current_sha`.",
    )
    conflicts: list[ConflictOut] | None = Field(
        default=None, description="409: the fields you both changed, to different values (empty: none)."
    )


def _encodable(value: str | None) -> str | None:
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError("is not valid UTF-8 text") from error
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DefinitionBody(_Body):
    """A definition as YAML text, or as a JSON object of the same shape (`CampaignDefinition`): one of the two."""

    yaml: str | None = Field(default=None, max_length=TEXT_MAX, description="The definition's YAML text.")
    definition: CampaignDefinition | None = Field(default=None, description="The definition as a JSON object.")

    _utf8 = field_validator("yaml")(_encodable)

    def text(self) -> str:
        """The definition's YAML text."""
        from campaign_runs.core.definitions import dump

        if (self.yaml is None) == (self.definition is None):
            raise InvalidOptionError("Send the definition either as `yaml` (text) or as `definition` (an object).")
        return self.yaml if self.yaml is not None else dump(self.definition.root if self.definition else {})


class CreateBody(DefinitionBody):
    """New: the definition and a note."""

    note: str | None = Note


class ConfigureBody(_Body):
    """Configure: the whole new YAML, or `set` assignments; the version it starts from; a note."""

    yaml: str | None = Field(default=None, max_length=TEXT_MAX, description="The whole new YAML text.")
    assignments: list[Annotated[str, Field(max_length=TEXT_MAX)]] | None = Field(
        default=None,
        alias="set",
        max_length=100,
        description="`dotted.key=value` changes to the current YAML (the value read as YAML), e.g. "
        "`schedule.cron=0 8 * * MON`.",
    )
    base_sha: str | None = Field(
        default=None, max_length=128, description="The `sha` you edited (or send `If-Match: <ETag>`)."
    )
    note: str | None = Note

    _utf8 = field_validator("yaml")(_encodable)


class PreviewBody(_Body):
    """A schedule to preview."""

    cron: str | None = Field(default=None, max_length=200, description="Cron expression or preset; null: manual.")
    timezone: str = Field(default="UTC", min_length=1, max_length=64, description="An IANA timezone.")
    count: int = Field(default=10, ge=1, le=100, description="How many fire times.")


class CampaignActionBody(_Body):
    """A campaign action's note and options."""

    note: str | None = Note
    conf: dict[str, Any] | None = Field(default=None, description="Run now only: params overrides.")
    missed: Literal["all", "latest", "none"] | None = Field(
        default=None, description="Resume only: run every missed slot, only the latest, or none (default)."
    )


class CampaignAction(StrEnum):
    """The campaign's own actions."""

    RUN_NOW = "run_now"
    PAUSE = "pause"
    RESUME = "resume"
    STOP_ALL = "stop_all"


class ValidOut(BaseModel):
    """A definition the dag-processor will load."""

    dag_id: str
    valid: bool


class FireTimeOut(DtoModel, dto=FireTime):
    """One fire time, in the campaign's timezone and in UTC."""


class PreviewOut(DtoModel, dto=SchedulePreview):
    """The schedule in plain words and its next fire times."""


class SavedOut(DtoModel, dto=SavedDefinition):
    """A saved version (`written`), or in read-only mode the validated YAML to commit yourself."""

    yaml: FromDto = Field(
        validation_alias="text", description="The definition; commit it to the DAG bundle when `written` is false."
    )
    sha: FromDto = Field(description="The YAML's SHA-256: the `base_sha` of the next edit.")
    version: FromDto = Field(description="The new version number; null when nothing was written.")
    diff: FromDto = Field(description="What changed, as a unified diff.")


class DefinitionOut(DtoModel, dto=DefinitionState):
    """A campaign's definition as Configure edits it."""

    yaml: FromDto = Field(validation_alias="text", description="The YAML; null for a campaign written in Python.")
    sha: FromDto = Field(description="The YAML's SHA-256 (also the `ETag` header).")
    version: FromDto = Field(ge=0, description="The latest recorded version (0: never saved by the plugin).")
    reason: FromDto = Field(description="Why Configure is read-only (or cannot write), empty otherwise.")


class VersionEntryOut(DtoModel, dto=DefinitionVersion, omit=("dag_id",)):
    """A saved version or a campaign action."""

    kind: FromDto = Field(description="found, created, configured, run_now, pause, resume or stop_all.")
    details: dict[str, Any] | None = Field(description="An action's details (runs, conf, missed slots...).")

    @field_validator("details", mode="before")
    @classmethod
    def _parsed(cls, details: Any) -> Any:
        """The details as the core keeps them (JSON text), parsed."""
        if isinstance(details, str):
            return json.loads(details) if details else None
        return details


class HistoryOut(BaseModel):
    """A campaign's versions and actions, newest first."""

    dag_id: str
    entries: list[VersionEntryOut]


class CampaignActionOut(DtoModel, dto=CampaignActionResult, omit=("outbox_ids",)):
    """What a campaign action did."""

    outcomes: FromDto = Field(description="Stop all: each active run's outcome.")
    backfill_id: FromDto = Field(description="Resume with missed=all: Airflow's backfill of the missed slots.")


DagId = Annotated[str, Path(description="The campaign's id (its DAG id).", max_length=ID_MAX)]


def sane_dag_id(request: Request) -> None:
    """Refuse ids no DAG can have before anything queries the database with them (a route dependency)."""
    value = request.path_params.get("dag_id")
    if value is not None and ("\x00" in value or len(value) > ID_MAX):
        raise NotFoundError(f"No campaign has the id {value[:40]!r}.")
