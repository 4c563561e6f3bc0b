"""Email through Airflow's email utilities (``[email] email_backend``, ``[smtp]``, ``email_conn_id``).

``airflow.utils.email.send_email`` takes HTML only. With the default backend (``send_email_smtp``) the
message is built with Airflow's own ``build_mime_message`` as ``multipart/alternative`` with the plain-text
part added first, and sent with Airflow's own ``send_mime_email`` (same ``[smtp]`` settings, same
``[email] email_conn_id`` credentials). A custom ``[email] email_backend`` is still called, with the HTML
part only, since its signature has no place for a text part.

Refusals: every message goes to exactly one recipient, so a server that refuses it (4xx or 5xx to RCPT TO)
makes ``smtplib`` raise ``SMTPRecipientsRefused`` and a refused DATA raises ``SMTPDataError``; both reach
the caller. (``send_mime_email`` drops what ``sendmail`` returns: the recipients refused while others were
accepted, which cannot happen with one recipient.)
"""

from __future__ import annotations

import smtplib
from email.mime.text import MIMEText


def send_email(to: str, subject: str, html: str, message_id: str, text: str | None = None) -> None:
    """Send one email with a fixed ``Message-ID``: HTML, with a plain-text alternative when ``text`` is given."""
    from airflow.configuration import conf
    from airflow.utils import email as airflow_email

    headers = {"Message-ID": message_id}
    backend = conf.getimport("email", "EMAIL_BACKEND")
    if text is None or backend is not airflow_email.send_email_smtp:
        airflow_email.send_email(to=[to], subject=subject, html_content=html, custom_headers=headers)
        return
    mail_from = conf.get("smtp", "SMTP_MAIL_FROM", fallback=None) or conf.get("email", "from_email", fallback=None)
    if not mail_from:
        raise ValueError("You should set from email - either by smtp/smtp_mail_from config or [email] from_email")
    message, recipients = airflow_email.build_mime_message(
        mail_from=mail_from,
        to=[to],
        subject=subject,
        html_content=html,
        mime_subtype="alternative",
        custom_headers=headers,
    )
    # Alternatives go from the plainest to the richest: text first, then the HTML Airflow attached.
    message.set_payload([MIMEText(text, "plain", "utf-8"), *message.get_payload()])
    if len(recipients) != 1:  # a partial refusal of several recipients would go unnoticed (see above)
        raise ValueError(f"An email goes to exactly one recipient, not {recipients!r}.")
    airflow_email.send_mime_email(
        e_from=mail_from, e_to=recipients, mime_msg=message, conn_id=conf.get("email", "EMAIL_CONN_ID")
    )


def is_permanent(error: BaseException) -> bool:
    """Whether the server refused this message for good: a 5xx to its recipient or to its data.

    Other errors (connection, login, sender, any 4xx) may pass once the server or the settings are fixed.
    """
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(error, smtplib.SMTPDataError):
        return error.smtp_code >= 500
    return False
