"""Where campaign files live: the folder New and Configure write, and the campaigns shipped in the DAG bundle.

``[campaign_runs] definitions_folder`` is the folder the plugin writes (by default the shipped one,
``<dags_folder>/campaigns``). When it is another folder (``make run`` keeps a local instance's campaigns in
``.airflow/campaigns``), the shipped folder's loader loads both, and the shipped campaigns are read-only here: the
plugin writes nothing but their "not before" instant (in the hidden ``.campaign-runs`` folder beside them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from campaign_runs.adapters import definitions as files
from campaign_runs.domain import ConflictError
from campaign_runs.factory.loader import DEFINED_TWICE
from campaign_runs.settings import get_settings

if TYPE_CHECKING:
    from pathlib import Path

SHIPPED_WHY = (
    "{dag_id} is one of the campaigns shipped in the DAGs folder, which this instance does not write: New and "
    "Configure write its own campaigns folder ([campaign_runs] definitions_folder). Commit the YAML below to change "
    "it in the DAG bundle, or give it another id and create it (New, `airflow campaigns create`) to have a campaign "
    "of your own."
)


def written() -> Path:
    """The campaigns folder New and Configure write."""
    return files.definitions_folder(get_settings().definitions_folder)


def every() -> list[Path]:
    """Every campaigns folder Airflow loads: the written one first, then the shipped one when it is another."""
    return files.campaign_folders(written())


def home_of(dag_id: str) -> Path | None:
    """The folder of campaign ``dag_id``'s file, None when none has it; ``ConflictError`` when two folders do."""
    found = files.holders(every(), dag_id)
    if len(found) > 1:
        raise ConflictError(defined_twice(dag_id))
    return found[0] if found else None


def defined_twice(dag_id: str) -> str:
    """Why a campaign whose id is in both folders is loaded from neither (no server path)."""
    message = DEFINED_TWICE.format(dag_id=dag_id, name=f"{dag_id}{files.SUFFIX}")
    return f"{message[0].upper()}{message[1:]}."


def is_shipped(folder: Path) -> bool:
    """Whether ``folder`` is a campaigns folder the plugin does not write (the shipped one, under ``make run``)."""
    return folder != written()
