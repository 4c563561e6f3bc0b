"""Users as the plugin sees them: the address their emails go to, and the one they set in Campaign Runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from campaign_runs.adapters import auth
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core.actions import require_user
from campaign_runs.domain import InvalidOptionError
from campaign_runs.factory.addresses import is_email_address

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from campaign_runs.adapters.auth import EmailResolution

EMAIL_MAX = 512
HOW_TO_SET = (
    "set one under My email on the work list, with `airflow campaigns users set-email {username} ADDRESS` "
    "or `PUT /campaign-runs/me/email`, or configure `[campaign_runs] user_email_template` "
    "(e.g. `user_email_template = {{username}}@example.com` in airflow.cfg)"
)


@provide_session
def email_of(username: str, *, session: Session = NEW_SESSION) -> EmailResolution:
    """Where ``username``'s emails go, and from which link of the chain (or why nowhere)."""
    return auth.resolve_email(username, session)


def no_email_notice(found: EmailResolution) -> str | None:
    """What the pages and the CLI say after an action when no email can be sent; None when one can."""
    if found.address:
        return None
    return f"No email could be sent: {found.reason} To get emails, {HOW_TO_SET.format(username=found.username)}."


@provide_session
def set_email(username: str, address: str, *, session: Session = NEW_SESSION) -> EmailResolution:
    """Set the address ``username`` gets emails at in Campaign Runs (empty: clear it); the user must exist."""
    cleaned = address.strip()
    if len(cleaned) > EMAIL_MAX:
        raise InvalidOptionError(f"The email address is {len(cleaned)} characters long; the limit is {EMAIL_MAX}.")
    if cleaned and not is_email_address(cleaned):
        raise InvalidOptionError(f"{cleaned[:80]!r} is not an email address (name@example.com).")
    require_user(username, session=session)
    auth.set_user_email(username, cleaned or None, session)
    session.flush()
    return auth.resolve_email(username, session)
