"""A ledger that remembers nothing: the ``no ledger`` variant runs the same ``Dispatcher`` as the ledger variants."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from campaign_runs.factory.audience import WHOLE, Recipient, Shard
from campaign_runs.factory.ledger import DeliveryLedger, LedgerCounts


class NullLedger(DeliveryLedger):
    """Every claim wins and nothing is written: what is left of a run is the dispatch without the ledger."""

    table = "none"

    def __init__(self, campaign: str, slot: str, channel: str) -> None:
        super().__init__(None, campaign, slot, channel)

    def sql(self, statement: str) -> str:
        """No statement is ever run."""
        return statement

    def now(self) -> str:
        """Nothing is stored, so no time either."""
        return ""

    def close(self) -> None:
        """No connection to close."""

    def counts(self, audience_size: int, shard: Shard = WHOLE) -> LedgerCounts:
        """Nobody was reached before."""
        return LedgerCounts()

    def already_reached(self, recipient_ids: Sequence[str]) -> set[str]:
        """Nobody was reached before."""
        return set()

    def claim(
        self, recipient: Recipient, run_id: str, *, confirm: Iterable[str] = (), release: Iterable[str] = ()
    ) -> bool:
        """Always won."""
        return True

    def reclaim(self, recipient: Recipient, run_id: str, **settled: Any) -> bool:
        """Always won."""
        return True

    def settle(self, confirm: Iterable[str] = (), release: Iterable[str] = ()) -> None:
        """Nothing to settle."""

    def doubtful(self, run_id: str, audience_size: int, shard: Shard = WHOLE) -> list[tuple[int, str]]:
        """Nothing in doubt."""
        return []
