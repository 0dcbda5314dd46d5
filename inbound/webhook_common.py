"""What every provider webhook shares: the refusal, field readers, keys, times and replays."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any

import redis
from flask import g
from limits import RateLimitItem
from limits import parse

from core import security
from inbound.events import KEY_LIMIT
from inbound.events import REASON_LIMIT

ADDRESS_LIMIT = 320
STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


class Refused(Exception):
    """A request we do not act on: the HTTP status and one plain sentence for the sender."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_body(body: bytes, keep_nul: bool = False) -> Any:
    """The body as JSON, without NUL characters (PostgreSQL cannot store them), or 400.

    SNS signs the parsed field values, so its envelope is read with ``keep_nul``.
    """
    try:
        parsed = json.loads(body)
        return parsed if keep_nul else _without_nul(parsed)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Refused(400, "The body is not JSON.") from None


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


def text(data: Mapping[str, Any], name: str, what: str, required: bool = True) -> str | None:
    """A text field of ``data``; 400 when it is required and missing, or not text."""
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise Refused(400, f"{what} has no {name}.")
    return value


def mapping(data: Mapping[str, Any], name: str, what: str) -> Mapping[str, Any]:
    """A JSON object field of ``data`` (an absent one is empty); 400 when it is something else."""
    value = data.get(name, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Refused(400, f"{what}'s {name} is not an object.")
    return value


def address(value: Any, what: str) -> str:
    """A recipient address as the provider wrote it; 400 when it cannot be one."""
    if not isinstance(value, str) or "@" not in value or len(value) > ADDRESS_LIMIT:
        raise Refused(400, f"{what} names no recipient address.")
    return value.strip()


def status(value: Any) -> str | None:
    """An enhanced status code (RFC 3463) found in ``value``, if any."""
    if not isinstance(value, str):
        return None
    found = STATUS.search(value)
    return found.group(0) if found else None


def reason(*parts: Any) -> str:
    """What the provider said, its text parts joined, at most the ledger's length."""
    said = " ".join(str(p).strip() for p in parts if p not in (None, "") and str(p).strip())
    return said[:REASON_LIMIT]


def key(*parts: str) -> str:
    """An idempotency key from its parts; hashed when it would be longer than the ledger keeps."""
    joined = ":".join(parts).replace("\x00", "")
    if len(joined) <= KEY_LIMIT:
        return joined
    return "sha256:" + hashlib.sha256(joined.encode("utf-8")).hexdigest()


def iso_time(value: Any, what: str) -> datetime:
    """An ISO 8601 time (``2016-01-27T14:59:38.237Z``) as aware UTC; 400 otherwise."""
    if not isinstance(value, str):
        raise Refused(400, f"{what} has no time.")
    try:
        moment = datetime.fromisoformat(_seven_digits_at_most(value.strip()))
    except ValueError:
        raise Refused(400, f"{what} has no readable time.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _seven_digits_at_most(value: str) -> str:
    """Python reads at most six fraction digits; .NET (Postmark) writes seven."""
    return re.sub(r"(\.\d{6})\d+", r"\1", value)


def epoch_time(value: Any, what: str) -> datetime:
    """Seconds since 1970 (a number, or digits in text) as aware UTC; 400 otherwise."""
    try:
        seconds = float(value)
        return datetime.fromtimestamp(seconds, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise Refused(400, f"{what} has no readable time.") from None


def check_age(config: Mapping[str, Any], sent: datetime, what: str) -> None:
    """Refuse (403) a signed time further than WEBHOOK_MAX_AGE_SECONDS from now."""
    drift = abs((datetime.now(UTC) - sent).total_seconds())
    if drift > int(config["WEBHOOK_MAX_AGE_SECONDS"]):
        raise Refused(403, f"{what} is too old (or from the future); it may be a replay.")


def _nonce_limit(config: Mapping[str, Any]) -> RateLimitItem:
    return parse(f"1 per {2 * int(config['WEBHOOK_MAX_AGE_SECONDS'])} second")


def first_use(config: Mapping[str, Any], provider: str, nonce: str) -> None:
    """Refuse (409) a signed request seen before within twice the age limit: a replay.

    Counted in the rate limiter's store as a limit of one per window, so every web process
    (and host) sees the same tokens; a token older than the window fails ``check_age`` first.
    The request's nonces are kept on ``g`` so that ``forget_nonces`` can give them back when
    recording fails, and the provider's retry is not taken for a replay.
    """
    digest = hashlib.sha256(nonce.encode("utf-8")).hexdigest()
    if not security.hit(_nonce_limit(config), "webhook-nonce", provider, digest):
        raise Refused(409, "This request was received before; nothing was changed.")
    g.setdefault("webhook_nonces", []).append((provider, digest))


def forget_nonces(config: Mapping[str, Any]) -> None:
    """Un-see this request's nonces: its events were not recorded (the transaction failed)."""
    for provider, digest in g.pop("webhook_nonces", []):
        try:
            security.limiter.limiter.clear(_nonce_limit(config), "webhook-nonce", provider, digest)
        except (redis.RedisError, OSError):
            # Counted in memory while Redis was down; that count ends with its window.
            continue
