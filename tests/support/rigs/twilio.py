"""A local Twilio Messages API: checks each request as Twilio documents it and answers as Twilio does.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP Basic auth (Account SID and auth token, or
an API key SID and secret) and form fields ``To``, ``From`` or ``MessagingServiceSid``, ``Body``; answers 201
with the Message resource, or a JSON error (``code``, ``message``, ``more_info``, ``status``).
``GET /2010-04-01/Accounts/{AccountSid}.json`` answers the Account resource.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.support.rigs.http_server import Answer, HttpRig, Remote, Seen, retry_after_header

CONN_ID = "twilio_rig"
SENDER = "+15005550006"
SETTINGS = {"text": "Hi $first_name", "sender": SENDER}
FORM = "application/x-www-form-urlencoded"
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
BODY_MAX = 1600
MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    21211: "The 'To' number {to} is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}.",
    21602: "Message body is required.",
    21603: "The 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number {to} is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}


def error(status: int, code: int, to: str = "", **headers: str) -> Answer:
    """Twilio's error answer."""
    document = {
        "code": code,
        "message": MESSAGES[code].format(to=to),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Answer.json(status, document, **headers)


class TwilioRig(HttpRig):
    """Twilio's Messages API for one account; ``refuse_address(to, code)`` answers that Twilio error (21211)."""

    channel = "sms"
    transport = "twilio"

    def __init__(self, conn_id: str = CONN_ID, *, api_key: bool = False, service: bool = False) -> None:
        super().__init__(conn_id)
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.key_sid = "SK" + secrets.token_hex(16) if api_key else ""
        self.service_sid = "MG" + secrets.token_hex(16) if service else ""
        self.settings = dict(SETTINGS)
        if service:
            self.settings["messaging_service_sid"] = self.service_sid
        self.base = f"/2010-04-01/Accounts/{self.account_sid}"

    @property
    def secret(self) -> str:
        """The password the Connection holds (auth token, or the API key's secret)."""
        return self.auth_token

    def credentials(self) -> tuple[str, str]:
        """What Basic auth must carry."""
        return (self.key_sid or self.account_sid, self.auth_token)

    def connection(self, **changes: Any) -> str:
        """``AIRFLOW_CONN_<ID>`` JSON of the Connection to this rig (``changes`` override its fields)."""
        connection: dict[str, Any] = {
            "conn_type": "http",
            "host": self.server.url,
            "login": self.credentials()[0],
            "password": self.auth_token,
            "extra": {"account_sid": self.account_sid} if self.key_sid else {},
        }
        return json.dumps({**connection, **changes})

    def form(self, seen: Seen) -> dict[str, str]:
        """A request's form fields (each given once; a repeated field keeps its last value, as Twilio does)."""
        if seen.header("Content-Type").split(";")[0].strip() != FORM:
            return {}
        fields = parse_qs(seen.body.decode(), keep_blank_values=True, strict_parsing=False)
        return {name: values[-1] for name, values in fields.items()}

    def problem(self, seen: Seen) -> Answer | None:
        """401 without the account's credentials, 404 elsewhere, 405, and the Messages API's 400s."""
        if seen.basic_auth() != self.credentials():
            return error(401, 20003, **{"WWW-Authenticate": 'Basic realm="Twilio API"'})
        if seen.path not in (f"{self.base}.json", f"{self.base}/Messages.json"):
            return error(404, 20404)
        if seen.path == f"{self.base}.json":
            return None if seen.method == "GET" else Answer(405, headers={"Allow": "GET, POST"})
        if seen.method != "POST":
            return Answer(405, headers={"Allow": "GET, POST"})
        form = self.form(seen)
        to = form.get("To", "")
        if not to:
            return error(400, 21604)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return error(400, 21603)
        if not form.get("Body"):
            return error(400, 21602)
        if not E164.fullmatch(to):
            return error(400, 21211, to)
        if len(form["Body"]) > BODY_MAX:
            return error(400, 21617)
        return None

    def send_address(self, seen: Seen) -> str | None:
        """The ``To`` of a Messages POST."""
        return self.form(seen)["To"] if seen.path.endswith("/Messages.json") else None

    def other(self, seen: Seen) -> Answer:
        """The Account resource."""
        account = {"sid": self.account_sid, "friendly_name": "Campaign rig", "status": "active", "type": "Full"}
        return Answer.json(200, {**account, "owner_account_sid": self.account_sid, "uri": f"{self.base}.json"})

    def throttled(self, retry_after: float | None) -> Answer:
        """429, Twilio error 20429."""
        return error(429, 20429, **retry_after_header(retry_after))

    def refused(self, seen: Seen, address: str, how: Any) -> Answer:
        """400 with Twilio error ``how`` (21211 unless told)."""
        return error(400, int(how or 21211), address)

    def sent(self, seen: Seen, address: str) -> Answer:
        """201 and the Message resource, queued."""
        form = self.form(seen)
        sid = "SM" + secrets.token_hex(16)
        message = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": address,
            "from": form.get("From") or None,
            "messaging_service_sid": form.get("MessagingServiceSid") or None,
            "body": form["Body"],
            "status": "queued" if form.get("From") else "accepted",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "error_code": None,
            "error_message": None,
            "uri": f"{self.base}/Messages/{sid}.json",
        }
        return Answer.json(201, message)


def remote() -> Remote:
    """The default rig as seen from another process."""
    return Remote(TwilioRig.channel, TwilioRig.transport, CONN_ID, dict(SETTINGS))


@contextmanager
def rig(monkeypatch: pytest.MonkeyPatch, **options: Any) -> Iterator[TwilioRig]:
    """A running ``TwilioRig`` and its Connection ``conn_id`` (``options``: api_key, service, conn_id)."""
    twilio = TwilioRig(**options)
    twilio.come_back()
    try:
        monkeypatch.setenv(f"AIRFLOW_CONN_{twilio.conn_id.upper()}", twilio.connection())
        yield twilio
    finally:
        twilio.close()
