"""The suppression list in the core: administrators only, every bad input refused with nothing changed, unsubscribe."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_runs.core import suppressions as core
from campaign_runs.domain import InvalidOptionError, NotFoundError, NotPermittedError
from campaign_runs.factory.suppression import open_suppressions
from campaign_runs.factory.unsubscribe import unsubscribe_token


@pytest.fixture
def sink_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private ``[campaign_runs] sink_dir``: the list is its ``suppressions.sqlite``."""
    path = tmp_path / "sinks"
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__SINK_DIR", str(path))
    yield path


def listed(sink_dir: Path) -> list[tuple[str, str, str, str, str]]:
    """Every entry, read straight from the list: (channel, address, reason, source, actor)."""
    with open_suppressions(sink_dir=sink_dir) as suppressions:
        return [(s.channel, s.address, s.reason, s.source, s.actor) for s in suppressions.every()]


def test_an_administrator_adds_lists_and_removes(sink_dir: Path) -> None:
    assert core.add_suppression("admin", "email", " Bob@Example.com ", reason="complained", source="cli") is True
    assert core.add_suppression("admin", "email", "bob@example.com", reason="manual") is False  # the first is kept
    assert core.add_suppression("admin", "sms", "+33 6 12 34 56 78") is True
    assert listed(sink_dir) == [
        ("email", "bob@example.com", "complained", "cli", "admin"),
        ("sms", "+33612345678", "manual", "manual", "admin"),
    ]
    page = core.list_suppressions("admin", channel="sms")
    assert [(e.channel, e.address) for e in page.entries] == [("sms", "+33612345678")]
    assert (page.next_after, page.counts) == (None, {"email": 1, "sms": 1})

    core.remove_suppression("admin", "email", "BOB@example.com")
    assert listed(sink_dir) == [("sms", "+33612345678", "manual", "manual", "admin")]
    with pytest.raises(NotFoundError, match="is not on the email suppression list; nothing was removed"):
        core.remove_suppression("admin", "email", "bob@example.com")


def test_pages_walk_every_channel_once(sink_dir: Path) -> None:
    for number in range(5):
        core.add_suppression("admin", "email", f"user{number}@example.com")
    core.add_suppression("admin", "push", "device-token-1")
    core.add_suppression("admin", "sms", "+4915112345678")
    seen, after, pages = [], "", 0
    while True:
        page = core.list_suppressions("admin", after=after, limit=3)
        seen += [(e.channel, e.address) for e in page.entries]
        pages += 1
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == [
        *(("email", f"user{n}@example.com") for n in range(5)),
        ("sms", "+4915112345678"),
        ("push", "device-token-1"),
    ]
    assert pages == 3
    with pytest.raises(InvalidOptionError, match="is not one this list gave"):
        core.list_suppressions("admin", after="fax:x")
    with pytest.raises(InvalidOptionError, match="between 1 and 1000"):
        core.list_suppressions("admin", limit=0)


@pytest.mark.parametrize(
    ("channel", "address", "reason", "message"),
    [
        ("fax", "bob@example.com", "manual", "Unknown channel 'fax'"),
        ("email", "bob@example.com", "annoyed", "unknown reason 'annoyed'"),
        ("email", "not an address", "manual", "'not an address' is not a email address"),
        ("sms", "0612", "manual", "'0612' is not a sms address"),
        ("email", "", "manual", "is not a email address (no address)"),
    ],
)
def test_a_bad_entry_is_refused_and_nothing_is_added(
    sink_dir: Path, channel: str, address: str, reason: str, message: str
) -> None:
    with pytest.raises(InvalidOptionError, match=re.escape(message)):
        core.add_suppression("admin", channel, address, reason=reason)
    assert listed(sink_dir) == []


def test_only_work_list_administrators_manage_the_list(sink_dir: Path) -> None:
    core.add_suppression("admin", "email", "kept@example.com")
    data = b"channel,address,reason\nemail,new@example.com,manual\n"
    calls = [
        lambda actor: core.list_suppressions(actor),
        lambda actor: core.add_suppression(actor, "email", "new@example.com"),
        lambda actor: core.remove_suppression(actor, "email", "kept@example.com"),
        lambda actor: core.import_suppressions(actor, data),
        lambda actor: core.export_suppressions(actor),
    ]
    for call in calls:
        with pytest.raises(NotPermittedError, match="Only work-list administrators may manage the suppression list"):
            call("alice")
        with pytest.raises(NotFoundError, match="'nobody'"):
            call("nobody")
    assert listed(sink_dir) == [("email", "kept@example.com", "manual", "manual", "admin")]


def test_import_adds_every_row_or_none_and_export_reads_back(sink_dir: Path) -> None:
    good = "channel,address,reason\r\nemail,a@example.com,bounced\r\n\r\nsms,+33612345678,\r\n"
    good += "email,A@example.com,manual\r\n"  # already listed: kept as it was
    assert core.import_suppressions("admin", ("\ufeff" + good).encode(), source="import list.csv") == (2, 1)
    assert listed(sink_dir) == [
        ("email", "a@example.com", "bounced", "import list.csv", "admin"),
        ("sms", "+33612345678", "manual", "import list.csv", "admin"),
    ]
    exported = "".join(core.export_suppressions("admin"))
    rows = exported.split("\r\n")
    assert rows[0] == "channel,address,reason,source,actor,created_at"
    assert [row.rsplit(",", 1)[0] for row in rows[1:-1]] == [
        "email,a@example.com,bounced,import list.csv,admin",
        "sms,+33612345678,manual,import list.csv,admin",
    ]
    assert rows[-1] == ""
    core.remove_suppression("admin", "sms", "+33612345678")
    assert core.import_suppressions("admin", exported.encode()) == (1, 1)  # an export imports again


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"address,channel,reason\nbob@example.com,email,manual\n",
            "Line 1: the header must be channel,address,reason",
        ),
        (b"channel,address,reason\nemail,a@example.com,manual\nemail,b@example.com,spam\n", "Line 3: unknown reason"),
        (b"channel,address,reason\nemail,a@example.com,manual\nfax,1,manual\n", "Line 3: unknown channel 'fax'"),
        (b"channel,address,reason\nemail,a@example.com\n", "Line 2: 2 fields, not channel,address,reason"),
        (b"channel,address,reason\nemail,nope,manual\n", "Line 2: 'nope' is not a email address"),
        (b'channel,address,reason\nemail,"a@example.com,manual\n', "not CSV"),
        (b"channel,address,reason\nemail,\xff@example.com,manual\n", "not UTF-8 text"),
        (b"channel,address,reason\n" + b"email,a@example.com,manual\n" * 200_000, "at most 5242880 bytes"),
        (b"channel,address,reason\n" + b"email,a@example.com,\n" * 100_001, "Line 100002: at most 100000 rows"),
    ],
)
def test_a_bad_import_names_its_line_and_adds_nothing(sink_dir: Path, data: bytes, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        core.import_suppressions("admin", data)
    assert listed(sink_dir) == []


def test_an_export_cell_a_spreadsheet_would_run_is_quoted(sink_dir: Path) -> None:
    core.add_suppression("admin", "email", "x@example.com", source="=HYPERLINK(1)")
    assert (
        "".join(core.export_suppressions("admin"))
        .split("\r\n")[1]
        .startswith("email,x@example.com,manual,'=HYPERLINK(1),admin,")
    )


def test_a_recipients_token_unsubscribes_once_and_a_forged_one_nothing(sink_dir: Path) -> None:
    token = unsubscribe_token("Carol@Example.com", "spring_sale")
    assert core.read_unsubscribe(token) == core.Unsubscribe("email", "Carol@Example.com", "spring_sale")
    assert listed(sink_dir) == []  # reading changes nothing
    core.unsubscribe(token)
    first = listed(sink_dir)
    assert first == [("email", "carol@example.com", "unsubscribed", "spring_sale", "recipient")]
    core.unsubscribe(token)
    assert listed(sink_dir) == first

    forged = unsubscribe_token("dave@example.com", "spring_sale", key=b"not our key")
    for bad in (forged, token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "u1.junk", "x" * 5000):
        with pytest.raises(core.InvalidTokenError):
            core.unsubscribe(bad)
    assert listed(sink_dir) == first
