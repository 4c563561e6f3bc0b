"""A local webhook receiver: checks each request as the campaign's receiver documents it, answers as it does.

The receiver takes ``POST`` (or ``PUT``) ``/hooks/campaign-message`` with HTTP Basic auth, an ``X-Api-Key`` and
an ``X-Tenant`` header, ``Content-Type: application/json``, an ``Idempotency-Key`` of
``<campaign>/<slot>/<recipient id>`` and a JSON object of exactly ``BODY``'s shape whose ``to`` is the recipient
id of that key. It answers 202 when it took the message, 422 for a recipient it refuses, 429 (``Retry-After``)
when throttling, 401/403/404/405/415/400 for a request it cannot take, and 200 to ``HEAD``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

import pytest

from tests.support.rigs.http_server import Answer, HttpRig, Remote, Seen, retry_after_header

CONN_ID = "webhook_rig"
ENDPOINT = "/hooks/campaign-message"
TENANT = "campaigns"
BODY = json.dumps(
    {
        "event": "campaign.message",
        "campaign": "$campaign_id",
        "to": "$id",
        "recipient": {"name": "$first_name", "country": "$country"},
        "text": "Hello $first_name",
        "tags": ["campaign", "$country"],
        "priority": 1,
        "test": False,
    }
)
SHAPE = {
    "event": str,
    "campaign": str,
    "to": str,
    "recipient": dict,
    "text": str,
    "tags": list,
    "priority": int,
    "test": bool,
}


def settings(method: str = "POST") -> dict[str, Any]:
    """The webhook channel's settings for a campaign sending to this receiver."""
    return {"body": BODY, "endpoint": ENDPOINT.lstrip("/"), "method": method}


def shape_problem(document: Any) -> str | None:
    """Why ``document`` is not a message of ``BODY``'s shape, else None."""
    if not isinstance(document, dict) or set(document) != set(SHAPE):
        return f"expected exactly the fields {sorted(SHAPE)}"
    wrong = [name for name, kind in SHAPE.items() if type(document[name]) is not kind]
    if wrong:
        return f"wrong type for {wrong}"
    recipient, tags = document["recipient"], document["tags"]
    if set(recipient) != {"name", "country"} or not all(isinstance(value, str) for value in recipient.values()):
        return "recipient must hold the strings name and country"
    if len(tags) != 2 or not all(isinstance(tag, str) for tag in tags) or not document["to"]:
        return "tags must be two strings and to a recipient id"
    return None


class WebhookRig(HttpRig):
    """The campaign's webhook receiver; ``refuse_address(id, "echo")`` also echoes the request's credentials."""

    channel = "webhook"
    transport = "http"

    def __init__(self, conn_id: str = CONN_ID, *, method: str = "POST") -> None:
        super().__init__(conn_id)
        self.method = method
        self.login, self.password, self.api_key = "campaigns", secrets.token_hex(16), secrets.token_hex(16)
        self.settings = settings(method)

    def connection(self, **changes: Any) -> str:
        """``AIRFLOW_CONN_<ID>`` JSON of the Connection: Basic auth, an ``X-Tenant`` key and a ``headers`` mapping."""
        connection: dict[str, Any] = {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": self.server.port,
            "schema": "http",
            "login": self.login,
            "password": self.password,
            "extra": {"X-Tenant": TENANT, "headers": {"X-Api-Key": self.api_key}},
        }
        return json.dumps({**connection, **changes})

    def document(self, seen: Seen) -> Any:
        """The request's JSON body (None when it is not JSON)."""
        try:
            return json.loads(seen.body)
        except ValueError:
            return None

    def problem(self, seen: Seen) -> Answer | None:
        """401, 403, 404, 405, 415 or 400 for a request the receiver cannot take."""
        if seen.path != ENDPOINT or seen.query:
            return Answer.json(404, {"error": "not found"})
        if seen.basic_auth() != (self.login, self.password):
            return Answer.json(401, {"error": "unauthorized"}, **{"WWW-Authenticate": 'Basic realm="hooks"'})
        if seen.header("X-Api-Key") != self.api_key or seen.header("X-Tenant") != TENANT:
            return Answer.json(403, {"error": "forbidden"})
        if seen.method == "HEAD":
            return None
        if seen.method != self.method:
            return Answer(405, headers={"Allow": f"HEAD, {self.method}"})
        if seen.header("Content-Type").split(";")[0].strip() != "application/json":
            return Answer.json(415, {"error": "application/json expected"})
        campaign, slot, recipient = ([*seen.header("Idempotency-Key").split("/"), "", ""])[:3]
        if not (campaign and slot and recipient) or seen.header("Idempotency-Key").count("/") != 2:
            return Answer.json(400, {"error": "Idempotency-Key <campaign>/<slot>/<recipient> required"})
        document = self.document(seen)
        if (why := shape_problem(document)) is not None:
            return Answer.json(400, {"error": why})
        if document["to"] != unquote(recipient):
            return Answer.json(400, {"error": "to is not the Idempotency-Key's recipient"})
        return None

    def send_address(self, seen: Seen) -> str | None:
        """The ``to`` of a message."""
        return None if seen.method == "HEAD" else str(self.document(seen)["to"])

    def other(self, seen: Seen) -> Answer:
        """``HEAD``: 200, no body."""
        return Answer(200, headers={"Content-Type": "application/json"})

    def throttled(self, retry_after: float | None) -> Answer:
        """429, with ``Retry-After`` when given."""
        return Answer.json(429, {"error": "slow down"}, **retry_after_header(retry_after))

    def refused(self, seen: Seen, address: str, how: Any) -> Answer:
        """422; with ``how="echo"`` the answer first repeats the credentials it received (a careless receiver)."""
        document: dict[str, Any] = {"error": f"unknown recipient {address}"}
        if how == "echo":
            echoed = {name: seen.header(name) for name in ("X-Api-Key", "Authorization")}
            document = {"received": echoed, **document}
        return Answer.json(422, document)

    def sent(self, seen: Seen, address: str) -> Answer:
        """202, queued."""
        return Answer.json(202, {"accepted": True, "id": seen.header("Idempotency-Key")})


def remote() -> Remote:
    """The default rig as seen from another process."""
    return Remote(WebhookRig.channel, WebhookRig.transport, CONN_ID, settings())


@contextmanager
def rig(monkeypatch: pytest.MonkeyPatch, **options: Any) -> Iterator[WebhookRig]:
    """A running ``WebhookRig`` and its Connection ``conn_id`` (``options``: method, conn_id)."""
    webhook = WebhookRig(**options)
    webhook.come_back()
    try:
        monkeypatch.setenv(f"AIRFLOW_CONN_{webhook.conn_id.upper()}", webhook.connection())
        yield webhook
    finally:
        webhook.close()
