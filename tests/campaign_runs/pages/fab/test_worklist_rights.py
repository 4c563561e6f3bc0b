"""The work list offers each row's actions by the pages' one rule (``pages.rights``), asked once a method.

A role that may edit DAG runs but not create them stops and skips, never restarts; a viewer's list offers nothing;
the statements a work list costs do not grow with its rows (the rights are asked for every campaign at once).
"""

# ruff: noqa: F811  (pytest fixtures imported from test_campaigns)
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from campaign_runs.tables import worklist_entry
from sqlalchemy import delete
from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import BASE, stopped_run, users  # noqa: F401  (fixture)
from tests.campaign_runs.pages.fab.test_queries import BULK_DAG_PREFIX, bulk_campaigns, copy_rows, page_queries, row_of  # noqa: F401


def row_forms(page: Any, run_id: str) -> list[str]:
    """The action forms of the work list's row of ``run_id``."""
    row = re.search(rf'<tr data-run-id="{re.escape(run_id)}">(.*?)</tr>', page.text, re.S)
    assert row, page.text[:500]
    return re.findall(r'<form class="cr-action cr-(\w+)"', row.group(1))


def rights_asked(client: TestClient, url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many times one request of ``url`` asks the auth manager about a DAG (its answers unchanged)."""
    from campaign_runs.adapters import auth

    manager = auth.auth_manager()
    asked = 0
    answer = type(manager).is_authorized_dag

    def counted(**kwargs: Any) -> bool:
        nonlocal asked
        asked += 1
        return bool(answer(manager, **kwargs))

    with monkeypatch.context() as patch:
        patch.setattr(manager, "is_authorized_dag", counted)
        assert client.get(url).status_code == 200
    return asked


def test_each_row_offers_what_the_user_may_do(
    users: Callable[[str], TestClient], make_run: Callable[..., str], smtp_server: Any
) -> None:
    editor, admin = users("editor"), users("admin")
    run_id = stopped_run(make_run, editor)  # on the editor's work list

    assert row_forms(editor.get(f"{BASE}/worklist"), run_id) == ["skip"]
    assert row_forms(admin.get(f"{BASE}/worklist"), run_id) == ["restart", "skip", "reassign"]


def test_the_work_list_statements_do_not_grow_with_its_rows(
    users: Callable[[str], TestClient],
    make_run: Callable[..., str],
    smtp_server: Any,
    bulk_campaigns: Callable[[int], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.utils.session import create_session

    admin = users("admin")
    run_id = stopped_run(make_run, admin)
    url = f"{BASE}/worklist"
    page_queries(admin, url)  # warm-up
    few, few_asked = page_queries(admin, url), rights_asked(admin, url, monkeypatch)

    bulk_campaigns(60)  # a row on each of 60 more campaigns
    template = row_of(worklist_entry, worklist_entry.c.run_id == run_id)
    copies = [{"dag_id": f"{BULK_DAG_PREFIX}{n:05d}"} for n in range(60)]
    copy_rows(worklist_entry, template, copies, skip=("id",))
    try:
        many, many_asked = page_queries(admin, url), rights_asked(admin, url, monkeypatch)
        shown = admin.get(url).text
    finally:
        with create_session() as session:
            session.execute(delete(worklist_entry).where(worklist_entry.c.dag_id.startswith(BULK_DAG_PREFIX)))

    assert len(re.findall(r'<tr data-run-id="', shown)) == 61
    assert len(re.findall(r'<form class="cr-action cr-restart"', shown)) == 61
    assert many == few, f"{few} statements with one row, {many} with 61"
    assert few > 0 and few_asked > 0  # the statements and the auth manager's answers are counted
    assert many_asked == few_asked, f"the auth manager asked {few_asked} times with one row, {many_asked} with 61"
