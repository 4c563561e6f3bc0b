"""The guard: a channel stops sending when its batches fail over the campaign's threshold, and asks for a Stop.

A campaign declares it per channel (``guard: {max_failed_percent: 5, max_failing_batches_in_row: 3}``).
After each batch the dispatcher calls ``tripped``. When a batch crosses the threshold the channel stops at
once (every sender thread), publishes XCom ``campaign_guard`` (channel, threshold, numbers, the note), and
holds the run running while the Campaign Runs plugin's housekeeper stops it the plugin's way (history, work
list, email to the campaign's owner). A task process cannot write the metadata DB, so the Stop is the
plugin's to make. If no Stop comes within ``HOLD_SECONDS`` the task fails with the note.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from campaign_runs.factory.keys import GUARD_KEY
from campaign_runs.factory.stop import StopSignal

if TYPE_CHECKING:
    from campaign_runs.factory.channels import BatchOutcome, Gate

log = logging.getLogger(__name__)

SETTING = "guard"  # the channel field in the YAML, kept in the channel's settings
FIELDS = ("max_failed_percent", "max_failing_batches_in_row")
GUARD_STATE = "guard"
HOLD_SECONDS = 120.0  # how long a tripped channel keeps its run running for the plugin's Stop


@dataclass(frozen=True)
class GuardSpec:
    """A channel's failure threshold: a batch failing over ``max_failed_percent``, or N failing batches in a row."""

    max_failed_percent: float | None = None
    max_failing_batches_in_row: int | None = None

    @classmethod
    def parse(cls, value: Any) -> GuardSpec:
        """Validate the YAML mapping; ``ValueError("<field>: <why>")`` names the field that is wrong."""
        if not isinstance(value, Mapping):
            raise ValueError(f": must be a mapping with {' and/or '.join(FIELDS)}, got {value!r}")
        unknown = sorted(str(key) for key in value if key not in FIELDS)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown field (allowed: {', '.join(FIELDS)})")
        if all(value.get(key) is None for key in FIELDS):
            raise ValueError(f": declares no threshold (set {' and/or '.join(FIELDS)})")
        percent = value.get("max_failed_percent")
        if percent is not None and (
            isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 < percent <= 100
        ):
            raise ValueError(f"max_failed_percent: must be a number > 0 and <= 100, got {percent!r}")
        in_row = value.get("max_failing_batches_in_row")
        if in_row is not None and (isinstance(in_row, bool) or not isinstance(in_row, int) or in_row < 1):
            raise ValueError(f"max_failing_batches_in_row: must be a whole number > 0, got {in_row!r}")
        return cls(float(percent) if percent is not None else None, in_row)

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> GuardSpec | None:
        """The guard kept in a channel's settings (as ``as_setting`` wrote it), None when it has none."""
        value = settings.get(SETTING)
        return cls(**value) if isinstance(value, Mapping) else None

    def as_setting(self) -> dict[str, Any]:
        """The declared thresholds only, as a plain mapping (what a channel's settings keep)."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    def describe(self) -> str:
        """The threshold in words."""
        parts = []
        if self.max_failed_percent is not None:
            parts.append(f"more than {self.max_failed_percent:g}% of a batch failed")
        if self.max_failing_batches_in_row is not None:
            parts.append(f"{self.max_failing_batches_in_row} batches in a row with failures")
        return " or ".join(parts)


@dataclass(frozen=True)
class Trip:
    """A crossed threshold: which rule, the last batch's numbers and the channel's so far, and the note."""

    channel: str
    rule: str
    threshold: dict[str, Any]
    batch_failed: int
    batch_attempted: int
    failing_batches_in_row: int
    batches: int
    sent: int
    failed: int
    note: str
    tripped_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())

    def as_xcom(self) -> dict[str, Any]:
        """The ``campaign_guard`` XCom the plugin reads."""
        return asdict(self)


def note_for(channel: str, rule: str, spec: GuardSpec, failed: int, attempted: int, in_row: int) -> str:
    """The automatic Stop note: the threshold and the numbers."""
    if rule == "max_failed_percent":
        percent = 100.0 * failed / attempted
        return (
            f"Guard: {channel} failed {failed} of {attempted} ({percent:.1f}%) in the last batch, "
            f"over {spec.max_failed_percent:g}%"
        )
    return (
        f"Guard: {channel} had failures in {in_row} batches in a row (last batch: {failed} of {attempted} failed), "
        f"the limit is {spec.max_failing_batches_in_row}"
    )


class ChannelGuard:
    """Counts one channel task's batches and says when they cross the guard; trips at most once."""

    def __init__(self, channel: str, spec: GuardSpec) -> None:
        self.channel = channel
        self.spec = spec
        self.in_row = 0
        self.batches = 0
        self.sent = 0
        self.failed = 0
        self.trip: Trip | None = None
        self.lock = threading.Lock()

    def observe(self, delivered: int, failed: int) -> Trip | None:
        """Count one batch; the ``Trip`` the first time the threshold is crossed, else None."""
        with self.lock:
            if self.trip is not None:
                return None
            attempted = delivered + failed
            self.batches += 1
            self.sent += delivered
            self.failed += failed
            self.in_row = self.in_row + 1 if failed else 0
            rule = self._crossed(failed, attempted)
            if rule is None:
                return None
            self.trip = Trip(
                channel=self.channel,
                rule=rule,
                threshold=self.spec.as_setting(),
                batch_failed=failed,
                batch_attempted=attempted,
                failing_batches_in_row=self.in_row,
                batches=self.batches,
                sent=self.sent,
                failed=self.failed,
                note=note_for(self.channel, rule, self.spec, failed, attempted, self.in_row),
            )
            return self.trip

    def _crossed(self, failed: int, attempted: int) -> str | None:
        spec = self.spec
        if spec.max_failed_percent is not None and attempted and 100.0 * failed > spec.max_failed_percent * attempted:
            return "max_failed_percent"
        if spec.max_failing_batches_in_row is not None and self.in_row >= spec.max_failing_batches_in_row:
            return "max_failing_batches_in_row"
        return None


def push_xcom(value: dict[str, Any]) -> None:
    """Publish the trip as XCom ``campaign_guard`` of the running task (the Task SDK's comms are thread-safe)."""
    from airflow.sdk import get_current_context

    get_current_context()["ti"].xcom_push(GUARD_KEY, value)


def fail_task(message: str) -> None:
    """End the task failed, without retry."""
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(message)


@dataclass
class Hooks:
    """What a trip does outside the guard's arithmetic; tests replace them."""

    push: Callable[[dict[str, Any]], None] = push_xcom
    hold_seconds: float = HOLD_SECONDS
    fail: Callable[[str], None] = fail_task


_guards: weakref.WeakKeyDictionary[Any, ChannelGuard | None] = weakref.WeakKeyDictionary()
_guards_lock = threading.Lock()
hooks = Hooks()


def _guard_of(dispatcher: Any) -> ChannelGuard | None:
    with _guards_lock:
        if dispatcher not in _guards:
            spec = GuardSpec.of(dispatcher.adapter.context.settings)
            _guards[dispatcher] = ChannelGuard(dispatcher.channel, spec) if spec is not None else None
        return _guards[dispatcher]


def tripped(dispatcher: Any, gate: Gate, outcome: BatchOutcome) -> bool:
    """The dispatcher's per-batch hook: True when the channel must stop because its guard tripped.

    On the trip: every sender of the task stops before its next message, XCom ``campaign_guard`` is
    published, and the run is held running until the plugin's Stop is seen (then True: the dispatcher ends
    as stopped) or ``hold_seconds`` pass (then the task fails with the note).
    """
    guard = _guard_of(dispatcher)
    if guard is None:
        return False
    trip = guard.observe(len(outcome.delivered), len(outcome.failed))
    if trip is None:
        return guard.trip is not None  # another sender thread tripped it: this one stops too
    raise_stop = getattr(getattr(gate, "stop", None), "raise_stop", None)
    if raise_stop is not None:  # sender threads: the others end their batch before their next message
        raise_stop(GUARD_STATE)
    log.error("%s; asking Campaign Runs to stop the run", trip.note)
    try:
        hooks.push(trip.as_xcom())
    except Exception:
        log.exception("Could not publish %s", GUARD_KEY)
        hooks.fail(f"{trip.note} (could not ask Campaign Runs to stop the run)")
    watch = StopSignal(dispatcher.stop.run_state)
    if not watch.sleep(hooks.hold_seconds):
        hooks.fail(f"{trip.note}; the run was not stopped by Campaign Runs within {hooks.hold_seconds:g}s")
    dispatcher.stop.state = watch.state or GUARD_STATE
    return True
