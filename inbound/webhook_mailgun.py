"""Mailgun webhooks (JSON): an HMAC-SHA256 of timestamp and token under the webhook signing key.

A timestamp further than WEBHOOK_MAX_AGE_SECONDS from now is refused, and each token is taken
once (Mailgun's advice against replays). Events ``failed`` (severity permanent or temporary),
``complained`` and ``unsubscribed`` are applied; every other event is acknowledged and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from werkzeug.datastructures import Headers

from inbound import webhook_common as common
from inbound.events import MailEvent
from inbound.webhook_common import Refused

KINDS = {"complained": "complaint", "unsubscribed": "unsubscribe"}


def enabled(config: Mapping[str, Any]) -> bool:
    return bool(config["MAILGUN_SIGNING_KEY"])


def read(config: Mapping[str, Any], body: bytes, headers: Headers, client: str) -> list[MailEvent]:
    payload = common.json_body(body)
    if not isinstance(payload, dict):
        raise Refused(400, "The body is not a Mailgun webhook.")
    signed = common.mapping(payload, "signature", "The Mailgun webhook")
    token = _verify(config, signed)
    found = event(common.mapping(payload, "event-data", "The Mailgun webhook"))
    common.first_use(config, "mailgun", token)
    return found


def _verify(config: Mapping[str, Any], signed: Mapping[str, Any]) -> str:
    """The token of a request Mailgun signed lately; 401 or 403 otherwise."""
    parts = [signed.get(name) for name in ("timestamp", "token", "signature")]
    if not all(isinstance(part, str) and part for part in parts):
        raise Refused(401, "The Mailgun signature is missing.")
    timestamp, token, signature = (str(part) for part in parts)
    expected = hmac.new(
        str(config["MAILGUN_SIGNING_KEY"]).encode("utf-8"),
        (timestamp + token).encode("utf-8"),
        hashlib.sha256,
    ).hexdigest()
    # Bytes, not text: compare_digest refuses text that is not ASCII with a TypeError.
    if not hmac.compare_digest(expected.encode(), signature.lower().encode("utf-8")):
        raise Refused(401, "The Mailgun signature does not match.")
    common.check_age(config, common.epoch_time(timestamp, "The Mailgun signature"), "The request")
    return token


def event(data: Mapping[str, Any]) -> list[MailEvent]:
    """The event Mailgun's event-data describes, if it is one we act on."""
    name = data.get("event")
    if not isinstance(name, str):
        raise Refused(400, "The Mailgun event has no event name.")
    if name == "failed":
        severity = data.get("severity")
        if severity not in ("permanent", "temporary"):
            raise Refused(400, "The Mailgun failure has no severity.")
        kind = "hard_bounce" if severity == "permanent" else "soft_bounce"
    elif name in KINDS:
        kind = KINDS[name]
    else:
        return []
    status = common.mapping(data, "delivery-status", "The Mailgun event")
    headers = common.mapping(
        common.mapping(data, "message", "The Mailgun event"), "headers", "The Mailgun message"
    )
    quoted = headers.get("message-id")
    return [
        MailEvent(
            kind=kind,
            source="mailgun",
            key=common.key(str(common.text(data, "id", "The Mailgun event"))),
            occurred_at=common.epoch_time(data.get("timestamp"), "The Mailgun event"),
            reason=common.reason(
                status.get("code"),
                status.get("message") or status.get("description"),
                data.get("reason") if name == "failed" else name,
            ),
            message_id=quoted.strip() if isinstance(quoted, str) and quoted.strip() else None,
            address=common.address(data.get("recipient"), "The Mailgun event"),
            status=common.status(status.get("enhanced-code"))
            or common.status(status.get("message")),
        )
    ]
