"""The push channel's FCM HTTP v1 transport against a local FCM: the OAuth2 token endpoint and ``messages:send``."""

from __future__ import annotations

import json
import math
import re
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.airflow_env import free_port
from tests.support.rigs.http_server import Remote

CONN_ID = "rig_fcm"
PROJECT_ID = "rig-project"
CLIENT_EMAIL = f"campaigns@{PROJECT_ID}.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUDIENCE = "https://oauth2.googleapis.com/token"  # a grant's ``aud``, whatever token URI it is posted to
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
SEND_PATH = re.compile(r"/v1/projects/(?P<project>[^/]+)/messages:send")
SETTINGS = {"title": "Hello $first_name", "body": "An offer for $country", "deep_link": "app://offers/$country"}
# The FCM v1 Message resource: its fields, its targets (exactly one), and a Notification's fields.
MESSAGE_FIELDS = frozenset({"name", "data", "notification", "android", "webpush", "apns", "fcm_options"})
TARGETS = frozenset({"token", "topic", "condition"})
NOTIFICATION_FIELDS = frozenset({"title", "body", "image"})
# FCM's ErrorCode -> (HTTP status, google.rpc status, message), as FCM v1 answers them.
ERRORS = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Messages sent'"),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
}

Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, extra headers


def fcm_error(status: int, rpc_status: str, message: str, code: str = "", token_field: bool = False) -> dict[str, Any]:
    """An FCM v1 error body: ``error`` with code, message, status and the ``details`` FCM adds."""
    details: list[dict[str, Any]] = [{"@type": FCM_ERROR, "errorCode": code}] if code else []
    if token_field:
        details.append({"@type": BAD_REQUEST, "fieldViolations": [{"field": "message.token", "description": message}]})
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc_status}
    return {"error": {**error, "details": details} if details else error}


def coded(code: str, retry_after: float | None = None) -> Answer:
    """FCM's answer for error ``code``."""
    status, rpc_status, message = ERRORS[code]
    headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after is not None else {}  # whole seconds
    return status, fcm_error(status, rpc_status, message, code, code == "INVALID_ARGUMENT"), headers


def invalid(message: str) -> Answer:
    """A 400 INVALID_ARGUMENT about the request itself (no FCM error code: Google's API front answers it)."""
    return 400, fcm_error(400, "INVALID_ARGUMENT", message), {}


def shape_problem(payload: Any) -> str | None:
    """What is wrong with a ``messages:send`` body by the FCM v1 reference, or None."""
    if not isinstance(payload, dict) or not isinstance(message := payload.get("message"), dict):
        return "Invalid JSON payload received. 'message' is required."
    if unknown := set(payload) - {"message", "validate_only"}:
        return f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}": Cannot find field.'
    if unknown := set(message) - MESSAGE_FIELDS - TARGETS:
        return f"Invalid JSON payload received. Unknown name \"{sorted(unknown)[0]}\" at 'message': Cannot find field."
    if len(set(message) & TARGETS) != 1:
        return "Exactly one of token, topic or condition must be set."
    if "token" in message and not (isinstance(message["token"], str) and message["token"]):
        return "The registration token is not a valid FCM registration token"
    notification = message.get("notification", {})
    if not isinstance(notification, dict) or set(notification) - NOTIFICATION_FIELDS:
        return "Invalid JSON payload received. Unknown name at 'message.notification': Cannot find field."
    data = message.get("data", {})
    fields = [*notification.values(), *(data.values() if isinstance(data, dict) else [None])]
    if not all(isinstance(value, str) for value in fields):
        return "Invalid value at 'message.data' or 'message.notification': a string is expected."
    return None


@dataclass
class _State:
    """What the rig received and how it answers; kept across go_away and come_back."""

    accepted: list[str] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)  # accepted send requests: path, headers, body
    tokens: dict[str, float] = field(default_factory=dict)  # access token -> monotonic expiry
    tokens_issued: int = 0
    unauthorized: int = 0  # send requests answered 401 for their token
    throttled: int = 0
    retry_after: float | None = None
    failing: dict[str, str] = field(default_factory=dict)  # address -> FCM error code answered for it
    delay: float = 0.0
    token_lifetime: int = 3600
    reject_tokens: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(ThreadingHTTPServer):
    """A threaded HTTP server that knows its open connections (``go_away`` closes them)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, rig: FcmRig) -> None:
        self.rig = rig
        self.open: set[socket.socket] = set()
        self.open_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Remember the connection while it is served."""
        with self.open_lock:
            self.open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget a connection once served."""
        with self.open_lock:
            self.open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection cut by ``go_away`` is expected: nothing to print."""

    def drop_connections(self) -> None:
        """Cut every open connection, as a crashed server would."""
        with self.open_lock:
            connections, self.open = list(self.open), set()
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Serves ``POST /token`` and ``POST /v1/projects/<id>/messages:send`` over HTTP/1.1 keep-alive."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall between them
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        """Read the body, let the rig answer, write the answer (unless the rig went away meanwhile)."""
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.reply((411, {"error": {"code": 411, "message": "Length Required"}}, {}))
            return
        body = self.rfile.read(int(length))
        rig = self.server.rig
        path = urllib.parse.urlsplit(self.path).path
        answer = rig.token_answer(self.headers, body) if path == "/token" else rig.send_answer(path, self.headers, body)
        if answer is None:  # gone while taking its time: the connection is dropped without an answer
            self.close_connection = True
            return
        self.reply(answer)

    def reply(self, answer: Answer) -> None:
        """Write one JSON answer."""
        status, payload, headers = answer
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class FcmRig:
    """A local FCM for the push channel's ``fcm`` transport, with its own service account key."""

    channel = "push"
    transport = "fcm"
    conn_id = CONN_ID

    def __init__(self, port: int) -> None:
        self.port = port
        self.token_uri = f"http://127.0.0.1:{port}/token"  # the rig's OAuth2 token endpoint
        self.settings: dict[str, Any] = dict(SETTINGS)
        self.state = _State()
        self.server: _Server | None = None
        self.thread: threading.Thread | None = None
        self.gone = threading.Event()
        self.holding = threading.Event()  # set once a send request waits out ``slow_down``
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = key.public_key()
        self.private_key = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.key_id = secrets.token_hex(20)

    def service_account(self) -> dict[str, Any]:
        """The service account JSON key (the fields google-auth reads), with the rig's token URI."""
        return {
            "type": "service_account",
            "project_id": PROJECT_ID,
            "private_key_id": self.key_id,
            "private_key": self.private_key,
            "client_email": CLIENT_EMAIL,
            "token_uri": self.token_uri,
            "universe_domain": "googleapis.com",
        }

    def connection(self, **extra: Any) -> str:
        """``AIRFLOW_CONN_<ID>`` JSON of the rig's Connection; ``extra`` adds to or replaces its extra."""
        endpoint = f"http://127.0.0.1:{self.port}"  # instead of https://fcm.googleapis.com
        fields = {"service_account": self.service_account(), "endpoint": endpoint, "timeout": 10, **extra}
        return json.dumps({"conn_type": "generic", "extra": fields})

    def come_back(self) -> None:
        """Listen on the rig's port (again: with what was accepted and the tokens issued before)."""
        self.gone.clear()
        self.server = _Server(self.port, self)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="fcm-rig", daemon=True
        )
        self.thread.start()

    def go_away(self) -> None:
        """Close the listening socket and cut every connection (and every answer in progress)."""
        self.gone.set()
        if self.server is not None and self.thread is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server.drop_connections()
            self.thread.join()
            self.server = self.thread = None

    def token_answer(self, headers: Any, body: bytes) -> Answer:
        """Google's OAuth2 token endpoint: a JWT bearer grant signed by the rig's key buys an access token."""
        if not str(headers.get("Content-Type", "")).startswith("application/x-www-form-urlencoded"):
            return 400, {"error": "invalid_request", "error_description": "Bad Request"}, {}
        form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
        if form.get("grant_type") != [JWT_BEARER] or len(form.get("assertion", [])) != 1:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: "}, {}
        assertion = form["assertion"][0]
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                audience=AUDIENCE,
                issuer=CLIENT_EMAIL,
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
            )
        except jwt.PyJWTError:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, {}
        if header.get("kid") != self.key_id or not 0 < claims["exp"] - claims["iat"] <= 3600:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: Token must be short-lived"}, {}
        if SCOPE not in str(claims["scope"]).split():
            return 400, {"error": "invalid_scope", "error_description": "Invalid OAuth scope."}, {}
        token = f"ya29.rig-{secrets.token_urlsafe(32)}"
        with self.state.lock:
            self.state.tokens[token] = time.monotonic() + self.state.token_lifetime
            self.state.tokens_issued += 1
            lifetime = self.state.token_lifetime
        return 200, {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}, {}

    def authorized(self, headers: Any) -> bool:
        """Whether the request carries an access token the rig issued that is still valid."""
        scheme, _, token = str(headers.get("Authorization", "")).partition(" ")
        with self.state.lock:
            expiry = self.state.tokens.get(token)
            valid = scheme == "Bearer" and expiry is not None and time.monotonic() < expiry
            if not valid or self.state.reject_tokens:
                self.state.unauthorized += 1
                return False
        return True

    def send_answer(self, path: str, headers: Any, body: bytes) -> Answer | None:
        """``messages:send``: checked as FCM v1 does, in its order; None when the rig went away meanwhile."""
        if (match := SEND_PATH.fullmatch(path)) is None:
            return 404, fcm_error(404, "NOT_FOUND", "Requested entity was not found."), {}
        if not self.authorized(headers):
            return 401, fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."), {}
        if match["project"] != PROJECT_ID:
            resource = f"//cloudresourcemanager.googleapis.com/projects/{match['project']}"
            message = f"Permission 'cloudmessaging.messages.create' denied on resource '{resource}'"
            return 403, fcm_error(403, "PERMISSION_DENIED", message), {}
        if not str(headers.get("Content-Type", "")).startswith("application/json"):
            return invalid("Invalid JSON payload received. Content-Type must be application/json.")
        try:
            payload = json.loads(body)
        except ValueError:
            return invalid("Invalid JSON payload received. Unexpected token.")
        if problem := shape_problem(payload):
            return invalid(problem)
        return self.deliver(path, headers, payload)

    def deliver(self, path: str, headers: Any, payload: dict[str, Any]) -> Answer | None:
        """Throttle, take the rig's time, refuse a failing address or accept the message."""
        with self.state.lock:
            if self.state.throttled > 0:
                self.state.throttled -= 1
                return coded("QUOTA_EXCEEDED", self.state.retry_after)
            delay = self.state.delay
        if delay:
            self.holding.set()
            if self.gone.wait(delay):
                return None
        message = payload["message"]
        address = str(message.get("token", ""))
        with self.state.lock:
            if self.gone.is_set():
                return None
            if code := self.state.failing.get(address):
                return coded(code)
            self.state.accepted.append(address)
            seen = {"content_type": headers.get("Content-Type"), "authorization": headers.get("Authorization")}
            self.state.seen.append({"path": path, **seen, "body": payload})
            number = len(self.state.accepted)
        return 200, {"name": f"projects/{PROJECT_ID}/messages/0:{number}%rig"}, {}

    def accepted(self) -> list[str]:
        """Push tokens a message was accepted for, in order."""
        with self.state.lock:
            return list(self.state.accepted)

    def throttle_next(self, count: int, retry_after: float | None = None) -> None:
        """Answer the next ``count`` sends with 429 QUOTA_EXCEEDED (and ``Retry-After`` in whole seconds)."""
        with self.state.lock:
            self.state.throttled, self.state.retry_after = count, retry_after

    def refuse_address(self, address: str) -> None:
        """Answer 404 UNREGISTERED to every message for push token ``address``."""
        self.fail_address(address, "UNREGISTERED")

    def slow_down(self, seconds: float) -> None:
        """Take ``seconds`` before answering each send."""
        with self.state.lock:
            self.state.delay = seconds

    def fail_address(self, address: str, code: str) -> None:
        """Answer FCM error ``code`` (a key of ``ERRORS``) to every message for push token ``address``."""
        assert code in ERRORS, code
        with self.state.lock:
            self.state.failing[address] = code

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now: the next send with one is answered 401."""
        with self.state.lock:
            self.state.tokens = dict.fromkeys(self.state.tokens, 0.0)

    def tokens(self, *, lifetime: int = 3600, refused: bool = False) -> None:
        """Issue tokens valid ``lifetime`` seconds; ``refused``: answer 401 to every send whatever its token."""
        with self.state.lock:
            self.state.token_lifetime, self.state.reject_tokens = lifetime, refused

    def token_counts(self) -> tuple[int, int]:
        """Access tokens the token endpoint issued, and send requests answered 401 for their token."""
        with self.state.lock:
            return self.state.tokens_issued, self.state.unauthorized

    def seen(self) -> list[dict[str, Any]]:
        """Every accepted send request as the rig saw it: path, content type, authorization and JSON body."""
        with self.state.lock:
            return [dict(request) for request in self.state.seen]


def remote() -> Remote:
    """The rig as a process sees it that sends to it while another process runs it (its Connection in the env)."""
    return Remote(FcmRig.channel, FcmRig.transport, CONN_ID, dict(SETTINGS))


@contextmanager
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[FcmRig]:
    """An ``FcmRig`` on a free port with Connection ``rig_fcm`` holding its service account."""
    server = FcmRig(free_port())
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", server.connection())
    server.come_back()
    try:
        yield server
    finally:
        server.go_away()
