"""The channel dispatch loop: batches, ledger, live progress and a cooperative stop between batches."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from campaign_factory.channels import BatchOutcome, ChannelAdapter

if TYPE_CHECKING:
    from campaign_factory.audience import AudiencePlan
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

    def as_xcom(self) -> dict[str, Any]:
        """The exact contract the plugin reads."""
        return asdict(self)


@dataclass(frozen=True)
class DispatchResult:
    """How a channel task ended."""

    channel: str
    total: int
    sent: int
    failed: int
    already_reached: int
    batches: int
    stopped: bool
    stop_state: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the task's return value."""
        return asdict(self)


class Dispatcher:
    """Sends one channel of one run, batch by batch."""

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
    ) -> None:
        self.plan = plan
        self.adapter = adapter
        self.ledger = ledger
        self.batch_size = batch_size
        self.run_state = run_state
        self.publish = publish
        self.run_id = run_id
        self.channel = adapter.context.channel

    def run(self) -> DispatchResult:
        """Send every batch not yet reached in this slot; stop at once when the run is no longer running."""
        already = self.ledger.reached_count(self.plan.size)
        progress = Progress(channel=self.channel, total=self.plan.size - already)
        self.publish(progress.as_xcom())
        batches = 0
        for batch in self.plan.batches(self.batch_size):
            state = self.run_state()
            if state != "running":
                log.warning(
                    "Run %s is %s: %s stops after %d batches (%d sent)",
                    self.run_id, state, self.channel, batches, progress.sent,
                )  # fmt: skip
                self.publish(progress.as_xcom())
                return self._result(progress, already, batches, stopped=True, state=state)
            reached = self.ledger.already_reached([recipient.id for recipient in batch])
            todo = [recipient for recipient in batch if recipient.id not in reached]
            if not todo:
                continue
            outcome = BatchOutcome()
            try:
                self.adapter.send_batch(todo, outcome)
            finally:
                self.ledger.record(outcome.delivered, self.run_id)
                progress.sent += len(outcome.delivered)
                progress.failed += len(outcome.failed)
                self.publish(progress.as_xcom())
            batches += 1
        return self._result(progress, already, batches, stopped=False, state=None)

    def _result(
        self, progress: Progress, already: int, batches: int, *, stopped: bool, state: str | None
    ) -> DispatchResult:
        return DispatchResult(
            channel=self.channel,
            total=progress.total,
            sent=progress.sent,
            failed=progress.failed,
            already_reached=already,
            batches=batches,
            stopped=stopped,
            stop_state=state,
        )
