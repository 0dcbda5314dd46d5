"""SendGrid's Signed Event Webhook: an ECDSA P-256 signature over the timestamp and the raw body,
checked with the public key from SendGrid's settings (SENDGRID_PUBLIC_KEY).

A batch whose timestamp is further than WEBHOOK_MAX_AGE_SECONDS from now, or whose timestamp and
body were seen before, is refused. The replay key is what was signed, not the signature: an ECDSA
signature has other valid forms (another DER encoding, s for n - s, a fresh random signing), so
a replay with its signature changed would pass a check of the signature.

Events bounce (type bounce: permanent, blocked: temporary), dropped (by its reason), spamreport,
unsubscribe and group_unsubscribe are applied, keyed by sg_event_id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.datastructures import Headers

from core.config import ConfigError
from inbound import webhook_common as common
from inbound.events import MailEvent
from inbound.webhook_common import Refused

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
KINDS = {
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}
# Why SendGrid dropped a message without sending it: its own suppression lists, by what they hold.
DROPPED = {
    "bounced address": "hard_bounce",
    "invalid": "hard_bounce",
    "spam reporting address": "complaint",
    "unsubscribed address": "unsubscribe",
}
EVENT_LIMIT = 10_000


def enabled(config: Mapping[str, Any]) -> bool:
    return bool(config["SENDGRID_PUBLIC_KEY"])


def public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The P-256 key SendGrid shows (base64 DER), or a PEM; ConfigError otherwise."""
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            key = serialization.load_der_public_key(base64.b64decode(text.strip(), validate=True))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise ConfigError(
            "NEWSLETTER_SENDGRID_PUBLIC_KEY is not a public key (base64 or PEM)."
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigError("NEWSLETTER_SENDGRID_PUBLIC_KEY must be SendGrid's ECDSA P-256 key.")
    return key


def read(config: Mapping[str, Any], body: bytes, headers: Headers, client: str) -> list[MailEvent]:
    signed = _verify(config, body, headers)
    batch = common.json_body(body)
    if not isinstance(batch, list) or not all(isinstance(item, dict) for item in batch):
        raise Refused(400, "The body is not a list of SendGrid events.")
    if len(batch) > EVENT_LIMIT:
        raise Refused(400, "Too many SendGrid events in one request.")
    found = [e for item in batch for e in event(item)]
    common.first_use(config, "sendgrid", hashlib.sha256(signed).hexdigest())
    return found


def _verify(config: Mapping[str, Any], body: bytes, headers: Headers) -> bytes:
    """The signed bytes (the timestamp, then the body), once the signature and age check."""
    signature, timestamp = headers.get(SIGNATURE, ""), headers.get(TIMESTAMP, "")
    if not signature or not timestamp:
        raise Refused(401, "The SendGrid signature is missing.")
    try:
        der = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(401, "The SendGrid signature is not base64.") from None
    key = public_key(str(config["SENDGRID_PUBLIC_KEY"]))
    signed = timestamp.encode("utf-8") + body
    try:
        key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise Refused(401, "The SendGrid signature does not match.") from None
    common.check_age(config, common.epoch_time(timestamp, "The SendGrid timestamp"), "The request")
    return signed


def _kind(item: Mapping[str, Any]) -> str | None:
    name = item.get("event")
    if name == "bounce":
        return "soft_bounce" if item.get("type") == "blocked" else "hard_bounce"
    if name == "dropped":
        said = str(item.get("reason", "")).lower()
        return next((kind for start, kind in DROPPED.items() if said.startswith(start)), None)
    return KINDS.get(str(name))


def event(item: Mapping[str, Any]) -> list[MailEvent]:
    """The event one SendGrid item describes, if it is one we act on."""
    kind = _kind(item)
    if kind is None:
        return []
    quoted = item.get("smtp-id")
    return [
        MailEvent(
            kind=kind,
            source="sendgrid",
            key=common.key(str(common.text(item, "sg_event_id", "A SendGrid event"))),
            occurred_at=common.epoch_time(item.get("timestamp"), "A SendGrid event"),
            reason=common.reason(item.get("event"), item.get("type"), item.get("reason")),
            message_id=quoted.strip() if isinstance(quoted, str) and quoted.strip() else None,
            address=common.address(item.get("email"), "A SendGrid event"),
            status=common.status(item.get("status")),
        )
    ]
