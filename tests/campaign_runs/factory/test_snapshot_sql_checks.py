"""The address checks of ``snapshot_sql`` run by PostgreSQL on thousands of hostile values, against Python's.

Each value is a recipient's email and push token; the skip reasons the database writes (its marks decided by
Python, as ``SnapshotStore`` does) must be exactly ``SnapshotPlan.row``'s, consent given or not.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from campaign_runs.factory.hygiene import SnapshotPlan, decided
from campaign_runs.factory.snapshot_sql import Column, Select

from tests.support.ledger_db import connect_args, ledger_database

PLAN = SnapshotPlan(columns={"id": "person"}, channels=("email", "push"), consent_column="ok")
COLUMNS = [Column("person", "text", "c1"), Column("email", "text", "c2"), Column("push_token", "text", "c3")]
COLUMNS.append(Column("ok", "bool", "c4"))


def values(seed: int) -> list[str]:
    """Random short strings over an alphabet of every kind of character the checks treat apart, and edge cases."""
    rng = random.Random(seed)
    alphabet = "aZ09.@-_ \t\"<>(),;:[]\\+'!#x~`{}|^=?/*%&$\x01\x1f\x7fé\u00a0\u3000\u200b"
    found = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 14))) for _ in range(6000)]

    def part(letters: str, longest: int) -> str:
        return "".join(rng.choice(letters) for _ in range(rng.randrange(1, longest)))

    # shaped like addresses: each character in a local part or a label that is otherwise valid
    domain = "aZ09-_." + rng.choice(alphabet)
    found += [f"{part(alphabet, 5)}@{part(domain, 6)}.{part(domain, 4)}" for _ in range(6000)]
    found += [f"{'a' * rng.randrange(60, 70)}@{'b' * rng.randrange(60, 66)}.{'c' * rng.randrange(1, 4)}"] * 40
    found += ["x" * 4096, "x" * 4097, "é" * 4097, "a@b.org", "A.b+c@d-e.f_g.org", "a@b.c.", "é@b.org", "a@é.org"]
    return found


@pytest.fixture(scope="module")
def database() -> Iterator[dict[str, Any]]:
    """A PostgreSQL database to run the checks in."""
    with ledger_database("snapshot_checks") as name:
        yield connect_args(name)


@pytest.mark.parametrize("seed", [5, 6])
def test_the_databases_checks_are_pythons(database: dict[str, Any], seed: int) -> None:
    """Skip reasons of email and push, for every value, with and without consent: the same both ways."""
    import psycopg

    rng = random.Random(seed)
    tokens = values(seed + 1)
    rows = [(f"p{n}", value, rng.choice(tokens), n % 3 != 0) for n, value in enumerate(values(seed))]
    select = Select(PLAN, COLUMNS)
    query = "SELECT person, email, push_token, ok FROM hostile ORDER BY n"
    with psycopg.connect(**database) as connection:
        connection.execute("CREATE TEMPORARY TABLE hostile (n int, person text, email text, push_token text, ok bool)")
        with connection.cursor().copy("COPY hostile FROM STDIN") as copy:
            for n, row in enumerate(rows):
                copy.write_row((n, *row))
        found = connection.execute(select.sql(query), select.params).fetchall()
    assert len(found) == len(rows)
    for row, (_, _, email, _, push, skip_email, _, skip_push, fields) in zip(rows, found, strict=True):
        expected = PLAN.row(0, dict(zip(("person", "email", "push_token", "ok"), row, strict=True)))
        assert (email, push, fields) == (*expected[2:5:2], expected[8]), row
        assert (decided("email", email, skip_email), decided("push", push, skip_push)) == expected[5:8:2], row
