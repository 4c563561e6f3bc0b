"""moto's server on a free loopback port, the Airflow ``aws`` Connection to it, and a checking front for rigs.

``AwsFront`` stands between the real client code and moto: it checks each request as AWS does (POST of a
form, Signature Version 4 signed with the rig's own secret, the API's version and the send request's fields),
forwards what it accepts to moto, and can answer AWS's own throttling and refusal errors, answer slowly, or
close its listening socket and open it again on the same port.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hmac
import http.client
import json
import math
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar, Self
from xml.sax.saxutils import escape

import pytest

from tests.support.airflow_env import free_port

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
REGION = CREDENTIALS["region_name"]
FORM = "application/x-www-form-urlencoded; charset=utf-8"  # what botocore sends for query-protocol APIs
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)
CLOCK_SKEW = dt.timedelta(minutes=5)  # AWS refuses a request signed longer ago (or ahead) than this
HOP_BY_HOP = frozenset({"connection", "keep-alive", "content-length", "transfer-encoding"})
Reply = tuple[int, dict[str, str], bytes]
AWS_SETTINGS = (  # environment variables that would give boto3 credentials, a profile or a region of this machine
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL",
)  # fmt: skip


@contextmanager
def moto_server(timeout: float = 120.0) -> Iterator[str]:
    """``python -m moto.server`` on 127.0.0.1 and a free port; yields its endpoint URL; stopped by its pid.

    ``timeout`` only bounds a failure: on a loaded machine importing moto takes tens of seconds.
    """
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # Its request log goes to a file: a pipe nobody reads would fill up and block the server.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                        break
                except OSError:
                    if process.poll() is not None:
                        log.seek(0)
                        raise AssertionError(f"moto server exited: {log.read().decode()[-2000:]}") from None
                    if time.monotonic() > deadline:
                        raise AssertionError(f"moto server not answering on {endpoint} after {timeout}s") from None
                    time.sleep(0.1)
            yield endpoint
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


_shared: dict[str, Any] = {}  # this process's one moto server for the rigs: its ExitStack and endpoint


@contextmanager
def shared_moto_server() -> Iterator[str]:
    """This test process's one moto server, started on first use and emptied for each user (``/moto-api/reset``).

    Starting moto takes seconds; every rig of a test process shares one, stopped by its pid when the process exits.
    """
    if "endpoint" not in _shared:
        stack = ExitStack()
        _shared["endpoint"] = stack.enter_context(moto_server())
        atexit.register(stack.close)
    endpoint = str(_shared["endpoint"])
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30):
        pass
    yield endpoint


def aws_connection(endpoint: str, *, login: str = "testing", password: str = "testing", **extra: str) -> str:
    """``AIRFLOW_CONN_<ID>`` JSON of an ``aws`` Connection to ``endpoint``, with more ``extra`` fields."""
    fields = {"endpoint_url": endpoint, "region_name": REGION, **extra}
    return json.dumps({"conn_type": "aws", "login": login, "password": password, "extra": fields})


def moto_data(endpoint: str) -> dict[str, Any]:
    """What moto's server stored, by service and model (``/moto-api/data.json``; an unused service is absent)."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as answer:
        data: dict[str, Any] = json.load(answer)
    return data


def form(body: bytes) -> dict[str, str]:
    """A query-protocol request's fields."""
    return {key: values[0] for key, values in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()}


@dataclass(frozen=True)
class AwsApi:
    """One AWS query-protocol API as the front checks it, and the errors it answers with."""

    service: str  # the signing name: ses, sns
    version: str  # the API version every request names
    send_action: str  # the action that sends a message
    address_field: str  # the form field holding the message's recipient
    throttling: tuple[str, str]  # code and message of the API's throttling error (HTTP 400)
    invalid: str  # the code of the API's HTTP 400 for a request field it does not take
    refusal: Callable[[str], tuple[str, str]]  # code and message refusing an address for good (HTTP 400)
    send_problem: Callable[[dict[str, str]], str | None]  # what is wrong with a send request's fields

    def error(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Reply:
        """An error answer as the API writes it."""
        body = (
            f'<ErrorResponse xmlns="http://{self.service}.amazonaws.com/doc/{self.version}/"><Error><Type>Sender</Type>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )
        return status, {"Content-Type": "text/xml", **(headers or {})}, body.encode()


def signature_problem(
    api: AwsApi, path: str, headers: Message, body: bytes, key: str, secret: str
) -> tuple[int, str, str] | None:
    """Why AWS would refuse the request's Signature Version 4 (status, code, message); None when it is good."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    match = AUTHORIZATION.fullmatch(headers.get("Authorization") or "")
    if match is None:
        return 403, "MissingAuthenticationToken", "Request is missing Authentication Token"
    if match["key"] != key:
        return 403, "InvalidClientTokenId", "The security token included in the request is invalid."
    stamp = headers.get("X-Amz-Date") or ""
    if (match["service"], match["region"], stamp[:8]) != (api.service, REGION, match["date"]):
        return 403, "SignatureDoesNotMatch", f"Credential should be scoped to {REGION}/{api.service} and today"
    try:
        signed_at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return 400, "IncompleteSignature", f"X-Amz-Date {stamp!r} is not an ISO 8601 basic date-time"
    if abs(dt.datetime.now(dt.UTC) - signed_at) > CLOCK_SKEW:
        return 403, "RequestExpired", f"Request has expired. Timestamp date is {stamp}"
    signed = match["signed"].split(";")
    if not {"host", "x-amz-date"} <= set(signed) or any(headers.get(name) is None for name in signed):
        return 403, "SignatureDoesNotMatch", "host and x-amz-date must be signed, and every signed header sent"
    request = AWSRequest("POST", f"http://{headers['Host']}{path}", {name: headers[name] for name in signed}, body)
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(key, secret), api.service, REGION)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, match["signature"]):
        return 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature"
    return None


class _Handler(BaseHTTPRequestHandler):
    """One client connection to the front (HTTP/1.1 keep-alive, as botocore's pool uses it)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # the head and the body go as two writes: no wait for a delayed ACK between
    server: AwsFront  # type: ignore[assignment]

    def do_POST(self) -> None:
        """Any request: checked and answered by the front (nothing at all if it went away meanwhile)."""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = self.server.answer(self.command, self.path, self.headers, body)
        if reply is None:
            self.close_connection = True
            return
        status, headers, payload = reply
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(payload))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_DELETE = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class AwsFront:
    """The rig's server: checks each request, forwards the good ones to moto, and misbehaves on demand."""

    api: AwsApi
    channel: str
    transport: str
    conn_id: str
    settings: ClassVar[dict[str, Any]]

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.access_key = "AKIA" + secrets.token_hex(8).upper()
        self.secret = "rig-secret-" + secrets.token_urlsafe(18)  # never in a log, a reason or an error
        self.lock = threading.Lock()
        self.gone = threading.Event()
        self.arrived = threading.Condition(self.lock)  # notified at each send request
        self.sends: list[dict[str, str]] = []  # every well-formed send request, in order (throttled ones too)
        self.problems: list[str] = []  # requests AWS would have refused as malformed or badly signed
        self.throttled = 0
        self._throttle = 0
        self._retry_after: float | None = None
        self._delay = 0.0
        self._refused: set[str] = set()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()

    def __enter__(self) -> Self:
        self.come_back()
        return self

    def __exit__(self, *exc: object) -> None:
        self.go_away()
        for thread in self._threads:
            thread.join(timeout=10)

    def accepted(self) -> list[str]:
        """Addresses moto accepted a message for, in order, duplicates kept: each rig reads its service's store."""
        raise NotImplementedError

    def throttle_next(self, count: int, retry_after: float | None = None) -> None:
        """Answer the next ``count`` send requests with the API's throttling error (``Retry-After`` if given).

        The real APIs send no ``Retry-After``; ``retry_after`` adds one, in whole seconds rounded up.
        """
        with self.lock:
            self._throttle, self._retry_after = count, retry_after

    def refuse_address(self, address: str) -> None:
        """Refuse every message to ``address`` with the API's refusal of that address."""
        with self.lock:
            self._refused.add(address)

    def slow_down(self, seconds: float) -> None:
        """Take ``seconds`` before answering each send request from now on."""
        with self.lock:
            self._delay = seconds

    def wait_for_sends(self, count: int, timeout: float = 60.0) -> bool:
        """Wait until ``count`` send requests arrived (answered or not); False after ``timeout`` seconds."""
        with self.lock:
            return self.arrived.wait_for(lambda: len(self.sends) >= count, timeout)

    def go_away(self) -> None:
        """Close the listening socket (connections are refused) and every open connection (no answer on them)."""
        with self.lock:
            self.gone.set()
            listener, self._listener = self._listener, None
            sockets = list(self._sockets)
        for sock in ([listener] if listener else []) + sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def come_back(self) -> None:
        """Listen again on the same port; what moto stored is kept."""
        listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR: the port is free again at once
        with self.lock:
            self.gone.clear()
            self._listener = listener
        self._start(self._accept, listener)

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, address = listener.accept()
            except OSError:  # closed by go_away
                return
            with self.lock:
                self._sockets.add(connection)
            self._start(self._serve, connection, address)

    def _serve(self, connection: socket.socket, address: tuple[str, int]) -> None:
        try:
            _Handler(connection, address, self)  # type: ignore[arg-type]
        except OSError:
            pass  # the front went away mid-request
        finally:
            with self.lock:
                self._sockets.discard(connection)
            connection.close()

    def answer(self, method: str, path: str, headers: Message, body: bytes) -> Reply | None:
        """The reply to one request; None: none at all (the front went away while answering)."""
        problem = self._problem(method, path, headers, body)
        if problem is not None:
            with self.lock:
                self.problems.append(f"{problem[1]}: {problem[2]}")
            return self.api.error(*problem)
        fields = form(body)
        if fields["Action"] != self.api.send_action:
            return self._forward(headers, body)
        return self._send(fields, headers, body)

    def _problem(self, method: str, path: str, headers: Message, body: bytes) -> tuple[int, str, str] | None:
        if method != "POST" or urllib.parse.urlsplit(path).path != "/":
            return 400, "InvalidAction", f"{method} {path}: the API takes POST /"
        if headers.get("Content-Type") != FORM:
            return 400, "InvalidParameterValue", f"Content-Type {headers.get('Content-Type')!r}, not {FORM!r}"
        if (signature := signature_problem(self.api, path, headers, body, self.access_key, self.secret)) is not None:
            return signature
        fields = form(body)
        if not fields.get("Action") or fields.get("Version") != self.api.version:
            return 400, "MissingAction", f"Action and Version {self.api.version} are required"
        if fields["Action"] == self.api.send_action and (wrong := self.api.send_problem(fields)) is not None:
            return 400, self.api.invalid, wrong
        return None

    def _send(self, fields: dict[str, str], headers: Message, body: bytes) -> Reply | None:
        with self.lock:
            self.sends.append(fields)
            self.arrived.notify_all()
            delay = self._delay
        if delay and self.gone.wait(delay):
            return None
        with self.lock:
            if self.gone.is_set():
                return None
            if self._throttle > 0:
                self._throttle -= 1
                self.throttled += 1
                # AWS sends no Retry-After; asked for, it goes in whole seconds (rounded up) as HTTP writes it.
                after = {} if self._retry_after is None else {"Retry-After": str(math.ceil(self._retry_after))}
                return self.api.error(400, *self.api.throttling, after)
            if (address := fields[self.api.address_field]) in self._refused:
                return self.api.error(400, *self.api.refusal(address))
        return self._forward(headers, body)

    def _forward(self, headers: Message, body: bytes) -> Reply:
        """moto's answer to the same request."""
        upstream = urllib.parse.urlsplit(self.upstream)
        connection = http.client.HTTPConnection(upstream.hostname or "", upstream.port, timeout=30)
        try:
            kept = {name: value for name, value in headers.items() if name.lower() not in HOP_BY_HOP}
            connection.request("POST", "/", body=body, headers=kept)
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        names = ("Content-Type", "x-amzn-RequestId")
        return (
            response.status,
            {name: str(response.getheader(name)) for name in names if response.getheader(name)},
            payload,
        )


def use_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, front: AwsFront, **extra: str) -> None:
    """Register ``conn_id`` as an ``aws`` Connection to ``front``, and keep this machine's AWS settings out."""
    for name in AWS_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):  # a file that is not there: no profile
        monkeypatch.setenv(name, str(Path(tempfile.gettempdir()) / f"no-aws-{secrets.token_hex(8)}"))
    connection = aws_connection(front.endpoint, login=front.access_key, password=front.secret, **extra)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection)
