"""Configure's "Check connections" and "Send test" (FAB pages): the form's definition tried, saved or not.

Both post the whole Configure form (with FAB's CSRF token) and try the definition it describes, validated as
Save validates it (errors beside their fields); nothing is saved. The answers are shown per channel below the
form, which keeps every unsaved change. They need what Configure needs (``fab.definitions``).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from flask import request

from campaign_runs.core import definition_text, definitions, trials
from campaign_runs.domain import CampaignRunsError, InvalidOptionError
from campaign_runs.http_errors import http_status
from campaign_runs.pages import definition_form
from campaign_runs.pages.forms import BadInputError

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from campaign_runs.pages.fab.definitions import CampaignDefinitionsView

MAX_ADDRESSES = 10  # factory.trial.MAX_ADDRESSES
TO_CHARS = MAX_ADDRESSES * 4097  # ten push tokens and their separators
SEPARATORS = re.compile(r"[\n,;]+")


def check_url(dag_id: str) -> str:
    """Where the Configure form posts to check its channels' Connections."""
    return f"{definition_form.Paths.configure(dag_id)}/check"


def test_send_url(dag_id: str) -> str:
    """Where the Configure form posts to send test messages."""
    return f"{definition_form.Paths.configure(dag_id)}/test-send"


def addresses(raw: str) -> list[str]:
    """The addresses of the form's box: one a line (or separated by commas); at most ten."""
    if len(raw) > TO_CHARS:
        raise BadInputError(f"The addresses are {len(raw)} characters long; the limit is {TO_CHARS}.")
    found = [part.strip() for part in SEPARATORS.split(raw) if part.strip()]
    if not found:
        raise InvalidOptionError("Give at least one address to send the test to.")
    if len(found) > MAX_ADDRESSES:
        raise InvalidOptionError(f"{len(found)} addresses: a test goes to at most {MAX_ADDRESSES}; nothing was sent.")
    return found


def _try(view: CampaignDefinitionsView, dag_id: str, kind: str) -> ResponseReturnValue:
    """Check (``kind`` "check") or test-send the form's definition; the form again, with the answers."""
    if (refused := view._gate()) is not None:
        return refused
    if (refused := view._configure_rights(dag_id)) is not None:
        return refused
    try:
        state = definitions.definition_of(dag_id)
    except CampaignRunsError as error:
        return view._refuse(str(error), http_status(error))
    context = view._configure_context(dag_id, state)
    if state.text is None:
        return view._form_page(form={}, **context)
    form, note = definition_form.form_fields(request.form), request.form.get("note", "")
    kept: dict[str, Any] = {"form": form, "note": note, "base_sha": request.form.get("base_sha", "")}
    try:
        text = definitions.dump(definition_form.mapping_of(form, definition_text.load_text(state.text)))
        trial = _checks(dag_id, text) if kind == "check" else _sends(view, dag_id, text, form)
    except (InvalidOptionError, BadInputError) as error:
        return view._form_page(http_status(error), errors={"trial": str(error)}, **kept, **context)
    except CampaignRunsError as error:
        return view._form_page(http_status(error), errors=view._errors(error, form), **kept, **context)
    return view._form_page(trial=trial, **kept, **context)


def _checks(dag_id: str, text: str) -> dict[str, Any]:
    return {"checks": [asdict(check) for check in trials.check_connections(dag_id, text=text)]}


def _sends(view: CampaignDefinitionsView, dag_id: str, text: str, form: dict[str, str]) -> dict[str, Any]:
    to = addresses(form.get("trial.to", ""))
    channel = form.get("trial.channel", "").strip() or None
    sends = trials.send_test_messages(dag_id, actor=view._username(), to=to, channel=channel, text=text)
    return {"sends": [asdict(send) for send in sends]}


def check_page(view: CampaignDefinitionsView, dag_id: str) -> ResponseReturnValue:
    """Check connections: each channel's Connection of the form's definition tried; nothing sent or saved."""
    return _try(view, dag_id, "check")


def test_send_page(view: CampaignDefinitionsView, dag_id: str) -> ResponseReturnValue:
    """Send test: ``[TEST]`` messages of the form's definition to the addresses given; nothing saved."""
    return _try(view, dag_id, "send")
