"""The channel dispatch loop: batches, the pending/sent ledger, live progress and a stop seen within 0.25 s."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from campaign_factory.audience import make_recipient
from campaign_factory.channels import BatchOutcome, ChannelAdapter, Gate
from campaign_factory.stop import StopSignal

if TYPE_CHECKING:
    from campaign_factory.audience import AudiencePlan, Recipient
    from campaign_factory.ledger import DeliveryLedger

log = logging.getLogger(__name__)
PROGRESS_KEY = "campaign_progress"
RESEND_IN_DOUBT_KEY = "campaign_resend_in_doubt"


def resend_requested(conf: dict[str, Any] | None) -> bool:
    """Whether a run's conf asks to send once more to the recipients in doubt (``campaign_resend_in_doubt``)."""
    value = (conf or {}).get(RESEND_IN_DOUBT_KEY, False)
    return value is True or str(value).strip().lower() in ("true", "1", "yes", "on")


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
        self.lost = 0  # recipients in doubt another run re-claimed first (resend only)

    def pause(self, seconds: float) -> bool:
        """Sleep in slices, checking the run's state every ``stop.interval`` seconds."""
        if seconds > 0:  # a rate-limit wait: confirm the last message first, so a kill while waiting doubts nobody
            self.flush()
        return self.stop.sleep(seconds)

    def claim(self, recipient: Recipient) -> bool:
        """Settle the previous message and write ``recipient`` pending, in one committed transaction."""
        claimed = self._claim(recipient)
        self.confirm, self.release = [], []
        self.in_flight = recipient if claimed else None
        return claimed

    def _claim(self, recipient: Recipient) -> bool:
        return self.ledger.claim(recipient, self.run_id, confirm=self.confirm, release=self.release)

    def settle(self, recipient: Recipient, delivered: bool) -> None:
        """Remember the outcome; it is committed with the next claim or when the batch ends."""
        (self.confirm if delivered else self.release).append(recipient.id)
        self.in_flight = None

    def flush(self) -> None:
        """Commit the outcomes not yet written."""
        self.ledger.settle(self.confirm, self.release)
        self.confirm, self.release = [], []


class ResendGate(LedgerGate):
    """Takes the pending rows of recipients in doubt over from the runs holding them: of racing runs, one sends each."""

    def __init__(self, ledger: DeliveryLedger, stop: StopSignal, run_id: str, holders: dict[str, str]) -> None:
        super().__init__(ledger, stop, run_id)
        self.holders = holders

    def _claim(self, recipient: Recipient) -> bool:
        won = self.ledger.reclaim(
            recipient, self.run_id, claimed_by=self.holders[recipient.id], confirm=self.confirm, release=self.release
        )
        self.lost += not won
        return won


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
        resend_in_doubt: bool = False,
    ) -> None:
        self.plan = plan
        self.adapter = adapter
        self.ledger = ledger
        self.batch_size = batch_size
        self.stop = stop or StopSignal(run_state)
        self.publish = publish
        self.run_id = run_id
        self.channel = adapter.context.channel
        self.resend_in_doubt = resend_in_doubt

    def run(self) -> DispatchResult:
        """Send to every recipient with no ledger row in this slot (and, if asked, once more to those in doubt)."""
        counts = self.ledger.counts(self.plan.size)
        already = counts.sent
        doubtful = self.ledger.doubtful(self.run_id, self.plan.size) if self.resend_in_doubt else []
        in_doubt = counts.in_doubt - len(doubtful)
        progress = Progress(channel=self.channel, total=self.plan.size - already - in_doubt, in_doubt=in_doubt)
        if doubtful:
            log.warning("%s: sending once more to %d recipients in doubt", self.channel, len(doubtful))
        if in_doubt:
            log.warning("%s: %d recipients in doubt from an earlier run are not sent again", self.channel, in_doubt)
        self.publish(progress.as_xcom())
        batches = 0
        for todo, gate in self._work(doubtful):
            if self.stop.stopped():
                return self._stopped(progress, already, batches)
            if not todo:
                continue
            outcome = self._send(todo, gate, progress)
            batches += 1
            if outcome.stopped:
                return self._stopped(progress, already, batches)
        return self._result(progress, already, batches, stopped=False, state=None)

    def _work(self, doubtful: list[tuple[int, str]]) -> Iterator[tuple[list[Recipient], LedgerGate]]:
        """The recipients in doubt to resend (re-claimed), then each batch's recipients with no ledger row yet."""
        resend = [(make_recipient(self.plan, position), holder) for position, holder in doubtful]
        gate: LedgerGate = ResendGate(self.ledger, self.stop, self.run_id, {r.id: holder for r, holder in resend})
        for start in range(0, len(resend), self.batch_size):
            yield [recipient for recipient, _ in resend[start : start + self.batch_size]], gate
        gate = LedgerGate(self.ledger, self.stop, self.run_id)
        for batch in self.plan.batches(self.batch_size):
            reached = self.ledger.already_reached([recipient.id for recipient in batch])
            yield [recipient for recipient in batch if recipient.id not in reached], gate

    def _send(self, todo: list[Recipient], gate: LedgerGate, progress: Progress) -> BatchOutcome:
        """One batch over one connection; progress is published even when the send raises."""
        outcome = BatchOutcome()
        lost = gate.lost
        try:
            self.adapter.send_batch(todo, outcome, gate)
        finally:
            gate.flush()
            progress.sent += len(outcome.delivered)
            progress.failed += len(outcome.failed)
            progress.total -= gate.lost - lost  # re-claimed by a racing run: theirs to send
            if gate.in_flight is not None:  # the send raised: that message may or may not have left
                progress.in_doubt += 1
            self.publish(progress.as_xcom())
        return outcome

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
