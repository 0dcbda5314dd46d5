"""Signed, expiring tokens for links in emails, with one salt per purpose.

A token made for one purpose (confirming) is refused for another (unsubscribing), even
though both are signed with the same secret key.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import current_app
from itsdangerous import BadSignature
from itsdangerous import SignatureExpired
from itsdangerous import URLSafeTimedSerializer

PURPOSES = ("confirm", "preferences", "unsubscribe")


class TokenError(Exception):
    """The link is not valid; ``expired`` tells a stale link from a forged one."""

    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return _made(str(current_app.config["SECRET_KEY"]), purpose)


@lru_cache(maxsize=32)
def _made(secret: str, purpose: str) -> URLSafeTimedSerializer:
    # Making a serializer derives its keys: a tenth of a millisecond, twice per issue email.
    return URLSafeTimedSerializer(secret, salt=f"newsletter.{purpose}")


def sign(purpose: str, payload: Any) -> str:
    """A URL-safe token carrying ``payload`` for ``purpose``."""
    token = _serializer(purpose).dumps(payload)
    assert isinstance(token, str)
    return token


def verify(purpose: str, token: str, max_age_seconds: int | None = None) -> Any:
    """The payload of a token made for ``purpose``; raises TokenError if forged or too old."""
    try:
        return _serializer(purpose).loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        raise TokenError(expired=True) from None
    except BadSignature:
        raise TokenError(expired=False) from None
