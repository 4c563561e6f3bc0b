"""The order of the test modules (``make test``: ``-n 2 --dist loadfile --no-loadscope-reorder``).

Each module is one unit of ``--dist loadfile``. The units run in three phases:

1. the modules with an in-process test (one not marked ``slow`` or ``browser``), the most tests first (xdist's
   own order; ``test_cli``, ``test_dev`` and ``test_dag_test_runs`` have some ``slow`` tests too, as before);
2. the modules on the shared Airflow stack (``tests.support.shared_stack``), one after the other on a worker,
   so the stack starts about once per worker;
3. the modules whose every test starts Airflow processes, the longest first (``LONGEST_FIRST``), so the short ones
   even out the end.

Phase 3's dag-processors parse other DAG folders and write those DAGs into the worker's metadata DB: the
in-process tests, which count on the test DAGs alone, run before them. The workers' collection carries this
order and ``--no-loadscope-reorder`` makes the controller hand the modules out in it, so a worker never gets a
module of an earlier phase after one of a later phase.
"""

from __future__ import annotations

import pytest

from tests.support.shared_stack import uses_shared_stack

PROCESS_MARKS = {"slow", "browser"}
# Phase 3's longest modules (file names, wherever they live), longest first as measured with --durations=0; the
# others follow by their number of tests. A name missing here costs only some balance at the end of the run.
LONGEST_FIRST = (
    "test_schedule_e2e.py",
    "test_celery_topology.py",
    "test_resend_e2e.py",
    "test_stop_e2e.py",
    "test_auth_managers.py",  # tests/campaign_runs/cli/: the others of that name run in-process
)


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _phase(items: list[pytest.Item]) -> int:
    """The module's phase, counted from 0: in-process, on the shared stack, starting Airflow processes of its own."""
    if any(uses_shared_stack(item) for item in items):
        return 1
    if all(PROCESS_MARKS & {mark.name for mark in item.iter_markers()} for item in items):
        return 2
    return 0


def _key(module: str, items: list[pytest.Item]) -> tuple[int, int, int]:
    """Phase; in the last phase the listed longest modules first; then the most tests first."""
    phase = _phase(items)
    name = module.rsplit("/", 1)[-1]
    rank = LONGEST_FIRST.index(name) if phase == 2 and name in LONGEST_FIRST else len(LONGEST_FIRST)
    return phase, rank, -len(items)


@pytest.hookimpl(trylast=True)  # after ``-m`` and ``-k`` deselected what they deselect
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Whole modules, by ``_key``; a stable sort keeps the collection order among equals."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(_module(item), []).append(item)
    order = sorted(modules, key=lambda name: _key(name, modules[name]))
    items[:] = [item for name in order for item in modules[name]]
