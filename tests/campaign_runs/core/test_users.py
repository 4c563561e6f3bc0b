"""My email in the core: an address is checked by the same linear rule as a campaign's owner_email."""

from __future__ import annotations

import pytest
from campaign_runs.core import users
from campaign_runs.domain import InvalidOptionError


@pytest.mark.timeout(20)  # the old pattern backtracked over every dot: a regression hangs instead of answering
@pytest.mark.parametrize("address", ["a@" + "." * 500 + "x", "a@" + "b." * 250 + "!", "alice@example", "a b@c.de"])
def test_a_hostile_or_wrong_address_is_refused(airflow_db: None, address: str) -> None:
    with pytest.raises(InvalidOptionError, match=r"is not an email address|the limit is 512"):
        users.set_email("alice", address)


def test_a_plain_address_is_set(airflow_db: None) -> None:
    assert users.set_email("alice", "alice@example.org").known  # accepted (the auth manager's own address comes first)
