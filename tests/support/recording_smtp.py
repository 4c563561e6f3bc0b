"""An SMTP server (aiosmtpd) that refuses chosen recipients at RCPT and can act after the Nth message it accepts."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.airflow_env import free_port


@dataclass
class RecordingSmtp:
    """Refuses the addresses of ``refuse`` at RCPT with their reply; records every RCPT and every message accepted."""

    refuse: dict[str, str] = field(default_factory=dict)  # lower-case address -> SMTP reply ("550 ...", "451 ...")
    attempts: list[str] = field(default_factory=list)  # every RCPT TO, in order
    delivered: list[tuple[str, str]] = field(default_factory=list)  # (X-Campaign-Run-Id, To) of each message
    after_message: Callable[[int], None] | None = None  # called with the count of messages accepted so far
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        """Refuse or accept one recipient."""
        with self.lock:
            self.attempts.append(address)
        if (reply := self.refuse.get(address.lower())) is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Record the message, then call ``after_message`` before answering (the sender waits for the answer)."""
        message = message_from_bytes(envelope.original_content or envelope.content)
        with self.lock:
            self.delivered.append((str(message["X-Campaign-Run-Id"]).strip(), str(message["To"])))
            count = len(self.delivered)
        if self.after_message is not None:
            self.after_message(count)
        return "250 Message accepted"

    def sent_to(self, run_id: str) -> list[str]:
        """Recipients of one run's messages, in order."""
        with self.lock:
            return [to for run, to in self.delivered if run == run_id]


@contextmanager
def recording_smtp() -> Iterator[tuple[RecordingSmtp, int]]:
    """A running ``RecordingSmtp`` on a free loopback port: (handler, port)."""
    handler = RecordingSmtp()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()
