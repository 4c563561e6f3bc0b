"""The HTTP providers' rigs' common part: a threaded HTTP/1.1 server on 127.0.0.1 that can go away and come back.

``HttpRig`` implements the ``TransportRig`` controls (throttle, refuse, slow down, go away, come back) around a
provider's own checks and answers, which a subclass gives (``problem``, ``send_address`` and the answers).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import socket
import sys
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.airflow_env import free_port

JOIN_SECONDS = 5.0


@dataclass(frozen=True)
class Remote:
    """A rig as a process that sends to it sees it, while another process runs it (its Connection in the env)."""

    channel: str
    transport: str
    conn_id: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def header(self, name: str) -> str:
        """A header's value ("" when absent)."""
        return self.headers.get(name.lower(), "")

    def basic_auth(self) -> tuple[str, str] | None:
        """(user, password) of an ``Authorization: Basic`` header, None without one."""
        scheme, _, encoded = self.header("Authorization").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user, password


@dataclass(frozen=True)
class Answer:
    """What the server answers: a status, headers and a body (a JSON document by default)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, document: Any, **headers: str) -> Answer:
        """A JSON answer."""
        body = json.dumps(document).encode()
        return cls(status, body, {"Content-Type": "application/json; charset=utf-8", **headers})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, owner: RigServer) -> None:
        self.owner = owner
        self.gone = threading.Event()  # set when this server goes away: slowed-down answers are abandoned
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone mid-answer (go_away, a killed sender) is expected; anything else is reported."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a sender's session reuses its connection
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall between them
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner.opened(self.connection, self.server)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner.closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the rig records what it saw."""

    def _serve(self) -> None:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._write(Answer(411, b"Content-Length required"))
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = self.server.owner.handle(Seen(self.command, path, query, headers, body), self.server.gone)
        if answer is None:  # gone while answering: the connection drops, nothing is said
            self.close_connection = True
            return
        self._write(answer)

    def _write(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_HEAD = do_OPTIONS = do_DELETE = do_PATCH = _serve


class RigServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 and a free port, answering with ``handle``; stoppable and restartable."""

    def __init__(self, handle: Callable[[Seen, threading.Event], Answer | None]) -> None:
        self.handle = handle
        self.port = free_port()
        self.lock = threading.Lock()
        self.server: _Server | None = None
        self.thread: threading.Thread | None = None
        self.open: dict[socket.socket, threading.Thread] = {}
        self.connections = 0  # TCP connections accepted so far

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def opened(self, connection: socket.socket, server: _Server) -> None:
        """A connection was accepted; one accepted as the server went away is closed at once."""
        with self.lock:
            self.open[connection] = threading.current_thread()
            self.connections += 1
        if server.gone.is_set():
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def closed(self, connection: socket.socket) -> None:
        """A connection ended."""
        with self.lock:
            self.open.pop(connection, None)

    def come_back(self) -> None:
        """Listen (again) on the same port."""
        with self.lock:
            if self.server is not None:
                return
            self.server = _Server(self.port, self)
            self.thread = threading.Thread(
                target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"rig-{self.port}", daemon=True
            )
            self.thread.start()

    def go_away(self) -> None:
        """Close the listening socket (new connections are refused) and drop every open connection."""
        with self.lock:
            server, thread, self.server, self.thread = self.server, self.thread, None, None
        if server is None or thread is None:
            return
        server.gone.set()
        server.shutdown()
        server.server_close()
        thread.join(JOIN_SECONDS)
        with self.lock:
            handlers = list(self.open.items())
        for connection, _ in handlers:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for _, handler in handlers:
            handler.join(JOIN_SECONDS)

    def close(self) -> None:
        """Go away for good: also wait for a connection accepted as the server went away to end."""
        self.go_away()
        with self.lock:
            handlers = list(self.open.values())
        for handler in handlers:
            handler.join(JOIN_SECONDS)


class HttpRig:
    """A local provider over HTTP: ``TransportRig``'s controls around a subclass's checks and answers."""

    channel = ""
    transport = ""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self.settings: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.seen: list[Seen] = []  # every request, in order
        self.delayed = threading.Event()  # set when a send request starts waiting out ``slow_down``
        self._accepted: list[str] = []
        self._throttle = 0
        self._retry_after: float | None = None
        self._refused: dict[str, Any] = {}
        self._delay = 0.0
        self.server = RigServer(self.handle)

    # What a provider rig says (subclasses).
    def problem(self, seen: Seen) -> Answer | None:
        """The provider's answer to a request it refuses as malformed or unauthorised, else None."""
        raise NotImplementedError

    def send_address(self, seen: Seen) -> str | None:
        """The address a send request is for; None for any other request (answered by ``other``)."""
        raise NotImplementedError

    def other(self, seen: Seen) -> Answer:
        """The answer to a valid request that sends nothing (an account fetch, a HEAD)."""
        raise NotImplementedError

    def throttled(self, retry_after: float | None) -> Answer:
        """The provider's throttling answer."""
        raise NotImplementedError

    def refused(self, seen: Seen, address: str, how: Any) -> Answer:
        """The provider's refusal of ``address`` for good."""
        raise NotImplementedError

    def sent(self, seen: Seen, address: str) -> Answer:
        """The provider's answer to a message it accepted."""
        raise NotImplementedError

    # TransportRig.
    def accepted(self) -> list[str]:
        """Addresses accepted, in order, duplicates kept."""
        with self.lock:
            return list(self._accepted)

    def throttle_next(self, count: int, retry_after: float | None = None) -> None:
        """Answer the next ``count`` send requests with the provider's throttling answer."""
        with self.lock:
            self._throttle, self._retry_after = count, retry_after

    def refuse_address(self, address: str, how: Any = None) -> None:
        """Refuse every message to ``address`` for good (``how``: the provider's kind of refusal)."""
        with self.lock:
            self._refused[address] = how

    def slow_down(self, seconds: float) -> None:
        """Take ``seconds`` before answering each send request from now on."""
        with self.lock:
            self._delay = seconds

    def go_away(self) -> None:
        """Stop answering: connections are refused, open ones dropped."""
        self.server.go_away()

    def come_back(self) -> None:
        """Answer again on the same port, remembering what was accepted."""
        self.server.come_back()

    def close(self) -> None:
        """Stop the server and every connection it accepted (the rig's end)."""
        self.server.close()

    # The server's side.
    def sends(self) -> list[Seen]:
        """The send requests seen, in order (throttled and refused ones included)."""
        with self.lock:
            seen = list(self.seen)
        return [request for request in seen if self.problem(request) is None and self.send_address(request)]

    def handle(self, seen: Seen, gone: threading.Event) -> Answer | None:
        """Check and answer one request as the provider does; None drops the connection unanswered."""
        with self.lock:
            self.seen.append(seen)
        if (problem := self.problem(seen)) is not None:
            return problem
        if (address := self.send_address(seen)) is None:
            return self.other(seen)
        with self.lock:
            delay = self._delay
        if delay > 0:
            self.delayed.set()
            if gone.wait(delay):
                return None
        with self.lock:
            if self._throttle > 0:
                self._throttle -= 1
                return self.throttled(self._retry_after)
            if address in self._refused:
                return self.refused(seen, address, self._refused[address])
            self._accepted.append(address)
        return self.sent(seen, address)


def retry_after_header(retry_after: float | None) -> dict[str, str]:
    """A ``Retry-After`` header in whole seconds (rounded up), or none."""
    return {} if retry_after is None else {"Retry-After": str(math.ceil(retry_after))}
