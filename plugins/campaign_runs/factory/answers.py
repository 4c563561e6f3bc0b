"""How a transport reports a provider's answer: sent (True), refused for good, refused for now, or unknown (raise)."""

from __future__ import annotations

import datetime as dt
import email.utils

MAX_ATTEMPTS = 6  # tries of one message refused for now (throttled, 429, 5xx, no connection) before giving up
BACKOFF_BASE = 0.5  # seconds before the second try; doubled for each later one
BACKOFF_MAX = 30.0
RETRY_AFTER_MAX = 300.0  # a longer Retry-After is waited this long, then the message is tried again
REASON_MAX = 300  # characters of a provider's reason kept in logs, progress and errors


def short(reason: str) -> str:
    """``reason`` on one line, cut to ``REASON_MAX`` characters."""
    text = " ".join(str(reason).split())
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 3] + "..."


class Refused(Exception):
    """The provider refused this message for good (4xx, invalid number, unregistered token): nothing was sent.

    ``bad_address``: the address itself is refused (invalid number, unregistered token, a 5xx SMTP reply to
    RCPT TO); it goes on the suppression list as bounced.
    """

    def __init__(self, reason: str, *, bad_address: bool = False) -> None:
        self.reason = short(reason)
        self.bad_address = bad_address
        super().__init__(self.reason)


class Transient(Exception):
    """The provider did not take this message for now (throttled, 429, 5xx, unreachable): nothing was sent.

    Only raise it when the message certainly did not leave (an answer said so, or no connection was made):
    a timeout after the request was written is an unknown outcome, raised as any other exception.
    """

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        self.reason = short(reason)
        self.retry_after = retry_after
        super().__init__(self.reason)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before try ``attempt + 2``: the provider's ``Retry-After`` if it gave one, else backoff."""
        if self.retry_after is not None and self.retry_after >= 0:
            return min(self.retry_after, RETRY_AFTER_MAX)
        return float(min(BACKOFF_BASE * 2.0**attempt, BACKOFF_MAX))


class NotAuthorized(Exception):
    """The provider refused the Connection's credentials (HTTP 401): every message would be refused alike."""

    def __init__(self, reason: str) -> None:
        self.reason = short(reason)
        super().__init__(self.reason)


class ChannelUnavailable(RuntimeError):
    """A message was refused for now ``MAX_ATTEMPTS`` times: the channel stops (nothing was sent; restart later)."""


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """An HTTP ``Retry-After`` header (seconds or an HTTP date) in seconds; None when absent or unreadable."""
    if value is None or not (text := value.strip()):
        return None
    if text.isdigit():
        return float(min(int(text[:7]), int(RETRY_AFTER_MAX)))
    try:
        moment = email.utils.parsedate_to_datetime(text[:64])
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return max(0.0, (moment - (now or dt.datetime.now(dt.UTC))).total_seconds())


def http_answer(status: int, reason: str, retry_after: str | None = None) -> None:
    """What an HTTP status means for one message: 408, 429, 5xx ``Transient``; 401 ``NotAuthorized``; 4xx ``Refused``.

    A 403 stays about the message: providers answer it for one recipient too (FCM's ``SENDER_ID_MISMATCH``).
    """
    if 200 <= status < 300:
        return
    if status == 401:
        raise NotAuthorized(f"HTTP 401: {reason}")
    if status in (408, 429) or status >= 500:
        raise Transient(f"HTTP {status}: {reason}", retry_after=retry_after_seconds(retry_after))
    raise Refused(f"HTTP {status}: {reason}")
