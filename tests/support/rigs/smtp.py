"""The email channel's SMTP transport against a local aiosmtpd server (``campaign_smtp``)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.support.airflow_env import free_port

CONN_ID = "rig_smtp"
SETTINGS = {"subject": "Hello $first_name", "body": "Hi $first_name", "from_name": "", "reply_to": ""}


@dataclass
class _Handler:
    """Records accepted recipients; throttles with 451 at MAIL FROM; refuses chosen addresses with 550 at RCPT."""

    received: list[str] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)
    throttled: int = 0
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        """Accept the sender unless throttling (a server-wide 4xx: the client tries again later)."""
        with self.lock:
            if self.throttled > 0:
                self.throttled -= 1
                return "451 4.7.1 Too many messages, slow down"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        """Refuse a chosen address for good, accept any other."""
        if address.lower() in self.refused:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Take ``delay`` seconds, then record the message's recipient."""
        if self.delay:
            await asyncio.sleep(self.delay)
        message = message_from_bytes(envelope.original_content or envelope.content)
        with self.lock:
            self.received.append(str(message["To"]))
        return "250 Message accepted"


class SmtpRig:
    """A running SMTP server for the email channel's ``smtp`` transport."""

    channel = "email"
    transport = "smtp"
    conn_id = CONN_ID

    def __init__(self, port: int) -> None:
        self.port = port
        self.settings: dict[str, Any] = dict(SETTINGS)
        self.handler = _Handler()
        self.controller: Controller | None = None

    def start(self) -> None:
        """Listen on the rig's port."""
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        """Stop listening."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def accepted(self) -> list[str]:
        """Addresses of the messages accepted, in order."""
        with self.handler.lock:
            return list(self.handler.received)

    def throttle_next(self, count: int, retry_after: float | None = None) -> None:
        """Answer the next ``count`` MAIL FROM with 451 (SMTP has no Retry-After)."""
        with self.handler.lock:
            self.handler.throttled = count

    def refuse_address(self, address: str) -> None:
        """Answer 550 to RCPT TO ``address``."""
        self.handler.refused.add(address.lower())

    def slow_down(self, seconds: float) -> None:
        """Wait ``seconds`` before answering each DATA."""
        self.handler.delay = seconds

    def go_away(self) -> None:
        """Close the listening socket and every session."""
        self.stop()

    def come_back(self) -> None:
        """Listen again on the same port."""
        self.start()


@dataclass
class Remote:
    """What a process sending to a rig that another process runs needs to know of it."""

    channel: str
    transport: str
    conn_id: str
    settings: dict[str, Any]


def remote() -> Remote:
    """This rig as seen from another process (its Connection is in the environment)."""
    return Remote(SmtpRig.channel, SmtpRig.transport, CONN_ID, dict(SETTINGS))


@contextmanager
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpRig]:
    """An ``SmtpRig`` on a free port with Connection ``rig_smtp`` pointing at it."""
    server = SmtpRig(free_port())
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": server.port,
                "extra": {"timeout": 10, "starttls": False, "ssl": False},
            }
        ),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
