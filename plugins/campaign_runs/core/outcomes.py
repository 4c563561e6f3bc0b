"""What an action did, in the words every edge shows: the pages' message and the CLI's line are one sentence."""

from __future__ import annotations

from campaign_runs.domain import Action

WHAT_NEXT = {  # (action, whether an email goes to the actor) -> what happens next
    (Action.STOP, True): (
        "Run {run_id} is stopping; you will get an email when it has stopped, and it will be on your work list."
    ),
    (Action.STOP, False): "Run {run_id} is stopping; it will be on your work list when it has stopped.",
    (Action.RESTART, True): (
        "Run {run_id} is skipped and restarted as run {new_run_id}, which is queued and starts shortly; "
        "an email is on its way to you."
    ),
    (Action.RESTART, False): (
        "Run {run_id} is skipped and restarted as run {new_run_id}, which is queued and starts shortly."
    ),
    (Action.SKIP, True): (
        "Run {run_id} is skipped; the campaign goes on with its schedule and an email is on its way to you."
    ),
    (Action.SKIP, False): "Run {run_id} is skipped; the campaign goes on with its schedule.",
}


def what_next(action: Action | str, run_id: str, new_run_id: str | None, *, emailed: bool) -> str:
    """What happens to the run after ``action``, and whether the actor gets an email about it."""
    return WHAT_NEXT[Action(action), emailed].format(run_id=run_id, new_run_id=new_run_id or "")
