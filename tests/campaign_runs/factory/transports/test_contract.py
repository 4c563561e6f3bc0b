"""Every transport keeps the email channel's promises, each against its provider's local stand-in.

One contract, run for each rig of ``tests/support/rigs``: every recipient reached once over one connection and
over four, throttling retried, a refusal failed with its reason, Stop seen within 0.5 s and the last message at
most 1 s after it, nobody sent twice across Stop and Restart, a SIGKILL of the sending process, the provider
going away mid-run, and two shards sending at once.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import smtplib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from campaign_runs.factory import answers
from campaign_runs.factory.answers import ChannelUnavailable
from campaign_runs.factory.audience import WHOLE, Shard
from campaign_runs.factory.channels import ChannelAdapter, DeliveryContext, Pacer
from campaign_runs.factory.dispatch import Dispatcher, DispatchResult
from campaign_runs.factory.ledger import SqliteLedger

from tests.campaign_runs.factory.test_audience import plan
from tests.campaign_runs.factory.transports.rsa_keys import reuse_fcm_keys
from tests.support.rigs import TransportRig

RIGS = ["smtp", "ses", "sns", "twilio", "fcm", "webhook"]
STOP_SEEN = 0.5  # seconds: the product's promise for a Stop to be seen by every sender
LAST_MESSAGE = 1.0  # seconds: no message leaves later than this after the Stop


@pytest.fixture(params=RIGS)
def rig(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[TransportRig]:
    """One running rig, with backoff shortened so a provider that went away is given up on quickly."""
    monkeypatch.setattr(answers, "BACKOFF_BASE", 0.02)
    reuse_fcm_keys(monkeypatch)  # the FCM rig's service account key, generated once per process
    module = importlib.import_module(f"tests.support.rigs.{request.param}")
    with module.rig(monkeypatch) as running:
        yield running


def adapter_of(rig: TransportRig, sink_dir: Path, run_id: str, rate: float = 0.0) -> ChannelAdapter:
    """The rig's transport adapter, as a channel task builds it."""
    adapter_class = ChannelAdapter.for_transport(rig.channel, rig.transport)
    settings = {**adapter_class.optional_settings, **rig.settings}
    context = DeliveryContext("c", run_id, rig.channel, settings, sink_dir, {}, conn_id=rig.conn_id)
    return adapter_class(context, Pacer(rate))


def dispatch(
    rig: TransportRig,
    sink_dir: Path,
    size: int,
    run_id: str,
    *,
    state: Callable[[], str] = lambda: "running",
    connections: int = 1,
    rate: float = 0.0,
    shard: Shard = WHOLE,
) -> DispatchResult:
    """Send ``size`` recipients through the rig in batches of 10, as a channel task does."""
    ledger = SqliteLedger(sink_dir / "c" / "ledger.sqlite", "c", "slot", rig.channel)
    try:
        return Dispatcher(
            plan=plan(size),
            adapter=adapter_of(rig, sink_dir, run_id, rate),
            ledger=ledger,
            batch_size=10,
            run_state=state,
            publish=lambda progress: None,
            run_id=run_id,
            connections=connections,
            shard=shard,
            background_checks=True,
        ).run()
    finally:
        ledger.close()


def addresses(rig: TransportRig, sink_dir: Path, size: int) -> list[str]:
    """The addresses of the first ``size`` recipients on the rig's channel."""
    adapter = adapter_of(rig, sink_dir, "addresses")
    return [adapter.address(recipient) for recipient in plan(size).recipients()]


def in_doubt(sink_dir: Path, rig: TransportRig, size: int) -> int:
    """Recipients the ledger holds pending (sent or not: nobody can tell)."""
    ledger = SqliteLedger(sink_dir / "c" / "ledger.sqlite", "c", "slot", rig.channel)
    try:
        return ledger.counts(size).in_doubt
    finally:
        ledger.close()


def assert_once_each(rig: TransportRig, expected: list[str], doubtful: int = 0) -> None:
    """Nobody reached twice; everybody reached but at most ``doubtful`` recipients in doubt."""
    counts = Counter(rig.accepted())
    assert [address for address, n in counts.items() if n > 1] == []
    assert set(counts) <= set(expected)
    assert len(set(expected) - set(counts)) <= doubtful


class StopAfter:
    """A run state that turns ``failed`` ``seconds`` after the first question; remembers when."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started: float | None = None
        self.stopped_at: float | None = None

    def __call__(self) -> str:
        now = time.monotonic()
        self.started = self.started or now
        if now - self.started < self.seconds:
            return "running"
        self.stopped_at = self.stopped_at or self.started + self.seconds
        return "failed"


@pytest.mark.parametrize("connections", [1, 4])
def test_every_recipient_reached_once(rig: TransportRig, tmp_path: Path, connections: int) -> None:
    """Over one connection or four, every recipient's message is accepted exactly once."""
    result = dispatch(rig, tmp_path, 30, "run-1", connections=connections)
    assert (result.sent, result.failed, result.in_doubt, result.stopped) == (30, 0, 0, False)
    assert sorted(rig.accepted()) == sorted(addresses(rig, tmp_path, 30))


def test_throttled_messages_are_tried_again(rig: TransportRig, tmp_path: Path) -> None:
    """Throttling answers are waited out and counted; every message still leaves exactly once."""
    rig.throttle_next(2, retry_after=0)
    result = dispatch(rig, tmp_path, 5, "run-1")
    assert (result.sent, result.failed, result.retried) == (5, 0, 2)
    assert sorted(rig.accepted()) == sorted(addresses(rig, tmp_path, 5))


def test_a_refusal_fails_that_message_with_the_providers_reason(rig: TransportRig, tmp_path: Path) -> None:
    """A refused address fails; the rest are sent; the reason is the provider's, counted."""
    expected = addresses(rig, tmp_path, 6)
    rig.refuse_address(expected[2])
    result = dispatch(rig, tmp_path, 6, "run-1")
    assert (result.sent, result.failed) == (5, 1)
    assert sum(result.reasons.values()) == 1 and next(iter(result.reasons)) != "refused"
    assert sorted(rig.accepted()) == sorted(expected[:2] + expected[3:])


def test_stop_is_seen_at_once_and_restart_sends_nobody_twice(rig: TransportRig, tmp_path: Path) -> None:
    """At 20/s over 4 connections, a Stop ends sending within its promises; a restart reaches the rest once."""
    rig.slow_down(0.02)
    stop = StopAfter(1.0)
    result = dispatch(rig, tmp_path, 200, "run-1", state=stop, connections=4, rate=20)
    returned = time.monotonic()
    assert result.stopped and stop.stopped_at is not None
    assert returned - stop.stopped_at <= LAST_MESSAGE  # every sender joined: no message can leave later
    assert len(rig.accepted()) <= 20 * (1.0 + STOP_SEEN) + 4
    rig.slow_down(0)
    second = dispatch(rig, tmp_path, 200, "run-2", connections=4)
    assert not second.stopped
    assert_once_each(rig, addresses(rig, tmp_path, 200), doubtful=result.in_doubt)


# What a sending process imports before its first message. Forked from a server that imported them once, each
# sending process starts in milliseconds instead of importing Airflow and boto3 anew; it still shares nothing
# with this process (no thread, socket or rig of the test), as a spawned one.
CHILD_IMPORTS = [
    __name__,
    *(f"tests.support.rigs.{name}" for name in RIGS),
    *(f"campaign_runs.factory.transports.{name}" for name in ("ses", "sns", "twilio", "fcm", "webhook")),
    "airflow.sdk",
    "airflow.providers.amazon.aws.hooks.ses",
    "airflow.providers.amazon.aws.hooks.sns",
]


def sending_processes() -> multiprocessing.context.ForkServerContext:
    """Fresh processes for the sender, forked from a server that imported ``CHILD_IMPORTS``."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(CHILD_IMPORTS)
    return context


def _send_until_killed(rig_name: str, sink_dir: str, env: dict[str, str]) -> None:
    """In a fresh process: send 200 recipients at 20/s through the rig named ``rig_name`` (killed meanwhile)."""
    os.environ.clear()
    os.environ.update(env)  # this test's environment, whatever it was when the fork server started
    module = importlib.import_module(f"tests.support.rigs.{rig_name}")
    remote = module.remote()  # the rig's interface, without starting a server: the parent's is running
    dispatch(remote, Path(sink_dir), 200, "run-1", rate=20)


def test_a_sigkill_mid_batch_doubts_at_most_one_and_restart_sends_nobody_twice(
    rig: TransportRig, tmp_path: Path
) -> None:
    """The sending process killed mid-batch: at most one recipient in doubt, a restart sends the rest once."""
    env = dict(os.environ)
    child = sending_processes().Process(
        target=_send_until_killed, args=(rig.__module__.rsplit(".", 1)[-1], str(tmp_path), env)
    )
    child.start()
    deadline = time.monotonic() + 60
    while len(rig.accepted()) < 10 and child.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert child.pid is not None and child.is_alive(), "the child ended before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    doubtful = in_doubt(tmp_path, rig, 200)
    assert doubtful <= 1
    result = dispatch(rig, tmp_path, 200, "run-2")
    assert result.in_doubt == doubtful
    assert_once_each(rig, addresses(rig, tmp_path, 200), doubtful=doubtful)


def test_the_provider_going_away_stops_the_channel_and_a_restart_finishes(rig: TransportRig, tmp_path: Path) -> None:
    """Mid-run the provider stops answering: the channel stops with at most one in doubt; after it is back, a
    restart reaches everyone else once.

    How it stops depends on where the loss is seen: ``ChannelUnavailable`` once reconnecting fails six times, the
    in-flight message's unknown outcome (one in doubt), or, for SMTP, the session cut before DATA (nothing left:
    the claimed recipient is given back, nobody in doubt).
    """
    rig.slow_down(0.01)

    def leave_after(count: int) -> None:
        while len(rig.accepted()) < count:
            time.sleep(0.005)
        rig.go_away()

    leaving = threading.Thread(target=leave_after, args=(15,), daemon=True)
    leaving.start()
    with pytest.raises(Exception) as raised:
        dispatch(rig, tmp_path, 60, "run-1")
    leaving.join()
    doubtful = in_doubt(tmp_path, rig, 60)
    assert doubtful <= 1
    cut_before_data = rig.transport == "smtp" and isinstance(raised.value, smtplib.SMTPServerDisconnected)
    assert isinstance(raised.value, ChannelUnavailable) or doubtful == 1 or cut_before_data, raised.value
    rig.come_back()
    rig.slow_down(0)
    result = dispatch(rig, tmp_path, 60, "run-2")
    assert not result.stopped
    assert_once_each(rig, addresses(rig, tmp_path, 60), doubtful=doubtful)


def test_two_shards_sending_at_once_reach_everyone_once(rig: TransportRig, tmp_path: Path) -> None:
    """Two shard tasks of one channel, at the same time, each with its own ledger connection."""
    results: list[DispatchResult] = []
    errors: list[BaseException] = []

    def shard(index: int) -> None:
        try:
            results.append(dispatch(rig, tmp_path, 40, "run-1", shard=Shard(index, 2)))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=shard, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(result.sent for result in results) == 40
    assert sorted(rig.accepted()) == sorted(addresses(rig, tmp_path, 40))
