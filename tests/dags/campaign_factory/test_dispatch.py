"""The dispatch loop with a real sink and ledger: progress, stop mid-batch, restart, and crashes at every step."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from campaign_factory.channels import ChannelAdapter, DeliveryContext, Pacer
from campaign_factory.dispatch import Dispatcher
from campaign_factory.ledger import DeliveryLedger
from campaign_factory.stop import StopSignal

from tests.dags.campaign_factory.test_audience import plan


def sink_ids(tmp_path: Path) -> list[str]:
    """Recipients in the SMS sink, in order."""
    import json

    path = tmp_path / "c" / "sms.jsonl"
    return [json.loads(line)["recipient"] for line in path.read_text().splitlines()] if path.exists() else []


def run(
    tmp_path: Path,
    size: int,
    state: Callable[[], str] = lambda: "running",
    run_id: str = "run-1",
    adapter: ChannelAdapter | None = None,
    ledger_class: type[DeliveryLedger] = DeliveryLedger,
) -> tuple[Any, list[dict[str, Any]]]:
    """Dispatch ``size`` SMS in batches of 10, asking ``state`` before every message (check interval 0)."""
    published: list[dict[str, Any]] = []
    context = DeliveryContext("c", run_id, "sms", {"text": "t", "sender": "S"}, tmp_path, {})
    ledger = ledger_class(tmp_path / "c" / "ledger.sqlite", "c", "slot", "sms")
    try:
        result = Dispatcher(
            plan=plan(size),
            adapter=adapter or ChannelAdapter.registry["sms"](context, Pacer(0)),
            ledger=ledger,
            batch_size=10,
            run_state=state,
            publish=published.append,
            run_id=run_id,
            stop=StopSignal(state, interval=0),
        ).run()
    finally:
        ledger.close()
    return result, published


def stop_after(tmp_path: Path, count: int) -> Callable[[], str]:
    """A run state that turns ``failed`` once ``count`` messages are in the sink."""
    return lambda: "failed" if len(sink_ids(tmp_path)) >= count else "running"


def test_progress_once_per_batch_until_total(tmp_path: Path) -> None:
    """Progress is published at start and after each batch, and reaches the total."""
    result, published = run(tmp_path, 35)
    assert [p["sent"] for p in published] == [0, 10, 20, 30, 35]
    assert published[-1] == {"channel": "sms", "total": 35, "sent": 35, "failed": 0, "in_doubt": 0}
    assert (result.batches, result.stopped, result.in_doubt) == (4, False, 0)
    assert len(sink_ids(tmp_path)) == 35


def test_stop_between_messages_of_a_batch(tmp_path: Path) -> None:
    """When the run is no longer running, the batch ends before the next message; everything sent is confirmed."""
    result, published = run(tmp_path, 100, stop_after(tmp_path, 23))
    assert (result.sent, result.stopped, result.stop_state, result.in_doubt) == (23, True, "failed", 0)
    assert published[-1]["sent"] == 23
    assert len(sink_ids(tmp_path)) == 23
    with DeliveryLedger.for_campaign(tmp_path, "c", "slot", "sms") as ledger:
        assert (ledger.counts(100).sent, ledger.counts(100).in_doubt) == (23, 0)


def test_restart_sends_only_to_recipients_not_reached(tmp_path: Path) -> None:
    """A second run of the same slot sends only what the first did not; nobody twice."""
    run(tmp_path, 100, stop_after(tmp_path, 37))
    result, published = run(tmp_path, 100, run_id="run-2")
    assert (result.already_reached, result.total, result.sent, result.in_doubt) == (37, 63, 63, 0)
    assert published[0] == {"channel": "sms", "total": 63, "sent": 0, "failed": 0, "in_doubt": 0}
    assert published[-1]["sent"] == 63
    ids = sink_ids(tmp_path)
    assert len(ids) == len(set(ids)) == 100


class Crash(BaseException):
    """Stands for SIGKILL: raised at one step, then every later ledger write fails too (no cleanup runs)."""


class Steps:
    """Counts the steps of a dispatch (ledger writes and sends) and crashes at step ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.count = 0
        self.dead = False

    def step(self) -> None:
        """One step; the crash step and every step after it raise ``Crash``."""
        self.count += 1
        if self.dead or self.count == self.at:
            self.dead = True
            raise Crash


def crashing_ledger(steps: Steps) -> type[DeliveryLedger]:
    """A ledger class whose writes go through ``steps``; a write at or after the crash commits nothing."""

    class CrashingLedger(DeliveryLedger):
        def claim(self, *args: Any, **kwargs: Any) -> bool:
            steps.step()
            return super().claim(*args, **kwargs)

        def settle(self, *args: Any, **kwargs: Any) -> None:
            steps.step()
            super().settle(*args, **kwargs)

    return CrashingLedger


class MemoryChannel(ChannelAdapter):
    """A channel keeping what was handed to it; each send is a step that may crash before or after it leaves."""

    name = ""

    def __init__(self, tmp_path: Path, delivered: list[str], steps: Steps | None, refuse: set[str]) -> None:
        super().__init__(DeliveryContext("c", "run", "sms", {}, tmp_path, {}), Pacer(0))
        self.delivered = delivered
        self.steps = steps
        self.refuse = refuse

    def connection(self) -> Any:
        """No connection."""
        return nullcontext()

    def send_one(self, connection: Any, recipient: Any) -> bool:
        """Deliver (a crash step may hit right after the message left)."""
        if recipient.id in self.refuse:
            return False
        self.delivered.append(recipient.id)
        if self.steps is not None:
            self.steps.step()
        return True


@pytest.mark.parametrize("crash_at", range(1, 53))
def test_crash_at_any_step_leaves_at_most_one_in_doubt_and_no_duplicate(tmp_path: Path, crash_at: int) -> None:
    """Killed at any point: ≤ 1 recipient in doubt, nothing sent is unrecorded, and a restart sends nobody twice."""
    size = 25
    everyone = [r.id for r in plan(size).recipients()]
    refused = {everyone[4]}
    delivered: list[str] = []
    steps = Steps(crash_at)
    with pytest.raises(Crash):
        run(
            tmp_path,
            size,
            adapter=MemoryChannel(tmp_path, delivered, steps, refused),
            ledger_class=crashing_ledger(steps),
        )
    with DeliveryLedger.for_campaign(tmp_path, "c", "slot", "sms") as ledger:
        in_doubt = set(ledger.in_doubt())
        sent = set(ledger.already_reached(everyone)) - in_doubt
    assert len(in_doubt) <= 1
    assert sent <= set(delivered)
    assert set(delivered) <= sent | in_doubt

    result, published = run(tmp_path, size, run_id="run-2", adapter=MemoryChannel(tmp_path, delivered, None, refused))
    assert len(delivered) == len(set(delivered)), "a recipient was sent twice"
    assert set(delivered) | in_doubt | refused == set(everyone)
    assert result.in_doubt == published[-1]["in_doubt"] == len(in_doubt)
    assert result.total == size - len(sent) - len(in_doubt)
    assert result.failed == (0 if everyone[4] in sent | in_doubt else 1)


def test_send_error_counts_the_message_in_doubt(tmp_path: Path) -> None:
    """A send that raises (outcome unknown) stays in doubt; progress says so and a restart skips it."""

    class Broken(MemoryChannel):
        def send_one(self, connection: Any, recipient: Any) -> bool:
            if len(self.delivered) == 12:
                raise ConnectionResetError("relay went away")
            return super().send_one(connection, recipient)

    delivered: list[str] = []
    published: list[dict[str, Any]] = []
    with DeliveryLedger.for_campaign(tmp_path, "c", "slot", "sms") as ledger, pytest.raises(ConnectionResetError):
        Dispatcher(
            plan=plan(30),
            adapter=Broken(tmp_path, delivered, None, set()),
            ledger=ledger,
            batch_size=10,
            run_state=lambda: "running",
            publish=published.append,
            run_id="run-1",
        ).run()
    assert published[-1] == {"channel": "sms", "total": 30, "sent": 12, "failed": 0, "in_doubt": 1}
    result, _ = run(tmp_path, 30, run_id="run-2", adapter=MemoryChannel(tmp_path, delivered, None, set()))
    assert (result.already_reached, result.in_doubt, result.sent) == (12, 1, 17)
    assert len(delivered) == len(set(delivered)) == 29
