"""The webhook channel: a templated JSON body per recipient POSTed through the HTTP provider's ``HttpHook``.

Also the HTTP plumbing the HTTP transports share (``http_session``): one ``HttpHook`` and one kept-alive
``requests.Session`` per sender connection, provider answers left to the caller, redirects never followed,
and a request that could not even connect reported as ``Transient`` (nothing left).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

from campaign_runs.factory.answers import Refused, Transient, http_answer
from campaign_runs.factory.channels import ChannelAdapter, DeliveryContext, Pacer, render
from campaign_runs.factory.transports.dry_run import SinkAdapter

if TYPE_CHECKING:
    from campaign_runs.factory.audience import Recipient

DEFAULT_TIMEOUT = (10.0, 30.0)  # seconds to connect, to read the answer (a Connection's extra ``timeout`` wins)
REASON_BODY_MAX = 200  # characters of an answer's body kept in a refusal's reason
REDACTED_MAX = 64 * 1024  # characters of an answer's body searched for secrets before the reason is cut
NOT_SECRET_HEADERS = frozenset({"accept", "accept-encoding", "connection", "content-type", "user-agent"})
TEMPLATE_MAX = 10_000  # characters of a webhook body template (the campaign file's text limit)
TEMPLATE_DEPTH_MAX = 32  # nesting of objects and arrays in a body template
RENDERED_MAX = 256 * 1024  # bytes of one recipient's rendered body
IDEMPOTENCY_KEY_MAX = 255
METHODS = ("POST", "PUT")
ADDRESS_FIELDS = ("id", "email", "phone", "push_token")
ENDPOINT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,1000}")  # a path (and query): no space, '#' or '\'


@dataclass
class HttpSession:
    """One sender connection: its ``HttpHook``, the hook's ``requests.Session`` and the Airflow Connection."""

    hook: Any
    session: Any
    connection: Any
    secrets: tuple[str, ...]

    @property
    def base_url(self) -> str:
        """The Connection's URL (schema, host, port), as ``HttpHook`` builds it."""
        return str(self.hook.base_url)

    def send(self, method: str, url: str, *, data: Any = None, headers: dict[str, str] | None = None) -> Any:
        """One request over the kept-alive session, answer unchecked; ``Transient`` when no connection was made.

        A timeout or a broken connection after the request was written is an unknown outcome: it propagates.
        """
        from requests import Request

        prepared = self.session.prepare_request(Request(method, url, data=data, headers=headers))
        try:
            return self.hook.run_and_check(self.session, prepared, self.hook.merged_extra)
        except Exception as error:
            if (why := not_connected(error)) is None:
                raise
            raise Transient(f"no connection to {urlsplit(url).netloc}: {self.redact(why)}") from None

    def redact(self, text: str) -> str:
        """``text`` with the Connection's password and secret header values masked."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def reason(self, response: Any) -> str:
        """An answer's status reason and the start of its body, on one line, secrets masked (before it is cut)."""
        body = " ".join(self.redact(response.text[:REDACTED_MAX]).split()) if response.content else ""
        reason = self.redact(str(response.reason))
        return f"{reason}: {body[:REASON_BODY_MAX]}" if body else reason


def not_connected(error: BaseException) -> str | None:
    """Why ``requests`` made no connection (refused, connect timeout, TLS handshake), else None."""
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import ConnectTimeout
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, SSLError

    if not isinstance(error, RequestsConnectionError):
        return None
    cause = error.args[0] if error.args else None
    reason = cause.reason if isinstance(cause, MaxRetryError) else None
    if isinstance(reason, NewConnectionError):
        return str(reason).rsplit("Failed to establish a new connection: ", 1)[-1][:REASON_BODY_MAX]
    if isinstance(error, ConnectTimeout) or isinstance(reason, ConnectTimeoutError):
        return "connect timeout"
    if isinstance(reason, SSLError):
        return f"TLS handshake failed: {str(reason)[:REASON_BODY_MAX]}"
    return None


def _secrets(connection: Any, headers: Mapping[str, Any]) -> tuple[str, ...]:
    """Values that must never be shown: the password, its Basic credentials, the secret-looking header values."""
    found = [str(value) for name, value in headers.items() if str(name).lower() not in NOT_SECRET_HEADERS]
    if connection.password:
        found.append(str(connection.password))
        basic = f"{connection.login or ''}:{connection.password}".encode()
        found.append(base64.b64encode(basic).decode())
    return tuple(sorted((value for value in found if len(value) >= 4), key=len, reverse=True))


def _own_headers(session: Any, extra: Mapping[str, Any], conn_id: str, not_headers: Iterable[str]) -> None:
    """Fix the headers ``HttpHook`` took from the extra: drop ``not_headers``, spread ``headers``, all text."""
    for name in (*not_headers, "headers"):
        session.headers.pop(name, None)
    declared = extra.get("headers") or {}
    if not isinstance(declared, Mapping):
        raise ValueError(f"Connection {conn_id}: extra 'headers' must be a mapping of header names to text")
    from requests.exceptions import InvalidHeader
    from requests.utils import check_header_validity

    session.headers.update(declared)
    for name, value in session.headers.items():
        try:  # now, not when a message is on its way (a header requests refuses would leave it in doubt)
            if not isinstance(name, str) or not isinstance(value, str | bytes):
                raise InvalidHeader
            check_header_validity((name, value))
        except InvalidHeader:  # its message would show the value
            raise ValueError(
                f"Connection {conn_id}: the extra header {str(name)[:60]!r} must be one line of text"
            ) from None


def read_environment_once(session: Any, *urls: str) -> None:
    """Settle once what ``requests`` reads from the environment before every request: proxies, CA bundle, .netrc.

    With ``trust_env`` (the Connection's extra may turn it off), ``requests`` scans ``os.environ`` and looks for a
    .netrc file per request: about a tenth of a kept-alive request in a task's environment. When every URL the
    session will call gets the same answers, they are set on the session (its own settings win, as in
    ``requests``); otherwise ``requests`` goes on reading them per request.
    """
    if not session.trust_env:
        return
    from requests.utils import get_environ_proxies, get_netrc_auth

    proxies = [get_environ_proxies(url, no_proxy=session.proxies.get("no_proxy")) for url in urls]
    netrc = [get_netrc_auth(url) for url in urls] if session.auth is None else [None]
    if any(found != proxies[0] for found in proxies) or any(found != netrc[0] for found in netrc):
        return
    session.proxies = {**proxies[0], **session.proxies}
    if session.verify is True:
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    if session.auth is None:
        session.auth = netrc[0]
    session.trust_env = False


@contextmanager
def http_session(conn_id: str, *, not_headers: Iterable[str] = ()) -> Iterator[HttpSession]:
    """An ``HttpHook`` session for Connection ``conn_id``, closed on exit; ``not_headers``: extra keys that are not.

    ``HttpHook`` applies the Connection: login/password as Basic auth, the extra's keys as headers (and ``headers``,
    a mapping, here), ``timeout``, ``verify``, ``proxies``. Answers are left unchecked and redirects not followed.
    """
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="POST", http_conn_id=conn_id)
    connection = hook.get_connection(conn_id)
    extra = connection.extra_dejson
    options: dict[str, Any] = {"check_response": False, "allow_redirects": False}
    if extra.get("timeout") is None:
        options["timeout"] = DEFAULT_TIMEOUT
    session = hook.get_conn(extra_options=options)
    try:
        _own_headers(session, extra, conn_id, not_headers)
        scheme, netloc = urlsplit(str(hook.base_url))[:2]
        if scheme not in ("http", "https") or not netloc:
            raise ValueError(f"Connection {conn_id}: no http(s) host")
        read_environment_once(session, str(hook.base_url))
        yield HttpSession(hook, session, connection, _secrets(connection, session.headers))
    finally:
        session.close()


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"the key {next(k for k in keys if keys.count(k) > 1)[:60]!r} appears twice")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(node: Any) -> int:
    if isinstance(node, dict):
        return 1 + max(map(_depth, node.values()), default=0)
    if isinstance(node, list):
        return 1 + max(map(_depth, node), default=0)
    return 0


def _fill(node: Any, values: dict[str, Any]) -> Any:
    """``node`` with ``$placeholders`` filled in its string values; keys, numbers, booleans and null untouched."""
    if isinstance(node, str):
        return render(node, values)
    if isinstance(node, list):
        return [_fill(item, values) for item in node]
    if isinstance(node, dict):
        return {key: _fill(value, values) for key, value in node.items()}
    return node


class BodyTemplate:
    """A JSON body parsed once; each recipient's values fill ``$placeholders`` inside its string values only.

    A value is substituted after parsing, so it always stays one JSON string: quotes, braces or ``$`` in a
    recipient's field cannot change the document's structure. Unknown placeholders stay as written.
    """

    def __init__(self, text: str) -> None:
        if len(text) > TEMPLATE_MAX:
            raise ValueError(f"is {len(text)} characters long; the limit is {TEMPLATE_MAX}")
        try:
            document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        except json.JSONDecodeError as error:
            raise ValueError(f"is not JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
        except RecursionError:
            raise ValueError(f"nests objects and arrays deeper than {TEMPLATE_DEPTH_MAX}") from None
        if not isinstance(document, dict | list):
            raise ValueError("must be a JSON object or array")
        if _depth(document) > TEMPLATE_DEPTH_MAX:
            raise ValueError(f"nests objects and arrays deeper than {TEMPLATE_DEPTH_MAX}")
        self.document = document

    def render(self, values: dict[str, Any]) -> Any:
        """The document for one recipient."""
        return _fill(self.document, values)

    def text(self, values: dict[str, Any]) -> str:
        """The JSON text for one recipient; ``Refused`` when it exceeds ``RENDERED_MAX`` bytes."""
        text = json.dumps(self.render(values), ensure_ascii=False, separators=(",", ":"))
        if (size := len(text.encode())) > RENDERED_MAX:
            raise Refused(f"the webhook body is {size} bytes for this recipient; the limit is {RENDERED_MAX}")
        return text


@dataclass(frozen=True)
class WebhookSettings:
    """A webhook channel's settings, validated: the body template, endpoint, method and address field."""

    body: BodyTemplate
    endpoint: str
    method: str
    address_field: str

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> WebhookSettings:
        """Validate a channel's settings; ``ValueError("<setting>: <why>")`` names the setting that is wrong."""
        try:
            body = BodyTemplate(str(settings.get("body") or ""))
        except ValueError as error:
            raise ValueError(f"body: {error}") from None
        endpoint = str(settings.get("endpoint") or "")
        if not ENDPOINT.fullmatch(endpoint):
            raise ValueError(f"endpoint: {endpoint[:60]!r} must be a URL path (no space, '#' or '\\')")
        method = str(settings.get("method") or METHODS[0]).upper()
        if method not in METHODS:
            raise ValueError(f"method: {method[:20]!r} must be one of {', '.join(METHODS)}")
        field = str(settings.get("address_field") or ADDRESS_FIELDS[0])
        if field not in ADDRESS_FIELDS:
            raise ValueError(f"address_field: {field[:40]!r} must be one of {', '.join(ADDRESS_FIELDS)}")
        return cls(body, endpoint, method, field)

    def url(self, base_url: str) -> str:
        """The Connection's URL with the endpoint appended: always after a '/', so the host cannot change."""
        return f"{base_url.rstrip('/')}/{self.endpoint.lstrip('/')}" if self.endpoint else base_url


class WebhookAdapter(ChannelAdapter):
    """Sends each recipient's JSON body to the Connection's URL (``endpoint`` appended) through ``HttpHook``.

    Headers come from the Connection (its extra's keys, or its ``headers`` mapping; login/password as Basic
    auth). Each request carries ``Idempotency-Key: <campaign>/<slot>/<recipient id>`` (each part
    percent-encoded), the same for every try and resend of that recipient's message in that slot.
    """

    name = "webhook"
    transport = "http"
    default_conn_id = "http_default"  # never used: a webhook channel must name its Connection (``conn_id``)
    requires_conn_id = True
    address_field = "id"
    required_settings = ("body",)
    optional_settings: ClassVar[dict[str, Any]] = {"endpoint": "", "method": "POST", "address_field": "id"}
    setting_choices: ClassVar[dict[str, tuple[str, ...]]] = {"method": METHODS, "address_field": ADDRESS_FIELDS}
    one_line_settings = frozenset({"endpoint", "method", "address_field"})

    def __init__(self, context: DeliveryContext, pacer: Pacer) -> None:
        super().__init__(context, pacer)
        self.webhook = WebhookSettings.of(context.settings)

    @classmethod
    def validate(cls, settings: Mapping[str, Any]) -> None:
        """Raise ``ValueError("<setting>: <why>")`` when a webhook channel's settings cannot be sent."""
        WebhookSettings.of(settings)

    @property
    def conn_id(self) -> str:
        """The channel's own Connection; a webhook never falls back to ``http_default``."""
        if not self.context.conn_id:
            raise ValueError("a webhook channel sends through its own Connection: set conn_id")
        return self.context.conn_id

    def address(self, recipient: Recipient) -> str:
        """The recipient field this channel addresses (``address_field``: id, email, phone or push_token)."""
        return str(getattr(recipient, self.webhook.address_field))

    def idempotency_key(self, recipient: Recipient) -> str:
        """``<campaign>/<slot>/<recipient id>``, percent-encoded; a digest when it would exceed 255 characters."""
        return idempotency_key(self.context, recipient)

    @contextmanager
    def connection(self) -> Iterator[HttpSession]:
        """One ``HttpHook`` session, kept alive for the batch."""
        with http_session(self.conn_id) as http:
            yield http

    def check(self) -> str:
        """Connect (TCP, and TLS for https) and send ``HEAD`` to the endpoint, without a body: nothing is sent.

        Any answer but 401, 403, 407 or a 5xx proves the receiver reachable (many answer 405 to ``HEAD``).
        """
        with self.connection() as http:
            url = self.webhook.url(http.base_url)
            shown = http.redact(url)
            try:
                response = http.send("HEAD", url)
            except Transient as unreachable:
                raise ConnectionError(f"webhook: {shown} is unreachable ({unreachable.reason})") from None
        status = f"HTTP {response.status_code} {http.redact(str(response.reason))}"
        if response.status_code in (401, 403, 407):
            raise PermissionError(f"webhook: {shown} refused the Connection's credentials ({status})")
        if response.status_code >= 500:
            raise ConnectionError(f"webhook: {shown} answered HEAD with {status}")
        return f"http: {shown} answered HEAD with {status} (reachable; nothing sent)"

    def send_one(self, connection: HttpSession, recipient: Recipient) -> bool:
        """Send one body; the answer is sorted by ``http_answer`` (2xx sent; 408, 429, 5xx for now; 4xx refused)."""
        body = self.webhook.body.text(self.values(recipient)).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": self.idempotency_key(recipient)}
        url = self.webhook.url(connection.base_url)
        response = connection.send(self.webhook.method, url, data=body, headers=headers)
        http_answer(response.status_code, connection.reason(response), response.headers.get("Retry-After"))
        return True


def idempotency_key(context: DeliveryContext, recipient: Recipient) -> str:
    """``<campaign>/<slot>/<recipient id>``: the slot's key when the context has one, else ``run:<run id>``."""
    slot = getattr(context, "slot_key", "") or f"run:{context.run_id}"
    key = "/".join(quote(str(part), safe="") for part in (context.campaign, slot, recipient.id))
    return key if len(key) <= IDEMPOTENCY_KEY_MAX else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class DryRunWebhookAdapter(SinkAdapter):
    """The webhook as a dry run: each recipient's rendered JSON body written to the sink, nothing sent."""

    name = WebhookAdapter.name
    address_field = WebhookAdapter.address_field
    required_settings = WebhookAdapter.required_settings
    optional_settings = WebhookAdapter.optional_settings
    setting_choices = WebhookAdapter.setting_choices
    one_line_settings = WebhookAdapter.one_line_settings

    def __init__(self, context: DeliveryContext, pacer: Pacer) -> None:
        super().__init__(context, pacer)
        self.webhook = WebhookSettings.of(context.settings)

    def address(self, recipient: Recipient) -> str:
        """The recipient field this channel addresses (``address_field``)."""
        return str(getattr(recipient, self.webhook.address_field))

    def payload(self, values: dict[str, Any]) -> dict[str, Any]:
        """The body exactly as it would be sent (JSON text)."""
        return {"body": self.webhook.body.text(values)}
