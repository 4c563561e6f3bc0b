"""The channel dispatch loop: batches, the pending/sent ledger, live progress and a stop seen within 0.25 s."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from campaign_factory.channels import BatchOutcome, ChannelAdapter, Gate
from campaign_factory.stop import StopSignal

if TYPE_CHECKING:
    from campaign_factory.audience import AudiencePlan, Recipient
    from campaign_factory.ledger import DeliveryLedger

log = logging.getLogger(__name__)
PROGRESS_KEY = "campaign_progress"


@dataclass
class Progress:
    """Live progress of one channel task, as published in XCom ``campaign_progress``."""

    channel: str
    total: int
    sent: int = 0
    failed: int = 0
    in_doubt: int = 0

    def as_xcom(self) -> dict[str, Any]:
        """The contract the plugin reads (total, sent, failed) plus ``in_doubt``."""
        return asdict(self)


@dataclass(frozen=True)
class DispatchResult:
    """How a channel task ended."""

    channel: str
    total: int
    sent: int
    failed: int
    in_doubt: int
    already_reached: int
    batches: int
    stopped: bool
    stop_state: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the task's return value."""
        return asdict(self)


class LedgerGate(Gate):
    """Claims each recipient in the ledger before its message leaves and confirms it with the next claim.

    At any moment at most one recipient of the connection is ``pending`` without a known outcome:
    the one whose message is leaving, or the last one accepted, until the next claim or the batch's end.
    """

    def __init__(self, ledger: DeliveryLedger, stop: StopSignal, run_id: str) -> None:
        self.ledger = ledger
        self.stop = stop
        self.run_id = run_id
        self.in_flight: Recipient | None = None
        self.confirm: list[str] = []
        self.release: list[str] = []

    def pause(self, seconds: float) -> bool:
        """Sleep in slices, checking the run's state every ``stop.interval`` seconds."""
        return self.stop.sleep(seconds)

    def claim(self, recipient: Recipient) -> bool:
        """Settle the previous message and write ``recipient`` pending, in one committed transaction."""
        claimed = self.ledger.claim(recipient, self.run_id, confirm=self.confirm, release=self.release)
        self.confirm, self.release = [], []
        self.in_flight = recipient if claimed else None
        return claimed

    def settle(self, recipient: Recipient, delivered: bool) -> None:
        """Remember the outcome; it is committed with the next claim or when the batch ends."""
        (self.confirm if delivered else self.release).append(recipient.id)
        self.in_flight = None

    def flush(self) -> None:
        """Commit the outcomes not yet written."""
        self.ledger.settle(self.confirm, self.release)
        self.confirm, self.release = [], []


class Dispatcher:
    """Sends one channel of one run, batch by batch (one connection each), message by message in the ledger."""

    def __init__(
        self,
        *,
        plan: AudiencePlan,
        adapter: ChannelAdapter,
        ledger: DeliveryLedger,
        batch_size: int,
        run_state: Callable[[], str],
        publish: Callable[[dict[str, Any]], None],
        run_id: str,
        stop: StopSignal | None = None,
    ) -> None:
        self.plan = plan
        self.adapter = adapter
        self.ledger = ledger
        self.batch_size = batch_size
        self.stop = stop or StopSignal(run_state)
        self.publish = publish
        self.run_id = run_id
        self.channel = adapter.context.channel

    def run(self) -> DispatchResult:
        """Send to every recipient with no ledger row in this slot; stop within one check when the run stops."""
        counts = self.ledger.counts(self.plan.size)
        already = counts.sent
        progress = Progress(
            channel=self.channel, total=self.plan.size - already - counts.in_doubt, in_doubt=counts.in_doubt
        )
        if counts.in_doubt:
            log.warning(
                "%s: %d recipients in doubt from an earlier run are not sent again", self.channel, counts.in_doubt
            )
        self.publish(progress.as_xcom())
        batches = 0
        gate = LedgerGate(self.ledger, self.stop, self.run_id)
        for batch in self.plan.batches(self.batch_size):
            if self.stop.stopped():
                return self._stopped(progress, already, batches)
            reached = self.ledger.already_reached([recipient.id for recipient in batch])
            todo = [recipient for recipient in batch if recipient.id not in reached]
            if not todo:
                continue
            outcome = BatchOutcome()
            try:
                self.adapter.send_batch(todo, outcome, gate)
            finally:
                gate.flush()
                progress.sent += len(outcome.delivered)
                progress.failed += len(outcome.failed)
                if gate.in_flight is not None:  # the send raised: that message may or may not have left
                    progress.in_doubt += 1
                self.publish(progress.as_xcom())
            batches += 1
            if outcome.stopped:
                return self._stopped(progress, already, batches)
        return self._result(progress, already, batches, stopped=False, state=None)

    def _stopped(self, progress: Progress, already: int, batches: int) -> DispatchResult:
        log.warning(
            "Run %s is %s: %s stops after %d batches (%d sent)",
            self.run_id, self.stop.state, self.channel, batches, progress.sent,
        )  # fmt: skip
        self.publish(progress.as_xcom())
        return self._result(progress, already, batches, stopped=True, state=self.stop.state)

    def _result(
        self, progress: Progress, already: int, batches: int, *, stopped: bool, state: str | None
    ) -> DispatchResult:
        return DispatchResult(
            channel=self.channel,
            total=progress.total,
            sent=progress.sent,
            failed=progress.failed,
            in_doubt=progress.in_doubt,
            already_reached=already,
            batches=batches,
            stopped=stopped,
            stop_state=state,
        )
