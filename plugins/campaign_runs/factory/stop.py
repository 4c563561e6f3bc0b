"""A cheap, time-based stop check: asks the run's state at most every ``interval`` seconds, also while sleeping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

CHECK_INTERVAL = 0.25
RUNNING = "running"


class StopSignal:
    """Whether the run was stopped, asking ``run_state`` at most once per ``interval`` seconds of ``clock``."""

    def __init__(
        self,
        run_state: Callable[[], str],
        *,
        interval: float = CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.run_state = run_state
        self.interval = interval
        self.clock = clock
        self._sleep = sleep
        self.state: str | None = None
        self.checks = 0
        self._checked_at: float | None = None

    def stopped(self) -> bool:
        """True once the run is seen in a state other than ``running``; asks only when the last answer is stale."""
        if self.state is not None:
            return True
        if self._checked_at is not None and self.clock() - self._checked_at < self.interval:
            return False
        self._checked_at = self.clock()
        self.checks += 1
        state = self.run_state()
        if state != RUNNING:
            self.state = state
            return True
        return False

    def sleep(self, seconds: float) -> bool:
        """Sleep ``seconds`` in slices that end when the next check is due; True as soon as a stop is seen."""
        deadline = self.clock() + max(seconds, 0.0)
        while not self.stopped():
            now = self.clock()
            if now >= deadline:
                return False
            next_check = (self._checked_at if self._checked_at is not None else now) + self.interval
            self._sleep(max(min(deadline, next_check) - now, 0.0))
        return True


class StopCheck(Protocol):
    """What a sender needs of a stop signal: whether the run stopped, and a wait that a stop cuts short."""

    state: str | None

    def stopped(self) -> bool:
        """True once the run is seen stopped."""
        ...

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; True as soon as a stop is seen."""
        ...


class SharedStop:
    """A stop seen by the task's main thread (which asks the run's state), handed to its sender threads.

    Only the main thread talks to the Task SDK; sender threads read a flag, and their rate-limit waits
    end the moment it is raised.
    """

    def __init__(self) -> None:
        self.state: str | None = None
        self._event = threading.Event()

    def raise_stop(self, state: str) -> None:
        """Tell every sender thread to end its batch before its next message."""
        if self.state is None:
            self.state = state
        self._event.set()

    def stopped(self) -> bool:
        """True once raised."""
        return self._event.is_set()

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` or until raised; True when raised."""
        return self._event.wait(seconds) if seconds > 0 else self._event.is_set()
