"""Email through Airflow's email utilities (``[email] email_backend``, ``[smtp]``, ``email_conn_id``)."""

from __future__ import annotations


def send_email(to: str, subject: str, html: str, message_id: str) -> None:
    """Send one HTML email with a fixed ``Message-ID``."""
    from airflow.utils.email import send_email as airflow_send_email

    airflow_send_email(to=[to], subject=subject, html_content=html, custom_headers={"Message-ID": message_id})
