"""An SMTP sink (aiosmtpd) that can hold one chosen message unanswered, so a test can kill its sender mid-send."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.airflow_env import free_port


@dataclass
class Hold:
    """Hold the ``index``-th message (0-based) of run ``run_id``: ``delivered`` says if the server keeps it."""

    run_id: str
    index: int
    delivered: bool
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    recipient: str | None = None


@dataclass
class HoldingSmtpSink:
    """Keeps (run id, recipient id) of every message it accepts; may hold one message without replying."""

    received: list[tuple[str, str]] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)
    hold: Hold | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Record the message, unless it is the held one and the server is to lose it; hold it if chosen."""
        message = message_from_bytes(envelope.original_content or envelope.content)
        run_id = str(message["X-Campaign-Run-Id"]).strip()
        recipient = str(message["X-Campaign-Recipient"]).strip()
        with self.lock:
            index = self.seen[run_id]
            self.seen[run_id] += 1
        hold = self.hold
        if hold is None or hold.run_id != run_id or hold.index != index:
            self._record(run_id, recipient)
            return "250 OK"
        hold.recipient = recipient
        if hold.delivered:  # the relay has the message; only its "250" never reaches the sender
            self._record(run_id, recipient)
        hold.holding.set()
        while not hold.release.is_set():
            await asyncio.sleep(0.02)
        return "250 OK" if hold.delivered else "451 lost"

    def _record(self, run_id: str, recipient: str) -> None:
        with self.lock:
            self.received.append((run_id, recipient))

    def recipients(self, run_ids: set[str]) -> Counter[str]:
        """Messages received per recipient id, over the given runs."""
        with self.lock:
            return Counter(recipient for run_id, recipient in self.received if run_id in run_ids)

    def count(self, run_id: str) -> int:
        """Messages received from one run."""
        with self.lock:
            return sum(1 for run, _ in self.received if run == run_id)


@contextmanager
def holding_smtp() -> Iterator[tuple[HoldingSmtpSink, int]]:
    """A running ``HoldingSmtpSink`` on a free port: (sink, port)."""
    sink = HoldingSmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        if sink.hold is not None:
            sink.hold.release.set()
        controller.stop()
