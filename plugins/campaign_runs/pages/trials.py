"""Configure's "Check connections" and "Send test", for both page hosts: the form's definition tried, saved or not.

Both post the whole Configure form and try the definition it describes, validated as Save validates it (errors
beside their fields); nothing is saved. The answers are shown per channel below the form, which keeps every
unsaved change. They need what Configure needs (``rights.require_configure``).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from campaign_runs.core import definition_text, definitions, trials
from campaign_runs.domain import CampaignRunsError, InvalidOptionError
from campaign_runs.http_errors import http_status
from campaign_runs.pages import configure, definition_form
from campaign_runs.pages.definitions import configure_state, form_view, kept_fields
from campaign_runs.pages.forms import BadInputError

if TYPE_CHECKING:
    from campaign_runs.pages.builders import PageView
    from campaign_runs.pages.definitions import Posted
    from campaign_runs.pages.rights import Visitor
    from campaign_runs.urls import PageLinks

MAX_ADDRESSES = 10  # factory.trial.MAX_ADDRESSES
TO_CHARS = MAX_ADDRESSES * 4097  # ten push tokens and their separators
SEPARATORS = re.compile(r"[\n,;]+")
KINDS = ("check", "send")


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


def trial_page(visitor: Visitor, links: PageLinks, dag_id: str, posted: Posted, kind: str) -> PageView:
    """Check (``kind`` "check") or test-send ("send") the form's definition; the form again, with the answers."""
    state, context = configure_state(visitor, links, dag_id)
    if state.text is None:
        return form_view(200, posted, form={}, **context)
    kept = kept_fields(posted)
    form = kept["form"]
    try:
        text = definitions.dump(definition_form.mapping_of(form, definition_text.load_text(state.text)))
        trial = _checks(dag_id, text) if kind == "check" else _sends(visitor.username, dag_id, text, form)
    except (InvalidOptionError, BadInputError) as error:
        return form_view(http_status(error), posted, errors={"trial": str(error)}, **kept, **context)
    except CampaignRunsError as error:
        return form_view(http_status(error), posted, errors=configure.errors_of(error, form), **kept, **context)
    return form_view(200, posted, trial=trial, **kept, **context)


def _checks(dag_id: str, text: str) -> dict[str, Any]:
    return {"checks": [asdict(check) for check in trials.check_connections(dag_id, text=text)]}


def _sends(actor: str, dag_id: str, text: str, form: dict[str, str]) -> dict[str, Any]:
    to = addresses(form.get("trial.to", ""))
    channel = form.get("trial.channel", "").strip() or None
    sends = trials.send_test_messages(dag_id, actor=actor, to=to, channel=channel, text=text)
    return {"sends": [asdict(send) for send in sends]}
