"""Airflow DAGs of every campaign YAML file in this folder: a new campaign needs no Python file.

The Campaign Runs plugin writes these files (New, Configure); see dags/README.md. A broken file is logged
here and listed with its error on the plugin's campaigns page; the other campaigns load as usual.
"""

from __future__ import annotations

from pathlib import Path

from campaign_runs.factory.loader import load_campaigns

LOAD_ERRORS = load_campaigns(Path(__file__).parent, globals())
