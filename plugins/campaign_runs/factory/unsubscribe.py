"""One-click unsubscribe (RFC 8058): a signed token per recipient, its link and its mailto address.

A token is ``u1.<payload>.<mac>``: the payload (channel, campaign id and address, one per line) in URL-safe
base64 without padding, and HMAC-SHA256 of ``u1.<payload>``, cut to 128 bits, the same way. The key is
``[campaign_runs] unsubscribe_secret`` (a sensitive option: ``_cmd`` and ``_secret`` work too), else one derived
from ``[api] secret_key`` under a label of its own. The channel tasks sign; the API server verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
from email.utils import parseaddr
from urllib.parse import quote

from campaign_runs.factory.addresses import control_character, is_email_address
from campaign_runs.factory.hygiene import ADDRESS_FIELDS

log = logging.getLogger(__name__)

VERSION = "u1"
PATH = "/campaign-runs/unsubscribe"  # where the plugin's FastAPI app answers (mounted at /campaign-runs)
PLACEHOLDER = "unsubscribe_url"  # the recipient's link in an email's subject or body: $unsubscribe_url
SECTION = "campaign_runs"
MAX_TOKEN = 1200  # characters: a 254-character address and a 250-character campaign id fit with room to spare
MAC_BYTES = 16
DERIVATION_LABEL = b"campaign-runs/unsubscribe-token/v1"
DEFAULT_BASE_URL = "http://localhost:8080"
_TOKEN = re.compile(r"u1\.([A-Za-z0-9_-]{4,1100})\.([A-Za-z0-9_-]{22})")
_UNSAFE_IN_URL = re.compile(r"[\s<>\"\\]")


class UnsubscribeError(ValueError):
    """A token that is not one this server signed: forged, altered, malformed or oversized; or no key to sign."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_key() -> bytes:
    """``[campaign_runs] unsubscribe_secret``, else a key derived from ``[api] secret_key`` (raises when neither)."""
    from airflow.sdk import conf

    own = str(conf.get(SECTION, "unsubscribe_secret", fallback="") or "").strip()  # a _cmd answer ends its line
    if own:
        return hmac.new(own.encode(), DERIVATION_LABEL, hashlib.sha256).digest()
    api = str(conf.get("api", "secret_key", fallback="") or "")
    if not api or api == "{SECRET_KEY}":  # the Task SDK leaves the generated default unexpanded
        raise UnsubscribeError(
            "No key signs unsubscribe links: set [campaign_runs] unsubscribe_secret (or [api] secret_key) to the "
            "same value on the workers and the API server."
        )
    return hmac.new(api.encode(), DERIVATION_LABEL, hashlib.sha256).digest()


class Signer:
    """Signs and reads tokens with one key; the keyed HMAC state is built once and copied per token."""

    def __init__(self, key: bytes) -> None:
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def _sign(self, signed: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(signed)
        return mac.digest()[:MAC_BYTES]

    def token(self, address: str, campaign: str, channel: str = "email") -> str:
        """The token of ``address`` in ``campaign`` on ``channel``."""
        if any("\n" in part or not part for part in (channel, campaign, address)):
            raise UnsubscribeError("A token's channel, campaign and address are non-empty and on one line each.")
        payload = _b64(f"{channel}\n{campaign}\n{address}".encode())
        return f"{VERSION}.{payload}.{_b64(self._sign(f'{VERSION}.{payload}'.encode()))}"

    def read(self, token: str) -> tuple[str, str, str]:
        """``(channel, address, campaign)`` of a token this key signed; ``UnsubscribeError`` for any other."""
        if len(token) > MAX_TOKEN:
            raise UnsubscribeError(f"The unsubscribe link is too long ({len(token)} characters; at most {MAX_TOKEN}).")
        found = _TOKEN.fullmatch(token)
        if found is None:
            raise UnsubscribeError("The unsubscribe link is malformed: it is not a complete link from our emails.")
        payload, mac = found.groups()
        expected = _b64(self._sign(f"{VERSION}.{payload}".encode()))  # compared as text: one spelling only
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            raise UnsubscribeError("The unsubscribe link is not valid: it was altered or not made by us.")
        try:
            channel, campaign, address = _unb64(payload).decode().split("\n")
        except (binascii.Error, ValueError):  # signed by us, so only an old or broken signer gets here
            raise UnsubscribeError("The unsubscribe link is malformed.") from None
        if channel not in ADDRESS_FIELDS or not campaign or not address:
            raise UnsubscribeError("The unsubscribe link is malformed.")
        return channel, address, campaign


def unsubscribe_token(address: str, campaign: str, *, channel: str = "email", key: bytes | None = None) -> str:
    """The signed token of ``address`` in ``campaign`` (the configured key unless ``key``)."""
    return Signer(key if key is not None else signing_key()).token(address, campaign, channel)


def read_token(token: str, *, key: bytes | None = None) -> tuple[str, str, str]:
    """``(channel, address, campaign)`` of a token we signed; ``UnsubscribeError`` when forged or malformed."""
    return Signer(key if key is not None else signing_key()).read(token)


def base_url() -> str:
    """``[campaign_runs] base_url``, else ``[api] base_url``, without its trailing slash."""
    from airflow.sdk import conf

    own = str(conf.get(SECTION, "base_url", fallback="") or "")
    found = own or str(conf.get("api", "base_url", fallback="") or "") or DEFAULT_BASE_URL
    return found.strip().rstrip("/")


def unsubscribe_url(token: str, base: str | None = None) -> str:
    """``<base>/campaign-runs/unsubscribe/<token>``: the one-click link (the token is URL-safe as is)."""
    return f"{(base if base is not None else base_url()).rstrip('/')}{PATH}/{token}"


def mailto_address(fallback: str = "") -> str:
    """``[campaign_runs] unsubscribe_mailto``, else ``[smtp] smtp_mail_from``, else ``fallback``: a bare address."""
    from airflow.sdk import conf

    for value in (
        conf.get(SECTION, "unsubscribe_mailto", fallback=""),
        conf.get("smtp", "smtp_mail_from", fallback=""),
        fallback,
    ):
        address = parseaddr(str(value or ""))[1]
        if address and is_email_address(address):
            return address
    return ""


def unsubscribe_mailto(token: str, address: str) -> str:
    """``mailto:<address>?subject=unsubscribe%20<token>``."""
    return f"mailto:{quote(address, safe='@+')}?subject=unsubscribe%20{token}"


class UnsubscribeLinks:
    """What every message of a task needs, read once: the signer, the link's base and the mailto address."""

    def __init__(self, signer: Signer, base: str, mailto: str) -> None:
        self.signer = signer
        self.base = base
        self.mailto = mailto
        self._link = unsubscribe_url("", base)  # per message then: one concatenation each
        self._mailto = unsubscribe_mailto("", mailto) if mailto else ""

    @classmethod
    def from_config(cls, fallback_mailto: str = "") -> UnsubscribeLinks:
        """From Airflow's configuration; ``fallback_mailto`` when neither mailto option names an address."""
        base = base_url()
        if not base.isascii() or control_character(base) is not None or _UNSAFE_IN_URL.search(base):
            raise UnsubscribeError(f"The base URL of unsubscribe links is not a plain ASCII URL: {base[:80]!r}.")
        if not base.startswith("https://"):
            log.warning("Unsubscribe links start %s: mail providers offer one-click unsubscribe for https only", base)
        return cls(Signer(signing_key()), base, mailto_address(fallback_mailto))

    def for_recipient(self, campaign: str, address: str) -> tuple[str, list[str]]:
        """The recipient's link and the URIs of their ``List-Unsubscribe`` header (link first, then mailto)."""
        token = self.signer.token(address, campaign)
        url = self._link + token
        return url, [url, self._mailto + token] if self._mailto else [url]
