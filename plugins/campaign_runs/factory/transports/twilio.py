"""SMS through Twilio's Messages REST API, sent with the HTTP provider's ``HttpHook``.

The Connection: login = the Account SID (``AC...``) or an API key SID (``SK...``, then extra ``account_sid``),
password = the auth token or the API key's secret, host = the API's base URL (default https://api.twilio.com).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from campaign_runs.factory.answers import Refused, Transient, http_answer
from campaign_runs.factory.channels import render
from campaign_runs.factory.transports.dry_run import SmsAdapter
from campaign_runs.factory.transports.webhook import HttpSession, http_session

if TYPE_CHECKING:
    from campaign_runs.factory.audience import Recipient

API_VERSION = "2010-04-01"
DEFAULT_BASE_URL = "https://api.twilio.com"
ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
# Twilio error codes that condemn the address itself: invalid 'To', not a mobile number, unsubscribed (STOP).
BAD_ADDRESS_CODES = frozenset({21211, 21614, 21610})


@dataclass(frozen=True)
class TwilioClient:
    """One sender connection to Twilio: the kept-alive HTTP session and the account's resource URLs."""

    http: HttpSession
    account_sid: str
    base_url: str

    @property
    def account_url(self) -> str:
        """The Account resource (fetched by ``check``)."""
        return f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}.json"

    @property
    def messages_url(self) -> str:
        """The Messages list resource (a POST creates and sends one message)."""
        return f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"


def account_sid(connection: Any) -> str:
    """The Account SID: the extra's ``account_sid`` (when login is an API key), else the login."""
    conn_id = connection.conn_id
    if not connection.login or not connection.password:
        raise ValueError(f"Connection {conn_id}: set login (Account SID or API key SID) and password (token)")
    sid = str(connection.extra_dejson.get("account_sid") or connection.login).strip()
    if not ACCOUNT_SID.fullmatch(sid):
        what = "extra account_sid" if connection.extra_dejson.get("account_sid") else "login"
        hint = " (an API key SID as login needs extra account_sid)" if what == "login" else ""
        raise ValueError(f"Connection {conn_id}: the {what} is not an Account SID (AC + 32 hex digits){hint}")
    return sid


def base_url(connection: Any) -> str:
    """The API's base URL: the Connection's host (https unless it says otherwise), else api.twilio.com."""
    host = str(connection.host or "").strip().rstrip("/")
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        host = f"{connection.schema or 'https'}://{host}"
    return f"{host}:{connection.port}" if connection.port else host


def twilio_error(response: Any) -> tuple[int | None, str]:
    """Twilio's error ``code`` and ``message`` from an answer's JSON body; (None, the status reason) without."""
    try:
        document = response.json()
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("code"), int):
        return int(document["code"]), str(document.get("message") or response.reason)
    return None, str(response.reason)


def twilio_answer(response: Any, http: HttpSession) -> None:
    """Raise what Twilio's answer means: 2xx sent; 408, 429, 5xx for now; 21211/21614/21610 a bad address."""
    code, message = twilio_error(response)
    reason = http.redact(f"Twilio {code}: {message}" if code is not None else message)
    if response.status_code == 400 and code in BAD_ADDRESS_CODES:
        raise Refused(f"HTTP 400: {reason}", bad_address=True)
    http_answer(response.status_code, reason, response.headers.get("Retry-After"))


class TwilioSmsAdapter(SmsAdapter):
    """SMS through Twilio: one ``POST .../Messages.json`` per recipient over a kept-alive session.

    ``From`` is the channel's ``sender`` (a Twilio number or an alphanumeric sender id), unless the transport
    setting ``messaging_service_sid`` is set: then only ``MessagingServiceSid`` is sent and Twilio picks the sender.
    """

    transport = "twilio"
    default_conn_id = "twilio_default"
    transport_settings: ClassVar[dict[str, Any]] = {"messaging_service_sid": ""}
    one_line_settings = SmsAdapter.one_line_settings | {"messaging_service_sid"}

    @contextmanager  # the dry-run sink's connection is its file: a Twilio adapter's is its own client
    def connection(self) -> Iterator[TwilioClient]:
        """One ``HttpHook`` session to Twilio, kept alive for the batch."""
        with http_session(self.conn_id, not_headers=("account_sid",)) as http:
            yield TwilioClient(http, account_sid(http.connection), base_url(http.connection))

    def form(self, recipient: Recipient) -> dict[str, str]:
        """The form fields of one recipient's message."""
        form = {"To": self.address(recipient)}
        if service := self.setting("messaging_service_sid"):
            form["MessagingServiceSid"] = str(service)
        else:
            form["From"] = str(self.context.settings["sender"])
        form["Body"] = render(str(self.context.settings["text"]), self.values(recipient))
        return form

    def send_one(self, connection: TwilioClient, recipient: Recipient) -> bool:
        """Create one Message (form-encoded); Twilio's answer sorted by ``twilio_answer``."""
        response = connection.http.send("POST", connection.messages_url, data=self.form(recipient))
        twilio_answer(response, connection.http)
        return True

    def check(self) -> str:
        """Fetch the Account (``GET /2010-04-01/Accounts/{AccountSid}.json``): credentials tried, nothing sent."""
        with self.connection() as client:
            try:
                response = client.http.send("GET", client.account_url)
            except Transient as unreachable:
                raise ConnectionError(f"twilio: {client.base_url} is unreachable ({unreachable.reason})") from None
            code, message = twilio_error(response)
            said = f"HTTP {response.status_code}, " + client.http.redact(
                f"Twilio {code}: {message}" if code is not None else message
            )
        if response.status_code in (401, 403):
            raise PermissionError(f"twilio: the Connection's credentials were refused ({said})")
        try:
            account = response.json() if response.status_code == 200 else None
        except ValueError:
            account = None
        if not isinstance(account, dict):
            raise ConnectionError(f"twilio: fetching account {client.account_sid} did not answer it ({said})")
        status = str(account.get("status") or "unknown")[:40]
        if status != "active":
            raise PermissionError(f"twilio: account {client.account_sid} is {status}")
        return f"twilio: account {client.account_sid} ({str(account.get('friendly_name') or '')[:80]}) is active"
