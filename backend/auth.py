"""Tokens (JWT HS256 with typ, sub, ver, exp), the current principal, and access decorators."""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from flask import current_app, g, request

from backend.errors import ApiError

ALGORITHMS = ["HS256"]  # explicit: a token naming another algorithm (or none) is refused
TOKEN_TYPES = ("participant", "staff")
TOKEN_LIFETIME = {"participant": timedelta(days=7), "staff": timedelta(hours=12)}


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int


def issue_token(
    typ: str, subject_id: int, version: int, now: datetime | None = None
) -> IssuedToken:
    """A signed token for ``subject_id`` of type ``typ`` that stays valid while ``version`` does."""
    if typ not in TOKEN_TYPES:
        raise ValueError(f"unknown token type {typ!r}")
    now = now or datetime.now(UTC)
    lifetime = TOKEN_LIFETIME[typ]
    claims = {
        "typ": typ,
        "sub": str(subject_id),
        "ver": version,
        "iat": int(now.timestamp()),
        # A random id: two tokens issued in the same second still differ.
        "jti": secrets.token_urlsafe(12),
        "exp": int((now + lifetime).timestamp()),
    }
    token = jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm="HS256")
    return IssuedToken(token=token, expires_in=int(lifetime.total_seconds()))


# Verified claims by (secret, token), per process: every request of a participant carries the
# same token, and checking its signature again gives the same answer (its expiry is checked
# at each use). Bounded: cleared when full.
_VERIFIED_LIMIT = 4096
_verified: dict[tuple[str, str], dict] = {}


def decode_token(token: str) -> dict:
    """The claims of a valid token; raises ApiError 401 token_invalid or token_expired."""
    key = (current_app.config["SECRET_KEY"], token)
    claims = _verified.get(key)
    if claims is None:
        claims = _verify(token)
        if len(_verified) >= _VERIFIED_LIMIT:
            _verified.clear()
        _verified[key] = claims
    elif claims["exp"] <= datetime.now(UTC).timestamp():  # as PyJWT checks it
        raise ApiError(401, "auth.token_expired")
    return dict(claims)


def _verify(token: str) -> dict:
    """The claims of a token whose signature, expiry and claims check out."""
    try:
        claims = jwt.decode(
            token,
            current_app.config["SECRET_KEY"],
            algorithms=ALGORITHMS,
            options={"require": ["typ", "sub", "ver", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise ApiError(401, "auth.token_expired") from None
    except jwt.PyJWTError:
        raise ApiError(401, "auth.token_invalid") from None
    version = claims.get("ver")
    if claims.get("typ") not in TOKEN_TYPES or not isinstance(version, int) \
            or isinstance(version, bool):
        raise ApiError(401, "auth.token_invalid")
    try:
        claims["sub"] = int(claims["sub"])
    except (TypeError, ValueError):
        raise ApiError(401, "auth.token_invalid") from None
    return claims


def bearer_token() -> str | None:
    """The token of the Authorization header, None when the header is absent."""
    header = request.headers.get("Authorization", "")
    if not header.strip():
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "auth.token_invalid")
    return token.strip()


# Loaders turn verified claims into the principal (a User or a StaffAccount), or None when the
# subject is gone or its token version moved on. Registered by the models' owners at import.
PRINCIPAL_LOADERS: dict[str, callable] = {}


def current_principal(typ: str, required: bool = True):
    """The principal of the request's token if it is of type ``typ``.

    Raises 401 token_missing/invalid/expired, or 403 auth.forbidden for a valid token of the
    other type. With ``required=False`` a missing token gives None.
    """
    cache_key = f"principal_{typ}"
    if cache_key in g:
        return g.get(cache_key)
    token = bearer_token()
    if token is None:
        if required:
            raise ApiError(401, "auth.token_missing")
        return None
    claims = decode_token(token)
    principal = PRINCIPAL_LOADERS[claims["typ"]](claims["sub"], claims["ver"])
    if principal is None:
        raise ApiError(401, "auth.token_invalid")
    if claims["typ"] != typ:
        raise ApiError(403, "auth.forbidden")
    setattr(g, cache_key, principal)
    return principal


def participant_required(view):
    """The view runs with ``g.user`` set to the logged-in participant."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        g.user = current_principal("participant")
        return view(*args, **kwargs)

    return wrapper


def staff_required(view):
    """The view runs with ``g.staff`` set to the logged-in staff account."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        g.staff = current_principal("staff")
        return view(*args, **kwargs)

    return wrapper


def admin_required(view):
    """Staff with the admin role only; organisers get 403 auth.forbidden."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        g.staff = current_principal("staff")
        if not g.staff.is_admin:
            raise ApiError(403, "auth.forbidden")
        return view(*args, **kwargs)

    return wrapper
