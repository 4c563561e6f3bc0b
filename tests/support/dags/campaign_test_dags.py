"""Campaign DAGs used by the plugin's tests (not the shipped campaigns in dags/)."""

from __future__ import annotations

import time

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

START = pendulum.datetime(2026, 1, 1, tz="UTC")
OWNER_ARGS = {"owner": "growth"}
OWNER_LINKS = {"growth": "mailto:growth@example.com"}

with DAG(
    "cr_campaign",
    description="Weekly test newsletter",
    schedule=CronTriggerTimetable("0 9 * * MON", timezone="Europe/Paris"),
    start_date=START,
    catchup=False,
    tags=["campaign", "channel:email", "channel:sms", "audience:testers"],
    default_args=OWNER_ARGS,
    owner_links=OWNER_LINKS,
    doc_md="Test campaign: **testers** by email and SMS.",
    params={"audience_size": 100},
):
    build = EmptyOperator(task_id="build_audience")
    summary = EmptyOperator(task_id="summarise")
    build >> [EmptyOperator(task_id="send_email"), EmptyOperator(task_id="send_sms")] >> summary

with DAG(
    "cr_depends",
    description="Campaign whose tasks depend on the past",
    schedule="@daily",
    start_date=START,
    catchup=False,
    tags=["campaign", "channel:email"],
    default_args={**OWNER_ARGS, "depends_on_past": True},
):
    EmptyOperator(task_id="send_email")

with DAG("cr_plain", schedule=None, start_date=START, tags=["etl"]):
    EmptyOperator(task_id="noop")


@task
def cooperative_send(seconds: float = 300.0) -> int:
    """Sends in small batches and ends as soon as its run is no longer running."""
    context = get_current_context()
    ti = context["ti"]
    batches = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ti.get_dagrun_state(ti.dag_id, ti.run_id) != "running":
            return batches
        time.sleep(0.2)
        batches += 1
    return batches


@task
def stubborn_send(seconds: float = 300.0) -> None:
    """Never checks its run: only Airflow's kill ends it."""
    time.sleep(seconds)


with DAG(
    "cr_slow",
    description="Campaign whose sending task runs for minutes",
    schedule=None,
    start_date=START,
    tags=["campaign", "channel:email"],
    default_args=OWNER_ARGS,
):
    cooperative_send.override(task_id="send_email")()

with DAG(
    "cr_stubborn",
    description="Campaign whose task ignores stops",
    schedule=None,
    start_date=START,
    tags=["campaign", "channel:email"],
    default_args=OWNER_ARGS,
):
    stubborn_send.override(task_id="send_email")()
