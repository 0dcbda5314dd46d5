"""What a message that came to one of our addresses means: zero or more ``MailEvent``s.

A plain function of the raw bytes and the envelope recipient the relay gave us; it touches no
database and never raises on bad mail (the receiver records what it returns). In order:

1. Mail to the unsubscribe address counts only with a valid token in that address
   (``unsubscribe+TOKEN@…``, ``mailer.verp.subscriber_of_mailto``): the From line is not read,
   so nobody can unsubscribe someone else by forging it. An automatic reply to it is no
   unsubscribe.
2. A complaint report (ARF, RFC 5965): the complaining reader from our VERP return path in
   Original-Mail-From, our Message-ID in the reported message, or Original-Rcpt-To.
3. A delivery status notification (RFC 3464), read with the stdlib email package: one event per
   recipient whose Action is failed or delayed, permanent or temporary by its Status and the
   receiving server's words (``formats.severity``).
4. An automatic reply (out of office, 自动回复): recorded and ignored.
5. The many bounces that are not RFC 3464: flufl.bounce's detectors (GNU Mailman's), then the
   Chinese providers' own formats.
6. A bounce nobody can read, sent to a VERP return path: a temporary bounce of that delivery.
7. Anything else (a person writing to the bounce address): nothing.

Every event's key is the SHA-256 of the raw bytes, the envelope recipient and the address it
names, so the same report delivered twice is recorded once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from typing import Any

from flufl.bounce import _scan as flufl_scan

from inbound import formats
from inbound.events import MailEvent
from mailer import verp

log = logging.getLogger(__name__)

# Bounce reports are small; a large message is read only this far, so a 10 MB body costs the
# same as a short one (the report parts come first in every format we know).
READ_LIMIT = 1_000_000
REASON_LIMIT = 1000
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")


def classify(raw: bytes, recipient: str, config: Mapping[str, Any]) -> list[MailEvent]:
    """The events one inbound message stands for; [] for mail that means nothing to us."""
    now = datetime.now(UTC)
    try:
        message = message_from_bytes(raw[:READ_LIMIT], policy=compat32)
        return _classify(message, raw, recipient, config, now)
    except Exception as error:
        # The stdlib parser and flufl.bounce's heuristics raise many kinds of errors on hostile
        # input (recursion on deep nesting, lookups of unknown charsets, index errors on
        # truncated parts); none of it may reach the SMTP session, and none of it means a bounce.
        log.warning(
            "inbound: unreadable message to %s (%s: %s)", recipient, type(error).__name__, error
        )
        return []


def _classify(
    message: Message, raw: bytes, recipient: str, config: Mapping[str, Any], now: datetime
) -> list[MailEvent]:
    maker = _Maker(raw, recipient, now)
    if verp.subscriber_of_mailto(config, recipient) is not None or _is_unsubscribe_box(
        config, recipient
    ):
        return _unsubscribe(message, recipient, config, maker)
    delivery_id = verp.delivery_of(config, recipient)
    return [_vouched(event) for event in _reports(message, config, maker, delivery_id)]


def _vouched(event: MailEvent) -> MailEvent:
    """A report's address counts only when the report came to a delivery's own return path.

    Anyone can mail the bare bounce address a well-formed report naming any reader; without a
    VERP token (or our signed Message-ID quoted in it, which ``record`` checks) it must suppress
    nobody, so the address is dropped and the event is kept as unmatched.
    """
    if event.delivery_id is None and event.kind in ("hard_bounce", "soft_bounce", "complaint"):
        return dataclasses.replace(event, address=None)
    return event


def _reports(
    message: Message, config: Mapping[str, Any], maker: _Maker, delivery_id: int | None
) -> list[MailEvent]:
    if _is_report(message, "feedback-report"):
        return _complaint(message, config, maker, delivery_id)
    if _is_report(message, "delivery-status"):
        events = _dsn(message, config, maker, delivery_id)
        if events is not None:
            return events
    if formats.is_auto_reply(message) and not formats.from_daemon(message):
        reason = formats.text_of(message.get("subject"))
        return [maker.event("auto_reply", "dsn", reason, delivery_id=delivery_id)]
    events = _heuristic(message, config, maker, delivery_id)
    if events:
        return events
    if delivery_id is not None and formats.from_daemon(message):
        reason = formats.text_of(message.get("subject")) + " " + formats.body_text(message)[:500]
        return [maker.event("soft_bounce", "dsn", reason, delivery_id=delivery_id)]
    return []


class _Maker:
    """Builds events that share the report's time and idempotency key base."""

    def __init__(self, raw: bytes, recipient: str, now: datetime) -> None:
        self.recipient = _clean(recipient.lower())
        self.base = hashlib.sha256(raw + b"\0" + self.recipient.encode())
        self.now = now

    def event(
        self, kind: str, source: str, reason: str, *, delayed: bool = False, **fields: Any
    ) -> MailEvent:
        """An event; text fields made storable (no NUL, no undecodable bytes) on both databases.

        A delay warning is keyed by the message it is about and whom it names, not by its
        bytes: a relay warns several times about one slow message (after 4 hours, a day, two
        days), and that is one temporary bounce, not SOFT_BOUNCE_LIMIT of them. The message is
        the delivery a VERP return path names, else our Message-ID the warning quotes, else the
        day: without VERP every warning comes back to the one bounce address, and a key of that
        address and the reader's counted the next issue's slow message as the first's, once
        forever (review of issue 11).
        """
        values: dict[str, Any] = {
            name: _clean(value) if isinstance(value, str) else value
            for name, value in fields.items()
        }
        address = str(values.get("address") or "").lower()
        if delayed:
            message = self._delayed_message(values.get("delivery_id"), values.get("message_id"))
            key = hashlib.sha256(f"delayed\0{self.recipient}\0{address}\0{message}".encode())
        else:
            key = self.base.copy()
            key.update(b"\0" + address.encode())
        return MailEvent(
            kind=kind,
            source=source,
            key=key.hexdigest(),
            occurred_at=self.now,
            reason=" ".join(_clean(reason).split())[:REASON_LIMIT],
            **values,
        )

    def _delayed_message(self, delivery_id: Any, message_id: Any) -> str:
        """What names the message a delay warning is about, for its key (see ``event``)."""
        if delivery_id is not None:
            return f"delivery {delivery_id}"
        if message_id:
            return f"message {str(message_id).lower()}"
        return f"day {self.now.date().isoformat()}"


def _clean(text: str) -> str:
    """Text both databases store: NUL removed (PostgreSQL refuses it), and the stray bytes of
    an undecodable header (lone surrogates) replaced."""
    return text.replace("\0", "").encode("utf-8", "replace").decode("utf-8")


# --- mailed unsubscribes -------------------------------------------------------------------------


def _is_unsubscribe_box(config: Mapping[str, Any], recipient: str) -> bool:
    """Whether the recipient is the unsubscribe address itself or any +tag of it."""
    local, _, domain = str(config["UNSUBSCRIBE_MAILTO"]).lower().rpartition("@")
    got_local, _, got_domain = recipient.lower().strip("<>").rpartition("@")
    return got_domain == domain and (got_local == local or got_local.startswith(local + "+"))


def _unsubscribe(
    message: Message, recipient: str, config: Mapping[str, Any], maker: _Maker
) -> list[MailEvent]:
    subscriber_id = verp.subscriber_of_mailto(config, recipient)
    if subscriber_id is None:
        log.info(
            "inbound: unsubscribe mail to %s without a valid token: nothing changed", recipient
        )
        return []
    if formats.is_auto_reply(message) or formats.from_daemon(message):
        return [maker.event("auto_reply", "mailto", formats.text_of(message.get("subject")))]
    reason = "unsubscribe mailed: " + formats.text_of(message.get("subject"))
    return [maker.event("unsubscribe", "mailto", reason, subscriber_id=subscriber_id)]


# --- complaint reports (ARF) ---------------------------------------------------------------------


def _is_report(message: Message, report_type: str) -> bool:
    if message.get_content_type() != "multipart/report":
        return False
    return str(message.get_param("report-type", "")).lower() == report_type


def _fields(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    if isinstance(payload, str):
        return [HeaderParser(policy=compat32).parsestr(block) for block in payload.split("\n\n")]
    return []


def _original(message: Message) -> Message | None:
    """The returned or reported message (or its headers), as our own Message-ID is in it."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if kind == "text/rfc822-headers":
            text = part.get_payload(decode=True)
            if isinstance(text, bytes):
                return HeaderParser(policy=compat32).parsestr(text.decode("utf-8", "replace"))
    return None


def _our_message_id(original: Message | None) -> str | None:
    if original is None:
        return None
    found = _MESSAGE_ID.search(formats.text_of(original.get("message-id")))
    return found.group(0) if found else None


def _complaint(
    message: Message, config: Mapping[str, Any], maker: _Maker, delivery_id: int | None
) -> list[MailEvent]:
    report = next(
        (p for p in message.walk() if p.get_content_type() == "message/feedback-report"), None
    )
    fields: dict[str, str] = {}
    for block in _fields(report) if report is not None else []:
        for name, value in block.items():
            fields.setdefault(name.lower(), formats.text_of(value).strip())
    feedback = fields.get("feedback-type", "abuse").lower()
    if feedback == "not-spam":
        return []
    mail_from = fields.get("original-mail-from", "")
    delivery_id = delivery_id if delivery_id is not None else verp.delivery_of(config, mail_from)
    original = _original(message)
    address = _address(fields.get("original-rcpt-to", ""))
    if address is None and original is not None:
        address = _address(formats.text_of(original.get("to")))
    reason = f"{feedback} report from {fields.get('user-agent', 'a mailbox provider')}"
    return [
        maker.event(
            "complaint",
            "arf",
            reason,
            delivery_id=delivery_id,
            message_id=_our_message_id(original),
            address=address,
        )
    ]


def _address(text: str) -> str | None:
    """A plain address out of 'rfc822; a@b', '<a@b>' or 'Name <a@b>'."""
    value = text.split(";", 1)[1] if ";" in text else text
    found = re.search(r"<?([^<>\s;,]+@[^<>\s;,]+)>?", value)
    return found.group(1).strip(".") if found else None


# --- delivery status notifications (RFC 3464) ----------------------------------------------------


def _dsn(
    message: Message, config: Mapping[str, Any], maker: _Maker, delivery_id: int | None
) -> list[MailEvent] | None:
    """One event per failed or delayed recipient; None when the report has no status part to
    read (then the heuristics try)."""
    part = next(
        (p for p in message.walk() if p.get_content_type() == "message/delivery-status"), None
    )
    if part is None:
        return None
    recipients = [
        block for block in _fields(part)[1:] if block.get("action") or block.get("final-recipient")
    ]
    if not recipients:
        return None
    message_id = _our_message_id(_original(message))
    failing: dict[str, Message] = {}
    for block in recipients:
        address = _address(
            formats.text_of(block.get("original-recipient") or block.get("final-recipient"))
        )
        if _action(block) in ("failed", "delayed"):
            failing.setdefault((address or "").lower(), block)
    events = []
    for address, block in failing.items():
        action = _action(block)
        status = formats.enhanced_status(formats.text_of(block.get("status")))
        diagnostic = formats.text_of(block.get("diagnostic-code"))
        hard = action == "failed" and formats.severity(status, diagnostic) == "hard"
        events.append(
            maker.event(
                "hard_bounce" if hard else "soft_bounce",
                "dsn",
                diagnostic or f"{action} {status or ''}",
                delayed=action == "delayed",
                delivery_id=delivery_id,
                message_id=message_id,
                address=address or None,
                status=status,
            )
        )
    return events


def _action(block: Message) -> str:
    """The Action field's word: some servers follow it with words in brackets."""
    words = formats.text_of(block.get("action")).lower().split()
    return words[0] if words else ""


# --- everything else that looks like a bounce ----------------------------------------------------


def _flufl_failures(message: Message) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """flufl.bounce's ``all_failures``, but a detector that trips over a malformed message
    (several index headers that are not there) is skipped instead of ending the whole scan."""
    for detector in flufl_scan._DETECTORS:
        try:
            temporary, permanent = detector().process(message)
        except Exception as error:
            # Its heuristics index headers that hostile mail leaves out; one detector's
            # mistake must not hide what the others find.
            log.debug("inbound: flufl.bounce %s skipped (%s)", detector.__name__, error)
            continue
        if temporary or permanent:
            return frozenset(temporary), frozenset(permanent)
    return frozenset(), frozenset()


def _heuristic(
    message: Message, config: Mapping[str, Any], maker: _Maker, delivery_id: int | None
) -> list[MailEvent]:
    """flufl.bounce's detectors, then the Chinese formats; permanent or temporary per address."""
    temporary, permanent = _flufl_failures(message)
    found: list[tuple[str, str]] = [
        (a.decode("utf-8", "replace"), "hard") for a in sorted(permanent)
    ]
    # flufl.bounce's temporary failures are its warnings: a message still being retried.
    found += [(a.decode("utf-8", "replace"), "warn") for a in sorted(temporary - permanent)]
    reason = formats.text_of(message.get("subject"))
    if not found:
        chinese = formats.chinese_bounce(message)
        found = [(address, level) for address, level, _ in chinese]
        reason = chinese[0][2] if chinese else reason
    else:
        text = formats.body_text(message, limit=20_000)
        if formats.refused_for_content(text):
            found = [(address, "soft" if level == "hard" else level) for address, level in found]
        reason = f"{reason}: {text}"
    message_id = _our_message_id(_original(message))
    return [
        maker.event(
            "hard_bounce" if level == "hard" else "soft_bounce",
            "dsn",
            reason,
            delivery_id=delivery_id,
            message_id=message_id,
            address=address,
            status=formats.enhanced_status(reason),
            delayed=level == "warn",
        )
        for address, level in found
    ]
