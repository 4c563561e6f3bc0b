"""The local FCM's service account keys, made once per process (a 2048-bit RSA key takes a tenth of a second)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.rigs import fcm as fcm_rig

_KEYS: list[rsa.RSAPrivateKey] = []


class KeyPool:
    """Stands for ``rsa`` in the FCM rig's module during one test: each rig made gets another key, made once."""

    def __init__(self, keys: list[rsa.RSAPrivateKey]) -> None:
        self.keys = keys
        self.handed = 0

    def generate_private_key(self, public_exponent: int, key_size: int) -> rsa.RSAPrivateKey:
        """The next key of the pool (a new one when the pool is used up): no two rigs of a test share one."""
        if self.handed == len(self.keys):
            self.keys.append(rsa.generate_private_key(public_exponent=public_exponent, key_size=key_size))
        key = self.keys[self.handed]
        assert (key.key_size, key.public_key().public_numbers().e) == (key_size, public_exponent)
        self.handed += 1
        return key


def reuse_fcm_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """For this test, FCM rigs take their keys from the process's pool instead of generating new ones."""
    monkeypatch.setattr(fcm_rig, "rsa", KeyPool(_KEYS))
