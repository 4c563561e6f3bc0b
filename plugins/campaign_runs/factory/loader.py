"""One loader for every campaign: each ``<id>.yaml`` in a folder becomes a DAG; a broken file hides no other.

The loader reads its own folder (the campaigns shipped in the DAG bundle) and ``[campaign_runs] definitions_folder``
when that is another folder without a loader of its own: ``make run`` keeps the campaigns New writes there, out of
the clone. An id found in both is loaded from neither, with an error naming both, so no campaign silently replaces
another.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaign_runs.factory.schedule_state import with_schedule_state
from campaign_runs.factory.spec import CampaignSpecError, load_spec

if TYPE_CHECKING:
    from airflow.sdk import DAG

log = logging.getLogger(__name__)
SUFFIX = ".yaml"
LOADER_FILE = "campaigns.py"  # dags/campaigns/campaigns.py: the loader beside the shipped campaigns
DEFINED_TWICE = (
    "campaign {dag_id!r} is defined twice: {name} is both among the campaigns shipped in the DAGs folder and in "
    "[campaign_runs] definitions_folder; neither is loaded until one of the two files is renamed or removed"
)


def definition_files(folder: Path) -> list[Path]:
    """The campaign files of ``folder``: ``*.yaml``, not hidden (editors' and writers' temporary files are)."""
    return sorted(path for path in folder.glob(f"*{SUFFIX}") if not path.name.startswith("."))


def _wanted_dag_id() -> str | None:
    """The one DAG a task process needs (Airflow's parsing context), None when parsing them all."""
    from airflow.sdk import get_parsing_context

    return get_parsing_context().dag_id


def definitions_folder(own: Path) -> Path | None:
    """``[campaign_runs] definitions_folder`` when this loader reads it too: another folder, without its own loader."""
    from airflow.sdk import conf

    configured = str(conf.get("campaign_runs", "definitions_folder", fallback="") or "").strip()
    if not configured:
        return None
    folder = Path(configured).expanduser()
    if folder.resolve() == own.resolve() or (folder / LOADER_FILE).exists():
        return None
    return folder


def campaign_files(folders: list[Path]) -> dict[str, list[Path]]:
    """The campaign files of ``folders`` by campaign id (a file's name), in the order of the folders."""
    found: dict[str, list[Path]] = {}
    for folder in folders:
        for path in definition_files(folder):
            found.setdefault(path.stem, []).append(path)
    return found


def load_campaigns(folder: Path, namespace: dict[str, Any]) -> dict[str, str]:
    """Build the DAG of every campaign file in ``folder`` (and the definitions folder) into ``namespace``.

    Returns each broken file's error. A file must be named after its campaign (``<id>.yaml``), so a task process
    parses only its own file.
    """
    wanted = _wanted_dag_id()
    errors: dict[str, str] = {}
    from campaign_runs.factory.factory import build_dag

    extra = definitions_folder(folder)
    for dag_id, paths in sorted(campaign_files([folder] if extra is None else [folder, extra]).items()):
        if wanted is not None and dag_id != wanted:
            continue
        path = paths[0]
        try:
            if len(paths) > 1:
                raise ValueError(DEFINED_TWICE.format(dag_id=dag_id, name=path.name))
            spec = with_schedule_state(load_spec(path))
            if spec.id != path.stem:
                raise CampaignSpecError(path, "id", f"is {spec.id!r} but the file is named {path.name}")
            dag: DAG = build_dag(spec)
        except Exception as error:  # one campaign's error must not hide the others
            errors[path.name] = str(error)
            log.error("Campaign file %s is not loaded: %s", path.name, error)
            continue
        namespace[f"campaign__{spec.id}"] = dag
    return errors
