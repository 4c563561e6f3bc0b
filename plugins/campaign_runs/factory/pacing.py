"""The rate limit of a channel: messages spaced evenly, shared by its connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Pacer:
    """Keeps a channel under its rate limit (messages per second; 0 means unlimited), shared by its connections.

    Messages are spaced at least ``1 / rate`` apart, from the later of the previous slot and now: time spent
    not sending (setup, a slow server) is never made up in a burst.
    """

    def __init__(self, rate_per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_second
        self.clock = clock
        self.started = clock()
        self.count = 0
        self.next_at = self.started
        self.lock = threading.Lock()

    def delay(self) -> float:
        """Seconds to wait before the next message may go out."""
        if self.rate <= 0:
            return 0.0
        return max(self.next_at - self.clock(), 0.0)

    def sent(self) -> None:
        """Count one message that went out."""
        self.reserve()

    def reserve(self) -> float:
        """Take the next slot (atomically, across threads); the seconds to wait for it."""
        with self.lock:
            self.count += 1
            if self.rate <= 0:
                return 0.0
            now = self.clock()
            at = max(self.next_at, now)
            self.next_at = at + 1 / self.rate
        return at - now

    def wait(self) -> None:
        """Sleep until the next message may go out, and count it."""
        if (delay := self.reserve()) > 0:
            time.sleep(delay)
