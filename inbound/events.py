"""Every way news comes back ends here: write the event once, then apply what it means.

The receiver (DSNs, ARF complaints, mailed unsubscribes, auto-replies) and the provider webhooks
turn what they read into a ``MailEvent`` and call ``record``. It writes the row, unique on
(source, key), with ``INSERT … ON CONFLICT DO NOTHING`` on both databases, so the same report
twice, even at the same moment from two processes, is applied once. Then, in the same
transaction: a permanent bounce marks the delivery and the reader bounced and suppresses the
address; temporary bounces are counted and ``SOFT_BOUNCE_LIMIT`` of them within
``SOFT_BOUNCE_DAYS`` count as permanent; a complaint marks the reader complained and suppresses
the address; a mailed unsubscribe unsubscribes; an auto-reply is only kept. Every change of a
reader writes a consent record. The caller commits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from campaigns.models import Delivery
from campaigns.send import message_id as delivery_message_id
from core.db import utcnow
from inbound.models import MailEventRow
from subscribers import service
from subscribers.models import Subscriber

KINDS = ("hard_bounce", "soft_bounce", "complaint", "unsubscribe", "auto_reply")
SOURCES = ("dsn", "arf", "mailto", "ses", "mailgun", "postmark", "sendgrid")
EFFECTS = ("suppressed", "soft_counted", "unsubscribed", "ignored", "unmatched")
REASON_LIMIT = 1000
KEY_LIMIT = 200
# Our campaign Message-IDs: <d{delivery id}.{16 hex digits}@{MESSAGE_ID_DOMAIN}>.
_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;:]+")
_OUR_MESSAGE_ID = re.compile(r"<?d(\d{1,10})\.([0-9a-f]{16})@([^>\s]+)>?")


@dataclass(frozen=True)
class MailEvent:
    """What a report or provider says happened to one message (see ISSUE 11's contract)."""

    kind: str  # one of KINDS
    source: str  # one of SOURCES
    key: str  # idempotency key, unique within source
    occurred_at: datetime  # aware UTC
    reason: str  # what the receiving server/provider said, raw, truncated to 1000
    delivery_id: int | None = None  # from a VERP return path
    message_id: str | None = None  # our Message-ID as the report/provider quotes it
    address: str | None = None  # the recipient the report names
    subscriber_id: int | None = None  # from a mailto unsubscribe token
    status: str | None = None  # enhanced status code, e.g. "5.1.1"


@dataclass(frozen=True)
class Recorded:
    duplicate: bool  # the same (source, key) was recorded before: nothing changed
    effect: str  # one of EFFECTS


@dataclass(frozen=True)
class _Target:
    subscriber: Subscriber | None
    delivery: Delivery | None


def record(db_session: Session, config: Mapping[str, Any], event: MailEvent) -> Recorded:
    """Write the event row and apply it in the same transaction; see the module note.

    Never raises on an unknown address (effect 'unmatched'); a kind or source outside the lists
    is the caller's mistake and raises ValueError before anything is written. The caller commits.
    """
    _check(event)
    target = _target(db_session, config, event)
    row_id = _insert(db_session, event, target)
    if row_id is None:
        earlier = db_session.scalar(
            select(MailEventRow.effect).where(
                MailEventRow.source == event.source, MailEventRow.key == event.key
            )
        )
        return Recorded(duplicate=True, effect=earlier or "ignored")
    effect = _apply(db_session, config, event, target)
    db_session.execute(update(MailEventRow).where(MailEventRow.id == row_id).values(effect=effect))
    return Recorded(duplicate=False, effect=effect)


def _clean(text: str | None, limit: int) -> str | None:
    """``text`` without NUL (PostgreSQL's text refuses it, mail may carry it), cut to ``limit``."""
    return None if text is None else text.replace("\x00", "")[:limit]


def _check(event: MailEvent) -> None:
    if event.kind not in KINDS:
        raise ValueError(f"unknown mail event kind {event.kind!r}")
    if event.source not in SOURCES:
        raise ValueError(f"unknown mail event source {event.source!r}")
    if not event.key or len(event.key) > KEY_LIMIT:
        raise ValueError(f"a mail event key is 1 to {KEY_LIMIT} characters")
    if event.occurred_at.tzinfo is None:
        raise ValueError("a mail event's time must be aware (UTC)")


# --- which delivery, which reader -------------------------------------------------------------


def _target(db_session: Session, config: Mapping[str, Any], event: MailEvent) -> _Target:
    """The delivery from its id, else from our Message-ID, else the reader's latest; the
    reader from the delivery, else from the mailto token, else from the address.

    A delivery id the report proves (a VERP token or our signed Message-ID) that has no row
    matches nobody: the address the report names is not tried, or a report to a token of a
    removed (or never written) delivery could name any reader (review of issue 11).
    """
    claimed = _claimed_delivery(config, event)
    if claimed is not None:
        found = db_session.get(Delivery, claimed) if 0 < claimed < 2**31 else None
        if found is None:
            return _Target(None, None)
        return _Target(db_session.get(Subscriber, found.subscriber_id), found)
    subscriber = None
    if event.subscriber_id is not None:
        subscriber = db_session.get(Subscriber, event.subscriber_id)
    elif event.address:
        subscriber = service.find(db_session, service.canonical(event.address))
    if subscriber is None:
        return _Target(None, None)
    # A mailed unsubscribe or an address alone: most likely about the latest issue that had
    # reached their server by then; not a row still waiting or being sent, nor a later one.
    latest = db_session.scalars(
        select(Delivery)
        .where(
            Delivery.subscriber_id == subscriber.id,
            Delivery.status.in_(("sent", "failed", "bounced")),
            Delivery.sent_at.is_not(None),
            Delivery.sent_at <= event.occurred_at,
        )
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
        .limit(1)
    ).first()
    return _Target(subscriber, latest)


def _claimed_delivery(config: Mapping[str, Any], event: MailEvent) -> int | None:
    """The delivery id the event proves: its VERP id, else our signed Message-ID's."""
    if event.delivery_id is not None:
        return event.delivery_id
    if event.message_id:
        return delivery_of_message_id(config, event.message_id)
    return None


def delivery_of_message_id(config: Mapping[str, Any], message_id: str) -> int | None:
    """The delivery our Message-ID names, when it is one of ours (its tag is checked)."""
    match = _OUR_MESSAGE_ID.fullmatch(message_id.strip().lower())
    if match is None:
        return None
    delivery_id = int(match.group(1))
    if delivery_message_id(delivery_id, config).lower() != f"<{match.group(0).strip('<>')}>":
        return None
    return delivery_id


# --- writing the row -------------------------------------------------------------------------


def _insert(db_session: Session, event: MailEvent, target: _Target) -> int | None:
    """The new row's id, or None when (source, key) is there already."""
    values = {
        "kind": event.kind,
        "source": event.source,
        "key": _clean(event.key, KEY_LIMIT),
        "occurred_at": event.occurred_at,
        "recorded_at": utcnow(),
        "reason": _clean(event.reason, REASON_LIMIT),
        "status": _clean(event.status, 12) or None,
        "subscriber_id": target.subscriber.id if target.subscriber else None,
        "delivery_id": target.delivery.id if target.delivery else None,
        "campaign_id": target.delivery.campaign_id if target.delivery else None,
        "effect": "",
    }
    bind = db_session.get_bind()
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(MailEventRow)
        .values(values)
        .on_conflict_do_nothing(index_elements=["source", "key"])
        .returning(MailEventRow.id)
    )
    row_id = db_session.execute(statement).scalar_one_or_none()
    return int(row_id) if row_id is not None else None


# --- what it means -----------------------------------------------------------------------


def _apply(
    db_session: Session, config: Mapping[str, Any], event: MailEvent, target: _Target
) -> str:
    subscriber = target.subscriber
    if subscriber is None:
        return "unmatched"
    if event.kind == "auto_reply" or subscriber.erased_at is not None:
        return "ignored"
    note = _note(event)
    if event.kind == "unsubscribe":
        consent = service.Consent(source=event.source, note=note)
        return "unsubscribed" if service.unsubscribe(db_session, subscriber, consent) else "ignored"
    if event.kind == "soft_bounce" and not _too_many_soft(db_session, config, subscriber, event):
        return "soft_counted"
    reason = "complaint" if event.kind == "complaint" else "hard_bounce"
    # Only a settled row: one being sent right now, or waiting, is its batch's to record (and
    # the suppression below makes the next claim skip it).
    row = target.delivery
    changed = False
    if event.kind != "complaint" and row is not None and row.status in ("sent", "failed"):
        row.status = "bounced"
        changed = True
    if subscriber.email_hash is not None and service.is_suppressed(
        db_session, subscriber.email_hash
    ):
        changed = changed or subscriber.status not in service.BLOCKED_STATUSES
    else:
        changed = True
    consent_source = "complaint" if event.kind == "complaint" else "bounce"
    service.suppress(
        db_session, subscriber.email, reason, service.Consent(source=consent_source, note=note)
    )
    # An address blocked before is not blocked again: the editor's counts would count it twice.
    return "suppressed" if changed else "ignored"


def _too_many_soft(
    db_session: Session, config: Mapping[str, Any], subscriber: Subscriber, event: MailEvent
) -> bool:
    """Whether this temporary bounce (already written) makes SOFT_BOUNCE_LIMIT within the days.

    What counts is messages, not reports: a relay retries one slow message and warns each
    time, a provider posts a temporary failure per retry, one report lists the reader under
    several addresses, and SES tells by SNS and by mail. So the limit is of distinct deliveries
    (review of issue 11). An event tied to no delivery counts once per campaign it names,
    else once per day: one more failing day, not each retry that day.
    """
    since = event.occurred_at - timedelta(days=int(config["SOFT_BOUNCE_DAYS"]))
    rows = db_session.execute(
        select(MailEventRow.delivery_id, MailEventRow.campaign_id, MailEventRow.occurred_at).where(
            MailEventRow.subscriber_id == subscriber.id,
            MailEventRow.kind == "soft_bounce",
            MailEventRow.occurred_at > since,
        )
    ).all()
    messages: set[tuple[str, object]] = set()
    for delivery_id, campaign_id, occurred_at in rows:
        if delivery_id is not None:
            messages.add(("delivery", delivery_id))
        elif campaign_id is not None:
            messages.add(("campaign", campaign_id))
        else:
            messages.add(("day", occurred_at.date()))
    return len(messages) >= int(config["SOFT_BOUNCE_LIMIT"])


def _note(event: MailEvent) -> str:
    """The consent record's note: where it came from and what the server said, addresses
    left out (an erase scrubs the consent record's fields, not its note)."""
    said = " ".join((_clean(event.reason, REASON_LIMIT) or "").split())
    said = _ADDRESS.sub("(address)", said)
    code = f"{event.status} " if event.status else ""
    return f"{event.source} {event.kind}: {code}{said}"[:300]


def forget(db_session: Session, subscriber_id: int, address: str) -> None:
    """An erased person's address leaves what the servers said: every address in their own
    events, and theirs wherever an unmatched report quoted it (registered as an erase hook)."""
    quoted = re.compile(re.escape(address), re.IGNORECASE)
    rows = db_session.scalars(
        select(MailEventRow).where(
            (MailEventRow.subscriber_id == subscriber_id)
            | func.lower(MailEventRow.reason).contains(address.lower(), autoescape=True)
        )
    )
    for row in rows:
        scrubbed = quoted.sub("(address)", row.reason)
        if row.subscriber_id == subscriber_id:
            scrubbed = _ADDRESS.sub("(address)", scrubbed)
        row.reason = scrubbed
