"""Check connections and Send test in the JSON API (``POST /campaign-runs/campaigns/{dag_id}/check|test-send``).

Both need what Configure needs: the "Campaign Definitions" permission and edit rights on the campaign's runs.
They try the saved definition, or the unsaved `yaml` sent (validated as a save is). A test send goes to the
given addresses only (at most 10), once, outside any run: no ledger, no Monitor count, no suppression list.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from campaign_runs.adapters.api_security import DagAccessEntity, GetUserDep, requires_access_dag
from campaign_runs.adapters.auth import acting_as, user_name
from campaign_runs.api.definition_schemas import TEXT_MAX, DagId, DefinitionErrorResponse, sane_dag_id
from campaign_runs.api.schemas import NO_NUL, ErrorResponse
from campaign_runs.domain import NotPermittedError

router = APIRouter()
MAX_ADDRESSES = 10  # factory.trial.MAX_ADDRESSES
MAX_FIELDS = 200
Scalar = str | int | float | bool | None

_TEXT = {
    401: "Not authenticated: send `Authorization: Bearer <token>` from `POST /auth/token`.",
    403: 'Authenticated, but not allowed: trying a campaign needs what Configure needs, the "Campaign '
    "Definitions\" permission and edit rights on the campaign's runs.",
    404: "Unknown campaign.",
    409: "The campaign is written in Python, not in YAML: it cannot be tried here.",
    422: "An invalid body, `yaml` (`field` names what is wrong) or address, an unknown channel, more than 10 "
    "addresses, or an audience that cannot be read; nothing was sent.",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"model": DefinitionErrorResponse if code == 422 else ErrorResponse, "description": _TEXT[code]}
        for code in codes
    }


def _may_configure(user: GetUserDep) -> None:
    """The caller has the "Campaign Definitions" permission to configure campaigns."""
    from campaign_runs.core.definition_rights import may_manage, refusal

    if not may_manage(user, "PUT"):
        raise NotPermittedError(refusal(user_name(user), "PUT"))


def _utf8(value: str | None) -> str | None:
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError("is not valid UTF-8 text") from error
    return value


class CheckBody(BaseModel):
    """Which definition to try: the saved one (no `yaml`), or an unsaved one."""

    model_config = ConfigDict(extra="forbid")

    yaml: str | None = Field(
        default=None,
        max_length=TEXT_MAX,
        description="An unsaved definition of this campaign to try instead of the saved one (validated as a save).",
    )

    _valid_utf8 = field_validator("yaml")(_utf8)


class SendTestBody(CheckBody):
    """Where the test messages go, on which channel, filled with what."""

    to: list[Annotated[str, Field(min_length=1, max_length=4096, pattern=NO_NUL)]] = Field(
        min_length=1,
        max_length=MAX_ADDRESSES,
        description="At most 10 email addresses, E.164 phone numbers or push tokens; each goes to the channel it "
        "fits, or all to `channel`.",
    )
    channel: str | None = Field(default=None, max_length=64, pattern=NO_NUL, description="Send on this channel only.")
    fields: dict[Annotated[str, Field(max_length=63)], Scalar] | None = Field(
        default=None,
        max_length=MAX_FIELDS,
        description="The templates' values (column: value); default: the audience's first row, read now.",
    )


class ChannelCheckOut(BaseModel):
    """One channel's Connection, tried."""

    channel: str
    transport: str = Field(description="How the channel delivers: `smtp`, `sns`, `sns (dry run)`, `dry run`...")
    conn_id: str = Field(description="The Connection tried (empty for a dry run).")
    ok: bool
    answer: str = Field(description="The transport's answer, or what went wrong; never a secret.")


class ChecksOut(BaseModel):
    """Each channel of the campaign, tried without sending anything."""

    campaign: str
    checks: list[ChannelCheckOut]


class TestSendOut(BaseModel):
    """One test message."""

    __test__ = False  # not a pytest test class

    channel: str
    transport: str
    to: str = Field(description="The address, as sent (a phone number without spaces).")
    sent: bool = Field(description="The provider accepted it (false for a dry run: nothing is sent).")
    answer: str = Field(description="`sent`, `dry run: not sent`, or why it was not sent; never a secret.")
    content: dict[str, str] = Field(description="The message as rendered: email `subject`, `body`; sms `text`...")


class TestSendsOut(BaseModel):
    """The test messages sent (or, for a dry run, rendered)."""

    __test__ = False

    campaign: str
    sends: list[TestSendOut]


_GUARDS = [Depends(sane_dag_id), Depends(_may_configure), Depends(requires_access_dag("PUT", DagAccessEntity.RUN))]


@router.post(
    "/campaigns/{dag_id}/check",
    response_model=ChecksOut,
    responses=_errors(401, 403, 404, 409, 422),
    dependencies=_GUARDS,
    summary="Check a campaign's connections",
    operation_id="check_campaign_connections",
)
def check_campaign_connections(dag_id: DagId, body: CheckBody) -> ChecksOut:
    """Each channel's Connection tried without sending anything; a dry-run channel says so."""
    from campaign_runs.core.trials import check_connections

    checks = [ChannelCheckOut(**asdict(check)) for check in check_connections(dag_id, text=body.yaml)]
    return ChecksOut(campaign=dag_id, checks=checks)


@router.post(
    "/campaigns/{dag_id}/test-send",
    response_model=TestSendsOut,
    responses=_errors(401, 403, 404, 409, 422),
    dependencies=_GUARDS,
    summary="Send test messages of a campaign",
    operation_id="send_campaign_test",
)
def send_campaign_test(dag_id: DagId, body: SendTestBody, user: GetUserDep) -> TestSendsOut:
    """`[TEST]` messages to the given addresses only, once; kept in the campaign's history (without addresses)."""
    from campaign_runs.core.trials import send_test_messages

    with acting_as(user) as actor:
        sends = send_test_messages(
            dag_id, actor=actor, to=body.to, channel=body.channel, fields=body.fields, text=body.yaml
        )
    return TestSendsOut(campaign=dag_id, sends=[TestSendOut(**asdict(send)) for send in sends])
