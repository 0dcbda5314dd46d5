"""Amazon SES events through SNS: bounces and complaints, from topics the settings allow.

Anyone can make an SNS topic, and SNS signs its messages too, so a valid signature alone proves
nothing about who sent a message: only topics listed in SES_TOPIC_ARNS are acted on. SES writes
its event as JSON inside the SNS message (``notificationType`` for identity notifications,
``eventType`` for configuration-set events; both read the same). Deliveries and every other
type are acknowledged and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug.datastructures import Headers

from inbound import sns
from inbound import webhook_common as common
from inbound.events import MailEvent
from inbound.webhook_common import Refused

KINDS = {"Permanent": "hard_bounce", "Transient": "soft_bounce", "Undetermined": "soft_bounce"}


def enabled(config: Mapping[str, Any]) -> bool:
    return bool(config["SES_TOPIC_ARNS"])


def read(config: Mapping[str, Any], body: bytes, headers: Headers, client: str) -> list[MailEvent]:
    """Verify the SNS message and turn it into events; confirm a subscription to an allowed topic."""
    message = sns.check_shape(common.json_body(body, keep_nul=True))
    if message["TopicArn"] not in config["SES_TOPIC_ARNS"]:
        raise Refused(403, "This SNS topic is not one of SES_TOPIC_ARNS.")
    sns.verify(message)
    if message["Type"] == "SubscriptionConfirmation":
        sns.confirm(message)
        return []
    if message["Type"] != "Notification":
        return []
    return events(message)


def events(message: Mapping[str, Any]) -> list[MailEvent]:
    """The bounce or complaint events of a verified SNS notification, one per recipient."""
    ses = common.json_body(message["Message"].encode("utf-8"))
    if not isinstance(ses, dict):
        raise Refused(400, "The SES event is not an object.")
    kind = ses.get("notificationType") or ses.get("eventType")
    if kind == "Bounce":
        return _bounces(message["MessageId"], ses)
    if kind == "Complaint":
        return _complaints(message["MessageId"], ses)
    return []


def message_id(ses: Mapping[str, Any]) -> str | None:
    """Our Message-ID as SES quotes it: commonHeaders, else the original headers, if kept."""
    mail = common.mapping(ses, "mail", "The SES event")
    found = common.mapping(mail, "commonHeaders", "The SES mail").get("messageId")
    if isinstance(found, str) and found.strip():
        return found.strip()
    headers = mail.get("headers")
    for header in headers if isinstance(headers, list) else []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            value = header.get("value")
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


def _recipients(part: Mapping[str, Any], name: str, what: str) -> list[Mapping[str, Any]]:
    listed = part.get(name)
    if not isinstance(listed, list) or not listed:
        raise Refused(400, f"{what} lists no {name}.")
    if not all(isinstance(item, dict) for item in listed):
        raise Refused(400, f"{what}'s {name} are not objects.")
    return listed


def _bounces(sns_id: str, ses: Mapping[str, Any]) -> list[MailEvent]:
    bounce = common.mapping(ses, "bounce", "The SES event")
    bounce_type = common.text(bounce, "bounceType", "The SES bounce")
    occurred = common.iso_time(bounce.get("timestamp"), "The SES bounce")
    quoted = message_id(ses)
    found = []
    for recipient in _recipients(bounce, "bouncedRecipients", "The SES bounce"):
        address = common.address(recipient.get("emailAddress"), "An SES bounced recipient")
        said = common.reason(
            recipient.get("diagnosticCode") or f"{bounce_type} {bounce.get('bounceSubType', '')}"
        )
        found.append(
            MailEvent(
                kind=KINDS.get(str(bounce_type), "soft_bounce"),
                source="ses",
                key=common.key(sns_id, address.lower()),
                occurred_at=occurred,
                reason=said,
                message_id=quoted,
                address=address,
                status=common.status(recipient.get("status")),
            )
        )
    return found


def _complaints(sns_id: str, ses: Mapping[str, Any]) -> list[MailEvent]:
    complaint = common.mapping(ses, "complaint", "The SES event")
    occurred = common.iso_time(complaint.get("timestamp"), "The SES complaint")
    said = common.reason("complaint", complaint.get("complaintFeedbackType"))
    quoted = message_id(ses)
    return [
        MailEvent(
            kind="complaint",
            source="ses",
            key=common.key(sns_id, address.lower()),
            occurred_at=occurred,
            reason=said,
            message_id=quoted,
            address=address,
        )
        for address in (
            common.address(r.get("emailAddress"), "An SES complained recipient")
            for r in _recipients(complaint, "complainedRecipients", "The SES complaint")
        )
    ]
