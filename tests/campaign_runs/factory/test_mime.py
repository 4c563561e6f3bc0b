"""The compiled campaign email: no setting or value can add a header."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

import pytest
from campaign_runs.factory.mime import MessageTemplate, list_unsubscribe, smtp_path


def template(**changes: str) -> MessageTemplate:
    values = {"mail_from": "shop@example.com", "from_name": "Shop", "reply_to": "help@example.com"} | changes
    return MessageTemplate(subject="Hi $first_name", body="Hello", headers={"X-Campaign-Id": "c1"}, **values)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("from_name", "Shop\r\nBcc: all@example.com"),
        ("from_name", "Shop\nBcc: all@example.com"),
        ("reply_to", "help@example.com\r\nBcc: all@example.com"),
        ("mail_from", "shop@example.com\nBcc: all@example.com"),
    ],
)
def test_a_control_character_in_a_constant_header_is_refused_when_building(field: str, value: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        template(**{field: value})


def test_recipient_values_never_start_a_header() -> None:
    message = template().render("bob@example.com", {"first_name": "Bob\r\nBcc: all@example.com"}, {})
    parsed = message_from_bytes(message, policy=default)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Hi Bob Bcc: all@example.com"
    assert parsed["From"] == "Shop <shop@example.com>"


def test_an_address_with_a_line_break_never_becomes_a_plain_smtp_path() -> None:
    assert smtp_path("bob@example.com") == "<bob@example.com>"
    assert "\n" not in smtp_path("bob@example.com\n")


def test_the_one_click_headers_are_exactly_these() -> None:
    one_click = MessageTemplate(
        mail_from="shop@example.com",
        from_name="",
        reply_to="",
        subject="Hi",
        body="Leave: $unsubscribe_url",
        headers={"X-Campaign-Id": "c1"},
        one_click=True,
    )
    uris = [
        "https://shop.example/campaign-runs/unsubscribe/u1.a.b",
        "mailto:shop@example.com?subject=unsubscribe%20u1.a.b",
    ]
    raw = one_click.render("bob@example.com", {"unsubscribe_url": uris[0]}, {"X-Campaign-Recipient": "r1"}, uris)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    message_id = next(line for line in lines if line.startswith("Message-ID: "))
    date = next(line for line in lines if line.startswith("Date: "))
    assert lines == [
        "From: shop@example.com",
        "X-Campaign-Id: c1",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "To: bob@example.com",
        "Subject: Hi",
        date,
        message_id,
        "X-Campaign-Recipient: r1",
        f"List-Unsubscribe: <{uris[0]}>, <{uris[1]}>",
        "Content-Transfer-Encoding: 7bit",
    ]
    assert body == f"Leave: {uris[0]}\r\n".encode()
    assert b"List-Unsubscribe" not in template().render("bob@example.com", {}, {})  # only when asked for


def test_a_long_list_unsubscribe_header_is_folded_between_its_uris() -> None:
    uris = ["https://shop.example/" + "a" * 600, "mailto:shop@example.com?subject=" + "b" * 600]
    header = list_unsubscribe(uris)
    assert header == f"List-Unsubscribe: <{uris[0]}>,\r\n <{uris[1]}>\r\n"
    assert all(len(line) <= 998 for line in header.split("\r\n"))
    assert list_unsubscribe(["https://x.example/\r\nBcc: all@example.com"]) == (
        "List-Unsubscribe: <https://x.example/ Bcc: all@example.com>\r\n"
    )
    parsed = message_from_bytes(template().render("bob@example.com", {}, {}, uris), policy=default)
    assert parsed["List-Unsubscribe"] == f"<{uris[0]}>, <{uris[1]}>"


def test_every_message_carries_an_rfc_5322_date_of_the_second_it_was_rendered() -> None:
    """``Date:`` in UTC (``+0000``, never ``-0000`` "zone unknown"), read back as the time the message was made."""
    from datetime import UTC, datetime

    compiled = template()
    moments = iter([1_796_664_344.4, 1_796_664_344.9, 1_796_664_401.0])
    compiled.clock = lambda: next(moments)
    dates = [message_from_bytes(compiled.render("bob@example.com", {}, {}), policy=default)["Date"] for _ in range(3)]
    assert [str(date) for date in dates] == [
        "Mon, 07 Dec 2026 17:25:44 +0000",
        "Mon, 07 Dec 2026 17:25:44 +0000",
        "Mon, 07 Dec 2026 17:26:41 +0000",
    ]
    assert dates[2].datetime == datetime(2026, 12, 7, 17, 26, 41, tzinfo=UTC)
