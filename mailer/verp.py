"""Addresses that say who they are for: VERP return paths and per-reader unsubscribe mailtos.

A campaign email is sent with the envelope sender ``bounces+TOKEN@BOUNCE_DOMAIN`` when
``VERP_ENABLED`` is on (else with ``MAIL_FROM``), where TOKEN is ``{delivery id}-{tag}``: a
bounce comes back to that address and names its delivery without anyone reading its text.
Its List-Unsubscribe mailto is ``unsubscribe+TOKEN@…`` of ``UNSUBSCRIBE_MAILTO``, TOKEN naming
the reader, so an unsubscribe mailed to it needs no trust in the From line, which anyone can
forge.

The tag is 80 bits of an HMAC of the purpose and the number under ``SECRET_KEY``, in lower-case
base32: mail systems may change the case of a local part, so the token reads the same in any
case; a VERP token is no mailto token (and the other way round), and a guessed or altered one
decodes to None. Tokens do not expire: bounces arrive days later, and an unsubscribe mailed
from an old email must work as the link in it does (subscribers/links.py); they change nothing
but the delivery or reader they name. Nothing here touches the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(r"([1-9][0-9]{0,9})-([a-z2-7]{16})")
VERP_PURPOSE = "verp"
MAILTO_PURPOSE = "mailto-unsubscribe"
# The largest id a token may name (PostgreSQL's INTEGER).
MAX_ID = 2**31 - 1


def _tag(config: Mapping[str, Any], purpose: str, number: int) -> str:
    key = str(config["SECRET_KEY"]).encode()
    digest = hmac.new(key, f"{purpose}:{number}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode("ascii").lower()


def token(config: Mapping[str, Any], purpose: str, number: int) -> str:
    """``{number}-{tag}``: short, ASCII, the same in any case once lower-cased."""
    if not 0 < number <= MAX_ID:
        raise ValueError(f"no token for id {number}")
    return f"{number}-{_tag(config, purpose, number)}"


def _read(config: Mapping[str, Any], purpose: str, text: str) -> int | None:
    match = _TOKEN.fullmatch(text.lower())
    if match is None:
        return None
    number = int(match.group(1))
    if number > MAX_ID:
        return None
    expected = _tag(config, purpose, number)
    return number if hmac.compare_digest(expected, match.group(2)) else None


def _split(address: str) -> tuple[str, str] | None:
    """(local part, domain) of a plain address, lower-cased, angle brackets and a mailto:
    scheme or ?query taken off; None for anything else."""
    text = address.strip().strip("<>").strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :].split("?", 1)[0]
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or not text.isascii():
        return None
    return local.lower(), domain.lower().rstrip(".")


def _tagged(
    config: Mapping[str, Any], purpose: str, base: tuple[str, str], address: str
) -> int | None:
    parts = _split(address)
    if parts is None or parts[1] != base[1].lower():
        return None
    prefix = f"{base[0].lower()}+"
    if not parts[0].startswith(prefix):
        return None
    return _read(config, purpose, parts[0][len(prefix) :])


# --- return paths ------------------------------------------------------------------------------


def bounce_domain(config: Mapping[str, Any]) -> str:
    return str(config["BOUNCE_DOMAIN"] or str(config["MAIL_FROM"]).rpartition("@")[2])


def return_path(config: Mapping[str, Any], delivery_id: int) -> str:
    """The envelope sender of a campaign delivery: its own VERP address, or MAIL_FROM."""
    if not config["VERP_ENABLED"]:
        return str(config["MAIL_FROM"])
    local = config["BOUNCE_LOCAL_PART"]
    return f"{local}+{token(config, VERP_PURPOSE, delivery_id)}@{bounce_domain(config)}"


def delivery_of(config: Mapping[str, Any], address: str) -> int | None:
    """The delivery a VERP return path names; None for any other, forged or altered address."""
    base = (str(config["BOUNCE_LOCAL_PART"]), bounce_domain(config))
    return _tagged(config, VERP_PURPOSE, base, address)


# --- unsubscribe mailtos -----------------------------------------------------------------------


def _mailbox(config: Mapping[str, Any]) -> tuple[str, str]:
    local, _, domain = str(config["UNSUBSCRIBE_MAILTO"]).rpartition("@")
    return local, domain


def unsubscribe_address(config: Mapping[str, Any], subscriber_id: int) -> str:
    """``unsubscribe+TOKEN@domain`` of UNSUBSCRIBE_MAILTO, naming the reader."""
    local, domain = _mailbox(config)
    return f"{local}+{token(config, MAILTO_PURPOSE, subscriber_id)}@{domain}"


def subscriber_of_mailto(config: Mapping[str, Any], address: str) -> int | None:
    """The reader an unsubscribe address (or its mailto: URL) names; None when the token is
    missing, forged or altered, or the address is another one."""
    return _tagged(config, MAILTO_PURPOSE, _mailbox(config), address)
