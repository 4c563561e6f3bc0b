"""Push through Firebase Cloud Messaging HTTP v1, with a service account from the Connection."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from campaign_runs.factory.answers import Refused, Transient, http_answer, short
from campaign_runs.factory.channels import render
from campaign_runs.factory.transports.dry_run import PushAdapter
from campaign_runs.factory.transports.webhook import read_environment_once

if TYPE_CHECKING:
    import requests
    from google.auth.transport import Request
    from google.oauth2.service_account import Credentials

    from campaign_runs.factory.audience import Recipient

FCM_CONN_ID = "fcm_default"
FCM_ENDPOINT = "https://fcm.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_TIMEOUT = 30.0
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
TOKEN_FIELD = "message.token"
BAD_ADDRESS_CODES = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})  # the token is gone, or another project's
ACCOUNT_KEYS = ("service_account", "keyfile_dict")  # extra fields holding the service account JSON


@dataclass(frozen=True)
class FcmSettings:
    """What the Connection says: the service account, its project and where messages are sent."""

    info: dict[str, Any] = field(repr=False)  # the service account JSON, private key included
    project_id: str
    endpoint: str
    timeout: float

    @classmethod
    def resolve(cls, conn_id: str) -> FcmSettings:
        """Read Connection ``conn_id``: extra ``service_account`` (or ``key_path``), ``project_id``, ``endpoint``."""
        from airflow.sdk import BaseHook

        connection = BaseHook.get_connection(conn_id)
        extra = connection.extra_dejson
        info = _account(conn_id, extra)
        project_id = str(extra.get("project_id") or info.get("project_id") or "")
        if not project_id:
            raise ValueError(f"Connection {conn_id!r}: no project_id in its extra nor in the service account")
        endpoint = str(extra.get("endpoint") or "")
        if not endpoint and connection.host:
            endpoint = str(connection.host)
            if "://" not in endpoint:
                port = f":{connection.port}" if connection.port else ""
                endpoint = f"{connection.schema or 'https'}://{endpoint}{port}"
        timeout = float(extra.get("timeout") or DEFAULT_TIMEOUT)
        return cls(info, project_id, (endpoint or FCM_ENDPOINT).rstrip("/"), timeout)

    @property
    def url(self) -> str:
        """Where one message is sent."""
        return f"{self.endpoint}/v1/projects/{self.project_id}/messages:send"


def _account(conn_id: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The service account JSON of a Connection's extra: inline (object or string), else read from ``key_path``."""
    raw: Any = next((extra[key] for key in ACCOUNT_KEYS if extra.get(key)), None)
    where = "extra service_account"
    if raw is None and extra.get("key_path"):
        where = "the file of extra key_path"
        try:
            raw = Path(str(extra["key_path"])).read_text(encoding="utf-8")
        except OSError as error:
            raise ValueError(f"Connection {conn_id!r}: cannot read key_path ({error.strerror})") from None
    if raw is None:
        raise ValueError(f"Connection {conn_id!r} has no service account: set extra service_account or key_path")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ValueError(f"Connection {conn_id!r}: {where} is not JSON") from None
    if not isinstance(raw, dict):
        raise ValueError(f"Connection {conn_id!r}: {where} is not a JSON object")
    return raw


def _scrub(text: str, secrets: tuple[str | None, ...]) -> str:
    """``text`` with every secret (and each line of a PEM key) replaced by ``***``."""
    for secret in secrets:
        for part in (secret or "").splitlines():
            if len(part := part.strip()) >= 8:
                text = text.replace(part, "***")
    return text


@dataclass
class FcmConnection:
    """One sender thread's HTTP session, and the token requests google-auth makes through it."""

    session: requests.Session
    auth_request: Request


def fcm_error(response: requests.Response) -> tuple[str, str, bool]:
    """An FCM v1 error answer as (its ``errorCode`` or status, its message, whether it is about the token)."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    code = next((str(d.get("errorCode")) for d in details if d.get("@type") == FCM_ERROR and d.get("errorCode")), "")
    message = str(error.get("message") or response.text or response.reason or "")
    violations = [v for d in details if d.get("@type") == BAD_REQUEST for v in d.get("fieldViolations") or []]
    about_token = any(isinstance(v, dict) and v.get("field") == TOKEN_FIELD for v in violations)
    about_token = about_token or "registration token" in message.lower()
    return code or str(error.get("status") or ""), message, about_token


class FcmPushAdapter(PushAdapter):
    """Push notifications through FCM HTTP v1; one OAuth2 token shared by the sender threads, one session each."""

    transport = "fcm"
    default_conn_id = FCM_CONN_ID

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()  # guards the shared credentials: one token fetch at a time
        self._fcm: FcmSettings | None = None
        self._credentials: Credentials | None = None

    def account(self) -> tuple[FcmSettings, Credentials]:
        """The Connection's settings and credentials, read once for the adapter's sender threads."""
        with self._lock:
            if self._fcm is None or self._credentials is None:
                from google.oauth2 import service_account

                fcm = FcmSettings.resolve(self.conn_id)
                try:
                    credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                        fcm.info, scopes=[SCOPE]
                    )
                except (ValueError, TypeError, KeyError) as error:
                    reason = _scrub(short(str(error)), (str(fcm.info.get("private_key") or ""),))
                    raise ValueError(f"Connection {self.conn_id!r}: unusable service account: {reason}") from None
                self._fcm, self._credentials = fcm, credentials
            return self._fcm, self._credentials

    def secrets(self) -> tuple[str | None, ...]:
        """What must never be shown: the private key and the current access token."""
        fcm, credentials = self._fcm, self._credentials
        return (str(fcm.info.get("private_key") or "") if fcm else None, credentials.token if credentials else None)

    @contextmanager
    def connection(self) -> Iterator[FcmConnection]:
        """One HTTP session (kept alive between messages), closed on exit."""
        import requests
        from google.auth.transport.requests import Request

        fcm, _ = self.account()
        session = requests.Session()
        session.headers["Content-Type"] = "application/json; charset=UTF-8"
        read_environment_once(session, fcm.url, str(fcm.info.get("token_uri") or fcm.url))
        # google-auth's token requests wait 120 s by default: the Connection's timeout instead.
        auth_request = cast("Request", functools.partial(Request(session), timeout=fcm.timeout))
        try:
            yield FcmConnection(session, auth_request)
        finally:
            session.close()

    def token(self, connection: FcmConnection, stale: str | None = None) -> str:
        """A valid access token, fetched again when missing, about to expire, or ``stale`` (refused with 401)."""
        from google.auth import exceptions

        _, credentials = self.account()
        with self._lock:
            if not credentials.valid or (stale is not None and credentials.token == stale):
                try:
                    credentials.refresh(connection.auth_request)  # type: ignore[no-untyped-call]
                except exceptions.TransportError as error:  # no token, so no message left: try again later
                    raise Transient(f"FCM token endpoint unreachable: {self._hidden(error)}") from None
                except exceptions.RefreshError as error:
                    reason = f"FCM token refused: {self._hidden(error.args[0] if error.args else error)}"
                    raise (Transient(reason) if error.retryable else Refused(reason)) from None
            return str(credentials.token)

    def _hidden(self, error: object) -> str:
        """``error`` as one line without any secret."""
        return _scrub(short(str(error)), self.secrets())

    def message(self, recipient: Recipient) -> dict[str, Any]:
        """The ``messages:send`` body for one recipient: token, notification, and the deep link as data."""
        values = self.values(recipient)
        settings = self.context.settings
        notification = {key: render(str(settings[key]), values) for key in ("title", "body")}
        message: dict[str, Any] = {"token": self.address(recipient), "notification": notification}
        if deep_link := render(str(settings.get("deep_link") or ""), values):
            message["data"] = {"deep_link": deep_link}
        return {"message": message}

    def post(self, connection: FcmConnection, token: str, body: bytes) -> requests.Response:
        """POST one message; ``Transient`` when no connection could be made (nothing left)."""
        import requests
        from urllib3.exceptions import ConnectTimeoutError

        fcm, _ = self.account()
        headers = {"Authorization": f"Bearer {token}"}
        try:
            return connection.session.post(
                fcm.url, data=body, headers=headers, timeout=fcm.timeout, allow_redirects=False
            )
        except requests.ConnectionError as error:
            cause = getattr(error.args[0], "reason", None) if error.args else None
            # NewConnectionError (refused, unresolved) is a ConnectTimeoutError: the request was never written.
            if isinstance(error, requests.ConnectTimeout) or isinstance(cause, ConnectTimeoutError):
                raise Transient(f"FCM unreachable: {type(cause or error).__name__}") from None
            raise

    def send_one(self, connection: FcmConnection, recipient: Recipient) -> bool:
        """Send one push; a 401 fetches a new token and tries once more; other refusals raise their answer."""
        body = json.dumps(self.message(recipient), ensure_ascii=False).encode()
        token = self.token(connection)
        response = self.post(connection, token, body)
        if response.status_code == 401 and fcm_error(response)[0] != "THIRD_PARTY_AUTH_ERROR":
            response = self.post(connection, self.token(connection, stale=token), body)
        self.answer(response)
        return True

    def answer(self, response: requests.Response) -> None:
        """Raise what FCM's answer means: bad tokens bounce, 429/5xx are tried again, other errors refuse."""
        status = response.status_code
        if 200 <= status < 300:
            return
        code, message, about_token = fcm_error(response)
        reason = self._hidden(f"FCM {code or 'error'}: {message}")
        if code in BAD_ADDRESS_CODES or (status == 400 and about_token):
            raise Refused(f"HTTP {status}: {reason}", bad_address=True)
        if code == "THIRD_PARTY_AUTH_ERROR":  # APNs or web push credentials: Android devices still get theirs
            raise Refused(f"HTTP {status}: {reason}")
        http_answer(status, reason, response.headers.get("Retry-After"))  # 408, 429, 5xx Transient, else Refused
        raise Refused(f"HTTP {status}: {reason}")  # pragma: no cover (http_answer raises for every non-2xx)

    def check(self) -> str:
        """Fetch an access token (nothing is sent) and name the project messages would go to."""
        fcm, credentials = self.account()
        with self.connection() as connection:
            try:
                self.token(connection)
            except (Refused, Transient) as error:
                raise RuntimeError(f"fcm: Connection {self.conn_id!r}: {error.reason}") from None
        return f"fcm: token fetched for {credentials.service_account_email}, project {fcm.project_id}"
