"""Unsubscribe tokens: signed per recipient, refused when forged, altered, malformed or oversized; links and keys."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from campaign_runs.factory.unsubscribe import (
    DERIVATION_LABEL,
    MAX_TOKEN,
    Signer,
    UnsubscribeError,
    UnsubscribeLinks,
    mailto_address,
    read_token,
    signing_key,
    unsubscribe_mailto,
    unsubscribe_token,
    unsubscribe_url,
)

KEY = b"k" * 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_token_round_trip_gives_back_channel_address_and_campaign() -> None:
    token = unsubscribe_token("Bob.Smith+news@Example.com", "spring_sale", key=KEY)
    payload = _b64(b"email\nspring_sale\nBob.Smith+news@Example.com")
    mac = _b64(hmac.new(KEY, f"u1.{payload}".encode(), hashlib.sha256).digest()[:16])
    assert token == f"u1.{payload}.{mac}"
    assert read_token(token, key=KEY) == ("email", "Bob.Smith+news@Example.com", "spring_sale")
    assert read_token(unsubscribe_token("bob@example.com", "c")) == ("email", "bob@example.com", "c")  # the config key


def _altered(token: str, index: int) -> str:
    replacement = "A" if token[index] != "A" else "B"
    return token[:index] + replacement + token[index + 1 :]


def test_every_altered_character_is_refused() -> None:
    token = unsubscribe_token("bob@example.com", "c1", key=KEY)
    for index in range(len(token)):
        with pytest.raises(UnsubscribeError):
            read_token(_altered(token, index), key=KEY)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: unsubscribe_token("bob@example.com", "c1", key=b"another key"), "not valid: it was altered"),
        (lambda t: t.replace(t.split(".")[1], _b64(b"email\nc1\neve@example.com")), "not valid: it was altered"),
        (lambda t: t[:-1], "malformed"),
        (lambda t: t + "A", "malformed"),
        (lambda t: "u2" + t[2:], "malformed"),
        (lambda t: t.replace(".", "/"), "malformed"),
        (lambda t: "", "malformed"),
        (lambda t: "u1..AAAAAAAAAAAAAAAAAAAAAA", "malformed"),
        (lambda t: "u1." + "A" * MAX_TOKEN, "too long"),
        (lambda t: t + "\n", "malformed"),
    ],
)
def test_forged_malformed_and_oversized_tokens_are_refused(make: object, message: str) -> None:
    token = unsubscribe_token("bob@example.com", "c1", key=KEY)
    with pytest.raises(UnsubscribeError, match=message):
        read_token(make(token), key=KEY)  # type: ignore[operator]


def test_a_signed_payload_that_is_not_a_recipient_is_refused() -> None:
    signer = Signer(KEY)
    payload = _b64(b"fax\nc1\nbob@example.com")
    token = f"u1.{payload}.{_b64(signer._sign(f'u1.{payload}'.encode()))}"
    with pytest.raises(UnsubscribeError, match="malformed"):
        signer.read(token)
    with pytest.raises(UnsubscribeError, match="one line each"):
        signer.token("bob@example.com\nBcc: x", "c1")


def test_the_key_is_the_own_secret_else_derived_from_the_api_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    api_derived = hmac.new(b"campaign-runs-test-secret", DERIVATION_LABEL, hashlib.sha256).digest()
    assert signing_key() == api_derived != b"campaign-runs-test-secret"
    before = unsubscribe_token("bob@example.com", "c1")

    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__UNSUBSCRIBE_SECRET", "own-unsubscribe-secret")
    own = signing_key()
    assert own == hmac.new(b"own-unsubscribe-secret", DERIVATION_LABEL, hashlib.sha256).digest() != api_derived
    with pytest.raises(UnsubscribeError, match="not valid"):
        read_token(before)  # a token of the old key is void
    monkeypatch.delenv("AIRFLOW__CAMPAIGN_RUNS__UNSUBSCRIBE_SECRET")
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__UNSUBSCRIBE_SECRET_CMD", "echo own-unsubscribe-secret")
    assert signing_key() == own  # a sensitive option: its _cmd form works (its line end dropped)

    monkeypatch.delenv("AIRFLOW__CAMPAIGN_RUNS__UNSUBSCRIBE_SECRET_CMD")
    monkeypatch.setenv("AIRFLOW__API__SECRET_KEY", "")
    with pytest.raises(UnsubscribeError, match=r"set \[campaign_runs\] unsubscribe_secret"):
        unsubscribe_token("bob@example.com", "c1")


def test_the_link_and_the_mailto_address_follow_the_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    assert unsubscribe_url("u1.x.y") == "http://airflow.example.com/campaign-runs/unsubscribe/u1.x.y"  # [api]
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__BASE_URL", "https://mail.example.org/airflow/")
    assert unsubscribe_url("u1.x.y") == "https://mail.example.org/airflow/campaign-runs/unsubscribe/u1.x.y"

    assert mailto_address() == "campaign-runs@example.com"  # [smtp] smtp_mail_from
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__UNSUBSCRIBE_MAILTO", "Unsubscribe <leave+list@example.org>")
    assert mailto_address() == "leave+list@example.org"
    assert unsubscribe_mailto("u1.x.y", "leave+list@example.org") == (
        "mailto:leave+list@example.org?subject=unsubscribe%20u1.x.y"
    )
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__UNSUBSCRIBE_MAILTO", "not an address")
    monkeypatch.setenv("AIRFLOW__SMTP__SMTP_MAIL_FROM", "")
    assert mailto_address("Shop <shop@example.com>") == "shop@example.com"

    links = UnsubscribeLinks.from_config()
    url, uris = links.for_recipient("c1", "bob@example.com")
    token = unsubscribe_token("bob@example.com", "c1")
    assert url == f"https://mail.example.org/airflow/campaign-runs/unsubscribe/{token}"
    assert uris == [url]  # no mailto address anywhere: the link alone


@pytest.mark.parametrize("base", ["https://a.example.com/x y", "https://a.example.com/\r\nBcc: x", "https://ä.example"])
def test_a_base_url_that_cannot_be_a_header_uri_is_refused(monkeypatch: pytest.MonkeyPatch, base: str) -> None:
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__BASE_URL", base)
    with pytest.raises(UnsubscribeError, match="not a plain ASCII URL"):
        UnsubscribeLinks.from_config()
