"""Keyed hashing for API keys and encryption at rest for merchant secrets.

Both keys are derived from ``PESASWITCH_SECRET_KEY`` with HKDF under distinct labels, so
one operator secret serves both purposes without the two ever sharing key material.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pesaswitch.errors import PesaswitchError


def _derive(secret_key: str, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(
        secret_key.encode()
    )


@lru_cache(maxsize=8)
def _hash_key(secret_key: str) -> bytes:
    return _derive(secret_key, b"pesaswitch api-key hashing v1")


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive(secret_key, b"pesaswitch encryption v1")))


def keyed_hash(secret_key: str, value: str) -> str:
    """HMAC-SHA256 hex; API keys are high-entropy so a slow KDF buys nothing (reliability.md)."""
    return hmac.new(_hash_key(secret_key), value.encode(), hashlib.sha256).hexdigest()


def encrypt(secret_key: str, plaintext: str) -> str:
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


@lru_cache(maxsize=4096)
def decrypt(secret_key: str, ciphertext: str) -> str:
    """Cached: webhook secrets are decrypted for every delivery otherwise."""
    try:
        return _fernet(secret_key).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise PesaswitchError(
            "A stored secret cannot be decrypted; was PESASWITCH_SECRET_KEY changed?"
        ) from exc


def secrets_equal(presented: str, expected: str) -> bool:
    """Constant-time equality of two secrets. ``hmac.compare_digest`` on ``str`` raises
    TypeError for non-ASCII text (a 500 for a crafted signature); bytes never do."""
    return hmac.compare_digest(presented.encode(), expected.encode())
