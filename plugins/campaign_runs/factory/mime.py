"""Email bytes from a template rendered once (constant headers pre-encoded), and one SMTP transaction for them.

``email.message.EmailMessage`` re-parses and re-folds every header through its policy for every message, which
costs more than the SMTP exchange itself; a campaign sends the same message shape thousands of times.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import os
import re
import secrets
import smtplib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import formataddr, formatdate
from string import Template
from typing import TYPE_CHECKING, Any

from campaign_runs.factory.addresses import control_character

if TYPE_CHECKING:
    from campaign_runs.factory.audience import Recipient

CRLF = "\r\n"
ENCODED_WORD_BYTES = 45  # 45 bytes -> 60 base64 characters: an encoded-word stays under 75 characters
MAX_LINE = 998
ONE_CLICK = "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
PLAIN_ADDRESS = re.compile(r"[^<>\s\"(),;:\\\[\]@]+@[^<>\s\"(),;:\\\[\]@]+")  # always fullmatch


def _one_line(value: str) -> str:
    """A header value on one line (a template value must not start a new header)."""
    return " ".join(value.splitlines()).strip() if ("\n" in value or "\r" in value) else value


def date_header(now: float) -> str:
    """An RFC 5322 ``Date`` value in UTC (``Mon, 07 Dec 2026 17:25:44 +0000``), of ``now`` (seconds since the epoch)."""
    return formatdate(now).replace("-0000", "+0000")


def header_value(value: str) -> str:
    """``value`` as written in a header: as is when ASCII, else RFC 2047 UTF-8 encoded-words folded over lines."""
    value = _one_line(value)
    if value.isascii():
        return value
    words: list[str] = []
    chunk = ""
    for char in value:
        if len((chunk + char).encode()) > ENCODED_WORD_BYTES:
            words.append(chunk)
            chunk = ""
        chunk += char
    words.append(chunk)
    return f"{CRLF} ".join(f"=?utf-8?b?{base64.b64encode(word.encode()).decode()}?=" for word in words)


def body_part(text: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, encoded body with CRLF line ends) of a text body."""
    if not text.endswith("\n"):
        text += "\n"
    lines = text.splitlines()
    if text.isascii() and all(len(line) <= MAX_LINE for line in lines):
        return "7bit", (CRLF.join(lines) + CRLF).encode("ascii")
    encoded = binascii.b2a_qp("\n".join(lines).encode(), istext=True) + b"\n"
    return "quoted-printable", encoded.replace(b"\n", b"\r\n")


@dataclass(frozen=True)
class Part:
    """A template that is rendered once when it has no ``$`` placeholder."""

    template: Template
    constant: str | None

    @classmethod
    def of(cls, text: str) -> Part:
        """Compile ``text``; pre-render it when it names no placeholder."""
        template = Template(text)
        return cls(template, None if template.get_identifiers() else template.safe_substitute({}))

    def render(self, values: dict[str, Any]) -> str:
        """Fill ``$name`` / ``${name}`` placeholders; unknown placeholders stay as written."""
        return self.constant if self.constant is not None else self.template.safe_substitute(values)


class MessageTemplate:
    """One campaign email, compiled once: ``render`` gives the bytes of one recipient's message."""

    def __init__(
        self,
        *,
        mail_from: str,
        from_name: str,
        reply_to: str,
        subject: str,
        body: str,
        headers: dict[str, str],
        one_click: bool = False,
    ) -> None:
        constant = {"From address": mail_from, "From name": from_name, "Reply-To": reply_to, **headers}
        constant |= {f"Header name {name!r}": name for name in headers}
        for label, value in constant.items():
            if (char := control_character(value)) is not None:
                raise ValueError(f"{label} contains the control character U+{ord(char):04X}: a header is one line")
        self.subject = Part.of(subject)
        self.body = Part.of(body)
        self._constant_body = body_part(self.body.constant) if self.body.constant is not None else None
        domain = mail_from.rpartition("@")[2] or "localhost"
        self._ids = itertools.count()
        self._id_prefix = f"{time.time_ns()}.{os.getpid()}.{secrets.token_hex(4)}"
        self._id_domain = domain
        self.clock: Callable[[], float] = time.time  # the time a message is rendered at (its Date)
        self._date: tuple[int, str] = (-1, "")  # (second, its Date line): one formatting a second, not a message
        lines = [f"From: {formataddr((from_name, mail_from)) if from_name else mail_from}"]
        if reply_to:
            lines.append(f"Reply-To: {header_value(reply_to)}")
        lines += [f"{name}: {header_value(value)}" for name, value in headers.items()]
        if one_click:  # RFC 8058: every message then carries an https link in List-Unsubscribe
            lines.append(ONE_CLICK)
        lines += ["MIME-Version: 1.0", 'Content-Type: text/plain; charset="utf-8"']
        self._head = CRLF.join(lines) + CRLF

    def message_id(self) -> str:
        """A Message-ID unique to this process and template (a counter after a random, time-stamped prefix)."""
        return f"<{self._id_prefix}.{next(self._ids)}@{self._id_domain}>"

    def date(self) -> str:
        """The ``Date`` header line of a message rendered now (RFC 5322 asks for one in every message)."""
        second = int(self.clock())
        if self._date[0] != second:
            self._date = (second, f"Date: {date_header(second)}{CRLF}")
        return self._date[1]

    def render(self, to: str, values: dict[str, Any], extra: dict[str, str], unsubscribe: Sequence[str] = ()) -> bytes:
        """The whole message for one recipient, CRLF line ends; ``unsubscribe``: the List-Unsubscribe URIs."""
        encoding, body = self._constant_body or body_part(self.body.render(values))
        varying = "".join(f"{name}: {header_value(value)}{CRLF}" for name, value in extra.items())
        if unsubscribe:
            varying += list_unsubscribe(unsubscribe)
        head = (
            f"{self._head}To: {header_value(to)}{CRLF}Subject: {header_value(self.subject.render(values))}{CRLF}"
            f"{self.date()}Message-ID: {self.message_id()}{CRLF}{varying}"
            f"Content-Transfer-Encoding: {encoding}{CRLF}{CRLF}"
        )
        return head.encode("utf-8") + body


def list_unsubscribe(uris: Sequence[str]) -> str:
    """The ``List-Unsubscribe`` header line of ``uris``, folded between them when one line would be too long."""
    parts = [f"<{_one_line(uri)}>" for uri in uris]
    line = f"List-Unsubscribe: {', '.join(parts)}{CRLF}"
    return line if len(line) <= MAX_LINE + len(CRLF) else f"List-Unsubscribe: {f',{CRLF} '.join(parts)}{CRLF}"


def smtp_path(address: str) -> str:
    """``<address>`` for MAIL FROM / RCPT TO; plain addresses skip ``smtplib.quoteaddr``'s full parse."""
    return f"<{address}>" if PLAIN_ADDRESS.fullmatch(address) else smtplib.quoteaddr(address)


def stage(client: smtplib.SMTP, sender: str, recipient: Recipient, build: Callable[[Recipient], bytes]) -> bytes:
    """``MAIL`` and ``RCPT`` for one recipient, one command at a time (no pipelining); the message to send.

    Nothing leaves: only ``deliver`` (``DATA``) hands the message over. The message is built while the server
    answers ``RCPT``. A refusal resets the transaction (or closes on 421) and raises as ``sendmail`` would.
    """
    client.putcmd("mail", f"FROM:{smtp_path(sender)}")
    code, reply = client.getreply()
    if code != 250:
        _reset(client, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    client.putcmd("rcpt", f"TO:{smtp_path(recipient.email)}")
    message = build(recipient)
    code, reply = client.getreply()
    if code not in (250, 251):
        _reset(client, code)
        raise smtplib.SMTPRecipientsRefused({recipient.email: (code, reply)})
    return message


def deliver(client: smtplib.SMTP, message: bytes) -> None:
    """``DATA``: the message leaves; a refusal resets the transaction and raises ``SMTPDataError``."""
    code, reply = client.data(message)
    if code != 250:
        _reset(client, code)
        raise smtplib.SMTPDataError(code, reply)


def _reset(client: smtplib.SMTP, code: int) -> None:
    """After a refusal: RSET, or close when the server is going away (421), as ``sendmail`` does."""
    if code == 421:
        client.close()
    else:
        client.rset()
