"""The channel dispatch loop: batches, the pending/sent ledger, live progress and a stop seen within 0.25 s."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from campaign_runs.factory import guard
from campaign_runs.factory.audience import WHOLE, Shard
from campaign_runs.factory.channels import REASONS_KEPT, BatchOutcome, ChannelAdapter
from campaign_runs.factory.gates import LedgerGate, ResendGate
from campaign_runs.factory.keys import RESEND_IN_DOUBT_KEY
from campaign_runs.factory.stop import SharedStop, StopSignal

if TYPE_CHECKING:
    from campaign_runs.factory.audience import Audience, Recipient
    from campaign_runs.factory.ledger import DeliveryLedger
    from campaign_runs.factory.suppression import SuppressionList

log = logging.getLogger(__name__)


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
    suppressed: int = 0  # on the suppression list when its message was due: not sent, not in ``total``
    skipped: dict[str, int] = field(default_factory=dict)  # rows of the snapshot this channel skips, by reason
    retried: int = 0  # tries the provider refused for now (throttled, 429, 5xx) and that were made again
    reasons: dict[str, int] = field(default_factory=dict)  # why messages failed, as the provider said

    def as_xcom(self) -> dict[str, Any]:
        """The contract the plugin reads (total, sent, failed) plus ``in_doubt``, ``suppressed`` and ``skipped``."""
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
    suppressed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    retried: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the task's return value."""
        return asdict(self)


class Publisher:
    """Publishes progress at most every ``interval`` seconds (0: every time it is asked), and on demand."""

    def __init__(self, publish: Callable[[dict[str, Any]], None], interval: float) -> None:
        self.publish = publish
        self.interval = interval
        self.at = time.monotonic()
        self.last: dict[str, Any] | None = None

    def now(self, progress: Progress | dict[str, Any]) -> None:
        """Publish ``progress``."""
        self.last = progress.as_xcom() if isinstance(progress, Progress) else progress
        self.publish(self.last)
        self.at = time.monotonic()

    def due(self, progress: Progress | dict[str, Any]) -> None:
        """Publish ``progress`` if the last publication is ``interval`` old."""
        if time.monotonic() - self.at >= self.interval:
            self.now(progress)

    def final(self, progress: Progress) -> None:
        """Publish ``progress`` unless it is what was published last."""
        if progress.as_xcom() != self.last:
            self.now(progress)


class Dispatcher:
    """Sends one channel (or one shard of it) of one run, batch by batch, message by message in the ledger.

    With ``connections`` > 1 (or ``background_checks``), that many sender threads take batches in turn, each
    over its own connection with its own at-most-one message in doubt; they share the pacer (one rate limit)
    and the ledger (SQLite: one connection under a lock; ``ledger_factory``: one each). Only the calling thread
    talks to Airflow: it asks the run's state every 0.25 s and raises the stop the threads check before each
    message.
    """

    def __init__(
        self,
        *,
        plan: Audience,
        adapter: ChannelAdapter,
        ledger: DeliveryLedger,
        batch_size: int,
        run_state: Callable[[], str],
        publish: Callable[[dict[str, Any]], None],
        run_id: str,
        stop: StopSignal | None = None,
        resend_in_doubt: bool = False,
        connections: int = 1,
        shard: Shard = WHOLE,
        progress_interval: float = 0.0,
        ledger_factory: Callable[[], DeliveryLedger] | None = None,
        background_checks: bool = False,
        suppressions: SuppressionList | None = None,
    ) -> None:
        self.plan = plan
        self.adapter = adapter
        self.ledger = ledger
        self.batch_size = batch_size
        self.stop = stop or StopSignal(run_state)
        self.publisher = Publisher(publish, progress_interval)
        self.run_id = run_id
        self.channel = adapter.context.channel
        self.resend_in_doubt = resend_in_doubt
        self.connections = max(1, connections)
        self.shard = shard
        self.ledger_factory = ledger_factory
        self.background_checks = background_checks
        self.lock = threading.Lock()
        self.batches = 0
        self.suppressed: Callable[[Recipient], bool] | None = None
        if suppressions is not None and (channel := adapter.suppression_channel) is not None:
            address = adapter.address
            self.suppressed = lambda recipient: suppressions.contains(channel, address(recipient))

    def run(self) -> DispatchResult:
        """Send to every recipient with no ledger row in this slot (and, if asked, once more to those in doubt)."""
        size = self.plan.size
        sharded: dict[str, Any] = {"shard": self.shard} if self.shard.count > 1 else {}
        counts = self.ledger.counts(size, **sharded)
        already = counts.sent
        doubtful = self.ledger.doubtful(self.run_id, size, **sharded) if self.resend_in_doubt else []
        in_doubt = counts.in_doubt - len(doubtful)
        skipped = self.plan.skipped(self.shard)
        total = self.shard.size(size) - sum(skipped.values()) - already - in_doubt
        progress = Progress(channel=self.channel, total=total, in_doubt=in_doubt, skipped=skipped)
        if doubtful:
            log.warning("%s: sending once more to %d recipients in doubt", self.channel, len(doubtful))
        if in_doubt:
            log.warning("%s: %d recipients in doubt from an earlier run are not sent again", self.channel, in_doubt)
        self.publisher.now(progress)
        if not self._resend(doubtful, progress):
            return self._stopped(progress, already)
        # Background checks: even one connection sends from a thread, so asking Airflow (run state, progress,
        # an Execution API round trip each) never holds a message back.
        threaded = self.connections > 1 or self.background_checks
        sending = self._parallel if threaded else self._sequential
        if not sending(progress):
            return self._stopped(progress, already)
        self.publisher.final(progress)
        return self._result(progress, already, stopped=False, state=None)

    def _resend(self, doubtful: list[tuple[int, str]], progress: Progress) -> bool:
        """Re-claim and send once more to the recipients in doubt, over one connection; False if stopped."""
        holders = dict(doubtful)
        resend = [(recipient, holders[recipient.position]) for recipient in self.plan.at([p for p, _ in doubtful])]
        holding = {r.id: holder for r, holder in resend}
        with closing(ResendGate(self.ledger, self.stop, self.run_id, holding, self.suppressed)) as gate:
            for start in range(0, len(resend), self.batch_size):
                if self.stop.stopped():
                    return False
                if self._send([recipient for recipient, _ in resend[start : start + self.batch_size]], gate, progress):
                    return False
        return True

    def _sequential(self, progress: Progress) -> bool:
        """Every batch over one connection in this thread; False if stopped."""
        with closing(LedgerGate(self.ledger, self.stop, self.run_id, suppressed=self.suppressed)) as gate:
            for batch in self.plan.batches(self.batch_size, self.shard):
                if self.stop.stopped():
                    return False
                if (todo := gate.unreached(batch)) and self._send(todo, gate, progress):
                    return False
        return True

    def _parallel(self, progress: Progress) -> bool:
        """Batches taken in turn by ``connections`` sender threads; False if stopped.

        Fewer recipients left than ``connections`` full batches: the batches are cut so that every connection
        gets a share (1,000 recipients in batches of 500 over four connections would keep two of them idle).
        """
        shared = SharedStop()
        share = max(1, -(-progress.total // self.connections))  # ceiling division
        source = self.plan.batches(min(self.batch_size, share), self.shard)
        errors: list[BaseException] = []
        senders = [
            threading.Thread(
                target=self._sender, args=(source, shared, progress, errors), name=f"{self.channel}-{n}", daemon=True
            )
            for n in range(self.connections)
        ]
        for sender in senders:
            sender.start()
        try:
            while any(sender.is_alive() for sender in senders):
                if shared.stopped():
                    time.sleep(0.05)
                elif self.stop.sleep(0.05):
                    shared.raise_stop(str(self.stop.state))
                with self.lock:
                    snapshot = progress.as_xcom()
                self.publisher.due(snapshot)
        finally:  # also when asking Airflow failed: no sender outlives this call
            if any(sender.is_alive() for sender in senders):
                shared.raise_stop("error")
            for sender in senders:
                sender.join()
        if errors:
            self.publisher.now(progress)
            raise errors[0]
        return shared.state is None

    def _sender(
        self, source: Iterator[list[Recipient]], shared: SharedStop, progress: Progress, errors: list[BaseException]
    ) -> None:
        """One sender thread: its own connection, gate and in-flight message; the first error stops them all."""
        try:
            own = self.ledger_factory() if self.ledger_factory else None
            try:
                lock = None if own else self.lock
                with closing(LedgerGate(own or self.ledger, shared, self.run_id, lock, self.suppressed)) as gate:
                    while not shared.stopped():
                        with self.lock:
                            batch = next(source, None)
                        if batch is None:
                            return
                        if (todo := gate.unreached(batch)) and self._send(todo, gate, progress):
                            return
            finally:
                if own is not None:
                    own.close()
        except BaseException as error:
            errors.append(error)
            shared.raise_stop("error")

    def _send(self, todo: list[Recipient], gate: LedgerGate, progress: Progress) -> bool:
        """One batch over one connection; progress is counted even when the send raises. True if stopped."""
        outcome = BatchOutcome()
        lost, held_back = gate.lost, gate.held_back
        try:
            self.adapter.send_batch(todo, outcome, gate)
        finally:
            gate.flush()
            with self.lock:
                self.batches += 1
                progress.sent += len(outcome.delivered)
                progress.failed += len(outcome.failed)
                progress.retried += outcome.retried
                for reason, count in outcome.reasons.items():
                    kept = reason if reason in progress.reasons or len(progress.reasons) < REASONS_KEPT else "other"
                    progress.reasons[kept] = progress.reasons.get(kept, 0) + count
                progress.total -= gate.lost - lost  # re-claimed by a racing run: theirs to send
                progress.suppressed += gate.held_back - held_back
                progress.total -= gate.held_back - held_back
                if gate.in_flight is not None:  # the send raised: that message may or may not have left
                    progress.in_doubt += 1
            if not (self.connections > 1 or self.background_checks):  # else the calling thread publishes
                self.publisher.due(progress)
        return outcome.stopped or guard.tripped(self, gate, outcome)  # a tripped guard stops the channel

    def _stopped(self, progress: Progress, already: int) -> DispatchResult:
        log.warning(
            "Run %s is %s: %s stops after %d batches (%d sent)",
            self.run_id, self.stop.state, self.channel, self.batches, progress.sent,
        )  # fmt: skip
        self.publisher.now(progress)
        return self._result(progress, already, stopped=True, state=self.stop.state)

    def _result(self, progress: Progress, already: int, *, stopped: bool, state: str | None) -> DispatchResult:
        return DispatchResult(
            channel=self.channel,
            total=progress.total,
            sent=progress.sent,
            failed=progress.failed,
            in_doubt=progress.in_doubt,
            already_reached=already,
            batches=self.batches,
            stopped=stopped,
            stop_state=state,
            suppressed=progress.suppressed,
            skipped=dict(progress.skipped),
            retried=progress.retried,
            reasons=dict(progress.reasons),
        )
