"""A valid campaign definition and every bad input of issue 11, shared by the core, API and CLI tests."""

from __future__ import annotations

from typing import Any


def valid_definition(dag_id: str) -> str:
    """A campaign definition the factory accepts, with id ``dag_id``."""
    return TEMPLATE.replace("ID_HERE", dag_id)


def bad_inputs(dag_id: str) -> list[tuple[tuple[str, str], str, str]]:
    """(change to the valid definition, the field the error names, words of the error)."""
    return [((old.replace("ID_HERE", dag_id), new), field, words) for (old, new), field, words in BAD_TEMPLATE]


TEMPLATE = """\
id: ID_HERE
description: Spring promotion for testers.
owner: alice
owner_email: alice@example.com
schedule:
  cron: "0 9 * * MON"
  timezone: Europe/Paris
  start_date: 2026-01-05
audience:
  segment: testers
  criteria: {plan: gold}
  size: 50
  population: 1000
channels:
  email:
    subject: "Spring for $first_name"
    body: "Hello $first_name, your $plan plan has a gift."
    batch_size: 25
"""
BAD_TEMPLATE: list[Any] = [
    (("id: ID_HERE", "id: [unclosed"), "", "invalid YAML"),
    (("owner: alice", "owner: alice\nowner_phone: 1"), "owner_phone", "unknown field"),
    (("Europe/Paris", "Mars/Olympus"), "schedule.timezone", "unknown timezone"),
    (('"0 9 * * MON"', '"0 0 9 * * MON"'), "schedule.cron", "five-field"),
    (('"0 9 * * MON"', '"61 9 * * MON"'), "schedule.cron", "five-field"),
    (("id: ID_HERE", "id: ../x"), "id", "no path"),
    (("id: ID_HERE", "id: a/b"), "id", "no path"),
    (("$first_name, your", "$first_name, your $voucher"), "channels.email.body", "unknown placeholder $voucher"),
    (('body: "Hello', 'body: "' + "x" * 10_001 + " Hello"), "channels.email.body", "the limit is 10000"),
    (("batch_size: 25", "batch_size: 0"), "channels.email.batch_size", "at least 1"),
    (
        ("batch_size: 25", "batch_size: 25\n    rate_limit_per_second: -2"),
        "channels.email.rate_limit_per_second",
        "more than 0",
    ),
    (
        ("batch_size: 25", "batch_size: 25\n    rate_limit_per_second: 0"),
        "channels.email.rate_limit_per_second",
        "more than 0",
    ),
    # Hostile inputs (issue 20): each is refused, quickly, naming the field or the whole file.
    (("criteria: {plan: gold}", 'criteria: {plan: &a ["x", "x"], tier: *a}'), "", "anchors (&a) are not allowed"),
    (("criteria: {plan: gold}", "criteria: {plan: " + "[" * 20_000 + "]" * 20_000 + "}"), "", "nested deeper"),
    (("criteria: {plan: gold}", "criteria: {plan: {nested: {deep: 1}}}"), "audience.criteria.plan", "a value"),
    (("alice@example.com", "a@" + "." * 20_000 + "x"), "owner_email", "characters long; the limit is 200"),
    (("alice@example.com", "alice@example"), "owner_email", "is not an email address"),
    (
        ("    batch_size: 25", '    from_name: "Shop\\r\\nBcc: all@example.com"\n    batch_size: 25'),
        "channels.email.from_name",
        "control character U+000D",
    ),
    (("id: ID_HERE", 'id: "ID_HERE\\n"'), "id", "is not a campaign id"),
]
