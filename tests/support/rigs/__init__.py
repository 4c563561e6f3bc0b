"""Local stand-ins for each transport's provider, driven by the real client code, behind one interface.

Each module here (``ses``, ``sns``, ``twilio``, ``fcm``, ``webhook``, ``smtp``) offers ``rig(monkeypatch)``, a
context manager that starts the provider's local server on 127.0.0.1 (a free port), registers the Airflow
Connection ``conn_id`` pointing at it (``AIRFLOW_CONN_<ID>`` through ``monkeypatch``), yields a
``TransportRig`` and stops exactly the server it started; and ``remote()``, the same rig's ``channel``,
``transport``, ``conn_id`` and ``settings`` for a process that sends to a rig another process runs.
"""

from __future__ import annotations

from typing import Any, Protocol


class TransportRig(Protocol):
    """A running local provider for one channel's transport, and what it received."""

    channel: str  # email, sms, push, webhook
    transport: str  # smtp, ses, sns, twilio, fcm, http
    conn_id: str  # the Connection the rig registered
    settings: dict[str, Any]  # the channel's settings for a campaign sending through this rig

    def accepted(self) -> list[str]:
        """Addresses the provider accepted a message for, in order, duplicates kept."""
        ...

    def throttle_next(self, count: int, retry_after: float | None = None) -> None:
        """Answer the next ``count`` send requests with the provider's own throttling answer (nothing accepted)."""
        ...

    def refuse_address(self, address: str) -> None:
        """Refuse every message to ``address`` for good, as the provider does (invalid number, unknown token)."""
        ...

    def slow_down(self, seconds: float) -> None:
        """Take ``seconds`` before answering each send request from now on."""
        ...

    def go_away(self) -> None:
        """Stop answering: the server closes its listening socket (connections are refused)."""
        ...

    def come_back(self) -> None:
        """Answer again, on the same port, remembering what was accepted before."""
        ...
