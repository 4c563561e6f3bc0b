"""The HTTP transports read the environment once per connection and still obey it: proxies, NO_PROXY, .netrc."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_runs.factory.transports.webhook import http_session

from tests.support.airflow_env import free_port
from tests.support.rigs import webhook
from tests.support.rigs.webhook import ENDPOINT, WebhookRig

PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY")


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookRig]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with webhook.rig(monkeypatch) as running:
        yield running


def connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, host: str, port: int | None, **more: str) -> None:
    document = {"conn_type": "http", "host": host, "schema": "http", **more} | ({"port": port} if port else {})
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(document))


def post_twice(conn_id: str) -> None:
    with http_session(conn_id) as http:
        for _ in range(2):
            http.send("POST", f"{http.base_url}{ENDPOINT}", data=b"{}", headers={"Content-Type": "application/json"})


def test_a_proxy_from_the_environment_carries_every_request(rig: WebhookRig, monkeypatch: pytest.MonkeyPatch) -> None:
    """``webhook.invalid`` never resolves: the requests can only reach the rig through ``HTTP_PROXY``."""
    connection(monkeypatch, "proxied", "webhook.invalid", None)
    monkeypatch.setenv("HTTP_PROXY", rig.server.url)
    post_twice("proxied")
    assert [seen.path for seen in rig.seen] == [f"http://webhook.invalid{ENDPOINT}"] * 2


def test_no_proxy_sends_straight_to_the_host(rig: WebhookRig, monkeypatch: pytest.MonkeyPatch) -> None:
    connection(monkeypatch, "direct", "127.0.0.1", rig.server.port)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    post_twice("direct")
    assert [seen.path for seen in rig.seen] == [ENDPOINT] * 2


def test_netrc_credentials_apply_when_the_connection_has_none(
    rig: WebhookRig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    connection(monkeypatch, "netrc_only", "127.0.0.1", rig.server.port)
    post_twice("netrc_only")
    expected = "Basic " + base64.b64encode(b"netrc-user:netrc-secret").decode()
    assert [seen.header("Authorization") for seen in rig.seen] == [expected] * 2


def test_trust_env_off_in_the_connection_ignores_the_environment(
    rig: WebhookRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection(monkeypatch, "untrusting", "127.0.0.1", rig.server.port, extra=json.dumps({"trust_env": False}))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # would fail every request if used
    post_twice("untrusting")
    assert [seen.path for seen in rig.seen] == [ENDPOINT] * 2


def test_urls_with_different_answers_leave_requests_reading_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """FCM's session also fetches tokens from another host: one in NO_PROXY, one not, so nothing is settled."""
    import requests
    from campaign_runs.factory.transports.webhook import read_environment_once

    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "fcm.internal")
    with requests.Session() as session:
        read_environment_once(session, "https://fcm.internal/v1/projects/p/messages:send", "https://oauth2.example/t")
        assert session.trust_env and session.proxies == {}
    with requests.Session() as session:
        read_environment_once(session, "https://push.example/v1", "https://oauth2.example/t")
        assert not session.trust_env and session.proxies["https"] == "http://proxy.invalid:3128"
