"""What can happen to a subscription, as plain functions over a database session.

No request, no Celery: views and tasks parse their input, call one of these, and commit. Every
change of state writes a ``ConsentEvent`` in the same transaction, so the record can never
disagree with the row. Emails are queued through the outbox with an ``enqueue`` callback that
runs after the caller's commit.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from email_validator import EmailNotValidError
from email_validator import validate_email
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from core import registry
from core.db import utcnow
from mailer import outbox
from mailer import scrub
from mailer.models import OutboxMessage
from mailer.scrub import ERASED_DOMAIN
from subscribers.models import ConsentEvent
from subscribers.models import ImportJob
from subscribers.models import SignupRequest
from subscribers.models import Subscriber
from subscribers.models import Suppression

Enqueue = Callable[[int], None]
# Statuses whose address receives nothing, whatever a signup or import asks.
BLOCKED_STATUSES = ("bounced", "complained")
STATUS_FOR_REASON = {"hard_bounce": "bounced", "complaint": "complained", "manual": "unsubscribed"}
# The single emails this package sends (their builders are in subscribers/emails.py).
NOTICE_KINDS = ("confirm", "preferences_link")
# How long a previewed CSV upload (personal data) waits to be run or discarded.
PREVIEW_LIFETIME = timedelta(days=1)
# Fields that hold personal data; an erase replaces their values in the consent record.
PERSONAL_FIELDS = ("email", "name", "organisation")
# Characters no name or organisation may hold: controls (C0 and C1) and every character that
# Python's str.splitlines, and so its email package, treats as a line break. A header holding
# one is refused when the email is built, which would leave the message unsendable for good.
UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class AddressError(ValueError):
    """The text is not a usable email address; the message is email-validator's reason."""


class Blocked(Exception):
    """The address is suppressed or bounced; it cannot be (re)activated."""


@dataclass(frozen=True)
class Consent:
    """Where a change came from: the evidence written to the consent record."""

    source: str
    ip: str | None = None
    user_agent: str | None = None
    form_version: str | None = None
    actor: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Choices:
    """What a reader chooses on the subscribe and preferences forms."""

    topics: tuple[str, ...]
    format: str
    locale: str
    name: str | None = None
    organisation: str | None = None


# --- addresses ---------------------------------------------------------------------------


def normalise(address: str) -> str:
    """The address as we store and send to: domain lower-cased and IDNA-encoded."""
    try:
        result = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise AddressError(str(error)) from None
    return result.ascii_email or result.normalized


def canonical(address: str) -> str:
    """The normalised form of ``address`` when it is valid, else the text as given.

    For addresses that reach the service from outside the forms (bounce reports, say), so that
    every spelling of one mailbox gets the same hash.
    """
    try:
        return normalise(address)
    except AddressError:
        return address.strip()


def email_hash(address: str) -> str:
    """The key of an address in the subscriber and suppression tables."""
    return hashlib.sha256(address.lower().encode()).hexdigest()


def find(db_session: Session, address: str) -> Subscriber | None:
    """The subscriber with this (normalised) address, or None."""
    query = select(Subscriber).where(Subscriber.email_hash == email_hash(address))
    return db_session.scalars(query).one_or_none()


def is_suppressed(db_session: Session, hashed: str) -> bool:
    query = select(Suppression.id).where(Suppression.email_hash == hashed)
    return db_session.scalars(query).first() is not None


def is_blocked(db_session: Session, subscriber: Subscriber) -> bool:
    """True when nothing may reactivate this subscriber."""
    if subscriber.status in BLOCKED_STATUSES or subscriber.erased_at is not None:
        return True
    return subscriber.email_hash is not None and is_suppressed(db_session, subscriber.email_hash)


def new_nonce() -> str:
    return secrets.token_hex(8)


# --- the consent record ------------------------------------------------------------------


def record_consent(
    db_session: Session,
    subscriber: Subscriber,
    action: str,
    consent: Consent,
    changes: dict[str, Any] | None = None,
) -> ConsentEvent:
    """Write one consent event for ``subscriber`` (flushed, so that it gets its id)."""
    if subscriber.id is None:
        db_session.flush()
    event = ConsentEvent(
        subscriber_id=subscriber.id,
        action=action,
        source=consent.source,
        ip=consent.ip,
        user_agent=(consent.user_agent or "")[:300] or None,
        form_version=consent.form_version,
        changes=changes or {},
        actor=consent.actor,
        note=(consent.note or "")[:300] or None,
    )
    db_session.add(event)
    return event


def apply(subscriber: Subscriber, values: dict[str, Any]) -> dict[str, Any]:
    """Set ``values`` on the subscriber; return {field: [old, new]} for those that changed."""
    changes: dict[str, Any] = {}
    for name, new in values.items():
        old = getattr(subscriber, name)
        if name == "topics":
            old, new = sorted(old or ()), sorted(new)
        if old != new:
            changes[name] = [_jsonable(old), _jsonable(new)]
            setattr(subscriber, name, tuple(new) if name == "topics" else new)
    return changes


def _jsonable(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _choice_values(choices: Choices) -> dict[str, Any]:
    values: dict[str, Any] = {
        "topics": choices.topics,
        "format": choices.format,
        "locale": choices.locale,
        "name": choices.name or None,
    }
    if choices.organisation is not None:
        values["organisation"] = choices.organisation or None
    return values


# --- the reader's side -------------------------------------------------------------------


def subscribe(
    db_session: Session, address: str, choices: Choices, consent: Consent, enqueue: Enqueue
) -> str:
    """Handle a signup for ``address``, whatever state it is in; returns what was done.

    A new, pending or unsubscribed address is sent a confirmation link (and stays as it is
    until the link is used); an active one is sent its preferences link, so that nobody can
    change an active subscription by typing its address; a blocked one is sent nothing. The
    choices of someone who left are kept as they were, for the same reason: anyone can type
    the address, and only the confirmation proves it is theirs (its page leads to the
    preferences).
    """
    hashed = email_hash(address)
    subscriber = find(db_session, address)
    if is_suppressed(db_session, hashed) or (
        subscriber is not None and subscriber.status in BLOCKED_STATUSES
    ):
        return "blocked"
    if subscriber is not None and subscriber.status == "active":
        _queue(db_session, "preferences_link", subscriber, enqueue, reason="already_subscribed")
        return "link_sent"
    if subscriber is None:
        subscriber = Subscriber(
            email=address,
            email_hash=hashed,
            status="pending",
            confirm_nonce=new_nonce(),
            link_nonce=new_nonce(),
        )
        db_session.add(subscriber)
        changes = {"status": [None, "pending"], **apply(subscriber, _choice_values(choices))}
    elif subscriber.status == "pending":
        changes = apply(subscriber, _choice_values(choices))
    else:
        changes = {}
    record_consent(db_session, subscriber, "subscribe", consent, changes)
    _queue(db_session, "confirm", subscriber, enqueue)
    return "confirm_sent"


def send_link(db_session: Session, address: str, enqueue: Enqueue) -> str:
    """Mail the preferences link of ``address`` (a confirmation link if still pending)."""
    subscriber = find(db_session, address)
    if subscriber is None or is_blocked(db_session, subscriber):
        return "nothing"
    if subscriber.status == "pending":
        _queue(db_session, "confirm", subscriber, enqueue)
        return "confirm_sent"
    _queue(db_session, "preferences_link", subscriber, enqueue, reason="requested")
    return "link_sent"


def _queue(
    db_session: Session, kind: str, subscriber: Subscriber, enqueue: Enqueue, **params: Any
) -> OutboxMessage:
    db_session.flush()
    return outbox.queue(
        db_session,
        kind,
        subscriber.email,
        subscriber.locale,
        enqueue,
        subscriber_id=subscriber.id,
        **params,
    )


def confirm(
    db_session: Session, subscriber: Subscriber, consent: Consent, welcome: Enqueue | None = None
) -> Subscriber:
    """Activate a subscription from its confirmation link; the link is spent either way.

    With ``welcome``, a welcome email is queued, once: only by the request whose conditional
    UPDATE spent the link's nonce (two clicks at once both get this far; one wins).
    """
    if is_blocked(db_session, subscriber):
        raise Blocked()
    spent = subscriber.confirm_nonce
    fresh_nonce = new_nonce()
    won = db_session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber.id, Subscriber.confirm_nonce == spent)
        .values(confirm_nonce=fresh_nonce)
        .execution_options(synchronize_session=False)
    )
    subscriber.confirm_nonce = fresh_nonce
    values: dict[str, Any] = {"status": "active", "confirmed_at": utcnow(), "unsubscribed_at": None}
    changes = apply(subscriber, values)
    record_consent(db_session, subscriber, "confirm", consent, changes)
    if welcome is not None and getattr(won, "rowcount", 0) == 1 and "status" in changes:
        _queue(db_session, "welcome", subscriber, welcome)
    return subscriber


def update_preferences(
    db_session: Session, subscriber: Subscriber, choices: Choices, consent: Consent
) -> dict[str, Any]:
    """Save the reader's choices; returns what changed (nothing recorded when nothing did)."""
    changes = apply(subscriber, _choice_values(choices))
    if changes:
        record_consent(db_session, subscriber, "preferences", consent, changes)
    return changes


def unsubscribe(db_session: Session, subscriber: Subscriber, consent: Consent) -> bool:
    """Stop all mail to ``subscriber``; False when there was nothing to stop."""
    if subscriber.status in ("unsubscribed", *BLOCKED_STATUSES):
        return False
    changes = apply(subscriber, {"status": "unsubscribed", "unsubscribed_at": utcnow()})
    record_consent(db_session, subscriber, "unsubscribe", consent, changes)
    return True


def request_resubscribe(
    db_session: Session, subscriber: Subscriber, consent: Consent, enqueue: Enqueue
) -> str:
    """Send a fresh confirmation to someone who left and asks, from a link, to come back.

    The link may be in an old or forwarded email, so it proves nothing about who holds it
    today: only the confirmation, sent to the address now, brings the reader back.
    """
    if is_blocked(db_session, subscriber):
        raise Blocked()
    if subscriber.status == "active":
        return "nothing"
    record_consent(db_session, subscriber, "resubscribe", consent, {})
    _queue(db_session, "confirm", subscriber, enqueue)
    return "confirm_sent"


def resubscribe(db_session: Session, subscriber: Subscriber, consent: Consent) -> None:
    """Undo an unsubscribe from a link in the reader's own mailbox (proof of the address)."""
    if is_blocked(db_session, subscriber):
        raise Blocked()
    changes = apply(subscriber, {"status": "active", "unsubscribed_at": None})
    if subscriber.confirmed_at is None:
        changes.update(apply(subscriber, {"confirmed_at": utcnow()}))
    record_consent(db_session, subscriber, "resubscribe", consent, changes)


# --- the editor's side -------------------------------------------------------------------


def set_member(
    db_session: Session,
    subscriber: Subscriber,
    member: bool,
    organisation: str | None,
    consent: Consent,
) -> dict[str, Any]:
    """Flag or unflag a member of the association; new members get digests by default."""
    values: dict[str, Any] = {"member": member, "organisation": organisation or None}
    if member and not subscriber.member:
        values["format"] = "digest"
    changes = apply(subscriber, values)
    if changes:
        record_consent(db_session, subscriber, "member", consent, changes)
    return changes


def suppress(
    db_session: Session, address: str, reason: str, consent: Consent, note: str | None = None
) -> Subscriber | None:
    """Block ``address`` for good and stop its subscription; returns the subscriber, if any."""
    if reason not in STATUS_FOR_REASON:
        raise ValueError(f"unknown suppression reason {reason!r}")
    address = canonical(address)
    hashed = email_hash(address)
    if not is_suppressed(db_session, hashed):
        db_session.add(Suppression(email_hash=hashed, reason=reason, note=note))
    subscriber = find(db_session, address)
    if subscriber is not None and subscriber.status not in BLOCKED_STATUSES:
        changes = apply(subscriber, {"status": STATUS_FOR_REASON[reason]})
        if subscriber.unsubscribed_at is None:
            changes.update(apply(subscriber, {"unsubscribed_at": utcnow()}))
        record_consent(db_session, subscriber, "suppress", consent, {**changes, "reason": reason})
    return subscriber


def erase(db_session: Session, subscriber: Subscriber, consent: Consent, block: bool) -> None:
    """Remove the person's data; keep the row's history without it, and (if asked) a block.

    The consent record stays (that someone consented, and when) but loses the IP, the user
    agent and any personal values. Single emails still waiting for this address are dropped.
    """
    address = subscriber.email
    if (
        block
        and subscriber.email_hash is not None
        and not is_suppressed(db_session, subscriber.email_hash)
    ):
        db_session.add(
            Suppression(email_hash=subscriber.email_hash, reason="manual", note="erased")
        )
    _scrub_events(db_session, subscriber.id)
    # Packages above (bounce reports quote the address) scrub their copies in this transaction.
    registry.erased(db_session, subscriber.id, address)
    scrub.forget_address(db_session, address, kinds=NOTICE_KINDS)
    _scrub_previews(db_session, address)
    # A signup or link request still waiting for a worker holds the address too.
    db_session.execute(
        delete(SignupRequest).where(func.lower(SignupRequest.address) == address.lower())
    )
    subscriber.email = f"erased-{subscriber.id}@{ERASED_DOMAIN}"
    subscriber.email_hash = None
    subscriber.name = subscriber.organisation = None
    if subscriber.status in ("active", "pending"):
        subscriber.status = "unsubscribed"
    subscriber.unsubscribed_at = subscriber.unsubscribed_at or utcnow()
    subscriber.erased_at = utcnow()
    subscriber.confirm_nonce, subscriber.link_nonce = new_nonce(), new_nonce()
    record_consent(db_session, subscriber, "erase", consent, {"blocked": block})


def _scrub_previews(db_session: Session, address: str) -> None:
    # A CSV upload that was previewed but never run still holds the address in its text.
    db_session.execute(
        delete(ImportJob).where(
            ImportJob.status == "preview", func.lower(ImportJob.content).contains(address.lower())
        )
    )


def discard_stale_previews(db_session: Session, now: datetime | None = None) -> int:
    """Drop CSV uploads previewed but neither run nor discarded within a day (personal data)."""
    cutoff = (now or utcnow()) - PREVIEW_LIFETIME
    result = db_session.execute(
        delete(ImportJob).where(ImportJob.status == "preview", ImportJob.created_at < cutoff)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _scrub_events(db_session: Session, subscriber_id: int) -> None:
    query = select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber_id)
    for event in db_session.scalars(query):
        event.ip = event.user_agent = None
        event.changes = {
            name: ["(erased)", "(erased)"] if name in PERSONAL_FIELDS else value
            for name, value in event.changes.items()
        }
