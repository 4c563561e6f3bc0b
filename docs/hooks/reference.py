"""MkDocs hook: the reference pages, generated at build time from the code that they describe.

A page holds a marker ``<!-- generated: NAME -->``; this hook replaces it with the Markdown that
``docs/hooks/generators.py`` builds from the JSON Schema, the CLI's argparse parsers, the OpenAPI document,
the provider info, the migrations and the benchmark result files. Files kept at the repository's root
(``dags/README.md``, ``CHANGELOG.md``, ``SECURITY.md``) are added as pages, so they are written once.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MARKER = re.compile(r"<!-- generated: ([a-z_]+) -->")
# Root files shown as pages: repository path -> page path inside docs/.
INCLUDED = {
    "dags/README.md": "reference/campaign-files.md",
    "CHANGELOG.md": "changelog.md",
    "SECURITY.md": "explanation/security.md",
}
_created_home: list[str] = []


def _generators() -> Any:
    """docs/hooks/generators.py (a hook is loaded from its path, so its folder is put on sys.path first)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import generators

    return generators


def on_config(config: Any) -> Any:
    """The version every page shows is the package's; Airflow, imported by the generators, gets a home of its own."""
    if "AIRFLOW_HOME" not in os.environ:
        home = tempfile.mkdtemp(prefix="campaign-runs-docs-")
        _created_home.append(home)
        os.environ["AIRFLOW_HOME"] = home
    from campaign_runs import __version__

    config.extra["version"] = __version__
    return config


def on_files(files: Files, config: Any) -> Files:
    """Add the root files as pages (their links are their own section anchors)."""
    for source, page in INCLUDED.items():
        text = (REPO / source).read_text(encoding="utf-8")
        note = f"<!-- This page is {source} of the repository, included at build time. -->\n\n"
        files.append(File.generated(config, page, content=note + text))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Replace each marker with its generated Markdown."""
    generators = _generators()

    def generate(match: re.Match[str]) -> str:
        name = match.group(1)
        function = getattr(generators, f"{name}_markdown", None)
        if function is None:
            raise ValueError(f"{page.file.src_uri}: no generator named {name!r}")
        return str(function())

    return MARKER.sub(generate, markdown)


def on_shutdown() -> None:
    """Remove the Airflow home this hook created."""
    while _created_home:
        shutil.rmtree(_created_home.pop(), ignore_errors=True)
