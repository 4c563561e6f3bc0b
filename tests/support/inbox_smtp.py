"""A real SMTP server (aiosmtpd) keeping every message it accepts, behind the Connection ``campaign_smtp``."""

from __future__ import annotations

import email.policy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.support.airflow_env import free_port
from tests.support.recording_smtp import RecordingSmtp


@dataclass
class Inbox(RecordingSmtp):
    """``RecordingSmtp`` that also keeps each message it accepted."""

    messages: list[EmailMessage] = field(default_factory=list)
    port: int = 0  # where it listens

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message, then record it as ``RecordingSmtp`` does."""
        raw = envelope.original_content or envelope.content
        with self.lock:
            self.messages.append(message_from_bytes(raw, policy=email.policy.default))  # type: ignore[arg-type]
        return await super().handle_DATA(server, session, envelope)

    def received(self) -> list[tuple[str, str]]:
        """(To, Subject) of each message accepted, in order."""
        with self.lock:
            return [(str(m["To"]), str(m["Subject"])) for m in self.messages]


@contextmanager
def inbox_smtp(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> Iterator[Inbox]:
    """A running ``Inbox`` on a free loopback port, Connection ``campaign_smtp`` pointing at it (``extra`` added)."""
    port = free_port()
    handler = Inbox(port=port)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    connection = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "extra": {"mail_from": "shop@example.com", "starttls": False, **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_CAMPAIGN_SMTP", json.dumps(connection))
    try:
        yield handler
    finally:
        controller.stop()
