"""Sending at scale: several connections per task under one rate limit, shards, the email bytes, the settings."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from campaign_runs.factory.audience import Shard
from campaign_runs.factory.channels import ChannelAdapter, DeliveryContext, EmailAdapter, Pacer, SmtpSettings
from campaign_runs.factory.dispatch import Dispatcher, DispatchResult
from campaign_runs.factory.ledger import SqliteLedger
from campaign_runs.factory.spec import CampaignSpecError, load_spec

from tests.campaign_runs.factory.test_audience import plan
from tests.campaign_runs.factory.test_dispatch import sink_ids
from tests.campaign_runs.factory.test_spec import broken, write
from tests.support.airflow_env import free_port


class TimedSink:
    """aiosmtpd handler keeping (arrival time, recipient header, session) of every message, and open sessions."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str, int]] = []
        self.lock = threading.Lock()
        self.open = 0
        self.most_open = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        """Count one more open session."""
        session.host_name = hostname
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        return responses

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        """Count one session less."""
        self.open -= 1
        return "221 Bye"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Record one message."""
        message = message_from_bytes(envelope.original_content or envelope.content)
        with self.lock:
            self.received.append((time.monotonic(), str(message["X-Campaign-Recipient"]), id(session)))
        return "250 OK"


@pytest.fixture
def timed_smtp() -> Iterator[tuple[TimedSink, int]]:
    """A real SMTP server recording receive times."""
    sink, port = TimedSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def email_adapter(tmp_path: Path, port: int, rate: float, settings: dict[str, Any] | None = None) -> EmailAdapter:
    """The email channel of campaign ``c`` into the SMTP server on ``port``."""
    settings = settings or {"subject": "Hi $first_name", "body": "Hello $first_name", "from_name": "", "reply_to": ""}
    context = DeliveryContext("c", "run-1", "email", settings, tmp_path, {"campaign_id": "c"})
    smtp = SmtpSettings("127.0.0.1", port, starttls=False, ssl=False, timeout=30, mail_from="campaigns@example.com")
    return EmailAdapter(context, Pacer(rate), smtp)


def dispatch(
    tmp_path: Path,
    adapter: ChannelAdapter,
    size: int,
    *,
    connections: int = 1,
    shard: Shard | None = None,
    state: Any = lambda: "running",
    run_id: str = "run-1",
    batch_size: int = 5,
) -> DispatchResult:
    """One dispatch of ``size`` recipients in batches of ``batch_size`` with its own SQLite ledger connection."""
    channel = adapter.context.channel
    with SqliteLedger(tmp_path / "c" / "ledger.sqlite", "c", "slot", channel) as ledger:
        return Dispatcher(
            plan=plan(size),
            adapter=adapter,
            ledger=ledger,
            batch_size=batch_size,
            run_state=state,
            publish=lambda progress: None,
            run_id=run_id,
            connections=connections,
            shard=shard or Shard(),
        ).run()


def test_rate_limit_holds_over_four_connections(timed_smtp: tuple[TimedSink, int], tmp_path: Path) -> None:
    """Four connections at 20/s: at most 20 (+1 for timing jitter) received in any one-second window."""
    sink, port = timed_smtp
    result = dispatch(tmp_path, email_adapter(tmp_path, port, 20), 60, connections=4)
    times = sorted(at for at, _, _ in sink.received)
    assert (result.sent, len(times)) == (60, 60)
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 21, busiest
    assert sink.most_open == 4, "four connections at once"
    assert Counter(r for _, r, _ in sink.received).most_common(1)[0][1] == 1


def test_an_audience_smaller_than_the_batches_still_uses_every_connection(
    timed_smtp: tuple[TimedSink, int], tmp_path: Path
) -> None:
    """40 recipients in batches of 500 over four connections: four shares of 10 go out at once, not one batch."""
    sink, port = timed_smtp
    result = dispatch(tmp_path, email_adapter(tmp_path, port, 20), 40, connections=4, batch_size=500)
    assert (result.sent, len(sink.received)) == (40, 40)
    assert sink.most_open == 4, "four connections at once"
    assert Counter(r for _, r, _ in sink.received).most_common(1)[0][1] == 1


def test_stop_ends_every_connection_and_restart_sends_nobody_twice(
    timed_smtp: tuple[TimedSink, int], tmp_path: Path
) -> None:
    """Stopped mid-way over three connections: nobody in doubt; a restart sends the rest, each recipient once."""
    sink, port = timed_smtp
    first = dispatch(
        tmp_path,
        email_adapter(tmp_path, port, 100),
        80,
        connections=3,
        state=lambda: "failed" if len(sink.received) >= 20 else "running",
    )
    assert first.stopped and 20 <= first.sent < 80 and first.in_doubt == 0
    second = dispatch(tmp_path, email_adapter(tmp_path, port, 0), 80, connections=3, run_id="run-2")
    assert (second.already_reached, second.sent) == (first.sent, 80 - first.sent)
    counts = Counter(recipient for _, recipient, _ in sink.received)
    assert len(counts) == 80 and set(counts.values()) == {1}


def test_shards_split_the_audience_and_a_restart_of_every_shard_sends_nobody_twice(tmp_path: Path) -> None:
    """Three shards own positions p % 3; stopped shards restarted: together every recipient exactly once."""
    sms: dict[str, Any] = {"text": "t", "sender": "S"}
    adapter = ChannelAdapter.registry["sms"](DeliveryContext("c", "run-1", "sms", sms, tmp_path, {}), Pacer(0))
    first = [
        dispatch(
            tmp_path,
            adapter,
            40,
            shard=Shard(i, 3),
            state=lambda: "failed" if len(sink_ids(tmp_path)) >= 20 else "running",
        )
        for i in range(3)
    ]
    assert sum(r.total for r in first) == 40
    reached = len(sink_ids(tmp_path))
    assert 20 <= reached < 40
    again = [dispatch(tmp_path, adapter, 40, shard=Shard(i, 3), run_id="run-2") for i in range(3)]
    assert [r.total for r in again] == [len(range(i, 40, 3)) - first[i].sent for i in range(3)]
    ids = sink_ids(tmp_path)
    assert len(ids) == len(set(ids)) == 40
    by_position = {recipient.id: recipient.position for recipient in plan(40).recipients()}
    assert all(by_position[r] % 3 == 0 for r in ids[: first[0].sent])


def test_email_bytes_read_back_as_the_message(timed_smtp: tuple[TimedSink, int], tmp_path: Path) -> None:
    """Non-ASCII subject and body, a display name and a reply-to survive the pre-rendered template."""
    _, port = timed_smtp
    settings = {
        "subject": "Été chez nous, $first_name — " + "très " * 20,
        "body": "Bonjour $first_name,\n.leading dot\n" + "x" * 1200,
        "from_name": "Équipe, Promo",
        "reply_to": "reply@example.com",
    }
    adapter = email_adapter(tmp_path, port, 0, settings)
    recipient = next(r for r in plan(40).recipients() if not r.values["first_name"].isascii())
    message = adapter.message(recipient)
    assert str(make_header(decode_header(str(message["Subject"])))).startswith(
        f"Été chez nous, {recipient.values['first_name']}"
    )
    text = message.get_content().replace("\r\n", "\n")
    assert text == f"Bonjour {recipient.values['first_name']},\n.leading dot\n" + "x" * 1200 + "\n"
    assert message["From"].addresses[0].display_name == "Équipe, Promo"
    assert (message["To"], message["Reply-To"], message["X-Campaign-Recipient"]) == (
        recipient.email,
        "reply@example.com",
        recipient.id,
    )
    assert adapter.message(recipient)["Message-ID"] != message["Message-ID"]


@pytest.mark.parametrize(
    ("setting", "value", "fragment"),
    [
        ("connections", 0, "must be at least 1, got 0"),
        ("connections", "four", "must be an integer"),
        ("connections", 33, "must be at most 32"),
        ("shards", 0, "must be at least 1, got 0"),
        ("shards", 2.5, "must be an integer"),
    ],
)
def test_connections_and_shards_errors_name_the_field(tmp_path: Path, setting: str, value: Any, fragment: str) -> None:
    """A bad ``connections`` or ``shards`` is an error naming ``channels.<name>.<setting>``."""
    path = write(tmp_path, broken(**{f"channels__sms__{setting}": value}))
    with pytest.raises(CampaignSpecError) as error:
        load_spec(path)
    assert error.value.field_name == f"channels.sms.{setting}"
    assert fragment in str(error.value)


def test_connections_and_shards_are_read(tmp_path: Path) -> None:
    """Both settings land on the channel spec; defaults are 1."""
    data = broken(channels__sms__connections=4, channels__sms__shards=3)
    data["channels"]["push"] = {"title": "T", "body": "B"}
    spec = load_spec(write(tmp_path, yaml.safe_load(yaml.safe_dump(data))))
    assert (spec.channel("sms").connections, spec.channel("sms").shards) == (4, 3)
    assert (spec.channel("push").connections, spec.channel("push").shards) == (1, 1)
