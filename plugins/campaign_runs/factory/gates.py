"""Gates around each message of a channel: the ledger claim before it leaves, the suppression check, the resend."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from campaign_runs.factory.channels import Gate

if TYPE_CHECKING:
    from campaign_runs.factory.audience import Recipient
    from campaign_runs.factory.ledger import DeliveryLedger
    from campaign_runs.factory.stop import StopCheck


class LedgerGate(Gate):
    """Claims each recipient in the ledger before its message leaves and confirms it with the next claim.

    At any moment at most one recipient of the connection is ``pending`` without a known outcome:
    the one whose message is leaving, or the last one accepted, until the next claim or the batch's end.
    ``lock`` serialises the ledger connection when sender threads share it.
    """

    def __init__(
        self,
        ledger: DeliveryLedger,
        stop: StopCheck,
        run_id: str,
        lock: threading.Lock | None = None,
        suppressed: Callable[[Recipient], bool] | None = None,
    ) -> None:
        self.ledger = ledger
        self.stop = stop
        self.run_id = run_id
        self.lock: AbstractContextManager[Any] = lock or nullcontext()
        self.suppressed = suppressed
        self.in_flight: Recipient | None = None
        self.confirm: list[str] = []
        self.release: list[str] = []
        self.lost = 0  # recipients in doubt another run re-claimed first (resend only)
        self.held_back = 0  # recipients on the suppression list when their message was due
        self.claims: ThreadPoolExecutor | None = None

    def pause(self, seconds: float) -> bool:
        """Sleep in slices, checking the run's state every ``stop.interval`` seconds."""
        if seconds > 0:  # a rate-limit wait: confirm the last message first, so a kill while waiting doubts nobody
            self.flush()
        return self.stop.sleep(seconds)

    def begin_claim(self, recipient: Recipient, *, overlap: bool) -> Callable[[], bool]:
        """With ``overlap``, claim on this gate's claim thread while the sender prepares the message; else at once."""
        if not overlap:
            return super().begin_claim(recipient, overlap=False)
        if self.claims is None:
            self.claims = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-claim")
        return self.claims.submit(self.claim, recipient).result

    def close(self) -> None:
        """End the claim thread, if one started."""
        if self.claims is not None:
            self.claims.shutdown(wait=True)
            self.claims = None

    def holds_back(self, recipient: Recipient) -> bool:
        """Whether ``recipient`` is on the suppression list now: an unsubscribe counts from the next message on."""
        if self.suppressed is None or not self.suppressed(recipient):
            return False
        self.held_back += 1
        return True

    def claim(self, recipient: Recipient) -> bool:
        """Settle the previous message and write ``recipient`` pending, in one committed transaction."""
        with self.lock:
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
        with self.lock:
            self.ledger.settle(self.confirm, self.release)
        self.confirm, self.release = [], []

    def unreached(self, batch: list[Recipient]) -> list[Recipient]:
        """The recipients of ``batch`` with no ledger row yet (one indexed lookup per batch)."""
        with self.lock:
            reached = self.ledger.already_reached([recipient.id for recipient in batch])
        return [recipient for recipient in batch if recipient.id not in reached]


class ResendGate(LedgerGate):
    """Takes the pending rows of recipients in doubt over from the runs holding them: of racing runs, one sends each."""

    def __init__(
        self,
        ledger: DeliveryLedger,
        stop: StopCheck,
        run_id: str,
        holders: dict[str, str],
        suppressed: Callable[[Recipient], bool] | None = None,
    ) -> None:
        super().__init__(ledger, stop, run_id, suppressed=suppressed)
        self.holders = holders

    def _claim(self, recipient: Recipient) -> bool:
        won = self.ledger.reclaim(
            recipient, self.run_id, claimed_by=self.holders[recipient.id], confirm=self.confirm, release=self.release
        )
        self.lost += not won
        return won
