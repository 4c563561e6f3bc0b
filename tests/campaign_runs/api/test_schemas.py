"""One declaration of each shape: the REST models of campaigns, runs and tasks are built from the core's DTOs.

A field is declared once, in its core dataclass (``core.dto``, ``core.monitor``...); the REST model
(``api.from_dto``) adds only REST details, and the CLI's rows (``presenters``) are the same fields under the
names the CLI has always used.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import inspect
import pkgutil
import typing
from typing import Any

import pytest
from campaign_runs import core, presenters
from campaign_runs.api import from_dto, schemas
from campaign_runs.api.app import app
from campaign_runs.core import dto
from campaign_runs.core.served_slot import ServedSlot
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

# Every dataclass the core has: what it returns to the edges.
DTOS = [
    c
    for info in pkgutil.iter_modules(core.__path__, f"{core.__name__}.")
    for _, c in inspect.getmembers(importlib.import_module(info.name), inspect.isclass)
    if dataclasses.is_dataclass(c) and c.__module__ == info.name
]


def _dto_models(root: type[from_dto.DtoModel] = from_dto.DtoModel) -> list[type[from_dto.DtoModel]]:
    """Every model of the API built from DTOs."""
    found = []
    for sub in root.__subclasses__():
        if sub.__module__.startswith("campaign_runs.api."):
            found.append(sub)
        found.extend(_dto_models(sub))
    return found


DTO_MODELS = _dto_models()
AT = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def _response_models() -> set[type[BaseModel]]:
    """Every pydantic model the API's routes answer with, nested ones too."""
    found: set[type[BaseModel]] = set()

    def visit(model: Any) -> None:
        if isinstance(model, type) and issubclass(model, BaseModel) and model not in found:
            found.add(model)
            for info in model.model_fields.values():
                for inner in _types_in(info.annotation):
                    visit(inner)

    for route in app.routes:
        visit(getattr(route, "response_model", None))
    return found


def _types_in(annotation: Any) -> list[Any]:
    return [annotation, *(t for arg in typing.get_args(annotation) for t in _types_in(arg))]


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_every_model_reads_each_field_from_its_dto_and_says_what_it_leaves_out() -> None:
    assert {m.__name__ for m in DTO_MODELS} >= {"CampaignOut", "RunOut", "RunDetailOut", "TaskOut", "OverviewOut"}
    assert set(DTO_MODELS) <= _response_models()
    for model in DTO_MODELS:
        primary = model.__dtos__[0]
        assert set(model.__sources__) == set(model.model_fields), model
        read = set(model.__sources__.values())
        for source in read:
            from_dto.dto_type(model.__dtos__, source)  # a field or property of its DTOs, or TypeError
        # Every field of the DTO is in the model, or left out by name: none is lost unnoticed.
        assert _fields(primary) <= read | model.__omitted__ | _inherited_sources(model), model
        assert not read & model.__omitted__, model


def _inherited_sources(model: type[from_dto.DtoModel]) -> set[str]:
    parents = [b for b in model.__mro__[1:] if issubclass(b, from_dto.DtoModel) and b.__dtos__]
    return {s for parent in parents for s in parent.__sources__.values()}


def test_a_type_written_in_a_model_narrows_its_dtos() -> None:
    """A body's annotation must differ from the DTO's: the same type written again is a second declaration."""
    for model in DTO_MODELS:
        for name in model.__narrowed__:
            written = model.model_fields[name].annotation
            assert written != from_dto._rest_type(from_dto.dto_type(model.__dtos__, model.__sources__[name])), name
        for name, info in model.model_fields.items():
            if name not in model.__narrowed__:
                source = model.__sources__[name]
                assert info.annotation == from_dto._rest_type(from_dto.dto_type(model.__dtos__, source)), name


def test_no_response_model_declares_a_dtos_fields_again() -> None:
    """A hand-written model with most of a DTO's fields is a second declaration of it: build it from the DTO."""
    assert len(DTOS) > 30
    for model in _response_models() - set(DTO_MODELS):
        assert not issubclass(model, from_dto.DtoModel), model
        for cls in DTOS:
            shared = set(model.model_fields) & _fields(cls)
            assert len(shared) < 4 or 2 * len(shared) <= len(_fields(cls)), (
                model.__name__,
                cls.__name__,
                sorted(shared),
            )


def test_a_model_refuses_a_name_its_dto_does_not_have() -> None:
    with pytest.raises(TypeError, match="not fields of TaskView"):

        class _Omits(from_dto.DtoModel, dto=dto.TaskView, omit=("duration",)):
            pass

    with pytest.raises(TypeError, match="field or property 'duration'"):

        class _Reads(from_dto.DtoModel, dto=dto.TaskView):
            seconds: from_dto.FromDto = schemas.Field(validation_alias="duration")


def _details() -> dto.RunDetails:
    email = dto.EmailView(7, "cr", "r1", "stopped", "alice", "a@x.example", "Stopped", "failed", 2, "550", AT, None, AT)
    run = dto.RunView(
        dag_id="cr",
        run_id="r1",
        status="stopped",
        dag_run_state="failed",
        run_type="manual",
        logical_date=AT,
        run_after=AT,
        data_interval_start=AT,
        data_interval_end=AT,
        start_date=AT,
        end_date=AT + dt.timedelta(seconds=61.23456),
        triggering_user="alice",
        tasks_done=2,
        tasks_total=4,
        note="Wrong price list",
        restart_of=None,
        replaced_by="r2",
        allowed_actions=["restart", "skip"],
        emails=[email],
        slot=ServedSlot(AT, AT, AT),
    )
    channels = [
        dto.ChannelProgress("email", "send_email", "success", 10, 7, 1, 1, 2, {"no_consent": 3}, "smtp"),
        dto.ChannelProgress("sms", "send_sms", None, None, None, None, dry_run=True),
    ]
    task = dto.TaskView("send_email", -1, "success", 1, 2, AT, AT, 1.5, "PythonOperator")
    history = dto.HistoryEntry(1, "stop", "alice", "Wrong price list", "running", "stopping", None, AT)
    audience = dto.AudienceView("demo", "demo audience (synthetic)", 12, None, None, False, "success")
    return dto.RunDetails(run, _summary(), channels, [task], [history], {}, 3, audience)


def _summary() -> dto.CampaignSummary:
    return dto.CampaignSummary(
        dag_id="cr",
        description="Flash sale",
        owners=["alice"],
        owner_emails=["alice@x.example"],
        channels=["email", "sms"],
        audience="sql",
        schedule="0 8 * * *",
        schedule_description="At 08:00",
        is_paused=True,
        next_run_after=AT,
        last_run_id="r1",
        last_status="stopped",
        active_runs=0,
        open_worklist=1,
        failed_emails=1,
        audience_label="SQL query on Connection crm",
        dry_run_channels=["sms"],
        timezone="Europe/Paris",
    )


def _json(value: Any) -> Any:
    return to_jsonable_python(value)


def test_the_cli_and_the_rest_api_give_the_same_fields_and_values() -> None:
    """The CLI's rows and the REST answers are one shape: the CLI only keeps its own names and leaves some out."""
    details = _details()
    pairs: list[tuple[dict[str, Any], BaseModel]] = [
        (presenters.run_details_row(details), schemas.RunDetailOut.of(details, details.run)),
        (presenters.email_row(details.run.emails[0]), schemas.EmailOut.of(details.run.emails[0])),
        (presenters.worklist_row(_worklist_item()), schemas.WorklistItemOut.of(_worklist_item())),
        (presenters.action_row(_action()), schemas.ActionResultOut.of(_action())),
    ]
    for row, model in pairs:
        assert _json(row) == model.model_dump(mode="json"), type(model).__name__
    run = presenters.run_row(details.run)
    rest_run = schemas.RunOut.of(details.run).model_dump(mode="json")
    assert set(rest_run) - set(run) == {"dag_run_state", "triggering_user"}  # the CLI shows them in `run` only
    assert _json(run) == {k: v for k, v in rest_run.items() if k in run}
    assert rest_run["duration_seconds"] == 61.235 and rest_run["progress_percent"] == 50
    campaign = _json(presenters.campaign_row(_summary(), "Europe/Paris"))
    rest_campaign = schemas.CampaignOut.of(_summary()).model_dump(mode="json")
    assert campaign.pop("paused") is rest_campaign.pop("is_paused") is True
    assert campaign.pop("timezone") == "Europe/Paris"  # a campaign's zone: in REST, in its About only
    assert rest_campaign.pop("owner_emails") == ["alice@x.example"]  # the CLI's `show` only
    assert campaign == rest_campaign


def test_a_run_details_answer_reads_the_run_and_its_details() -> None:
    details = _details()
    answer = schemas.RunDetailOut.of(details, details.run).model_dump(mode="json")
    assert (answer["dag_id"], answer["run_id"], answer["status"], answer["dag_version"]) == ("cr", "r1", "stopped", 3)
    assert [c["channel"] for c in answer["progress"]] == ["email", "sms"]
    assert answer["progress"][0]["percent"] == 80 and answer["progress"][1]["percent"] is None
    assert answer["dry_run_channels"] == ["sms"]
    assert answer["audience"]["demo"] is True and answer["audience"]["summary"] == details.audience.line
    assert answer["slot"] == dict.fromkeys(("at", "data_interval_start", "data_interval_end"), _json(AT))
    assert answer["emails"][0]["id"] == 7 and answer["tasks"][0]["duration_seconds"] == 1.5
    schedule = dto.RunSchedule("cr", [dto.UpcomingRun(AT, AT, AT, AT)], [details.run], 41, 2, 20)
    page = schemas.RunScheduleOut.of(schedule).model_dump(mode="json")
    assert (page["total_entries"], page["pages"], page["upcoming"][0]["status"]) == (41, 3, "scheduled")


def _worklist_item() -> dto.WorklistItem:
    return dto.WorklistItem(3, "cr", "r1", "bob", "stopped", "Look at it", AT, None, None)


def _action() -> dto.ActionResult:
    return dto.ActionResult(9, "restart", "cr", "r1", "alice", "stopped", "skipped", "r2", [4, 5], replayed=True)
