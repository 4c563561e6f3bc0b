"""One loader for every campaign: each ``<id>.yaml`` in a folder becomes a DAG; a broken file hides no other."""

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


def definition_files(folder: Path) -> list[Path]:
    """The campaign files of ``folder``: ``*.yaml``, not hidden (editors' and writers' temporary files are)."""
    return sorted(path for path in folder.glob(f"*{SUFFIX}") if not path.name.startswith("."))


def _wanted_dag_id() -> str | None:
    """The one DAG a task process needs (Airflow's parsing context), None when parsing them all."""
    from airflow.sdk import get_parsing_context

    return get_parsing_context().dag_id


def load_campaigns(folder: Path, namespace: dict[str, Any]) -> dict[str, str]:
    """Build the DAG of every campaign file in ``folder`` into ``namespace``; return each broken file's error.

    A file must be named after its campaign (``<id>.yaml``), so a task process parses only its own file.
    """
    wanted = _wanted_dag_id()
    errors: dict[str, str] = {}
    from campaign_runs.factory.factory import build_dag

    for path in definition_files(folder):
        if wanted is not None and path.stem != wanted:
            continue
        try:
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
