"""The core imports in one direction: no module reaches itself again, even through an import inside a function."""

from __future__ import annotations

import grimp


def cycles_of(package: str, within: str) -> list[list[str]]:
    """Every import cycle among the modules under ``within`` (deferred imports included), as module lists."""
    graph = grimp.build_graph(package, cache_dir=None)
    modules = sorted(module for module in graph.modules if module.startswith(within + "."))
    found: list[list[str]] = []
    for module in modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if not imported.startswith(within + "."):
                continue
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain and (cycle := [module, *chain]) and min(cycle) == module:
                found.append(cycle)
    return found


def test_the_core_has_no_import_cycle() -> None:
    """``actions -> housekeeping -> guard -> actions`` was one: finishing stops now lives in ``core.stops``."""
    assert cycles_of("campaign_runs", "campaign_runs.core") == []


def test_the_check_finds_a_cycle_hidden_in_a_function(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A deferred import closing a circle is found: the check above can fail."""
    package = tmp_path / "circled"
    (package / "core").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "core" / "__init__.py").write_text("")
    (package / "core" / "a.py").write_text("from circled.core import b\n")
    (package / "core" / "b.py").write_text("def later():\n    from circled.core import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cycles_of("circled", "circled.core") == [["circled.core.a", "circled.core.b", "circled.core.a"]]
