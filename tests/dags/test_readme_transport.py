"""dags/README.md's "a new transport is one small class" example, run as written against a local HTTP gateway."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from campaign_runs.factory.channels import BatchOutcome, ChannelAdapter, DeliveryContext, Pacer
from campaign_runs.factory.spec import parse_spec

from tests.campaign_runs.factory.test_audience import plan
from tests.dags.conftest import DAGS
from tests.support.airflow_env import free_port


def readme_example() -> str:
    """The Python block of the README's "Channels and transports" section."""
    section = (DAGS / "README.md").read_text().split("## Channels and transports", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    return blocks[0]


class Gateway(BaseHTTPRequestHandler):
    """Answers ``GET /account`` and ``POST /messages``; the first message is throttled (429, Retry-After: 0)."""

    forms: list[dict[str, list[str]]] = []
    throttled: list[bool] = []

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/account" else 404)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        if self.path != "/messages" or self.headers["Content-Type"] != "application/x-www-form-urlencoded":
            self._answer(400)
        elif not self.throttled:
            self.throttled.append(True)
            self._answer(429, {"Retry-After": "0"})
        else:
            self.forms.append(parse_qs(body))
            self._answer(201)

    def _answer(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {**(headers or {}), "Content-Length": "2"}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The local gateway on a free port, and Connection ``my_gateway`` pointing at it."""
    Gateway.forms, Gateway.throttled = [], []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    connection = {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
    monkeypatch.setenv("AIRFLOW_CONN_MY_GATEWAY", json.dumps(connection))
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def example() -> Iterator[type[ChannelAdapter]]:
    """The README's class, defined (and so registered) for the test, then unregistered."""
    namespace: dict[str, Any] = {"__name__": "readme_transport"}
    exec(compile(readme_example(), "dags/README.md", "exec"), namespace)
    try:
        yield ChannelAdapter.for_transport("sms", "gateway")
    finally:
        ChannelAdapter.transports.pop(("sms", "gateway"), None)


def test_the_readme_s_transport_registers_parses_checks_and_sends(
    example: type[ChannelAdapter], gateway: int, tmp_path: Path
) -> None:
    channels = {"sms": {"transport": "gateway", "conn_id": "my_gateway", "text": "Hi $first_name", "sender": "EX"}}
    data = {
        "id": "readme",
        "description": "The README's transport.",
        "owner": "growth",
        "owner_email": "growth@example.com",
        "schedule": {"cron": None, "start_date": "2026-01-01"},
        "audience": {"segment": "testers", "size": 3, "population": 100},
        "channels": channels,
    }
    channel = parse_spec(data, tmp_path / "readme.yaml").channel("sms")
    assert (channel.transport, channel.conn_id, channel.delivery_label) == ("gateway", "my_gateway", "gateway")
    context = DeliveryContext("readme", "run-1", "sms", channel.settings, tmp_path, {}, conn_id=channel.conn_id)
    adapter = example(context, Pacer(0))
    assert adapter.check() == "gateway: connected"
    outcome = BatchOutcome()
    recipients = list(plan(3).recipients())
    adapter.send_batch(recipients, outcome)
    assert (len(outcome.delivered), outcome.failed, outcome.retried) == (3, [], 1)  # the 429 was tried again
    assert Gateway.forms == [
        {"to": [r.phone], "text": [f"Hi {r.fields()['first_name']}"], "route": ["standard"]} for r in recipients
    ]
