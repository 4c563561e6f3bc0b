"""Check connections and Send test: a campaign's channels tried before a run, by who may configure it.

The definition tried is the saved one, or an unsaved one (the Configure form's), validated as Save validates it
and kept to the campaign's id. Nothing of a run is touched (``factory.trial``): no ledger, no Monitor count, no
suppression list. Each test send is kept in the campaign's history (``campaign_event``, kind ``test_send``) with
who sent it, the channels and how many addresses: never the addresses, as no personal data goes into the history.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from campaign_runs.adapters import connections
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core.actions import require_user
from campaign_runs.core.definition_text import AudienceUnreadableError, spec_in_folder, validate_definition
from campaign_runs.core.definitions import definition_of
from campaign_runs.core.events import record_event
from campaign_runs.domain import ConflictError, DefinitionInvalidError, InvalidOptionError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session

    from campaign_runs.factory.trial import ChannelCheck, TestSend

log = logging.getLogger(__name__)
TEST_SEND_KIND = "test_send"
SOURCE_FIELDS = {"sql": "audience.query", "file": "audience.url"}


def _spec(dag_id: str, text: str | None, session: Session) -> Any:
    """The campaign's spec: its saved definition, or ``text`` validated as Save does (an unknown id is refused)."""
    state = definition_of(dag_id, session=session)
    if state.text is None:
        raise ConflictError(f"{dag_id} cannot be tried here: {state.reason}")
    if text is not None:
        new_id, _ = validate_definition(text)  # as Save: the factory's rules and a SQL or file audience's columns
        if new_id != dag_id:
            raise DefinitionInvalidError("id", f"is {new_id!r}; a campaign keeps its id ({dag_id!r})")
    connections.use_server_secrets()
    return spec_in_folder(dag_id, state.text if text is None else text)


@provide_session
def check_connections(dag_id: str, *, text: str | None = None, session: Session = NEW_SESSION) -> list[ChannelCheck]:
    """Each channel's Connection tried without sending anything; the answers never show a secret."""
    from campaign_runs.factory.trial import check_channels

    return check_channels(_spec(dag_id, text, session))


def _sent(spec: Any, to: Sequence[str], channel: str | None, fields: dict[str, Any] | None) -> list[TestSend]:
    from campaign_runs.factory.sources import AudienceSourceError
    from campaign_runs.factory.trial import TrialError, send_test

    try:
        return send_test(spec, to, channel, fields)
    except TrialError as error:
        raise InvalidOptionError(str(error)) from None
    except AudienceSourceError as error:
        field = SOURCE_FIELDS.get(spec.audience.source, "audience")
        raise AudienceUnreadableError(field, f"the audience cannot be read: {error}") from error


def _details(sends: list[TestSend], channel: str | None, unsaved: bool, fields: bool) -> dict[str, Any]:
    """What the history keeps of a test send: counts per channel, no address."""
    channels: dict[str, dict[str, Any]] = {}
    for send in sends:
        entry = channels.setdefault(send.channel, {"transport": send.transport, "addresses": 0, "sent": 0})
        entry["addresses"] += 1
        entry["sent"] += int(send.sent)
    return {"channel": channel or "each", "channels": channels, "unsaved_definition": unsaved, "given_fields": fields}


@provide_session
def send_test_messages(
    dag_id: str,
    *,
    actor: str,
    to: Sequence[str],
    channel: str | None = None,
    fields: dict[str, Any] | None = None,
    text: str | None = None,
    session: Session = NEW_SESSION,
) -> list[TestSend]:
    """``[TEST]`` messages of campaign ``dag_id`` to ``to`` only; kept in its history (no address)."""
    require_user(actor, session=session)
    spec = _spec(dag_id, text, session)
    sends = _sent(spec, list(to), channel, fields)
    details = _details(sends, channel, text is not None, fields is not None)
    record_event(session, dag_id=dag_id, kind=TEST_SEND_KIND, actor=actor, note="", details=json.dumps(details))
    sent = sum(send.sent for send in sends)
    log.info("Test send of campaign %s by %s: %d of %d messages sent (%s)", dag_id, actor, sent, len(sends), details)
    return sends
