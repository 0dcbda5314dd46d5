"""DKIM signing of finished messages (``dkimpy``), on when a domain and a key are configured.

The signature covers the headers a receiver uses to judge the message and its one-click
unsubscribe (RFC 8058 asks that List-Unsubscribe and List-Unsubscribe-Post be signed).
Relaxed canonicalisation lets a relay refold a header or re-wrap the body without breaking it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Any

import dkim
from flask import Flask

from core.config import ConfigError
from core.config import env_name

SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)


class DkimError(Exception):
    """The DKIM settings cannot sign; the message names the setting to fix."""


def enabled(config: Mapping[str, Any]) -> bool:
    """Signing is on when both the signing domain and the key file are configured."""
    return bool(config.get("DKIM_DOMAIN") and config.get("DKIM_PRIVATE_KEY_PATH"))


def private_key(path: str) -> bytes:
    """The PEM key in ``path``, read once per version of the file."""
    try:
        return _read_key(path, os.stat(path).st_mtime_ns)
    except OSError as error:
        raise DkimError(
            f"{env_name('DKIM_PRIVATE_KEY_PATH')} names {path}, which cannot be read: "
            f"{error.strerror}."
        ) from None


@cache
def _read_key(path: str, _version: int) -> bytes:
    with open(path, "rb") as key_file:
        return key_file.read()


def sign(payload: bytes, config: Mapping[str, Any]) -> bytes:
    """``payload`` (a whole message, CRLF line ends) with a DKIM-Signature header in front."""
    key = private_key(str(config["DKIM_PRIVATE_KEY_PATH"]))
    try:
        signature: bytes = dkim.sign(
            payload,
            str(config["DKIM_SELECTOR"]).encode("ascii"),
            str(config["DKIM_DOMAIN"]).encode("ascii"),
            key,
            include_headers=list(SIGNED_HEADERS),
            canonicalize=(b"relaxed", b"relaxed"),
        )
    except dkim.DKIMException as error:
        raise DkimError(
            f"The DKIM key in {env_name('DKIM_PRIVATE_KEY_PATH')} cannot sign: {error}."
        ) from None
    except UnicodeEncodeError:
        raise DkimError(
            f"{env_name('DKIM_DOMAIN')} and {env_name('DKIM_SELECTOR')} must be plain ASCII."
        ) from None
    return signature + payload


def check(app: Flask) -> None:
    """Start-up check: with DKIM configured, the key must be readable and able to sign."""
    if not enabled(app.config):
        return
    probe = b"From: check@invalid\r\nSubject: start-up check\r\n\r\nbody\r\n"
    try:
        sign(probe, app.config)
    except DkimError as error:
        raise ConfigError(str(error)) from None
