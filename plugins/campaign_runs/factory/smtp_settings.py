"""Where and how the email channel's SMTP transport connects: Connection ``campaign_smtp`` or Airflow's ``[smtp]``."""

from __future__ import annotations

from dataclasses import dataclass

SMTP_CONN_ID = "campaign_smtp"


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send email."""

    host: str
    port: int
    starttls: bool
    ssl: bool
    timeout: float
    mail_from: str
    login: str | None = None
    password: str | None = None

    @classmethod
    def resolve(cls, conn_id: str = "") -> SmtpSettings:
        """Connection ``conn_id`` (``campaign_smtp``) when it exists, otherwise Airflow's ``[smtp]`` settings."""
        from airflow.sdk import BaseHook, conf
        from airflow.sdk.exceptions import AirflowNotFoundException

        base = cls(
            host=conf.get("smtp", "smtp_host", fallback="localhost"),
            port=conf.getint("smtp", "smtp_port", fallback=25),
            starttls=conf.getboolean("smtp", "smtp_starttls", fallback=False),
            ssl=conf.getboolean("smtp", "smtp_ssl", fallback=False),
            timeout=float(conf.getint("smtp", "smtp_timeout", fallback=30)),
            mail_from=conf.get("smtp", "smtp_mail_from", fallback="") or "campaigns@localhost",
        )
        try:
            connection = BaseHook.get_connection(conn_id or SMTP_CONN_ID)
        except AirflowNotFoundException:
            return base
        extra = connection.extra_dejson
        return cls(
            host=connection.host or base.host,
            port=int(connection.port or base.port),
            starttls=bool(extra.get("starttls", base.starttls)),
            ssl=bool(extra.get("ssl", base.ssl)),
            timeout=float(extra.get("timeout", base.timeout)),
            mail_from=str(extra.get("mail_from", base.mail_from)),
            login=connection.login or None,
            password=connection.password or None,
        )
