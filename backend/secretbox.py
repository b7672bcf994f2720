"""Encryption at rest for secrets the server must read back (session_key, partner secrets)."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretUnreadable(Exception):
    """The stored value was not made with this SECRET_KEY (or was altered)."""


def _fernet(secret_key: str, purpose: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"tanpu:{purpose}".encode()
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret_key: str, purpose: str, plaintext: str) -> str:
    """``plaintext`` encrypted and authenticated under a key derived for ``purpose``."""
    return _fernet(secret_key, purpose).encrypt(plaintext.encode()).decode()


def unseal(secret_key: str, purpose: str, sealed: str) -> str:
    """The plaintext of :func:`seal`; raises SecretUnreadable."""
    try:
        return _fernet(secret_key, purpose).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        raise SecretUnreadable(purpose) from None
