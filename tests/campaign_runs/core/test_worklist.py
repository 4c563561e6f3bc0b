"""Work lists (core.worklist): entries a stop creates, a skip resolves and an admin reassigns."""

from __future__ import annotations

import pytest
from campaign_runs import core
from campaign_runs.domain import NotFoundError


def test_skip_resolves_the_work_list_entry(make_run) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="running")
    core.stop_run("cr_campaign", run_id, actor="alice", note="stop")
    core.finish_stopping_runs()
    assert [e.run_id for e in core.worklist("alice")] == [run_id]
    core.skip_run("cr_campaign", run_id, actor="alice", note="drop it")
    assert core.worklist("alice") == []
    [resolved] = core.worklist("alice", include_resolved=True)
    assert (resolved.resolution, resolved.resolved_at is not None) == ("skipped", True)


def test_reassign_moves_the_entry(make_run) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run("cr_campaign", state="running")
    core.stop_run("cr_campaign", run_id, actor="alice", note="stop")
    core.finish_stopping_runs()
    core.reassign("cr_campaign", run_id, to_user="bob", actor="admin")
    assert core.worklist("alice") == []
    assert [e.run_id for e in core.worklist("bob")] == [run_id]
    with pytest.raises(NotFoundError, match="'ghost' does not exist"):
        core.reassign("cr_campaign", run_id, to_user="ghost", actor="admin")
