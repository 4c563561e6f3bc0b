"""Campaign factory: YAML campaign declarations turned into Airflow DAGs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from campaign_runs.factory.schedule import describe_schedule
from campaign_runs.factory.spec import CampaignSpec, CampaignSpecError, load_spec

if TYPE_CHECKING:
    from airflow.sdk import DAG

__all__ = ["CampaignSpec", "CampaignSpecError", "campaign_dag", "describe_schedule", "load_spec"]


def campaign_dag(loader_file: str) -> DAG:
    """The DAG declared by the YAML file beside ``loader_file``; see ``campaign_runs.factory.factory``."""
    from campaign_runs.factory.factory import campaign_dag as build

    return build(loader_file)
