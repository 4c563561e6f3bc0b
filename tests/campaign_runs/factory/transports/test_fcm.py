"""Push through FCM HTTP v1: the real client code against the local FCM rig (token endpoint and messages:send)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from campaign_runs.factory.answers import ChannelUnavailable, NotAuthorized, Refused, Transient
from campaign_runs.factory.audience import Recipient
from campaign_runs.factory.channels import ChannelAdapter, DeliveryContext, Pacer
from campaign_runs.factory.dispatch import Dispatcher, DispatchResult
from campaign_runs.factory.ledger import SqliteLedger
from campaign_runs.factory.stop import StopSignal
from campaign_runs.factory.suppression import SuppressionList, open_suppressions
from campaign_runs.factory.transports.fcm import FcmPushAdapter

from tests.campaign_runs.factory.test_audience import plan
from tests.campaign_runs.factory.transports.rsa_keys import reuse_fcm_keys
from tests.support.rigs import fcm as fcm_rig
from tests.support.rigs.fcm import PROJECT_ID, FcmRig


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[FcmRig]:
    """The local FCM, with Connection ``rig_fcm`` holding its service account."""
    reuse_fcm_keys(monkeypatch)  # a new key per rig of a test, none generated twice in a process
    with fcm_rig.rig(monkeypatch) as running:
        yield running


class RecordingStop(StopSignal):
    """A stop signal on a fake clock: waits take no real time and each requested wait is recorded."""

    def __init__(self, run_state: Callable[[], str]) -> None:
        self.now = 0.0
        self.waits: list[float] = []
        super().__init__(run_state, interval=0, clock=lambda: self.now, sleep=self._advance)

    def _advance(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)

    def sleep(self, seconds: float) -> bool:
        """Record ``seconds`` (a retry's wait) and wait it on the fake clock."""
        if seconds > 0:
            self.waits.append(seconds)
        return super().sleep(seconds)


def adapter(
    tmp_path: Path, rig: FcmRig, suppressions: SuppressionList | None = None, **settings: Any
) -> FcmPushAdapter:
    """The push channel's ``fcm`` adapter on the rig's Connection."""
    channel = {**rig.settings, **settings}
    context = DeliveryContext("c", "run-1", "push", channel, tmp_path, {}, suppressions, conn_id=rig.conn_id)
    built = ChannelAdapter.for_transport("push", "fcm")(context, Pacer(0))
    assert isinstance(built, FcmPushAdapter)
    return built


def dispatch(
    tmp_path: Path,
    sender: FcmPushAdapter,
    size: int,
    *,
    stop: StopSignal | None = None,
    run_id: str = "run-1",
    connections: int = 1,
) -> DispatchResult:
    """Dispatch ``size`` pushes in batches of 5 with the SQLite ledger."""
    state = stop.run_state if stop else lambda: "running"
    ledger = SqliteLedger(tmp_path / "c" / "ledger.sqlite", "c", "slot", "push")
    try:
        return Dispatcher(
            plan=plan(size),
            adapter=sender,
            ledger=ledger,
            batch_size=5,
            run_state=state,
            publish=lambda progress: None,
            run_id=run_id,
            stop=stop or StopSignal(state, interval=0),
            connections=connections,
            suppressions=sender.context.suppressions,
        ).run()
    finally:
        ledger.close()


def tokens(size: int) -> list[str]:
    """The push tokens of the first ``size`` recipients, in order."""
    return [r.push_token for r in plan(size).recipients()]


def recipients(size: int) -> list[Recipient]:
    """The first ``size`` recipients."""
    return list(plan(size).recipients())


def test_sends_the_request_fcm_v1_documents(tmp_path: Path, rig: FcmRig) -> None:
    """Each push is one messages:send with the bearer token, the device token, the notification and the deep link."""
    result = dispatch(tmp_path, adapter(tmp_path, rig), 7)
    assert (result.sent, result.failed, result.in_doubt, result.retried) == (7, 0, 0, 0)
    assert rig.accepted() == tokens(7)
    first, seen = recipients(1)[0], rig.seen()
    assert seen[0]["path"] == f"/v1/projects/{PROJECT_ID}/messages:send"
    assert seen[0]["content_type"] == "application/json; charset=UTF-8"
    assert seen[0]["authorization"].startswith("Bearer ya29.rig-")
    assert seen[0]["body"] == {
        "message": {
            "token": first.push_token,
            "notification": {
                "title": f"Hello {first.values['first_name']}",
                "body": f"An offer for {first.values['country']}",
            },
            "data": {"deep_link": f"app://offers/{first.values['country']}"},
        }
    }
    assert {request["authorization"] for request in seen} == {seen[0]["authorization"]}
    assert rig.token_counts() == (1, 0)  # one token for the whole run


def test_no_deep_link_sends_no_data(tmp_path: Path, rig: FcmRig) -> None:
    """Without a deep link the message carries no ``data`` map."""
    dispatch(tmp_path, adapter(tmp_path, rig, deep_link=""), 1)
    assert set(rig.seen()[0]["body"]["message"]) == {"token", "notification"}


def test_sender_threads_share_one_token(tmp_path: Path, rig: FcmRig) -> None:
    """Four connections fetch one access token between them and send everyone once."""
    result = dispatch(tmp_path, adapter(tmp_path, rig), 40, connections=4)
    assert (result.sent, result.in_doubt) == (40, 0)
    assert sorted(rig.accepted()) == sorted(tokens(40))
    assert rig.token_counts() == (1, 0)


@pytest.mark.parametrize(("retry_after", "waits"), [(3, [3.0, 3.0]), (None, [0.5, 1.0])])
def test_throttled_then_sent(tmp_path: Path, rig: FcmRig, retry_after: float | None, waits: list[float]) -> None:
    """429 QUOTA_EXCEEDED is tried again after FCM's Retry-After (else the backoff), counted as retries."""
    rig.throttle_next(2, retry_after=retry_after)
    stop = RecordingStop(lambda: "running")
    result = dispatch(tmp_path, adapter(tmp_path, rig), 3, stop=stop)
    assert (result.sent, result.failed, result.retried) == (3, 0, 2)
    assert stop.waits == waits
    assert rig.accepted() == tokens(3)


def test_unregistered_token_fails_and_is_suppressed(tmp_path: Path, rig: FcmRig) -> None:
    """404 UNREGISTERED fails that push with FCM's reason and puts the token on the suppression list."""
    gone = tokens(4)[2]
    rig.refuse_address(gone)
    with open_suppressions(sink_dir=tmp_path) as suppressions:
        result = dispatch(tmp_path, adapter(tmp_path, rig, suppressions), 4)
        assert (result.sent, result.failed) == (3, 1)
        assert result.reasons == {"HTTP 404: FCM UNREGISTERED: Requested entity was not found.": 1}
        assert rig.accepted() == [t for t in tokens(4) if t != gone]
        [entry] = suppressions.entries("push")
        assert (entry.address, entry.reason) == (gone, "bounced")
        assert "UNREGISTERED" in entry.source
        again = dispatch(tmp_path, adapter(tmp_path, rig, suppressions), 4, run_id="run-2")
        assert (again.already_reached, again.sent, again.suppressed) == (3, 0, 1)  # the bounced token is held back


@pytest.mark.parametrize(
    ("code", "answer", "bad_address"),
    [
        ("UNREGISTERED", Refused, True),
        ("INVALID_ARGUMENT", Refused, True),
        ("SENDER_ID_MISMATCH", Refused, True),
        ("THIRD_PARTY_AUTH_ERROR", Refused, False),
        ("QUOTA_EXCEEDED", Transient, None),
        ("UNAVAILABLE", Transient, None),
        ("INTERNAL", Transient, None),
    ],
)
def test_fcm_error_codes(tmp_path: Path, rig: FcmRig, code: str, answer: type[Exception], bad_address: bool) -> None:
    """Each FCM v1 error code raises its answer; only token problems bounce the address."""
    recipient = recipients(1)[0]
    rig.fail_address(recipient.push_token, code)
    sender = adapter(tmp_path, rig)
    with sender.connection() as connection, pytest.raises(answer) as raised:
        sender.send_one(connection, recipient)
    assert code in str(raised.value)
    if isinstance(raised.value, Refused):
        assert raised.value.bad_address is bad_address
    assert rig.token_counts() == (1, 0)  # THIRD_PARTY_AUTH_ERROR is the APNs/web push key's, not ours to refresh
    assert rig.accepted() == []


def test_invalid_argument_about_the_message_keeps_the_address(tmp_path: Path, rig: FcmRig) -> None:
    """A 400 INVALID_ARGUMENT about the message itself (no token field violation) refuses without bouncing."""
    body = {"error": {"code": 400, "message": "Message is too big", "status": "INVALID_ARGUMENT"}}
    response = requests.Response()
    response.status_code, response._content = 400, json.dumps(body).encode()
    with pytest.raises(Refused) as raised:
        adapter(tmp_path, rig).answer(response)
    assert (raised.value.reason, raised.value.bad_address) == (
        "HTTP 400: FCM INVALID_ARGUMENT: Message is too big",
        False,
    )


def test_token_refused_with_401_is_fetched_again_once(tmp_path: Path, rig: FcmRig) -> None:
    """A 401 for an expired token fetches a new one and sends again; nothing fails."""
    sender, [first, second] = adapter(tmp_path, rig), recipients(2)
    with sender.connection() as connection:
        assert sender.send_one(connection, first)
        rig.expire_tokens()
        assert sender.send_one(connection, second)
    assert rig.accepted() == [first.push_token, second.push_token]
    assert rig.token_counts() == (2, 1)
    old, new = (request["authorization"] for request in rig.seen())
    assert old != new


def test_token_refused_twice_stops_the_channel_losing_nobody(tmp_path: Path, rig: FcmRig) -> None:
    """A 401 again after a fresh token: the account itself is refused, so the channel stops, nobody in doubt."""
    rig.tokens(refused=True)
    sender, recipient = adapter(tmp_path, rig), recipients(1)[0]
    with sender.connection() as connection, pytest.raises(NotAuthorized) as raised:
        sender.send_one(connection, recipient)
    assert "UNAUTHENTICATED" in raised.value.reason
    assert rig.token_counts() == (2, 2)
    with pytest.raises(ChannelUnavailable, match="refused the credentials of Connection rig_fcm"):
        dispatch(tmp_path, sender, 3)
    with SqliteLedger(tmp_path / "c" / "ledger.sqlite", "c", "slot", "push") as ledger:
        assert (ledger.counts(3).sent, ledger.counts(3).in_doubt) == (0, 0)
    assert rig.accepted() == []


def test_token_about_to_expire_is_fetched_again(tmp_path: Path, rig: FcmRig) -> None:
    """A token that expires within google-auth's refresh margin (3m45s) is replaced before each push, with no 401."""
    rig.tokens(lifetime=60)
    result = dispatch(tmp_path, adapter(tmp_path, rig), 3)
    assert result.sent == 3
    assert rig.token_counts() == (3, 0)
    assert len({request["authorization"] for request in rig.seen()}) == 3


def test_server_gone_between_messages_stops_the_channel(tmp_path: Path, rig: FcmRig) -> None:
    """FCM unreachable: each try is refused for now, the channel stops unavailable; after it is back, the rest goes."""

    def state() -> str:
        if len(rig.accepted()) >= 6 and rig.server is not None:
            rig.go_away()
        return "running"

    stop = RecordingStop(state)
    with pytest.raises(ChannelUnavailable, match="push over fcm"):
        dispatch(tmp_path, adapter(tmp_path, rig), 20, stop=stop)
    assert stop.waits == [0.5, 1.0, 2.0, 4.0, 8.0]  # backoff between the six tries; nothing was in flight
    assert rig.accepted() == tokens(6)
    rig.come_back()
    result = dispatch(tmp_path, adapter(tmp_path, rig), 20, run_id="run-2")
    assert (result.already_reached, result.sent, result.in_doubt) == (6, 14, 0)
    assert rig.accepted() == tokens(20)


def test_server_gone_mid_message_leaves_it_in_doubt(tmp_path: Path, rig: FcmRig) -> None:
    """FCM gone while a push waits for its answer: that push is in doubt and never sent again; the rest goes."""
    rig.slow_down(30)
    errors: list[BaseException] = []

    def first_run() -> None:
        try:
            dispatch(tmp_path, adapter(tmp_path, rig), 10)
        except BaseException as error:
            errors.append(error)

    sender = threading.Thread(target=first_run)
    sender.start()
    assert rig.holding.wait(30)
    rig.go_away()
    sender.join(30)
    assert not sender.is_alive()
    [error] = errors
    assert isinstance(error, requests.ConnectionError)  # not Transient: the request had been written
    rig.slow_down(0)
    rig.come_back()
    result = dispatch(tmp_path, adapter(tmp_path, rig), 10, run_id="run-2")
    assert (result.in_doubt, result.sent) == (1, 9)
    assert rig.accepted() == tokens(10)[1:]


@pytest.mark.parametrize("form", ["json string", "key_path", "host"])
def test_connection_forms(tmp_path: Path, rig: FcmRig, monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    """The service account as a JSON string or a key file, the endpoint as the Connection's host, all send."""
    account = rig.service_account()
    (key_file := tmp_path / "key.json").write_text(json.dumps(account))
    connection = {
        "json string": rig.connection(service_account=json.dumps(account)),
        "key_path": rig.connection(service_account=None, key_path=str(key_file)),
        "host": json.dumps(
            {
                "conn_type": "generic",
                "host": "127.0.0.1",
                "port": rig.port,
                "schema": "http",
                "extra": {"key_path": str(key_file)},
            }
        ),
    }[form]
    monkeypatch.setenv("AIRFLOW_CONN_RIG_FCM", connection)
    assert dispatch(tmp_path, adapter(tmp_path, rig), 2).sent == 2
    assert rig.accepted() == tokens(2)


def test_another_project_is_refused(tmp_path: Path, rig: FcmRig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Extra ``project_id`` names the project in the path; FCM refuses another project's sends (not the token)."""
    monkeypatch.setenv("AIRFLOW_CONN_RIG_FCM", rig.connection(project_id="other-project"))
    sender, recipient = adapter(tmp_path, rig), recipients(1)[0]
    with sender.connection() as connection, pytest.raises(Refused) as raised:
        sender.send_one(connection, recipient)
    assert raised.value.reason.startswith(
        "HTTP 403: FCM PERMISSION_DENIED: Permission 'cloudmessaging.messages.create'"
    )
    assert "projects/other-project" in raised.value.reason
    assert raised.value.bad_address is False


def test_check_fetches_a_token_and_sends_nothing(tmp_path: Path, rig: FcmRig) -> None:
    """``check`` names the account and project after fetching a token; no message leaves."""
    answer = adapter(tmp_path, rig).check()
    assert answer == f"fcm: token fetched for {fcm_rig.CLIENT_EMAIL}, project {PROJECT_ID}"
    assert rig.token_counts() == (1, 0)
    assert rig.seen() == []


def test_check_fails_when_fcm_is_unreachable(tmp_path: Path, rig: FcmRig) -> None:
    """``check`` with the token endpoint down says so."""
    rig.go_away()
    with pytest.raises(RuntimeError, match="token endpoint unreachable"):
        adapter(tmp_path, rig).check()


def test_check_without_service_account(tmp_path: Path, rig: FcmRig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Connection with no service account is named in a clear error."""
    monkeypatch.setenv("AIRFLOW_CONN_RIG_FCM", json.dumps({"conn_type": "generic", "extra": {"project_id": "p"}}))
    with pytest.raises(ValueError, match="'rig_fcm' has no service account"):
        adapter(tmp_path, rig).check()


def secret_lines(rig: FcmRig, other: FcmRig | None = None) -> list[str]:
    """Every line of the rig's private key (and ``other``'s) but the PEM armour."""
    keys = rig.private_key + (other.private_key if other else "")
    return [line for line in keys.splitlines() if line and not line.startswith("-----")]


def assert_hidden(text: str, secrets: list[str]) -> None:
    """No secret (a private key line, an access token) in ``text``."""
    assert not [secret for secret in secrets if secret in text]


def test_no_secret_in_any_error_or_log(
    tmp_path: Path, rig: FcmRig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Refusals, a refused key, an unreadable key and the logs never show the private key or the access token."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(logging.getLogger("google"), "propagate", True)  # google-auth's own request logs too
    rig.fail_address(tokens(1)[0], "UNREGISTERED")
    with open_suppressions(sink_dir=tmp_path) as suppressions:
        sender = adapter(tmp_path, rig, suppressions)
        rig.tokens(refused=True)  # every send 401: a token fetched again, then refused, and the channel stops
        with pytest.raises(ChannelUnavailable) as first:
            dispatch(tmp_path, sender, 2)
        rig.tokens(refused=False)
        second = dispatch(tmp_path, sender, 3, run_id="run-2")
        errors = [str(first.value), *second.reasons, *(entry.source for entry in suppressions.entries())]
    assert (second.failed, second.sent) == (1, 2)
    assert "UNAUTHENTICATED" in errors[0] and "UNREGISTERED" in errors[-1]
    stranger = FcmRig(rig.port)  # another key: the rig refuses its grants
    monkeypatch.setenv("AIRFLOW_CONN_RIG_FCM", stranger.connection())
    with pytest.raises(RuntimeError) as wrong_key:
        adapter(tmp_path, rig).check()
    assert "invalid_grant" in str(wrong_key.value)
    errors.append(str(wrong_key.value))
    broken = {**rig.service_account(), "private_key": rig.private_key.replace("\n", "\n!", 3)}
    monkeypatch.setenv("AIRFLOW_CONN_RIG_FCM", rig.connection(service_account=json.dumps(broken)))
    with pytest.raises(ValueError, match="unusable service account") as unusable:
        adapter(tmp_path, rig).check()
    errors.append(str(unusable.value))
    issued = [request["authorization"].split()[1] for request in rig.seen()]
    assert set(issued) == {sender.secrets()[1]}
    secrets = [*secret_lines(rig, stranger), *issued]
    assert_hidden("\n".join(errors) + caplog.text, secrets)
