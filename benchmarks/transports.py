"""Throughput of every transport against a plain loop of the provider's own client, into the same local server.

Run with ``python -m benchmarks.transports`` from the repository root (``--messages N``, ``--only NAME``).
For each transport it starts the test suite's local stand-in of the provider (``tests/support/rigs``: moto's
server behind a checking front for SES and SNS, small HTTP servers for Twilio, FCM and the webhook, aiosmtpd for
SMTP) and measures, one after the other, into that one server:

- ``plain x1``: a loop of the provider's own client on one connection (smtplib ``sendmail``, boto3
  ``send_raw_email`` / ``publish``, a ``requests`` session for Twilio's Messages API and FCM's ``messages:send``,
  a ``requests`` session with the Connection's auth and headers for the webhook), each message formatted per recipient;
- ``ours x1``: the channel's adapter driven by the ``Dispatcher`` with the SQLite ledger, ``connections: 1``;
- ``plain x4`` and ``ours x4``: four plain clients in four threads, and ``connections: 4``.

The senders run in a child process, the local server in this one (they do not share an interpreter lock).
Each measurement is made ``--rounds`` times, plain and ours alternated, and the best rate of each is kept.
Rates are messages over wall time. After every measurement the server's record is checked: exactly one
accepted message per recipient. The goal: ``ours x1`` at least 0.9x ``plain x1``, ``ours x4`` at least 0.8x
``plain x4``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import multiprocessing
import os
import secrets
import smtplib
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks.report import recorded

TRANSPORTS = ("smtp", "ses", "sns", "twilio", "fcm", "webhook")
PlainLoop = Callable[[Any, list[Any]], None]  # (rig, recipients) -> every recipient sent once, on one client


def _text(recipient: Any) -> str:
    return f"Hi {recipient.values['first_name']}, our offer for {recipient.values['country']}."


# The email channel's message for the benchmark campaign, header by header and byte for byte in size: the SMTP
# server parses each message, so the plain loop must hand it the same work.
PLAIN_EMAIL = (
    "From: {sender}\r\nX-Campaign-Id: bench\r\nX-Campaign-Run-Id: {run}\r\n"
    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nMIME-Version: 1.0\r\n"
    'Content-Type: text/plain; charset="utf-8"\r\nTo: {to}\r\nSubject: Hello {first}\r\nDate: {date}\r\n'
    "Message-ID: <{n}.plain@example.com>\r\nX-Campaign-Recipient: {id}\r\n"
    "List-Unsubscribe: <http://localhost:8080/campaign-runs/unsubscribe/{token}>, "
    "<mailto:{sender}?subject=unsubscribe%20{token}>\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
    "Hi {first}\r\n"
)


def email_of_channel_shape(recipient: Any, n: int, sender: str) -> bytes:
    """``PLAIN_EMAIL`` formatted for one recipient, as a plain client would."""
    import secrets
    from email.utils import formatdate

    return PLAIN_EMAIL.format(
        sender=sender, run="plain", to=recipient.email, first=recipient.values["first_name"],
        date=formatdate(usegmt=True), n=n, id=recipient.id, token=secrets.token_urlsafe(60),
    ).encode()  # fmt: skip


def plain_smtp(rig: Any, recipients: list[Any]) -> None:
    """``smtplib.sendmail`` of a message of the email channel's shape, formatted per recipient."""
    client = smtplib.SMTP("127.0.0.1", rig.port, timeout=30)
    try:
        for n, recipient in enumerate(recipients):
            message = email_of_channel_shape(recipient, n, "airflow@example.com")
            client.sendmail("airflow@example.com", [recipient.email], message)
    finally:
        client.quit()


def _boto(rig: Any, service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=rig.endpoint,
        region_name="us-east-1",
        aws_access_key_id=rig.access_key,
        aws_secret_access_key=rig.secret,
    )


def plain_ses(rig: Any, recipients: list[Any]) -> None:
    """boto3 ``send_raw_email`` of a message of the email channel's shape, one per recipient."""
    client = _boto(rig, "ses")
    sender = importlib.import_module("tests.support.rigs.ses").SENDER
    for n, recipient in enumerate(recipients):
        raw = email_of_channel_shape(recipient, n, sender)
        client.send_raw_email(Source=sender, Destinations=[recipient.email], RawMessage={"Data": raw})


def plain_sns(rig: Any, recipients: list[Any]) -> None:
    """boto3 ``publish`` to each phone number."""
    client = _boto(rig, "sns")
    attributes = {
        "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": "EXAMPLE"},
        "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
    }
    for recipient in recipients:
        client.publish(PhoneNumber=recipient.phone, Message=_text(recipient), MessageAttributes=attributes)


def plain_twilio(rig: Any, recipients: list[Any]) -> None:
    """A ``requests`` session POSTing Twilio's Messages API form."""
    import requests

    url = f"{rig.url}{rig.base}/Messages.json"
    with requests.Session() as session:
        session.auth = rig.credentials
        for recipient in recipients:
            answer = session.post(url, data={"To": recipient.phone, "From": "EXAMPLE", "Body": _text(recipient)})
            answer.raise_for_status()


def plain_fcm(rig: Any, recipients: list[Any]) -> None:
    """google-auth's token, then a ``requests`` session POSTing FCM v1 ``messages:send``."""
    import requests
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    info = rig.service_account
    credentials = service_account.Credentials.from_service_account_info(
        info, scopes=["https://www.googleapis.com/auth/firebase.messaging"]
    )
    credentials.refresh(Request())
    url = f"http://127.0.0.1:{rig.port}/v1/projects/{info['project_id']}/messages:send"
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {credentials.token}"
        for recipient in recipients:
            notification = {"title": f"Hello {recipient.values['first_name']}", "body": _text(recipient)}
            message = {"token": recipient.push_token, "notification": notification}
            session.post(url, json={"message": message}).raise_for_status()


def plain_webhook(rig: Any, recipients: list[Any]) -> None:
    """A ``requests`` session POSTing a JSON document per recipient, with the Connection's auth and headers."""
    import requests

    module = importlib.import_module("tests.support.rigs.webhook")
    url = f"http://127.0.0.1:{rig.port}{module.ENDPOINT}"
    with requests.Session() as session:
        session.auth = (rig.login, rig.password)
        session.headers.update({"X-Tenant": module.TENANT, "X-Api-Key": rig.api_key})
        for recipient in recipients:
            headers = {"Idempotency-Key": f"bench/plain/{recipient.id}", "Content-Type": "application/json"}
            session.post(url, data=_webhook_body(rig, recipient), headers=headers).raise_for_status()


def _webhook_body(rig: Any, recipient: Any) -> str:
    """The rig's body template, filled as a plain client would (string values only)."""
    from string import Template

    values = {**recipient.values, "id": recipient.id, "campaign_id": "bench", "run_id": "plain"}
    template = json.loads(rig.settings["body"]) if isinstance(rig.settings["body"], str) else rig.settings["body"]

    def fill(node: Any) -> Any:
        if isinstance(node, str):
            return Template(node).safe_substitute(values)
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        if isinstance(node, list):
            return [fill(value) for value in node]
        return node

    return json.dumps(fill(template))


PLAIN: dict[str, PlainLoop] = {
    "smtp": plain_smtp,
    "ses": plain_ses,
    "sns": plain_sns,
    "twilio": plain_twilio,
    "fcm": plain_fcm,
    "webhook": plain_webhook,
}


def view_of(rig: Any) -> SimpleNamespace:
    """What a sending process needs of a running rig (picklable): where it listens, its credentials, settings."""
    view = SimpleNamespace(channel=rig.channel, transport=rig.transport, conn_id=rig.conn_id, settings=rig.settings)
    for name in ("port", "endpoint", "access_key", "secret", "base", "login", "password", "api_key"):
        if isinstance(value := getattr(rig, name, None), str | int):
            setattr(view, name, value)
    if isinstance(url := getattr(getattr(rig, "server", None), "url", None), str):  # the HTTP rigs' RigServer
        view.url, view.port = url, rig.server.port
    if callable(credentials := getattr(rig, "credentials", None)):
        view.credentials = credentials()
    if callable(account := getattr(rig, "service_account", None)):
        view.service_account = account()
    return view


def _warm_up() -> None:
    """In the sending process: import Airflow and the factory once, before any measurement."""
    import airflow.sdk  # noqa: F401
    import campaign_runs.factory.transports  # noqa: F401


def plain(name: str, rig: SimpleNamespace, size: int, clients: int) -> float:
    """Seconds for ``clients`` plain clients in threads to send to ``size`` recipients (split evenly)."""
    from tests.campaign_runs.factory.test_audience import plan

    recipients = list(plan(size).recipients())
    parts = [recipients[index::clients] for index in range(clients)]
    errors: list[BaseException] = []

    def send(part: list[Any]) -> None:
        try:
            PLAIN[name](rig, part)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=send, args=(part,)) for part in parts]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def ours(rig: SimpleNamespace, size: int, connections: int, sink_dir: Path, run_id: str) -> float:
    """Seconds for the channel's adapter under the ``Dispatcher`` (SQLite ledger) to send to ``size`` recipients."""
    from campaign_runs.factory.channels import ChannelAdapter, DeliveryContext, Pacer
    from campaign_runs.factory.dispatch import Dispatcher
    from campaign_runs.factory.ledger import SqliteLedger

    from tests.campaign_runs.factory.test_audience import plan

    adapter_class = ChannelAdapter.for_transport(rig.channel, rig.transport)
    settings = {**adapter_class.optional_settings, **rig.settings}
    context = DeliveryContext("bench", run_id, rig.channel, settings, sink_dir, {}, conn_id=rig.conn_id)
    adapter = adapter_class(context, Pacer(0))  # reads its Connection: a channel task does it once, before sending
    ledger = SqliteLedger(sink_dir / "bench" / "ledger.sqlite", "bench", run_id, rig.channel)
    started = time.perf_counter()
    try:
        result = Dispatcher(
            plan=plan(size),
            adapter=adapter,
            ledger=ledger,
            batch_size=500,
            run_state=lambda: "running",
            publish=lambda progress: None,
            run_id=run_id,
            connections=connections,
            background_checks=True,
        ).run()
    finally:
        ledger.close()
    elapsed = time.perf_counter() - started
    if (result.sent, result.failed, result.in_doubt) != (size, 0, 0):
        raise AssertionError(f"{rig.transport}: {result}")
    return elapsed


def stopped(rig: SimpleNamespace, size: int, sink_dir: Path, run_id: str, after: float = 0.5) -> tuple[float, int]:
    """The run's state turns ``failed`` ``after`` seconds into a send: (seconds to the last answer, messages after)."""
    from campaign_runs.factory.channels import ChannelAdapter, DeliveryContext, Pacer
    from campaign_runs.factory.dispatch import Dispatcher
    from campaign_runs.factory.ledger import SqliteLedger

    from tests.campaign_runs.factory.test_audience import plan

    adapter_class = ChannelAdapter.for_transport(rig.channel, rig.transport)
    context = DeliveryContext(
        "bench",
        run_id,
        rig.channel,
        {**adapter_class.optional_settings, **rig.settings},
        sink_dir,
        {},
        conn_id=rig.conn_id,
    )
    adapter, answered = adapter_class(context, Pacer(0)), list[float]()
    send_one = adapter.send_one

    def timed(connection: Any, recipient: Any) -> bool:
        delivered = send_one(connection, recipient)
        answered.append(time.perf_counter())
        return delivered

    adapter.send_one = timed  # type: ignore[method-assign]
    ledger = SqliteLedger(sink_dir / "bench" / "ledger.sqlite", "bench", run_id, rig.channel)
    flip = time.perf_counter() + after
    try:
        Dispatcher(
            plan=plan(size), adapter=adapter, ledger=ledger, batch_size=500, publish=lambda progress: None,
            run_state=lambda: "failed" if time.perf_counter() >= flip else "running", run_id=run_id,
            background_checks=True,
        ).run()  # fmt: skip
    finally:
        ledger.close()
    late = [moment for moment in answered if moment > flip]
    return (max(late) - flip if late else 0.0), len(late)


def exactly_once(rig: Any, before: int, expected: list[str], label: str) -> None:
    """The messages the server accepted since ``before``: one per expected address."""
    counts = Counter(rig.accepted()[before:])
    if counts != Counter(expected):
        doubled = sum(1 for n in counts.values() if n > 1)
        raise AssertionError(f"{label}: {sum(counts.values())} accepted for {len(expected)} ({doubled} twice)")


def measure(name: str, size: int, rounds: int) -> dict[str, float]:
    """Best rates (messages/s) of ``rounds`` alternated trials of the four measurements of one transport.

    The rig serves in this process; every sender (plain or ours) runs in one child process, as a provider and
    its clients are apart: they do not share an interpreter lock.
    """
    import pytest

    from tests.campaign_runs.factory.test_audience import plan

    module = importlib.import_module(f"tests.support.rigs.{name}")
    rates: dict[str, float] = {}
    with ExitStack() as stack:
        monkeypatch = stack.enter_context(pytest.MonkeyPatch.context())
        rig = stack.enter_context(module.rig(monkeypatch))  # its Connection is in os.environ from here on
        sink_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        senders = stack.enter_context(
            ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_warm_up)
        )
        view = view_of(rig)
        adapter = importlib.import_module("campaign_runs.factory.channels").ChannelAdapter
        address = adapter.for_transport(rig.channel, rig.transport).address_field
        expected = [str(getattr(recipient, address)) for recipient in plan(size).recipients()]
        for clients in (1, 4):
            for trial in range(rounds):  # alternated, best of each: other work on the machine comes and goes
                before = len(rig.accepted())
                rate = size / senders.submit(plain, name, view, size, clients).result()
                exactly_once(rig, before, expected, f"{name} plain x{clients}")
                rates[f"plain x{clients}"] = max(rate, rates.get(f"plain x{clients}", 0.0))
                before = len(rig.accepted())
                run_id = f"bench-{clients}-{trial}"
                rate = size / senders.submit(ours, view, size, clients, sink_dir, run_id).result()
                exactly_once(rig, before, expected, f"{name} ours x{clients}")
                rates[f"ours x{clients}"] = max(rate, rates.get(f"ours x{clients}", 0.0))
        stop_latency, late = senders.submit(stopped, view, size, sink_dir, "bench-stop").result()
        rates["stop ms"], rates["after stop"] = stop_latency * 1000, late
    return rates


def main() -> None:
    """Measure every transport and print the table with the ratios against the plain clients."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages per measurement (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated trials, best kept (default 3)")
    parser.add_argument("--only", choices=TRANSPORTS, action="append", help="measure only these transports")
    arguments = parser.parse_args()
    # The email adapters sign each recipient's unsubscribe link, as in a real run.
    os.environ.setdefault("AIRFLOW__CAMPAIGN_RUNS__UNSUBSCRIBE_SECRET", secrets.token_hex(16))
    import airflow.sdk  # noqa: F401 (imported once here, not inside the first measurement)

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    print(f"{arguments.messages} messages per measurement, best of {arguments.rounds}; rates in messages/s")
    print(
        f"{'transport':<9} {'plain x1':>9} {'ours x1':>9} {'ratio':>6}   {'plain x4':>9} {'ours x4':>9} {'ratio':>6}"
        "   stop -> last answer, messages after"
    )
    for name in arguments.only or TRANSPORTS:
        rates = measure(name, arguments.messages, arguments.rounds)
        one = rates["ours x1"] / rates["plain x1"]
        four = rates["ours x4"] / rates["plain x4"]
        print(
            f"{name:<9} {rates['plain x1']:>9.0f} {rates['ours x1']:>9.0f} {one:>5.2f}x   "
            f"{rates['plain x4']:>9.0f} {rates['ours x4']:>9.0f} {four:>5.2f}x"
            f"   {rates['stop ms']:8.0f} ms {rates['after stop']:4.0f}",
            flush=True,
        )


if __name__ == "__main__":
    with recorded("transports"):
        main()
