"""The guard, server side: the Stop a channel task asks for when its failures cross the campaign's threshold.

A task process cannot write the metadata DB (Airflow 3's Task SDK), so a tripped channel publishes XCom
``campaign_guard`` (channel, threshold, numbers, note) and holds its run running. Each housekeeping pass
stops those runs here, the plugin's way (``actions.stop_run``: history, Airflow's run note, then the work
list and the stop email when the run reads stopped), with the task's note, acting as the campaign's owner:
the entry goes on the owner's work list and the email to the owner. An owner Airflow knows no address for
(a team name that is no Airflow user) gets it at the campaign's ``owner_email`` (its owner link).

Once per trip: the query skips runs a Stop followed since the trip, the Stop is a compare-and-set on the
run, and its idempotency key names the trip, so passes in several processes stop a run once.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from campaign_runs.adapters import auth, metrics, tasks
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core.actions import stop_run
from campaign_runs.domain import CampaignRunsError, shorten
from campaign_runs.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from campaign_runs.adapters.tasks import GuardTrip
    from campaign_runs.core.dto import ActionResult

log = logging.getLogger(__name__)

MAILTO = "mailto:"
NO_OWNER = "airflow"  # Airflow's own default owner, for a DAG that names none


@dataclass(frozen=True)
class CampaignOwner:
    """The campaign's owner as the acting user of the guard's Stop: the core asks an acting user its name."""

    username: str

    def get_name(self) -> str:
        """The owner's name, as the DAG declares it."""
        return self.username


def owner_of(trip: GuardTrip) -> tuple[str, str | None]:
    """The campaign's owner (the DAG's first owner) and the address of its ``mailto:`` owner link, if any."""
    owners = [name.strip() for name in trip.owners.split(",") if name.strip()]
    link = (trip.owner_link or "").strip()
    address = link[len(MAILTO) :].split("?", 1)[0].strip() if link.lower().startswith(MAILTO) else ""
    return (owners[0] if owners else NO_OWNER), (address or None)


def note_of(trip: GuardTrip) -> str:
    """The Stop's note: the one the task wrote (threshold and numbers), cut to the configured length."""
    written = str(trip.value.get("note") or "").strip()
    channel = str(trip.value.get("channel") or trip.task_id.removeprefix(tasks.CHANNEL_TASK_PREFIX))
    note = written or f"Guard: {channel} crossed its failure threshold"
    return shorten(note, get_settings().note_max_length)


def idempotency_key(trip: GuardTrip) -> str:
    """The Stop's idempotency key: one per trip (task instance and the time it published the trip)."""
    facts = f"{trip.dag_id}\n{trip.run_id}\n{trip.task_id}\n{trip.map_index}\n{trip.pushed_at.isoformat()}"
    return "guard:" + hashlib.sha256(facts.encode()).hexdigest()[:40]


def reach_owner(owner: str, owner_email: str | None, session: Session) -> None:
    """Make the stop email reach the owner: a user Airflow knows keeps their address, anyone else gets the campaign's.

    For a name the auth manager does not know as a user (or a user without any address), ``owner_email``
    becomes the address the name has in Campaign Runs (the second link of ``auth.resolve_email``'s chain),
    in the caller's transaction.
    """
    if not owner_email:
        return
    found = auth.resolve_email(owner, session)
    if found.known and found.address:
        return
    if found.address != owner_email:
        auth.set_user_email(owner, owner_email, session)


@provide_session
def stop_tripped_runs(*, session: Session = NEW_SESSION) -> list[ActionResult]:
    """Stop every running run whose guard tripped, as its campaign's owner; commits once per run.

    Returns the Stops made. A run that cannot be stopped any more (stopped meanwhile, by a person or by
    another process's pass) is left as it is. Safe to run in several processes.
    """
    results = []
    for trip in tasks.tripped_guards(session):
        owner, owner_email = owner_of(trip)
        note = note_of(trip)
        try:
            reach_owner(owner, owner_email, session)
            with auth.acting_as(CampaignOwner(owner)):
                result = stop_run(
                    trip.dag_id,
                    trip.run_id,
                    actor=owner,
                    note=note,
                    idempotency_key=idempotency_key(trip),
                    session=session,
                )
            session.commit()
        except CampaignRunsError as error:
            session.rollback()
            log.info("Guard of %s/%s: no Stop (%s)", trip.dag_id, trip.run_id, error)
            continue
        metrics.incr("guard.stop")
        log.warning("Guard stopped %s/%s for %s: %s", trip.dag_id, trip.run_id, owner, note)
        results.append(result)
    return results
