"""The ``[campaign_runs]`` configuration section, read once, with fallbacks."""

from __future__ import annotations

import functools
from dataclasses import dataclass

SECTION = "campaign_runs"

# Option name -> (default, description); provider_info.py documents these same options.
OPTIONS: dict[str, tuple[str, str]] = {
    "campaign_tag": ("campaign", "DAG tag that marks a DAG as a campaign."),
    "note_required": ("True", "Whether Stop, Restart and Skip require a non-empty note."),
    "note_max_length": ("2000", "Longest note accepted, in characters."),
    "upcoming_runs": ("5", "How many upcoming runs the run schedule shows by default."),
    "page_size": ("25", "Past runs per page in the run schedule."),
    "housekeeping_interval": (
        "1.0",
        "Seconds between housekeeping passes (finishing stopped runs, retrying emails) in the scheduler.",
    ),
    "stop_grace_seconds": (
        "3",
        "Seconds the tasks of a stopping run get to end by themselves before Airflow kills them (0: at once).",
    ),
    "email_retry_base_seconds": ("5", "First retry delay of an email that could not be sent."),
    "email_retry_max_seconds": ("600", "Longest delay between two attempts to send an email."),
    "email_claim_seconds": (
        "60",
        "How long a claim on an email lasts without renewal: the sending process renews it every third of this "
        "while the send goes on, so another process takes the email over only after the sender died.",
    ),
    "email_max_attempts": (
        "10",
        "Attempts to send an email before it is marked failed (an administrator can resend it).",
    ),
    "idempotency_key_ttl_hours": (
        "24",
        "Hours an Idempotency-Key stays bound to its request; after that the same key starts a new action.",
    ),
    "email_subject_prefix": ("[Campaign Runs]", "Prefix of the subject of every email."),
    "base_url": (
        "",
        "Base URL of links in emails, the campaigns' one-click unsubscribe links too (https for mail providers to "
        "offer them); empty means [api] base_url.",
    ),
    "user_email_template": (
        "",
        "Address of a user whose auth manager gives none and who set none in Campaign Runs, with {username} "
        "replaced by the user name (e.g. {username}@example.com); empty means no such address.",
    ),
    "sink_dir": (
        "",
        "Where campaigns write their dry-run sinks and (without ledger_conn_id) their delivery ledger; empty means "
        "$AIRFLOW_HOME/campaign_sinks. Read by the campaign tasks (campaign_runs.factory).",
    ),
    "definitions_folder": (
        "",
        "Folder of the campaigns' YAML files that New and Configure write; empty means the campaigns folder of [core] "
        "dags_folder (the shipped campaigns, beside their loader). Another folder without a loader of its own is "
        "loaded by that loader too, and the shipped campaigns are then read-only in the plugin (make run keeps "
        "its campaigns in .airflow/campaigns); an id in both folders is loaded from neither. Read-only (for a git "
        "bundle) means New and Configure offer the YAML to commit instead of writing it.",
    ),
    "resume_wait_seconds": (
        "60",
        'How long Resume waits for the dag-processor to load a YAML campaign\'s new "not before" instant before '
        "unpausing it; past that the campaign stays paused and Resume says so.",
    ),
    "audience_file_roots": (
        "",
        "Folders (separated by commas) a file:// audience may be read from; empty means the DAGs folder, "
        "$AIRFLOW_HOME/audiences and definitions_folder. A relative url in a campaign is resolved against its YAML "
        "file's folder.",
    ),
    "ledger_conn_id": (
        "",
        "Connection (PostgreSQL) holding the shipped campaigns' delivery ledger, shared by every worker; empty "
        "means a SQLite file per campaign under sink_dir. Read by the campaign tasks (campaign_runs.factory).",
    ),
    "unsubscribe_secret": (
        "",
        "Key that signs the recipients' unsubscribe links, the same on the workers and the API server (sensitive: "
        "unsubscribe_secret_cmd and unsubscribe_secret_secret work too); empty means a key derived from [api] "
        "secret_key. Changing it voids the links of emails already sent.",
    ),
    "unsubscribe_mailto": (
        "",
        "Address of the mailto: link in every campaign email's List-Unsubscribe header (the signed token in its "
        "subject); empty means [smtp] smtp_mail_from.",
    ),
}
SENSITIVE = frozenset({"unsubscribe_secret"})  # masked, and readable through _cmd / _secret (provider_info.py)


@dataclass(frozen=True)
class CampaignRunsSettings:
    """Typed view of the ``[campaign_runs]`` section."""

    campaign_tag: str
    note_required: bool
    note_max_length: int
    upcoming_runs: int
    page_size: int
    housekeeping_interval: float
    stop_grace_seconds: float
    email_retry_base_seconds: int
    email_retry_max_seconds: int
    email_claim_seconds: int
    email_max_attempts: int
    idempotency_key_ttl_hours: float
    email_subject_prefix: str
    base_url: str
    user_email_template: str = ""
    definitions_folder: str = ""
    resume_wait_seconds: float = 60.0


@functools.cache
def get_settings() -> CampaignRunsSettings:
    """Read the section once; ``get_settings.cache_clear()`` re-reads it."""
    from airflow.configuration import conf

    def get(name: str) -> str:
        return conf.get(SECTION, name, fallback=OPTIONS[name][0])

    base_url = get("base_url") or conf.get("api", "base_url", fallback="") or "http://localhost:8080"
    return CampaignRunsSettings(
        campaign_tag=get("campaign_tag"),
        note_required=get("note_required").strip().lower() in ("true", "1", "yes", "on"),
        note_max_length=int(get("note_max_length")),
        upcoming_runs=int(get("upcoming_runs")),
        page_size=int(get("page_size")),
        housekeeping_interval=float(get("housekeeping_interval")),
        stop_grace_seconds=float(get("stop_grace_seconds")),
        email_retry_base_seconds=int(get("email_retry_base_seconds")),
        email_retry_max_seconds=int(get("email_retry_max_seconds")),
        email_claim_seconds=int(get("email_claim_seconds")),
        email_max_attempts=max(1, int(get("email_max_attempts"))),
        idempotency_key_ttl_hours=float(get("idempotency_key_ttl_hours")),
        email_subject_prefix=get("email_subject_prefix"),
        base_url=base_url.rstrip("/"),
        user_email_template=get("user_email_template").strip(),
        definitions_folder=get("definitions_folder").strip(),
        resume_wait_seconds=float(get("resume_wait_seconds")),
    )
