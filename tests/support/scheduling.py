"""How the test modules are run and spread over xdist workers (``make test``: ``-n 2 --dist loadfile``).

Each module is a unit, as ``--dist loadfile`` makes it, except that the modules on the shared Airflow stack
(``tests.support.shared_stack``) are one unit together: they run one after the other, so the stack starts once.
In an xdist worker the units are ordered longest first (``_rank``); with ``--no-loadscope-reorder`` the
controller hands them out in that order and the short modules even out the end.

The workers tell the controller which modules share the stack in a file each: ``--dist loadgroup`` would carry
it in ``xdist_group`` marks, but pytest 9.2 ignores the node ids pytest-xdist 3.8 rewrites for them
(pytest-xdist issue 1386).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.shared_stack import uses_shared_stack

SHARED_UNIT = "shared-airflow-stack"
UNITS_KEY = "campaign_runs_units"  # workerinput: the folder where workers write the modules of SHARED_UNIT


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _rank(name: str, items: list[pytest.Item]) -> int:
    """Longest work first: the shared stack's modules, modules that start Airflow, the long static checks, the rest."""
    if name == SHARED_UNIT:
        return 0
    marks = {mark.name for item in items for mark in item.iter_markers()}
    return 1 if marks & {"slow", "browser"} else 2 if marks & {"sweep", "static"} else 3


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The modules on the shared stack one after the other (where the first of them was); in a worker, by rank."""
    units: dict[str, list[pytest.Item]] = {}
    shared = {_module(item.nodeid) for item in items if uses_shared_stack(item)}
    for item in items:
        module = _module(item.nodeid)
        units.setdefault(SHARED_UNIT if module in shared else module, []).append(item)
    order = list(units)
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None:
        order.sort(key=lambda name: _rank(name, units[name]))
        if UNITS_KEY in workerinput:
            path = Path(workerinput[UNITS_KEY]) / f"{workerinput['workerid']}.json"
            path.write_text(json.dumps(sorted(shared)))
    items[:] = [item for name in order for item in units[name]]


class SharedUnitScheduling:
    """Factory of ``--dist loadfile``'s scheduler, with the modules the workers name as one unit."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[UNITS_KEY] = str(self.folder)

    @pytest.hookimpl
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getoption("dist") != "loadfile":
            return None
        from xdist.scheduler import LoadFileScheduling

        folder = self.folder

        class Scheduling(LoadFileScheduling):  # type: ignore[misc]
            shared: set[str] | None = None

            def _split_scope(self, nodeid: str) -> str:
                if self.shared is None:  # first called once every worker has collected (and written its file)
                    self.shared = {m for path in folder.glob("*.json") for m in json.loads(path.read_text())}
                module = _module(nodeid)
                return SHARED_UNIT if module in self.shared else module

        return Scheduling(config, log)


def pytest_configure(config: pytest.Config) -> None:
    """In the xdist controller: the scheduler above, and the folder its workers write to."""
    if hasattr(config, "workerinput") or not config.pluginmanager.hasplugin("xdist"):
        return
    if not config.getoption("numprocesses", None):
        return
    folder = Path(tempfile.mkdtemp(prefix="campaign-runs-units-"))
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    config.pluginmanager.register(SharedUnitScheduling(folder), "campaign-runs-units")
