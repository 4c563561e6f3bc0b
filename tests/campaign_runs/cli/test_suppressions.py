"""``airflow campaigns suppressions ...`` through Airflow's own CLI parser, in this process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_runs.factory.suppression import open_suppressions

from tests.support.cli_runner import run_in_process


@pytest.fixture
def sink_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private ``[campaign_runs] sink_dir``: the list is its ``suppressions.sqlite``."""
    path = tmp_path / "sinks"
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__SINK_DIR", str(path))
    yield path


def listed(sink_dir: Path) -> list[tuple[str, str, str, str, str]]:
    """Every entry, read straight from the list."""
    with open_suppressions(sink_dir=sink_dir) as suppressions:
        return [(s.channel, s.address, s.reason, s.source, s.actor) for s in suppressions.every()]


def cli(*args: str) -> tuple[int, str, str]:
    """``airflow campaigns suppressions ARGS``: exit code, stdout, stderr."""
    return run_in_process(["campaigns", "suppressions", *args])


def test_add_list_remove_import_export(sink_dir: Path, tmp_path: Path) -> None:
    assert cli("add", "email", "Eve@Example.com", "--reason", "complained", "--user", "admin") == (
        0,
        "Eve@Example.com is now suppressed on email.\n",
        "",
    )
    assert cli("add", "email", "eve@example.com", "--user", "admin")[1] == (
        "eve@example.com was already suppressed (its first entry is kept) on email.\n"
    )
    source = tmp_path / "list.csv"
    source.write_text("channel,address,reason\nsms,+33 6 12 34 56 78,bounced\npush,token-1,\n")
    assert cli("import", "--file", str(source), "--user", "admin") == (
        0,
        f"Imported {source}: 2 added, 0 already on the list.\n",
        "",
    )
    assert listed(sink_dir) == [
        ("email", "eve@example.com", "complained", "cli", "admin"),
        ("sms", "+33612345678", "bounced", "cli import list.csv", "admin"),
        ("push", "token-1", "manual", "cli import list.csv", "admin"),
    ]

    code, out, err = cli("list", "--limit", "2", "--user", "admin", "-o", "json")
    assert (code, err) == (0, "More entries: --after sms:+33612345678\n")
    assert [(row["channel"], row["address"]) for row in json.loads(out)] == [
        ("email", "eve@example.com"),
        ("sms", "+33612345678"),
    ]
    code, out, err = cli("list", "--after", "sms:+33612345678", "--user", "admin", "-o", "json")
    assert (code, [row["address"] for row in json.loads(out)], err) == (0, ["token-1"], "")

    code, out, _ = cli("export", "--user", "admin")
    assert code == 0 and out.splitlines()[0] == "channel,address,reason,source,actor,created_at"
    assert [line.rsplit(",", 1)[0] for line in out.splitlines()[1:]] == [
        "email,eve@example.com,complained,cli,admin",
        "sms,+33612345678,bounced,cli import list.csv,admin",
        "push,token-1,manual,cli import list.csv,admin",
    ]
    target = tmp_path / "out.csv"
    assert cli("export", "--file", str(target), "--user", "admin") == (
        0,
        f"Exported the suppression list to {target}.\n",
        "",
    )
    assert target.read_bytes().decode() == out  # the same CSV, CRLF line ends

    assert cli("remove", "sms", "+33612345678", "--user", "admin")[0] == 0
    assert [row[1] for row in listed(sink_dir)] == ["eve@example.com", "token-1"]


def test_refusals_are_one_line_and_change_nothing(sink_dir: Path, tmp_path: Path) -> None:
    cli("add", "email", "kept@example.com", "--user", "admin")
    good = tmp_path / "good.csv"
    good.write_text("channel,address,reason\nemail,new@example.com,manual\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("channel,address,reason\nemail,new@example.com,manual\nemail,broken,manual\n")
    large = tmp_path / "large.csv"
    large.write_bytes(b"x" * (5 * 1024 * 1024 + 1))
    refusal = "Error: Only work-list administrators may manage the suppression list; 'alice' is not one.\n"
    for args, message in (
        (("list", "--user", "alice"), refusal),
        (("add", "email", "new@example.com", "--user", "alice"), refusal),
        (("remove", "email", "kept@example.com", "--user", "alice"), refusal),
        (("import", "--file", str(good), "--user", "alice"), refusal),
        (("export", "--user", "alice"), refusal),
        (("add", "email", "new@example.com", "--user", "nobody"), "Error: User 'nobody' does not exist.\n"),
        (
            ("add", "email", "not an address", "--user", "admin"),
            "Error: 'not an address' is not a email address (invalid address); nothing was added.\n",
        ),
        (
            ("import", "--file", str(bad), "--user", "admin"),
            "Error: Line 3: 'broken' is not a email address (invalid address); nothing was imported.\n",
        ),
        (
            ("import", "--file", str(large), "--user", "admin"),
            f"Error: {large} is over 5242880 bytes; nothing was imported (split it).\n",
        ),
        (("import", "--file", str(tmp_path / "missing.csv"), "--user", "admin"), "Error: cannot read"),
        (
            ("remove", "email", "new@example.com", "--user", "admin"),
            "Error: 'new@example.com' is not on the email suppression list; nothing was removed.\n",
        ),
        (("list", "--limit", "0", "--user", "admin"), "Error: The page size is 0; it must be between 1 and 1000.\n"),
    ):
        code, out, err = cli(*args)
        assert (code, out) == (1, ""), args
        assert err.startswith(message) if message.endswith("read") else err == message, (args, err)
    code, _, err = cli("add", "fax", "x", "--user", "admin")
    assert code == 2 and "invalid choice: 'fax'" in err  # argparse: a usage error
    code, _, err = cli("add", "email", "x@example.com", "--reason", "spam", "--user", "admin")
    assert code == 2 and "invalid choice: 'spam'" in err
    assert listed(sink_dir) == [("email", "kept@example.com", "manual", "cli", "admin")]
