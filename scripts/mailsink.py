"""A local SMTP sink that stores every received email as an ``.eml`` file."""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiosmtpd.controller import Controller

if TYPE_CHECKING:
    from collections.abc import Callable
    from email.message import EmailMessage
    from pathlib import Path

    from aiosmtpd.smtp import SMTP, Envelope, Session


class EmlWriter:
    """aiosmtpd handler: write each accepted message to ``<directory>/<timestamp>-<n>.eml``."""

    def __init__(self, directory: Path, on_message: Callable[[Path, EmailMessage], None] | None = None) -> None:
        self.directory = directory
        self.on_message = on_message
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def _next_path(self) -> Path:
        """A new file name that sorts in arrival order."""
        with self._lock:
            number = next(self._counter)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        return self.directory / f"{stamp}-{os.getpid()}-{number:05d}.eml"

    def save(self, content: bytes) -> Path:
        """Write one raw message atomically (temporary name, then rename) and return its path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._next_path()
        partial = path.with_suffix(".eml.part")
        partial.write_bytes(content)
        partial.replace(path)
        return path

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Store the message, tell the callback, accept it."""
        content = envelope.original_content or b""
        path = self.save(content)
        if self.on_message is not None:
            message = email.message_from_bytes(content, policy=email.policy.default)
            self.on_message(path, message)
        return "250 Message accepted for delivery"


class MailSink:
    """An SMTP server on ``host:port`` in a background thread, saving mail into ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8025,
        on_message: Callable[[Path, EmailMessage], None] | None = None,
    ) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self.handler = EmlWriter(directory, on_message)
        self._controller: Controller | None = None

    def start(self) -> None:
        """Bind the port and start serving (raises if the port is taken)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        controller = Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            server_hostname="campaign-runs-mailsink",
            ready_timeout=10.0,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Stop serving; safe to call twice."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailSink:
        """Start on entering a ``with`` block."""
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        """Stop on leaving a ``with`` block."""
        self.stop()


def describe(path: Path, message: EmailMessage) -> str:
    """One line about a received email: time, sender, recipients, subject, file."""
    when = datetime.now().strftime("%H:%M:%S")
    return (
        f"mail {when}: {message.get('From', '?')} -> {message.get('To', '?')}: "
        f"{message.get('Subject', '(no subject)')}  [{path.name}]"
    )
