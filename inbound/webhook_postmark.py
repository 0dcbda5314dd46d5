"""Postmark webhooks: Postmark signs nothing, so each request must carry the HTTP Basic
credentials configured for the webhook (compared in constant time), and may be limited to
Postmark's source addresses (POSTMARK_ALLOWED_IPS). Bounce, SpamComplaint and SubscriptionChange
records are applied; the rest are acknowledged and ignored.

Postmark's MessageID is its own; our Message-ID is found only when the send put it in the
message's Metadata (``message_id``), so the recipient address is what usually finds the reader.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from typing import Any

from werkzeug.datastructures import Headers

from inbound import webhook_common as common
from inbound.events import MailEvent
from inbound.webhook_common import Refused

# Postmark's bounce types (its Bounce API's list) by what they mean for the address.
HARD = ("HardBounce", "BadEmailAddress")
SOFT = ("SoftBounce", "Transient", "DnsError", "Undeliverable", "Blocked")
KINDS = {"SpamComplaint": "complaint", "Unsubscribe": "unsubscribe", "AutoResponder": "auto_reply"}
SUPPRESSIONS = {
    "HardBounce": "hard_bounce",
    "SpamComplaint": "complaint",
    "ManualSuppression": "unsubscribe",
}


def enabled(config: Mapping[str, Any]) -> bool:
    return bool(config["POSTMARK_USERNAME"] and config["POSTMARK_PASSWORD"])


def read(config: Mapping[str, Any], body: bytes, headers: Headers, client: str) -> list[MailEvent]:
    _check_client(config, client)
    _check_credentials(config, headers.get("Authorization", ""))
    record = common.json_body(body)
    if not isinstance(record, dict):
        raise Refused(400, "The body is not a Postmark webhook.")
    kind = record.get("RecordType")
    if kind in ("Bounce", "SpamComplaint"):
        return _bounce(record)
    if kind == "SubscriptionChange":
        return _subscription_change(record)
    return []


def _check_client(config: Mapping[str, Any], client: str) -> None:
    allowed = config["POSTMARK_ALLOWED_IPS"]
    if not allowed:
        return
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        raise Refused(403, "This address may not post Postmark webhooks.") from None
    if not any(address in ipaddress.ip_network(net, strict=False) for net in allowed):
        raise Refused(403, "This address may not post Postmark webhooks.")


def _check_credentials(config: Mapping[str, Any], authorization: str) -> None:
    scheme, _, encoded = authorization.partition(" ")
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        given = b""
    expected = f"{config['POSTMARK_USERNAME']}:{config['POSTMARK_PASSWORD']}".encode()
    # Both sides hashed first, so the comparison takes the same time whatever the lengths.
    same = hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(expected).digest())
    if scheme.lower() != "basic" or not same:
        raise Refused(401, "The Postmark webhook credentials are wrong.")


def _our_message_id(record: Mapping[str, Any]) -> str | None:
    metadata = common.mapping(record, "Metadata", "The Postmark record")
    for name, value in metadata.items():
        if str(name).lower().replace("-", "_") == "message_id" and isinstance(value, str):
            return value.strip() or None
    return None


def _bounce(record: Mapping[str, Any]) -> list[MailEvent]:
    bounce_type = common.text(record, "Type", "The Postmark bounce")
    kind = (
        "hard_bounce"
        if bounce_type in HARD
        else "soft_bounce"
        if bounce_type in SOFT
        else KINDS.get(str(bounce_type))
    )
    if kind is None:
        return []
    identifier = record.get("ID")
    if (
        not isinstance(identifier, int | str)
        or isinstance(identifier, bool)
        or str(identifier) == ""
    ):
        raise Refused(400, "The Postmark bounce has no ID.")
    details = record.get("Details")
    return [
        MailEvent(
            kind=kind,
            source="postmark",
            key=common.key("bounce", str(identifier)),
            occurred_at=common.iso_time(record.get("BouncedAt"), "The Postmark bounce"),
            reason=common.reason(bounce_type, record.get("Description"), details),
            message_id=_our_message_id(record),
            address=common.address(record.get("Email"), "The Postmark bounce"),
            status=common.status(details),
        )
    ]


def _subscription_change(record: Mapping[str, Any]) -> list[MailEvent]:
    recipient = common.address(record.get("Recipient"), "The Postmark subscription change")
    changed = common.text(record, "ChangedAt", "The Postmark subscription change")
    suppressed = record.get("SuppressSending")
    if not isinstance(suppressed, bool):
        raise Refused(400, "The Postmark subscription change has no SuppressSending.")
    why = record.get("SuppressionReason")
    if why is not None and not isinstance(why, str):
        raise Refused(400, "The Postmark subscription change's SuppressionReason is not text.")
    if not suppressed or why not in SUPPRESSIONS:
        # Reactivated by the customer or by us: nothing to apply here.
        return []
    # A subscription change has no ID of its own: what it says, together, is its identity.
    identity = f"{record.get('MessageID')}|{recipient.lower()}|{changed}|{why}"
    return [
        MailEvent(
            kind=SUPPRESSIONS[str(why)],
            source="postmark",
            key="change:" + hashlib.sha256(identity.encode("utf-8")).hexdigest(),
            occurred_at=common.iso_time(changed, "The Postmark subscription change"),
            reason=common.reason("SubscriptionChange", why, record.get("Origin")),
            message_id=_our_message_id(record),
            address=recipient,
        )
    ]
