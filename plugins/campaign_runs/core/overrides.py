"""Params and conf overrides of Restart and Run now: capped in shape, then checked against the DAG's params."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from campaign_runs.adapters import campaign_control, dags
from campaign_runs.domain import InvalidOptionError, NotFoundError
from campaign_runs.factory.documents import DocumentError, check_shape

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def check_overrides(name: str, overrides: dict[str, Any] | None) -> None:
    """Refuse params or conf overrides nested too deeply or holding too many values, before any other use."""
    try:
        check_shape(overrides or {})
    except DocumentError as error:
        raise InvalidOptionError(f"{name}: {error}") from None


def check_params(dag_id: str, params: dict[str, Any] | None, session: Session) -> None:
    """Restart's params overrides, validated against the campaign's params as Airflow's trigger would."""
    if not params:
        return
    definition = dags.get_definition(dag_id, session)
    if definition is None:
        raise NotFoundError(f"Airflow has not loaded campaign {dag_id!r}, so its params cannot be checked.")
    try:
        campaign_control.validated_conf(definition, params)
    except ValueError as error:
        raise InvalidOptionError(f"params: {error}") from error
