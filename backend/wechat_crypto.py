"""WeChat open-data decryption (wx.getWeRunData and friends), and the sandbox's encryption.

AES-128-CBC with strict PKCS#7, keys and ivs of exactly 16 bytes, strict base64, a UTF-8 JSON
object whose ``watermark.appid`` must be ours (wechat.md §2, §3, §9.3). Every failure is one of
the domain errors below, never a raw exception.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK_BYTES = 16


class OpenDataError(Exception):
    """Base of the decryption failures; ``field`` names the input at fault, if any."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class MalformedOpenData(OpenDataError):
    """The input is not what WeChat sends (bad base64, wrong lengths): the client's mistake."""


class DecryptFailed(OpenDataError):
    """Not decryptable with this session_key (stale key, garbage, truncated data)."""


class WatermarkMismatch(OpenDataError):
    """Decrypted fine, but the data belongs to another appid."""


def strict_b64decode(text: str, field: str) -> bytes:
    """Standard base64 with padding, nothing else (a '+' turned into ' ' in transit fails here)."""
    if not isinstance(text, str) or not text:
        raise MalformedOpenData("empty or not a string", field)
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise MalformedOpenData("not valid base64", field) from None


def decode_key_material(session_key: str, iv: str) -> tuple[bytes, bytes]:
    """The 16-byte key and iv; raises MalformedOpenData."""
    key = strict_b64decode(session_key, "session_key")
    if len(key) != BLOCK_BYTES:
        raise MalformedOpenData("session_key is not 16 bytes", "session_key")
    iv_bytes = strict_b64decode(iv, "iv")
    if len(iv_bytes) != BLOCK_BYTES:
        raise MalformedOpenData("iv is not 16 bytes", "iv")
    return key, iv_bytes


def decrypt_open_data(session_key: str, iv: str, encrypted_data: str, appid: str) -> dict:
    """The decrypted JSON object.

    Raises MalformedOpenData (input shape), DecryptFailed (cannot decrypt with this key into a
    JSON object with a watermark) or WatermarkMismatch (another appid).
    """
    key, iv_bytes = decode_key_material(session_key, iv)
    ciphertext = strict_b64decode(encrypted_data, "encrypted_data")
    if len(ciphertext) % BLOCK_BYTES:
        raise DecryptFailed("ciphertext is not whole blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv_bytes)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(BLOCK_BYTES * 8).unpadder()
    try:
        plaintext = unpadder.update(padded) + unpadder.finalize()
        payload = json.loads(plaintext.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise DecryptFailed("bad padding or not UTF-8 JSON") from None
    if not isinstance(payload, dict):
        raise DecryptFailed("not a JSON object")
    watermark = payload.get("watermark")
    if not isinstance(watermark, dict) or "appid" not in watermark:
        raise DecryptFailed("no watermark")
    if watermark.get("appid") != appid:
        raise WatermarkMismatch("watermark appid differs")
    return payload


def encrypt_open_data(
    session_key: str, payload: dict, appid: str, now: float | None = None,
    iv: bytes | None = None,
) -> tuple[str, str]:
    """``(encrypted_data, iv)`` in base64 as WeChat would send them, with a watermark added."""
    key = strict_b64decode(session_key, "session_key")
    iv_bytes = iv if iv is not None else os.urandom(BLOCK_BYTES)
    body = dict(payload)
    body["watermark"] = {"timestamp": int(now if now is not None else time.time()), "appid": appid}
    plaintext = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    padder = padding.PKCS7(BLOCK_BYTES * 8).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv_bytes)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return base64.b64encode(ciphertext).decode(), base64.b64encode(iv_bytes).decode()
