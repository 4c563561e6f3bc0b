"""Idempotency-Key bound to its request (core.records.replay): replay, refusal of another request, expiry."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from campaign_runs import core
from campaign_runs.core import records
from campaign_runs.domain import IdempotencyKeyReusedError, utcnow
from campaign_runs.settings import get_settings
from campaign_runs.tables import run_action, run_record
from sqlalchemy import select, update

from tests.campaign_runs.core.helpers import count, dag_run


def _actions() -> list[dict]:  # type: ignore[type-arg]
    from airflow.utils.session import create_session

    with create_session() as session:
        return [dict(r) for r in session.execute(select(run_action).order_by(run_action.c.id)).mappings()]


def test_fingerprint_is_sha256_of_the_canonical_request() -> None:
    canonical = json.dumps(
        {"action": "skip", "dag_id": "d", "run_id": "r", "options": {"note": "Why", "unpause": False}},
        sort_keys=True,
        separators=(",", ":"),
    )
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert records.request_fingerprint("skip", "d", "r", note=" Why\r\n", unpause=False) == expected
    others = {
        records.request_fingerprint("restart", "d", "r", note="Why", unpause=False),
        records.request_fingerprint("skip", "d", "r2", note="Why", unpause=False),
        records.request_fingerprint("skip", "d", "r", note="Why not", unpause=False),
        records.request_fingerprint("skip", "d", "r", note="Why", unpause=True),
    }
    assert expected not in others and len(others) == 4


def test_same_key_same_request_replays_the_first_result(make_run) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="failed")
    first = core.skip_run("cr_campaign", run_id, actor="alice", note="Not worth it", idempotency_key="k-1")
    again = core.skip_run("cr_campaign", run_id, actor="alice", note="  Not worth it\n", idempotency_key="k-1")
    assert (again.action_id, again.replayed, first.replayed) == (first.action_id, True, False)
    [row] = _actions()
    assert row["idempotency_key"] == "k-1"
    assert row["request_fingerprint"] == records.request_fingerprint(
        "skip", "cr_campaign", run_id, note="Not worth it", unpause=False, resend_in_doubt=False
    )


def test_same_key_for_another_run_is_refused_and_changes_nothing(make_run) -> None:  # type: ignore[no-untyped-def]
    first_run = make_run("cr_campaign", state="failed")
    other_run = make_run("cr_campaign", state="failed")
    core.skip_run("cr_campaign", first_run, actor="alice", note="Not worth it", idempotency_key="k-2")
    before = (_actions(), count(run_record))
    with pytest.raises(IdempotencyKeyReusedError, match="'k-2'") as refused:
        core.skip_run("cr_campaign", other_run, actor="alice", note="Not worth it", idempotency_key="k-2")
    assert refused.value.code == "idempotency_key_reused"
    assert (_actions(), count(run_record)) == before
    assert core.get_run("cr_campaign", other_run).status == "failed"
    assert dag_run("cr_campaign", other_run).state == "failed"
    # Another user may use the same key: keys belong to their user.
    assert not core.skip_run("cr_campaign", other_run, actor="bob", note="x", idempotency_key="k-2").replayed


def test_same_key_with_another_note_action_or_option_is_refused(make_run) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="failed")
    core.skip_run("cr_campaign", run_id, actor="alice", note="Not worth it", idempotency_key="k-3")
    for attempt in (
        lambda: core.skip_run("cr_campaign", run_id, actor="alice", note="Other note", idempotency_key="k-3"),
        lambda: core.restart_run("cr_campaign", run_id, actor="alice", note="Not worth it", idempotency_key="k-3"),
    ):
        with pytest.raises(IdempotencyKeyReusedError, match="k-3"):
            attempt()
    assert len(_actions()) == 1

    to_restart = make_run("cr_campaign", state="failed")
    first = core.restart_run("cr_campaign", to_restart, actor="alice", note="Fixed", idempotency_key="k-3b")
    for options in ({"unpause": True}, {"resend_in_doubt": True}):
        with pytest.raises(IdempotencyKeyReusedError, match="k-3b"):
            core.restart_run("cr_campaign", to_restart, actor="alice", note="Fixed", idempotency_key="k-3b", **options)
    again = core.restart_run("cr_campaign", to_restart, actor="alice", note="Fixed", idempotency_key="k-3b")
    assert (again.replayed, again.new_run_id) == (True, first.new_run_id)
    assert len(_actions()) == 2


def test_an_expired_key_starts_a_new_action(make_run) -> None:  # type: ignore[no-untyped-def]
    from airflow.utils.session import create_session

    first_run = make_run("cr_campaign", state="failed")
    second_run = make_run("cr_campaign", state="failed")
    first = core.skip_run("cr_campaign", first_run, actor="alice", note="Old", idempotency_key="k-4")
    hours = get_settings().idempotency_key_ttl_hours
    assert hours == 24
    with create_session() as session:  # the first use is older than the TTL (24 h by default)
        session.execute(
            update(run_action)
            .where(run_action.c.id == first.action_id)
            .values(created_at=utcnow() - timedelta(hours=hours, minutes=1))
        )
    second = core.skip_run("cr_campaign", second_run, actor="alice", note="New", idempotency_key="k-4")
    assert not second.replayed and second.action_id != first.action_id
    assert core.get_run("cr_campaign", second_run).status == "skipped"
    rows = {r["id"]: r for r in _actions()}
    assert rows[first.action_id]["idempotency_key"] is None  # released in the new action's transaction
    assert rows[second.action_id]["idempotency_key"] == "k-4"
    # Within the TTL the new binding holds.
    assert core.skip_run("cr_campaign", second_run, actor="alice", note="New", idempotency_key="k-4").replayed


def test_the_ttl_is_a_setting(make_run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__IDEMPOTENCY_KEY_TTL_HOURS", "0")
    get_settings.cache_clear()
    assert get_settings().idempotency_key_ttl_hours == 0
    first_run = make_run("cr_campaign", state="failed")
    second_run = make_run("cr_campaign", state="failed")
    core.skip_run("cr_campaign", first_run, actor="alice", note="a", idempotency_key="k-5")
    second = core.skip_run("cr_campaign", second_run, actor="alice", note="b", idempotency_key="k-5")
    assert not second.replayed and [r["idempotency_key"] for r in _actions()] == [None, "k-5"]
